// Package writethrough applies Wacht's webhook events to the user and
// session-list caches: what a payload carries is stored as it is, in the
// order of the entity's updated_at, and what it cannot carry is dropped.
package writethrough

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/webhook"
)

// UserCache is what the applier needs of the user cache.
type UserCache interface {
	Write(ctx context.Context, userID string, u *authsvcv1.User, version int64) (bool, error)
	Delete(ctx context.Context, userID string, version int64, keep time.Duration) (bool, error)
	Invalidate(ctx context.Context, userID string) error
}

// SessionCache is what the applier needs of the session-list cache.
type SessionCache interface {
	Update(ctx context.Context, userID string, version int64, change func([]*authsvcv1.Session) []*authsvcv1.Session) (bool, error)
	Delete(ctx context.Context, userID string, version int64, keep time.Duration) (bool, error)
	Invalidate(ctx context.Context, userID string) error
	InvalidateAll(ctx context.Context) error
	KeysTagged(ctx context.Context, tag string) ([]string, error)
	Fence(ctx context.Context) error
}

// Results given to [Observer.ObserveWriteThrough].
const (
	// ResultApplied: the payload was stored.
	ResultApplied = "applied"
	// ResultOlder: the cache held a newer state, which was kept.
	ResultOlder = "older"
	// ResultInvalidated: the payload could not be applied (it did not
	// carry the entity, or the cache held nothing to apply it to), so the
	// entry was dropped and the next read loads it.
	ResultInvalidated = "invalidated"
)

// Config configures an [Applier].
type Config struct {
	// Users and Sessions are the caches. Required.
	Users    UserCache
	Sessions SessionCache
	// Keep is how long a deleted user is remembered as deleted, so that
	// no late delivery brings it back: at least how old a delivery may be
	// and still be accepted. Default 7 days.
	Keep time.Duration
	// Window is the shortest time between two drops of every session
	// list, asked for by session events that name neither a session nor
	// a user. Default 5s.
	Window time.Duration
	// Now is the wall clock: versions of events that carry no time.
	// Default time.Now.
	Now func() time.Time
	// Logger receives the failures of deferred drops. Default: discard.
	Logger *slog.Logger
	// Observer is told of each cache entry an event was applied to, for
	// metrics; nil means none.
	Observer Observer
}

// deferredDropTimeout bounds a drop of every session list that runs after
// the webhook that asked for it was answered.
const deferredDropTimeout = 10 * time.Second

// Applier is a [webhook.Applier] over the two caches. Close it when done.
type Applier struct {
	users    UserCache
	sessions SessionCache
	keep     time.Duration
	now      func() time.Time
	logger   *slog.Logger
	observer Observer

	// Session events that name no session and no user drop every session
	// list. They are coalesced to one drop per window, so that a stream
	// of them cannot keep every replica reloading every list from Wacht.
	window  time.Duration
	mu      sync.Mutex
	last    time.Time
	timer   *time.Timer     // the pending drop, if any
	base    context.Context // the pending drop's, without cancellation
	running sync.WaitGroup
	closed  bool
}

var _ webhook.Applier = (*Applier)(nil)

