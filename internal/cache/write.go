package cache

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/maypok86/otter/v2"
)

// Put stores v as key's current value, fetched now, in memory and in
// Postgres, and tells every replica to drop what it holds for key. Loads
// of key in flight when Put is called never overwrite v. With Postgres
// failing, v is still stored in this replica's memory and the error is
// returned.
func (c *Cache[V]) Put(ctx context.Context, key string, v V) error {
	if !validKey(key) {
		return fmt.Errorf("put %s: %w", c.kind, ErrInvalidKey)
	}
	var body []byte
	if c.store != nil {
		var err error
		if body, err = c.codec.Marshal(v); err != nil {
			c.drop(key)
			return fmt.Errorf("put %s: %w", c.kind, err)
		}
	}
	now := c.now()
	_, err := c.write(ctx, "put", key, c.newEntry(v, true, now, 0, c.loadedVersion(v, now)), body, false)
	return err
}

// MarkNotFound remembers, for NegativeTTL, that key does not exist (for
// example after a "deleted" event), everywhere, as [Cache.Put] does for a
// value.
func (c *Cache[V]) MarkNotFound(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("mark %s not found: %w", c.kind, ErrInvalidKey)
	}
	var zero V
	_, err := c.write(ctx, "put", key, c.newEntry(zero, false, c.now(), 0, 0), nil, false)
	return err
}

// Invalidate drops key everywhere: from this replica's memory at once,
// from Postgres, and, through a notification sent in the same statement,
// from every replica's memory. Loads of key in flight when Invalidate is
// called never write their result back. With Postgres failing, key is
// still dropped from this replica's memory and the error is returned.
func (c *Cache[V]) Invalidate(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("invalidate %s: %w", c.kind, ErrInvalidKey)
	}
	_, err := c.write(ctx, "invalidate", key, nil, nil, false)
	return err
}

// InvalidateAll drops every entry of the cache everywhere, as
// [Cache.Invalidate] does for one key: loads in flight when it is called
// never write their results back. With Postgres failing, this replica's
// memory is still emptied and the error is returned. It is meant for rare
// events: it rewrites every row of the kind, within up to 60 times
// Config.PostgresTimeout.
func (c *Cache[V]) InvalidateAll(ctx context.Context) error {
	c.dropAll()
	var err error
	if c.store != nil {
		if err = c.store.invalidateAll(ctx); err != nil {
			c.postgresError("invalidate", err)
			err = fmt.Errorf("invalidate all %s: %w", c.kind, err)
		}
	}
	c.dropAll()
	return err
}

// write replaces key with e (nil: nothing) in memory and in Postgres and
// notifies every replica. body is e's encoded value. With ordered set, it
// changes nothing if key holds a version newer than e's, and reports
// whether it wrote.
func (c *Cache[V]) write(ctx context.Context, op, key string, e *entry[V], body []byte, ordered bool) (bool, error) {
	if c.store == nil {
		if ordered {
			return c.storeOrdered(key, e, c.guard.bump(key)), nil
		}
		tok := c.drop(key)
		if e != nil {
			c.storeIf(key, e, tok)
		}
		return true, nil
	}
	if !ordered {
		// Drop first, so that loads that start from now on skip storing
		// what they read before the write commits; drop again after, for
		// those that read before it and would store after.
		c.drop(key)
	}
	found, fetchedAt, keepUntil, version, tags := false, (*time.Time)(nil), int64(0), int64(0), []string(nil)
	if e != nil {
		found, fetchedAt, keepUntil, version, tags = e.found, &e.fetchedAt, e.keepUntil, e.version, e.tags
	}
	gen, wrote, err := c.store.set(ctx, key, found, body, fetchedAt, keepUntil, version, tags, ordered)
	switch {
	case err != nil:
		c.postgresError(op, err)
		err = fmt.Errorf("%s %s: %w", op, c.kind, err)
		// Postgres is unknown: keep the newest state here at least.
		if ordered {
			c.storeOrdered(key, e, c.guard.bump(key))
		} else if tok := c.drop(key); e != nil {
			c.storeIf(key, e, tok)
		}
		return false, err
	case !wrote:
		return false, nil
	}
	tok := c.drop(key)
	if e != nil {
		e.generation = gen
		c.storeIf(key, e, tok)
	}
	return true, nil
}

// storeOrdered stores e under key, unless tok no longer holds or memory
// holds a newer version of key. It reports whether it stored.
func (c *Cache[V]) storeOrdered(key string, e *entry[V], tok token) bool {
	c.guard.mu.RLock()
	defer c.guard.mu.RUnlock()
	stored := false
	c.mem.Compute(key, func(old *entry[V], found bool) (*entry[V], otter.ComputeOp) {
		if !holds(c.guard, key, tok, e) || (found && old.version > e.version) {
			return old, otter.CancelOp
		}
		stored = true
		return e, otter.WriteOp
	})
	return stored
}

