package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	load := newSource().load
	n := NewNotifier(nil, nil)
	for _, tc := range []struct {
		name string
		cfg  Config[user]
	}{
		{"no_kind", Config[user]{Load: load}},
		{"bad_kind", Config[user]{Kind: "User Cache", Load: load}},
		{"no_loader", Config[user]{Kind: "user"}},
		{"notifier_without_pool", Config[user]{Kind: "user", Load: load, Notifier: n}},
		{"negative_ttl", Config[user]{Kind: "user", Load: load, TTL: -time.Second}},
		{"negative_max_entries", Config[user]{Kind: "user", Load: load, MaxEntries: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if c, err := New(tc.cfg); err == nil {
				c.Close()
				t.Fatalf("New(%+v) succeeded, want an error", tc.cfg)
			}
		})
	}
}

func TestGetReadsThroughAndServesFromMemory(t *testing.T) {
	t.Parallel()
	src, clock, rec := newSource(), newFakeClock(), newRecorder()
	src.set("u1", "Ada")
	cfg := testConfig(src, clock)
	cfg.Observer = rec
	c := newCache(t, cfg)

	want := Result[user]{Value: user{ID: "u1", Name: "Ada"}, Source: SourceLoad, FetchedAt: clock.Now()}
	if diff := cmp.Diff(want, get(t, c, "u1")); diff != "" {
		t.Fatalf("first Get (-want +got):\n%s", diff)
	}
	want.Source = SourceMemory
	if diff := cmp.Diff(want, get(t, c, "u1")); diff != "" {
		t.Fatalf("second Get (-want +got):\n%s", diff)
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times, want 1", n)
	}
	reads, loads, _ := rec.snapshot()
	if diff := cmp.Diff(map[string]int{"load/fresh": 1, "memory/fresh": 1}, reads); diff != "" || loads != 1 {
		t.Fatalf("observed reads (-want +got):\n%s\nloads = %d, want 1", diff, loads)
	}
}

func TestGetMemoryHitDoesNotAllocate(t *testing.T) {
	src := newSource()
	src.set("u1", "Ada")
	c := newCache(t, testConfig(src, newFakeClock()))
	get(t, c, "u1")
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "u1") }); n != 0 {
		t.Fatalf("memory hit allocates %v times per Get, want 0", n)
	}
}

func TestGetCoalescesConcurrentMisses(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.set("u1", "Ada")
	release := src.hold(1)
	c := newCache(t, testConfig(src, newFakeClock()))

	const callers = 1000
	concurrently(t, callers, release, func() error {
		r, err := c.Get(context.Background(), "u1")
		if err != nil {
			return fmt.Errorf("Get: %w", err)
		}
		if r.Value.Name != "Ada" {
			return errors.New("Get: wrong value " + r.Value.Name)
		}
		return nil
	})
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times for %d concurrent misses, want 1", n, callers)
	}
}

func TestEntriesExpireAtFetchTimePlusTTL(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, testConfig(src, clock))
	fetched := clock.Now()
	get(t, c, "u1")

	// Reads right up to the TTL hit memory and do not push expiry back.
	for range 6 {
		clock.Advance(10*time.Second - time.Microsecond)
		if r := get(t, c, "u1"); r.Source != SourceMemory {
			t.Fatalf("Get at +%v: source %v, want memory", clock.Now().Sub(fetched), r.Source)
		}
	}
	clock.Advance(time.Minute - clock.Now().Sub(fetched)) // exactly fetched + TTL
	src.set("u1", "Ada Lovelace")
	r := get(t, c, "u1")
	if r.Source != SourceLoad || r.Value.Name != "Ada Lovelace" || r.Stale {
		t.Fatalf("Get at +TTL = %+v, want a fresh load of the new name", r)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("loader called %d times, want 2", n)
	}
}

