// Package callerlimit bounds the Wacht calls each caller's requests may
// cause: a rate per minute and a number of concurrent loads, set per
// caller in the callers file.
package callerlimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callers"
)

// ErrExhausted is wrapped by the error of a load refused because its
// caller is over one of its limits. It also wraps [cache.ErrDeferred], so
// that callers who shared the refused load try again with their own.
var ErrExhausted = fmt.Errorf("over the caller's limit of Wacht calls: %w", cache.ErrDeferred)

// DefaultMaxWait is how long a load waits for one of its caller's
// concurrent loads to end before it is refused.
const DefaultMaxWait = time.Second

// Outcome is what became of one load a caller's request asked for.
type Outcome string

// The outcomes of [Limiter.Admit].
const (
	// Admitted loads were let through to Wacht.
	Admitted Outcome = "admitted"
	// RefusedRate loads were refused: the caller spent its calls per
	// minute.
	RefusedRate Outcome = "refused_rate"
	// RefusedConcurrency loads were refused: the caller's concurrent
	// loads stayed busy for the whole wait.
	RefusedConcurrency Outcome = "refused_concurrency"
)

// Config configures a [Limiter].
type Config struct {
	// Now is the clock the rates are measured on.
	Now func() time.Time
	// MaxWait bounds the wait for a free concurrent load; zero means
	// [DefaultMaxWait].
	MaxWait time.Duration
	// Observer is told of each load a caller asked for, for metrics; nil
	// means none.
	Observer Observer
}

// Limiter keeps each caller's account on this replica. Callers are keyed
// by their name in the callers file, so accounts are bounded by it.
type Limiter struct {
	now      func() time.Time
	maxWait  time.Duration
	observer Observer

	mu       sync.Mutex
	accounts map[string]*account
}

// account is one caller's rate and concurrent loads under its limits.
type account struct {
	limits callers.Limits
	rate   *rate.Limiter
	loads  *semaphore.Weighted
}

// New returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.Now == nil {
		return nil, errors.New("callerlimit: Now is required")
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Limiter{now: cfg.Now, maxWait: cfg.MaxWait, observer: cfg.Observer, accounts: map[string]*account{}}, nil
}

// Admit charges one Wacht call to the caller on ctx, waiting up to
// MaxWait for one of its concurrent loads to end, and returns the function
// that ends the load. It returns an error wrapping [ErrExhausted] when the
// caller is over a limit. Open mode's caller, which stands for everyone,
// is counted but not limited: the Wacht budget bounds it. A context
// without a caller is charged to [callers.AnonymousName] with the default
// limits.
func (l *Limiter) Admit(ctx context.Context) (release func(), err error) {
	name, limits, limited := subject(ctx)
	if !limited {
		l.observer.ObserveCallerLoad(name, Admitted)
		l.observer.ObserveCallerLoadsInFlight(name, 1)
		return func() { l.observer.ObserveCallerLoadsInFlight(name, -1) }, nil
	}
	a := l.account(name, limits)
	wctx, cancel := context.WithTimeout(ctx, l.maxWait)
	err = a.loads.Acquire(wctx, 1)
	cancel()
	if err != nil {
		l.observer.ObserveCallerLoad(name, RefusedConcurrency)
		return nil, fmt.Errorf("%w (%d concurrent loads for caller %q)", ErrExhausted, limits.ConcurrentLoads, name)
	}
	if !a.rate.AllowN(l.now(), 1) {
		a.loads.Release(1)
		l.observer.ObserveCallerLoad(name, RefusedRate)
		return nil, fmt.Errorf("%w (%d a minute for caller %q)", ErrExhausted, limits.WachtCallsPerMinute, name)
	}
	l.observer.ObserveCallerLoad(name, Admitted)
	l.observer.ObserveCallerLoadsInFlight(name, 1)
	var once sync.Once
	return func() {
		once.Do(func() {
			a.loads.Release(1)
			l.observer.ObserveCallerLoadsInFlight(name, -1)
		})
	}, nil
}

// subject returns whom a load made for ctx is charged to, with that
// caller's limits, and whether they apply.
func subject(ctx context.Context) (string, callers.Limits, bool) {
	c, ok := callers.FromContext(ctx)
	switch {
	case !ok:
		return callers.AnonymousName, (*callers.Limits)(nil).Effective(), true
	case c.Method == callers.MethodOpen:
		return callers.AnonymousName, callers.Limits{}, false
	default:
		return c.Name, c.Limits.Effective(), true
	}
}

// account returns name's account, made anew when its limits changed
// since (the callers file was reloaded). Loads admitted under the old
// limits end on the old account.
func (l *Limiter) account(name string, limits callers.Limits) *account {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[name]
	if a == nil || a.limits != limits {
		perMinute := limits.WachtCallsPerMinute
		a = &account{
			limits: limits,
			rate:   rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute),
			loads:  semaphore.NewWeighted(int64(limits.ConcurrentLoads)),
		}
		l.accounts[name] = a
	}
	return a
}

// Loader returns load with every call charged to the caller whose request
// asked for it. Background refreshes ([cache.IsRefresh]) serve no caller
// and are not charged.
func Loader[V any](l *Limiter, load cache.Loader[V]) cache.Loader[V] {
	return func(ctx context.Context, key string) (V, error) {
		if cache.IsRefresh(ctx) {
			return load(ctx, key)
		}
		release, err := l.Admit(ctx)
		if err != nil {
			var zero V
			return zero, err
		}
		defer release()
		return load(ctx, key)
	}
}
