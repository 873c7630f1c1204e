package webhook

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// Deduper remembers which deliveries, by webhook-id, were handled. The
// handler asks [Deduper.Seen] before acting and calls [Deduper.Record] only
// after the event was applied, so a delivery that failed is never
// remembered and Wacht's retry of it goes through. Two copies of one
// delivery arriving at once may both be acted on, which is harmless as
// applying an event is idempotent. Implementations must be safe for
// concurrent use.
type Deduper interface {
	// Seen reports whether the delivery id was recorded.
	Seen(ctx context.Context, id string) (bool, error)
	// Record remembers the delivery id, received at received. Recording an
	// id twice is not an error.
	Record(ctx context.Context, id string, received time.Time) error
}

// Retainer is implemented by a [Deduper] that remembers each delivery
// for a known time.
type Retainer interface {
	// Retention is how long a recorded delivery is remembered.
	Retention() time.Duration
}

// Defaults of the dedupers.
const (
	// DefaultRetention is how long a delivery is remembered, and so how
	// late a retry is accepted ([Config.MaxAge]).
	DefaultRetention = 24 * time.Hour
	// DefaultMemoryEntries bounds a [MemoryDeduper].
	DefaultMemoryEntries = 10_000
)

// MemoryDeduper is a [Deduper] in process memory for a single replica
// without Postgres (development). It remembers at most a bounded number of
// deliveries, each for a limited time; forgetting one early only means a
// redelivery is acted on again.
type MemoryDeduper struct {
	seen      *otter.Cache[string, struct{}]
	retention time.Duration
}

// NewMemoryDeduper returns a MemoryDeduper that remembers up to maxEntries
// deliveries (zero means [DefaultMemoryEntries]) for retention each (zero
// means [DefaultRetention]).
func NewMemoryDeduper(maxEntries int, retention time.Duration) *MemoryDeduper {
	return newMemoryDeduper(maxEntries, retention, nil)
}

// newMemoryDeduper is [NewMemoryDeduper] with a clock; nil is the real one.
func newMemoryDeduper(maxEntries int, retention time.Duration, clock otter.Clock) *MemoryDeduper {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryEntries
	}
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &MemoryDeduper{retention: retention, seen: otter.Must(&otter.Options[string, struct{}]{
		MaximumSize:      maxEntries,
		ExpiryCalculator: otter.ExpiryWriting[string, struct{}](retention),
		Clock:            clock,
	})}
}

// Retention implements [Retainer].
func (d *MemoryDeduper) Retention() time.Duration { return d.retention }

// Seen implements [Deduper].
func (d *MemoryDeduper) Seen(_ context.Context, id string) (bool, error) {
	_, ok := d.seen.GetIfPresent(id)
	return ok, nil
}

// Record implements [Deduper].
func (d *MemoryDeduper) Record(_ context.Context, id string, _ time.Time) error {
	d.seen.Set(id, struct{}{})
	return nil
}
