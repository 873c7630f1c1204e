package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Invalidator drops what is cached about users and their sessions. The
// handler calls it once an authentic, new delivery asks for it; every
// method must be idempotent, because Wacht redelivers events, and safe for
// concurrent use. An error makes the handler answer 500, so that Wacht
// retries the delivery.
type Invalidator interface {
	// InvalidateUser drops the cached user userID, and any cached "not
	// found" for it.
	InvalidateUser(ctx context.Context, userID string) error
	// UserDeleted records that the user userID is gone: everything cached
	// about the user, its session list included, is dropped or marked
	// deleted.
	UserDeleted(ctx context.Context, userID string) error
	// InvalidateSessions drops the cached session list of the user userID.
	InvalidateSessions(ctx context.Context, userID string) error
	// InvalidateAllSessions drops every cached session list. It is called
	// for a session event that names no user.
	InvalidateAllSessions(ctx context.Context) error
}

// action is what an event type asks of the [Invalidator].
type action int

const (
	actionNone        action = iota // not an event the handler acts on
	actionUser                      // InvalidateUser
	actionUserDeleted               // UserDeleted
	actionSessions                  // InvalidateSessions
)

// EventTypeOther is the event-type label given to [Config.Observer] for
// every type the handler does not act on, and for requests whose type is
// unknown because they were refused before their body was trusted.
const EventTypeOther = "other"

// EventTypes returns the event types the handler acts on, which are, with
// [EventTypeOther], every event-type label [Config.Observer] receives.
func EventTypes() []string {
	return []string{
		"user.created", "user.updated", "user.deleted",
		"user.email.added", "user.email.removed", "user.email.verified",
		"user.phone.added", "user.phone.removed", "user.phone.verified",
		"user.password.updated", "user.mfa.enabled", "user.mfa.disabled",
		"session.created", "session.deleted", "session.expired",
	}
}

// actionFor maps an event type to its action.
func actionFor(eventType string) action {
	switch eventType {
	case "user.created", // may replace a cached "not found"
		"user.updated",
		"user.email.added", "user.email.removed", "user.email.verified",
		"user.phone.added", "user.phone.removed", "user.phone.verified",
		"user.password.updated", "user.mfa.enabled", "user.mfa.disabled":
		return actionUser
	case "user.deleted":
		return actionUserDeleted
	case "session.created", "session.deleted", "session.expired":
		return actionSessions
	default:
		return actionNone
	}
}

// eventLabel bounds the event type for metrics: known types or "other".
func eventLabel(eventType string) string {
	if actionFor(eventType) == actionNone {
		return EventTypeOther
	}
	return eventType
}

// errNoUserID is returned for a user event whose data names no user.
var errNoUserID = errors.New("webhook: user event names no user")

// dispatch calls the invalidator for ev. It returns the user ids it acted
// on (none for an ignored event or all sessions), or errNoUserID, or the
// invalidator's error.
func dispatch(ctx context.Context, inv Invalidator, ev event) ([]string, error) {
	switch actionFor(ev.Type) {
	case actionUser, actionUserDeleted:
		userID := userIDOf(ev.Data)
		if userID == "" {
			return nil, errNoUserID
		}
		var err error
		if actionFor(ev.Type) == actionUserDeleted {
			err = inv.UserDeleted(ctx, userID)
		} else {
			err = inv.InvalidateUser(ctx, userID)
		}
		if err != nil {
			return nil, fmt.Errorf("invalidate user %s: %w", userID, err)
		}
		return []string{userID}, nil
	case actionSessions:
		userIDs := sessionUserIDs(ev.Data)
		if len(userIDs) == 0 {
			if err := inv.InvalidateAllSessions(ctx); err != nil {
				return nil, fmt.Errorf("invalidate all sessions: %w", err)
			}
			return nil, nil
		}
		for _, id := range userIDs {
			if err := inv.InvalidateSessions(ctx, id); err != nil {
				return nil, fmt.Errorf("invalidate sessions of user %s: %w", id, err)
			}
		}
		return userIDs, nil
	default:
		return nil, nil
	}
}

// userIDOf returns the user a user.* event is about. Wacht raises these
// events with the user's id as entity_id for every user entity type (user,
// user_email, user_phone, user_authenticator), and merges the user's
// UserDetails (whose id is the user id) into data for the first three. An
// explicit user_id, as an authenticator row carries, comes next. For an
// entity type that is not the user's, only user_id is trusted.
func userIDOf(d eventData) string {
	switch {
	case d.EntityType == "" || d.EntityType == "user" ||
		d.EntityType == "user_email" || d.EntityType == "user_phone":
		return string(cmp.Or(d.EntityID, d.UserID, d.ID))
	case strings.HasPrefix(d.EntityType, "user_"):
		return string(cmp.Or(d.EntityID, d.UserID))
	default:
		return string(d.UserID)
	}
}

// sessionUserIDs returns the distinct users of a session event: data's
// user_id, then the user of the active sign-in, then those of the other
// sign-ins. Wacht lists only sign-ins that are not deleted, so the list can
// be empty, notably when a sign-out ended the only sign-in.
func sessionUserIDs(d eventData) []string {
	var ids []string
	seen := map[wachtID]bool{}
	add := func(id wachtID) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, string(id))
		}
	}
	add(d.UserID)
	for _, s := range d.Signins {
		if d.ActiveSigninID != "" && s.ID == d.ActiveSigninID {
			add(s.UserID)
		}
	}
	for _, s := range d.Signins {
		add(s.UserID)
	}
	return ids
}