func TestStaleOnError(t *testing.T) {
	t.Parallel()
	src, clock, rec := newSource(), newFakeClock(), newRecorder()
	src.set("u1", "Ada")
	cfg := testConfig(src, clock)
	cfg.Observer = rec
	c := newCache(t, cfg)
	fetched := clock.Now()
	get(t, c, "u1")

	src.fail(errUnavailable)
	clock.Advance(2 * time.Minute)
	want := Result[user]{Value: user{ID: "u1", Name: "Ada"}, Stale: true, Source: SourceMemory, FetchedAt: fetched}
	if diff := cmp.Diff(want, get(t, c, "u1")); diff != "" {
		t.Fatalf("Get past TTL with the loader down (-want +got):\n%s", diff)
	}
	// Within StaleRetry the stale value is served without asking again.
	clock.Advance(500 * time.Millisecond)
	if diff := cmp.Diff(want, get(t, c, "u1")); diff != "" {
		t.Fatalf("Get within StaleRetry (-want +got):\n%s", diff)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("loader called %d times, want 2", n)
	}
	clock.Advance(time.Second)
	get(t, c, "u1")
	if n := src.calls.Load(); n != 3 {
		t.Fatalf("loader called %d times after StaleRetry, want 3", n)
	}

	// At MaxStale the value is too old to serve.
	clock.Advance(time.Hour - clock.Now().Sub(fetched))
	if _, err := c.Get(t.Context(), "u1"); !errors.Is(err, errUnavailable) {
		t.Fatalf("Get at MaxStale: error %v, want %v", err, errUnavailable)
	}
	// The loader recovers: fresh again.
	src.fail(nil)
	if r := get(t, c, "u1"); r.Stale || r.Source != SourceLoad {
		t.Fatalf("Get after recovery = %+v, want a fresh load", r)
	}
	reads, _, _ := rec.snapshot()
	if reads["memory/stale"] != 3 || reads["load/error"] != 1 {
		t.Fatalf("observed reads %v, want 3 memory/stale and 1 load/error", reads)
	}
}

func TestStaleIsNotServedForPermanentErrors(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	errForbidden := errors.New("forbidden")
	cfg := testConfig(src, clock)
	cfg.IsTransient = func(err error) bool { return errors.Is(err, errUnavailable) }
	c := newCache(t, cfg)
	get(t, c, "u1")

	src.fail(errForbidden)
	clock.Advance(2 * time.Minute)
	if r, err := c.Get(t.Context(), "u1"); !errors.Is(err, errForbidden) {
		t.Fatalf("Get = %+v, %v; want error %v", r, err, errForbidden)
	}
}

func TestNegativeCache(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	c := newCache(t, testConfig(src, clock))

	for i := range 2 {
		if _, err := c.Get(t.Context(), "ghost"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get %d: error %v, want ErrNotFound", i, err)
		}
		clock.Advance(29 * time.Second)
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times within NegativeTTL, want 1", n)
	}
	src.set("ghost", "Casper")
	if r := get(t, c, "ghost"); r.Value.Name != "Casper" || r.Source != SourceLoad {
		t.Fatalf("Get after NegativeTTL = %+v, want a load of Casper", r)
	}
}

func TestNotFoundWinsOverStale(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, testConfig(src, clock))
	get(t, c, "u1")

	src.remove("u1")
	clock.Advance(2 * time.Minute)
	if _, err := c.Get(t.Context(), "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after deletion: %v, want ErrNotFound", err)
	}
	// Now the source fails: the old value must not come back.
	src.fail(errUnavailable)
	if r, err := c.Get(t.Context(), "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %+v, %v; want the remembered ErrNotFound", r, err)
	}
	clock.Advance(31 * time.Second)
	if r, err := c.Get(t.Context(), "u1"); !errors.Is(err, errUnavailable) || r.Stale {
		t.Fatalf("Get after NegativeTTL = %+v, %v; want %v and no stale value", r, err, errUnavailable)
	}
}

func TestInvalidatePutAndMarkNotFound(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, testConfig(src, clock))
	ctx := t.Context()
	get(t, c, "u1")

	src.set("u1", "Ada L.")
	if err := c.Invalidate(ctx, "u1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	if inMemory(c, "u1") {
		t.Fatal("Invalidate left the entry in memory")
	}
	if r := get(t, c, "u1"); r.Value.Name != "Ada L." || r.Source != SourceLoad {
		t.Fatalf("Get after Invalidate = %+v, want a load", r)
	}

	if err := c.Put(ctx, "u1", user{ID: "u1", Name: "Put"}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if r := get(t, c, "u1"); r.Value.Name != "Put" || r.Source != SourceMemory {
		t.Fatalf("Get after Put = %+v, want the put value from memory", r)
	}

	if err := c.MarkNotFound(ctx, "u1"); err != nil {
		t.Fatalf("MarkNotFound: %v", err)
	}
	if _, err := c.Get(ctx, "u1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after MarkNotFound: %v, want ErrNotFound", err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("loader called %d times, want 2", n)
	}

	src.set("u2", "Grace")
	src.set("u3", "Edsger")
	get(t, c, "u2")
	get(t, c, "u3")
	if err := c.InvalidateAll(ctx); err != nil {
		t.Fatalf("InvalidateAll: %v", err)
	}
	if inMemory(c, "u1") || inMemory(c, "u2") || inMemory(c, "u3") {
		t.Fatal("InvalidateAll left entries in memory")
	}
	if r := get(t, c, "u2"); r.Source != SourceLoad {
		t.Fatalf("Get after InvalidateAll = %+v, want a load", r)
	}
}

