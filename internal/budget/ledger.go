package budget

import (
	"context"
	"sync"
	"time"
)

// grant is what a ledger answers to a request for tokens.
type grant struct {
	// id names the lease, to settle it; zero when nothing was granted.
	id int64
	// tokens is how many requests the lease allows, 0 to want.
	tokens int
	// until is when the lease ends, on the ledger's clock; every request
	// of the lease is sent before it.
	until time.Time
	// ttl is until less the grant's time on the ledger's clock.
	ttl time.Duration
	// retryIn is, when nothing was granted, how long until tokens may be
	// free again.
	retryIn time.Duration
}

// ledger is the deployment's record of leases: every replica's grants of
// the last window. A lease counts in full against every window that
// contains any instant of it, until it is settled with what it used.
type ledger interface {
	// grant leases up to want tokens for ttl, leaving at least reserve
	// of the limit unspent in every window.
	grant(ctx context.Context, want, reserve int, ttl time.Duration) (grant, error)
	// settle records that lease id used only used of its tokens.
	settle(ctx context.Context, id int64, used int) error
	// backoff refuses every grant for d.
	backoff(ctx context.Context, d time.Duration) error
}

// memLedger is the ledger of a deployment of one process.
type memLedger struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu           sync.Mutex
	nextID       int64
	leases       []memLease // by until, oldest first
	backoffUntil time.Time
}

type memLease struct {
	id     int64
	until  time.Time
	tokens int
}

func newMemLedger(limit int, window time.Duration, now func() time.Time) *memLedger {
	return &memLedger{limit: limit, window: window, now: now}
}

func (l *memLedger) grant(_ context.Context, want, reserve int, ttl time.Duration) (grant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.backoffUntil) {
		return grant{retryIn: l.backoffUntil.Sub(now)}, nil
	}
	// A lease counts against a window that starts after now-window as
	// long as it had not ended by then.
	from := now.Add(-l.window - windowMargin)
	kept := l.leases[:0]
	used := 0
	for _, ls := range l.leases {
		if ls.until.After(from) {
			kept = append(kept, ls)
			used += ls.tokens
		}
	}
	clear(l.leases[len(kept):])
	l.leases = kept
	n := min(want, l.limit-reserve-used)
	if n <= 0 {
		return grant{retryIn: l.retryInLocked(now, 1-min(n, 0))}, nil
	}
	l.nextID++
	until := now.Add(ttl)
	l.leases = append(l.leases, memLease{id: l.nextID, until: until, tokens: n})
	return grant{id: l.nextID, tokens: n, until: until, ttl: ttl}, nil
}

// retryInLocked is how long until need tokens leave the window.
func (l *memLedger) retryInLocked(now time.Time, need int) time.Duration {
	freed := 0
	for _, ls := range l.leases {
		freed += ls.tokens
		if freed >= need {
			return max(ls.until.Add(l.window+windowMargin).Sub(now), time.Millisecond)
		}
	}
	return l.window
}

func (l *memLedger) settle(_ context.Context, id int64, used int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.leases {
		if l.leases[i].id == id {
			l.leases[i].tokens = min(l.leases[i].tokens, max(used, 0))
			return nil
		}
	}
	return nil
}

func (l *memLedger) backoff(_ context.Context, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(d); until.After(l.backoffUntil) {
		l.backoffUntil = until
	}
	return nil
}
