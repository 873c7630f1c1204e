package wachtclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// failing answers status to the first n requests, then serves ok.
func failing(status, n int, ok []byte) (http.Handler, *atomic.Int64) {
	var hits atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) <= int64(n) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(`{"errors":[{"message":"try again","code":` + strconv.Itoa(status) + `}]}`))
			return
		}
		replyJSON(http.StatusOK, ok)(w, nil)
	}), &hits
}

// idempotentCalls are the calls that must be retried.
func idempotentCalls() map[string]func(context.Context, *Client) error {
	return map[string]func(context.Context, *Client) error{
		"GetUser":          func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "1"); return err },
		"ListUsers":        func(ctx context.Context, c *Client) error { _, err := c.ListUsers(ctx, ListUsersParams{}); return err },
		"ListUserSessions": func(ctx context.Context, c *Client) error { _, err := c.ListUserSessions(ctx, "1", false); return err },
		"ListAPIKeys":      func(ctx context.Context, c *Client) error { _, err := c.ListAPIKeys(ctx, "app", false); return err },
		"CheckAuthz": func(ctx context.Context, c *Client) error {
			_, err := c.CheckAuthz(ctx, testAuthzRequest())
			return err
		},
		"FetchJWKS": func(ctx context.Context, c *Client) error { _, err := c.FetchJWKS(ctx); return err },
		"Health":    func(ctx context.Context, c *Client) error { return c.Health(ctx) },
	}
}

// mutatingCalls are the calls that must never be retried.
func mutatingCalls() map[string]func(context.Context, *Client) error {
	return map[string]func(context.Context, *Client) error{
		"CreateAPIKey": func(ctx context.Context, c *Client) error {
			_, err := c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{Name: "n"})
			return err
		},
		"RotateAPIKey":      func(ctx context.Context, c *Client) error { _, err := c.RotateAPIKey(ctx, "app", "9"); return err },
		"RevokeAPIKey":      func(ctx context.Context, c *Client) error { return c.RevokeAPIKey(ctx, "app", "9", "") },
		"RevokeSignIn":      func(ctx context.Context, c *Client) error { return c.RevokeSignIn(ctx, "1", "2") },
		"RevokeAllSessions": func(ctx context.Context, c *Client) error { _, err := c.RevokeAllSessions(ctx, "1"); return err },
	}
}

func TestIdempotentCallsRetry(t *testing.T) {
	t.Parallel()
	// Any valid JSON object satisfies every idempotent call here except the
	// typed checks, so each call gets a body it accepts.
	okBodies := map[string]string{
		"GetUser": "user_details.json", "ListUsers": "users_list.json", "ListUserSessions": "sessions_list.json",
		"ListAPIKeys": "api_keys_list.json", "CheckAuthz": "authz_check_allowed.json", "FetchJWKS": "jwks.json",
		"Health": "health.json",
	}
	for name, call := range idempotentCalls() {
		for _, status := range []int{429, 502, 503, 504} {
			t.Run(name+"/"+http.StatusText(status), func(t *testing.T) {
				t.Parallel()
				// Fails twice, then succeeds on the third attempt.
				h, hits := failing(status, 2, fixture(t, okBodies[name]))
				c, _ := newTestClient(t, h, nil)
				if err := call(t.Context(), c); err != nil {
					t.Fatalf("call after 2 failures: %v", err)
				}
				if n := hits.Load(); n != 3 {
					t.Errorf("attempts = %d, want 3", n)
				}
			})
		}
	}
}

func TestRetriesGiveUpAfterMaxRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status     int
		maxRetries int
		want       int64
		sentinel   error
	}{
		{503, 0, 4, ErrUnavailable}, // default 3 retries
		{429, 2, 3, ErrRateLimited},
		{502, -1, 1, ErrUnavailable},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			h, hits := failing(tc.status, 1000, nil)
			c, _ := newTestClient(t, h, func(cfg *Config) { cfg.MaxRetries = tc.maxRetries })
			_, err := c.GetUser(t.Context(), "1")
			checkSentinels(t, err, tc.sentinel)
			if n := hits.Load(); n != tc.want {
				t.Errorf("attempts = %d, want %d", n, tc.want)
			}
		})
	}
}

func TestNoRetryOnAuthoritativeOr500(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 403, 404, 409, 422, 500} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			h, hits := failing(status, 1000, nil)
			c, _ := newTestClient(t, h, nil)
			if _, err := c.GetUser(t.Context(), "1"); err == nil {
				t.Fatal("GetUser succeeded, want error")
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("attempts = %d, want 1", n)
			}
		})
	}
}

func TestConnectionRefusedIsRetriedForReads(t *testing.T) {
	t.Parallel()
	tr := &countingTransport{next: http.DefaultTransport}
	cfg := testConfig(closedServerURL(t))
	cfg.HTTPClient = &http.Client{Transport: tr}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = c.GetUser(t.Context(), "1")
	checkSentinels(t, err, ErrUnavailable)
	if !IsTransient(err) {
		t.Errorf("IsTransient(%v) = false", err)
	}
	if n := tr.n.Load(); n != 4 {
		t.Errorf("attempts = %d, want 4", n)
	}
}

