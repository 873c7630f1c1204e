package app_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// fakeClock is the emulator's clock: real time moved on by hand, so that
// each change gets a later updated_at however fast the test runs.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// writeThroughRig is a service on Postgres that the emulator delivers its
// webhooks to.
type writeThroughRig struct {
	h      *apptest.Harness
	clock  *fakeClock
	client authsvcv1connect.AuthServiceClient
}

func newWriteThroughRig(t *testing.T) *writeThroughRig {
	t.Helper()
	clock := &fakeClock{}
	h := apptest.New(t, apptest.Options{Postgres: true, Webhooks: true, Fake: wachtfake.Options{Now: clock.now}})
	return &writeThroughRig{h: h, clock: clock, client: h.AuthClient()}
}

// addUser adds a user to the emulator, which delivers user.created.
func (r *writeThroughRig) addUser(t *testing.T, first string) string {
	t.Helper()
	u, err := r.h.Fake.AddUser(wachtfake.User{FirstName: first, LastName: "Lovelace",
		Emails: []wachtfake.Email{{Email: "ada@example.com", Primary: true, Verified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// rename changes the user's first name in the emulator, a second later
// than its last change; the emulator delivers user.updated.
func (r *writeThroughRig) rename(t *testing.T, userID, first string) {
	t.Helper()
	r.clock.advance(time.Second)
	if err := r.h.Fake.UpdateUser(userID, func(u *wachtfake.User) { u.FirstName = first }); err != nil {
		t.Fatal(err)
	}
}

// send delivers an event with data as the emulator signs it.
func (r *writeThroughRig) send(t *testing.T, eventType string, data any) {
	t.Helper()
	status, err := r.h.Fake.SendWebhook(t.Context(), r.h.URL+"/webhooks/wacht", r.h.WebhookSecret, eventType, data)
	if err != nil || status != http.StatusOK {
		t.Fatalf("deliver %s: status %d, %v", eventType, status, err)
	}
}

// firstName reads the user through client.
func firstName(t *testing.T, client authsvcv1connect.AuthServiceClient, userID string) (string, error) {
	t.Helper()
	res, err := client.GetUser(t.Context(), connect.NewRequest(&authsvcv1.GetUserRequest{UserId: userID}))
	if err != nil {
		return "", err
	}
	return res.Msg.GetUser().GetFirstName(), nil
}

// noDeliveryFailed fails the test if a webhook was not accepted.
func noDeliveryFailed(t *testing.T, fake *wachtfake.Server) {
	t.Helper()
	if st := fake.WebhookStats(); st.Failed != 0 || st.Delivered == 0 {
		t.Errorf("webhook deliveries %+v, want all accepted", st)
	}
}

// TestWebhooksWriteUsersThrough: users created and changed in Wacht are
// read from what their webhooks carried, without a Backend API call, and
// a delivery older than what is cached changes nothing.
func TestWebhooksWriteUsersThrough(t *testing.T) {
	t.Parallel()
	r := newWriteThroughRig(t)
	id := r.addUser(t, "Ada")
	if got, err := firstName(t, r.client, id); err != nil || got != "Ada" {
		t.Fatalf("after user.created: %q, %v", got, err)
	}
	older, err := r.h.Fake.UserEventData(id)
	if err != nil {
		t.Fatal(err)
	}
	r.rename(t, id, "Augusta")
	if got, err := firstName(t, r.client, id); err != nil || got != "Augusta" {
		t.Fatalf("after user.updated: %q, %v", got, err)
	}

	// Wacht retries a delivery, or delivers two out of order: the older
	// state arrives last.
	r.send(t, "user.updated", older)
	if got, err := firstName(t, r.client, id); err != nil || got != "Augusta" {
		t.Errorf("after a late, older user.updated: %q, %v; want the newer Augusta kept", got, err)
	}
	if n := r.h.Fake.Calls(wachtfake.RouteUserDetails); n != 0 {
		t.Errorf("%d Backend API user reads, want 0: webhooks carried every state", n)
	}
	noDeliveryFailed(t, r.h.Fake)
}

// TestWebhookDeletedUserStaysDeleted: after user.deleted, a late delivery
// of an earlier user.updated does not bring the user back.
func TestWebhookDeletedUserStaysDeleted(t *testing.T) {
	t.Parallel()
	r := newWriteThroughRig(t)
	id := r.addUser(t, "Ada")
	r.rename(t, id, "Augusta")
	late, err := r.h.Fake.UserEventData(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := firstName(t, r.client, id); err != nil {
		t.Fatal(err)
	}
	r.clock.advance(time.Second)
	if err := r.h.Fake.DeleteUser(id); err != nil {
		t.Fatal(err)
	}
	r.send(t, "user.updated", late)
	for _, read := range []string{"first read", "second read"} {
		if got, err := firstName(t, r.client, id); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("%s after user.deleted and a late user.updated: %q, %v; want NotFound", read, got, err)
		}
	}
	if n := r.h.Fake.Calls(wachtfake.RouteUserDetails); n != 0 {
		t.Errorf("%d Backend API user reads, want 0: the deletion is known from its webhook", n)
	}
	noDeliveryFailed(t, r.h.Fake)
}

// TestWebhookWritesThroughToEveryReplica: a webhook delivered to one
// replica is served by another from Postgres, with no Wacht call, whether
// the other held the user or not.
func TestWebhookWritesThroughToEveryReplica(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{}
	noRotation := func(c *app.Config) { c.NoRotationWorker = true }
	a := apptest.New(t, apptest.Options{Postgres: true, Webhooks: true, Background: true, Config: noRotation,
		Fake: wachtfake.Options{Now: clock.now}})
	b := apptest.New(t, apptest.Options{Replicate: a, Background: true, Config: noRotation})
	r := &writeThroughRig{h: a, clock: clock, client: a.AuthClient()}
	clientB := b.AuthClient()

	// Neither replica has read the user: B finds what A stored.
	id := r.addUser(t, "Ada")
	if got, err := firstName(t, clientB, id); err != nil || got != "Ada" {
		t.Fatalf("replica B after user.created reached A: %q, %v", got, err)
	}
	// B now holds the user in memory; A's write must reach it through
	// Postgres's notifications, which B listens to once its background
	// work has started.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		name := "Augusta" + string(rune('A'+i%26))
		r.rename(t, id, name)
		seen := false
		for range 20 {
			if got, err := firstName(t, clientB, id); err == nil && got == name {
				seen = true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica B never served a change delivered to replica A")
		}
	}
	start := time.Now()
	r.rename(t, id, "Countess")
	for {
		got, err := firstName(t, clientB, id)
		if err != nil {
			t.Fatal(err)
		}
		if got == "Countess" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("replica B still serves the old name 10s after the webhook reached replica A")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("replica B served the change %v after replica A accepted its webhook", time.Since(start))
	if n := a.Fake.Calls(wachtfake.RouteUserDetails); n != 0 {
		t.Errorf("%d Backend API user reads, want 0", n)
	}
	noDeliveryFailed(t, a.Fake)
}

// TestWebhooksWriteSessionsThrough: a cached session list follows
// session.created and a sign-out's session.deleted without a Backend API
// call, and the signed-out session's token is refused.
func TestWebhooksWriteSessionsThrough(t *testing.T) {
	t.Parallel()
	r := newWriteThroughRig(t)
	id := r.addUser(t, "Ada")
	first, err := r.h.Fake.AddSignIn(id, wachtfake.SignIn{IPAddress: "192.0.2.10", Browser: "Firefox"})
	if err != nil {
		t.Fatal(err)
	}
	r.clock.advance(time.Second)
	second, err := r.h.Fake.AddSignIn(id, wachtfake.SignIn{IPAddress: "192.0.2.11", Browser: "Safari"})
	if err != nil {
		t.Fatal(err)
	}
	// A token issued well before the list is read: its session, missing
	// from the list, has ended rather than begun since.
	token, err := r.h.Fake.MintToken(wachtfake.TokenClaims{UserID: id, SessionID: first.SessionID,
		IssuedAt: r.clock.now().Add(-20 * time.Second), Lifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		t.Helper()
		res, err := r.client.ListSessions(t.Context(), connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: id}))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range res.Msg.GetSessions() {
			ids = append(ids, s.GetId())
		}
		return ids
	}
	if diff := cmp.Diff([]string{second.ID, first.ID}, list()); diff != "" {
		t.Fatalf("sessions (-want +got):\n%s", diff)
	}
	loads := r.h.Fake.Calls(wachtfake.RouteListSessions)

	r.clock.advance(time.Second)
	third, err := r.h.Fake.AddSignIn(id, wachtfake.SignIn{IPAddress: "192.0.2.12", Browser: "Chrome"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{third.ID, second.ID, first.ID}, list()); diff != "" {
		t.Errorf("after session.created (-want +got):\n%s", diff)
	}
	r.clock.advance(time.Second)
	if _, err := r.h.Fake.SignOut(id, first.ID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{third.ID, second.ID}, list()); diff != "" {
		t.Errorf("after the sign-out's session.deleted (-want +got):\n%s", diff)
	}
	_, err = r.client.VerifySession(t.Context(), connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token, CheckRevocation: true}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("VerifySession of the signed-out session = %v, want Unauthenticated", err)
	}
	if n := r.h.Fake.Calls(wachtfake.RouteListSessions); n != loads {
		t.Errorf("%d Backend API session list reads after the first load, want 0", n-loads)
	}
	noDeliveryFailed(t, r.h.Fake)
}
