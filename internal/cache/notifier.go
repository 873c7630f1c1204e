package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// subscriber is a cache that a Notifier delivers invalidations to.
type subscriber interface {
	// dropIfOlder drops key unless it holds generation or later.
	dropIfOlder(key string, generation int64)
	// dropAll drops everything: invalidations may have been missed.
	dropAll()
}

// Notifier listens, on a connection of its own, for the invalidations
// that every replica's caches broadcast through Postgres, and hands them
// to the caches registered with it (see Config.Notifier). Whenever it
// (re)starts listening, notifications may have been missed, so it empties
// the in-memory level of every cache: Postgres stays authoritative.
type Notifier struct {
	connConfig *pgx.ConnConfig
	logger     *slog.Logger

	// minBackoff and maxBackoff bound the wait between reconnections;
	// idle is how long the connection may stay silent before it is pinged.
	minBackoff, maxBackoff, idle time.Duration

	mu      sync.Mutex
	subs    map[string]subscriber
	running atomic.Bool
	ready   atomic.Bool
	pid     atomic.Uint32 // the listening backend's process id
}

// NewNotifier returns a notifier that connects with pool's settings. The
// listening connection is not taken from the pool. A nil logger discards.
func NewNotifier(pool *pgxpool.Pool, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var cfg *pgx.ConnConfig
	if pool != nil {
		cfg = pool.Config().ConnConfig
		name := cfg.RuntimeParams["application_name"]
		if name == "" {
			name = "authsvc"
		}
		cfg.RuntimeParams["application_name"] = name + "-cache-listener"
	}
	return &Notifier{
		connConfig: cfg,
		logger:     logger.With("component", "cache-notifier"),
		minBackoff: 100 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		idle:       30 * time.Second,
		subs:       make(map[string]subscriber),
	}
}

// Ready reports whether the notifier is listening, so that caches hear of
// every invalidation.
func (n *Notifier) Ready() bool { return n.ready.Load() }

// Run listens until ctx is done, reconnecting with backoff whenever the
// connection fails. Only one Run may be active at a time.
func (n *Notifier) Run(ctx context.Context) {
	if !n.running.CompareAndSwap(false, true) {
		n.logger.Error("cache notifier is already running")
		return
	}
	defer n.running.Store(false)

	bo := &backoff.ExponentialBackOff{
		InitialInterval:     n.minBackoff,
		RandomizationFactor: 0.3,
		Multiplier:          2,
		MaxInterval:         n.maxBackoff,
	}
	bo.Reset()
	for {
		err := n.listen(ctx, bo)
		n.ready.Store(false)
		if ctx.Err() != nil {
			return
		}
		wait := bo.NextBackOff()
		n.logger.Warn("cache notifier disconnected; reconnecting", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listen connects, listens and delivers notifications until the
// connection fails or ctx is done.
func (n *Notifier) listen(ctx context.Context, bo *backoff.ExponentialBackOff) error {
	if n.connConfig == nil {
		return errors.New("listen for cache invalidations: no database")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, n.connConfig)
	if err == nil {
		_, err = conn.Exec(cctx, "listen "+channel)
	}
	cancel()
	if conn != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = conn.Close(cctx)
		}()
	}
	if err != nil {
		return fmt.Errorf("listen for cache invalidations: %w", err)
	}

	n.pid.Store(conn.PgConn().PID())
	// Listening from now on: what was missed before is dropped.
	n.dropAll()
	n.ready.Store(true)
	bo.Reset()
	n.logger.Info("cache notifier listening")

	for {
		wctx, cancel := context.WithTimeout(ctx, n.idle)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			n.dispatch(note.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Silent for a while: make sure the connection is alive.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping listening connection: %w", err)
			}
		default:
			return fmt.Errorf("wait for cache invalidations: %w", err)
		}
	}
}

// notification is the payload of an invalidation: of one key, or of
// every key of the kind.
type notification struct {
	Kind       string `json:"kind"`
	Key        string `json:"key"`
	All        bool   `json:"all"`
	Generation int64  `json:"generation"`
}

// dispatch hands one payload to the cache of its kind. A payload that
// does not parse drops every cache, since its key is unknown.
func (n *Notifier) dispatch(payload string) {
	var note notification
	if err := json.Unmarshal([]byte(payload), &note); err != nil || (note.Key == "" && !note.All) {
		n.logger.Warn("malformed cache invalidation; dropping every cache", "payload_bytes", len(payload))
		n.dropAll()
		return
	}
	n.mu.Lock()
	sub := n.subs[note.Kind]
	n.mu.Unlock()
	switch {
	case sub == nil:
	case note.All:
		sub.dropAll()
	default:
		sub.dropIfOlder(note.Key, note.Generation)
	}
}

// dropAll empties the in-memory level of every registered cache.
func (n *Notifier) dropAll() {
	n.mu.Lock()
	subs := make([]subscriber, 0, len(n.subs))
	for _, s := range n.subs {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	for _, s := range subs {
		s.dropAll()
	}
}

// register makes the notifier deliver kind's invalidations to sub.
func (n *Notifier) register(kind string, sub subscriber) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.subs[kind]; ok {
		return fmt.Errorf("register with notifier: kind %q is already registered", kind)
	}
	n.subs[kind] = sub
	return nil
}

// unregister undoes register.
func (n *Notifier) unregister(kind string, sub subscriber) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[kind] == sub {
		delete(n.subs, kind)
	}
}
