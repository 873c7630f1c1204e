package wachtclient

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// recordingLimiter admits or refuses every request and records what each
// admitted request reported.
type recordingLimiter struct {
	refuse error
	mu     sync.Mutex
	admits int
	status []int
}

func (l *recordingLimiter) Admit(context.Context) (func(int, time.Duration), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse != nil {
		return nil, l.refuse
	}
	l.admits++
	return func(status int, _ time.Duration) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.status = append(l.status, status)
	}, nil
}

func TestLimiterSeesEveryAttemptAndItsOutcome(t *testing.T) {
	t.Parallel()
	t.Run("answers", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"errors":[{"message":"Rate limit exceeded. Retry after 60 seconds","code":429}]}`))
				return
			}
			replyJSON(http.StatusOK, fixture(t, "user_details.json")).ServeHTTP(w, r)
		})
		lim := &recordingLimiter{}
		c, _ := newTestClient(t, h, func(cfg *Config) { cfg.Limiter = lim })
		if _, err := c.GetUser(t.Context(), "1"); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if diff := cmp.Diff([]int{429, 200}, lim.status); diff != "" || lim.admits != 2 {
			t.Errorf("admits = %d, outcomes (-want +got):\n%s", lim.admits, diff)
		}
	})
	t.Run("not_sent", func(t *testing.T) {
		t.Parallel()
		lim := &recordingLimiter{}
		c, srv := newTestClient(t, http.NotFoundHandler(), func(cfg *Config) {
			cfg.Limiter = lim
			cfg.MaxRetries = -1
		})
		srv.Close() // nothing listens: the request never leaves
		if _, err := c.GetUser(t.Context(), "1"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("GetUser error = %v, want ErrUnavailable", err)
		}
		if diff := cmp.Diff([]int{-1}, lim.status); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		h, hits := counting(replyJSON(http.StatusOK, fixture(t, "user_details.json")))
		lim := &recordingLimiter{refuse: errors.New("no budget")}
		c, _ := newTestClient(t, h, func(cfg *Config) { cfg.Limiter = lim })
		_, err := c.GetUser(t.Context(), "1")
		if !errors.Is(err, ErrRateLimited) || !IsTransient(err) || errors.Is(err, ErrUnavailable) {
			t.Errorf("GetUser error = %v, want a transient ErrRateLimited", err)
		}
		if strings.Contains(err.Error(), "unreachable") {
			t.Errorf("GetUser error %q calls Wacht unreachable; it was never asked", err)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("server saw %d requests, want none", n)
		}
	})
}

func TestAbandonedCallIsNotReportedUnavailable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	lim := &recordingLimiter{}
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.Limiter = lim })
	defer close(release)
	// Long enough for the request to reach the server on a loaded
	// machine: one that never left is a different outcome (-1).
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := c.GetUser(ctx, "1")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Errorf("GetUser error = %v, want the context's deadline and not ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "unreachable") {
		t.Errorf("GetUser error %q calls Wacht unreachable", err)
	}
	if diff := cmp.Diff([]int{0}, lim.status); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}
