package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/e2e"
	"github.com/authsvc/authsvc/internal/pgtest"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for a leaf.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestMutualTLSCallers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := newTestCA(t, "authsvc test CA")
	srvCert, srvKey := ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "authsvc"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	cliCert, cliKey := ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "envoy.mesh"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	strangerCert, strangerKey := ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "nobody"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	callersFile := filepath.Join(dir, "callers.json")
	writeCallers(t, callersFile, map[string]any{
		"name": "envoy", "cert": map[string]any{"common_name": "envoy.mesh"}, "roles": []string{"reader"},
	})

	w := startWacht(t)
	env := w.env(pgtest.NewURL(t))
	env["AUTHSVC_INSECURE_OPEN"] = ""
	env["AUTHSVC_CALLERS_FILE"] = callersFile
	env["AUTHSVC_TLS_CERT"] = write("server.pem", srvCert)
	env["AUTHSVC_TLS_KEY"] = write("server.key", srvKey)
	env["AUTHSVC_TLS_CLIENT_CA"] = write("ca.pem", ca.pem)
	inst := e2e.Start(t, bin, env, "serve")

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := func(certPEM, keyPEM []byte) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	}
	getUser := func(hc *http.Client, opts ...connect.ClientOption) error {
		c := authsvcv1connect.NewAuthServiceClient(hc, inst.URL, opts...)
		_, err := c.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: w.demo.Users[0].ID}))
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := getUser(client(cliCert, cliKey))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetUser with the caller's certificate: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := getUser(client(cliCert, cliKey), connect.WithGRPC()); err != nil {
		t.Errorf("gRPC GetUser with the caller's certificate: %v", err)
	}
	if err := getUser(client(nil, nil)); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("GetUser without a certificate: %v, want Unauthenticated", err)
	}
	if err := getUser(client(strangerCert, strangerKey), connect.WithGRPC()); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("GetUser with a certificate of no caller: %v, want Unauthenticated", err)
	}
	other := newTestCA(t, "another CA")
	otherCert, otherKey := other.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "envoy.mesh"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	if err := getUser(client(otherCert, otherKey)); err == nil {
		t.Error("a certificate from another CA with the caller's name was accepted")
	}
}
