// Package cache is a two-level read-through cache of opaque values: a
// bounded in-process level in front of a Postgres table shared by every
// replica, kept coherent by invalidations broadcast with LISTEN/NOTIFY.
//
// A [Cache.Get] looks in memory, then in Postgres, then calls the loader,
// once however many callers miss the same key at the same time. Entries
// are fresh for a TTL that reads never extend. Past it, and up to MaxAge,
// an entry is still served at once and queued for a refresh in the
// background, hottest keys first, which one replica makes for the whole
// cluster (claimed in Postgres); past MaxAge a read loads. While the loader fails
// transiently, an entry past its TTL but younger than MaxStale is served
// and marked stale; an authoritative "not found" is never overridden by a
// stale entry. Every write carries a generation, so a load that started
// before an invalidation can never write its older result back. Writes
// from outside ([Cache.Write], [Cache.Delete], [Cache.Update]) carry a
// version too, the order of the state they hold, so that one delivered
// late never overwrites a newer state or brings back a deleted key.
//
// Values are shared by every caller that reads them, in memory and across
// coalesced loads: callers must treat them as immutable. Keys appear in
// logs and in Postgres: a secret must be hashed before it is used as one.
//
// docs/architecture.md tells how the row's generation, the kind's and the
// load token keep an invalidation from being undone.
package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/singleflight"
)

// ErrNotFound is wrapped by the errors of a loader, and of [Cache.Get],
// that say authoritatively that a key does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalidKey is wrapped by the errors of calls with a key that is
// empty, longer than [MaxKeyLen] bytes, not UTF-8 or holds a NUL byte.
var ErrInvalidKey = errors.New("invalid cache key")

// MaxKeyLen is the longest key, in bytes, that a [Cache] accepts.
const MaxKeyLen = 512

// Loader loads the current value of key from the source of truth. It
// returns an error wrapping [ErrNotFound] when the key authoritatively
// does not exist. Its context is detached from the caller's cancellation,
// since coalesced callers share the load, and ends after Config.LoadTimeout.
type Loader[V any] func(ctx context.Context, key string) (V, error)

// Codec turns values into the bytes stored in Postgres and back.
type Codec[V any] interface {
	// Marshal encodes v.
	Marshal(v V) ([]byte, error)
	// Unmarshal decodes what Marshal encoded.
	Unmarshal(b []byte) (V, error)
}

// Config configures a [Cache]. Zero durations and sizes take the defaults
// given with each field.
type Config[V any] struct {
	// Kind names the cached values ("user", "sessions"). It namespaces
	// them in Postgres and in notifications, so it must be unique per
	// Notifier: lowercase letters, digits, '_', '-' or '.', 1-64 of them.
	Kind string
	// Pool holds the shared level. Nil keeps values in memory only, for
	// a single replica.
	Pool *pgxpool.Pool
	// Notifier delivers invalidations from every replica. It is required
	// with a Pool and must be nil without one.
	Notifier *Notifier
	// Load loads a value on a miss. Required.
	Load Loader[V]
	// Codec encodes values for Postgres. Required with a Pool.
	Codec Codec[V]
	// TTL is how long a loaded value is fresh (the soft TTL). Default 60s.
	TTL time.Duration
	// MaxAge is the age up to which a value past its TTL is served at
	// once while it is refreshed in the background; past it a read loads.
	// Zero, or less than TTL, means TTL: no background refresh.
	MaxAge time.Duration
	// Version returns the version of a loaded value: the order of the
	// state it holds, compared with that of writes (Unix microseconds of
	// its updated_at, say). Nil, or a result <= 0, takes the time the load
	// started.
	Version func(V) int64
	// Tags returns what a value is found by with [Cache.KeysTagged]. Nil
	// means none.
	Tags func(V) []string
	// RefreshWorkers bounds the background refreshes made at once.
	// Default 4.
	RefreshWorkers int
	// RefreshQueue bounds the keys waiting for a background refresh; a key
	// that finds it full is queued again on a later read. Default 10,000.
	RefreshQueue int
	// RefreshRetry is how long a key whose refresh failed, was refused for
	// want of budget ([ErrDeferred]) or found the queue full waits before
	// a read queues it again. Default 1s.
	RefreshRetry time.Duration
	// MaxStale is the age up to which a value past its TTL may be served,
	// marked stale, while Load fails transiently. Default 24h.
	MaxStale time.Duration
	// NegativeTTL is how long a "not found" answer is remembered.
	// Default 30s.
	NegativeTTL time.Duration
	// StaleRetry is how long a stale value, once served because Load
	// failed, is served again before Load is retried. It keeps a failing
	// source from being asked on every read. Default 1s.
	StaleRetry time.Duration
	// MaxEntries bounds the in-memory level. Default 10,000.
	MaxEntries int
	// LoadTimeout bounds one call of Load. Default 10s.
	LoadTimeout time.Duration
	// PostgresTimeout bounds each read and write-back in Postgres, so that
	// a dead database does not stall reads. Invalidations and puts may
	// take up to 10 times as long, InvalidateAll 60 times. Default 500ms.
	PostgresTimeout time.Duration
	// IsTransient reports whether a loader error allows serving a stale
	// value. Nil treats every error not wrapping ErrNotFound as transient.
	IsTransient func(error) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives warnings about stale values and failed Postgres
	// calls. Default: discard.
	Logger *slog.Logger
	// Observer is told about reads, loads and Postgres errors, for
	// metrics; nil means none.
	Observer Observer
}

// Result is the answer of a [Cache.Get] or [Cache.Reload].
type Result[V any] struct {
	// Value is the cached value, shared with other callers: read only.
	Value V
	// Stale reports that Value is past its TTL and is served because
	// loading a fresh one failed. A value past its TTL but within MaxAge,
	// served while it is refreshed in the background, is not stale.
	Stale bool
	// Source is the level that answered.
	Source Source
	// FetchedAt is when Value was loaded from the source of truth.
	FetchedAt time.Time
}

