package wachtfake

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// seededSession returns the env with one user, one sign-in and the
// claims of a token for it.
func seededSession(t *testing.T) (*env, TokenClaims) {
	t.Helper()
	e := newEnv(t, Options{})
	u := mustAddUser(t, e.s, User{FirstName: "Ada", Emails: []Email{{Email: "ada@example.com", Primary: true}}})
	si := mustAddSignIn(t, e.s, u.ID, SignIn{})
	return e, TokenClaims{UserID: u.ID, SessionID: si.SessionID, WorkspacePermissions: []string{"orders:read"}}
}

func TestSessionTokenExchange(t *testing.T) {
	t.Parallel()
	e, claims := seededSession(t)
	cookie, err := e.s.IssueSessionCookie(claims)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := e.s.IssueDevSession(claims)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		status  int
	}{
		{"session cookie", "/session/token", []string{"Cookie", "__session=" + cookie}, 200},
		{"dev header", "/session/token", []string{"X-Development-Session", dev}, 200},
		{"dev query", "/session/token?__dev_session__=" + dev, nil, 200},
		{"dev cookie", "/session/token", []string{"Cookie", "theme=dark; __dev_session__=" + dev}, 200},
		{"no session", "/session/token", nil, 401},
		{"unknown cookie", "/session/token", []string{"Cookie", "__session=sess_nope"}, 401},
		{"production cookie as dev session", "/session/token", []string{"X-Development-Session", cookie}, 401},
		{"dev session as production cookie", "/session/token", []string{"Cookie", "__session=" + dev}, 401},
	} {
		r := e.request(t, "GET", tc.path, "", append(tc.headers, "X-Wacht-Forwarded-For", "203.0.113."+fmt.Sprint(len(tc.name)))...)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		body := r.object(t)
		if body["status"] != float64(tc.status) {
			t.Errorf("%s: envelope status %v", tc.name, body["status"])
		}
		if tc.status != 200 {
			if errs, _ := body["errors"].([]any); len(errs) != 1 || body["data"] != nil {
				t.Errorf("%s: error envelope %s", tc.name, r.body)
			}
			continue
		}
		data, _ := body["data"].(map[string]any)
		tok, _ := data["token"].(string)
		_, got, err := e.verify(t, tok)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got["sub"] != claims.UserID || got["sid"] != claims.SessionID {
			t.Errorf("%s: claims %v", tc.name, got)
		}
		wantExp := epoch.Add(DefaultTokenLifetime)
		if data["expires"] != float64(wantExp.UnixMilli()) || got["exp"] != float64(wantExp.Unix()) {
			t.Errorf("%s: expires %v, exp %v, want %d ms", tc.name, data["expires"], got["exp"], wantExp.UnixMilli())
		}
	}
	if n := e.s.Calls(RouteSessionToken); n != 8 {
		t.Errorf("Calls(%s) = %d, want 8", RouteSessionToken, n)
	}
}

func TestSessionTokenRevokedSignIn(t *testing.T) {
	t.Parallel()
	e, claims := seededSession(t)
	cookie, err := e.s.IssueSessionCookie(claims)
	if err != nil {
		t.Fatal(err)
	}
	sis, err := e.s.SignIns(claims.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.backend(t, "POST", "/users/"+claims.UserID+"/sessions/"+sis[0].ID+"/revoke", ""); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie); r.status != 401 {
		t.Errorf("revoked session: %d %s, want 401", r.status, r.body)
	}
	if _, err := e.s.IssueSessionCookie(claims); !errors.Is(err, ErrNotFound) {
		t.Errorf("IssueSessionCookie for a revoked sign-in = %v, want ErrNotFound", err)
	}
}

func TestSessionTokenLimits(t *testing.T) {
	t.Parallel()
	t.Run("per session", func(t *testing.T) {
		t.Parallel()
		e, claims := seededSession(t)
		cookie, err := e.s.IssueSessionCookie(claims)
		if err != nil {
			t.Fatal(err)
		}
		// Distinct end-user addresses keep the pair limit out of the way.
		for i := range ExchangesPerSession {
			ip := fmt.Sprintf("198.51.100.%d", i/ExchangesPerAddressPair)
			if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", ip); r.status != 200 {
				t.Fatalf("exchange %d: %d %s", i, r.status, r.body)
			}
		}
		r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", "198.51.100.99")
		if r.status != 429 || r.object(t)["message"] != "Too many token exchange requests, please try again later" {
			t.Fatalf("exchange over the session limit: %d %s", r.status, r.body)
		}
		e.clock.Advance(time.Minute)
		if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", "198.51.100.99"); r.status != 200 {
			t.Errorf("a minute later: %d %s", r.status, r.body)
		}
	})
	t.Run("per address pair", func(t *testing.T) {
		t.Parallel()
		e, claims := seededSession(t)
		cookie, err := e.s.IssueSessionCookie(claims)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ExchangesPerAddressPair {
			if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", "192.0.2.7"); r.status != 200 {
				t.Fatalf("exchange %d: %d %s", i, r.status, r.body)
			}
		}
		if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", "192.0.2.7"); r.status != 429 {
			t.Fatalf("exchange over the pair limit: %d %s", r.status, r.body)
		}
		if r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+cookie, "X-Wacht-Forwarded-For", "192.0.2.8"); r.status != 200 {
			t.Errorf("another end user: %d %s", r.status, r.body)
		}
	})
}

func TestSeedDemoSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	d, err := e.s.SeedDemo()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.SessionCookies) != len(d.Users) || d.DevSession == "" {
		t.Fatalf("demo has %d session cookies for %d users, dev session %t", len(d.SessionCookies), len(d.Users), d.DevSession != "")
	}
	for i, c := range d.SessionCookies {
		r := e.request(t, "GET", "/session/token", "", "Cookie", "__session="+c.Value, "X-Wacht-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
		if r.status != 200 {
			t.Fatalf("user %s: %d %s", c.UserID, r.status, r.body)
		}
		data, _ := r.object(t)["data"].(map[string]any)
		tok, _ := data["token"].(string)
		_, got, err := e.verify(t, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got["sub"] != c.UserID || got["sid"] != c.SessionID {
			t.Errorf("cookie %d: claims %v", i, got)
		}
	}
	if r := e.request(t, "GET", "/session/token", "", "X-Development-Session", d.DevSession); r.status != 200 {
		t.Errorf("dev session: %d %s", r.status, r.body)
	}
}
