package callers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/rpclog"
	"github.com/authsvc/authsvc/internal/service"
)

// Procedures the test server serves with real Connect handlers.
const (
	procGetUser  = "/authsvc.v1.AuthService/GetUser"
	procRotate   = "/authsvc.v1.AdminService/RotateAPIKey"
	procRevoke   = "/authsvc.v1.AuthService/RevokeSession"
	procCheck    = "/envoy.service.auth.v3.Authorization/Check"
	procUnknown  = "/authsvc.v2.Nowhere/Get"
	healthedName = "authsvc.v1.AuthService"
)

// Caller tokens of the test callers file. They are long and distinctive so
// that a leak into a log line or an error is easy to spot.
const (
	readerToken = "rdr_7Kq2mXv9LpW4sT1nB8cZ3yH6"
	adminToken  = "adm_Q5wE8rT2yU7iO4pA1sD6fG9h"
	revokeToken = "rvk_P4oI7uY0tR3eW6qA9sD2fG5h"
	boundToken  = "bnd_Z3xC6vB9nM2qW5eR8tY1uI4o"
	wrongToken  = "bad_J7kL0zX3cV6bN9mQ2wE5rT8y"
)

// fileEntry is one caller of a callers file as the tests write it.
type fileEntry struct {
	Name        string            `json:"name"`
	TokenSHA256 string            `json:"token_sha256,omitempty"`
	Cert        map[string]string `json:"cert,omitempty"`
	Roles       []string          `json:"roles"`
}

// baseCallers is the callers file most tests use.
func baseCallers() []fileEntry {
	return []fileEntry{
		{Name: "orders", TokenSHA256: hashToken(readerToken), Roles: []string{"reader"}},
		{Name: "ops", TokenSHA256: hashToken(adminToken), Roles: []string{"admin"}},
		{Name: "signout", TokenSHA256: hashToken(revokeToken), Roles: []string{"revoker"}},
		{Name: "bound", TokenSHA256: hashToken(boundToken), Cert: map[string]string{"common_name": "bound.internal"}, Roles: []string{"admin"}},
		{Name: "envoy", Cert: map[string]string{"common_name": "envoy.mesh", "uri_san": "spiffe://cluster.local/ns/gw/sa/envoy"}, Roles: []string{"reader"}},
		{Name: "batch", Cert: map[string]string{"common_name": "batch.internal"}, Roles: []string{"reader"}},
		{Name: "mesh-admin", Cert: map[string]string{"uri_san": "spiffe://cluster.local/ns/ops/sa/admin"}, Roles: []string{"admin"}},
		{Name: "jobs", Cert: map[string]string{"dns_san": "jobs.svc"}, Roles: []string{"reader"}},
		{Name: "amb-a", Cert: map[string]string{"common_name": "shared.internal"}, Roles: []string{"reader"}},
		{Name: "amb-b", Cert: map[string]string{"common_name": "shared.internal", "dns_san": "shared.svc"}, Roles: []string{"reader"}},
	}
}

// writeCallers writes a callers file atomically (rename) and returns its path.
func writeCallers(t testing.TB, path string, entries []fileEntry) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"callers": entries})
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, path, b)
	return path
}

