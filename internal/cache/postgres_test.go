package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/pgtest"
)

// dbRow is a cache_entries row as tests see it.
type dbRow struct {
	Found      bool
	Body       string
	Dated      bool
	Generation int64
}

// readRow returns kind/key's row and whether there is one.
func readRow(t *testing.T, pool *pgxpool.Pool, kind, key string) (dbRow, bool) {
	t.Helper()
	var r dbRow
	var body []byte
	err := pool.QueryRow(t.Context(),
		`select found, body, fetched_at is not null, generation from cache_entries where kind = $1 and key = $2`,
		kind, key).Scan(&r.Found, &body, &r.Dated, &r.Generation)
	if err != nil {
		return dbRow{}, false
	}
	r.Body = string(body)
	return r, true
}

func TestPostgresLevelIsSharedAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	a := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	fetched := clock.Now()
	get(t, a, "u1")
	if r, ok := readRow(t, pool, "user", "u1"); !ok || !r.Found || r.Body != `{"id":"u1","name":"Ada"}` {
		t.Fatalf("row after a load = %+v (exists %v), want the encoded user", r, ok)
	}

	// A restarted replica, whose loader is down, reads Postgres.
	down := newSource()
	down.fail(errUnavailable)
	b := newCache(t, withPostgres(t, testConfig(down, clock), pool))
	clock.Advance(30 * time.Second)
	want := Result[user]{Value: user{ID: "u1", Name: "Ada"}, Source: SourcePostgres, FetchedAt: fetched}
	if diff := cmp.Diff(want, get(t, b, "u1")); diff != "" {
		t.Fatalf("Get on a new instance (-want +got):\n%s", diff)
	}
	if !inMemory(b, "u1") {
		t.Fatal("a Postgres hit was not kept in memory")
	}

	// Past the TTL, with the loader still down: stale from Postgres.
	c := newCache(t, withPostgres(t, Config[user]{
		Kind: "user", Load: down.load, TTL: time.Minute, MaxStale: time.Hour, Now: clock.Now,
	}, openPool(t, pool.Config().ConnString())))
	clock.Advance(time.Minute)
	want.Stale, want.Source = true, SourcePostgres
	if diff := cmp.Diff(want, get(t, c, "u1")); diff != "" {
		t.Fatalf("Get past TTL with the loader down (-want +got):\n%s", diff)
	}
	clock.Advance(time.Hour)
	if _, err := c.Get(t.Context(), "u1"); !errors.Is(err, errUnavailable) {
		t.Fatalf("Get past MaxStale: %v, want %v", err, errUnavailable)
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("first replica's loader called %d times, want 1", n)
	}
}

func TestPostgresCoalescesConcurrentMisses(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src := newSource()
	src.set("u1", "Ada")
	release := src.hold(1)
	c := newCache(t, withPostgres(t, testConfig(src, newFakeClock()), pool))

	const callers = 1000
	concurrently(t, callers, release, func() error {
		if _, err := c.Get(context.Background(), "u1"); err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		return nil
	})
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times for %d concurrent misses, want 1", n, callers)
	}
}

func TestPostgresNegativeCache(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	a := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	if _, err := a.Get(t.Context(), "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	if r, ok := readRow(t, pool, "user", "ghost"); !ok || r.Found || !r.Dated || r.Body != "" {
		t.Fatalf("row = %+v (exists %v), want a dated not-found row", r, ok)
	}

	other := newSource()
	other.set("ghost", "Casper")
	b := newCache(t, withPostgres(t, testConfig(other, clock), openPool(t, pool.Config().ConnString())))
	clock.Advance(29 * time.Second)
	if _, err := b.Get(t.Context(), "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on another replica within NegativeTTL: %v, want ErrNotFound", err)
	}
	clock.Advance(time.Second)
	if r := get(t, b, "ghost"); r.Value.Name != "Casper" || r.Source != SourceLoad {
		t.Fatalf("Get after NegativeTTL = %+v, want a load of Casper", r)
	}
	if src.calls.Load() != 1 || other.calls.Load() != 1 {
		t.Fatalf("loaders called %d and %d times, want 1 and 1", src.calls.Load(), other.calls.Load())
	}
}

func TestPostgresNotFoundReplacesStaleRow(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	get(t, c, "u1")
	src.remove("u1")
	clock.Advance(2 * time.Minute)
	if _, err := c.Get(t.Context(), "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	if r, _ := readRow(t, pool, "user", "u1"); r.Found || r.Body != "" {
		t.Fatalf("row = %+v, want not found with no body", r)
	}
	// Past NegativeTTL with the loader down, nothing stale is left to serve.
	src.fail(errUnavailable)
	clock.Advance(time.Minute)
	if r, err := c.Get(t.Context(), "u1"); !errors.Is(err, errUnavailable) {
		t.Fatalf("Get = %+v, %v; want %v", r, err, errUnavailable)
	}
}

