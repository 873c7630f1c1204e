package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/webhook"
)

func TestNewHandler(t *testing.T) {
	t.Parallel()
	inv, dedupe := &recorder{}, webhook.NewMemoryDeduper(0, 0)
	tests := []struct {
		name    string
		cfg     webhook.Config
		wantErr error // nil: any error
		ok      bool
	}{
		{name: "valid", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe}, ok: true},
		{name: "no_secret_refuses_later", cfg: webhook.Config{}, ok: true},
		{name: "secret_without_whsec_prefix", cfg: webhook.Config{Secret: strings.TrimPrefix(testSecret, "whsec_"), Applier: inv, Deduper: dedupe}, wantErr: webhook.ErrInvalidSecret},
		{name: "secret_not_base64", cfg: webhook.Config{Secret: "whsec_not*base64", Applier: inv, Deduper: dedupe}, wantErr: webhook.ErrInvalidSecret},
		{name: "no_invalidator", cfg: webhook.Config{Secret: testSecret, Deduper: dedupe}},
		{name: "no_deduper", cfg: webhook.Config{Secret: testSecret, Applier: inv}},
		{name: "negative_tolerance", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe, Tolerance: -time.Second}},
		{name: "negative_body_limit", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe, MaxBodyBytes: -1}},
		{name: "negative_max_age", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe, MaxAge: -time.Second}},
		{name: "max_age_beyond_retention", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe, MaxAge: webhook.DefaultRetention + time.Second}},
		{name: "negative_concurrency", cfg: webhook.Config{Secret: testSecret, Applier: inv, Deduper: dedupe, MaxConcurrent: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := webhook.NewHandler(tt.cfg)
			if tt.ok {
				if err != nil || h == nil {
					t.Fatalf("NewHandler() = %v, %v; want a handler", h, err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewHandler() succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("NewHandler() error = %v, want %v", err, tt.wantErr)
			}
			if secret := strings.TrimPrefix(tt.cfg.Secret, "whsec_"); secret != "" && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}

func TestHandlerDuplicates(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	inv, obs := &recorder{}, &observations{}
	var mu sync.Mutex
	now := testNow
	h, err := webhook.NewHandler(webhook.Config{
		Secret: testSecret, Applier: inv, Deduper: webhook.NewPostgresDeduper(pool, 0), Observer: obs,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	body := envelope("user.updated", `{"entity_id":42,"entity_type":"user","id":"42"}`)

	steps := []struct {
		after       time.Duration // since testNow, when the delivery arrives
		d           delivery
		wantOutcome string
		wantCalls   int
	}{
		{0, signed("msg_1", body), webhook.OutcomeHandled, 1},
		{0, signed("msg_1", body), webhook.OutcomeDuplicate, 1},
		// A retry keeps the timestamp Wacht signed when it queued the delivery.
		{90 * time.Second, signed("msg_1", body), webhook.OutcomeDuplicate, 1},
		// Wacht's replays are new deliveries with new ids: acted on again.
		{2 * time.Minute, signed("msg_2", body), webhook.OutcomeHandled, 2},
	}
	for i, s := range steps {
		mu.Lock()
		now = testNow.Add(s.after)
		mu.Unlock()
		w := serve(h, s.d)
		if w.Code != http.StatusOK {
			t.Fatalf("step %d: status %d, want 200", i, w.Code)
		}
		if got := obs.last().Outcome; got != s.wantOutcome {
			t.Errorf("step %d: outcome %q, want %q", i, got, s.wantOutcome)
		}
		if got := len(inv.Calls()); got != s.wantCalls {
			t.Errorf("step %d: %d applied events, want %d", i, got, s.wantCalls)
		}
	}
	var ids []string
	rows, err := pool.Query(t.Context(), `select id from webhook_deliveries order by id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"msg_1", "msg_2"}, ids); diff != "" {
		t.Errorf("recorded deliveries (-want +got):\n%s", diff)
	}
}

// TestHandlerRetryAfterFailure checks that a delivery that could not be
// applied is answered 500, is not recorded, and goes through when Wacht
// retries it.
func TestHandlerRetryAfterFailure(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	dedupe := webhook.NewPostgresDeduper(pool, 0)
	inv, obs := &recorder{failures: 1}, &observations{}
	h := newHandler(t, inv, dedupe, obs)
	d := signed("msg_retry", envelope("session.created",
		`{"entity_id":3001,"entity_type":"session","signins":[{"id":"1","user_id":"11"},{"id":"2","user_id":"12"}]}`))

	if w := serve(h, d); w.Code != http.StatusInternalServerError {
		t.Fatalf("first delivery: status %d, want 500", w.Code)
	}
	if got := obs.last(); got != (observation{"session.created", webhook.OutcomeInvalidateFailed}) {
		t.Errorf("first delivery: observation %v", got)
	}
	if seen, err := dedupe.Seen(t.Context(), "msg_retry"); err != nil || seen {
		t.Fatalf("after a failure Seen() = %v, %v; want false", seen, err)
	}
	if w := serve(h, d); w.Code != http.StatusOK {
		t.Fatalf("retry: status %d, want 200", w.Code)
	}
	if w := serve(h, d); w.Code != http.StatusOK || obs.last().Outcome != webhook.OutcomeDuplicate {
		t.Fatalf("second retry: status %d outcome %q, want 200 duplicate", w.Code, obs.last().Outcome)
	}
	// The failed delivery and its retry each hand the whole event over.
	want := []call{{"SessionChanged", "11"}, {"SessionChanged", "12"}, {"SessionChanged", "11"}, {"SessionChanged", "12"}}
	if diff := cmp.Diff(want, inv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// failingDeduper fails Seen or Record.
type failingDeduper struct {
	webhook.Deduper
	failSeen, failRecord bool
}

func (f failingDeduper) Seen(ctx context.Context, id string) (bool, error) {
	if f.failSeen {
		return false, errInjected
	}
	return f.Deduper.Seen(ctx, id)
}

func (f failingDeduper) Record(ctx context.Context, id string, received time.Time) error {
	if f.failRecord {
		return errInjected
	}
	return f.Deduper.Record(ctx, id, received)
}

func TestHandlerDeduperFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		dedupe      failingDeduper
		wantStatus  int
		wantOutcome string
		wantCalls   []call
	}{
		{
			name:       "seen_fails",
			dedupe:     failingDeduper{Deduper: webhook.NewMemoryDeduper(0, 0), failSeen: true},
			wantStatus: http.StatusInternalServerError, wantOutcome: webhook.OutcomeDedupeFailed,
		},
		{
			name:       "record_fails_after_invalidation",
			dedupe:     failingDeduper{Deduper: webhook.NewMemoryDeduper(0, 0), failRecord: true},
			wantStatus: http.StatusOK, wantOutcome: webhook.OutcomeHandled,
			wantCalls: []call{{"UserChanged", "42"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv, obs := &recorder{}, &observations{}
			h := newHandler(t, inv, tt.dedupe, obs)
			w := serve(h, signed("msg_1", envelope("user.updated", `{"entity_id":42,"entity_type":"user"}`)))
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := obs.last().Outcome; got != tt.wantOutcome {
				t.Errorf("outcome = %q, want %q", got, tt.wantOutcome)
			}
			if diff := cmp.Diff(tt.wantCalls, inv.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandlerNotConfigured(t *testing.T) {
	t.Parallel()
	obs := &observations{}
	h, err := webhook.NewHandler(webhook.Config{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(h, signed("msg_1", envelope("user.updated", `{"entity_id":42}`)))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", w.Code)
	}
	if diff := cmp.Diff(observation{webhook.EventTypeOther, webhook.OutcomeNotConfigured}, obs.last()); diff != "" {
		t.Errorf("observation (-want +got):\n%s", diff)
	}
}

// TestHandlerLateRetries checks that Wacht's retries after an outage
// longer than minutes are accepted, once, up to the de-duplication
// retention, and that the future stays tightly bounded.
func TestHandlerLateRetries(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	inv, obs := &recorder{}, &observations{}
	var mu sync.Mutex
	now := testNow
	dedupe := webhook.NewPostgresDeduper(pool, 48*time.Hour)
	h, err := webhook.NewHandler(webhook.Config{
		Secret: testSecret, Applier: inv, Deduper: dedupe, Observer: obs,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	body := envelope("user.updated", `{"entity_id":42}`)
	future := signed("msg_future", body)
	future.timestamp = unix(testNow.Add(6 * time.Minute))
	future.signature = signature(testKey, future.id, future.timestamp, body)
	steps := []struct {
		after       time.Duration // since testNow, when the delivery arrives
		d           delivery
		wantStatus  int
		wantOutcome string
		wantCalls   int
	}{
		// Wacht queued (and signed) msg_1 at testNow; authsvc was down.
		{6 * time.Hour, signed("msg_1", body), http.StatusOK, webhook.OutcomeHandled, 1},
		// A second retry of it, a day later: answered from the table.
		{30 * time.Hour, signed("msg_1", body), http.StatusOK, webhook.OutcomeDuplicate, 1},
		// Past the retention it could no longer be recognised: refused.
		{48*time.Hour + time.Second, signed("msg_1", body), http.StatusBadRequest, webhook.OutcomeStaleTimestamp, 1},
		{0, future, http.StatusBadRequest, webhook.OutcomeStaleTimestamp, 1},
	}
	for i, s := range steps {
		mu.Lock()
		now = testNow.Add(s.after)
		mu.Unlock()
		w := serve(h, s.d)
		if w.Code != s.wantStatus {
			t.Fatalf("step %d: status %d, want %d", i, w.Code, s.wantStatus)
		}
		if got := obs.last().Outcome; got != s.wantOutcome {
			t.Errorf("step %d: outcome %q, want %q", i, got, s.wantOutcome)
		}
		if got := len(inv.Calls()); got != s.wantCalls {
			t.Errorf("step %d: %d applied events, want %d", i, got, s.wantCalls)
		}
	}
}

// blockingApplier holds every user event until release is closed.
type blockingApplier struct {
	recorder
	entered chan struct{}
	release chan struct{}
}

func (b *blockingApplier) UserChanged(ctx context.Context, ev webhook.UserEvent) error {
	b.entered <- struct{}{}
	<-b.release
	return b.recorder.UserChanged(ctx, ev)
}

// TestHandlerConcurrencyCap checks that deliveries past the cap are
// answered 503 at once, before their body is read, and that the slots
// come back.
func TestHandlerConcurrencyCap(t *testing.T) {
	t.Parallel()
	const capacity = 4
	inv := &blockingApplier{entered: make(chan struct{}, capacity), release: make(chan struct{})}
	obs := &observations{}
	h, err := webhook.NewHandler(webhook.Config{
		Secret: testSecret, Applier: inv, Deduper: webhook.NewMemoryDeduper(0, 0), Observer: obs,
		MaxConcurrent: capacity, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make(chan int, capacity)
	for i := range capacity {
		d := signed(fmt.Sprintf("msg_%d", i), envelope("user.updated", fmt.Sprintf(`{"entity_id":%d}`, i)))
		wg.Go(func() { codes <- serve(h, d).Code })
	}
	for range capacity {
		<-inv.entered
	}
	w := serve(h, signed("msg_over", envelope("user.updated", `{"entity_id":99}`)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("delivery over the cap: status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if got := obs.last().Outcome; got != webhook.OutcomeBusy {
		t.Errorf("outcome %q, want %q", got, webhook.OutcomeBusy)
	}
	close(inv.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("delivery within the cap: status %d, want 200", code)
		}
	}
	if w := serve(h, signed("msg_after", envelope("user.updated", `{"entity_id":98}`))); w.Code != http.StatusOK {
		t.Errorf("delivery after the others ended: status %d, want 200", w.Code)
	}
}

func TestHandlerTolerance(t *testing.T) {
	t.Parallel()
	inv := &recorder{}
	h, err := webhook.NewHandler(webhook.Config{
		Secret: testSecret, Applier: inv, Deduper: webhook.NewMemoryDeduper(0, 0),
		Tolerance: time.Hour,
		Now:       func() time.Time { return testNow.Add(30 * time.Minute) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// A retry 30 minutes after Wacht queued (and signed) the delivery.
	if w := serve(h, signed("msg_1", envelope("user.updated", `{"entity_id":42}`))); w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", w.Code)
	}
	if diff := cmp.Diff([]call{{"UserChanged", "42"}}, inv.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// TestHandlerLogs checks that the logs name the delivery and its outcome
// and never hold the secret, the signature or the body.
func TestHandlerLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := webhook.NewHandler(webhook.Config{
		Secret: testSecret, Applier: &recorder{}, Deduper: webhook.NewMemoryDeduper(0, 0),
		Now: func() time.Time { return testNow }, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := envelope("user.updated", `{"entity_id":42,"first_name":"BODY-MARKER","social_connections":[{"access_token":"TOKEN-MARKER"}]}`)
	good := signed("msg_log", body)
	bad := signed("msg_forged", body)
	bad.signature = signature([]byte("another key of thirty-two bytes!"), "msg_forged", bad.timestamp, body)
	serve(h, good)
	serve(h, bad)
	serve(h, signed("msg_other", envelope("organization.created", `{"name":"BODY-MARKER"}`)))

	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	for _, want := range []string{`"webhook_id":"msg_log"`, `"outcome":"handled"`, `"type":"user.updated"`,
		`"webhook_id":"msg_forged"`, `"outcome":"bad_signature"`, `"type":"organization.created"`, `"outcome":"ignored"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{testSecret, strings.TrimPrefix(testSecret, "whsec_"), string(testKey),
		strings.TrimPrefix(good.signature, "v1,"), strings.TrimPrefix(bad.signature, "v1,"), "BODY-MARKER", "TOKEN-MARKER"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

// lockedWriter serialises writes to a buffer.
type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestHandlerConcurrent sends deliveries and their redeliveries at once.
func TestHandlerConcurrent(t *testing.T) {
	t.Parallel()
	inv := &recorder{}
	h := newHandler(t, inv, webhook.NewMemoryDeduper(0, 0), nil)
	const users = 40
	var wg sync.WaitGroup
	statuses := make(chan int, users*2)
	for i := range users {
		d := signed(fmt.Sprintf("msg_%d", i), envelope("user.updated", fmt.Sprintf(`{"entity_id":%d}`, i)))
		for range 2 {
			wg.Go(func() { statuses <- serve(h, d).Code })
		}
	}
	wg.Wait()
	close(statuses)
	for code := range statuses {
		if code != http.StatusOK {
			t.Errorf("status %d, want 200", code)
		}
	}
	invalidated := map[string]bool{}
	for _, c := range inv.Calls() {
		invalidated[c.UserID] = true
	}
	if len(invalidated) != users {
		t.Errorf("%d users invalidated, want %d", len(invalidated), users)
	}
	if n := len(inv.Calls()); n > 2*users {
		t.Errorf("%d invalidations for %d deliveries", n, 2*users)
	}
}
