package sessionexchange_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// clock is a settable clock shared by the emulator, the verifier and the
// exchange.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is the emulator behind a real client, a real verifier and an
// Exchange, all on one fake clock.
type rig struct {
	fake   *wachtfake.Server
	client *wachtclient.Client
	demo   wachtfake.Demo
	clock  *clock
	x      *sessionexchange.Exchange
	logs   *bytes.Buffer
}

func newRig(t *testing.T, mod func(*sessionexchange.Config)) *rig {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	fake, err := wachtfake.New(wachtfake.Options{Now: clk.Now})
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
	client, err := wachtclient.New(wachtclient.Config{APIURL: srv.URL, FrontendURL: srv.URL, APIKey: fake.APIKey()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	verifier, err := sessiontoken.New(sessiontoken.Config{Issuer: srv.URL, Fetcher: client, Now: clk.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifier.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg := sessionexchange.Config{Exchanger: client, Verifier: verifier, Logger: logger, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	x, err := sessionexchange.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{fake: fake, client: client, demo: demo, clock: clk, x: x, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *rig) session(i int, addr string) sessionexchange.Session {
	return sessionexchange.Session{Value: r.demo.SessionCookies[i].Value, ClientAddr: netip.MustParseAddr(addr)}
}

func TestConcurrentRequestsShareOneExchange(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	s := r.session(0, "203.0.113.1")
	const n = 1000
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			tokens[i], errs[i] = r.x.Token(t.Context(), s)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("request %d: %v (same token: %t)", i, errs[i], tokens[i] == tokens[0])
		}
	}
	if got := r.fake.Calls(wachtfake.RouteSessionToken); got != 1 {
		t.Errorf("%d concurrent requests made %d exchanges, want 1", n, got)
	}
}

func TestTokenReusedUntilMarginBeforeExpiry(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	s := r.session(0, "203.0.113.2")
	first, err := r.x.Token(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	// The emulator's tokens live 35 s; the margin is 5 s.
	r.clock.Advance(wachtfake.DefaultTokenLifetime - sessionexchange.DefaultMargin - time.Second)
	again, err := r.x.Token(t.Context(), s)
	if err != nil || again != first {
		t.Fatalf("before the margin: new token %t, %v", again != first, err)
	}
	if got := r.fake.Calls(wachtfake.RouteSessionToken); got != 1 {
		t.Fatalf("%d exchanges before the margin, want 1", got)
	}
	r.clock.Advance(2 * time.Second)
	renewed, err := r.x.Token(t.Context(), s)
	if err != nil || renewed == first {
		t.Fatalf("past the margin: new token %t, %v", renewed != first, err)
	}
	if got := r.fake.Calls(wachtfake.RouteSessionToken); got != 2 {
		t.Errorf("%d exchanges past the margin, want 2", got)
	}
}

func TestRefusedSession(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	s := r.session(1, "203.0.113.3")
	if _, err := r.x.Token(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	c := r.demo.SessionCookies[1]
	signIns, err := r.fake.SignIns(c.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range signIns {
		if si.SessionID == c.SessionID {
			if err := r.client.RevokeSignIn(t.Context(), c.UserID, si.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.clock.Advance(wachtfake.DefaultTokenLifetime)
	for range 3 {
		if _, err := r.x.Token(t.Context(), s); !errors.Is(err, sessionexchange.ErrRefused) {
			t.Fatalf("revoked session = %v, want ErrRefused", err)
		}
	}
	if got := r.fake.Calls(wachtfake.RouteSessionToken); got != 2 {
		t.Errorf("%d exchanges, want 2: a refusal is remembered", got)
	}
	if _, err := r.x.Token(t.Context(), sessionexchange.Session{Value: "sess_never-issued"}); !errors.Is(err, sessionexchange.ErrRefused) {
		t.Errorf("unknown session = %v, want ErrRefused", err)
	}
}

func TestExchangeLimits(t *testing.T) {
	t.Parallel()
	t.Run("per end user", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil)
		// Twelve sessions of one end user, each needing an exchange: the
		// address limit (10 a minute, 5 at once) binds before Wacht's.
		var limited int
		for i := range 12 {
			v, err := r.fake.IssueSessionCookie(r.demo.TokenClaims)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.x.Token(t.Context(), sessionexchange.Session{Value: v, ClientAddr: netip.MustParseAddr("198.51.100.1")})
			switch {
			case errors.Is(err, sessionexchange.ErrRateLimited):
				limited++
			case err != nil:
				t.Fatalf("session %d: %v", i, err)
			}
		}
		if n := r.fake.Calls(wachtfake.RouteSessionToken); n != sessionexchange.PerAddressPerMinute/2 || limited != 12-n {
			t.Errorf("%d exchanges and %d refusals for 12 sessions of one end user, want %d exchanges at once",
				n, limited, sessionexchange.PerAddressPerMinute/2)
		}
		// Another end user is not held back.
		if _, err := r.x.Token(t.Context(), r.session(0, "198.51.100.2")); err != nil {
			t.Errorf("another end user: %v", err)
		}
		// Within a minute the whole limit is available, never more.
		r.clock.Advance(time.Minute)
		for range 12 {
			v, err := r.fake.IssueSessionCookie(r.demo.TokenClaims)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = r.x.Token(t.Context(), sessionexchange.Session{Value: v, ClientAddr: netip.MustParseAddr("198.51.100.1")})
		}
		if n := r.fake.Calls(wachtfake.RouteSessionToken); n > 1+sessionexchange.PerAddressPerMinute+sessionexchange.PerAddressPerMinute/2 {
			t.Errorf("%d exchanges over a minute and a burst", n)
		}
	})
	t.Run("stale token served while over the limit", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, func(c *sessionexchange.Config) { c.PerSession = 2 })
		s := r.session(0, "198.51.100.3")
		first, err := r.x.Token(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(wachtfake.DefaultTokenLifetime - sessionexchange.DefaultMargin + time.Second)
		// PerSession 2 allows one at once: the refresh is refused, the
		// unexpired token is served.
		tok, err := r.x.Token(t.Context(), s)
		if err != nil || tok != first {
			t.Fatalf("over the limit with an unexpired token: same token %t, %v", tok == first, err)
		}
		r.clock.Advance(sessionexchange.DefaultMargin)
		if _, err := r.x.Token(t.Context(), s); !errors.Is(err, sessionexchange.ErrRateLimited) {
			t.Fatalf("over the limit with an expired token = %v, want ErrRateLimited", err)
		}
		if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 1 {
			t.Errorf("%d exchanges, want 1", n)
		}
	})
	t.Run("a 429 from Wacht is not retried", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, nil)
		s := r.session(0, "192.0.2.1")
		// As when other replicas spent the session's limit.
		r.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteSessionToken, Mode: wachtfake.Fault429})
		for i := range 100 {
			_, err := r.x.Token(t.Context(), s)
			var rl *sessionexchange.RateLimitedError
			if !errors.Is(err, sessionexchange.ErrRateLimited) || !errors.As(err, &rl) {
				t.Fatalf("request %d = %v, want ErrRateLimited", i, err)
			}
			// The cooldown still to run, for Retry-After.
			if want := sessionexchange.DefaultCooldown - time.Duration(i)*100*time.Millisecond; rl.RetryAfter != want {
				t.Fatalf("request %d: RetryAfter %v, want %v", i, rl.RetryAfter, want)
			}
			r.clock.Advance(100 * time.Millisecond)
		}
		// 10 s of requests, a cooldown of 10 s after each 429.
		if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 1 {
			t.Errorf("%d exchanges in one cooldown, want 1", n)
		}
		r.clock.Advance(time.Second)
		r.fake.ClearFaults()
		if _, err := r.x.Token(t.Context(), s); err != nil {
			t.Errorf("after the cooldown: %v", err)
		}
	})
}

func TestNoSessionInLogsOrErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *sessionexchange.Config) { c.PerSession = 2 })
	var secrets []string
	for i := range r.demo.SessionCookies {
		s := r.session(i, "192.0.2.200")
		secrets = append(secrets, s.Value)
		for range 4 {
			_, err := r.x.Token(context.Background(), s)
			if err != nil && strings.Contains(err.Error(), s.Value) {
				t.Errorf("error holds the session: %v", err)
			}
			r.clock.Advance(wachtfake.DefaultTokenLifetime)
		}
		for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%#v", s), fmt.Sprintf("%+v", s)} {
			if strings.Contains(out, s.Value) {
				t.Errorf("formatting prints the session: %s", out)
			}
		}
		slog.New(slog.NewTextHandler(&lockedWriter{w: r.logs}, nil)).Info("session", "s", s)
	}
	logs := r.logs.String()
	if logs == "" {
		t.Fatal("nothing was logged; the test proves nothing")
	}
	for _, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("a session value was logged:\n%s", logs)
		}
	}
}
