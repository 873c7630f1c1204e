package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// Get returns key's value: from memory if it is fresh there, else from
// Postgres if it is fresh there, else from the loader, whose result is
// stored in both. However many callers miss the same key at once, the
// loader runs once and they share its result.
//
// When the loader fails transiently and a value past its TTL but younger
// than MaxStale is at hand, Get returns it with Result.Stale set. A key
// that does not exist, as loaded or remembered for NegativeTTL, gives an
// error wrapping [ErrNotFound]. Postgres failures never fail a Get: they
// are logged and the loader answers.
func (c *Cache[V]) Get(ctx context.Context, key string) (Result[V], error) {
	// One clock read: otter's, taken for its own expiry check, which is
	// the same clock as c.now.
	if me, ok := c.mem.GetEntry(key); ok && me.SnapshotAtNano < me.Value.hardUntil {
		e, now := me.Value, me.SnapshotAtNano
		if !e.found {
			c.observer.ObserveRead(c.kind, SourceMemory, OutcomeNotFound)
			return Result[V]{}, c.errNotFound
		}
		e.hits.Add(1)
		outcome := OutcomeFresh
		switch {
		case e.stale:
			outcome = OutcomeStale
		case now >= e.freshUntil:
			outcome = OutcomeRefreshing
			c.scheduleRefresh(key, e, now)
		}
		c.observer.ObserveRead(c.kind, SourceMemory, outcome)
		c.observer.ObserveServed(c.kind, time.Duration(now-e.fetchedAt.UnixNano()))
		return Result[V]{Value: e.value, Stale: e.stale, Source: SourceMemory, FetchedAt: e.fetchedAt}, nil
	}
	return c.miss(ctx, key, false)
}

// Reload loads key's value now, whatever the cache holds, and stores it.
// Concurrent reloads of a key share one load. It never serves a stale
// value: a failed load gives the loader's error.
func (c *Cache[V]) Reload(ctx context.Context, key string) (Result[V], error) {
	return c.miss(ctx, key, true)
}

// answer is what one coalesced fetch gives each of its callers.
type answer[V any] struct {
	res     Result[V]
	err     error
	outcome Outcome
	// owner tells the caller whose ctx the fetch ran with.
	owner *byte
}

// miss fetches key through the single flight of loads of key that began
// after the latest invalidation of key seen here.
func (c *Cache[V]) miss(ctx context.Context, key string, reload bool) (Result[V], error) {
	if !validKey(key) {
		return Result[V]{}, fmt.Errorf("%s: %w", c.kind, ErrInvalidKey)
	}
	mode := "g"
	if reload {
		mode = "r"
	}
	// A load deferred for the caller it ran for (over that caller's own
	// limit, say) may still be made for the others that shared it: each
	// of them tries once more, in a flight of its own ctx.
	for attempt := 0; ; attempt++ {
		tok := c.guard.current(key)
		// Keys hold no NUL, so the flight key is unambiguous. Callers that
		// come after an invalidation get a new token, hence a new flight.
		flight := mode + strconv.FormatUint(tok.epoch, 36) + "." + strconv.FormatUint(tok.local, 36) +
			"." + strconv.FormatInt(tok.notified, 36) + "\x00" + key
		owner := new(byte)
		ch := c.flight.DoChan(flight, func() (any, error) {
			a := c.fetch(context.WithoutCancel(ctx), key, tok, reload)
			a.owner = owner
			return a, nil
		})
		select {
		case <-ctx.Done():
			c.observer.ObserveRead(c.kind, SourceLoad, OutcomeError)
			return Result[V]{}, fmt.Errorf("wait for %s: %w", c.kind, ctx.Err())
		case r := <-ch:
			a := r.Val.(*answer[V])
			if a.owner != owner && attempt == 0 && errors.Is(a.err, ErrDeferred) {
				continue
			}
			c.observer.ObserveRead(c.kind, a.res.Source, a.outcome)
			if a.err == nil {
				c.observer.ObserveServed(c.kind, c.now().Sub(a.res.FetchedAt))
			}
			return a.res, a.err
		}
	}
}

