package wachtfake

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// windowLimiter allows max requests per window: a token bucket holding max
// tokens that refills at max per window. Wacht's gateway counts a sliding
// window instead; both allow a burst of max and then refuse, which is what
// callers can observe.
type windowLimiter struct {
	lim *rate.Limiter
}

func newWindowLimiter(maxRequests int, window time.Duration, now time.Time) *windowLimiter {
	l := &windowLimiter{lim: rate.NewLimiter(rate.Limit(float64(maxRequests)/window.Seconds()), maxRequests)}
	l.lim.SetBurstAt(now, maxRequests) // full at now, whatever the clock
	return l
}

// take spends one request at now. It returns whether it was allowed, how
// many requests remain, and when refused the wait in milliseconds.
func (l *windowLimiter) take(now time.Time) (allowed bool, remaining int, retryAfterMS uint32) {
	tokens := l.lim.TokensAt(now)
	if tokens >= 1 && l.lim.AllowN(now, 1) {
		return true, int(math.Floor(tokens - 1)), 0
	}
	perSecond := float64(l.lim.Limit())
	wait := 0.0
	if perSecond > 0 {
		wait = (1 - max(tokens, 0)) / perSecond * 1000
	}
	return false, 0, uint32(min(math.Ceil(wait), math.MaxUint32))
}

// allowed spends one request at now and reports whether it was allowed.
func (l *windowLimiter) allowed(now time.Time) bool {
	ok, _, _ := l.take(now)
	return ok
}

// rulesLocked returns the rules that apply to a key and resource, by
// priority. Keys without a known scheme get the Gateway's default: 1000
// requests a minute per app.
func (s *Server) rulesLocked(k APIKey, app *APIAuthApp, resource string) []RateLimit {
	if k.RateLimitSchemeSlug == "" || k.RateLimitSchemeSlug != app.RateLimitScheme || len(app.RateLimits) == 0 {
		return []RateLimit{{Unit: "minute", Duration: 1, MaxRequests: 1000, Mode: "per_app"}}
	}
	var out []RateLimit
	for _, rl := range app.RateLimits {
		if len(rl.Endpoints) == 0 || slices.Contains(rl.Endpoints, "*") || slices.Contains(rl.Endpoints, resource) {
			out = append(out, rl)
		}
	}
	slices.SortStableFunc(out, func(a, b RateLimit) int { return cmp.Compare(a.Priority, b.Priority) })
	return out
}

// limiterLocked returns the limiter of a rule's bucket, keyed as the
// Gateway keys its windows.
func (s *Server) limiterLocked(rl RateLimit, window time.Duration, k APIKey, clientIP, resource string, now time.Time) *windowLimiter {
	ms := window.Milliseconds()
	var bucket string
	switch cmp.Or(rl.Mode, "per_app") {
	case "per_key":
		bucket = fmt.Sprintf("key:%s:%s:%d", k.ID, resource, ms)
	case "per_key_and_ip":
		bucket = fmt.Sprintf("key_ip:%s:%s:%s:%d", k.ID, clientIP, resource, ms)
	case "per_app_and_ip":
		bucket = fmt.Sprintf("app_ip:%s:%s:%s:%d", k.DeploymentID, k.AppSlug, clientIP, ms)
	default:
		bucket = fmt.Sprintf("app:%s:%s:%d", k.DeploymentID, k.AppSlug, ms)
	}
	bucket += fmt.Sprintf(":max=%d", rl.MaxRequests)
	l, ok := s.limiters[bucket]
	if !ok {
		l = newWindowLimiter(rl.MaxRequests, window, now)
		s.limiters[bucket] = l
	}
	return l
}

// windowOf returns a rule's window, checking the rule as Wacht validates
// it.
func windowOf(rl RateLimit) (time.Duration, error) {
	unit, maxDuration := unitOf(rl.Unit)
	switch {
	case unit == 0:
		return 0, fmt.Errorf("rate limit unit %q: %w", rl.Unit, ErrInvalid)
	case rl.Duration <= 0 || rl.MaxRequests <= 0:
		return 0, fmt.Errorf("rate limit needs a positive duration and max requests: %w", ErrInvalid)
	case rl.Duration > maxDuration:
		return 0, fmt.Errorf("rate limit of %d %s is too long: %w", rl.Duration, rl.Unit, ErrInvalid)
	}
	return time.Duration(rl.Duration) * unit, nil
}

// unitOf returns a rate-limit unit's length and the longest duration
// Wacht allows in it; calendar units are emulated as rolling windows.
func unitOf(unit string) (time.Duration, int) {
	const day = 24 * time.Hour
	switch unit {
	case "millisecond":
		return time.Millisecond, 60000
	case "second":
		return time.Second, 1800
	case "minute":
		return time.Minute, 1440
	case "hour":
		return time.Hour, 720
	case "day":
		return day, 30
	case "calendar_day":
		return day, 1
	case "month", "calendar_month":
		return 30 * day, 1
	default:
		return 0, 0
	}
}

// windowLabel is the Gateway's window name: "60s", or "500ms" below a
// second.
func windowLabel(window time.Duration) string {
	ms := window.Milliseconds()
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	return fmt.Sprintf("%ds", ms/1000)
}
