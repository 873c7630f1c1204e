package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/pgtest"
)

// replicas returns two caches of kind "user" on one database, each with
// its own pool and notifier, and a pool for the test's own queries.
func replicas(t *testing.T, src *source, clock *fakeClock) (a, b *Cache[user], admin *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewURL(t)
	admin = openPool(t, url)
	a = newCache(t, withPostgres(t, testConfig(src, clock), openPool(t, url)))
	b = newCache(t, withPostgres(t, testConfig(src, clock), openPool(t, url)))
	return a, b, admin
}

func TestReplicasSeeEachOthersInvalidations(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	a, b, _ := replicas(t, src, clock)
	ctx := t.Context()
	get(t, a, "u1")
	if r := get(t, b, "u1"); r.Source != SourcePostgres {
		t.Fatalf("second replica's Get from %v, want postgres", r.Source)
	}

	start := time.Now()
	if err := a.Invalidate(ctx, "u1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	eventually(t, 10*time.Second, "invalidation reaching the other replica", func() bool { return !inMemory(b, "u1") })
	t.Logf("invalidation reached the other replica in %v", time.Since(start))

	get(t, b, "u1")
	if err := a.Put(ctx, "u1", user{ID: "u1", Name: "Put"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	eventually(t, 10*time.Second, "put reaching the other replica", func() bool {
		e, ok := b.mem.GetIfPresent("u1")
		return !ok || e.value.Name == "Put"
	})
	if r := get(t, b, "u1"); r.Value.Name != "Put" {
		t.Fatalf("other replica's Get after Put = %+v", r)
	}
	// The writer keeps what it put: its own notification does not drop it.
	time.Sleep(50 * time.Millisecond)
	if r := get(t, a, "u1"); r.Value.Name != "Put" || r.Source != SourceMemory {
		t.Fatalf("writer's Get after Put = %+v, want Put from memory", r)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("loader called %d times, want 2 (once more after the invalidation)", n)
	}
}

func TestReplicasSeeInvalidateAll(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	src.set("u2", "Grace")
	a, b, admin := replicas(t, src, clock)
	for _, key := range []string{"u1", "u2"} {
		get(t, a, key)
		get(t, b, key)
	}
	if err := a.InvalidateAll(t.Context()); err != nil {
		t.Fatalf("InvalidateAll: %v", err)
	}
	eventually(t, 10*time.Second, "InvalidateAll reaching the other replica", func() bool {
		return !inMemory(b, "u1") && !inMemory(b, "u2")
	})
	var cached int
	if err := admin.QueryRow(t.Context(), "select count(*) from cache_entries where body is not null").Scan(&cached); err != nil || cached != 0 {
		t.Fatalf("%d rows still hold a value after InvalidateAll (%v)", cached, err)
	}
	if r := get(t, b, "u1"); r.Source != SourceLoad {
		t.Fatalf("Get after InvalidateAll = %+v, want a load", r)
	}
}

func TestNotifierReconnectsAndDropsMemory(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	src.set("u2", "Grace")
	a, b, admin := replicas(t, src, clock)
	ctx := t.Context()
	get(t, b, "u1")
	get(t, b, "u2")

	pid := b.notifier.pid.Load()
	var killed bool
	if err := admin.QueryRow(ctx, "select pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate listener %d: %v (killed %v)", pid, err, killed)
	}
	eventually(t, 5*time.Second, "listener reconnecting", func() bool {
		return b.notifier.Ready() && b.notifier.pid.Load() != pid
	})
	if inMemory(b, "u1") || inMemory(b, "u2") {
		t.Fatal("memory kept after a reconnect, when invalidations may have been missed")
	}

	get(t, b, "u1")
	if err := a.Invalidate(ctx, "u1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	eventually(t, 10*time.Second, "invalidation after the reconnect", func() bool { return !inMemory(b, "u1") })
}

func TestMalformedNotificationDropsMemory(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.set("u1", "Ada")
	a, _, admin := replicas(t, src, newFakeClock())
	get(t, a, "u1")
	if _, err := admin.Exec(t.Context(), "select pg_notify($1, 'not json')", channel); err != nil {
		t.Fatalf("notify: %v", err)
	}
	eventually(t, 10*time.Second, "memory dropped after a malformed notification", func() bool { return !inMemory(a, "u1") })
}

func TestOneCachePerKindPerNotifier(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	cfg := withPostgres(t, testConfig(newSource(), newFakeClock()), pool)
	first := newCache(t, cfg)
	if c, err := New(cfg); err == nil {
		c.Close()
		t.Fatal("a second cache of the same kind registered with one notifier")
	}
	first.Close()
	newCache(t, cfg) // the kind is free again
}

// TestPostgresDown checks that reads work without Postgres, from the
// loader and memory, and that writes drop locally and report the error.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pool func(t *testing.T) *pgxpool.Pool
	}{
		{"closed_port", func(t *testing.T) *pgxpool.Pool {
			pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
			if err != nil {
				t.Fatalf("pool: %v", err)
			}
			t.Cleanup(pool.Close)
			return pool
		}},
		{"closed_pool", func(t *testing.T) *pgxpool.Pool {
			pool := openPool(t, pgtest.NewURL(t))
			pool.Close()
			return pool
		}},
		{"dropped_database", func(t *testing.T) *pgxpool.Pool {
			pool := openPool(t, pgtest.NewURL(t))
			cfg := pool.Config().ConnConfig
			admin := openPool(t, pgtest.ServerURL())
			if _, err := admin.Exec(t.Context(), "drop database "+cfg.Database+" with (force)"); err != nil {
				t.Fatalf("drop database: %v", err)
			}
			return pool
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src, rec := newSource(), newRecorder()
			src.set("u1", "Ada")
			pool := tc.pool(t)
			notifier := NewNotifier(pool, nil)
			cfg := testConfig(src, newFakeClock())
			cfg.Pool, cfg.Notifier, cfg.Codec, cfg.Observer = pool, notifier, JSONCodec[user]{}, rec
			c := newCache(t, cfg)
			ctx := t.Context()

			start := time.Now()
			if r := get(t, c, "u1"); r.Source != SourceLoad || r.Value.Name != "Ada" {
				t.Fatalf("Get = %+v, want a load", r)
			}
			if r := get(t, c, "u1"); r.Source != SourceMemory {
				t.Fatalf("second Get = %+v, want memory", r)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("reads took %v with Postgres down", d)
			}
			if err := c.Invalidate(ctx, "u1"); err == nil {
				t.Fatal("Invalidate with Postgres down succeeded")
			}
			if inMemory(c, "u1") {
				t.Fatal("Invalidate with Postgres down kept the entry in memory")
			}
			if err := c.Put(ctx, "u1", user{ID: "u1", Name: "Put"}); err == nil {
				t.Fatal("Put with Postgres down succeeded")
			}
			if r := get(t, c, "u1"); r.Value.Name != "Put" {
				t.Fatalf("Get after a failed Put = %+v, want the put value kept locally", r)
			}
			_, _, pgErrs := rec.snapshot()
			if pgErrs["read"] == 0 || pgErrs["invalidate"] != 1 || pgErrs["put"] != 1 {
				t.Fatalf("observed Postgres errors %v, want reads, 1 invalidate, 1 put", pgErrs)
			}

			// The notifier keeps trying and is not ready meanwhile.
			nctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			notifier.minBackoff = 10 * time.Millisecond
			notifier.Run(nctx)
			if notifier.Ready() {
				t.Fatal("notifier ready without a database")
			}
			if !errors.Is(nctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("notifier Run returned before its context ended: %v", nctx.Err())
			}
		})
	}
}