// Cache is a two-level read-through cache of values of type V. Its methods
// are safe for concurrent use.
type Cache[V any] struct {
	kind        string
	load        Loader[V]
	codec       Codec[V]
	ttl         time.Duration
	maxAge      time.Duration
	maxStale    time.Duration
	version     func(V) int64
	tags        func(V) []string
	negativeTTL time.Duration
	staleRetry  time.Duration
	loadTimeout time.Duration
	isTransient func(error) bool
	now         func() time.Time
	logger      *slog.Logger
	observer    Observer

	mem      *otter.Cache[string, *entry[V]]
	guard    *guard
	flight   singleflight.Group
	store    *store // nil in memory-only mode
	notifier *Notifier

	refresh *refresher

	errNotFound error // returned for remembered "not found" answers
	closeOnce   sync.Once
}

// kindPattern is what Config.Kind must match.
var kindPattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// New returns a cache configured by cfg and, with a Pool, registers it
// with cfg.Notifier. Call [Cache.Close] when done with it.
func New[V any](cfg Config[V]) (*Cache[V], error) {
	if !kindPattern.MatchString(cfg.Kind) {
		return nil, fmt.Errorf("new cache: kind %q must be 1-64 of [a-z0-9_.-]", cfg.Kind)
	}
	if cfg.Load == nil {
		return nil, fmt.Errorf("new %s cache: Load is required", cfg.Kind)
	}
	if cfg.Pool != nil && (cfg.Notifier == nil || cfg.Codec == nil) {
		return nil, fmt.Errorf("new %s cache: a Pool needs a Notifier and a Codec", cfg.Kind)
	}
	if cfg.Pool == nil && cfg.Notifier != nil {
		return nil, fmt.Errorf("new %s cache: a Notifier needs a Pool", cfg.Kind)
	}
	for _, d := range []time.Duration{cfg.TTL, cfg.MaxAge, cfg.RefreshRetry, cfg.MaxStale, cfg.NegativeTTL, cfg.StaleRetry, cfg.LoadTimeout, cfg.PostgresTimeout} {
		if d < 0 {
			return nil, fmt.Errorf("new %s cache: negative duration %v", cfg.Kind, d)
		}
	}
	if cfg.MaxEntries < 0 || cfg.RefreshWorkers < 0 || cfg.RefreshQueue < 0 {
		return nil, fmt.Errorf("new %s cache: negative MaxEntries, RefreshWorkers or RefreshQueue", cfg.Kind)
	}

	c := &Cache[V]{
		kind:        cfg.Kind,
		load:        cfg.Load,
		codec:       cfg.Codec,
		ttl:         cmp.Or(cfg.TTL, 60*time.Second),
		maxStale:    cmp.Or(cfg.MaxStale, 24*time.Hour),
		version:     cfg.Version,
		tags:        cfg.Tags,
		negativeTTL: cmp.Or(cfg.NegativeTTL, 30*time.Second),
		staleRetry:  cmp.Or(cfg.StaleRetry, time.Second),
		loadTimeout: cmp.Or(cfg.LoadTimeout, 10*time.Second),
		isTransient: cfg.IsTransient,
		now:         cfg.Now,
		logger:      cfg.Logger,
		observer:    cfg.Observer,
		guard:       &guard{seed: maphash.MakeSeed()},
		errNotFound: fmt.Errorf("%s: %w", cfg.Kind, ErrNotFound),
	}
	if c.isTransient == nil {
		c.isTransient = func(err error) bool { return !errors.Is(err, ErrNotFound) }
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.maxAge = max(cfg.MaxAge, c.ttl)
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("cache", c.kind)
	if c.observer == nil {
		c.observer = nopObserver{}
	}
	mem, err := newMemory[V](cmp.Or(cfg.MaxEntries, 10_000), c.now)
	if err != nil {
		return nil, fmt.Errorf("new %s cache: %w", cfg.Kind, err)
	}
	c.mem = mem
	c.refresh = newRefresher(cmp.Or(cfg.RefreshWorkers, 4), cmp.Or(cfg.RefreshQueue, 10_000),
		cmp.Or(cfg.RefreshRetry, time.Second))
	c.refresh.depth = func(n int) { c.observer.ObserveRefreshQueue(c.kind, n) }
	if cfg.Pool != nil {
		c.store = &store{pool: cfg.Pool, kind: cfg.Kind, timeout: cmp.Or(cfg.PostgresTimeout, 500*time.Millisecond)}
		if err := cfg.Notifier.register(cfg.Kind, c); err != nil {
			mem.StopAllGoroutines()
			return nil, fmt.Errorf("new %s cache: %w", cfg.Kind, err)
		}
		c.notifier = cfg.Notifier
	}
	c.refresh.start(c.refreshKey)
	return c, nil
}

// Close stops the background refreshes, waiting for those in progress,
// unregisters the cache from its Notifier and stops the in-memory level's
// background work. The cache must not be used afterwards.
func (c *Cache[V]) Close() {
	c.closeOnce.Do(func() {
		c.refresh.stop()
		if c.notifier != nil {
			c.notifier.unregister(c.kind, c)
		}
		c.mem.StopAllGoroutines()
	})
}

// Kind returns the cache's Config.Kind.
func (c *Cache[V]) Kind() string { return c.kind }

// validKey reports whether key can be stored in Postgres and carried by a
// notification.
func validKey(key string) bool {
	return key != "" && len(key) <= MaxKeyLen && utf8.ValidString(key) && strings.IndexByte(key, 0) < 0
}