// Write stores v as key's value, as of version (Unix microseconds of the
// state it holds, say), in memory and in Postgres, and tells every replica
// that key changed, as [Cache.Put] does; but it changes nothing, and
// returns false, if key holds a newer version: a later write, or a
// deletion ([Cache.Delete]). Without Postgres, the order is kept for as
// long as memory holds key. With Postgres failing, v is stored in memory
// and the error is returned.
func (c *Cache[V]) Write(ctx context.Context, key string, v V, version int64) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("write %s: %w", c.kind, ErrInvalidKey)
	}
	var body []byte
	if c.store != nil {
		var err error
		if body, err = c.codec.Marshal(v); err != nil {
			return false, fmt.Errorf("write %s: %w", c.kind, err)
		}
	}
	return c.write(ctx, "put", key, c.newEntry(v, true, c.now(), 0, version), body, true)
}

// Delete records that key was deleted as of version: reads answer "not
// found" for keep without loading, and no write older than version brings
// key back meanwhile (a tombstone). Like [Cache.Write], it changes nothing
// if key holds a newer version.
func (c *Cache[V]) Delete(ctx context.Context, key string, version int64, keep time.Duration) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("delete %s: %w", c.kind, ErrInvalidKey)
	}
	return c.write(ctx, "put", key, c.tombstone(c.now(), version, keep), nil, true)
}

// Update replaces key's cached value v with change(v), as of version,
// everywhere, without a load: the entry keeps its age, so it is refreshed
// when it would have been. change must not modify v, which other callers
// share. When key holds no value (not cached, invalidated, not found) or
// holds a newer version, Update invalidates key instead, so that the next
// read loads it and no load in progress writes back what it read before,
// and returns false.
func (c *Cache[V]) Update(ctx context.Context, key string, version int64, change func(V) V) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("update %s: %w", c.kind, ErrInvalidKey)
	}
	if c.store == nil {
		tok := c.guard.bump(key)
		applied := false
		c.guard.mu.RLock()
		c.mem.Compute(key, func(old *entry[V], found bool) (*entry[V], otter.ComputeOp) {
			if !found || !old.found || old.stale || old.version > version || !holds(c.guard, key, tok, old) {
				return old, otter.InvalidateOp
			}
			applied = true
			e := c.newEntry(change(old.value), true, old.fetchedAt, 0, max(old.version, version))
			return e, otter.WriteOp
		})
		c.guard.mu.RUnlock()
		return applied, nil
	}
	var next *entry[V]
	gen, applied, err := c.store.update(ctx, key, version, func(r row) ([]byte, []string, bool) {
		old := c.entryFromRow(r)
		if old == nil || !old.found || (r.version != nil && *r.version > version) {
			return nil, nil, false
		}
		next = c.newEntry(change(old.value), true, old.fetchedAt, 0, max(old.version, version))
		body, err := c.codec.Marshal(next.value)
		if err != nil {
			c.logger.Error("encode cache entry", "key", key, "error", err)
			return nil, nil, false
		}
		return body, next.tags, true
	})
	tok := c.drop(key)
	if err != nil {
		c.postgresError("update", err)
		return false, fmt.Errorf("update %s: %w", c.kind, err)
	}
	if applied {
		next.generation = gen
		c.storeIf(key, next, tok)
	}
	return applied, nil
}

// Fence makes every load of this kind in progress, on every replica,
// skip storing its result, without dropping what is cached: what they
// read may predate a change that [Cache.Update] could not apply to a key
// it did not know of.
func (c *Cache[V]) Fence(ctx context.Context) error {
	c.guard.epoch.Add(1)
	if c.store == nil {
		return nil
	}
	if err := c.store.fence(ctx); err != nil {
		c.postgresError("invalidate", err)
		return fmt.Errorf("fence %s: %w", c.kind, err)
	}
	return nil
}

// maxTagged bounds the keys that [Cache.KeysTagged] returns.
const maxTagged = 1000

// KeysTagged returns the keys whose cached value has tag among its
// Config.Tags, up to 1000 of them: from Postgres, or, without one, from
// memory.
func (c *Cache[V]) KeysTagged(ctx context.Context, tag string) ([]string, error) {
	if c.store != nil {
		keys, err := c.store.keysTagged(ctx, tag, maxTagged)
		if err != nil {
			c.postgresError("read", err)
			return nil, fmt.Errorf("find %s by tag: %w", c.kind, err)
		}
		return keys, nil
	}
	var keys []string
	for k, e := range c.mem.All() {
		if len(keys) < maxTagged && slices.Contains(e.tags, tag) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}
