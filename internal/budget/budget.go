package budget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultRequestsPerMinute is Wacht's Backend API budget per
	// deployment.
	DefaultRequestsPerMinute = 1000
	// DefaultWait is the longest a Foreground or Revocation call waits
	// for budget.
	DefaultWait = 100 * time.Millisecond
	// DefaultRefreshWait is the longest a Refresh call waits for budget.
	DefaultRefreshWait = time.Second
	// DefaultWriteWait is the longest a Write waits for budget.
	DefaultWriteWait = 10 * time.Second
	// DefaultLeaseTTL is how long a lease of tokens may be spent.
	DefaultLeaseTTL = 2 * time.Second
	// DefaultLatency is the estimate of Wacht's latency before any call
	// was measured.
	DefaultLatency = 250 * time.Millisecond
)

const (
	// windowMargin widens the window a lease counts against, for the time
	// a request takes to reach Wacht.
	windowMargin = 250 * time.Millisecond
	// latencyMargin is added to the latency estimate: time to read and
	// decode the answer.
	latencyMargin = 10 * time.Millisecond
	// pollInterval is how often a replica short of tokens asks the ledger
	// again while its callers wait.
	pollInterval = 50 * time.Millisecond
	// ledgerTimeout bounds one ledger operation.
	ledgerTimeout = 2 * time.Second
	// ledgerRetry is how long a replica spends from its fallback, without
	// asking Postgres, after Postgres failed: during an outage the
	// fetcher does not wait on the database before every lease.
	ledgerRetry = 5 * time.Second
	// maxBackoff caps the back-off after consecutive 429s.
	maxBackoff = time.Minute
	// firstBackoff is the back-off after a first 429.
	firstBackoff = time.Second
)

// Errors returned by [Budget.Admit]. Each means that the request was not
// sent.
var (
	// ErrExhausted is returned when no token came within the class's
	// wait bound.
	ErrExhausted = errors.New("budget: no Wacht request budget left within the wait bound")
	// ErrNoTime is returned when the context's deadline leaves less time
	// than a Wacht call needs.
	ErrNoTime = errors.New("budget: too little time before the deadline for a Wacht call")
	// ErrBackoff is returned while the deployment backs off after Wacht
	// answered 429.
	ErrBackoff = errors.New("budget: backing off after Wacht answered 429")
)

// Refusal reasons passed to [Observer.ObserveBudgetRefused].
const (
	ReasonExhausted = "exhausted"
	ReasonDeadline  = "deadline"
	ReasonBackoff   = "backoff"
	ReasonCanceled  = "canceled"
)

// Config configures a Budget.
type Config struct {
	// RequestsPerMinute is the whole deployment's budget, shared by every
	// replica using the same Pool; default 1000.
	RequestsPerMinute int
	// Window is the length of the window RequestsPerMinute applies to;
	// default one minute. Tests shorten it.
	Window time.Duration
	// Pool, if set, holds the ledger shared by every replica. Nil means a
	// deployment of this process alone.
	Pool *pgxpool.Pool
	// Wait is the longest a Foreground or Revocation call waits for a
	// token; default 100 ms.
	Wait time.Duration
	// RefreshWait is the longest a Refresh waits; default 1 s.
	RefreshWait time.Duration
	// WriteWait is the longest a Write waits; default 10 s.
	WriteWait time.Duration
	// RefreshReserve is how many tokens of every window Refresh leaves to
	// the classes above it; default a tenth of the budget.
	RefreshReserve int
	// LeaseTTL is how long a lease of tokens may be spent; default 2 s.
	LeaseTTL time.Duration
	// Latency is the estimate of Wacht's latency until calls have been
	// measured; default 250 ms.
	Latency time.Duration
	// Logger receives warnings about the shared ledger; nil discards them.
	Logger *slog.Logger
	// Observer is told of admissions, refusals and leases, for metrics;
	// nil means none.
	Observer Observer
}

