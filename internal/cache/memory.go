package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// entry is one value, or one "not found" answer, in the in-memory level.
// Entries are never modified once stored, but for the counters of their
// reads and of their refresh, which are atomic.
type entry[V any] struct {
	value      V
	found      bool
	stale      bool // served because a load failed; fresh until retried
	fetchedAt  time.Time
	freshUntil int64    // Unix nanoseconds: served as fresh until then (the soft TTL)
	hardUntil  int64    // Unix nanoseconds: served, and refreshed in the background, until then
	keepUntil  int64    // Unix nanoseconds: kept as a stale fallback until then
	generation int64    // the Postgres row's generation; 0 if unknown
	version    int64    // the order of the state held; 0 if unknown
	tags       []string // what the value is found by (Config.Tags)

	hits      atomic.Uint32 // reads served from memory
	refreshAt atomic.Int64  // Unix nanoseconds: not queued for a refresh before then
}

// newMemory returns the in-memory level, on the cache's clock. Entries
// leave it at keepUntil, which reads never extend.
func newMemory[V any](maxEntries int, now func() time.Time) (*otter.Cache[string, *entry[V]], error) {
	return otter.New(&otter.Options[string, *entry[V]]{
		MaximumSize: maxEntries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry[V]]) time.Duration {
			// SnapshotAtNano is the clock's time of the write.
			return max(time.Duration(e.Value.keepUntil-e.SnapshotAtNano), time.Nanosecond)
		}),
		Clock: clock{now: now},
	})
}

// clock gives otter the cache's clock, so that otter's expiry checks and
// the freshness checks of reads agree. Otter's periodic clean-up runs on
// real time and asks this clock what time it is.
type clock struct {
	now func() time.Time
}

// NowNano implements otter.Clock.
func (c clock) NowNano() int64 { return c.now().UnixNano() }

// Tick implements otter.Clock.
func (c clock) Tick(d time.Duration) <-chan time.Time { return time.Tick(d) }

// guard tells a load whether key may have been invalidated since the
// load began. Each key hashes to one of a fixed set of stripes, and each
// stripe counts the invalidations made here and records the latest
// generation that notifications reported; dropping the whole level bumps
// the epoch. A load takes a token before it starts and stores its result
// only if the token still holds, checked under the key's otter bucket lock
// (per-key invalidations take it too) and under mu (held while the level
// is dropped). Keys sharing a stripe only cost a skipped store.
type guard struct {
	seed     maphash.Seed
	mu       sync.RWMutex
	epoch    atomic.Uint64
	local    [256]atomic.Uint64
	notified [256]atomic.Int64
}

// token identifies the invalidations that a load has seen.
type token struct {
	epoch, local uint64
	notified     int64
}

func (g *guard) stripe(key string) int {
	return int(maphash.String(g.seed, key) % uint64(len(g.local)))
}

// current returns the token of key now.
func (g *guard) current(key string) token {
	i := g.stripe(key)
	return token{epoch: g.epoch.Load(), local: g.local[i].Load(), notified: g.notified[i].Load()}
}

// bump records an invalidation of key made here and returns the new token.
func (g *guard) bump(key string) token {
	i := g.stripe(key)
	g.local[i].Add(1)
	return g.current(key)
}

// heard records a notification that key's row reached generation.
func (g *guard) heard(key string, generation int64) {
	n := &g.notified[g.stripe(key)]
	for old := n.Load(); generation > old && !n.CompareAndSwap(old, generation); old = n.Load() {
	}
}

// holds reports whether tok still holds for storing e under key. A
// notification since tok does not void an entry read from or written to
// Postgres at the notified generation or later.
func holds[V any](g *guard, key string, tok token, e *entry[V]) bool {
	cur := g.current(key)
	return cur.epoch == tok.epoch && cur.local == tok.local &&
		(cur.notified == tok.notified || (e.generation > 0 && e.generation >= cur.notified))
}

// storeIf stores e under key if no invalidation of key happened since tok
// was taken, and reports whether it did.
func (c *Cache[V]) storeIf(key string, e *entry[V], tok token) bool {
	if e.keepUntil <= c.now().UnixNano() {
		return false
	}
	c.guard.mu.RLock()
	defer c.guard.mu.RUnlock()
	stored := false
	c.mem.Compute(key, func(old *entry[V], found bool) (*entry[V], otter.ComputeOp) {
		if !holds(c.guard, key, tok, e) {
			return old, otter.CancelOp
		}
		stored = true
		return e, otter.WriteOp
	})
	return stored
}

// drop removes key from memory and makes loads in flight skip storing it.
// It returns the token after the invalidation.
func (c *Cache[V]) drop(key string) token {
	tok := c.guard.bump(key)
	c.mem.Invalidate(key)
	return tok
}

// dropIfOlder handles a notification that key's row reached generation:
// an entry already at that generation or later stays.
func (c *Cache[V]) dropIfOlder(key string, generation int64) {
	c.guard.heard(key, generation)
	c.mem.ComputeIfPresent(key, func(old *entry[V]) (*entry[V], otter.ComputeOp) {
		if old.generation > 0 && old.generation >= generation {
			return old, otter.CancelOp
		}
		return old, otter.InvalidateOp
	})
}

// dropAll empties the in-memory level and makes every load in flight skip
// storing its result.
func (c *Cache[V]) dropAll() {
	c.guard.mu.Lock()
	defer c.guard.mu.Unlock()
	c.guard.epoch.Add(1)
	c.mem.InvalidateAll()
}
