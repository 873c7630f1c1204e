package rotation

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Outcome is the state of a rotation in the audit log.
type Outcome string

// Outcomes of a rotation.
const (
	// OutcomeRotated: the new key exists and the old key is revoked.
	OutcomeRotated Outcome = "rotated"
	// OutcomePendingRevocation: the new key exists and the old key is
	// revoked by the worker at Record.PreviousKeyRevokesAt.
	OutcomePendingRevocation Outcome = "pending_revocation"
	// OutcomeFailed: nothing changed in Wacht; Record.Error says why.
	OutcomeFailed Outcome = "failed"
	// OutcomeUnknown: Wacht may or may not have acted, or the rotation is
	// still running or was interrupted; Record.Error says how to check.
	OutcomeUnknown Outcome = "unknown"
)

// Record is one rotation in the audit log. It never holds a secret.
type Record struct {
	// ID identifies the rotation; Wacht sees it in the old key's revoked
	// reason.
	ID string
	// Caller is who asked for the rotation.
	Caller string
	// AppSlug is the key's app.
	AppSlug string
	// PreviousKeyID is the key that was replaced.
	PreviousKeyID string
	// NewKeyID is the replacement, "" when none was made.
	NewKeyID string
	// NewKeySuffix is the replacement's key_suffix as Wacht shows it.
	NewKeySuffix string
	// Reason is the caller's reason.
	Reason string
	// Grace is the grace period asked for.
	Grace time.Duration
	// Outcome is where the rotation stands.
	Outcome Outcome
	// Error explains a failed or unknown outcome; "" otherwise.
	Error string
	// RequestedAt is when the rotation was asked for.
	RequestedAt time.Time
	// PreviousKeyRevokesAt is when the old key is (or was) to be revoked;
	// zero when no revocation followed.
	PreviousKeyRevokesAt time.Time
	// PreviousKeyRevokedAt is when the old key was found revoked; zero
	// until then.
	PreviousKeyRevokedAt time.Time
	// RevokeAttempts counts the worker's failed attempts at revoking the
	// old key.
	RevokeAttempts int
	// RevokeError is the last failed attempt's error while the revocation
	// is pending; "" once it is done.
	RevokeError string
}

// Listing limits.
const (
	// DefaultListLimit is the page size when ListQuery.Limit is zero.
	DefaultListLimit = 50
	// MaxListLimit is the largest page; larger limits are lowered to it.
	MaxListLimit = 500
)

// ListQuery selects a page of the audit log.
type ListQuery struct {
	// AppSlug, when set, keeps only that app's rotations.
	AppSlug string
	// Limit is the page size: zero means [DefaultListLimit], at most
	// [MaxListLimit].
	Limit int
	// After is the opaque cursor a previous List returned as next; ""
	// starts at the newest rotation.
	After string
}

// listQuery is a validated ListQuery.
type listQuery struct {
	appSlug string
	limit   int
	// before keeps only rotations with a smaller id; zero keeps all.
	before int64
}

// List returns rotations newest first, and the cursor of the next page, ""
// after the last. A bad AppSlug, Limit or After wraps
// [ErrInvalidArgument].
func (r *Rotator) List(ctx context.Context, q ListQuery) ([]Record, string, error) {
	lq := listQuery{appSlug: q.AppSlug, limit: q.Limit}
	if q.AppSlug != "" {
		if err := validSlug("app_slug", q.AppSlug); err != nil {
			return nil, "", err
		}
	}
	switch {
	case lq.limit < 0:
		return nil, "", invalid("limit", "must not be negative")
	case lq.limit == 0:
		lq.limit = DefaultListLimit
	case lq.limit > MaxListLimit:
		lq.limit = MaxListLimit
	}
	if q.After != "" {
		n, err := strconv.ParseInt(q.After, 10, 64)
		if err != nil || n <= 0 || q.After[0] < '0' || q.After[0] > '9' {
			return nil, "", invalid("after", "is not a cursor returned by List")
		}
		lq.before = n
	}
	// One more than asked tells whether a next page exists.
	lq.limit++
	recs, err := r.store.list(ctx, lq)
	if err != nil {
		return nil, "", fmt.Errorf("list rotations: %w", err)
	}
	if len(recs) < lq.limit {
		return recs, "", nil
	}
	recs = recs[:lq.limit-1]
	return recs, recs[len(recs)-1].ID, nil
}
