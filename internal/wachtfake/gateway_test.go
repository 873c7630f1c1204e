package wachtfake

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func checkBody(secret string, extra string) string {
	return `{"principal":{"type":"api_key","value":"` + secret + `"},"resource":"/orders","method":"GET"` + extra + `}`
}

func (e *env) check(t *testing.T, body string) response {
	t.Helper()
	return e.request(t, "POST", "/v1/authz/check", body, "Content-Type", "application/json")
}

func TestAuthzCheckAllowedAndDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	app := ordersApp
	app.RateLimitScheme, app.RateLimits = "", nil // Wacht's default rule
	if err := e.s.AddAPIAuthApp(app); err != nil {
		t.Fatal(err)
	}
	key, secret, err := e.s.AddAPIKey("orders-api", APIKey{
		Name: "ci deploy", Permissions: []string{"orders:write", "orders:read"},
		Metadata: map[string]any{"team": "payments", "tier": 2, "env": "prod"},
	})
	if err != nil {
		t.Fatal(err)
	}
	identity := map[string]any{
		"key_id": key.ID, "deployment_id": e.s.DeploymentID(), "app_slug": "orders-api", "key_name": "ci deploy",
		"owner_user_id": "101", "organization_id": "5100", "workspace_id": nil,
		"organization_membership_id": "5001", "workspace_membership_id": nil,
	}
	baseHeaders := func() map[string]any {
		return map[string]any{
			"x-wacht-key-id": key.ID, "x-wacht-deployment-id": e.s.DeploymentID(), "x-wacht-app-slug": "orders-api",
			"x-wacht-key-name": "ci deploy", "x-wacht-organization-id": "5100", "x-wacht-organization-membership-id": "5001",
			"x-wacht-permissions": "orders:read,orders:write,org:billing:read", "x-wacht-metadata": "env=prod,team=payments",
		}
	}
	perms := []any{"orders:read", "orders:write", "org:billing:read"}
	metadata := map[string]any{"team": "payments", "tier": float64(2), "env": "prod"}

	allowedHeaders := baseHeaders()
	allowedHeaders["x-ratelimit-60s-limit"] = "1000"
	allowedHeaders["x-ratelimit-60s-remaining"] = "999"
	deniedHeaders := baseHeaders()
	deniedHeaders["x-wacht-permission-denied"] = "true"
	tests := []struct {
		name  string
		extra string
		want  map[string]any
	}{{
		name:  "allowed",
		extra: `,"client_ip":"203.0.113.9","user_agent":"curl/8"`,
		want: map[string]any{
			"allowed": true, "reason": nil, "blocked_rule": nil, "identity": identity, "permissions": perms,
			"metadata": metadata, "rate_limits": []any{map[string]any{"rule": "1000/60s", "remaining": float64(999), "limit": float64(1000)}},
			"retry_after": nil, "headers": allowedHeaders,
		},
	}, {
		name:  "permission_denied",
		extra: `,"required_permissions":["orders:read","orders:delete"]`,
		want: map[string]any{
			"allowed": false, "reason": "permission_denied", "blocked_rule": "permission_denied", "identity": identity,
			"permissions": perms, "metadata": metadata, "rate_limits": []any{}, "retry_after": nil, "headers": deniedHeaders,
		},
	}}
	for _, tt := range tests {
		got := e.check(t, checkBody(secret, tt.extra))
		if got.status != 200 {
			t.Fatalf("%s: status %d %s", tt.name, got.status, got.body)
		}
		body := got.object(t)
		if id, _ := body["request_id"].(string); !strings.HasPrefix(id, "req_") || len(id) < 10 {
			t.Errorf("%s: request_id = %q", tt.name, id)
		}
		delete(body, "request_id")
		if diff := cmp.Diff(tt.want, body); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	// Role permissions count, blank requirements are ignored, and the
	// method is case-insensitive.
	got := e.check(t, `{"principal":{"type":"api_key","value":" `+secret+` "},"resource":"orders","method":"post","required_permissions":["org:billing:read"," ",""]}`)
	if body := got.object(t); got.status != 200 || body["allowed"] != true {
		t.Errorf("role permission check = %d %s", got.status, got.body)
	}
}

func TestAuthzCheckRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if err := e.s.AddAPIAuthApp(APIAuthApp{
		Slug: "tight", RateLimitScheme: "tight",
		RateLimits: []RateLimit{
			{Unit: "second", Duration: 1, MaxRequests: 2, Mode: "per_key"},
			{Unit: "minute", Duration: 1, MaxRequests: 100, Priority: 5},
			{Unit: "hour", Duration: 1, MaxRequests: 5, Endpoints: []string{"/other"}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	_, a, err := e.s.AddAPIKey("tight", APIKey{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := e.s.AddAPIKey("tight", APIKey{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		Allowed     bool              `json:"allowed"`
		Reason      *string           `json:"reason"`
		BlockedRule *string           `json:"blocked_rule"`
		RateLimits  []rateLimitState  `json:"rate_limits"`
		RetryAfter  *uint32           `json:"retry_after"`
		Headers     map[string]string `json:"headers"`
	}
	call := func(secret string) state {
		var s state
		if err := json.Unmarshal(e.check(t, checkBody(secret, "")).body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i := range 2 {
		if s := call(a); !s.Allowed || s.RateLimits[0] != (rateLimitState{"2/1s", 1 - i, 2}) {
			t.Fatalf("call %d = %+v", i, s)
		}
	}
	s := call(a)
	wantStates := []rateLimitState{{"2/1s", 0, 2}, {"100/60s", 97, 100}}
	if s.Allowed || s.Reason == nil || *s.Reason != "rate_limited" || s.BlockedRule == nil || *s.BlockedRule != "2/1s" ||
		s.RetryAfter == nil || *s.RetryAfter != 500 || s.Headers["x-ratelimit-1s-reset"] != "500" ||
		!cmp.Equal(s.RateLimits, wantStates) {
		t.Errorf("over the limit = %+v", s)
	}
	if s := call(b); !s.Allowed {
		t.Errorf("per_key limit shared between keys: %+v", s)
	}
	e.clock.Advance(time.Second)
	if s := call(a); !s.Allowed {
		t.Errorf("after the window: %+v", s)
	}
}

func TestAuthzCheckRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	if err := e.s.AddAPIAuthApp(APIAuthApp{Slug: "app"}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddAPIAuthApp(APIAuthApp{Slug: "off", Inactive: true}); err != nil {
		t.Fatal(err)
	}
	revoked, revokedSecret, _ := e.s.AddAPIKey("app", APIKey{Name: "r"})
	if got := e.backend(t, "POST", "/api-auth/apps/app/keys/"+revoked.ID+"/revoke", "{}"); got.status != 200 {
		t.Fatal(got.status)
	}
	_, expired, _ := e.s.AddAPIKey("app", APIKey{Name: "e", ExpiresAt: epoch.Add(-time.Second)})
	_, inactiveApp, _ := e.s.AddAPIKey("off", APIKey{Name: "i"})
	unknown := "sk_" + strings.Repeat("A", 43)
	jsonDenied := func(status int) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			t.Helper()
			body := r.object(t)
			delete(body, "request_id")
			want := map[string]any{"allowed": false, "reason": nil, "blocked_rule": nil, "identity": nil, "permissions": []any{},
				"metadata": nil, "rate_limits": []any{}, "retry_after": nil, "headers": map[string]any{}}
			if r.status != status || !cmp.Equal(want, body) {
				t.Errorf("= %d %s, want %d and an empty denial", r.status, r.body, status)
			}
		}
	}
	text := func(status int, msg string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			t.Helper()
			if r.status != status || !strings.HasPrefix(string(r.body), msg) || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
				t.Errorf("= %d %q (%s), want %d text %q", r.status, r.body, r.header.Get("Content-Type"), status, msg)
			}
		}
	}
	tests := []struct {
		name  string
		body  string
		ct    string
		check func(t *testing.T, r response)
	}{
		{"unknown_key", checkBody(unknown, ""), "application/json", text(401, "Invalid API key")},
		{"revoked_key", checkBody(revokedSecret, ""), "application/json", text(401, "Invalid API key")},
		{"inactive_app", checkBody(inactiveApp, ""), "application/json", text(401, "Invalid API key")},
		{"expired_key", checkBody(expired, ""), "application/json", jsonDenied(401)},
		{"bad_format", checkBody("sk_short", ""), "application/json", jsonDenied(401)},
		{"empty_value", checkBody("  ", ""), "application/json", jsonDenied(401)},
		{"oauth_token", `{"principal":{"type":"oauth_access_token","value":"x"},"resource":"/","method":"GET"}`, "application/json", jsonDenied(401)},
		{"bad_method", `{"principal":{"type":"api_key","value":"x"},"resource":"/","method":"TRACE"}`, "application/json", jsonDenied(400)},
		{"empty_resource", `{"principal":{"type":"api_key","value":"x"},"resource":" ?q=1","method":"GET"}`, "application/json", jsonDenied(400)},
		{"unknown_field", checkBody(unknown, `,"scope":"x"`), "application/json", text(422, "Failed to deserialize")},
		{"wrong_case_field", `{"principal":{"type":"api_key","value":"x"},"Resource":"/","method":"GET"}`, "application/json", text(422, "Failed to deserialize")},
		{"wrong_case_principal_field", `{"principal":{"Type":"api_key","value":"x"},"resource":"/","method":"GET"}`, "application/json", text(422, "Failed to deserialize")},
		{"unknown_principal_field", `{"principal":{"type":"api_key","value":"x","kid":1},"resource":"/","method":"GET"}`, "application/json", text(422, "Failed to deserialize")},
		{"bad_principal_type", `{"principal":{"type":"jwt","value":"x"},"resource":"/","method":"GET"}`, "application/json", text(422, "Failed to deserialize")},
		{"missing_method", `{"principal":{"type":"api_key","value":"x"},"resource":"/"}`, "application/json", text(422, "Failed to deserialize")},
		{"permissions_not_list", checkBody(unknown, `,"required_permissions":"a"`), "application/json", text(422, "Failed to deserialize")},
		{"syntax", `{"principal":`, "application/json", text(400, "Failed to parse")},
		{"no_content_type", checkBody(unknown, ""), "", text(415, "Expected request with `Content-Type: application/json`")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h []string
			if tt.ct != "" {
				h = []string{"Content-Type", tt.ct}
			}
			tt.check(t, e.request(t, "POST", "/v1/authz/check", tt.body, h...))
		})
	}
	if got := e.request(t, "GET", "/v1/authz/check", ""); got.status != 405 {
		t.Errorf("GET /v1/authz/check = %d, want 405", got.status)
	}
}
