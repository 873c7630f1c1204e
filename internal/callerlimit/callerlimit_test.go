package callerlimit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/authn"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callerlimit"
	"github.com/authsvc/authsvc/internal/callers"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counts records the observer's calls.
type counts struct {
	mu       sync.Mutex
	loads    map[string]int
	inFlight map[string]int
}

func (c *counts) ObserveCallerLoad(caller string, o callerlimit.Outcome) {
	c.mu.Lock()
	c.loads[caller+" "+string(o)]++
	c.mu.Unlock()
}

func (c *counts) ObserveCallerLoadsInFlight(caller string, d int) {
	c.mu.Lock()
	c.inFlight[caller] += d
	c.mu.Unlock()
}

func newLimiter(t *testing.T) (*callerlimit.Limiter, *clock, *counts) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	obs := &counts{loads: map[string]int{}, inFlight: map[string]int{}}
	l, err := callerlimit.New(callerlimit.Config{Now: clk.now, MaxWait: 20 * time.Millisecond, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return l, clk, obs
}

func as(c *callers.Caller) context.Context {
	return authn.SetInfo(t0(), c)
}

func t0() context.Context { return context.TODO() }

// admitN admits n loads for ctx, releasing each, and returns how many
// were admitted and whether every refusal was ErrExhausted.
func admitN(t *testing.T, l *callerlimit.Limiter, ctx context.Context, n int) int {
	t.Helper()
	ok := 0
	for range n {
		release, err := l.Admit(ctx)
		if err != nil {
			if !errors.Is(err, callerlimit.ErrExhausted) || !errors.Is(err, cache.ErrDeferred) {
				t.Fatalf("refusal %v does not wrap ErrExhausted and cache.ErrDeferred", err)
			}
			continue
		}
		release()
		ok++
	}
	return ok
}

func TestRatePerCaller(t *testing.T) {
	l, clk, obs := newLimiter(t)
	reports := as(&callers.Caller{Name: "reports", Method: callers.MethodToken, Limits: &callers.Limits{WachtCallsPerMinute: 30}})
	orders := as(&callers.Caller{Name: "orders", Method: callers.MethodToken})

	tests := []struct {
		name    string
		ctx     context.Context
		advance time.Duration
		n, want int
	}{
		{"reports spends its minute", reports, 0, 50, 30},
		{"orders keeps the default", orders, 0, callers.DefaultWachtCallsPerMinute + 5, callers.DefaultWachtCallsPerMinute},
		{"reports earns one call per 2s", reports, 10 * time.Second, 10, 5},
		{"a minute later reports has its minute again", reports, time.Minute, 40, 30},
	}
	for _, tt := range tests {
		clk.advance(tt.advance)
		if got := admitN(t, l, tt.ctx, tt.n); got != tt.want {
			t.Errorf("%s: admitted %d of %d, want %d", tt.name, got, tt.n, tt.want)
		}
	}
	want := map[string]int{
		"reports admitted": 65, "reports refused_rate": 35,
		"orders admitted": callers.DefaultWachtCallsPerMinute, "orders refused_rate": 5,
	}
	if d := cmp.Diff(want, obs.loads); d != "" {
		t.Errorf("observed loads (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{"reports": 0, "orders": 0}, obs.inFlight); d != "" {
		t.Errorf("loads in flight after all ended (-want +got):\n%s", d)
	}
}

func TestConcurrentLoads(t *testing.T) {
	l, _, obs := newLimiter(t)
	reports := as(&callers.Caller{Name: "reports", Method: callers.MethodToken, Limits: &callers.Limits{ConcurrentLoads: 2}})
	orders := as(&callers.Caller{Name: "orders", Method: callers.MethodCert, Limits: &callers.Limits{ConcurrentLoads: 1}})

	r1, err := l.Admit(reports)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Admit(reports)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(reports); !errors.Is(err, callerlimit.ErrExhausted) {
		t.Fatalf("third concurrent load of reports: got %v, want ErrExhausted", err)
	}
	o1, err := l.Admit(orders)
	if err != nil {
		t.Fatalf("orders is not affected by reports: %v", err)
	}
	o1()

	// A load that waits gets the slot another one frees.
	done := make(chan error, 1)
	go func() {
		release, err := l.Admit(reports)
		if err == nil {
			release()
		}
		done <- err
	}()
	r1()
	if err := <-done; err != nil {
		t.Errorf("a load waiting for a slot that frees: %v", err)
	}
	r2()
	r2() // a second release changes nothing
	if got := admitN(t, l, reports, 3); got != 3 {
		t.Errorf("after the loads ended, admitted %d of 3 sequential loads", got)
	}
	if got := obs.loads["reports refused_concurrency"]; got != 1 {
		t.Errorf("reports refused_concurrency = %d, want 1", got)
	}
	if got := obs.inFlight["reports"]; got != 0 {
		t.Errorf("reports in flight = %d after every load ended", got)
	}
}

func TestWhoIsCharged(t *testing.T) {
	tests := []struct {
		name      string
		ctx       context.Context
		n, want   int
		wantLabel string
	}{
		{"open mode stands for everyone and is not limited",
			as(&callers.Caller{Name: callers.AnonymousName, Method: callers.MethodOpen}),
			callers.DefaultWachtCallsPerMinute * 2, callers.DefaultWachtCallsPerMinute * 2, callers.AnonymousName},
		{"no caller takes the defaults under one label", t0(),
			callers.DefaultWachtCallsPerMinute + 1, callers.DefaultWachtCallsPerMinute, callers.AnonymousName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, obs := newLimiter(t)
			if got := admitN(t, l, tt.ctx, tt.n); got != tt.want {
				t.Errorf("admitted %d of %d, want %d", got, tt.n, tt.want)
			}
			if got := obs.loads[tt.wantLabel+" admitted"]; got != tt.want {
				t.Errorf("%s admitted = %d, want %d (all: %v)", tt.wantLabel, got, tt.want, obs.loads)
			}
		})
	}
}

func TestLoaderChargesRequestsNotRefreshes(t *testing.T) {
	l, clk, obs := newLimiter(t)
	var mu sync.Mutex
	calls := 0
	refreshed := make(chan struct{}, 10)
	c, err := cache.New(cache.Config[int]{
		Kind: "user",
		Load: callerlimit.Loader(l, func(ctx context.Context, _ string) (int, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			if cache.IsRefresh(ctx) {
				refreshed <- struct{}{}
			}
			return 7, nil
		}),
		TTL:    time.Minute,
		MaxAge: time.Hour,
		Now:    clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reports := as(&callers.Caller{Name: "reports", Method: callers.MethodToken, Limits: &callers.Limits{WachtCallsPerMinute: 1}})

	if r, err := c.Get(reports, "1"); err != nil || r.Value != 7 {
		t.Fatalf("first miss: %v, %v", r.Value, err)
	}
	if _, err := c.Get(reports, "2"); !errors.Is(err, callerlimit.ErrExhausted) {
		t.Fatalf("second miss over a limit of 1 a minute: got %v, want ErrExhausted", err)
	}
	if r, err := c.Get(reports, "1"); err != nil || r.Value != 7 {
		t.Fatalf("a hit over the limit is served: %v, %v", r.Value, err)
	}
	// The caller spends the call it earned since; past the TTL the entry
	// is then served and refreshed in the background, which no caller is
	// charged for.
	clk.advance(90 * time.Second)
	if _, err := c.Get(reports, "3"); err != nil {
		t.Fatalf("miss after a minute: %v", err)
	}
	if r, err := c.Get(reports, "1"); err != nil || r.Value != 7 {
		t.Fatalf("read past the TTL: %v, %v", r.Value, err)
	}
	select {
	case <-refreshed:
	case <-time.After(5 * time.Second):
		t.Fatal("no background refresh")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("loader called %d times, want 3 (2 admitted misses, 1 refresh)", calls)
	}
	if d := cmp.Diff(map[string]int{"reports admitted": 2, "reports refused_rate": 1}, obs.loads); d != "" {
		t.Errorf("observed loads (-want +got):\n%s", d)
	}
}

func TestRefusalIsNotSharedWithOtherCallers(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := callerlimit.New(callerlimit.Config{Now: clk.now, MaxWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config[string]{
		Kind: "user",
		Load: callerlimit.Loader(l, func(_ context.Context, key string) (string, error) { return "v" + key, nil }),
		Now:  clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reports := as(&callers.Caller{Name: "reports", Method: callers.MethodToken, Limits: &callers.Limits{ConcurrentLoads: 1}})
	orders := as(&callers.Caller{Name: "orders", Method: callers.MethodToken})

	// reports' one concurrent load is busy, so its miss of "1" waits and
	// is refused; orders misses "1" meanwhile and shares that load.
	busy, err := l.Admit(reports)
	if err != nil {
		t.Fatal(err)
	}
	defer busy()
	refused := make(chan error, 1)
	go func() {
		_, err := c.Get(reports, "1")
		refused <- err
	}()
	time.Sleep(50 * time.Millisecond)
	r, err := c.Get(orders, "1")
	if err != nil || r.Value != "v1" {
		t.Errorf("orders, sharing a load refused to reports: got %q, %v; want v1", r.Value, err)
	}
	if err := <-refused; !errors.Is(err, callerlimit.ErrExhausted) {
		t.Errorf("reports: got %v, want ErrExhausted", err)
	}
}