// fetch reads key from Postgres and, unless it is fresh there, loads it.
// tok is the guard's token for key before anything was read.
func (c *Cache[V]) fetch(ctx context.Context, key string, tok token, reload bool) *answer[V] {
	now := c.now()
	gen, kindGen, pgOK := int64(noRow), int64(0), false
	var stale *entry[V]
	if c.store != nil {
		r, err := c.store.read(ctx, key)
		if err != nil {
			c.postgresError("read", err)
		} else {
			pgOK, gen, kindGen = true, r.generation, r.kindGen
			if e := c.entryFromRow(r); e != nil {
				if !reload && now.UnixNano() < e.freshUntil {
					c.storeIf(key, e, tok)
					return c.answerFrom(e, SourcePostgres)
				}
				if !reload && e.found && now.UnixNano() < e.hardUntil {
					// Past its TTL: served, and refreshed in the background.
					c.storeIf(key, e, tok)
					c.scheduleRefresh(key, e, now.UnixNano())
					a := c.answerFrom(e, SourcePostgres)
					a.outcome = OutcomeRefreshing
					return a
				}
				if e.found {
					stale = e
				}
			}
		}
	}

	start, realStart := c.now(), time.Now()
	lctx, cancel := context.WithTimeout(ctx, c.loadTimeout)
	v, err := c.callLoad(lctx, key)
	cancel()
	c.observer.ObserveLoad(c.kind, time.Since(realStart), err)

	switch {
	case err == nil:
		e := c.newEntry(v, true, start, 0, c.loadedVersion(v, start))
		c.writeBack(ctx, key, e, gen, kindGen, pgOK, tok)
		return c.answerFrom(e, SourceLoad)
	case errors.Is(err, ErrNotFound):
		c.writeBack(ctx, key, c.newEntry(v, false, start, 0, 0), gen, kindGen, pgOK, tok)
		return &answer[V]{res: Result[V]{Source: SourceLoad}, err: err, outcome: OutcomeNotFound}
	case !reload && c.isTransient(err):
		if a := c.fallback(key, tok, stale, gen, err); a != nil {
			return a
		}
	}
	return &answer[V]{res: Result[V]{Source: SourceLoad}, err: err, outcome: OutcomeError}
}

// answerFrom answers with e, which is fresh.
func (c *Cache[V]) answerFrom(e *entry[V], source Source) *answer[V] {
	if !e.found {
		return &answer[V]{res: Result[V]{Source: source}, err: c.errNotFound, outcome: OutcomeNotFound}
	}
	return &answer[V]{res: Result[V]{Value: e.value, Source: source, FetchedAt: e.fetchedAt}, outcome: OutcomeFresh}
}

// fallback answers after a transient load failure with the newest value
// at hand, fresh or younger than MaxStale, or returns nil if there is
// none. A stale value is kept in memory, marked stale, for StaleRetry, so
// that the next reads don't wait on the failing loader again. pgGen is the
// generation of the Postgres row read before the load (noRow if none was
// read): a memory entry older than that row is not served, since the row
// may say that the key was invalidated or does not exist, and a replica
// whose notifications were lost must not overrule it.
func (c *Cache[V]) fallback(key string, tok token, fromPostgres *entry[V], pgGen int64, loadErr error) *answer[V] {
	now := c.now().UnixNano()
	best, source := (*entry[V])(nil), SourcePostgres
	if fromPostgres != nil && holds(c.guard, key, tok, fromPostgres) {
		// Only if nothing invalidated key since it was read.
		best = fromPostgres
	}
	if m, ok := c.mem.GetIfPresent(key); ok {
		if now < m.freshUntil && !m.stale {
			// Stored meanwhile by another fetch or a Put.
			return c.answerFrom(m, SourceMemory)
		}
		current := pgGen == noRow || m.generation >= pgGen
		if m.found && current && (best == nil || m.fetchedAt.After(best.fetchedAt)) {
			best, source = m, SourceMemory
		}
	}
	if best == nil || now-best.fetchedAt.UnixNano() >= c.maxStale.Nanoseconds() {
		return nil
	}
	s := &entry[V]{
		value: best.value, found: true, stale: true, fetchedAt: best.fetchedAt,
		freshUntil: min(now+c.staleRetry.Nanoseconds(), best.keepUntil),
		keepUntil:  best.keepUntil, generation: best.generation, version: best.version, tags: best.tags,
	}
	s.hardUntil = s.freshUntil
	c.storeIf(key, s, tok)
	age := time.Duration(now - s.fetchedAt.UnixNano())
	c.logger.Warn("serving stale cache entry after load failure",
		"key", key, "source", source.String(), "age", age, "stale", true, "error", loadErr)
	return &answer[V]{
		res:     Result[V]{Value: s.value, Stale: true, Source: source, FetchedAt: s.fetchedAt},
		outcome: OutcomeStale,
	}
}

