package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authsvc/authsvc/internal/e2e"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// wacht is an emulated Wacht deployment with demo data, served on
// loopback for the binary under test.
type wacht struct {
	fake   *wachtfake.Server
	url    string
	demo   wachtfake.Demo
	secret string // webhook signing secret
}

func startWacht(t *testing.T) *wacht {
	t.Helper()
	fake, err := wachtfake.New(wachtfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	fake.SetIssuer(srv.URL)
	demo, err := fake.SeedDemo()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := wachtfake.NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	return &wacht{fake: fake, url: srv.URL, demo: demo, secret: secret}
}

// env is the environment of an authsvc serving w, on the database at dbURL.
func (w *wacht) env(dbURL string) map[string]string {
	return map[string]string{
		"WACHT_API_KEY":          w.fake.APIKey(),
		"WACHT_API_URL":          w.url,
		"WACHT_GATEWAY_URL":      w.url,
		"WACHT_FRONTEND_API_URL": w.url,
		"WACHT_WEBHOOK_SECRET":   w.secret,
		"DATABASE_URL":           dbURL,
		"AUTHSVC_INSECURE_OPEN":  "true",
	}
}

// serve starts authsvc serve against w and waits until it is ready.
func (w *wacht) serve(t *testing.T, dbURL string, extra map[string]string) *e2e.Instance {
	t.Helper()
	env := w.env(dbURL)
	for k, v := range extra {
		env[k] = v
	}
	inst := e2e.Start(t, bin, env, "serve")
	inst.WaitServing(t, t.Context())
	return inst
}

// token mints a session token for the first demo user's organization
// context.
func (w *wacht) token(t *testing.T) string {
	t.Helper()
	tok, err := w.fake.MintToken(w.demo.TokenClaims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var _ = http.MethodGet
