package service_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// edgeClock is a settable clock shared by every part of an edgeRig.
type edgeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *edgeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *edgeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// edgeRig is authsvc's Check and AuthService over real Wacht parts (the
// emulator, the client, the verifier, the caches, the exchange), served
// over HTTP/2 and called with grpc-go (Envoy's client) and Connect.
type edgeRig struct {
	fake   *wachtfake.Server
	wacht  *wachtclient.Client
	demo   wachtfake.Demo
	clock  *edgeClock
	logs   *syncBuffer
	envoy  authv3.AuthorizationClient
	conn   *grpc.ClientConn
	url    string
	hc     *http.Client
	server *service.AuthServer
}

// edgeRigConfig shapes an edgeRig.
type edgeRigConfig struct {
	credentials     service.Credentials
	checkRevocation bool
	// clock, when set, drives every part; nil means real time.
	clock *edgeClock
}

// tokenCookie is the cookie name the rig's authsvc reads a token from.
const tokenCookie = "__auth_demo"

func newEdgeRig(tb testing.TB, cfg edgeRigConfig) *edgeRig {
	tb.Helper()
	ctx := tb.Context()
	var now func() time.Time
	if cfg.clock != nil {
		now = cfg.clock.Now
	}
	fake, err := wachtfake.New(wachtfake.Options{RequestsPerMinute: 100_000, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	wachtSrv := httptest.NewServer(fake)
	tb.Cleanup(wachtSrv.Close)
	fake.SetIssuer(wachtSrv.URL)
	demo, err := fake.SeedDemo()
	if err != nil {
		tb.Fatal(err)
	}

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wacht, err := wachtclient.New(wachtclient.Config{
		APIURL: wachtSrv.URL, GatewayURL: wachtSrv.URL, FrontendURL: wachtSrv.URL,
		APIKey: fake.APIKey(), RequestsPerMinute: 100_000, Logger: logger,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	verifier, err := sessiontoken.New(sessiontoken.Config{Issuer: wachtSrv.URL, Fetcher: wacht, Logger: logger, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	if err := verifier.Refresh(ctx); err != nil {
		tb.Fatal(err)
	}
	users, err := cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", Load: service.LoadUser(wacht), Codec: service.UserCodec{},
		TTL: time.Hour, IsTransient: wachtclient.IsTransient, Logger: logger, Now: now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(users.Close)
	sessions, err := cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", Load: service.LoadSessions(wacht), Codec: service.SessionsCodec{},
		TTL: time.Hour, IsTransient: wachtclient.IsTransient, Logger: logger, Now: now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sessions.Close)
	exchange, err := sessionexchange.New(sessionexchange.Config{Exchanger: wacht, Verifier: verifier, Logger: logger, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	auth, err := service.NewAuthServer(service.AuthConfig{
		Logger: logger, Verifier: verifier, Users: users, Sessions: sessions, Wacht: wacht,
		PageTokenKey: []byte("edge test page token key, 32 by"), Now: now,
		Authenticate: service.AuthenticateConfig{
			Credentials:  cfg.credentials,
			TokenCookies: []string{tokenCookie},
			APIKeyHeader: "X-API-Key",
			Exchange:     exchange,
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	extAuthz, err := service.NewExtAuthz(service.ExtAuthzConfig{
		Logger: logger, Decider: auth, CheckRevocation: cfg.checkRevocation,
	})
	if err != nil {
		tb.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(auth))
	mux.Handle(extAuthz.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)

	conn, err := grpc.NewClient(srv.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2c.SetHTTP1(true)
	transport := &http.Transport{Protocols: &h2c}
	tb.Cleanup(transport.CloseIdleConnections)
	return &edgeRig{
		fake: fake, wacht: wacht, demo: demo, clock: cfg.clock, logs: logs,
		envoy: authv3.NewAuthorizationClient(conn), conn: conn, url: srv.URL,
		hc: &http.Client{Transport: transport}, server: auth,
	}
}

// connectClient returns an AuthService client speaking Connect, or gRPC.
func (r *edgeRig) connectClient(grpcProtocol bool) authsvcv1connect.AuthServiceClient {
	var opts []connect.ClientOption
	if grpcProtocol {
		opts = append(opts, connect.WithGRPC())
	}
	return authsvcv1connect.NewAuthServiceClient(r.hc, r.url, opts...)
}
