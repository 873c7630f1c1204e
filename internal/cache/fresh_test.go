package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/pgtest"
)

// swrConfig is testConfig with a soft TTL of a minute and a hard maximum
// age of an hour.
func swrConfig(src *source, clock *fakeClock) Config[user] {
	cfg := testConfig(src, clock)
	cfg.MaxAge = time.Hour
	cfg.MaxStale = 2 * time.Hour
	cfg.RefreshRetry = 10 * time.Millisecond
	return cfg
}

// versioned returns cfg whose values' versions are given by names: a user
// named "v<N>..." has version N.
func versioned(cfg Config[user]) Config[user] {
	cfg.Version = func(u user) int64 {
		var v int64
		_, _ = fmt.Sscanf(u.Name, "v%d", &v)
		return v
	}
	return cfg
}

func TestSoftTTLServesAtOnceAndRefreshesInBackground(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "postgres"}[pg], func(t *testing.T) {
			t.Parallel()
			src, clock := newSource(), newFakeClock()
			src.set("u1", "old")
			cfg := swrConfig(src, clock)
			if pg {
				cfg = withPostgres(t, cfg, pgtest.NewPool(t))
			}
			c := newCache(t, cfg)
			get(t, c, "u1")
			src.set("u1", "new")
			clock.Advance(2 * time.Minute) // past the soft TTL, within the hard age

			// The refresh is held: the read must not wait for it.
			release := src.hold(2)
			defer release()
			r := get(t, c, "u1")
			if r.Value.Name != "old" || r.Stale || r.Source != SourceMemory {
				t.Fatalf("Get past the soft TTL = %+v, want the old value from memory, not stale", r)
			}
			eventually(t, 5*time.Second, "background refresh started", func() bool { return src.calls.Load() == 2 })
			for range 10 {
				get(t, c, "u1") // queued once only
			}
			release()
			eventually(t, 5*time.Second, "refreshed value served", func() bool {
				return get(t, c, "u1").Value.Name == "new"
			})
			if n := src.calls.Load(); n != 2 {
				t.Fatalf("loader called %d times, want 2 (one load, one refresh)", n)
			}
		})
	}
}

func TestRefreshContextIsMarked(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	var mu sync.Mutex
	var marks []bool
	cfg := testConfig(nil, clock)
	cfg.MaxAge, cfg.RefreshRetry = time.Hour, 10*time.Millisecond
	cfg.Load = func(ctx context.Context, key string) (user, error) {
		mu.Lock()
		defer mu.Unlock()
		marks = append(marks, IsRefresh(ctx))
		return user{ID: key, Name: "x"}, nil
	}
	c := newCache(t, cfg)
	get(t, c, "u1")
	clock.Advance(2 * time.Minute)
	get(t, c, "u1")
	eventually(t, 5*time.Second, "refresh", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(marks) == 2
	})
	if marks[0] || !marks[1] {
		t.Fatalf("IsRefresh of (foreground load, background refresh) = %v, want [false true]", marks)
	}
}

func TestHardMaxAgeForcesLoad(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "old")
	c := newCache(t, withPostgres(t, swrConfig(src, clock), pgtest.NewPool(t)))
	get(t, c, "u1")
	src.set("u1", "new")
	clock.Advance(time.Hour)
	if r := get(t, c, "u1"); r.Value.Name != "new" || r.Source != SourceLoad {
		t.Fatalf("Get at the hard maximum age = %+v, want a load of the new value", r)
	}
	// Past the hard age, a failing loader still gets stale-on-error.
	src.fail(errUnavailable)
	clock.Advance(time.Hour)
	if r := get(t, c, "u1"); r.Value.Name != "new" || !r.Stale {
		t.Fatalf("Get past the hard age with the loader down = %+v, want the value marked stale", r)
	}
}

