package retention_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/retention"
)

// now is the injected clock's time in these tests.
var now = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// seed fills every table with rows just past and just short of their use.
func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for i, expires := range []time.Duration{-time.Hour, -time.Second, time.Second, time.Hour} {
		exec(t, pool, `insert into cache_entries (kind, key, found, expires_at) values ('user', $1, false, $2)`,
			fmt.Sprint("k", i), now.Add(expires))
	}
	for i, age := range []time.Duration{8 * day, 7*day + time.Second, 7*day - time.Second, time.Hour} {
		exec(t, pool, `insert into webhook_deliveries (id, received_at) values ($1, $2)`, fmt.Sprint("msg_", i), now.Add(-age))
	}
	// Rotations requested 400 days ago but one; each revocation done some
	// days ago, or pending (-1), or never scheduled (0).
	for _, r := range []struct {
		id, requestedDaysAgo, doneDaysAgo int
	}{
		{1, 400, 100}, // revocation past its retention, rotation past the audit's
		{2, 400, -1},  // revocation pending: both kept
		{3, 400, 10},  // revocation recent: both kept
		{4, 10, 0},    // recent rotation
		{5, 400, 0},   // old rotation, no revocation
	} {
		exec(t, pool, `insert into api_key_rotations (id, caller, app_slug, previous_key_id, grace, outcome, requested_at)
			overriding system value values ($1, 'ops', 'app', 'key', '1 day', 'rotated', $2)`,
			r.id, now.Add(-time.Duration(r.requestedDaysAgo)*day))
		if r.doneDaysAgo == 0 {
			continue
		}
		var done *time.Time
		if r.doneDaysAgo > 0 {
			d := now.Add(-time.Duration(r.doneDaysAgo) * day)
			done = &d
		}
		due := now.Add(-time.Duration(r.requestedDaysAgo-1) * day)
		exec(t, pool, `insert into scheduled_revocations (rotation_id, app_slug, key_id, due_at, next_attempt_at, done_at)
			values ($1, 'app', 'key', $2, $2, $3)`, r.id, due, done)
	}
}

// remaining lists what is left of each table.
func remaining(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, q := range map[string]string{
		retention.TableCacheEntries:         `select key from cache_entries order by key`,
		retention.TableWebhookDeliveries:    `select id from webhook_deliveries order by id`,
		retention.TableScheduledRevocations: `select rotation_id::text from scheduled_revocations order by rotation_id`,
		retention.TableAPIKeyRotations:      `select id::text from api_key_rotations order by id`,
	} {
		rows, err := pool.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out[table] = keys
	}
	return out
}

func TestRunOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		auditRetention time.Duration
		want           map[string][]string
		wantDeleted    retention.Deleted
	}{
		{
			name: "audit kept",
			want: map[string][]string{
				retention.TableCacheEntries:         {"k2", "k3"},
				retention.TableWebhookDeliveries:    {"msg_2", "msg_3"},
				retention.TableScheduledRevocations: {"2", "3"},
				retention.TableAPIKeyRotations:      {"1", "2", "3", "4", "5"},
			},
			wantDeleted: retention.Deleted{
				retention.TableCacheEntries: 2, retention.TableWebhookDeliveries: 2, retention.TableScheduledRevocations: 1,
			},
		},
		{
			name:           "audit kept a year",
			auditRetention: 365 * day,
			want: map[string][]string{
				retention.TableCacheEntries:         {"k2", "k3"},
				retention.TableWebhookDeliveries:    {"msg_2", "msg_3"},
				retention.TableScheduledRevocations: {"2", "3"},
				retention.TableAPIKeyRotations:      {"2", "3", "4"},
			},
			wantDeleted: retention.Deleted{
				retention.TableCacheEntries: 2, retention.TableWebhookDeliveries: 2, retention.TableScheduledRevocations: 1,
				retention.TableAPIKeyRotations: 2,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.NewPool(t)
			seed(t, pool)
			observed := tally{}
			job, err := retention.New(retention.Config{
				Pool:             pool,
				Now:              func() time.Time { return now },
				WebhookRetention: 7 * day,
				AuditRetention:   tt.auditRetention,
				BatchSize:        1, // every table takes several batches
				Observer:         observed,
			})
			if err != nil {
				t.Fatal(err)
			}
			deleted, err := job.RunOnce(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, remaining(t, pool)); d != "" {
				t.Errorf("rows left (-want +got):\n%s", d)
			}
			drop0 := func(d retention.Deleted) retention.Deleted {
				out := retention.Deleted{}
				for k, v := range d {
					if v != 0 {
						out[k] = v
					}
				}
				return out
			}
			if d := cmp.Diff(tt.wantDeleted, drop0(deleted)); d != "" {
				t.Errorf("deleted (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantDeleted, drop0(retention.Deleted(observed))); d != "" {
				t.Errorf("observed (-want +got):\n%s", d)
			}
			// A second run finds nothing more.
			again, err := job.RunOnce(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if d := drop0(again); len(d) != 0 {
				t.Errorf("second run deleted %v", d)
			}
		})
	}
}

func TestOneReplicaAtATime(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	seed(t, pool)
	job, err := retention.New(retention.Config{Pool: pool, Now: func() time.Time { return now }, WebhookRetention: 7 * day})
	if err != nil {
		t.Fatal(err)
	}
	// Another replica holds the lock.
	other, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(t.Context(), `select pg_advisory_lock($1)`, retention.LockKey); err != nil {
		t.Fatal(err)
	}
	before := remaining(t, pool)
	deleted, err := job.RunOnce(t.Context())
	if _, err := other.Exec(t.Context(), `select pg_advisory_unlock($1)`, retention.LockKey); err != nil {
		t.Fatal(err)
	}
	other.Release()
	if err != nil {
		t.Fatal(err)
	}
	if deleted != nil {
		t.Errorf("with the lock held elsewhere, a run deleted %v", deleted)
	}
	if d := cmp.Diff(before, remaining(t, pool)); d != "" {
		t.Errorf("with the lock held elsewhere, rows changed (-before +after):\n%s", d)
	}
	if deleted, err := job.RunOnce(t.Context()); err != nil || deleted[retention.TableCacheEntries] != 2 {
		t.Errorf("once the lock is free: deleted %v, %v", deleted, err)
	}
}

// TestCacheRows checks the job against rows the cache itself wrote: a
// value is kept for its maximum age, a "not found" only for its short life.
func TestCacheRows(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	wall := time.Now()
	c, err := cache.New(cache.Config[string]{
		Kind:     "user",
		Pool:     pool,
		Notifier: cache.NewNotifier(pool, nil),
		Codec:    stringCodec{},
		MaxStale: 24 * time.Hour,
		Load: func(_ context.Context, key string) (string, error) {
			if key == "gone" {
				return "", cache.ErrNotFound
			}
			return "v", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Get(t.Context(), "here"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), "gone"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get(gone) = %v, want not found", err)
	}
	for _, tt := range []struct {
		after time.Duration
		want  []string
	}{
		{time.Minute, []string{"gone", "here"}},
		{time.Hour, []string{"here"}},
		{25 * time.Hour, []string{}},
	} {
		job, err := retention.New(retention.Config{
			Pool: pool, Now: func() time.Time { return wall.Add(tt.after) }, WebhookRetention: 7 * day,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := job.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := remaining(t, pool)[retention.TableCacheEntries]
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("cache rows %v on (-want +got):\n%s", tt.after, d)
		}
	}
}

type stringCodec struct{}

func (stringCodec) Marshal(s string) ([]byte, error)   { return []byte(s), nil }
func (stringCodec) Unmarshal(b []byte) (string, error) { return string(b), nil }

// tally is a [retention.Observer] that adds up the rows it is told of.
type tally retention.Deleted

func (t tally) ObserveDeleted(table string, n int64) { t[table] += n }