func TestPostgresInvalidateAndPut(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	ctx := t.Context()
	get(t, c, "u1")
	before, _ := readRow(t, pool, "user", "u1")

	if err := c.Invalidate(ctx, "u1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	after, _ := readRow(t, pool, "user", "u1")
	if after.Found || after.Dated || after.Body != "" || after.Generation <= before.Generation {
		t.Fatalf("row after Invalidate = %+v (before %+v), want no body, no date, a later generation", after, before)
	}
	// An invalidated row is never served stale.
	src.fail(errUnavailable)
	if r, err := c.Get(ctx, "u1"); !errors.Is(err, errUnavailable) {
		t.Fatalf("Get after Invalidate with the loader down = %+v, %v; want %v", r, err, errUnavailable)
	}

	if err := c.Put(ctx, "u1", user{ID: "u1", Name: "Put"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if r, _ := readRow(t, pool, "user", "u1"); !r.Found || r.Body != `{"id":"u1","name":"Put"}` {
		t.Fatalf("row after Put = %+v", r)
	}
	if err := c.MarkNotFound(ctx, "u1"); err != nil {
		t.Fatalf("MarkNotFound: %v", err)
	}
	if r, _ := readRow(t, pool, "user", "u1"); r.Found || !r.Dated {
		t.Fatalf("row after MarkNotFound = %+v, want a dated not-found row", r)
	}
	if _, err := c.Get(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after MarkNotFound: %v, want ErrNotFound", err)
	}
}

// TestInvalidationRace holds a load while the key is invalidated (or
// overwritten), then lets it return the old value: neither memory nor
// Postgres may end up with it, and callers that came after the
// invalidation must not be handed it.
func TestInvalidationRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		postgres bool
		write    func(ctx context.Context, c *Cache[user]) error
		want     string // the name that must be cached in the end
	}{
		{"invalidate_memory_only", false, func(ctx context.Context, c *Cache[user]) error { return c.Invalidate(ctx, "u1") }, "new"},
		{"invalidate_postgres", true, func(ctx context.Context, c *Cache[user]) error { return c.Invalidate(ctx, "u1") }, "new"},
		{"put_memory_only", false, func(ctx context.Context, c *Cache[user]) error {
			return c.Put(ctx, "u1", user{ID: "u1", Name: "put"})
		}, "put"},
		{"put_postgres", true, func(ctx context.Context, c *Cache[user]) error {
			return c.Put(ctx, "u1", user{ID: "u1", Name: "put"})
		}, "put"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := newSource()
			src.set("u1", "old")
			src.inside = make(chan int, 10)
			cfg := testConfig(src, newFakeClock())
			var pool *pgxpool.Pool
			if tc.postgres {
				pool = pgtest.NewPool(t)
				cfg = withPostgres(t, cfg, pool)
			}
			c := newCache(t, cfg)
			ctx := t.Context()

			// Call 1 reads "old", then waits until after the write.
			release := src.hold(1)
			defer release()
			type got struct {
				r   Result[user]
				err error
			}
			first := make(chan got, 1)
			go func() {
				r, err := c.Get(ctx, "u1")
				first <- got{r, err}
			}()
			<-src.inside // call 1 is in flight, with "old"
			if err := tc.write(ctx, c); err != nil {
				t.Fatalf("write: %v", err)
			}
			src.set("u1", "new")

			// A caller after the write gets a load of its own.
			second := get(t, c, "u1")
			if second.Value.Name != tc.want {
				t.Fatalf("Get after the write = %+v, want %q", second, tc.want)
			}
			// Now call 1 returns the old value.
			release()
			g := <-first
			if g.err != nil || g.r.Value.Name != "old" {
				t.Fatalf("first Get = %+v, %v; want the old value it asked for", g.r, g.err)
			}

			if e, ok := c.mem.GetIfPresent("u1"); !ok || e.value.Name != tc.want {
				t.Fatalf("memory holds %+v (present %v), want %q", e, ok, tc.want)
			}
			if pool != nil {
				if r, _ := readRow(t, pool, "user", "u1"); r.Body != `{"id":"u1","name":"`+tc.want+`"}` {
					t.Fatalf("row holds %+v, want %q", r, tc.want)
				}
			}
			if r := get(t, c, "u1"); r.Value.Name != tc.want {
				t.Fatalf("final Get = %+v, want %q", r, tc.want)
			}
		})
	}
}