func TestDeferredRefreshIsRetriedLater(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "old")
	rec := newRecorder()
	cfg := swrConfig(src, clock)
	cfg.Observer = rec
	c := newCache(t, cfg)
	get(t, c, "u1")
	clock.Advance(2 * time.Minute)
	src.fail(fmt.Errorf("no budget: %w", ErrDeferred))
	get(t, c, "u1")
	eventually(t, 5*time.Second, "refused refresh", func() bool {
		reads, _, _ := rec.snapshot()
		return reads["refresh/refused"] == 1
	})
	// Still served, not stale, while it waits.
	if r := get(t, c, "u1"); r.Value.Name != "old" || r.Stale {
		t.Fatalf("Get after a refused refresh = %+v, want the old value", r)
	}
	src.fail(nil)
	src.set("u1", "new")
	clock.Advance(time.Second) // past RefreshRetry
	eventually(t, 5*time.Second, "retried refresh", func() bool { return get(t, c, "u1").Value.Name == "new" })
}

func TestOneRefreshPerKeyAcrossReplicas(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "old")
	const replicas = 4
	caches := make([]*Cache[user], replicas)
	for i := range caches {
		caches[i] = newCache(t, withPostgres(t, swrConfig(src, clock), openPool(t, pool.Config().ConnString())))
	}
	get(t, caches[0], "u1")
	for _, c := range caches[1:] {
		if r := get(t, c, "u1"); r.Source != SourcePostgres {
			t.Fatalf("other replica read %+v, want it from Postgres", r)
		}
	}
	src.set("u1", "new")
	clock.Advance(2 * time.Minute)
	release := src.hold(2)
	var wg sync.WaitGroup
	for _, c := range caches {
		wg.Go(func() { get(t, c, "u1") })
	}
	wg.Wait()
	eventually(t, 5*time.Second, "one refresh started", func() bool { return src.calls.Load() == 2 })
	time.Sleep(100 * time.Millisecond) // give the other replicas time to try
	release()
	for i, c := range caches {
		eventually(t, 5*time.Second, fmt.Sprintf("replica %d serves the refreshed value", i), func() bool {
			return get(t, c, "u1").Value.Name == "new"
		})
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("loader called %d times across %d replicas, want 2 (one load, one refresh)", n, replicas)
	}
}

func TestWriteIsOrderedByVersion(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "postgres"}[pg], func(t *testing.T) {
			t.Parallel()
			src, clock := newSource(), newFakeClock()
			cfg := versioned(swrConfig(src, clock))
			var pool = pgtest.NewPool(t)
			if pg {
				cfg = withPostgres(t, cfg, pool)
			}
			c := newCache(t, cfg)
			ctx := t.Context()
			mustWrite := func(name string, version int64, want bool) {
				t.Helper()
				ok, err := c.Write(ctx, "u1", user{ID: "u1", Name: name}, version)
				if err != nil || ok != want {
					t.Fatalf("Write(%s, %d) = %v, %v; want %v", name, version, ok, err, want)
				}
			}
			mustWrite("v20", 20, true)
			mustWrite("v10", 10, false) // delivered late
			if r := get(t, c, "u1"); r.Value.Name != "v20" {
				t.Fatalf("after a late older write, Get = %+v, want v20", r)
			}
			if pg {
				// And on another replica, from Postgres.
				other := newCache(t, withPostgres(t, versioned(swrConfig(src, clock)), openPool(t, pool.Config().ConnString())))
				if r := get(t, other, "u1"); r.Value.Name != "v20" || r.Source != SourcePostgres {
					t.Fatalf("other replica Get = %+v, want v20 from Postgres", r)
				}
			}
			if ok, err := c.Delete(ctx, "u1", 30, 24*time.Hour); !ok || err != nil {
				t.Fatalf("Delete = %v, %v", ok, err)
			}
			mustWrite("v25", 25, false)  // a late update after the deletion
			clock.Advance(2 * time.Hour) // past every TTL, within the tombstone
			if _, err := c.Get(ctx, "u1"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after a deletion and a late update: %v, want ErrNotFound", err)
			}
			if n := src.calls.Load(); n != 0 {
				t.Fatalf("loader called %d times, want 0: writes and the tombstone answer", n)
			}
		})
	}
}