// New returns an Applier configured by cfg.
func New(cfg Config) (*Applier, error) {
	if cfg.Users == nil || cfg.Sessions == nil {
		return nil, errors.New("new write-through: Users and Sessions are required")
	}
	if cfg.Keep < 0 || cfg.Window < 0 {
		return nil, errors.New("new write-through: negative Keep or Window")
	}
	a := &Applier{
		users: cfg.Users, sessions: cfg.Sessions,
		keep: cmp.Or(cfg.Keep, 7*24*time.Hour), window: cmp.Or(cfg.Window, 5*time.Second),
		now: cfg.Now, logger: cfg.Logger, observer: cfg.Observer,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if a.observer == nil {
		a.observer = nopObserver{}
	}
	return a, nil
}

// UserChanged stores the user the payload carries, unless the cache holds
// a newer state of it; a payload without the user's details drops the
// cached user instead.
func (a *Applier) UserChanged(ctx context.Context, ev webhook.UserEvent) error {
	if ev.User == nil {
		a.observer.ObserveWriteThrough(ev.Type, ResultInvalidated)
		return a.users.Invalidate(ctx, ev.UserID)
	}
	u := service.UserFromWacht(ev.User)
	wrote, err := a.users.Write(ctx, ev.UserID, u, service.UserVersion(u))
	if err != nil {
		return err
	}
	a.observer.ObserveWriteThrough(ev.Type, result(wrote, ResultOlder))
	return nil
}

// UserDeleted remembers the user and its session list as deleted, for
// Keep, as of a version after the user's last state, so that no delivery
// of an earlier change brings them back.
func (a *Applier) UserDeleted(ctx context.Context, ev webhook.UserEvent) error {
	var updated time.Time
	if ev.User != nil {
		updated = ev.User.UpdatedAt
	}
	version := a.endVersion(updated, ev.Timestamp)
	var errs []error
	for _, c := range []interface {
		Delete(ctx context.Context, key string, version int64, keep time.Duration) (bool, error)
		Invalidate(ctx context.Context, key string) error
	}{a.users, a.sessions} {
		deleted, err := c.Delete(ctx, ev.UserID, version, a.keep)
		switch {
		case err != nil:
			errs = append(errs, err)
		case deleted:
			a.observer.ObserveWriteThrough(ev.Type, ResultApplied)
		default:
			// Nothing is newer than a deletion: a newer version comes of
			// clocks that disagree. Let Wacht answer.
			a.observer.ObserveWriteThrough(ev.Type, ResultInvalidated)
			errs = append(errs, c.Invalidate(ctx, ev.UserID))
		}
	}
	return errors.Join(errs...)
}

// SessionChanged replaces, in the cached list of each user concerned,
// what it holds of the session by the sign-ins the payload lists. The
// users concerned are those the payload names and those whose cached list
// holds the session (a sign-out's payload no longer lists the sign-in it
// ended). A payload that does not carry the session's sign-ins drops
// those lists instead, or, naming neither a session nor a user, every
// list.
func (a *Applier) SessionChanged(ctx context.Context, ev webhook.SessionEvent) error {
	if ev.SessionID == "" && len(ev.UserIDs) == 0 {
		a.observer.ObserveWriteThrough(ev.Type, ResultInvalidated)
		return a.invalidateAllSessions(ctx)
	}
	if ev.Type != "session.created" {
		// A sign-in may have ended for a user the payload no longer
		// names, whose list a load in progress is about to store: make
		// every such load skip storing, before looking for the lists
		// that hold the session, so that none is missed.
		if err := a.sessions.Fence(ctx); err != nil {
			return err
		}
	}
	userIDs := slices.Clone(ev.UserIDs)
	if ev.SessionID != "" {
		tagged, err := a.sessions.KeysTagged(ctx, SessionTag(ev.SessionID))
		if err != nil {
			return err
		}
		for _, id := range tagged {
			if !slices.Contains(userIDs, id) {
				userIDs = append(userIDs, id)
			}
		}
	}
	var errs []error
	if !ev.Complete {
		for _, id := range userIDs {
			a.observer.ObserveWriteThrough(ev.Type, ResultInvalidated)
			errs = append(errs, a.sessions.Invalidate(ctx, id))
		}
		return errors.Join(errs...)
	}
	ended := ev.Type != "session.created"
	version := a.version(ev.UpdatedAt, ev.Timestamp)
	if ended {
		version = a.endVersion(ev.UpdatedAt, ev.Timestamp)
	}
	end := ev.Timestamp
	if now := a.now(); end.IsZero() || end.After(now) {
		end = now
	}
	for _, userID := range userIDs {
		var signIns []*authsvcv1.Session
		for i := range ev.SignIns {
			if string(ev.SignIns[i].UserID) == userID {
				signIns = append(signIns, service.SessionFromWacht(&ev.SignIns[i]))
			}
		}
		applied, err := a.sessions.Update(ctx, userID, version, func(list []*authsvcv1.Session) []*authsvcv1.Session {
			return replaceSession(list, ev.SessionID, signIns, ended, end)
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.observer.ObserveWriteThrough(ev.Type, result(applied, ResultInvalidated))
	}
	return errors.Join(errs...)
}

// version returns the version of an event: the Unix microseconds of the
// entity's updated_at, else of the payload's timestamp, else of now.
func (a *Applier) version(updated, timestamp time.Time) int64 {
	switch {
	case !updated.IsZero():
		return updated.UnixMicro()
	case !timestamp.IsZero():
		return timestamp.UnixMicro()
	default:
		return a.now().UnixMicro()
	}
}

// endVersion returns the version of an entity's end (a deletion, a
// sign-out, an expiry), which need not move its updated_at: after every
// state it had, so a late delivery of one of them changes nothing, and no
// earlier than the payload's timestamp.
func (a *Applier) endVersion(updated, timestamp time.Time) int64 {
	var v int64
	if !updated.IsZero() {
		v = updated.UnixMicro() + 1
	}
	if !timestamp.IsZero() {
		v = max(v, timestamp.UnixMicro())
	}
	if v == 0 {
		v = a.now().UnixMicro()
	}
	return v
}

// result returns ResultApplied, or otherwise if not applied.
func result(applied bool, otherwise string) string {
	if applied {
		return ResultApplied
	}
	return otherwise
}

// SessionTag is the tag of a cached session list that holds a sign-in of
// the session sessionID.
func SessionTag(sessionID string) string { return "sid:" + sessionID }

// SessionTags returns the tags of a cached session list: one per session
// it holds a sign-in of.
func SessionTags(list []*authsvcv1.Session) []string {
	var tags []string
	for _, s := range list {
		if tag := SessionTag(s.GetSessionId()); s.GetSessionId() != "" && !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	return tags
}

// replaceSession returns list with the sign-ins of sessionID replaced by
// signIns, in Wacht's order: most recently active first, then newest.
// When the session ended, a sign-in that list does not hold is not added:
// an end never begins a sign-in, and the session's sign-ins that signIns
// no longer lists stay, marked ended at end. list is shared with other readers and is
// not modified.
func replaceSession(list []*authsvcv1.Session, sessionID string, signIns []*authsvcv1.Session, ended bool, end time.Time) []*authsvcv1.Session {
	out := make([]*authsvcv1.Session, 0, len(list)+len(signIns))
	held := map[string]bool{}
	for _, s := range list {
		if s.GetSessionId() != sessionID {
			out = append(out, s)
		} else {
			held[s.GetId()] = true
		}
	}
	for _, s := range signIns {
		if !ended || held[s.GetId()] {
			out = append(out, s)
		}
	}
	if ended {
		// The session's sign-ins that ended stay in the list, marked
		// ended, so that a revocation check finds the session ended
		// without asking Wacht whether the list predates it.
		for _, s := range list {
			if s.GetSessionId() == sessionID && !slices.ContainsFunc(signIns, func(o *authsvcv1.Session) bool { return o.GetId() == s.GetId() }) {
				out = append(out, endedAt(s, end))
			}
		}
	}
	slices.SortStableFunc(out, func(x, y *authsvcv1.Session) int {
		if c := y.GetLastActiveAt().AsTime().Compare(x.GetLastActiveAt().AsTime()); c != 0 {
			return c
		}
		xi, _ := strconv.ParseInt(x.GetId(), 10, 64)
		yi, _ := strconv.ParseInt(y.GetId(), 10, 64)
		return cmp.Compare(yi, xi)
	})
	return out
}

// invalidateAllSessions drops every cached session list: at once if none
// was dropped in the last window, else when the window ends.
func (a *Applier) invalidateAllSessions(ctx context.Context) error {
	a.mu.Lock()
	wait := a.window - a.now().Sub(a.last)
	switch {
	case wait <= 0 || a.closed:
		a.last = a.now()
		a.mu.Unlock()
		if err := a.sessions.InvalidateAll(ctx); err != nil {
			return fmt.Errorf("drop every session list: %w", err)
		}
		return nil
	case a.timer != nil:
		a.mu.Unlock()
		return nil
	}
	a.running.Add(1)
	a.base = context.WithoutCancel(ctx)
	a.timer = time.AfterFunc(wait, func() {
		defer a.running.Done()
		a.dropPending()
	})
	a.mu.Unlock()
	return nil
}

// dropPending runs the drop that a window deferred, unless it already
// ran.
func (a *Applier) dropPending() {
	a.mu.Lock()
	if a.timer == nil {
		a.mu.Unlock()
		return
	}
	a.timer = nil
	a.last = a.now()
	base := a.base
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(base, deferredDropTimeout)
	defer cancel()
	if err := a.sessions.InvalidateAll(ctx); err != nil {
		a.logger.Error("drop every cached session list", "error", err)
	}
}

// Close runs a deferred drop now rather than lose it, and waits for any
// that is running. Later drops happen at once.
func (a *Applier) Close() {
	a.mu.Lock()
	a.closed = true
	pending := a.timer != nil && a.timer.Stop()
	a.mu.Unlock()
	if pending {
		a.dropPending()
		a.running.Done() // the stopped timer's
	}
	a.running.Wait()
}

// endedAt returns s ended at end, unless it ended before.
func endedAt(s *authsvcv1.Session, end time.Time) *authsvcv1.Session {
	if s.GetEndedAt() != nil {
		return s
	}
	out := proto.Clone(s).(*authsvcv1.Session)
	out.EndedAt = timestamppb.New(end)
	return out
}
