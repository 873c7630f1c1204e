package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Applier applies Wacht's events to what is cached about users and their
// sessions. The handler calls it once an authentic, new delivery asks for
// it; every method must be idempotent, because Wacht redelivers events,
// must cope with deliveries out of order, and must be safe for concurrent
// use. An error makes the handler answer 500, so that Wacht retries the
// delivery.
type Applier interface {
	// UserChanged applies a user event other than user.deleted: it
	// stores ev.User when the payload carries it, and else drops the
	// cached user (and any cached "not found" for it).
	UserChanged(ctx context.Context, ev UserEvent) error
	// UserDeleted records that the user is gone: everything cached about
	// the user, its session list included, is marked deleted.
	UserDeleted(ctx context.Context, ev UserEvent) error
	// SessionChanged applies a session event to the session lists of
	// the users it names, or, when it names none, to whichever lists hold
	// the session.
	SessionChanged(ctx context.Context, ev SessionEvent) error
}

// UserEvent is an authentic user.* event.
type UserEvent struct {
	// Type is the event type, such as "user.updated".
	Type string
	// UserID is the user the event is about.
	UserID string
	// User is the user's details as data carries them, or nil when data
	// is not the whole UserDetails of UserID (an authenticator's row, a
	// partial or malformed payload).
	User *wachtclient.UserDetails
	// Timestamp is the envelope's timestamp; zero if it has none.
	Timestamp time.Time
}

// SessionEvent is an authentic session.* event.
type SessionEvent struct {
	// Type is the event type, such as "user.updated".
	Type string
	// SessionID is the session's id (data's id, else its entity_id); ""
	// when data names none.
	SessionID string
	// UserIDs are the users data names: its user_id, then the user of the
	// active sign-in, then those of the other sign-ins. Wacht lists only
	// sign-ins that are not deleted, so it can be empty, notably when a
	// sign-out ended the only sign-in.
	UserIDs []string
	// SignIns are the session's sign-ins that are not deleted, as data
	// lists them, when Complete.
	SignIns []wachtclient.SignIn
	// Complete reports that data carries the session's id and its whole
	// list of sign-ins, each of them this session's, with its user: what
	// a cached list holds of the session can then be replaced by SignIns.
	Complete bool
	// UpdatedAt is the session's updated_at; zero if data has none.
	UpdatedAt time.Time
	// Timestamp is the envelope's timestamp; zero if it has none.
	Timestamp time.Time
}

// action is what an event type asks of the [Applier].
type action int

const (
	actionNone        action = iota // not an event the handler acts on
	actionUser                      // UserChanged
	actionUserDeleted               // UserDeleted
	actionSessions                  // SessionChanged
)

// EventTypeOther is the event-type label given to
// [Observer.ObserveWebhook] for every type the handler does not act on,
// and for requests whose type is unknown because they were refused before
// their body was trusted.
const EventTypeOther = "other"

// eventActions maps each event type the handler acts on to its action.
// With [EventTypeOther], its keys are every event-type label
// [Observer.ObserveWebhook] receives.
var eventActions = map[string]action{
	"user.created":     actionUser, // may replace a cached "not found"
	"user.updated":     actionUser,
	"user.email.added": actionUser, "user.email.removed": actionUser, "user.email.verified": actionUser,
	"user.phone.added": actionUser, "user.phone.removed": actionUser, "user.phone.verified": actionUser,
	"user.password.updated": actionUser, "user.mfa.enabled": actionUser, "user.mfa.disabled": actionUser,
	"user.deleted":    actionUserDeleted,
	"session.created": actionSessions, "session.deleted": actionSessions, "session.expired": actionSessions,
}

// actionFor maps an event type to its action; actionNone for the rest.
func actionFor(eventType string) action { return eventActions[eventType] }

// eventLabel bounds the event type for metrics: known types or "other".
func eventLabel(eventType string) string {
	if actionFor(eventType) == actionNone {
		return EventTypeOther
	}
	return eventType
}