func TestReloadBypassesFreshEntries(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("s1", "one")
	c := newCache(t, testConfig(src, clock))
	get(t, c, "s1")

	src.set("s1", "two")
	r, err := c.Reload(t.Context(), "s1")
	if err != nil || r.Value.Name != "two" || r.Source != SourceLoad {
		t.Fatalf("Reload = %+v, %v; want a load of two", r, err)
	}
	if r := get(t, c, "s1"); r.Value.Name != "two" || r.Source != SourceMemory {
		t.Fatalf("Get after Reload = %+v, want two from memory", r)
	}

	// A failed reload gives the error, not the entry it meant to replace.
	src.fail(errUnavailable)
	if r, err := c.Reload(t.Context(), "s1"); !errors.Is(err, errUnavailable) {
		t.Fatalf("Reload with the loader down = %+v, %v; want %v", r, err, errUnavailable)
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	src := newSource()
	c := newCache(t, testConfig(src, newFakeClock()))
	ctx := t.Context()
	for _, key := range []string{"", "a\x00b", "\xff\xfe", strings.Repeat("k", MaxKeyLen+1)} {
		if _, err := c.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := c.Reload(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Reload(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := c.Invalidate(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Invalidate(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := c.Put(ctx, key, user{}); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := c.MarkNotFound(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("MarkNotFound(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	if n := src.calls.Load(); n != 0 {
		t.Fatalf("loader called %d times for invalid keys, want 0", n)
	}
}

func TestLoaderPanicBecomesError(t *testing.T) {
	t.Parallel()
	cfg := testConfig(newSource(), newFakeClock())
	cfg.Load = func(context.Context, string) (user, error) { panic("boom") }
	c := newCache(t, cfg)
	if _, err := c.Get(t.Context(), "u1"); err == nil || strings.Contains(err.Error(), "boom") {
		t.Fatalf("Get with a panicking loader: %v, want an error without the panic value", err)
	}
}

func TestCanceledCallerLeavesLoadRunning(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.set("u1", "Ada")
	release := src.hold(1)
	c := newCache(t, testConfig(src, newFakeClock()))

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "u1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with an expiring context: %v, want DeadlineExceeded", err)
	}
	release()
	eventually(t, time.Second, "the load finishing after its caller left", func() bool { return inMemory(c, "u1") })
	if r := get(t, c, "u1"); r.Source != SourceMemory || src.calls.Load() != 1 {
		t.Fatalf("Get = %+v after %d loads, want the first load's value from memory", r, src.calls.Load())
	}
}

func TestMemoryKeepsEntriesUntilMaxStaleOnly(t *testing.T) {
	t.Parallel()
	src, clock := newSource(), newFakeClock()
	src.set("u1", "Ada")
	c := newCache(t, testConfig(src, clock))
	get(t, c, "u1")
	clock.Advance(time.Hour - time.Microsecond)
	if !inMemory(c, "u1") {
		t.Fatal("entry left memory before MaxStale")
	}
	clock.Advance(time.Microsecond)
	if inMemory(c, "u1") {
		t.Fatal("entry still in memory at MaxStale")
	}
}

func TestReloadIsCoalesced(t *testing.T) {
	t.Parallel()
	src := newSource()
	src.set("s1", "one")
	release := src.hold(1)
	c := newCache(t, testConfig(src, newFakeClock()))

	const callers = 50
	concurrently(t, callers, release, func() error {
		if _, err := c.Reload(context.Background(), "s1"); err != nil {
			return fmt.Errorf("Reload: %w", err)
		}
		return nil
	})
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("loader called %d times for %d concurrent reloads, want 1", n, callers)
	}
}