func TestMutatingCallsAreNeverRetried(t *testing.T) {
	t.Parallel()
	for name, call := range mutatingCalls() {
		for _, tc := range []struct {
			status int
			want   []error
		}{
			{500, []error{ErrUnavailable, ErrOutcomeUnknown}},
			{502, []error{ErrUnavailable, ErrOutcomeUnknown}},
			{503, []error{ErrUnavailable, ErrOutcomeUnknown}},
			{504, []error{ErrUnavailable, ErrOutcomeUnknown}},
			{429, []error{ErrRateLimited}},
			{404, []error{ErrNotFound}},
			{400, []error{ErrBadRequest}},
		} {
			t.Run(name+"/"+http.StatusText(tc.status), func(t *testing.T) {
				t.Parallel()
				h, hits := failing(tc.status, 1000, nil)
				c, _ := newTestClient(t, h, nil)
				err := call(t.Context(), c)
				checkSentinels(t, err, tc.want...)
				if n := hits.Load(); n != 1 {
					t.Errorf("attempts = %d, want exactly 1", n)
				}
			})
		}
	}
}

func TestMutatingCallOutcome(t *testing.T) {
	t.Parallel()
	create := func(ctx context.Context, c *Client) error {
		_, err := c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{Name: "n"})
		return err
	}

	t.Run("connection_refused_is_known_not_sent", func(t *testing.T) {
		t.Parallel()
		tr := &countingTransport{next: http.DefaultTransport}
		cfg := testConfig(closedServerURL(t))
		cfg.HTTPClient = &http.Client{Transport: tr}
		c, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		err = create(t.Context(), c)
		checkSentinels(t, err, ErrUnavailable)
		if n := tr.n.Load(); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})

	t.Run("connection_reset_after_request", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		c, _ := newTestClient(t, h, nil)
		err := create(t.Context(), c)
		checkSentinels(t, err, ErrUnavailable, ErrOutcomeUnknown)
		if n := hits.Load(); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})

	t.Run("timeout_after_request", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var hits atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		c, _ := newTestClient(t, h, nil)
		defer close(release)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := create(ctx, c)
		// The caller's deadline ended the call, not Wacht: it may have
		// acted, but it is not reported unavailable.
		checkSentinels(t, err, ErrOutcomeUnknown)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("attempts = %d, want 1", n)
		}
	})

	t.Run("unreadable_success", func(t *testing.T) {
		t.Parallel()
		c, _ := newTestClient(t, replyJSON(200, []byte(`{"id":"1"}`)), nil)
		err := create(t.Context(), c)
		checkSentinels(t, err, ErrInvalidResponse, ErrOutcomeUnknown)
	})
}

func TestCancelStopsRetries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var hits atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.MaxRetries = 50 })
	_, err := c.GetUser(ctx, "1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestRetryThatCannotFinishBeforeTheDeadlineIsNotWaitedFor(t *testing.T) {
	t.Parallel()
	h, hits := failing(http.StatusServiceUnavailable, 1000, nil)
	c, _ := newTestClient(t, h, func(cfg *Config) {
		cfg.RetryBaseDelay = time.Minute
		cfg.RetryMaxDelay = time.Minute
	})
	const deadline = 5 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	_, err := c.GetUser(ctx, "1")
	elapsed := time.Since(start)
	// The retry would come after the deadline: the call ends at once with
	// Wacht's answer, not at the deadline with the context's error.
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want ErrUnavailable and not the deadline", err)
	}
	if !IsTransient(err) {
		t.Errorf("IsTransient(%v) = false", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
	if elapsed > deadline/2 {
		t.Errorf("call took %v of its %v: it waited for a retry that could not be made in time", elapsed, deadline)
	}
}

func TestRetryAfterIsAMinimumDelay(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		replyJSON(200, fixture(t, "health.json"))(w, nil)
	})
	const capDelay = 80 * time.Millisecond
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.RetryMaxDelay = capDelay })
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("attempts = %d, want 2", len(times))
	}
	// The base delay is 1 ms, so only the (capped) Retry-After explains a
	// gap of at least capDelay; the cap keeps it far below an hour.
	if gap := times[1].Sub(times[0]); gap < capDelay || gap > time.Minute {
		t.Errorf("gap between attempts = %v, want at least %v and capped", gap, capDelay)
	}
}

func TestRetryBackOffFloor(t *testing.T) {
	t.Parallel()
	b := newRetryBackOff(time.Millisecond, 4*time.Millisecond)
	b.Reset()
	b.floor = time.Second
	if got := b.NextBackOff(); got != time.Second {
		t.Errorf("NextBackOff with floor = %v, want 1s", got)
	}
	for range 10 {
		if got := b.NextBackOff(); got <= 0 || got > 6*time.Millisecond {
			t.Errorf("NextBackOff = %v, want within (0, 6ms] (max 4ms plus 50%% jitter)", got)
		}
	}
}
