package wachtfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestFaultModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantBody   string
		wantErr    bool
	}{
		{"down", Fault{Mode: FaultDown}, 0, "", true},
		{"5xx_default", Fault{Mode: Fault5xx}, 503, errorJSON(503, "Something went wrong"), false},
		{"5xx_500", Fault{Mode: Fault5xx, Status: 500}, 500, errorJSON(500, "Something went wrong"), false},
		{"5xx_bad_status", Fault{Mode: Fault5xx, Status: 404}, 503, errorJSON(503, "Something went wrong"), false},
		{"429", Fault{Mode: Fault429}, 429, errorJSON(429, "Rate limit exceeded. Retry after 60 seconds"), false},
		{"latency_only", Fault{Latency: 30 * time.Millisecond}, 200, `{"data":[],"has_more":false,"limit":10,"offset":0}`, false},
		{"other_route", Fault{Mode: FaultDown, Route: RouteJWKS}, 200, `{"data":[],"has_more":false,"limit":10,"offset":0}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{})
			e.s.SetFault(tt.fault)
			req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/users", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.s.APIKey())
			start := time.Now()
			resp, err := e.srv.Client().Do(req)
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got status %d, want a connection error", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				resp.Body.Close()
				got := e.backend(t, "GET", "/users", "") // faults without Times persist
				if got.status != tt.wantStatus || string(got.body) != tt.wantBody {
					t.Errorf("= %d %s, want %d %s", got.status, got.body, tt.wantStatus, tt.wantBody)
				}
				if got.header.Get("Retry-After") != "" {
					t.Errorf("Retry-After = %q, want none", got.header.Get("Retry-After"))
				}
			}
			if time.Since(start) < tt.fault.Latency {
				t.Errorf("answered before the latency of %v", tt.fault.Latency)
			}
			if n := e.s.Calls(RouteListUsers); n < 1 {
				t.Errorf("Calls = %d, faulted calls must count", n)
			}
		})
	}
}

func TestFaultLatencyHonoursContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.s.SetFault(Fault{Latency: 10 * time.Second, Route: RouteHealth})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := e.srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded despite latency")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestFaultPrecedenceTimesAndClear(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.s.SetFault(Fault{Mode: Fault5xx})
	e.s.SetFault(Fault{Mode: Fault429, Route: RouteHealth, Times: 2})
	statuses := func() []int {
		return []int{e.request(t, "GET", "/health", "").status, e.backend(t, "GET", "/users", "").status}
	}
	for i, want := range [][]int{{429, 503}, {429, 503}, {503, 503}} {
		if got := statuses(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: statuses %v, want %v", i, got, want)
		}
	}
	e.s.ClearFaults()
	if got := statuses(); fmt.Sprint(got) != "[200 200]" {
		t.Errorf("after ClearFaults: %v", got)
	}
}

func TestCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.request(t, "GET", "/health", "")
	e.request(t, "GET", "/health", "")
	e.backend(t, "GET", "/users/1/details", "")
	e.request(t, "GET", "/users/1/details", "") // unauthenticated still counts
	e.backend(t, "DELETE", "/users/1/details", "")
	e.request(t, "GET", "/nope", "")
	e.request(t, "GET", "/.well-known/jwks.json", "")
	e.check(t, `{}`)
	want := map[string]int{
		RouteHealth:                         2,
		RouteUserDetails:                    2,
		"DELETE /users/{user_id}/details":   1,
		RouteUnknown:                        1,
		RouteJWKS:                           1,
		RouteAuthzCheck:                     1,
		RouteListUsers:                      0,
		"GET /users/{user_id}/sessions/x/y": 0,
	}
	for route, n := range want {
		if got := e.s.Calls(route); got != n {
			t.Errorf("Calls(%q) = %d, want %d", route, got, n)
		}
	}
	e.s.ResetCalls()
	if got := e.s.Calls(RouteHealth); got != 0 {
		t.Errorf("after ResetCalls: %d", got)
	}
}

func TestBackendRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{RequestsPerMinute: 3})
	// One request every 10 s: the window of any minute holds all three.
	for i := range 3 {
		if got := e.backend(t, "GET", "/users", ""); got.status != 200 {
			t.Fatalf("request %d = %d", i, got.status)
		}
		e.clock.Advance(10 * time.Second)
	}
	got := e.backend(t, "GET", "/users/1/details", "")
	// Wacht puts the gateway's milliseconds into a message saying seconds:
	// the first request leaves the window 30 s from now.
	if got.status != 429 || string(got.body) != errorJSON(429, "Rate limit exceeded. Retry after 30000 seconds") {
		t.Errorf("over budget = %d %s", got.status, got.body)
	}
	if h := got.header.Get("Retry-After"); h != "" {
		t.Errorf("Retry-After = %q, want none", h)
	}
	if got := e.request(t, "GET", "/health", ""); got.status != 200 {
		t.Errorf("health is limited: %d", got.status)
	}
	if got := e.request(t, "GET", "/users", ""); got.status != 401 {
		t.Errorf("unauthenticated request = %d, want 401 before the budget", got.status)
	}
	// A token bucket would have refilled by now; a sliding window has not.
	e.clock.Advance(20 * time.Second)
	if got := e.backend(t, "GET", "/users", ""); got.status != 429 {
		t.Errorf("50 s after the first request = %d, want 429", got.status)
	}
	e.clock.Advance(10 * time.Second)
	if got := e.backend(t, "GET", "/users", ""); got.status != 200 {
		t.Errorf("once the first request left the window = %d", got.status)
	}
	if got := e.backend(t, "GET", "/users", ""); got.status != 429 {
		t.Errorf("budget refilled too much: %d", got.status)
	}
	if n := e.s.RateLimited(); n != 3 {
		t.Errorf("RateLimited() = %d, want 3", n)
	}
}

func TestBackendLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{BackendLatency: 50 * time.Millisecond})
	start := time.Now()
	if got := e.backend(t, "GET", "/users", ""); got.status != 200 {
		t.Fatalf("request = %d", got.status)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("Backend API request answered after %v, want at least the 50ms latency", took)
	}
	e.s.SetBackendLatency(0)
	if got := e.backend(t, "GET", "/users", ""); got.status != 200 {
		t.Fatalf("request without latency = %d", got.status)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if err := e.s.AddAPIAuthApp(APIAuthApp{Slug: "app"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.s.AddAPIKey("app", APIKey{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				u, err := e.s.AddUser(User{FirstName: fmt.Sprint(i, j), Emails: []Email{{Email: fmt.Sprintf("%d.%d@example.com", i, j)}}})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.s.AddSignIn(u.ID, SignIn{}); err != nil {
					t.Error(err)
				}
				if err := e.s.UpdateUser(u.ID, func(u *User) { u.Disabled = true }); err != nil {
					t.Error(err)
				}
				e.backend(t, "GET", "/users/"+u.ID+"/details", "")
				e.backend(t, "GET", "/users?limit=5", "")
				e.backend(t, "POST", "/users/"+u.ID+"/sessions/revoke-all", "")
				e.check(t, checkBody(secret, ""))
				if _, err := e.s.MintToken(TokenClaims{UserID: u.ID, SessionID: "1"}); err != nil {
					t.Error(err)
				}
				if j == 5 && i == 0 {
					if err := e.s.RotateSigningKey(); err != nil {
						t.Error(err)
					}
					e.s.SetFault(Fault{Latency: time.Millisecond, Route: RouteJWKS, Times: 3})
				}
				e.request(t, "GET", "/.well-known/jwks.json", "")
			}
		})
	}
	wg.Wait()
	if got := e.s.Calls(RouteUserDetails); got != 80 {
		t.Errorf("details calls = %d, want 80", got)
	}
	if got := e.backend(t, "GET", "/users?limit=100", "").object(t)["data"].([]any); len(got) != 80 {
		t.Errorf("listed %d users, want 80", len(got))
	}
}
