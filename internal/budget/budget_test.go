package budget

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// The Wacht client admits its requests through a Budget.
var _ wachtclient.Limiter = (*Budget)(nil)

// deployment builds n replicas' budgets over one ledger: Postgres when
// shared, one process's memory otherwise (then n must be 1).
type deployment struct {
	name   string
	shared bool
}

var deployments = []deployment{{"memory", false}, {"postgres", true}}

func newReplicas(t *testing.T, d deployment, n int, cfg Config) []*Budget {
	t.Helper()
	var pool *pgxpool.Pool
	if d.shared {
		pool = pgtest.NewPool(t)
	} else if n != 1 {
		t.Fatalf("a deployment without Postgres has one replica, not %d", n)
	}
	out := make([]*Budget, n)
	for i := range out {
		c := cfg
		c.Pool = pool
		b, err := New(c)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(b.Close)
		out[i] = b
	}
	return out
}

// spend admits one call as class c and reports it answered at once.
func spend(ctx context.Context, b *Budget, c Class) error {
	done, err := b.Admit(WithClass(ctx, c))
	if err != nil {
		return err
	}
	done(200, time.Millisecond)
	return nil
}

func TestExhaustedForegroundIsAnsweredWithinItsBound(t *testing.T) {
	t.Parallel()
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			const wait = 100 * time.Millisecond
			b := newReplicas(t, d, 1, Config{RequestsPerMinute: 5, Window: 30 * time.Second, Wait: wait})[0]
			for i := range 5 {
				if err := spend(t.Context(), b, Foreground); err != nil {
					t.Fatalf("call %d within the budget: %v", i, err)
				}
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err := spend(ctx, b, Foreground)
			took := time.Since(start)
			if !errors.Is(err, ErrExhausted) {
				t.Errorf("call over the budget: error %v, want ErrExhausted", err)
			}
			// The bound plus scheduling slack on a loaded machine, far
			// below the caller's 2 s deadline.
			if took < wait || took > wait+400*time.Millisecond {
				t.Errorf("call over the budget answered after %v, want about %v", took, wait)
			}
		})
	}
}

func TestNoSlotThatCannotFinishBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			const latency = 300 * time.Millisecond
			b := newReplicas(t, d, 1, Config{RequestsPerMinute: 2, Window: 1500 * time.Millisecond,
				LeaseTTL: 200 * time.Millisecond, Latency: latency, WriteWait: 5 * time.Second})[0]
			need := b.Latency()
			if need < latency {
				t.Fatalf("Latency() = %v, want at least the initial estimate %v", need, latency)
			}

			// Too little time left: refused at once, before any waiting.
			short, cancel := context.WithTimeout(t.Context(), latency/2)
			defer cancel()
			start := time.Now()
			if err := spend(short, b, Write); !errors.Is(err, ErrNoTime) {
				t.Errorf("call with %v left: error %v, want ErrNoTime", latency/2, err)
			}
			if took := time.Since(start); took > 50*time.Millisecond {
				t.Errorf("call with too little time left answered after %v, want at once", took)
			}

			// Spend the budget; the next token frees about 1.5 s later.
			for range 2 {
				if err := spend(t.Context(), b, Write); err != nil {
					t.Fatalf("call within the budget: %v", err)
				}
			}
			// A write may wait 5 s, but its deadline in 1 s leaves no
			// slot that can finish: refused before deadline-need.
			ctx, cancel2 := context.WithTimeout(t.Context(), time.Second)
			defer cancel2()
			dl, _ := ctx.Deadline()
			done, err := b.Admit(WithClass(ctx, Write))
			if err == nil {
				left := time.Until(dl)
				done(200, time.Millisecond)
				if left < latency {
					t.Errorf("admitted with %v before the deadline, less than the %v a call needs", left, latency)
				}
			} else if !errors.Is(err, ErrExhausted) {
				t.Errorf("error %v, want ErrExhausted", err)
			}
			if ctx.Err() != nil {
				t.Errorf("Admit returned after the caller's deadline: the call could not have finished")
			}

			// With time enough, the write waits for the window to free.
			long, cancel3 := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel3()
			if err := spend(long, b, Write); err != nil {
				t.Errorf("write with time to wait for the window: %v", err)
			}
		})
	}
}

func TestCallerDeadlineBoundsASharedLoad(t *testing.T) {
	t.Parallel()
	const latency = 300 * time.Millisecond
	b := newReplicas(t, deployments[0], 1, Config{RequestsPerMinute: 10, Latency: latency})[0]
	// A load shared by callers runs on a context of its own, with time
	// enough; the caller it was started for has less than Wacht takes.
	load, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name   string
		caller time.Duration
		want   error
	}{
		{"caller_out_of_time", latency / 2, ErrNoTime},
		{"caller_with_time", 2 * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := WithCallerDeadline(load, time.Now().Add(tt.caller))
			start := time.Now()
			err := spend(ctx, b, Foreground)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if took := time.Since(start); took > latency {
				t.Errorf("answered after %v, want at once", took)
			}
		})
	}
}

