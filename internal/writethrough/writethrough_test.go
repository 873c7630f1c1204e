package writethrough_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/webhook"
	"github.com/authsvc/authsvc/internal/writethrough"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// rig is an Applier over in-memory caches whose loaders answer from the
// lists and users set here, counting their calls.
type rig struct {
	app      *writethrough.Applier
	users    *cache.Cache[*authsvcv1.User]
	sessions *cache.Cache[[]*authsvcv1.Session]
	loads    atomic.Int32

	mu       sync.Mutex
	lists    map[string][]*authsvcv1.Session // what Wacht answers
	observed []string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{lists: map[string][]*authsvcv1.Session{}}
	var err error
	r.users, err = cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", TTL: time.Hour,
		Load: func(context.Context, string) (*authsvcv1.User, error) {
			r.loads.Add(1)
			return nil, cache.ErrNotFound
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.users.Close)
	r.sessions, err = cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", TTL: time.Hour, Tags: writethrough.SessionTags,
		Load: func(_ context.Context, userID string) ([]*authsvcv1.Session, error) {
			r.loads.Add(1)
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.lists[userID], nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.sessions.Close)
	r.app, err = writethrough.New(writethrough.Config{
		Users: r.users, Sessions: r.sessions, Now: func() time.Time { return t0 },
		Observer: r,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.app.Close)
	return r
}

// ObserveWriteThrough makes the rig the applier's [writethrough.Observer].
func (r *rig) ObserveWriteThrough(eventType, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed = append(r.observed, eventType+" "+result)
}

func signIn(id, sessionID, userID string, lastActive time.Time) wachtclient.SignIn {
	return wachtclient.SignIn{
		ID: wachtclient.ID(id), SessionID: wachtclient.ID(sessionID), UserID: wachtclient.ID(userID),
		CreatedAt: t0, UpdatedAt: lastActive, LastActiveAt: lastActive, ExpiresAt: t0.Add(24 * time.Hour),
	}
}

func session(id, sessionID, userID string, lastActive time.Time) *authsvcv1.Session {
	return &authsvcv1.Session{Id: id, SessionId: sessionID, UserId: userID, LastActiveAt: timestamppb.New(lastActive)}
}

// ids returns the ids of the sign-ins the cached list holds as active.
func (r *rig) ids(t *testing.T, userID string) []string {
	t.Helper()
	return r.signIns(t, userID, false)
}

// ended returns the ids of the sign-ins the cached list holds as ended.
func (r *rig) ended(t *testing.T, userID string) []string {
	t.Helper()
	return r.signIns(t, userID, true)
}

func (r *rig) signIns(t *testing.T, userID string, ended bool) []string {
	t.Helper()
	res, err := r.sessions.Get(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range res.Value {
		if (s.GetEndedAt() != nil) == ended {
			out = append(out, s.GetId())
		}
	}
	return out
}

func TestSessionEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := newRig(t)
	// Wacht holds sign-ins 1 (session A) and 2 (session B) of user 7.
	r.lists["7"] = []*authsvcv1.Session{session("2", "B", "7", t0.Add(2*time.Second)), session("1", "A", "7", t0.Add(time.Second))}
	if diff := cmp.Diff([]string{"2", "1"}, r.ids(t, "7")); diff != "" {
		t.Fatalf("loaded list (-want +got):\n%s", diff)
	}
	later := time.Now().Add(time.Hour) // after the load's version

	// Session C begins with sign-in 3.
	created := webhook.SessionEvent{
		Type: "session.created", SessionID: "C", UserIDs: []string{"7"}, Complete: true,
		SignIns: []wachtclient.SignIn{signIn("3", "C", "7", later)}, UpdatedAt: later,
	}
	if err := r.app.SessionChanged(ctx, created); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"3", "2", "1"}, r.ids(t, "7")); diff != "" {
		t.Errorf("after session.created (-want +got):\n%s", diff)
	}

	// A sign-out ends session A: its payload no longer lists sign-in 1,
	// nor names user 7; the list holding session A is found by its tag.
	deleted := webhook.SessionEvent{
		Type: "session.deleted", SessionID: "A", Complete: true, SignIns: []wachtclient.SignIn{},
		UpdatedAt: later.Add(time.Second),
	}
	if err := r.app.SessionChanged(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"3", "2"}, r.ids(t, "7")); diff != "" {
		t.Errorf("after session.deleted (-want +got):\n%s", diff)
	}
	// Sign-in 1 stays, marked ended, so that its tokens are refused
	// without asking Wacht whether the list predates the session.
	if diff := cmp.Diff([]string{"1"}, r.ended(t, "7")); diff != "" {
		t.Errorf("ended sign-ins after session.deleted (-want +got):\n%s", diff)
	}
	if n := r.loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1 (the first read)", n)
	}

	// A late delivery of session A's creation must not bring sign-in 1
	// back: the list is dropped and Wacht answers.
	r.mu.Lock()
	r.lists["7"] = []*authsvcv1.Session{session("3", "C", "7", later), session("2", "B", "7", t0.Add(2*time.Second))}
	r.mu.Unlock()
	late := webhook.SessionEvent{
		Type: "session.created", SessionID: "A", UserIDs: []string{"7"}, Complete: true,
		SignIns: []wachtclient.SignIn{signIn("1", "A", "7", t0.Add(time.Second))}, UpdatedAt: t0.Add(time.Second),
	}
	if err := r.app.SessionChanged(ctx, late); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"3", "2"}, r.ids(t, "7")); diff != "" {
		t.Errorf("after a late session.created (-want +got):\n%s", diff)
	}
	want := []string{"session.created applied", "session.deleted applied", "session.created invalidated"}
	if diff := cmp.Diff(want, r.observed); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

