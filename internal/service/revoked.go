package service

import (
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// maxRememberedRevocations bounds the sessions remembered as revoked.
// Forgetting one early costs at most one session list read.
const maxRememberedRevocations = 100_000

// revokedSessions remembers, in process memory, the sessions found
// revoked, each until its token would expire, so that a replayed token
// is refused without reading the session list again.
type revokedSessions struct {
	leeway time.Duration
	set    *otter.Cache[string, time.Time] // user and sid -> until
}

func newRevokedSessions(leeway time.Duration, now func() time.Time) (*revokedSessions, error) {
	set, err := otter.New(&otter.Options[string, time.Time]{
		MaximumSize: maxRememberedRevocations,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, time.Time]) time.Duration {
			return max(e.Value.Sub(now()), time.Second)
		}),
	})
	if err != nil {
		return nil, err
	}
	return &revokedSessions{leeway: leeway, set: set}, nil
}

func revokedKey(c *sessiontoken.Claims) string { return c.Subject + "\x00" + c.SessionID }

// add remembers the token's session as revoked until the token expires.
func (r *revokedSessions) add(c *sessiontoken.Claims, now time.Time) {
	until := c.ExpiresAt.Add(r.leeway)
	if !until.After(now) {
		return
	}
	r.set.Set(revokedKey(c), until)
}

// has reports whether the token's session is remembered as revoked.
func (r *revokedSessions) has(c *sessiontoken.Claims, now time.Time) bool {
	until, ok := r.set.GetIfPresent(revokedKey(c))
	return ok && until.After(now)
}
