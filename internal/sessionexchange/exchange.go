// Package sessionexchange turns Wacht session cookies into verified session tokens at the Frontend API, cached, coalesced and within Wacht's exchange limits.
package sessionexchange

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Wacht's exchange limits on GET /session/token, per minute.
const (
	// PerSessionPerMinute limits one session's exchanges.
	PerSessionPerMinute = 30
	// PerAddressPerMinute limits the exchanges of one (caller address,
	// end-user address) pair: for authsvc, one end user's.
	PerAddressPerMinute = 10
	// PerCallerPerMinute limits every exchange of one caller address.
	PerCallerPerMinute = 2000
)

// Defaults applied by New.
const (
	// DefaultMargin is how long before a token's expiry it is exchanged
	// again.
	DefaultMargin = 5 * time.Second
	// DefaultRefusalTTL is how long a session the Frontend API refused is
	// refused again without asking.
	DefaultRefusalTTL = 10 * time.Second
	// DefaultCooldown is how long a session answered 429 waits before
	// the next exchange.
	DefaultCooldown = 10 * time.Second
	// DefaultMaxEntries bounds the sessions and limits remembered.
	DefaultMaxEntries = 100_000
	// exchangeTimeout bounds one exchange, which runs on behalf of every
	// request waiting for it, whatever their own deadlines.
	exchangeTimeout = 5 * time.Second
)

var (
	// ErrRefused is wrapped when the Frontend API does not accept the
	// session: it ended, was revoked or never existed.
	ErrRefused = errors.New("the Frontend API refused the session")
	// ErrRateLimited is wrapped when the session cannot be exchanged
	// within Wacht's limits and no unexpired token is cached for it.
	ErrRateLimited = errors.New("over Wacht's session token exchange limits")
)

// Exchanger calls the Frontend API's GET /session/token.
type Exchanger interface {
	ExchangeSessionToken(ctx context.Context, req wachtclient.SessionTokenRequest) (*wachtclient.SessionToken, error)
}

// Verifier verifies session tokens.
type Verifier interface {
	Verify(ctx context.Context, token string) (*sessiontoken.Claims, error)
}

// Session is a session presented by a request. Value is a secret:
// formatting or logging a Session prints [REDACTED] for it.
type Session struct {
	// Value is the __session cookie's value or the development session.
	Value string
	// Development says Value is a development deployment's session.
	Development bool
	// ClientAddr is the end user's address, if known.
	ClientAddr netip.Addr
}

// String returns the session with its value redacted.
func (s Session) String() string {
	return fmt.Sprintf("{Value:[REDACTED] Development:%t ClientAddr:%s}", s.Development, s.ClientAddr)
}

// GoString returns the session with its value redacted.
func (s Session) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb prints the value.
func (s Session) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue implements slog.LogValuer; the value is redacted.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("development", s.Development), slog.String("client_addr", s.ClientAddr.String()))
}

