package wachtclient

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"
)

// maxAdmitted is how many requests a budget of rpm with burst may admit in
// elapsed: the burst plus the steady refill, which New lowers by the burst.
func maxAdmitted(rpm, burst int, elapsed time.Duration) int64 {
	perSecond := float64(rpm-burst) / 60
	return int64(burst) + int64(math.Ceil(elapsed.Seconds()*perSecond))
}

func TestBudgetBoundsConcurrentCalls(t *testing.T) {
	t.Parallel()
	const rpm, burst, callers = 60, 4, 24
	h, hits := counting(replyJSON(http.StatusOK, fixture(t, "user_details.json")))
	c, _ := newTestClient(t, h, func(cfg *Config) {
		cfg.RequestsPerMinute = rpm
		cfg.Burst = burst
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		ok, budget int
	)
	for range callers {
		wg.Go(func() {
			_, err := c.GetUser(ctx, "73012345678901234")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRateLimited) && IsTransient(err):
				budget++
			default:
				t.Errorf("GetUser: %v", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := hits.Load()
	if n < burst || n > maxAdmitted(rpm, burst, elapsed) {
		t.Errorf("server saw %d requests in %v, want between %d and %d", n, elapsed, burst, maxAdmitted(rpm, burst, elapsed))
	}
	if int64(ok) != n || ok+budget != callers {
		t.Errorf("ok = %d, refused by budget = %d, server hits = %d, callers = %d", ok, budget, n, callers)
	}
}

func TestRetriesConsumeBudget(t *testing.T) {
	t.Parallel()
	const rpm, burst = 60, 2
	h, hits := failing(http.StatusServiceUnavailable, 1000, nil)
	c, _ := newTestClient(t, h, func(cfg *Config) {
		cfg.RequestsPerMinute = rpm
		cfg.Burst = burst
		cfg.MaxRetries = 10
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetUser(ctx, "1")
	elapsed := time.Since(start)
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("error = %v, want ErrRateLimited (budget) and ErrUnavailable (last answer)", err)
	}
	if n := hits.Load(); n < burst || n > maxAdmitted(rpm, burst, elapsed) {
		t.Errorf("attempts = %d in %v, want between %d and %d", n, elapsed, burst, maxAdmitted(rpm, burst, elapsed))
	}
}

func TestUnbudgetedCallsDoNotConsumeBudget(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/api/health", replyJSON(200, fixture(t, "health.json")))
	mux.Handle("/gw/", replyJSON(200, fixture(t, "authz_check_allowed.json")))
	mux.Handle("/fapi/", replyJSON(200, fixture(t, "jwks.json")))
	mux.Handle("/api/users/", replyJSON(200, fixture(t, "user_details.json")))
	h, hits := counting(mux)
	c, _ := newTestClient(t, h, func(cfg *Config) {
		cfg.RequestsPerMinute = 60
		cfg.Burst = 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for range 5 {
		if err := c.Health(ctx); err != nil {
			t.Fatalf("Health: %v", err)
		}
		if _, err := c.CheckAuthz(ctx, testAuthzRequest()); err != nil {
			t.Fatalf("CheckAuthz: %v", err)
		}
		if _, err := c.FetchJWKS(ctx); err != nil {
			t.Fatalf("FetchJWKS: %v", err)
		}
	}
	// The single token of the budget is still there for the Backend API.
	if _, err := c.GetUser(ctx, "1"); err != nil {
		t.Fatalf("first GetUser: %v", err)
	}
	// The next token is about a second away: a call that may wait only a
	// moment is refused without being sent.
	short, cancelShort := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancelShort()
	if _, err := c.GetUser(short, "1"); !errors.Is(err, ErrRateLimited) {
		t.Errorf("second GetUser error = %v, want ErrRateLimited from the local budget", err)
	}
	if n := hits.Load(); n != 16 {
		t.Errorf("server saw %d requests, want 16", n)
	}
}

func TestBudgetConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rpm     int
		burst   int
		wantErr bool
	}{
		{"defaults", 0, 0, false},
		{"one_per_minute", 1, 0, false},
		{"burst_equals_rpm", 10, 10, false},
		{"burst_above_rpm", 10, 11, true},
		{"negative_rpm", -1, 0, true},
		{"negative_burst", 10, -1, true},
	} {
		_, err := New(Config{APIURL: "https://api.wacht.dev", RequestsPerMinute: tc.rpm, Burst: tc.burst})
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: New error = %v, want error %t", tc.name, err, tc.wantErr)
		}
	}
}
