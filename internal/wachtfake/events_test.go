package wachtfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// eventSink records the events delivered to it, checking each signature.
type eventSink struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	events []string // "type data-summary"
	status int
}

func (k *eventSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if sig := r.Header.Get("webhook-signature"); sig != expectedSignature(k.t, k.secret, id, ts, b) {
		k.t.Errorf("signature %q does not verify", sig)
	}
	var env struct {
		Type string `json:"type"`
		Data struct {
			EntityID   json.Number       `json:"entity_id"`
			EntityType string            `json:"entity_type"`
			FirstName  *string           `json:"first_name"`
			Signins    *[]map[string]any `json:"signins"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		k.t.Errorf("body %s: %v", b, err)
	}
	summary := env.Type + " " + env.Data.EntityType + " " + env.Data.EntityID.String()
	if env.Data.FirstName != nil {
		summary += " " + *env.Data.FirstName
	}
	if env.Data.Signins != nil {
		for _, si := range *env.Data.Signins {
			summary += " signin:" + si["id"].(string)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.events = append(k.events, summary)
	w.WriteHeader(k.status)
}

// TestEventsDelivered: changes to users and sessions are delivered as
// Wacht's events, signed; a Backend API revocation raises none.
func TestEventsDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	secret, err := NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetWebhookEndpoint("http://127.0.0.1:1/", "whsec_!!"); err == nil {
		t.Error("SetWebhookEndpoint with a malformed secret succeeded")
	}
	sink := &eventSink{t: t, secret: secret, status: http.StatusOK}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	if err := e.s.SetWebhookEndpoint(srv.URL, secret); err != nil {
		t.Fatal(err)
	}

	u := mustAddUser(t, e.s, User{FirstName: "Ada"})
	if err := e.s.UpdateUser(u.ID, func(u *User) { u.FirstName = "Augusta" }); err != nil {
		t.Fatal(err)
	}
	a, err := e.s.AddSignIn(u.ID, SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.s.AddSignIn(u.ID, SignIn{SessionID: a.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.backend(t, http.MethodPost, "/users/"+u.ID+"/sessions/"+b.ID+"/revoke", ""); r.status != http.StatusOK {
		t.Fatalf("revoke: %d", r.status)
	}
	c, err := e.s.AddSignIn(u.ID, SignIn{SessionID: a.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.SignOut(u.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.backend(t, http.MethodDelete, "/users/"+u.ID, ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d", r.status)
	}
	want := []string{
		"user.created user " + u.ID + " Ada",
		"user.updated user " + u.ID + " Augusta",
		"session.created session " + a.SessionID + " signin:" + a.ID,
		"session.created session " + a.SessionID + " signin:" + a.ID + " signin:" + b.ID,
		"session.created session " + a.SessionID + " signin:" + a.ID + " signin:" + c.ID,
		"session.deleted session " + a.SessionID + " signin:" + c.ID,
		"user.deleted user " + u.ID,
	}
	if diff := cmp.Diff(want, sink.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if st := e.s.WebhookStats(); st.Delivered != len(want) || st.Failed != 0 {
		t.Errorf("stats %+v, want %d delivered", st, len(want))
	}

	sink.status = http.StatusInternalServerError
	mustAddUser(t, e.s, User{FirstName: "Grace"})
	if st := e.s.WebhookStats(); st.Failed != 1 || st.LastFailure == "" {
		t.Errorf("stats %+v after a refused delivery, want it counted as failed", st)
	}
	if err := e.s.SetWebhookEndpoint("", ""); err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, e.s, User{FirstName: "Hedy"})
	if n := len(sink.events); n != len(want)+1 {
		t.Errorf("%d events after deliveries stopped, want %d", n, len(want)+1)
	}
}
