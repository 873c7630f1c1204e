package cache

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// ErrDeferred is wrapped by the errors of a loader that did not ask the
// source because it could not do so now (no request budget left for a
// background refresh, say). A background refresh that gets it is dropped
// and tried again later; the entry is served meanwhile, up to MaxAge. A
// read that shared a load deferred for another caller's sake (over that
// caller's own limit, say) tries once more in a load of its own.
var ErrDeferred = errors.New("load deferred")

// refreshKey marks the contexts of background refreshes.
type refreshKey struct{}

// IsRefresh reports whether ctx is that of a load made in the background
// to refresh an entry that is still being served, rather than for a
// caller waiting on it.
func IsRefresh(ctx context.Context) bool {
	v, _ := ctx.Value(refreshKey{}).(bool)
	return v
}

// RefreshOutcome is how one background refresh ended.
type RefreshOutcome uint8

// The outcomes of a background refresh.
const (
	// RefreshClaimed is a refresh that this replica claimed and loaded.
	RefreshClaimed RefreshOutcome = iota + 1
	// RefreshSkipped is a refresh left to another replica, which has
	// claimed the key or already refreshed it, or made unnecessary by a
	// newer write.
	RefreshSkipped
	// RefreshRefused is a refresh whose loader deferred it ([ErrDeferred]),
	// or that found the queue full: tried again later.
	RefreshRefused
	// RefreshFailed is a refresh whose load or claim failed.
	RefreshFailed
)

// String returns "claimed", "skipped", "refused" or "failed".
func (o RefreshOutcome) String() string {
	switch o {
	case RefreshClaimed:
		return "claimed"
	case RefreshSkipped:
		return "skipped"
	case RefreshRefused:
		return "refused"
	case RefreshFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// refresher is a bounded queue of keys due for a background refresh,
// hottest first (by the reads their entry served), without duplicates,
// drained by a fixed number of workers.
type refresher struct {
	workers, capacity int
	retry             time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	queued  map[string]*refreshItem
	heap    refreshHeap
	closed  bool
	running sync.WaitGroup
	depth   func(int) // told the queue's length after every change
}

// refreshItem is a queued key and its priority.
type refreshItem struct {
	key   string
	hits  uint32
	index int
}

// refreshHeap is a max-heap of items by hits.
type refreshHeap []*refreshItem

func (h refreshHeap) Len() int           { return len(h) }
func (h refreshHeap) Less(i, j int) bool { return h[i].hits > h[j].hits }
func (h refreshHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *refreshHeap) Push(x any) {
	it := x.(*refreshItem)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *refreshHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}

func newRefresher(workers, capacity int, retry time.Duration) *refresher {
	r := &refresher{
		workers:  workers,
		capacity: capacity,
		retry:    retry,
		queued:   make(map[string]*refreshItem),
		depth:    func(int) {},
	}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// start runs the workers, each calling do for one key at a time.
func (r *refresher) start(do func(key string)) {
	r.running.Add(r.workers)
	for range r.workers {
		go func() {
			defer r.running.Done()
			for {
				key, ok := r.next()
				if !ok {
					return
				}
				do(key)
			}
		}()
	}
}

// next waits for the hottest queued key; false once stopped.
func (r *refresher) next() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.heap) == 0 && !r.closed {
		r.cond.Wait()
	}
	if r.closed {
		return "", false
	}
	it := heap.Pop(&r.heap).(*refreshItem)
	delete(r.queued, it.key)
	r.depth(len(r.heap))
	return it.key, true
}

// push queues key with priority hits, or raises the priority of key if
// it is queued already. It reports false if the queue is full.
func (r *refresher) push(key string, hits uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if it, ok := r.queued[key]; ok {
		if hits > it.hits {
			it.hits = hits
			heap.Fix(&r.heap, it.index)
		}
		return true
	}
	if len(r.heap) >= r.capacity {
		return false
	}
	it := &refreshItem{key: key, hits: hits}
	r.queued[key] = it
	heap.Push(&r.heap, it)
	r.depth(len(r.heap))
	r.cond.Signal()
	return true
}

// len returns the number of queued keys.
func (r *refresher) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.heap)
}

