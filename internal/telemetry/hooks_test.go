package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
	"github.com/authsvc/authsvc/internal/webhook"
)

// flakySource is a loader that knows "1" and "2", fails while down and
// is timed by a settable clock.
type flakySource struct {
	mu   sync.Mutex
	now  time.Time
	down bool
}

func (f *flakySource) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *flakySource) set(advance time.Duration, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(advance)
	f.down = down
}

func (f *flakySource) load(_ context.Context, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return "", errors.New("source unavailable")
	case key == "1" || key == "2":
		return "value " + key, nil
	default:
		return "", fmt.Errorf("key %s: %w", key, cache.ErrNotFound)
	}
}

func TestCacheObserver(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	src := &flakySource{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	c, err := cache.New(cache.Config[string]{
		Kind: "user", Load: src.load, TTL: time.Minute, StaleRetry: time.Second, Now: src.clock, Observer: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	get := func(key, want string) {
		t.Helper()
		res, err := c.Get(ctx, key)
		got := "fresh"
		switch {
		case errors.Is(err, cache.ErrNotFound):
			got = "not_found"
		case err != nil:
			got = "error"
		case res.Stale:
			got = "stale"
		}
		if got != want {
			t.Fatalf("Get(%s) = %+v, %v: %s, want %s", key, res, err, got, want)
		}
	}
	get("1", "fresh")       // load
	get("1", "fresh")       // memory
	get("404", "not_found") // load
	get("404", "not_found") // memory
	src.set(2*time.Minute, true)
	get("1", "stale") // the load fails: memory
	get("1", "stale") // within StaleRetry: memory, no load
	get("2", "error") // never loaded: load
	m.ObservePostgresError("user", "write", errors.New("connection refused"))

	want := map[string]float64{
		`authsvc_cache_reads_total{kind="user",level="load",outcome="fresh"}`:       1,
		`authsvc_cache_reads_total{kind="user",level="memory",outcome="fresh"}`:     1,
		`authsvc_cache_reads_total{kind="user",level="load",outcome="not_found"}`:   1,
		`authsvc_cache_reads_total{kind="user",level="memory",outcome="not_found"}`: 1,
		`authsvc_cache_reads_total{kind="user",level="memory",outcome="stale"}`:     2,
		`authsvc_cache_reads_total{kind="user",level="load",outcome="error"}`:       1,
		`authsvc_cache_load_duration_seconds_count{kind="user",result="ok"}`:        1,
		`authsvc_cache_load_duration_seconds_count{kind="user",result="not_found"}`: 1,
		`authsvc_cache_load_duration_seconds_count{kind="user",result="error"}`:     2,
		`authsvc_cache_postgres_errors_total{kind="user",op="write"}`:               1,
		`authsvc_cache_served_age_seconds_count{kind="user"}`:                       4, // every value served
	}
	if diff := cmp.Diff(want, only(series(t, reg), "authsvc_cache_")); diff != "" {
		t.Errorf("cache series (-want +got):\n%s", diff)
	}
}

func TestRefreshAndWriteThroughSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	m.ObserveRefresh("user", cache.RefreshClaimed)
	m.ObserveRefresh("user", cache.RefreshRefused)
	m.ObserveRefresh("user", cache.RefreshRefused)
	m.ObserveRefreshQueue("sessions", 7)
	m.ObserveServed("user", 90*time.Second)
	m.ObserveWriteThrough("user.updated", "applied")
	want := map[string]float64{
		`authsvc_cache_refreshes_total{kind="user",outcome="claimed"}`:               1,
		`authsvc_cache_refreshes_total{kind="user",outcome="refused"}`:               2,
		`authsvc_cache_refresh_queue_depth{kind="sessions"}`:                         7,
		`authsvc_cache_served_age_seconds_count{kind="user"}`:                        1,
		`authsvc_webhook_write_throughs_total{result="applied",type="user.updated"}`: 1,
	}
	got := only(series(t, reg), "authsvc_cache_")
	for k, v := range only(series(t, reg), "authsvc_webhook_write") {
		got[k] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestWachtObserver(t *testing.T) {
	t.Parallel()
	s := newStack(t, noop.NewTracerProvider())
	ctx := t.Context()
	before := only(series(t, s.reg), "authsvc_wacht_")

	if _, err := s.wacht.GetUser(ctx, s.demo.Users[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wacht.GetUser(ctx, "24380000000999999"); !errors.Is(err, wachtclient.ErrNotFound) {
		t.Fatalf("GetUser(unknown) = %v, want ErrNotFound", err)
	}
	s.fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Status: 503, Route: wachtfake.RouteListSessions, Times: 1})
	if _, err := s.wacht.ListUserSessions(ctx, s.demo.Users[0].ID, false); err != nil {
		t.Fatal(err)
	}
	s.fake.SetFault(wachtfake.Fault{Mode: wachtfake.FaultDown, Route: wachtfake.RouteRevokeSession, Times: 1})
	if err := s.wacht.RevokeSignIn(ctx, s.demo.Users[0].ID, s.demo.SignIns[0].ID); !errors.Is(err, wachtclient.ErrUnavailable) {
		t.Fatalf("RevokeSignIn with the connection dropped = %v, want ErrUnavailable", err)
	}
	// A budget refusal sends nothing and is no request: the budget's own
	// metrics count it.
	tight := newObservedClient(t, s, 1)
	if _, err := tight.GetUser(ctx, s.demo.Users[1].ID); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := tight.GetUser(short, s.demo.Users[1].ID); !errors.Is(err, wachtclient.ErrRateLimited) {
		t.Fatalf("GetUser over budget = %v, want ErrRateLimited", err)
	}

	const details, sessions, revoke = `route="GET /users/{user_id}/details"`,
		`route="GET /users/{user_id}/sessions"`, `route="POST /users/{user_id}/sessions/{signin_id}/revoke"`
	want := map[string]float64{
		`authsvc_wacht_requests_total{` + details + `,status="200"}`:     2,
		`authsvc_wacht_requests_total{` + details + `,status="404"}`:     1,
		`authsvc_wacht_requests_total{` + sessions + `,status="503"}`:    1,
		`authsvc_wacht_requests_total{` + sessions + `,status="200"}`:    1,
		`authsvc_wacht_requests_total{` + revoke + `,status="error"}`:    1,
		`authsvc_wacht_request_duration_seconds_count{` + details + `}`:  3,
		`authsvc_wacht_request_duration_seconds_count{` + sessions + `}`: 2,
		`authsvc_wacht_request_duration_seconds_count{` + revoke + `}`:   1,
		// The service's own budget admitted each of its five requests;
		// the tight client has a limiter of its own.
		`authsvc_wacht_budget_tokens_spent_total{class="foreground"}`: 5,
	}
	got := only(series(t, s.reg), "authsvc_wacht_")
	for k, v := range before { // the key set fetch at start
		got[k] -= v
	}
	for k, v := range got {
		// Leases and waits depend on timing; zeros are series made
		// ahead of their first event.
		if v == 0 || strings.HasPrefix(k, "authsvc_wacht_budget_lease") || strings.HasPrefix(k, "authsvc_wacht_budget_wait") {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wacht series (-want +got):\n%s", diff)
	}
}

// newObservedClient returns a client of the stack's emulator, observed by
// its metrics, with a budget of rpm requests a minute.
func newObservedClient(t *testing.T, s *stack, rpm int) *wachtclient.Client {
	t.Helper()
	c, err := wachtclient.New(wachtclient.Config{
		APIURL: s.fake.Issuer(), APIKey: s.fake.APIKey(), RequestsPerMinute: rpm, Burst: 1,
		Observer: s.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSessionTokenHooks(t *testing.T) {
	t.Parallel()
	s := newStack(t, noop.NewTracerProvider()) // refreshed the key set once
	token, err := s.fake.MintToken(s.demo.TokenClaims)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.verify.Verify(t.Context(), token); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	lastSuccess := `authsvc_jwks_last_success_timestamp_seconds{}`
	loaded := series(t, s.reg)[lastSuccess]
	if loaded <= 0 {
		t.Errorf("%s = %v after the key set was loaded, want a time", lastSuccess, loaded)
	}
	for range 2 {
		s.fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Route: wachtfake.RouteJWKS})
		if err := s.verify.Refresh(t.Context()); err == nil {
			t.Fatal("Refresh with the key set failing succeeded")
		}
	}
	want := map[string]float64{
		`authsvc_jwks_refreshes_total{result="ok"}`:        1,
		`authsvc_jwks_refreshes_total{result="error"}`:     2,
		`authsvc_jwks_consecutive_failures{}`:              2,
		lastSuccess:                                        loaded,
		`authsvc_token_cache_lookups_total{result="miss"}`: 1,
		`authsvc_token_cache_lookups_total{result="hit"}`:  2,
	}
	got := only(series(t, s.reg), "authsvc_jwks_")
	for k, v := range only(series(t, s.reg), "authsvc_token_") {
		got[k] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("session token series (-want +got):\n%s", diff)
	}

	s.fake.ClearFaults()
	if err := s.verify.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh after the fault cleared: %v", err)
	}
	got = series(t, s.reg)
	if n := got[`authsvc_jwks_consecutive_failures{}`]; n != 0 {
		t.Errorf("consecutive failures after a success = %v, want 0", n)
	}
	if got[lastSuccess] < loaded {
		t.Errorf("%s went back from %v to %v", lastSuccess, loaded, got[lastSuccess])
	}
}

func TestWebhookAndRotationHooks(t *testing.T) {
	t.Parallel()
	s := newStack(t, noop.NewTracerProvider())
	ctx := t.Context()
	data, err := s.fake.UserEventData(s.demo.Users[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, eventType := range []string{"user.updated", "organization.created"} {
		status, err := s.fake.SendWebhook(ctx, s.url+"/webhooks/wacht", s.webhookSecret, eventType, data)
		if err != nil || status != http.StatusOK {
			t.Fatalf("SendWebhook(%s) = %d, %v", eventType, status, err)
		}
	}
	status, err := s.fake.SendWebhook(ctx, s.url+"/webhooks/wacht", "whsec_"+"d3Jvbmcgc2VjcmV0IGZvciB0aGUgdGVzdA==", "user.deleted", data)
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("SendWebhook(wrong secret) = %d, %v; want 401", status, err)
	}
	for _, outcome := range []string{"revoked", "retry", "retry"} {
		s.metrics.ObserveRevocation(outcome)
	}

	want := map[string]float64{
		`authsvc_webhook_events_total{outcome="handled",type="user.updated"}`:                         1,
		`authsvc_webhook_events_total{outcome="ignored",type="` + webhook.EventTypeOther + `"}`:       1,
		`authsvc_webhook_events_total{outcome="bad_signature",type="` + webhook.EventTypeOther + `"}`: 1,
		`authsvc_webhook_write_throughs_total{result="applied",type="user.updated"}`:                  1,
		`authsvc_rotation_revocations_total{outcome="revoked"}`:                                       1,
		`authsvc_rotation_revocations_total{outcome="retry"}`:                                         2,
	}
	got := only(series(t, s.reg), "authsvc_webhook_")
	for k, v := range only(series(t, s.reg), "authsvc_rotation_") {
		got[k] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook and rotation series (-want +got):\n%s", diff)
	}
}

func TestReadinessSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	want := map[string]float64{
		`authsvc_ready{}`: 0,
		`authsvc_readiness_changes_total{to="not_serving"}`: 0,
		`authsvc_readiness_changes_total{to="serving"}`:     0,
	}
	got := only(series(t, reg), "authsvc_read")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("before the first probe (-want +got):\n%s", diff)
	}
	for _, serving := range []bool{true, false, true} {
		m.ObserveReadiness(serving)
	}
	want = map[string]float64{
		`authsvc_ready{}`: 1,
		`authsvc_readiness_changes_total{to="not_serving"}`: 1,
		`authsvc_readiness_changes_total{to="serving"}`:     2,
	}
	got = only(series(t, reg), "authsvc_read")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after serving, not serving, serving (-want +got):\n%s", diff)
	}
}