func TestClassesAreAdmittedByPriority(t *testing.T) {
	t.Parallel()
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			const limit = 6
			b := newReplicas(t, d, 1, Config{RequestsPerMinute: limit, Window: 1500 * time.Millisecond,
				LeaseTTL: 100 * time.Millisecond, RefreshReserve: 1,
				Wait: 5 * time.Second, RefreshWait: 5 * time.Second})[0]
			for range limit {
				if err := spend(t.Context(), b, Foreground); err != nil {
					t.Fatalf("call within the budget: %v", err)
				}
			}
			var (
				mu  sync.Mutex
				got = map[Class]int{}
				wg  sync.WaitGroup
			)
			// The window frees its 6 tokens about 1.9 s from now, the
			// next ones no sooner than 3.4 s: the waiters give up at 2.8 s.
			ctx, cancel := context.WithTimeout(t.Context(), 2800*time.Millisecond)
			defer cancel()
			// The lowest classes queue first, so that only priority can
			// put the others ahead of them.
			for _, c := range []Class{Refresh, Refresh, Revocation, Revocation, Revocation, Revocation, Foreground, Foreground, Write} {
				wg.Go(func() {
					if err := spend(ctx, b, c); err == nil {
						mu.Lock()
						got[c]++
						mu.Unlock()
					}
				})
				time.Sleep(20 * time.Millisecond)
			}
			wg.Wait()
			// Six tokens for nine waiters: the write, both foreground
			// loads and three of the four revocation reloads; nothing for
			// refresh, which must leave a reserve of 1.
			want := map[Class]int{Write: 1, Foreground: 2, Revocation: 3}
			if !maps.Equal(got, want) {
				t.Errorf("admitted by class %v, want %v", got, want)
			}
		})
	}
}

