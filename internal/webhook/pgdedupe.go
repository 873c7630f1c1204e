package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cleanupEvery is how often a [PostgresDeduper] deletes expired rows, at
// most, per replica.
const cleanupEvery = time.Hour

// PostgresDeduper is a [Deduper] shared by every replica, on the
// webhook_deliveries table. It deletes rows older than its retention from
// time to time as it records new ones.
type PostgresDeduper struct {
	pool      *pgxpool.Pool
	retention time.Duration

	mu          sync.Mutex
	lastCleanup time.Time // zero until the first cleanup
}

// NewPostgresDeduper returns a PostgresDeduper on pool that remembers
// deliveries for retention (zero means [DefaultRetention]).
func NewPostgresDeduper(pool *pgxpool.Pool, retention time.Duration) *PostgresDeduper {
	if retention <= 0 {
		retention = DefaultRetention
	}
	return &PostgresDeduper{pool: pool, retention: retention}
}

// Retention implements [Retainer].
func (d *PostgresDeduper) Retention() time.Duration { return d.retention }

// Seen implements [Deduper].
func (d *PostgresDeduper) Seen(ctx context.Context, id string) (bool, error) {
	var seen bool
	err := d.pool.QueryRow(ctx,
		`select exists (select 1 from webhook_deliveries where id = $1)`, id).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("look up webhook delivery: %w", err)
	}
	return seen, nil
}

// Record implements [Deduper]. At most once an hour per replica, taking
// received as the time, it also deletes the rows older than the retention;
// an error in that cleanup is returned after the id was recorded.
func (d *PostgresDeduper) Record(ctx context.Context, id string, received time.Time) error {
	_, err := d.pool.Exec(ctx,
		`insert into webhook_deliveries (id, received_at) values ($1, $2) on conflict (id) do nothing`,
		id, received)
	if err != nil {
		return fmt.Errorf("record webhook delivery: %w", err)
	}
	if !d.cleanupDue(received) {
		return nil
	}
	if _, err := d.DeleteBefore(ctx, received.Add(-d.retention)); err != nil {
		return err
	}
	return nil
}

// cleanupDue reports whether a cleanup should run at now, and if so
// claims it.
func (d *PostgresDeduper) cleanupDue(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.lastCleanup.IsZero() && now.Sub(d.lastCleanup) < cleanupEvery {
		return false
	}
	d.lastCleanup = now
	return true
}

// DeleteBefore deletes the deliveries received before t and returns how
// many it deleted.
func (d *PostgresDeduper) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := d.pool.Exec(ctx, `delete from webhook_deliveries where received_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete old webhook deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}