// Budget admits Wacht Backend API requests within the deployment's
// budget: no window of Config.Window sees more than RequestsPerMinute
// requests from all replicas together. Tokens are leased a few at a time
// from a ledger in Postgres (or in memory) and handed to waiting calls by
// class, highest first. A call waits at most its class's bound, and never
// past the point where too little of its deadline would be left for Wacht
// to answer. It is safe for concurrent use; Close releases it.
type Budget struct {
	now      func() time.Time
	limit    int
	ledger   ledger
	fallback *memLedger
	waits    [numClasses]time.Duration
	reserves [numClasses]int
	ttl      time.Duration
	maxLease int
	lat      *latency
	log      *slog.Logger
	obs      Observer

	stop chan struct{}
	wg   sync.WaitGroup

	mu           sync.Mutex
	closed       bool
	leases       []*lease
	waiting      [numClasses][]*waiter
	fetching     bool
	backoffUntil time.Time
	backoffStep  time.Duration
	admits       int
	lastFetch    time.Time
	rate         float64 // admissions a second, smoothed
	lastWarn     map[string]time.Time
	// ledgerDownUntil is when the ledger is asked again after one of its
	// operations failed; until then the fallback alone grants.
	ledgerDownUntil time.Time
}

// lease is tokens held by this process.
type lease struct {
	ledger  ledger
	id      int64
	left    int
	used    int
	expires time.Time // local clock; before the ledger's end of the lease
	settled bool
}

type waiter struct {
	ch chan *lease // receives one token's lease
}

// New returns a Budget. Close it to return its unused tokens.
func New(cfg Config) (*Budget, error) {
	limit := cmp.Or(cfg.RequestsPerMinute, DefaultRequestsPerMinute)
	window := cmp.Or(cfg.Window, time.Minute)
	ttl := cmp.Or(cfg.LeaseTTL, DefaultLeaseTTL)
	switch {
	case limit < 1:
		return nil, fmt.Errorf("budget: requests per minute %d must be positive", limit)
	case window < 0 || cfg.Wait < 0 || cfg.RefreshWait < 0 || cfg.WriteWait < 0 || ttl < 0 || cfg.Latency < 0:
		return nil, errors.New("budget: durations must not be negative")
	case ttl >= window:
		return nil, fmt.Errorf("budget: lease ttl %s must be shorter than the window %s", ttl, window)
	case cfg.RefreshReserve < 0 || cfg.RefreshReserve >= limit:
		return nil, fmt.Errorf("budget: refresh reserve %d must be between 0 and the budget %d", cfg.RefreshReserve, limit)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	b := &Budget{
		now:      time.Now,
		limit:    limit,
		ttl:      ttl,
		maxLease: max(1, limit/20),
		lat:      newLatency(cmp.Or(cfg.Latency, DefaultLatency)),
		log:      logger,
		obs:      obs,
		stop:     make(chan struct{}),
		lastWarn: make(map[string]time.Time),
	}
	if cfg.Pool != nil {
		b.ledger = &pgLedger{pool: cfg.Pool, limit: limit, window: window}
		// While Postgres cannot be reached, a replica spends at most a
		// tenth of the budget on its own.
		b.fallback = newMemLedger(max(1, limit/10), window, b.now)
	} else {
		b.ledger = newMemLedger(limit, window, b.now)
	}
	wait := cmp.Or(cfg.Wait, DefaultWait)
	b.waits = [numClasses]time.Duration{
		Write:      cmp.Or(cfg.WriteWait, DefaultWriteWait),
		Foreground: wait,
		Revocation: wait,
		Refresh:    cmp.Or(cfg.RefreshWait, DefaultRefreshWait),
	}
	b.reserves = [numClasses]int{
		Write:      0,
		Foreground: limit / 100,
		Revocation: limit / 100,
		Refresh:    cmp.Or(cfg.RefreshReserve, limit/10),
	}
	b.wg.Add(1)
	go b.janitor()
	return b, nil
}

// Close returns the unused tokens of held leases to the ledger. Admit
// refuses every call after Close.
func (b *Budget) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.stop)
	held := b.leases
	b.leases = nil
	b.mu.Unlock()
	b.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout) //nolint:forbidigo // a ledger call no caller waits for
	defer cancel()
	for _, ls := range held {
		b.settle(ctx, ls)
	}
}

