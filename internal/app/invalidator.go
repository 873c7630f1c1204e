package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// userCache is what the invalidator needs of the user cache.
type userCache interface {
	Invalidate(ctx context.Context, userID string) error
	MarkNotFound(ctx context.Context, userID string) error
}

// sessionCache is what the invalidator needs of the session-list cache.
type sessionCache interface {
	Invalidate(ctx context.Context, userID string) error
	InvalidateAll(ctx context.Context) error
}

// invalidatorConfig shapes an invalidator.
type invalidatorConfig struct {
	// Window is the shortest time between two drops of every session
	// list; zero means 5s.
	Window time.Duration
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the failures of deferred drops; nil discards them.
	Logger *slog.Logger
}

// deferredDropTimeout bounds a drop of every session list that runs after
// the webhook that asked for it was answered.
const deferredDropTimeout = 10 * time.Second

// invalidator drops cached users and session lists when Wacht says they
// changed. Its methods are the ones webhook.Invalidator asks for.
type invalidator struct {
	users    userCache
	sessions sessionCache
	logger   *slog.Logger
	now      func() time.Time

	// Session events that name no user drop every session list. They are
	// coalesced to one drop per window, so that a stream of sign-outs
	// cannot keep every replica reloading every list from Wacht.
	window  time.Duration
	ctx     context.Context // ends at close
	cancel  context.CancelFunc
	mu      sync.Mutex
	last    time.Time
	timer   *time.Timer // the pending drop, if any
	running sync.WaitGroup
	closed  bool
}

// newInvalidator returns an invalidator over the two caches. Drops of
// every session list happen at most once per window; one asked for within
// a window happens when it ends, or at close if that comes first.
func newInvalidator(users userCache, sessions sessionCache, cfg invalidatorConfig) *invalidator {
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &invalidator{
		users: users, sessions: sessions, logger: cfg.Logger, now: cfg.Now,
		window: cfg.Window, ctx: ctx, cancel: cancel,
	}
}

// InvalidateUser drops the cached user.
func (i *invalidator) InvalidateUser(ctx context.Context, userID string) error {
	return i.users.Invalidate(ctx, userID)
}

// UserDeleted remembers that the user is gone and drops its sessions.
func (i *invalidator) UserDeleted(ctx context.Context, userID string) error {
	return errors.Join(i.users.MarkNotFound(ctx, userID), i.sessions.Invalidate(ctx, userID))
}

// InvalidateSessions drops the user's cached session list.
func (i *invalidator) InvalidateSessions(ctx context.Context, userID string) error {
	return i.sessions.Invalidate(ctx, userID)
}

// InvalidateAllSessions drops every cached session list: at once if none
// was dropped in the last window, else when the window ends.
func (i *invalidator) InvalidateAllSessions(ctx context.Context) error {
	i.mu.Lock()
	wait := i.window - i.now().Sub(i.last)
	switch {
	case wait <= 0 || i.closed:
		i.last = i.now()
		i.mu.Unlock()
		return i.sessions.InvalidateAll(ctx)
	case i.timer != nil:
		i.mu.Unlock()
		return nil
	}
	i.running.Add(1)
	i.timer = time.AfterFunc(wait, func() {
		defer i.running.Done()
		i.dropPending()
	})
	i.mu.Unlock()
	return nil
}

// dropPending runs the drop that a window deferred, unless it already
// ran.
func (i *invalidator) dropPending() {
	i.mu.Lock()
	if i.timer == nil {
		i.mu.Unlock()
		return
	}
	i.timer = nil
	i.last = i.now()
	i.mu.Unlock()
	ctx, cancel := context.WithTimeout(i.ctx, deferredDropTimeout)
	defer cancel()
	if err := i.sessions.InvalidateAll(ctx); err != nil {
		i.logger.Error("drop every cached session list", "error", err)
	}
}

// close runs a deferred drop now rather than lose it, and waits for any
// that is running. Later drops happen at once.
func (i *invalidator) close() {
	i.mu.Lock()
	i.closed = true
	pending := i.timer != nil && i.timer.Stop()
	i.mu.Unlock()
	if pending {
		i.dropPending()
		i.running.Done() // the stopped timer's
	}
	i.running.Wait()
	i.cancel()
}