// stop drops the queued keys and waits for the refreshes in progress.
func (r *refresher) stop() {
	r.mu.Lock()
	r.closed = true
	r.queued, r.heap = nil, nil
	r.cond.Broadcast()
	r.mu.Unlock()
	r.running.Wait()
}

// scheduleRefresh queues key, whose entry e is past its TTL and was just
// read at now, for a background refresh, unless it was queued (or tried)
// within RefreshRetry.
func (c *Cache[V]) scheduleRefresh(key string, e *entry[V], now int64) {
	at := e.refreshAt.Load()
	if now < at || !e.refreshAt.CompareAndSwap(at, now+c.refresh.retry.Nanoseconds()) {
		return
	}
	if !c.refresh.push(key, e.hits.Load()) {
		c.observer.ObserveRefresh(c.kind, RefreshRefused)
	}
}

// QueuedRefreshes returns the number of keys waiting for a background
// refresh.
func (c *Cache[V]) QueuedRefreshes() int { return c.refresh.len() }

// refreshKey refreshes key in the background: it claims the key in
// Postgres, so that one replica refreshes it for the whole cluster, loads
// it and writes it back. A replica that cannot claim it takes the row
// from Postgres if it is newer than what it holds, and otherwise keeps
// serving what it holds.
func (c *Cache[V]) refreshKey(key string) {
	ctx := context.WithValue(context.Background(), refreshKey{}, true) //nolint:forbidigo // a background refresh serves no caller
	m, ok := c.mem.GetIfPresent(key)
	now := c.now()
	if !ok || !m.found || m.stale || now.UnixNano() < m.freshUntil {
		// Dropped, replaced or refreshed since it was queued.
		c.observer.ObserveRefresh(c.kind, RefreshSkipped)
		return
	}
	retryLater := func(outcome RefreshOutcome, at time.Time) {
		m.refreshAt.Store(at.UnixNano())
		c.observer.ObserveRefresh(c.kind, outcome)
	}
	tok := c.guard.current(key)
	gen, kindGen, pgOK := int64(noRow), int64(0), false
	if c.store != nil {
		cl, err := c.store.claim(ctx, key, m.fetchedAt, c.loadTimeout+2*c.store.timeout)
		if err != nil {
			c.postgresError("claim", err)
			retryLater(RefreshFailed, now.Add(c.refresh.retry))
			return
		}
		if !cl.claimed {
			if e := c.entryFromRow(cl.row); e != nil && e.fetchedAt.After(m.fetchedAt) {
				// Refreshed by another replica, or written meanwhile.
				c.storeIf(key, e, tok)
			} else if cl.claimedUntil != nil {
				// Another replica is refreshing it: try again once its
				// claim has run out, in case it never writes back.
				m.refreshAt.Store(cl.claimedUntil.UnixNano())
			}
			c.observer.ObserveRefresh(c.kind, RefreshSkipped)
			return
		}
		gen, kindGen, pgOK = cl.row.generation, cl.row.kindGen, cl.row.exists
	}

	start, realStart := c.now(), time.Now()
	lctx, cancel := context.WithTimeout(ctx, c.loadTimeout)
	v, err := c.callLoad(lctx, key)
	cancel()
	c.observer.ObserveLoad(c.kind, time.Since(realStart), err)
	switch {
	case err == nil || errors.Is(err, ErrNotFound):
		e := c.newEntry(v, err == nil, start, 0, 0)
		if err == nil {
			e.version = c.loadedVersion(v, start)
		}
		if !c.writeBackReport(ctx, key, e, gen, kindGen, pgOK, tok) && pgOK {
			// Written meanwhile, or the kind was fenced: the next read
			// past the TTL queues it again.
			c.store.release(ctx, key)
		}
		c.observer.ObserveRefresh(c.kind, RefreshClaimed)
		return
	}
	if pgOK {
		c.store.release(ctx, key)
	}
	if errors.Is(err, ErrDeferred) {
		retryLater(RefreshRefused, c.now().Add(c.refresh.retry))
		return
	}
	c.logger.Warn("background refresh failed", "key", key, "error", err)
	retryLater(RefreshFailed, c.now().Add(max(c.refresh.retry, c.staleRetry)))
}
