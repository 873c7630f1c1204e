package rotation

import (
	"context"
	"time"
)

// Store keeps the audit log and the scheduled revocations. Its methods are
// unexported: the implementations are [PostgresStore], shared by every
// replica, and [MemoryStore], for one process.
type Store interface {
	// insert adds rec to the audit log and sets rec.ID.
	insert(ctx context.Context, rec *Record) error
	// update writes rec's outcome, new key, error and times to its row.
	update(ctx context.Context, rec Record) error
	// schedule does what update does and, atomically with it, schedules
	// the revocation of rec.PreviousKeyID at rec.PreviousKeyRevokesAt.
	schedule(ctx context.Context, rec Record) error
	// revokeNext claims the most overdue revocation that is due at now,
	// belongs to a rotation still pending revocation and is not claimed by
	// anyone else; it calls try with it while holding the claim, and
	// records the attempt unless it is abandoned. It reports whether there
	// was a due revocation.
	revokeNext(ctx context.Context, now time.Time, try func(context.Context, revocation) attempt) (attempt, bool, error)
	// list returns up to q.limit rotations, newest first.
	list(ctx context.Context, q listQuery) ([]Record, error)
}

// revocation is a scheduled revocation of an old key.
type revocation struct {
	rotationID string
	appSlug    string
	keyID      string
	dueAt      time.Time
	// attempts counts the failed attempts so far.
	attempts int
}

// attempt is the result of one try at a revocation.
type attempt struct {
	// abandoned means nothing is recorded and the revocation stays due:
	// the worker is stopping.
	abandoned bool
	// done means the key is revoked, at the time at.
	done bool
	at   time.Time
	// next and err are the retry time and error of a failed attempt.
	next time.Time
	err  string
}
