package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
)

// Invalidator drops cached users and session lists when Wacht says they
// changed. Its methods match what the webhook receiver needs.
type Invalidator struct {
	users    *cache.Cache[*authsvcv1.User]
	sessions *cache.Cache[[]*authsvcv1.Session]
	logger   *slog.Logger

	// Session events that name no user drop every session list. They are
	// coalesced to one drop per window, so that a stream of sign-outs
	// cannot keep every replica reloading every list from Wacht.
	window  time.Duration
	mu      sync.Mutex
	last    time.Time
	pending bool
}

// NewInvalidator returns an Invalidator over the two caches. Drops of
// every session list happen at most once per window (a zero window means
// 5s); one asked for within a window happens when it ends.
func NewInvalidator(users *cache.Cache[*authsvcv1.User], sessions *cache.Cache[[]*authsvcv1.Session], window time.Duration, logger *slog.Logger) *Invalidator {
	if window <= 0 {
		window = 5 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Invalidator{users: users, sessions: sessions, window: window, logger: logger}
}

// InvalidateUser drops the cached user.
func (i *Invalidator) InvalidateUser(ctx context.Context, userID string) error {
	return i.users.Invalidate(ctx, userID)
}

// UserDeleted remembers that the user is gone and drops its sessions.
func (i *Invalidator) UserDeleted(ctx context.Context, userID string) error {
	return errors.Join(i.users.MarkNotFound(ctx, userID), i.sessions.Invalidate(ctx, userID))
}

// InvalidateSessions drops the user's cached session list.
func (i *Invalidator) InvalidateSessions(ctx context.Context, userID string) error {
	return i.sessions.Invalidate(ctx, userID)
}

// InvalidateAllSessions drops every cached session list: at once if none
// was dropped in the last window, else when the window ends.
func (i *Invalidator) InvalidateAllSessions(ctx context.Context) error {
	i.mu.Lock()
	wait := i.window - time.Since(i.last)
	switch {
	case wait <= 0:
		i.last = time.Now()
		i.mu.Unlock()
		return i.sessions.InvalidateAll(ctx)
	case i.pending:
		i.mu.Unlock()
		return nil
	}
	i.pending = true
	i.mu.Unlock()
	time.AfterFunc(wait, func() {
		i.mu.Lock()
		i.pending = false
		i.last = time.Now()
		i.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := i.sessions.InvalidateAll(ctx); err != nil {
			i.logger.Error("drop every cached session list", "error", err)
		}
	})
	return nil
}
