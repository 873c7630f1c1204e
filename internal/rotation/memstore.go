package rotation

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is a [Store] in memory, for a single process without a
// database (authsvc dev): its audit log and scheduled revocations are lost
// when the process ends. A claimed revocation is skipped by other workers
// of the process, as with [PostgresStore]. The zero value is not usable;
// call NewMemoryStore.
type MemoryStore struct {
	mu sync.Mutex
	// rotations[i] has ID i+1.
	rotations []Record
	queue     map[string]*memRevocation
}

// memRevocation is a scheduled revocation and its progress.
type memRevocation struct {
	revocation
	nextAttemptAt time.Time
	lastError     string
	done          bool
	claimed       bool
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{queue: map[string]*memRevocation{}}
}

func (s *MemoryStore) insert(_ context.Context, rec *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.ID = strconv.Itoa(len(s.rotations) + 1)
	s.rotations = append(s.rotations, *rec)
	return nil
}

func (s *MemoryStore) update(_ context.Context, rec Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(rec)
}

func (s *MemoryStore) updateLocked(rec Record) error {
	i, err := strconv.Atoi(rec.ID)
	if err != nil || i < 1 || i > len(s.rotations) {
		return fmt.Errorf("update rotation %q: no such row", rec.ID)
	}
	row := &s.rotations[i-1]
	row.NewKeyID, row.NewKeySuffix = rec.NewKeyID, rec.NewKeySuffix
	row.Outcome, row.Error = rec.Outcome, rec.Error
	row.PreviousKeyRevokesAt, row.PreviousKeyRevokedAt = rec.PreviousKeyRevokesAt, rec.PreviousKeyRevokedAt
	return nil
}

func (s *MemoryStore) schedule(_ context.Context, rec Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.queue[rec.ID]; dup {
		return fmt.Errorf("schedule revocation of api key %s: rotation %s has one", rec.PreviousKeyID, rec.ID)
	}
	if err := s.updateLocked(rec); err != nil {
		return fmt.Errorf("schedule revocation of api key %s: %w", rec.PreviousKeyID, err)
	}
	s.queue[rec.ID] = &memRevocation{
		revocation: revocation{
			rotationID: rec.ID,
			appSlug:    rec.AppSlug,
			keyID:      rec.PreviousKeyID,
			dueAt:      rec.PreviousKeyRevokesAt,
		},
		nextAttemptAt: rec.PreviousKeyRevokesAt,
	}
	return nil
}

func (s *MemoryStore) revokeNext(ctx context.Context, now time.Time, try func(context.Context, revocation) attempt) (attempt, bool, error) {
	s.mu.Lock()
	var next *memRevocation
	for _, q := range s.queue {
		if q.done || q.claimed || q.dueAt.After(now) || q.nextAttemptAt.After(now) ||
			s.rotationLocked(q.rotationID).Outcome != OutcomePendingRevocation {
			continue
		}
		if next == nil || q.dueAt.Before(next.dueAt) ||
			q.dueAt.Equal(next.dueAt) && idLess(q.rotationID, next.rotationID) {
			next = q
		}
	}
	if next == nil {
		s.mu.Unlock()
		return attempt{}, false, nil
	}
	next.claimed = true
	rev := next.revocation
	s.mu.Unlock()

	a := try(ctx, rev)

	s.mu.Lock()
	defer s.mu.Unlock()
	next.claimed = false
	switch {
	case a.abandoned:
	case a.done:
		next.done, next.lastError = true, ""
		row := s.rotationLocked(next.rotationID)
		row.Outcome, row.Error, row.PreviousKeyRevokedAt = OutcomeRotated, "", a.at
	default:
		next.attempts++
		next.nextAttemptAt, next.lastError = a.next, a.err
	}
	return a, true, nil
}

func (s *MemoryStore) list(_ context.Context, q listQuery) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for i := len(s.rotations) - 1; i >= 0 && len(out) < q.limit; i-- {
		rec := s.rotations[i]
		if q.appSlug != "" && rec.AppSlug != q.appSlug || q.before != 0 && int64(i+1) >= q.before {
			continue
		}
		if rev, ok := s.queue[rec.ID]; ok {
			rec.RevokeAttempts, rec.RevokeError = rev.attempts, rev.lastError
		}
		out = append(out, rec)
	}
	return out, nil
}

// rotationLocked returns the row of a rotation known to exist.
func (s *MemoryStore) rotationLocked(id string) *Record {
	i, _ := strconv.Atoi(id)
	return &s.rotations[i-1]
}

// idLess orders decimal ids numerically.
func idLess(a, b string) bool {
	return len(a) < len(b) || len(a) == len(b) && a < b
}