// Admit returns once one Backend API request may be sent with ctx, as
// ctx's class (see [WithClass]). It returns at once, with ErrNoTime, when
// ctx's deadline, or its caller's (see [WithCallerDeadline]), leaves less
// time than Wacht is expected to take, and
// after the class's wait bound, with ErrExhausted, when no token came; it
// never waits past the point where that time would not be left. done must
// be called once, when the request's answer came: status is its HTTP
// status, 0 if no answer came, or -1 if the request was not sent after
// all; took is how long the attempt took.
func (b *Budget) Admit(ctx context.Context) (done func(status int, took time.Duration), err error) {
	class := ClassFrom(ctx)
	start := b.now()
	giveUp := start.Add(b.waits[class])
	if dl, ok := deadlineOf(ctx); ok {
		last := dl.Add(-b.lat.need())
		if !last.After(start) {
			b.refused(class, ReasonDeadline, 0)
			return nil, ErrNoTime
		}
		giveUp = minTime(giveUp, last)
	}
	if err := ctx.Err(); err != nil {
		b.refused(class, ReasonCanceled, 0)
		return nil, context.Cause(ctx)
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.refused(class, ReasonExhausted, 0)
		return nil, ErrExhausted
	}
	b.admits++
	if b.backoffUntil.After(giveUp) {
		b.mu.Unlock()
		b.refused(class, ReasonBackoff, 0)
		return nil, ErrBackoff
	}
	if !b.waitingAtLocked(class) && !b.backoffUntil.After(start) {
		if ls := b.takeLocked(start); ls != nil {
			b.mu.Unlock()
			b.admitted(class, 0)
			return b.doneFunc(ls), nil
		}
	}
	w := &waiter{ch: make(chan *lease, 1)}
	b.waiting[class] = append(b.waiting[class], w)
	b.kickLocked()
	b.mu.Unlock()

	timer := time.NewTimer(giveUp.Sub(start))
	defer timer.Stop()
	select {
	case ls := <-w.ch:
		b.admitted(class, time.Since(start))
		return b.doneFunc(ls), nil
	case <-timer.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	removed := b.removeWaiterLocked(class, w)
	b.mu.Unlock()
	if !removed {
		// A token was handed over as the wait ended.
		b.admitted(class, time.Since(start))
		return b.doneFunc(<-w.ch), nil
	}
	waited := time.Since(start)
	if ctx.Err() != nil {
		b.refused(class, ReasonCanceled, waited)
		return nil, context.Cause(ctx)
	}
	if b.backingOff(b.now()) {
		b.refused(class, ReasonBackoff, waited)
		return nil, ErrBackoff
	}
	b.refused(class, ReasonExhausted, waited)
	return nil, ErrExhausted
}

// Latency returns the current estimate of the time a Wacht call needs,
// the time Admit requires to be left before a deadline.
func (b *Budget) Latency() time.Duration { return b.lat.need() }

// PerMinute returns the deployment's budget, in requests a minute.
func (b *Budget) PerMinute() int { return b.limit }

func (b *Budget) backingOff(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backoffUntil.After(now)
}

// doneFunc returns the function that records the outcome of a request
// sent on one token of ls.
func (b *Budget) doneFunc(ls *lease) func(int, time.Duration) {
	var once sync.Once
	return func(status int, took time.Duration) {
		once.Do(func() { b.done(ls, status, took) })
	}
}

func (b *Budget) done(ls *lease, status int, took time.Duration) {
	switch {
	case status < 0:
		// Not sent: the token is still good while its lease is.
		b.mu.Lock()
		ls.used--
		if !ls.settled && ls.expires.After(b.now()) {
			ls.left++
			b.dispatchLocked(b.now())
		}
		b.mu.Unlock()
	case status == http.StatusTooManyRequests:
		b.throttled()
	default:
		if status > 0 {
			b.lat.add(took)
		}
		if status >= 200 && status < 300 {
			b.mu.Lock()
			b.backoffStep = 0
			b.mu.Unlock()
		}
	}
}

// throttled backs the whole deployment off after Wacht answered 429: for
// a second, doubling at each further 429 up to a minute. Wacht sends no
// Retry-After.
func (b *Budget) throttled() {
	b.mu.Lock()
	now := b.now()
	if b.backoffUntil.After(now) {
		// Requests sent before the back-off began answer now.
		b.mu.Unlock()
		return
	}
	b.backoffStep = min(max(2*b.backoffStep, firstBackoff), maxBackoff)
	d := b.backoffStep
	b.backoffUntil = now.Add(d)
	closed := b.closed
	if !closed {
		b.wg.Add(1)
	}
	b.mu.Unlock()
	b.log.Warn("wacht answered 429: every replica backs off", "backoff", d)
	if closed {
		return
	}
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout) //nolint:forbidigo // a ledger call no caller waits for
		defer cancel()
		if err := b.ledger.backoff(ctx, d); err != nil {
			b.warn("could not share the back-off after a 429 with the other replicas", err)
		}
	}()
}