// writeBack stores a loaded entry in Postgres, if the row read before the
// load and its kind are unchanged, and then in memory, if no invalidation
// was seen. pgOK reports that the row was read; gen is its generation and
// kindGen its kind's.
func (c *Cache[V]) writeBack(ctx context.Context, key string, e *entry[V], gen, kindGen int64, pgOK bool, tok token) {
	c.writeBackReport(ctx, key, e, gen, kindGen, pgOK, tok)
}

// writeBackReport is writeBack; it reports false when Postgres had
// changed since the row was read, so nothing was stored.
func (c *Cache[V]) writeBackReport(ctx context.Context, key string, e *entry[V], gen, kindGen int64, pgOK bool, tok token) bool {
	if c.store != nil && pgOK {
		var body []byte
		var err error
		if e.found {
			body, err = c.codec.Marshal(e.value)
		}
		if err != nil {
			c.logger.Error("encode cache entry", "key", key, "error", err)
		} else {
			newGen, wrote, err := c.store.writeBack(ctx, key, e.found, body, e.fetchedAt, e.keepUntil, e.version, e.tags, gen, kindGen)
			switch {
			case err != nil:
				c.postgresError("write", err)
			case !wrote:
				// An invalidation, a put or another load changed the row
				// since it was read: this result may predate it.
				return false
			default:
				e.generation = newGen
			}
		}
	}
	c.storeIf(key, e, tok)
	return true
}

// callLoad calls the loader, turning a panic into an error.
func (c *Cache[V]) callLoad(ctx context.Context, key string) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("cache loader panicked", "key", key, "stack", string(debug.Stack()))
			err = fmt.Errorf("load %s: loader panicked", c.kind)
		}
	}()
	return c.load(ctx, key)
}

// newEntry returns an entry fetched at fetchedAt. Entries of values are
// fresh for TTL, served while refreshed up to MaxAge and kept as a
// fallback for MaxStale; "not found" entries are fresh for NegativeTTL and
// never served stale.
func (c *Cache[V]) newEntry(v V, found bool, fetchedAt time.Time, gen, version int64) *entry[V] {
	fresh, hard, keep := c.ttl, c.maxAge, max(c.maxStale, c.maxAge)
	var tags []string
	if !found {
		var zero V
		v, fresh, hard, keep = zero, c.negativeTTL, c.negativeTTL, c.negativeTTL
	} else if c.tags != nil {
		tags = c.tags(v)
	}
	return &entry[V]{
		value:      v,
		found:      found,
		fetchedAt:  fetchedAt,
		freshUntil: fetchedAt.Add(fresh).UnixNano(),
		hardUntil:  fetchedAt.Add(hard).UnixNano(),
		keepUntil:  fetchedAt.Add(keep).UnixNano(),
		generation: gen,
		version:    version,
		tags:       tags,
	}
}

// tombstone returns the entry of a key deleted at version: "not found",
// fresh for keep, so that no older write brings the key back meanwhile.
func (c *Cache[V]) tombstone(now time.Time, version int64, keep time.Duration) *entry[V] {
	until := now.Add(keep).UnixNano()
	return &entry[V]{fetchedAt: now, freshUntil: until, hardUntil: until, keepUntil: until, version: version}
}

// loadedVersion returns the version of a value loaded from start on.
func (c *Cache[V]) loadedVersion(v V, start time.Time) int64 {
	if c.version != nil {
		if ver := c.version(v); ver > 0 {
			return ver
		}
	}
	return start.UnixMicro()
}

// entryFromRow returns the entry that r holds, or nil if it holds none
// (invalidated, or a body that no longer decodes).
func (c *Cache[V]) entryFromRow(r row) *entry[V] {
	if !r.exists || r.fetchedAt == nil {
		return nil
	}
	if !r.found {
		if r.version != nil && r.expiresAt.After(*r.fetchedAt) {
			e := c.tombstone(*r.fetchedAt, *r.version, r.expiresAt.Sub(*r.fetchedAt))
			e.generation = r.generation
			return e
		}
		var zero V
		return c.newEntry(zero, false, *r.fetchedAt, r.generation, 0)
	}
	if r.body == nil {
		return nil
	}
	v, err := c.codec.Unmarshal(r.body)
	if err != nil {
		c.logger.Warn("decode cache entry", "error", err)
		return nil
	}
	var version int64
	if r.version != nil {
		version = *r.version
	}
	return c.newEntry(v, true, *r.fetchedAt, r.generation, version)
}

// postgresError logs and reports a failed Postgres operation.
func (c *Cache[V]) postgresError(op string, err error) {
	c.logger.Warn("cache postgres "+op+" failed", "error", err)
	c.observer.ObservePostgresError(c.kind, op, err)
}
