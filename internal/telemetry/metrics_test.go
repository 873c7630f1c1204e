package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// Label values that could be an id or a secret: a run of six digits or
// more (Wacht's ids have 17), a JWT, or a long unbroken run of token
// characters.
var (
	idLike    = regexp.MustCompile(`[0-9]{6,}`)
	tokenLike = regexp.MustCompile(`eyJ|[A-Za-z0-9_+=-]{32,}`)
)

// suspicious reports why a label value could carry an id or a secret, or "".
func suspicious(value string, secrets []string) string {
	for _, s := range secrets {
		if s != "" && strings.Contains(value, s) {
			return "holds a known id or secret"
		}
	}
	switch {
	case idLike.MatchString(value):
		return "looks like an id"
	case tokenLike.MatchString(value):
		return "looks like a token"
	}
	return ""
}

func TestSuspicious(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]bool{
		"/authsvc.v1.AuthService/VerifySession":                     false,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": false,
		"GET /users/{user_id}/details":                              false,
		"POST /api-auth/apps/{app_slug}/keys/{key_id}/rotate":       false,
		"user.email.verified":                                       false,
		"503":                                                       false,
		"v1.2.3-test":                                               false,
		"GET /users/24380000000000007/details":                      true,
		"eyJhbGciOiJFUzI1NiJ9":                                      true,
		"sk_T3stKeyNeverLeaks0123456789abcdefghijklmnopq":           true,
		"orders-api":                                                true, // a known slug, below
	} {
		if got := suspicious(value, []string{"orders-api"}) != ""; got != want {
			t.Errorf("suspicious(%q) = %t, want %t", value, got, want)
		}
	}
}

// TestMetricsEndpointAndLabels drives every metric through the wired
// stack, then reads /metrics and checks every label value of every
// series.
func TestMetricsEndpointAndLabels(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	ctx := t.Context()
	ada, demo := s.demo.Users[0].ID, s.demo
	token, err := s.fake.MintToken(demo.TokenClaims)
	if err != nil {
		t.Fatal(err)
	}
	const unknownUser = "24380000000999999"
	expect := func(what string, err error, want connect.Code) {
		t.Helper()
		if err != nil && connect.CodeOf(err) != want || err == nil && want != 0 {
			t.Fatalf("%s = %v, want code %v", what, err, want)
		}
	}

	for range 2 {
		_, err = s.client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{
			Token: token, IncludeUser: true, CheckRevocation: true,
		}))
		expect("VerifySession", err, 0)
	}
	_, err = s.client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token + "x"}))
	expect("VerifySession(tampered)", err, connect.CodeUnauthenticated)
	_, err = s.client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: unknownUser}))
	expect("GetUser(unknown)", err, connect.CodeNotFound)
	_, err = s.client.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: []string{ada, unknownUser, demo.Users[1].ID}}))
	expect("BatchGetUsers", err, 0)
	_, err = s.client.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: ada, IncludeExpired: true}))
	expect("ListSessions", err, 0)
	_, err = s.client.RevokeSession(ctx, connect.NewRequest(&authsvcv1.RevokeSessionRequest{
		UserId: ada, Target: &authsvcv1.RevokeSessionRequest_SignInId{SignInId: demo.SignIns[0].ID},
	}))
	expect("RevokeSession", err, 0)
	for _, key := range []string{demo.Keys[0].Secret, "ak_live_0000000000000000000000000000000000000000000"} {
		_, err = s.client.VerifyAPIKey(ctx, connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{
			Key: key, Method: http.MethodGet, Resource: "/orders/1234567",
		}))
		expect("VerifyAPIKey", err, 0)
	}
	s.fake.SetFault(wachtfake.Fault{Mode: wachtfake.FaultDown, Route: wachtfake.RouteListSessions})
	_, err = s.client.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: demo.Users[2].ID}))
	expect("ListSessions(Wacht down)", err, connect.CodeUnavailable)
	s.fake.ClearFaults()

	data, err := s.fake.UserEventData(ada)
	if err != nil {
		t.Fatal(err)
	}
	for _, eventType := range []string{"user.updated", "session.created", "user.mystery.24380000000000001"} {
		if _, err := s.fake.SendWebhook(ctx, s.url+"/webhooks/wacht", s.webhookSecret, eventType, data); err != nil {
			t.Fatal(err)
		}
	}
	tight := newObservedClient(t, s, 1)
	_, _ = tight.GetUser(ctx, ada)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, _ = tight.GetUser(short, ada)
	s.metrics.ObservePostgresError("user", "read", errors.New("password authentication failed for user authsvc"))
	s.metrics.ObserveRevocation("revoked")

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, name := range []string{
		"authsvc_build_info", "authsvc_rpc_requests_total", "authsvc_rpc_duration_seconds",
		"authsvc_cache_reads_total", "authsvc_cache_load_duration_seconds", "authsvc_cache_postgres_errors_total",
		"authsvc_wacht_requests_total", "authsvc_wacht_request_duration_seconds", "authsvc_wacht_budget_tokens_spent_total",
		"authsvc_jwks_refreshes_total", "authsvc_token_cache_lookups_total", "authsvc_webhook_events_total",
		"authsvc_rotation_revocations_total", "go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(string(body), "\n# TYPE "+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if !strings.Contains(string(body), "\nauthsvc_build_info{version=\"v1.2.3-test\"} 1\n") {
		t.Error("/metrics has no authsvc_build_info{version=\"v1.2.3-test\"} 1")
	}

	secrets := []string{s.fake.APIKey(), s.webhookSecret, token, demo.AppSlug, demo.OrganizationID, demo.WorkspaceID}
	for _, u := range demo.Users {
		secrets = append(secrets, u.ID, u.Username)
	}
	for _, si := range demo.SignIns {
		secrets = append(secrets, si.ID, si.SessionID)
	}
	for _, k := range demo.Keys {
		secrets = append(secrets, k.Secret, k.Key.ID)
	}
	values := labelValues(t, s.reg)
	names := map[string]int{}
	for _, v := range values {
		name, value, _ := strings.Cut(v, "=")
		names[name]++
		if why := suspicious(value, secrets); why != "" {
			t.Errorf("label %s %s", v, why)
		}
	}
	for _, name := range []string{"procedure", "code", "kind", "level", "outcome", "op", "result", "route", "status", "type", "version"} {
		if names[name] == 0 {
			t.Errorf("no series has a %s label: the stack was not exercised", name)
		}
	}
}

func TestNewMetricsWithoutAGatherer(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	// A Registerer that is not a Gatherer: the metrics go to reg, and
	// Handler serves them from a registry of their own.
	m := telemetry.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"replica": "a"}, reg))
	m.ObserveRevocation("failed")
	want := `# HELP authsvc_rotation_revocations_total Attempts of the rotation worker to revoke a replaced API key, by outcome.
# TYPE authsvc_rotation_revocations_total counter
authsvc_rotation_revocations_total{outcome="failed",replica="a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authsvc_rotation_revocations_total"); err != nil {
		t.Error(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if got := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(got, `authsvc_rotation_revocations_total{outcome="failed"} 1`) {
		t.Errorf("Handler = %d:\n%s\nwant the revocation", rec.Code, got)
	}
}
