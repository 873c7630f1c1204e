package wachtfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// expectedSignature computes a Standard Webhooks signature from scratch.
func expectedSignature(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte("."))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestNewWebhookSecret(t *testing.T) {
	t.Parallel()
	a, err := NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewWebhookSecret()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(raw) != 32 || a == b {
		t.Errorf("secret %q: want whsec_ + base64 of 32 fresh bytes", a)
	}
}

func TestSignWebhook(t *testing.T) {
	t.Parallel()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	body := []byte(`{"type":"user.updated"}`)
	ts := time.Unix(1772618400, 0)
	h, err := SignWebhook(secret, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Webhook-Id":        {"msg_1"},
		"Webhook-Timestamp": {"1772618400"},
		"Webhook-Signature": {expectedSignature(t, secret, "msg_1", "1772618400", body)},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!!"} {
		if _, err := SignWebhook(bad, "msg_1", ts, body); !errors.Is(err, ErrInvalid) {
			t.Errorf("SignWebhook(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestSendWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.clock.Advance(1500 * time.Millisecond)
	u := mustAddUser(t, e.s, User{FirstName: "Ada", Emails: []Email{{Email: "ada@example.com"}}})
	secret, err := NewWebhookSecret()
	if err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(sink.Close)

	data, err := e.s.UserEventData(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	status, err := e.s.SendWebhook(t.Context(), sink.URL, secret, "user.updated", data)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("SendWebhook = %d, %v", status, err)
	}
	d := <-got
	id := d.header.Get("webhook-id")
	if n, err := strconv.ParseInt(strings.TrimPrefix(id, "msg_"), 10, 64); !strings.HasPrefix(id, "msg_") || err != nil || n <= 0 {
		t.Errorf("webhook-id = %q", id)
	}
	ts := d.header.Get("webhook-timestamp")
	if ts != strconv.FormatInt(epoch.Unix()+1, 10) {
		t.Errorf("webhook-timestamp = %q", ts)
	}
	if sig := d.header.Get("webhook-signature"); sig != expectedSignature(t, secret, id, ts, d.body) {
		t.Errorf("signature %q does not verify", sig)
	}
	if ua := d.header.Get("User-Agent"); ua != "Wacht-Webhook/1.0" {
		t.Errorf("User-Agent = %q", ua)
	}
	var env struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(d.body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "user.updated" || env.Timestamp != "2026-03-04T10:00:01.500Z" {
		t.Errorf("envelope = %+v", env)
	}
	if !strings.Contains(string(env.Data), `"entity_id":`+u.ID+`,`) || !strings.Contains(string(env.Data), `"entity_type":"user"`) ||
		!strings.Contains(string(env.Data), `"primary_email_address":"ada@example.com"`) {
		t.Errorf("data = %s, want numeric entity_id and the user's details", env.Data)
	}

	if _, err := e.s.SendWebhook(t.Context(), sink.URL, "whsec_not base64!", "user.updated", data); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad secret = %v", err)
	}
	if _, err := e.s.UserEventData("42"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserEventData unknown = %v", err)
	}
}