func writeRaw(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newAuthenticator(t testing.TB, cfg callers.Config) *callers.Authenticator {
	t.Helper()
	if cfg.Policy.Procedures == nil {
		cfg.Policy = app.CallerPolicy()
	}
	if cfg.MapError == nil && !cfg.Open {
		cfg.MapError = service.ConnectError(nil)
	}
	a, err := callers.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// reached records which test requests got past the middleware, by their
// Test-Id header.
type reached struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (r *reached) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[id] = true
}

func (r *reached) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// newMux returns the handlers the middleware protects: real Connect
// handlers for a reader, an admin and the Check procedure, gRPC health,
// both reflection versions and a plain route.
func newMux(logger *slog.Logger) (*http.ServeMux, *reached) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seen := &reached{ids: map[string]bool{}}
	unary := func(ctx context.Context, req *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		seen.add(req.Header().Get("Test-Id"))
		res := connect.NewResponse(&emptypb.Empty{})
		if c, ok := callers.FromContext(ctx); ok {
			res.Header().Set("Test-Caller", c.Name+"/"+string(c.Method))
		}
		return res, nil
	}
	opts := []connect.HandlerOption{connect.WithInterceptors(rpclog.NewInterceptor(logger, callers.LogAttrs))}
	mux := http.NewServeMux()
	for _, proc := range []string{procGetUser, procRotate, procCheck, procRevoke} {
		mux.Handle(proc, connect.NewUnaryHandler(proc, unary, opts...))
	}
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(healthedName)))
	reflector := grpcreflect.NewStaticReflector(healthedName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.Header.Get("Test-Id"))
		w.WriteHeader(http.StatusTeapot)
	})
	return mux, seen
}

// testServer is a TLS server speaking HTTP/1.1 and HTTP/2, so that Connect,
// gRPC and gRPC-Web all work against it.
type testServer struct {
	*httptest.Server
	seen *reached
	seq  atomic.Int64
}

// startServer serves a.Wrap(mux) with the given client-certificate policy.
func startServer(t testing.TB, a *callers.Authenticator, logger *slog.Logger, clientAuth tls.ClientAuthType, clientCAs *x509.CertPool) *testServer {
	t.Helper()
	mux, seen := newMux(logger)
	srv := httptest.NewUnstartedServer(a.Wrap(mux))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{ClientAuth: clientAuth, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, seen: seen}
}

// httpClient returns a client of s that presents cert, if not nil.
func (s *testServer) httpClient(t testing.TB, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := s.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// protocol is one of the three wire protocols a Connect client speaks.
type protocol struct {
	name string
	opts []connect.ClientOption
}

var protocols = []protocol{
	{name: "connect"},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpcweb", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
}

// callResult is what a test call saw.
type callResult struct {
	Code    connect.Code
	Caller  string // Test-Caller response header: "name/method"
	Reached bool   // the handler ran
}

// callEmpty makes one unary call with an Authorization header (if any)
// and reports its outcome.
func (s *testServer) callEmpty(t *testing.T, hc *http.Client, p protocol, proc, authorization string) (callResult, error) {
	t.Helper()
	id := t.Name() + "/" + proc + "/" + strconv.FormatInt(s.seq.Add(1), 10)
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, s.URL+proc, p.opts...)
	req := connect.NewRequest(&emptypb.Empty{})
	req.Header().Set("Test-Id", id)
	if authorization != "" {
		req.Header().Set("Authorization", authorization)
	}
	res, err := client.CallUnary(t.Context(), req)
	got := callResult{Code: codeOf(err), Reached: s.seen.has(id)}
	if err == nil {
		got.Caller = res.Header().Get("Test-Caller")
	}
	return got, err
}

// codeOf is connect.CodeOf, with 0 ("ok") for success.
func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

// testPKI is a certificate authority made for one test.
type testPKI struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testPKI{cert: cert, key: key, pool: pool}
}

// issue returns a client certificate signed by the CA.
func (p *testPKI) issue(t testing.TB, cn string, uris, dnsNames []string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tempCallers writes entries to a new callers file in a temp dir.
func tempCallers(t testing.TB, entries []fileEntry) string {
	t.Helper()
	return writeCallers(t, filepath.Join(t.TempDir(), "callers.json"), entries)
}

// headerTransport adds one header to every request.
type headerTransport struct {
	base        http.RoundTripper
	name, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return h.base.RoundTrip(r)
}

// withHeader returns a client like hc that sends the header name: value.
func withHeader(hc *http.Client, name, value string) *http.Client {
	return &http.Client{Transport: headerTransport{base: hc.Transport, name: name, value: value}, Timeout: hc.Timeout}
}

// hashToken returns the hex SHA-256 of a caller token, the form
// token_sha256 takes in a callers file.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