// TestInvalidationRaceNoLaterReader is the plain case: a load in flight
// during an invalidation returns old data, and the next Get loads fresh.
func TestInvalidationRaceNoLaterReader(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src := newSource()
	src.set("u1", "old")
	src.inside = make(chan int, 10)
	c := newCache(t, withPostgres(t, testConfig(src, newFakeClock()), pool))
	ctx := t.Context()

	release := src.hold(1)
	done := make(chan Result[user], 1)
	go func() {
		r, _ := c.Get(ctx, "u1")
		done <- r
	}()
	<-src.inside
	if err := c.Invalidate(ctx, "u1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	release()
	if r := <-done; r.Value.Name != "old" {
		t.Fatalf("in-flight Get = %+v, want old", r)
	}
	if inMemory(c, "u1") {
		t.Fatal("the in-flight load stored its result in memory after an invalidation")
	}
	if r, _ := readRow(t, pool, "user", "u1"); r.Found || r.Body != "" {
		t.Fatalf("the in-flight load wrote its result back after an invalidation: row %+v", r)
	}
	src.set("u1", "new")
	if r := get(t, c, "u1"); r.Value.Name != "new" || r.Source != SourceLoad {
		t.Fatalf("next Get = %+v, want a load of new", r)
	}
}

// TestInvalidateAllRace holds loads of a key with a row and of a key
// without one while the whole kind is invalidated: neither may write back.
func TestInvalidateAllRace(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src := newSource()
	src.set("u1", "old")
	src.set("u2", "old")
	src.inside = make(chan int, 10)
	clock := newFakeClock()
	c := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	ctx := t.Context()
	get(t, c, "u1")
	<-src.inside
	clock.Advance(2 * time.Minute) // u1's row is stale: the next Get loads

	release2, release3 := src.hold(2), src.hold(3)
	var wg sync.WaitGroup
	for _, key := range []string{"u1", "u2"} {
		wg.Go(func() { _, _ = c.Get(ctx, key) })
	}
	<-src.inside
	<-src.inside
	if err := c.InvalidateAll(ctx); err != nil {
		t.Fatalf("InvalidateAll: %v", err)
	}
	release2()
	release3()
	wg.Wait()

	for _, key := range []string{"u1", "u2"} {
		if inMemory(c, key) {
			t.Errorf("%s: a load in flight stored its result in memory after InvalidateAll", key)
		}
		if r, ok := readRow(t, pool, "user", key); ok && r.Body != "" {
			t.Errorf("%s: a load in flight wrote back after InvalidateAll: row %+v", key, r)
		}
	}
	src.set("u2", "new")
	if r := get(t, c, "u2"); r.Value.Name != "new" || r.Source != SourceLoad {
		t.Fatalf("next Get = %+v, want a load of new", r)
	}
}

// TestStaleMemoryDoesNotOverruleNotFoundInPostgres: a replica that still
// holds a user in memory must not serve it stale once another replica has
// learned from the source that the user is gone.
func TestStaleMemoryDoesNotOverruleNotFoundInPostgres(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	clock := newFakeClock()
	srcA, srcB := newSource(), newSource()
	srcB.set("u1", "Ada")
	a := newCache(t, withPostgres(t, testConfig(srcA, clock), pool))
	b := newCache(t, withPostgres(t, testConfig(srcB, clock), openPool(t, pool.Config().ConnString())))

	get(t, b, "u1") // B holds u1 in memory
	clock.Advance(2 * time.Minute)
	// A asks the source, which says u1 is gone: a not-found row.
	if _, err := a.Get(t.Context(), "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A: %v, want ErrNotFound", err)
	}
	clock.Advance(time.Minute) // past NegativeTTL and TTL
	srcB.fail(errUnavailable)
	r, err := b.Get(t.Context(), "u1")
	if err == nil {
		t.Fatalf("B served %+v (stale %v) although Postgres says u1 is gone", r.Value, r.Stale)
	}
	if !errors.Is(err, errUnavailable) {
		t.Errorf("B: %v, want the loader's error", err)
	}
}

// A row deleted (as the retention of expired rows does) while a load that
// read it is in flight is not re-created by that load's write-back: the
// row may have said something newer than what the load read.
func TestPostgresDeletedRowIsNotRecreatedByLoad(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	src, clock := newSource(), newFakeClock()
	src.set("u1", "old")
	c := newCache(t, withPostgres(t, testConfig(src, clock), pool))
	get(t, c, "u1")
	clock.Advance(2 * time.Minute) // past the TTL: the next read loads

	release := src.hold(2)
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "u1")
		done <- err
	}()
	eventually(t, 5*time.Second, "second load started", func() bool { return src.calls.Load() == 2 })
	if _, err := pool.Exec(t.Context(), `delete from cache_entries where kind = 'user' and key = 'u1'`); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("Get: %v", err)
	}
	if r, ok := readRow(t, pool, "user", "u1"); ok {
		t.Fatalf("row re-created by a load that read it before it was deleted: %+v", r)
	}
	var expires time.Time
	get(t, c, "u1") // no row now: this load inserts one
	if err := pool.QueryRow(t.Context(),
		`select expires_at from cache_entries where kind = 'user' and key = 'u1'`).Scan(&expires); err != nil {
		t.Fatal(err)
	}
	if time.Until(expires) < minRowLife-time.Minute {
		t.Fatalf("expires_at %v is sooner than the minimum row life", expires)
	}
}