// Config configures an Exchange.
type Config struct {
	Exchanger Exchanger
	Verifier  Verifier
	Logger    *slog.Logger
	// Margin is how long before its expiry a cached token is replaced;
	// default DefaultMargin. A token past it is still served while a new
	// one cannot be had within the limits.
	Margin time.Duration
	// RefusalTTL is how long a refused session is refused without asking
	// again; default DefaultRefusalTTL.
	RefusalTTL time.Duration
	// Cooldown is how long a session that was answered 429 waits;
	// default DefaultCooldown.
	Cooldown time.Duration
	// PerSession, PerAddress and PerCaller are the exchanges allowed a
	// minute; default Wacht's limits. One replica keeps its own counts, so
	// several replicas behind one address should divide them.
	PerSession, PerAddress, PerCaller int
	// MaxEntries bounds the sessions and addresses remembered; default
	// DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Exchange exchanges sessions for session tokens. Concurrent requests
// with one session share one exchange; a token is reused until Margin
// before its expiry. It is safe for concurrent use.
type Exchange struct {
	cfg     Config
	now     func() time.Time
	entries *otter.Cache[[sha256.Size]byte, *entry]
	flights singleflight.Group

	sessionLimits *otter.Cache[[sha256.Size]byte, *rate.Limiter]
	addressLimits *otter.Cache[netip.Addr, *rate.Limiter]
	callerLimit   *rate.Limiter
}

// entry is what is known about one session.
type entry struct {
	token     string
	refreshAt time.Time // exchange again from then on
	expiresAt time.Time // the token's exp; zero without a token
	// refusedUntil, when in the future, refuses the session without
	// asking: the Frontend API refused it.
	refusedUntil time.Time
	// retryAt, when in the future, keeps the session from being
	// exchanged: the Frontend API answered 429.
	retryAt time.Time
}

// New returns an Exchange.
func New(cfg Config) (*Exchange, error) {
	if cfg.Exchanger == nil || cfg.Verifier == nil {
		return nil, errors.New("new session exchange: an exchanger and a verifier are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// otter keeps its own time unless a test clock is given.
	var clock otter.Clock
	if cfg.Now == nil {
		cfg.Now = time.Now
	} else {
		clock = testClock{now: cfg.Now}
	}
	cfg.Margin = positiveOr(cfg.Margin, DefaultMargin)
	cfg.RefusalTTL = positiveOr(cfg.RefusalTTL, DefaultRefusalTTL)
	cfg.Cooldown = positiveOr(cfg.Cooldown, DefaultCooldown)
	cfg.PerSession = positiveOr(cfg.PerSession, PerSessionPerMinute)
	cfg.PerAddress = positiveOr(cfg.PerAddress, PerAddressPerMinute)
	cfg.PerCaller = positiveOr(cfg.PerCaller, PerCallerPerMinute)
	cfg.MaxEntries = positiveOr(cfg.MaxEntries, DefaultMaxEntries)

	entries, err := otter.New(&otter.Options[[sha256.Size]byte, *entry]{
		MaximumSize: cfg.MaxEntries,
		Clock:       clock,
		// An entry outlives its token by the cooldowns, so that a refusal
		// or a 429 is remembered even after the token expired.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[sha256.Size]byte, *entry]) time.Duration {
			now := cfg.Now()
			ttl := max(e.Value.expiresAt.Sub(now), e.Value.refusedUntil.Sub(now), e.Value.retryAt.Sub(now))
			return max(ttl, time.Second)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("new session exchange: %w", err)
	}
	sessionLimits, err := otter.New(&otter.Options[[sha256.Size]byte, *rate.Limiter]{
		MaximumSize:      cfg.MaxEntries,
		Clock:            clock,
		ExpiryCalculator: otter.ExpiryAccessing[[sha256.Size]byte, *rate.Limiter](2 * time.Minute),
	})
	if err != nil {
		return nil, fmt.Errorf("new session exchange: %w", err)
	}
	addressLimits, err := otter.New(&otter.Options[netip.Addr, *rate.Limiter]{
		MaximumSize:      cfg.MaxEntries,
		Clock:            clock,
		ExpiryCalculator: otter.ExpiryAccessing[netip.Addr, *rate.Limiter](2 * time.Minute),
	})
	if err != nil {
		return nil, fmt.Errorf("new session exchange: %w", err)
	}
	return &Exchange{
		cfg:           cfg,
		now:           cfg.Now,
		entries:       entries,
		sessionLimits: sessionLimits,
		addressLimits: addressLimits,
		callerLimit:   perMinute(cfg.PerCaller, cfg.Now()),
	}, nil
}

// Token returns a verified session token for the session: a cached one
// until Margin before its expiry, else a new one from the Frontend API.
// It wraps ErrRefused when the Frontend API does not accept the session,
// ErrRateLimited when a new token is needed but cannot be had within
// Wacht's limits, the verifier's error when the minted token does not
// verify, and the client's error when the Frontend API fails.
func (x *Exchange) Token(ctx context.Context, s Session) (string, error) {
	if s.Value == "" {
		return "", fmt.Errorf("exchange session: %w", ErrRefused)
	}
	key := hashSession(s)
	if e, ok := x.entries.GetIfPresent(key); ok {
		now := x.now()
		switch {
		case now.Before(e.refusedUntil):
			return "", fmt.Errorf("exchange session: %w", ErrRefused)
		case e.token != "" && now.Before(e.refreshAt):
			return e.token, nil
		}
	}
	ch := x.flights.DoChan(string(key[:]), func() (any, error) {
		return x.exchange(ctx, key, s)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("exchange session: %w", context.Cause(ctx))
	}
}

// exchange runs once at a time per session.
func (x *Exchange) exchange(ctx context.Context, key [sha256.Size]byte, s Session) (string, error) {
	now := x.now()
	old, _ := x.entries.GetIfPresent(key)
	if old == nil {
		old = &entry{}
	}
	switch {
	case now.Before(old.refusedUntil):
		return "", fmt.Errorf("exchange session: %w", ErrRefused)
	case old.token != "" && now.Before(old.refreshAt):
		return old.token, nil // a flight that just ended filled it
	case now.Before(old.retryAt) || !x.admit(key, s.ClientAddr, now):
		return x.stale(old, now, old.retryAt)
	}

	// The exchange serves every waiting request, so it must not end when
	// the first one's context does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exchangeTimeout)
	defer cancel()
	minted, err := x.cfg.Exchanger.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{
		Session: s.Value, Development: s.Development, ForwardedFor: s.ClientAddr,
	})
	now = x.now()
	switch {
	case errors.Is(err, wachtclient.ErrUnauthorized), errors.Is(err, wachtclient.ErrForbidden):
		x.entries.Set(key, &entry{refusedUntil: now.Add(x.cfg.RefusalTTL)})
		return "", fmt.Errorf("exchange session: %w", ErrRefused)
	case errors.Is(err, wachtclient.ErrRateLimited):
		x.cfg.Logger.WarnContext(ctx, "the Frontend API refused a session token exchange: over its limits")
		next := *old
		next.retryAt = now.Add(x.cfg.Cooldown)
		x.entries.Set(key, &next)
		return x.stale(old, now, next.retryAt)
	case err != nil:
		if tok, serr := x.stale(old, now, time.Time{}); serr == nil {
			return tok, nil
		}
		return "", fmt.Errorf("exchange session: %w", err)
	}
	claims, err := x.cfg.Verifier.Verify(ctx, minted.Token)
	if err != nil {
		return "", fmt.Errorf("exchange session: the minted token: %w", err)
	}
	e := &entry{token: minted.Token, expiresAt: claims.ExpiresAt, refreshAt: claims.ExpiresAt.Add(-x.cfg.Margin)}
	if !e.refreshAt.After(now) {
		// A lifetime shorter than the margin: reuse it for half of it.
		e.refreshAt = now.Add(claims.ExpiresAt.Sub(now) / 2)
	}
	x.entries.Set(key, e)
	return e.token, nil
}

// stale answers from a token past its refresh time but not expired, or
// refuses until retryAt (zero when not known).
func (x *Exchange) stale(old *entry, now, retryAt time.Time) (string, error) {
	if old.token != "" && now.Before(old.expiresAt) {
		return old.token, nil
	}
	return "", &RateLimitedError{RetryAfter: max(retryAt.Sub(now), 0)}
}

// RateLimitedError is the ErrRateLimited of one session. RetryAfter is
// how long the session's cooldown after Wacht's 429 still runs, or zero
// when the refusal was one of authsvc's own limits.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return "exchange session: " + ErrRateLimited.Error() }

// Unwrap makes the error match ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// admit spends one exchange of the session's, the end user's and the
// caller's limits, or none when any of them is spent.
func (x *Exchange) admit(key [sha256.Size]byte, addr netip.Addr, now time.Time) bool {
	session := x.limiter(x.sessionLimits, key, x.cfg.PerSession, now)
	address := x.addressLimiter(addr.Unmap(), now)
	// Reserve all three, and give back what was taken when one refuses.
	rs := session.ReserveN(now, 1)
	ra := address.ReserveN(now, 1)
	rc := x.callerLimit.ReserveN(now, 1)
	if rs.OK() && ra.OK() && rc.OK() && rs.DelayFrom(now) == 0 && ra.DelayFrom(now) == 0 && rc.DelayFrom(now) == 0 {
		return true
	}
	rs.CancelAt(now)
	ra.CancelAt(now)
	rc.CancelAt(now)
	return false
}

func (x *Exchange) limiter(c *otter.Cache[[sha256.Size]byte, *rate.Limiter], key [sha256.Size]byte, n int, now time.Time) *rate.Limiter {
	if l, ok := c.GetIfPresent(key); ok {
		return l
	}
	l, _ := c.SetIfAbsent(key, perMinute(n, now))
	return l
}

func (x *Exchange) addressLimiter(addr netip.Addr, now time.Time) *rate.Limiter {
	if l, ok := x.addressLimits.GetIfPresent(addr); ok {
		return l
	}
	l, _ := x.addressLimits.SetIfAbsent(addr, perMinute(x.cfg.PerAddress, now))
	return l
}

// perMinute returns a limiter that never allows more than n in any
// minute: half of n at once, the rest spread over the minute.
func perMinute(n int, now time.Time) *rate.Limiter {
	burst := max(n/2, 1)
	l := rate.NewLimiter(rate.Limit(float64(n-burst)/60), burst)
	l.SetBurstAt(now, burst) // full at now, whatever the clock
	return l
}

// hashSession identifies a session without holding its value.
func hashSession(s Session) [sha256.Size]byte {
	h := sha256.New()
	if s.Development {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	h.Write([]byte(s.Value))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// testClock adapts a test's clock to otter's; without ticks, expired
// entries are dropped when read or evicted.
type testClock struct{ now func() time.Time }

func (c testClock) NowNano() int64 { return c.now().UnixNano() }

func (testClock) Tick(time.Duration) <-chan time.Time { return nil }