// TestBudgetHoldsAcrossReplicas drives three replicas on one database,
// each with callers that ask for more than the budget, and checks every
// window of the budget's length: together they never exceed it, and
// they spend most of it.
func TestBudgetHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	const (
		limit    = 30
		window   = time.Second
		run      = 3500 * time.Millisecond
		replicas = 3
	)
	bs := newReplicas(t, deployment{"postgres", true}, replicas,
		Config{RequestsPerMinute: limit, Window: window, LeaseTTL: 150 * time.Millisecond, Wait: 50 * time.Millisecond})
	var (
		mu    sync.Mutex
		times []time.Time
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(t.Context(), run)
	defer cancel()
	for i, b := range bs {
		// One replica asks more than the others: an idle share goes to
		// whoever needs it.
		callers := 2
		if i == 0 {
			callers = 6
		}
		for range callers {
			wg.Go(func() {
				for ctx.Err() == nil {
					done, err := b.Admit(ctx)
					if err != nil {
						continue
					}
					mu.Lock()
					times = append(times, time.Now())
					mu.Unlock()
					time.Sleep(5 * time.Millisecond) // the call
					done(200, 5*time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(times, time.Time.Compare)
	most := 0
	for i := range times {
		j, _ := slices.BinarySearchFunc(times, times[i].Add(window), time.Time.Compare)
		most = max(most, j-i)
	}
	if most > limit {
		t.Errorf("%d calls in one %v window across %d replicas, budget %d", most, window, replicas, limit)
	}
	// 3.5 windows of 30: at least the first window's 30 plus most of the
	// refills.
	if len(times) < 2*limit {
		t.Errorf("%d calls in %v, want at least %d: the budget was not spent", len(times), run, 2*limit)
	}
	t.Logf("%d calls in %v, at most %d in any %v window (budget %d)", len(times), run, most, window, limit)
}

func TestThrottledBacksOffEveryReplica(t *testing.T) {
	t.Parallel()
	bs := newReplicas(t, deployment{"postgres", true}, 2,
		Config{RequestsPerMinute: 100, Window: 10 * time.Second, LeaseTTL: 100 * time.Millisecond})
	done, err := bs[0].Admit(t.Context())
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	done(429, 10*time.Millisecond)
	if err := spend(t.Context(), bs[0], Foreground); !errors.Is(err, ErrBackoff) {
		t.Errorf("same replica after a 429: error %v, want ErrBackoff", err)
	}
	// The other replica learns of it from the ledger.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := spend(t.Context(), bs[1], Foreground)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other replica still admitted calls 2 s after a 429")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg     Config
		wantErr bool
	}{
		{Config{}, false},
		{Config{RequestsPerMinute: -1}, true},
		{Config{Wait: -time.Second}, true},
		{Config{LeaseTTL: time.Minute}, true},
		{Config{RequestsPerMinute: 10, RefreshReserve: 10}, true},
	} {
		b, err := New(tc.cfg)
		if (err != nil) != tc.wantErr {
			t.Errorf("New(%+v) error = %v, want error %t", tc.cfg, err, tc.wantErr)
		}
		if b != nil {
			b.Close()
		}
	}
}

func TestLatencyEstimate(t *testing.T) {
	t.Parallel()
	l := newLatency(time.Second)
	if got := l.need(); got != time.Second+latencyMargin {
		t.Errorf("need before samples = %v", got)
	}
	for i := range 100 {
		l.add(time.Duration(i%20+1) * time.Millisecond)
	}
	if got := l.need() - latencyMargin; got < 18*time.Millisecond || got > 20*time.Millisecond {
		t.Errorf("p95 of 1..20 ms = %v, want 19-20 ms", got)
	}
}

// downLedger fails every grant, like Postgres during an outage, and
// counts them.
type downLedger struct{ grants atomic.Int64 }

func (l *downLedger) grant(context.Context, int, int, time.Duration) (grant, error) {
	l.grants.Add(1)
	return grant{}, errors.New("connection refused")
}
func (l *downLedger) settle(context.Context, int64, int) error     { return nil }
func (l *downLedger) backoff(context.Context, time.Duration) error { return nil }

// TestOutageSpendsTheFallbackWithoutAskingPostgresEachTime: once Postgres
// fails a grant, the next leases come from the replica's own tenth at
// once, without another attempt, so callers do not wait on the database.
func TestOutageSpendsTheFallbackWithoutAskingPostgresEachTime(t *testing.T) {
	t.Parallel()
	b := newReplicas(t, deployment{"postgres", true}, 1, Config{RequestsPerMinute: 100})[0]
	down := &downLedger{}
	b.ledger = down
	// A lease holds at most 5 tokens (limit/20), so 8 calls take more
	// than one lease from the fallback's 9 (10, less a foreground reserve).
	for i := range 8 {
		if err := spend(t.Context(), b, Foreground); err != nil {
			t.Fatalf("call %d during the outage: %v", i, err)
		}
	}
	if n := down.grants.Load(); n != 1 {
		t.Errorf("Postgres was asked %d times during the outage, want 1", n)
	}
}

// slowLedger fails every grant after delay, or when its context ends
// first, like Postgres that is slow to fail or does not answer; settle
// fails like grant and is counted.
type slowLedger struct {
	delay           time.Duration
	grants, settles atomic.Int64
}

func (l *slowLedger) grant(ctx context.Context, _, _ int, _ time.Duration) (grant, error) {
	l.grants.Add(1)
	select {
	case <-time.After(l.delay):
		return grant{}, errors.New("connection refused")
	case <-ctx.Done():
		return grant{}, ctx.Err()
	}
}

func (l *slowLedger) settle(context.Context, int64, int) error {
	l.settles.Add(1)
	return errors.New("connection refused")
}
func (l *slowLedger) backoff(context.Context, time.Duration) error { return nil }

// TestPostgresFailedElsewhereTurnsGrantsToTheFallback: once a probe
// reported Postgres failed, a call is admitted from the fallback within
// its wait bound, even though the ledger would take longer than that to
// fail, until ledgerRetry has passed.
func TestPostgresFailedElsewhereTurnsGrantsToTheFallback(t *testing.T) {
	t.Parallel()
	b := newReplicas(t, deployment{"postgres", true}, 1, Config{RequestsPerMinute: 100, Wait: 50 * time.Millisecond})[0]
	down := &slowLedger{delay: time.Hour}
	b.ledger = down
	b.PostgresFailed(errors.New("ping: connection refused"))
	for i := range 3 {
		if err := spend(t.Context(), b, Foreground); err != nil {
			t.Fatalf("call %d after the probe failed: %v", i, err)
		}
	}
	if n := down.grants.Load(); n != 0 {
		t.Errorf("Postgres was asked %d times for a lease after the probe failed, want 0", n)
	}
	// Past ledgerRetry the ledger is asked again: this one does not
	// answer, so the call is refused at its bound.
	b.mu.Lock()
	b.ledgerDownUntil = time.Now()
	for _, ls := range b.leases {
		ls.left = 0
	}
	b.mu.Unlock()
	if err := spend(t.Context(), b, Foreground); !errors.Is(err, ErrExhausted) {
		t.Errorf("call with the ledger asked again and silent: %v, want ErrExhausted", err)
	}
	if n := down.grants.Load(); n != 1 {
		t.Errorf("Postgres was asked %d times once ledgerRetry passed, want 1", n)
	}
}

// TestFailedSettleTurnsGrantsToTheFallback: a lease Postgres could not
// settle is evidence enough of an outage; the next lease comes from the
// fallback without asking Postgres, and the next settles of its leases
// are not tried while it is down.
func TestFailedSettleTurnsGrantsToTheFallback(t *testing.T) {
	t.Parallel()
	b := newReplicas(t, deployment{"postgres", true}, 1, Config{RequestsPerMinute: 100})[0]
	down := &slowLedger{delay: time.Hour}
	b.ledger = down
	pgLeases := []*lease{{ledger: down, id: 1, left: 2}, {ledger: down, id: 2, left: 3}}
	b.settleAll(pgLeases)
	if n := down.settles.Load(); n != 1 {
		t.Errorf("settles tried with Postgres down = %d, want 1 (the first failure stops the rest)", n)
	}
	if err := spend(t.Context(), b, Foreground); err != nil {
		t.Fatalf("call after a failed settle: %v", err)
	}
	if n := down.grants.Load(); n != 0 {
		t.Errorf("Postgres was asked %d times for a lease after a failed settle, want 0", n)
	}
}
