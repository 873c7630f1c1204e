package sessiontoken_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

func TestRotationPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, oldKey))
	clk := newFakeClock(baseTime)
	v := newVerifier(t, f, clk, nil)
	ctx := context.Background()

	oldTok := oldKey.mint(t, validClaims(baseTime))
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatalf("Verify(old key token) before rotation: %v", err)
	}

	// The provider rotates: the old key is gone, a new one signs.
	f.serve(jwksOf(t, newKey), nil)
	clk.Advance(sessiontoken.DefaultMinRefetchInterval)
	newTok := newKey.mint(t, validClaims(clk.Now()))
	got, err := v.Verify(ctx, newTok)
	if err != nil {
		t.Fatalf("Verify(new key token) after rotation: %v", err)
	}
	if got.Subject != "1234567890" {
		t.Errorf("Subject = %q, want 1234567890", got.Subject)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (start + one refetch)", n)
	}

	// The token verified by the removed key was cached; it must not
	// outlive its key.
	_, err = v.Verify(ctx, oldTok)
	if r, _ := sessiontoken.ReasonOf(err); r != sessiontoken.ReasonBadSignature {
		t.Errorf("Verify(old key token) after rotation: err = %v, want bad_signature", err)
	}
}

func TestRotationOverlapKeepsCachedTokens(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, oldKey))
	clk := newFakeClock(baseTime)
	var obs counter
	v := newVerifier(t, f, clk, obs.hook)
	ctx := context.Background()
	oldTok := oldKey.mint(t, validClaims(baseTime))
	first, err := v.Verify(ctx, oldTok)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(jwksOf(t, newKey, oldKey), nil)
	if err := v.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	again, err := v.Verify(ctx, oldTok)
	if err != nil {
		t.Fatalf("Verify after adding a key: %v", err)
	}
	if !cmp.Equal(again, first) || obs.hits.Load() != 1 {
		t.Errorf("cached entry lost when a key was added (same=%v hits=%d)", cmp.Equal(again, first), obs.hits.Load())
	}
	if _, err := v.Verify(ctx, newKey.mint(t, validClaims(baseTime))); err != nil {
		t.Errorf("Verify(new key token): %v", err)
	}
}

