package service

import (
	"context"
	"errors"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
)

// Invalidator drops cached users and session lists when Wacht says they
// changed. Its methods match what the webhook receiver needs.
type Invalidator struct {
	Users    *cache.Cache[*authsvcv1.User]
	Sessions *cache.Cache[[]*authsvcv1.Session]
}

// InvalidateUser drops the cached user.
func (i Invalidator) InvalidateUser(ctx context.Context, userID string) error {
	return i.Users.Invalidate(ctx, userID)
}

// UserDeleted remembers that the user is gone and drops its sessions.
func (i Invalidator) UserDeleted(ctx context.Context, userID string) error {
	return errors.Join(i.Users.MarkNotFound(ctx, userID), i.Sessions.Invalidate(ctx, userID))
}

// InvalidateSessions drops the user's cached session list.
func (i Invalidator) InvalidateSessions(ctx context.Context, userID string) error {
	return i.Sessions.Invalidate(ctx, userID)
}

// InvalidateAllSessions drops every cached session list.
func (i Invalidator) InvalidateAllSessions(ctx context.Context) error {
	return i.Sessions.InvalidateAll(ctx)
}
