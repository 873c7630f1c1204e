package cache

import (
	"context"
	"fmt"
	"time"
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
	return c.write(ctx, "put", key, c.newEntry(v, true, c.now(), 0), body)
}

// MarkNotFound remembers, for NegativeTTL, that key does not exist (for
// example after a "deleted" event), everywhere, as [Cache.Put] does for a
// value.
func (c *Cache[V]) MarkNotFound(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("mark %s not found: %w", c.kind, ErrInvalidKey)
	}
	var zero V
	return c.write(ctx, "put", key, c.newEntry(zero, false, c.now(), 0), nil)
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
	return c.write(ctx, "invalidate", key, nil, nil)
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
// notifies every replica. body is e's encoded value.
func (c *Cache[V]) write(ctx context.Context, op, key string, e *entry[V], body []byte) error {
	// Drop first, so that loads that start from now on skip storing what
	// they read before the write commits; drop again after, for those
	// that read before it and would store after.
	c.drop(key)
	var err error
	if c.store != nil {
		found, fetchedAt, keepUntil := false, (*time.Time)(nil), int64(0)
		if e != nil {
			found, fetchedAt, keepUntil = e.found, &e.fetchedAt, e.keepUntil
		}
		var gen int64
		gen, err = c.store.set(ctx, key, found, body, fetchedAt, keepUntil)
		if err != nil {
			c.postgresError(op, err)
			err = fmt.Errorf("%s %s: %w", op, c.kind, err)
		} else if e != nil {
			e.generation = gen
		}
	}
	tok := c.drop(key)
	if e != nil {
		c.storeIf(key, e, tok)
	}
	return err
}