func TestWriteThroughReachesEveryReplica(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "v1")
	a := newCache(t, versioned(withPostgres(t, swrConfig(src, clock), pool)))
	b := newCache(t, versioned(withPostgres(t, swrConfig(src, clock), openPool(t, pool.Config().ConnString()))))
	get(t, a, "u1")
	get(t, b, "u1")
	if ok, err := a.Write(t.Context(), "u1", user{ID: "u1", Name: "v2"}, 2); !ok || err != nil {
		t.Fatalf("Write = %v, %v", ok, err)
	}
	if r := get(t, a, "u1"); r.Value.Name != "v2" || r.Source != SourceMemory {
		t.Fatalf("writer's Get = %+v, want v2 from memory", r)
	}
	eventually(t, 5*time.Second, "other replica sees the write", func() bool { return get(t, b, "u1").Value.Name == "v2" })
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times, want 1: the write costs no load", n)
	}
}

func TestLoadRacingWriteLoses(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "v1")
	c := newCache(t, versioned(withPostgres(t, swrConfig(src, clock), pool)))
	release := src.hold(1)
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "u1")
		done <- err
	}()
	eventually(t, 5*time.Second, "load started", func() bool { return src.calls.Load() == 1 })
	if ok, err := c.Write(t.Context(), "u1", user{ID: "u1", Name: "v2"}, 2); !ok || err != nil {
		t.Fatalf("Write = %v, %v", ok, err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := get(t, c, "u1"); r.Value.Name != "v2" {
		t.Fatalf("Get after a load raced a write = %+v, want v2", r)
	}
	if r, _ := readRow(t, pool, "user", "u1"); r.Body != `{"id":"u1","name":"v2"}` {
		t.Fatalf("row = %+v, want v2", r)
	}
}

func TestUpdateAndTags(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "postgres"}[pg], func(t *testing.T) {
			t.Parallel()
			src, clock := newSource(), newFakeClock()
			src.set("u1", "a")
			cfg := swrConfig(src, clock)
			cfg.Tags = func(u user) []string { return []string{"name:" + u.Name} }
			if pg {
				cfg = withPostgres(t, cfg, pgtest.NewPool(t))
			}
			c := newCache(t, cfg)
			ctx := t.Context()
			fetched := get(t, c, "u1").FetchedAt
			keys, err := c.KeysTagged(ctx, "name:a")
			if err != nil || len(keys) != 1 || keys[0] != "u1" {
				t.Fatalf("KeysTagged = %v, %v; want [u1]", keys, err)
			}
			rename := func(u user) user { u.Name = "b"; return u }
			version := clock.Now().Add(time.Second).UnixMicro()
			if ok, err := c.Update(ctx, "u1", version, rename); !ok || err != nil {
				t.Fatalf("Update = %v, %v", ok, err)
			}
			if r := get(t, c, "u1"); r.Value.Name != "b" || !r.FetchedAt.Equal(fetched) {
				t.Fatalf("Get after Update = %+v, want b with the age of the load", r)
			}
			if keys, _ := c.KeysTagged(ctx, "name:b"); len(keys) != 1 {
				t.Fatalf("KeysTagged(new tag) = %v, want [u1]", keys)
			}
			// An older change is not applied: the key is dropped instead.
			if ok, err := c.Update(ctx, "u1", version-10, rename); ok || err != nil {
				t.Fatalf("older Update = %v, %v; want false", ok, err)
			}
			// Not cached: nothing to update.
			if ok, err := c.Update(ctx, "u2", version, rename); ok || err != nil {
				t.Fatalf("Update of an uncached key = %v, %v; want false", ok, err)
			}
			if r := get(t, c, "u1"); r.Value.Name != "a" || r.Source != SourceLoad {
				t.Fatalf("Get after an older Update = %+v, want a load", r)
			}
		})
	}
}

func TestFenceMakesLoadsInFlightYield(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "a")
	c := newCache(t, withPostgres(t, swrConfig(src, clock), pool))
	release := src.hold(1)
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "u1")
		done <- err
	}()
	eventually(t, 5*time.Second, "load started", func() bool { return src.calls.Load() == 1 })
	if err := c.Fence(t.Context()); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := readRow(t, pool, "user", "u1"); ok {
		t.Fatal("a load in flight across a fence wrote its result")
	}
}
