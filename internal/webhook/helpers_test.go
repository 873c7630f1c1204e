package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/webhook"
)

// testNow is the clock of every test handler.
var testNow = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// testKey is the HMAC key of testSecret.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testSecret is a signing secret in Wacht's format.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString(testKey)

// signature returns a "v1,<base64>" webhook-signature entry of the
// message under key.
func signature(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// unix renders t as webhook-timestamp.
func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// delivery is one webhook request; signed returns a valid one.
type delivery struct {
	method    string
	id        string
	timestamp string
	signature string
	body      []byte
	// unknownLength sends the body without Content-Length.
	unknownLength bool
}

// signed returns a delivery of body with id, signed with testKey at testNow.
func signed(id string, body []byte) delivery {
	ts := unix(testNow)
	return delivery{method: http.MethodPost, id: id, timestamp: ts, signature: signature(testKey, id, ts, body), body: body}
}

// request builds the HTTP request.
func (d delivery) request() *http.Request {
	r := httptest.NewRequest(d.method, "/webhooks/wacht", bytes.NewReader(d.body))
	if d.unknownLength {
		r.ContentLength = -1
	}
	r.Header.Set("Content-Type", "application/json")
	for name, value := range map[string]string{
		"webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature,
	} {
		if value != "" {
			r.Header.Set(name, value)
		}
	}
	return r
}

// serve sends d to h and returns the response.
func serve(h http.Handler, d delivery) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, d.request())
	return w
}

// call is one call to an Applier: a session event is recorded once per
// user it names, or once with no user.
type call struct {
	Method string
	UserID string
}

// errInjected is the error of a failing recorder.
var errInjected = errors.New("injected failure")

// recorder is an Applier that records its calls and the events it was
// given, and fails the first failures of them.
type recorder struct {
	mu       sync.Mutex
	calls    []call
	users    []webhook.UserEvent
	sessions []webhook.SessionEvent
	failures int
}

func (r *recorder) fail() error {
	if r.failures > 0 {
		r.failures--
		return errInjected
	}
	return nil
}

func (r *recorder) UserChanged(_ context.Context, ev webhook.UserEvent) error {
	return r.user("UserChanged", ev)
}

func (r *recorder) UserDeleted(_ context.Context, ev webhook.UserEvent) error {
	return r.user("UserDeleted", ev)
}

func (r *recorder) user(method string, ev webhook.UserEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{method, ev.UserID})
	r.users = append(r.users, ev)
	return r.fail()
}

func (r *recorder) SessionChanged(_ context.Context, ev webhook.SessionEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(ev.UserIDs) == 0 {
		r.calls = append(r.calls, call{"SessionChanged", ""})
	}
	for _, id := range ev.UserIDs {
		r.calls = append(r.calls, call{"SessionChanged", id})
	}
	r.sessions = append(r.sessions, ev)
	return r.fail()
}

// Calls returns a copy of the calls so far.
func (r *recorder) Calls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// observation is one call of [webhook.Observer.ObserveWebhook].
type observation struct {
	EventType string
	Outcome   string
}

// observations is a [webhook.Observer] that collects its calls.
type observations struct {
	mu  sync.Mutex
	all []observation
}

func (o *observations) ObserveWebhook(eventType, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, observation{eventType, outcome})
}

func (o *observations) last() observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.all) == 0 {
		return observation{}
	}
	return o.all[len(o.all)-1]
}

// newHandler returns a handler on testSecret at testNow with the given
// invalidator and deduper.
func newHandler(t *testing.T, inv webhook.Applier, dedupe webhook.Deduper, obs *observations) *webhook.Handler {
	t.Helper()
	cfg := webhook.Config{
		Secret:  testSecret,
		Applier: inv,
		Deduper: dedupe,
		Now:     func() time.Time { return testNow },
	}
	if obs != nil {
		cfg.Observer = obs
	}
	h, err := webhook.NewHandler(cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}