// TestSessionEventWithoutSignIns: a payload that does not carry the
// session's sign-ins drops the lists concerned; one naming neither a
// session nor a user drops every list.
func TestSessionEventWithoutSignIns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := newRig(t)
	r.lists["7"] = []*authsvcv1.Session{session("1", "A", "7", t0)}
	r.lists["8"] = []*authsvcv1.Session{session("2", "B", "8", t0)}
	r.ids(t, "7")
	r.ids(t, "8")
	if err := r.app.SessionChanged(ctx, webhook.SessionEvent{Type: "session.deleted", SessionID: "A"}); err != nil {
		t.Fatal(err)
	}
	r.ids(t, "7")
	r.ids(t, "8")
	if n := r.loads.Load(); n != 3 {
		t.Errorf("%d loads, want 3: user 7's list reloaded, user 8's kept", n)
	}
	if err := r.app.SessionChanged(ctx, webhook.SessionEvent{Type: "session.expired"}); err != nil {
		t.Fatal(err)
	}
	r.ids(t, "7")
	r.ids(t, "8")
	if n := r.loads.Load(); n != 5 {
		t.Errorf("%d loads, want 5: every list reloaded", n)
	}
}

func TestUserEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := newRig(t)
	details := func(first string, updated time.Time) *wachtclient.UserDetails {
		return &wachtclient.UserDetails{ID: "7", FirstName: first, CreatedAt: t0, UpdatedAt: updated}
	}
	first := func() (string, error) {
		res, err := r.users.Get(ctx, "7")
		return res.Value.GetFirstName(), err
	}
	steps := []struct {
		name      string
		deleted   bool
		ev        webhook.UserEvent
		wantFirst string
		wantErr   error
	}{
		{name: "created", ev: webhook.UserEvent{Type: "user.created", User: details("Ada", t0)}, wantFirst: "Ada"},
		{name: "updated", ev: webhook.UserEvent{Type: "user.updated", User: details("Augusta", t0.Add(2*time.Second))}, wantFirst: "Augusta"},
		{name: "older_update_changes_nothing", ev: webhook.UserEvent{Type: "user.email.added", User: details("Ada", t0.Add(time.Second))}, wantFirst: "Augusta"},
		{name: "deleted", deleted: true, ev: webhook.UserEvent{Type: "user.deleted", Timestamp: t0.Add(3 * time.Second)}, wantErr: cache.ErrNotFound},
		{name: "late_update_does_not_resurrect", ev: webhook.UserEvent{Type: "user.updated", User: details("Augusta", t0.Add(2*time.Second))}, wantErr: cache.ErrNotFound},
	}
	for _, s := range steps {
		s.ev.UserID = "7"
		var err error
		if s.deleted {
			err = r.app.UserDeleted(ctx, s.ev)
		} else {
			err = r.app.UserChanged(ctx, s.ev)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := first()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && got != s.wantFirst) {
			t.Errorf("%s: user %q, %v; want %q, %v", s.name, got, err, s.wantFirst, s.wantErr)
		}
	}
	if n := r.loads.Load(); n != 0 {
		t.Errorf("%d loads, want 0", n)
	}
	want := []string{
		"user.created applied", "user.updated applied", "user.email.added older",
		"user.deleted applied", "user.deleted applied", "user.updated older",
	}
	if diff := cmp.Diff(want, r.observed); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}

	// A payload without the user's details drops the user.
	if err := r.app.UserChanged(ctx, webhook.UserEvent{Type: "user.password.updated", UserID: "7"}); err != nil {
		t.Fatal(err)
	}
	if _, err := first(); !errors.Is(err, cache.ErrNotFound) || r.loads.Load() != 1 {
		t.Errorf("after user.password.updated: %v after %d loads; want a load (answering not found)", err, r.loads.Load())
	}
}