// errNoUserID is returned for a user event whose data names no user.
var errNoUserID = errors.New("webhook: user event names no user")

// dispatch hands ev to the applier. It returns the user ids it acted on
// (none for an ignored event or a session that names no user), or
// errNoUserID, or the applier's error.
func dispatch(ctx context.Context, app Applier, ev event) ([]string, error) {
	switch actionFor(ev.Type) {
	case actionUser, actionUserDeleted:
		userID := userIDOf(ev.Data)
		if userID == "" {
			return nil, errNoUserID
		}
		uev := UserEvent{Type: ev.Type, UserID: userID, User: userDetailsOf(ev, userID), Timestamp: ev.Timestamp}
		var err error
		if actionFor(ev.Type) == actionUserDeleted {
			err = app.UserDeleted(ctx, uev)
		} else {
			err = app.UserChanged(ctx, uev)
		}
		if err != nil {
			return nil, fmt.Errorf("apply %s to user %s: %w", ev.Type, userID, err)
		}
		return []string{userID}, nil
	case actionSessions:
		sev := sessionEventOf(ev)
		if err := app.SessionChanged(ctx, sev); err != nil {
			return nil, fmt.Errorf("apply %s to session %q: %w", ev.Type, sev.SessionID, err)
		}
		return sev.UserIDs, nil
	default:
		return nil, nil
	}
}

// userDetailsKeys are the fields of UserDetails a payload must have to be
// taken for the user's whole details.
var userDetailsKeys = []string{
	"id", "created_at", "updated_at", "first_name", "last_name", "email_addresses", "phone_numbers",
}

// userDetailsOf returns the user's details that a user event's data
// carries: for user, user_email and user_phone entities Wacht merges the
// user's whole UserDetails into data. It returns nil for any other entity,
// and for data that lacks a field of UserDetails, does not decode, or is
// about another user.
func userDetailsOf(ev event, userID string) *wachtclient.UserDetails {
	switch ev.Data.EntityType {
	case "", "user", "user_email", "user_phone":
	default:
		return nil
	}
	var fields map[string]json.RawMessage
	if ev.Raw == nil || json.Unmarshal(ev.Raw, &fields) != nil {
		return nil
	}
	for _, k := range userDetailsKeys {
		if v, ok := fields[k]; !ok || string(v) == "null" {
			return nil
		}
	}
	var u wachtclient.UserDetails
	if json.Unmarshal(ev.Raw, &u) != nil || string(u.ID) != userID || u.UpdatedAt.IsZero() {
		return nil
	}
	return &u
}

// sessionData is a session event's data as decoded for its sign-ins.
type sessionData struct {
	ID        *wachtID              `json:"id"`
	UpdatedAt *time.Time            `json:"updated_at"`
	Signins   *[]wachtclient.SignIn `json:"signins"`
}

// sessionEventOf returns the session event that ev is.
func sessionEventOf(ev event) SessionEvent {
	sev := SessionEvent{
		Type:      ev.Type,
		SessionID: string(cmp.Or(ev.Data.ID, ev.Data.EntityID)),
		UserIDs:   sessionUserIDs(ev.Data),
		Timestamp: ev.Timestamp,
	}
	if ev.Data.EntityType != "" && ev.Data.EntityType != "session" {
		sev.SessionID = ""
		return sev
	}
	var d sessionData
	if ev.Raw == nil || json.Unmarshal(ev.Raw, &d) != nil {
		return sev
	}
	if d.UpdatedAt != nil {
		sev.UpdatedAt = *d.UpdatedAt
	}
	if sev.SessionID == "" || d.Signins == nil {
		return sev
	}
	for _, si := range *d.Signins {
		if si.ID == "" || si.UserID == "" || string(si.SessionID) != sev.SessionID {
			return sev
		}
	}
	sev.SignIns, sev.Complete = *d.Signins, true
	return sev
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