func TestUnknownKIDConcurrentRefetchCoalesced(t *testing.T) {
	t.Parallel()
	const callers = 1000
	tests := []struct {
		name       string
		serveNew   bool // whether the refetched set holds the new kid
		wantReason sessiontoken.Reason
	}{
		{name: "kid_appears", serveNew: true},
		{name: "kid_stays_unknown", serveNew: false, wantReason: sessiontoken.ReasonUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			known, fresh := newTestKey(t, "1"), newTestKey(t, "2")
			f := newFakeFetcher(jwksOf(t, known))
			clk := newFakeClock(baseTime)
			v := newVerifier(t, f, clk, nil)
			clk.Advance(sessiontoken.DefaultMinRefetchInterval)

			tokens := make([]string, callers)
			for i := range tokens {
				tokens[i] = fresh.mintKID(t, with(validClaims(baseTime), map[string]any{"sub": fmt.Sprint(i + 1)}))
			}
			gate := make(chan struct{})
			f.mu.Lock()
			f.gate = gate
			if tt.serveNew {
				f.body = jwksOf(t, known, fresh)
			}
			f.mu.Unlock()

			errs := make([]error, callers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range callers {
				wg.Go(func() {
					<-start
					_, errs[i] = v.Verify(context.Background(), tokens[i])
				})
			}
			close(start)
			waitFor(t, func() bool { return f.calls.Load() >= 2 })
			time.Sleep(50 * time.Millisecond) // let the callers pile up on the fetch
			close(gate)
			wg.Wait()

			if n := f.calls.Load(); n != 2 {
				t.Errorf("fetches = %d, want 2 (start + one coalesced refetch)", n)
			}
			reasons := map[sessiontoken.Reason]int{}
			for _, err := range errs {
				if err != nil {
					r, _ := sessiontoken.ReasonOf(err)
					reasons[r]++
				}
			}
			want := map[sessiontoken.Reason]int{}
			if tt.wantReason != 0 {
				want[tt.wantReason] = callers
			}
			if diff := cmp.Diff(want, reasons); diff != "" {
				t.Errorf("refusals by reason (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadSignatureRefetchRateLimited(t *testing.T) {
	t.Parallel()
	good, forger := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, good))
	clk := newFakeClock(baseTime)
	const interval = 10 * time.Second
	v := newVerifier(t, f, clk, func(c *sessiontoken.Config) { c.MinRefetchInterval = interval })
	ctx := context.Background()

	steps := []struct {
		advance     time.Duration
		tokens      int
		wantFetches int64 // total, including the one at start
	}{
		{advance: 0, tokens: 5, wantFetches: 1},             // within the interval of the start fetch
		{advance: interval, tokens: 20, wantFetches: 2},     // one refetch for the whole burst
		{advance: interval / 2, tokens: 20, wantFetches: 2}, // still limited
		{advance: interval / 2, tokens: 20, wantFetches: 3}, // a full interval later: one more
		{advance: 3 * interval, tokens: 1, wantFetches: 4},
	}
	n := 0
	for i, s := range steps {
		clk.Advance(s.advance)
		for range s.tokens {
			n++
			tok := forger.mint(t, with(validClaims(clk.Now()), map[string]any{"sub": fmt.Sprint(n)}))
			_, err := v.Verify(ctx, tok)
			if r, _ := sessiontoken.ReasonOf(err); r != sessiontoken.ReasonBadSignature {
				t.Fatalf("step %d: Verify(forged) err = %v, want bad_signature", i, err)
			}
		}
		if got := f.calls.Load(); got != s.wantFetches {
			t.Errorf("step %d: fetches = %d, want %d", i, got, s.wantFetches)
		}
	}
}

func TestNotReadyUntilKeysLoad(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	f := newFakeFetcher(nil)
	f.serve(nil, errors.New("unreachable"))
	clk := newFakeClock(baseTime)
	v, err := sessiontoken.New(sessiontoken.Config{Issuer: testIssuer, Fetcher: f, Now: clk.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if v.Ready() {
		t.Fatal("Ready() = true before any key set")
	}
	tok := key.mint(t, validClaims(baseTime))
	if _, err := v.Verify(ctx, tok); !errors.Is(err, sessiontoken.ErrNoKeys) {
		t.Fatalf("Verify without keys: err = %v, want ErrNoKeys", err)
	}
	if _, ok := sessiontoken.ReasonOf(sessiontoken.ErrNoKeys); ok {
		t.Error("ReasonOf(ErrNoKeys) reports a reason; it must not blame the token")
	}
	f.serve(jwksOf(t, key), nil)
	clk.Advance(sessiontoken.DefaultMinRefetchInterval)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("Verify once the key set is reachable: %v", err)
	}
	if !v.Ready() {
		t.Error("Ready() = false after a successful on-demand fetch")
	}
}

func TestVerifyReturnsWhenContextEndsDuringFetch(t *testing.T) {
	t.Parallel()
	known, fresh := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, known))
	clk := newFakeClock(baseTime)
	v := newVerifier(t, f, clk, nil)
	clk.Advance(time.Minute)
	gate := make(chan struct{})
	defer close(gate)
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, fresh.mintKID(t, validClaims(baseTime)))
		done <- err
	}()
	waitFor(t, func() bool { return f.calls.Load() == 2 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Verify err = %v, want context.Canceled", err)
		}
		if _, ok := sessiontoken.ReasonOf(err); ok {
			t.Errorf("ReasonOf(%v) reports a reason for a cancelled call", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Verify did not return after its context ended")
	}
}

func TestRunRefreshesOnSchedule(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	f := newFakeFetcher(nil)
	f.serve(nil, errors.New("down"))
	v, err := sessiontoken.New(sessiontoken.Config{
		Issuer:             testIssuer,
		Fetcher:            f,
		Logger:             quietLogger(),
		RefreshInterval:    30 * time.Millisecond,
		MinRefetchInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		v.Run(ctx)
		close(stopped)
	}()
	// Not ready at start: Run retries quickly until the key set loads.
	waitFor(t, func() bool { return f.calls.Load() >= 2 })
	f.serve(jwksOf(t, key), nil)
	waitFor(t, v.Ready)
	// Then it keeps refreshing on the fixed schedule.
	n := f.calls.Load()
	waitFor(t, func() bool { return f.calls.Load() >= n+2 })
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	f := newFakeFetcher(nil)
	tests := []struct {
		name string
		cfg  sessiontoken.Config
	}{
		{name: "no_issuer", cfg: sessiontoken.Config{Fetcher: f}},
		{name: "no_fetcher", cfg: sessiontoken.Config{Issuer: testIssuer}},
		{name: "negative_leeway", cfg: sessiontoken.Config{Issuer: testIssuer, Fetcher: f, Leeway: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if v, err := sessiontoken.New(tt.cfg); err == nil || v != nil {
				t.Errorf("New(%s) = %v, %v; want an error", tt.name, v, err)
			}
		})
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