// waitingAtLocked reports whether a call of class c or above waits.
func (b *Budget) waitingAtLocked(c Class) bool {
	for _, cl := range Classes[:c+1] {
		if len(b.waiting[cl]) > 0 {
			return true
		}
	}
	return false
}

// takeLocked takes one token of a live lease, or returns nil.
func (b *Budget) takeLocked(now time.Time) *lease {
	for _, ls := range b.leases {
		if ls.left > 0 && ls.expires.After(now) {
			ls.left--
			ls.used++
			return ls
		}
	}
	return nil
}

// dispatchLocked hands the tokens at hand to waiters, highest class first.
func (b *Budget) dispatchLocked(now time.Time) {
	if b.backoffUntil.After(now) {
		return
	}
	for _, c := range Classes {
		for len(b.waiting[c]) > 0 {
			ls := b.takeLocked(now)
			if ls == nil {
				return
			}
			w := b.waiting[c][0]
			b.waiting[c] = slices.Delete(b.waiting[c], 0, 1)
			w.ch <- ls
		}
	}
}

func (b *Budget) removeWaiterLocked(c Class, w *waiter) bool {
	i := slices.Index(b.waiting[c], w)
	if i < 0 {
		return false
	}
	b.waiting[c] = slices.Delete(b.waiting[c], i, i+1)
	return true
}

// kickLocked starts the fetcher unless it runs.
func (b *Budget) kickLocked() {
	if b.fetching || b.closed {
		return
	}
	b.fetching = true
	b.wg.Add(1)
	go b.fetch()
}

// fetch leases tokens for the waiting calls until none waits.
func (b *Budget) fetch() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		now := b.now()
		expired := b.expireLocked(now)
		b.dispatchLocked(now)
		top, n := b.topWaitingLocked()
		if n == 0 || b.closed {
			b.fetching = false
			b.mu.Unlock()
			b.settleAll(expired)
			return
		}
		if b.backoffUntil.After(now) {
			d := b.backoffUntil.Sub(now)
			b.mu.Unlock()
			b.settleAll(expired)
			b.sleep(min(d, pollInterval))
			continue
		}
		if !b.lastFetch.IsZero() {
			if el := now.Sub(b.lastFetch).Seconds(); el > 0 {
				b.rate = 0.5*b.rate + 0.5*float64(b.admits)/el
			}
		}
		b.admits, b.lastFetch = 0, now
		want := min(max(n+int(math.Ceil(b.rate*b.ttl.Seconds())), 1), b.maxLease)
		reserve := b.reserves[top]
		b.mu.Unlock()
		b.settleAll(expired)

		g, l, err := b.grant(want, reserve)
		b.obs.ObserveBudgetLease(want, g.tokens, err)
		if err != nil || g.tokens == 0 {
			b.sleep(min(max(g.retryIn, time.Millisecond), pollInterval))
			continue
		}
		b.mu.Lock()
		ls := &lease{ledger: l, id: g.id, left: g.tokens, expires: now.Add(g.ttl)}
		if b.closed {
			b.mu.Unlock()
			b.settleAll([]*lease{ls})
			continue
		}
		b.leases = append(b.leases, ls)
		b.dispatchLocked(b.now())
		b.mu.Unlock()
	}
}

