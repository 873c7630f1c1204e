// Package retention deletes, periodically and on one replica at a time,
// the rows of authsvc's Postgres tables that are past their use.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKey is the Postgres advisory lock that one replica holds while it
// prunes ("authsvc retention").
const lockKey int64 = 0x61757468_72657400

// Defaults of [Config].
const (
	DefaultInterval            = 10 * time.Minute
	DefaultRevocationRetention = 90 * 24 * time.Hour
	DefaultBatchSize           = 5000
)

// Table names, as reported to [Observer.ObserveDeleted] and in logs.
const (
	TableCacheEntries         = "cache_entries"
	TableWebhookDeliveries    = "webhook_deliveries"
	TableScheduledRevocations = "scheduled_revocations"
	TableAPIKeyRotations      = "api_key_rotations"
)

// Config configures a [Job].
type Config struct {
	// Pool is the database. Required.
	Pool *pgxpool.Pool
	// Now is the clock rows are judged by. Required.
	Now func() time.Time
	// Interval is the time between runs on one replica, with up to a
	// tenth more at random so that replicas spread out; default
	// [DefaultInterval].
	Interval time.Duration
	// WebhookRetention is how long a delivery is remembered for
	// de-duplication. Required.
	WebhookRetention time.Duration
	// RevocationRetention is how long a scheduled revocation is kept
	// after it was done; default [DefaultRevocationRetention].
	RevocationRetention time.Duration
	// AuditRetention is how long a key rotation (the audit log) is kept
	// after it was requested; zero keeps it forever. A rotation whose
	// revocation is still scheduled is kept.
	AuditRetention time.Duration
	// BatchSize bounds the rows one statement deletes, so that no
	// statement holds locks for long; default [DefaultBatchSize].
	BatchSize int
	// Logger may be nil.
	Logger *slog.Logger
	// Observer is told how many rows of each table a run deleted, for
	// metrics; nil means none.
	Observer Observer
}

// Job is the retention job.
type Job struct {
	cfg Config
}

// New returns a Job.
func New(cfg Config) (*Job, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("retention: Pool is required")
	case cfg.Now == nil:
		return nil, errors.New("retention: Now is required")
	case cfg.WebhookRetention <= 0:
		return nil, errors.New("retention: WebhookRetention is required")
	case cfg.AuditRetention < 0 || cfg.RevocationRetention < 0 || cfg.Interval < 0:
		return nil, errors.New("retention: durations may not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RevocationRetention == 0 {
		cfg.RevocationRetention = DefaultRevocationRetention
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Job{cfg: cfg}, nil
}

// Run prunes every Interval (and once at the start, after a random part
// of it) until ctx ends.
func (j *Job) Run(ctx context.Context) {
	wait := rand.N(j.cfg.Interval/10 + 1)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.cfg.Logger.Warn("retention run failed; trying again next time", "error", err)
		}
		wait = j.cfg.Interval + rand.N(j.cfg.Interval/10+1)
	}
}

// Deleted is how many rows of each table one run deleted.
type Deleted map[string]int64

// RunOnce prunes once, unless another replica is pruning: then it returns
// nil, nil.
func (j *Job) RunOnce(ctx context.Context) (Deleted, error) {
	conn, err := j.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `select pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		return nil, fmt.Errorf("retention: take the lock: %w", err)
	}
	if !locked {
		return nil, nil
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `select pg_advisory_unlock($1)`, lockKey); err != nil {
			// The lock would outlive the run on this pooled connection.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	return j.prune(ctx, conn.Conn())
}

// statement is one kind of row past its use: a query that deletes up to
// $2 of them, given the time $1.
type statement struct {
	table string
	query string
	// before returns $1 from now; nil skips the statement.
	before func(now time.Time) time.Time
}

// statements are what a run deletes, in order: finished revocations before
// the rotations they belong to.
func (j *Job) statements() []statement {
	ago := func(d time.Duration) func(time.Time) time.Time {
		if d <= 0 {
			return nil
		}
		return func(now time.Time) time.Time { return now.Add(-d) }
	}
	return []statement{
		{
			// Every row carries when its content stops being of use: the
			// cache's maximum age for a value, a short life for a "not
			// found" or an invalidation.
			table: TableCacheEntries,
			query: `delete from cache_entries where (kind, key) in (
				select kind, key from cache_entries where expires_at < $1 limit $2)`,
			before: func(now time.Time) time.Time { return now },
		},
		{
			table: TableWebhookDeliveries,
			query: `delete from webhook_deliveries where id in (
				select id from webhook_deliveries where received_at < $1 limit $2)`,
			before: ago(j.cfg.WebhookRetention),
		},
		{
			table: TableScheduledRevocations,
			query: `delete from scheduled_revocations where rotation_id in (
				select rotation_id from scheduled_revocations where done_at < $1 limit $2)`,
			before: ago(j.cfg.RevocationRetention),
		},
		{
			table: TableAPIKeyRotations,
			query: `delete from api_key_rotations where id in (
				select r.id from api_key_rotations r
				where r.requested_at < $1
				  and not exists (select 1 from scheduled_revocations s where s.rotation_id = r.id)
				limit $2)`,
			before: ago(j.cfg.AuditRetention),
		},
	}
}

// prune runs every statement in batches until it deletes no more.
func (j *Job) prune(ctx context.Context, conn *pgx.Conn) (Deleted, error) {
	now := j.cfg.Now()
	out := Deleted{}
	for _, s := range j.statements() {
		if s.before == nil {
			continue
		}
		before := s.before(now)
		for {
			tag, err := conn.Exec(ctx, s.query, before, j.cfg.BatchSize)
			if err != nil {
				return out, fmt.Errorf("retention: delete from %s: %w", s.table, err)
			}
			out[s.table] += tag.RowsAffected()
			if tag.RowsAffected() < int64(j.cfg.BatchSize) {
				break
			}
		}
		j.cfg.Observer.ObserveDeleted(s.table, out[s.table])
	}
	var total int64
	attrs := []any{}
	for table, n := range out {
		total += n
		attrs = append(attrs, table, n)
	}
	if total > 0 {
		j.cfg.Logger.Info("deleted rows past their use", attrs...)
	}
	return out, nil
}
