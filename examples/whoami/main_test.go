package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/authsvcmw"
	"github.com/authsvc/authsvc/internal/app/apptest"
)

// counter counts the calls the middleware makes to authsvc.
func counter(n *atomic.Int32) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			n.Add(1)
			return next(ctx, req)
		}
	})
}

func TestWhoamiAgainstAuthsvc(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.Options{SeedDemo: true})
	var calls atomic.Int32
	mw := authsvcmw.New(h.URL, authsvcmw.HTTPClient(h.HTTPClient), authsvcmw.ClientOptions(connect.WithInterceptors(counter(&calls))))
	svc := httptest.NewServer(mw.Wrap(newMux()))
	t.Cleanup(svc.Close)

	claims := h.Demo.TokenClaims
	token, err := h.Fake.MintToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	expired := claims
	expired.IssuedAt = time.Now().Add(-time.Hour)
	expired.Lifetime = time.Minute
	expiredToken, err := h.Fake.MintToken(expired)
	if err != nil {
		t.Fatal(err)
	}
	forged := token[:len(token)-4] + "AAAA"

	get := func(t *testing.T, header, value string) (*http.Response, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, svc.URL+"/whoami", nil)
		if header != "" {
			req.Header.Set(header, value)
		}
		res, err := svc.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("body: %v", err)
		}
		return res, body
	}

	tests := []struct {
		name          string
		header, value string
		status        int
		challenge     string
		body          map[string]string
	}{
		{
			name: "bearer session token", header: "Authorization", value: "Bearer " + token,
			status: http.StatusOK,
			body: map[string]string{
				"user_id": claims.UserID, "session_id": claims.SessionID,
				"credential": "CREDENTIAL_SESSION_TOKEN",
			},
		},
		{
			name: "no credential", status: http.StatusUnauthorized,
			challenge: `Bearer realm="authsvc"`, body: map[string]string{"error": "missing"},
		},
		{
			name: "expired token", header: "Authorization", value: "Bearer " + expiredToken,
			status: http.StatusUnauthorized, challenge: `Bearer error="invalid_token"`,
			body: map[string]string{"error": "expired"},
		},
		{
			name: "forged signature", header: "Authorization", value: "Bearer " + forged,
			status: http.StatusUnauthorized, challenge: `Bearer error="invalid_token"`,
			body: map[string]string{"error": "bad_signature"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, tt.header, tt.value)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if diff := cmp.Diff(tt.body, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}

	// The verified token is reused from the cache; refusals are not.
	before := calls.Load()
	for range 3 {
		if res, _ := get(t, "Authorization", "Bearer "+token); res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("3 more requests with a verified token made %d calls to authsvc, want 0", n)
	}
	before = calls.Load()
	get(t, "Authorization", "Bearer "+forged)
	get(t, "Authorization", "Bearer "+forged)
	if n := calls.Load() - before; n != 2 {
		t.Errorf("2 requests with a forged token made %d calls, want 2 (refusals are not cached)", n)
	}
	before = calls.Load()
	get(t, "", "")
	if n := calls.Load() - before; n != 0 {
		t.Errorf("a request with no credential made %d calls, want 0", n)
	}
}

func TestWhoamiPermissionsAndCookies(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.Options{SeedDemo: true})
	claims := h.Demo.TokenClaims
	token, err := h.Fake.MintToken(claims)
	if err != nil {
		t.Fatal(err)
	}

	denied := httptest.NewServer(authsvcmw.New(h.URL, authsvcmw.HTTPClient(h.HTTPClient),
		authsvcmw.RequirePermissions("no:such:permission")).Wrap(newMux()))
	t.Cleanup(denied.Close)
	req, _ := http.NewRequest(http.MethodGet, denied.URL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := denied.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || res.Header.Get("WWW-Authenticate") != `Bearer error="insufficient_scope"` {
		t.Errorf("missing permission: %d %q, want 403 insufficient_scope", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}

	// Wacht's __session cookie, exchanged by authsvc at the Frontend API.
	if len(h.Demo.SessionCookies) == 0 {
		t.Fatal("the demo has no session cookies")
	}
	ok := httptest.NewServer(authsvcmw.New(h.URL, authsvcmw.HTTPClient(h.HTTPClient)).Wrap(newMux()))
	t.Cleanup(ok.Close)
	req, _ = http.NewRequest(http.MethodGet, ok.URL+"/whoami", nil)
	req.AddCookie(&http.Cookie{Name: "__session", Value: h.Demo.SessionCookies[0].Value})
	res, err = ok.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != http.StatusOK || body["credential"] != "CREDENTIAL_SESSION_COOKIE" || body["user_id"] != h.Demo.Users[0].ID {
		t.Errorf("__session cookie: %d %v, want 200 for %s by CREDENTIAL_SESSION_COOKIE", res.StatusCode, body, h.Demo.Users[0].ID)
	}
}

// authsvc unreachable: the middleware fails closed with 503.
func TestWhoamiWithoutAuthsvc(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	svc := httptest.NewServer(authsvcmw.New(down.URL, authsvcmw.Logger(discard())).Wrap(newMux()))
	t.Cleanup(svc.Close)
	req, _ := http.NewRequest(http.MethodGet, svc.URL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer x.y.z")
	res, err := svc.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.StatusCode)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