// grant asks the ledger for tokens, or the fallback while Postgres
// fails: for ledgerRetry after a failure, the fallback alone.
func (b *Budget) grant(want, reserve int) (grant, ledger, error) {
	if b.fallback == nil || b.ledgerUp() {
		ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout) //nolint:forbidigo // a ledger call no caller waits for
		g, err := b.ledger.grant(ctx, want, reserve, b.ttl)
		cancel()
		if err == nil || b.fallback == nil {
			return g, b.ledger, err
		}
		b.ledgerFailed("could not lease Wacht request budget from Postgres; spending a tenth of it alone", err)
	}
	g, err := b.fallback.grant(context.Background(), want, min(reserve, b.fallback.limit-1), b.ttl) //nolint:forbidigo // memory, no wait
	return g, b.fallback, err
}

// ledgerUp reports whether the ledger is asked: no operation of it failed
// in the last ledgerRetry.
func (b *Budget) ledgerUp() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.now().Before(b.ledgerDownUntil)
}

// PostgresFailed tells a Budget whose ledger is in Postgres that Postgres
// failed elsewhere, in a probe or another query: for the next few seconds
// leases come from the replica's own tenth without asking Postgres, so
// that calls do not wait on a database that is slow to fail. It does
// nothing to a Budget of one process.
func (b *Budget) PostgresFailed(err error) {
	if b.fallback != nil {
		b.ledgerFailed("Postgres failed; spending a tenth of the Wacht request budget alone", err)
	}
}

// ledgerFailed turns grants to the fallback for ledgerRetry, and logs why.
func (b *Budget) ledgerFailed(msg string, err error) {
	b.mu.Lock()
	b.ledgerDownUntil = b.now().Add(ledgerRetry)
	b.mu.Unlock()
	b.warn(msg, err)
}

// topWaitingLocked returns the highest class waiting and how many wait.
func (b *Budget) topWaitingLocked() (Class, int) {
	top, n := Refresh, 0
	for i := len(Classes) - 1; i >= 0; i-- {
		if k := len(b.waiting[Classes[i]]); k > 0 {
			top, n = Classes[i], n+k
		}
	}
	return top, n
}

// expireLocked removes the leases that ended and returns them, to
// settle.
func (b *Budget) expireLocked(now time.Time) []*lease {
	var out []*lease
	b.leases = slices.DeleteFunc(b.leases, func(ls *lease) bool {
		if ls.expires.After(now) {
			return false
		}
		ls.settled = true
		out = append(out, ls)
		return true
	})
	return out
}

func (b *Budget) settleAll(leases []*lease) {
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout) //nolint:forbidigo // a ledger call no caller waits for
	defer cancel()
	for _, ls := range leases {
		b.settle(ctx, ls)
	}
}

// settle records what a lease used, returning the rest to the ledger.
// While the ledger is down a lease of it is left unsettled, counted in
// full: that errs on the side of the budget.
func (b *Budget) settle(ctx context.Context, ls *lease) {
	b.mu.Lock()
	used := ls.used
	ls.settled = true
	skip := ls.ledger == b.ledger && b.now().Before(b.ledgerDownUntil)
	b.mu.Unlock()
	if skip {
		return
	}
	if err := ls.ledger.settle(ctx, ls.id, used); err != nil {
		b.ledgerFailed("could not return unused Wacht request budget", err)
	}
}

// janitor settles leases that ended while nobody asked for tokens.
func (b *Budget) janitor() {
	defer b.wg.Done()
	t := time.NewTicker(b.ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			expired := b.expireLocked(b.now())
			b.mu.Unlock()
			b.settleAll(expired)
		}
	}
}

func (b *Budget) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.stop:
	}
}

// warn logs a ledger failure at most every ten seconds for each msg.
func (b *Budget) warn(msg string, err error) {
	b.mu.Lock()
	now := b.now()
	quiet := now.Sub(b.lastWarn[msg]) < 10*time.Second
	if !quiet {
		b.lastWarn[msg] = now
	}
	b.mu.Unlock()
	if !quiet {
		b.log.Warn(msg, "error", err)
	}
}

func (b *Budget) admitted(c Class, waited time.Duration) {
	b.obs.ObserveBudgetAdmitted(c, waited)
}

func (b *Budget) refused(c Class, reason string, waited time.Duration) {
	b.obs.ObserveBudgetRefused(c, reason, waited)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
