package wachtclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// seenRequest is what the test server saw.
type seenRequest struct {
	Method      string
	RequestURI  string
	Auth        string
	UserAgent   string
	Accept      string
	ContentType string
	Body        string
}

// recorder answers with a fixed reply and records the requests.
type recorder struct {
	mu     sync.Mutex
	seen   []seenRequest
	status int
	reply  []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.seen = append(rec.seen, seenRequest{
		Method:      r.Method,
		RequestURI:  r.RequestURI,
		Auth:        r.Header.Get("Authorization"),
		UserAgent:   r.Header.Get("User-Agent"),
		Accept:      r.Header.Get("Accept"),
		ContentType: r.Header.Get("Content-Type"),
		Body:        string(body),
	})
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.status)
	w.Write(rec.reply)
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

func TestRequestShapes(t *testing.T) {
	t.Parallel()
	const bearer = "Bearer " + testAPIKey
	expires := time.Date(2027, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name  string
		reply string // fixture
		call  func(context.Context, *Client) error
		want  seenRequest
	}{
		{
			name: "health", reply: "health.json",
			call: func(ctx context.Context, c *Client) error { return c.Health(ctx) },
			want: seenRequest{Method: "GET", RequestURI: "/api/health"},
		},
		{
			name: "get_user", reply: "user_details.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "73012345678901234"); return err },
			want: seenRequest{Method: "GET", RequestURI: "/api/users/73012345678901234/details", Auth: bearer},
		},
		{
			name: "list_users_defaults", reply: "users_list.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListUsers(ctx, ListUsersParams{}); return err },
			want: seenRequest{Method: "GET", RequestURI: "/api/users", Auth: bearer},
		},
		{
			name: "list_users_all_params", reply: "users_list.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListUsers(ctx, ListUsersParams{Limit: 25, Offset: 50, SortKey: SortKeyEmail, SortOrder: SortOrderAsc, Search: "ada & co"})
				return err
			},
			want: seenRequest{Method: "GET", RequestURI: "/api/users?limit=25&offset=50&search=ada+%26+co&sort_key=email&sort_order=asc", Auth: bearer},
		},
		{
			name: "list_sessions", reply: "sessions_list.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListUserSessions(ctx, "42", false); return err },
			want: seenRequest{Method: "GET", RequestURI: "/api/users/42/sessions", Auth: bearer},
		},
		{
			name: "list_sessions_include_expired", reply: "sessions_list.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.ListUserSessions(ctx, "42", true); return err },
			want: seenRequest{Method: "GET", RequestURI: "/api/users/42/sessions?include_expired=true", Auth: bearer},
		},
		{
			name: "revoke_sign_in", reply: "empty.json",
			call: func(ctx context.Context, c *Client) error { return c.RevokeSignIn(ctx, "42", "7") },
			want: seenRequest{Method: "POST", RequestURI: "/api/users/42/sessions/7/revoke", Auth: bearer},
		},
		{
			name: "revoke_all", reply: "revoke_all.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.RevokeAllSessions(ctx, "42"); return err },
			want: seenRequest{Method: "POST", RequestURI: "/api/users/42/sessions/revoke-all", Auth: bearer},
		},
		{
			name: "list_api_keys", reply: "api_keys_list.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListAPIKeys(ctx, "orders-api", false)
				return err
			},
			want: seenRequest{Method: "GET", RequestURI: "/api/api-auth/apps/orders-api/keys?include_inactive=false", Auth: bearer},
		},
		{
			name: "list_api_keys_inactive", reply: "api_keys_list.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.ListAPIKeys(ctx, "aa_2-orders", true)
				return err
			},
			want: seenRequest{Method: "GET", RequestURI: "/api/api-auth/apps/aa_2-orders/keys?include_inactive=true", Auth: bearer},
		},
		{
			name: "create_api_key_minimal", reply: "api_key_with_secret.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateAPIKey(ctx, "orders-api", CreateAPIKeyRequest{Name: "ci"})
				return err
			},
			want: seenRequest{Method: "POST", RequestURI: "/api/api-auth/apps/orders-api/keys", Auth: bearer, ContentType: "application/json", Body: `{"name":"ci"}`},
		},
		{
			name: "create_api_key_full", reply: "api_key_with_secret.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CreateAPIKey(ctx, "orders-api", CreateAPIKeyRequest{
					Name: "ci", Permissions: []string{"orders:read"}, Metadata: json.RawMessage(` {"team": "payments"} `), ExpiresAt: &expires,
				})
				return err
			},
			want: seenRequest{
				Method: "POST", RequestURI: "/api/api-auth/apps/orders-api/keys", Auth: bearer, ContentType: "application/json",
				Body: `{"name":"ci","permissions":["orders:read"],"metadata":{"team":"payments"},"expires_at":"2027-01-01T00:00:00Z"}`,
			},
		},
		{
			name: "revoke_api_key_with_reason", reply: "empty.json",
			call: func(ctx context.Context, c *Client) error { return c.RevokeAPIKey(ctx, "orders-api", "9", "leaked") },
			want: seenRequest{Method: "POST", RequestURI: "/api/api-auth/apps/orders-api/keys/9/revoke", Auth: bearer, ContentType: "application/json", Body: `{"reason":"leaked"}`},
		},
		{
			name: "revoke_api_key_without_reason_sends_empty_object", reply: "empty.json",
			call: func(ctx context.Context, c *Client) error { return c.RevokeAPIKey(ctx, "orders-api", "9", "") },
			want: seenRequest{Method: "POST", RequestURI: "/api/api-auth/apps/orders-api/keys/9/revoke", Auth: bearer, ContentType: "application/json", Body: `{}`},
		},
		{
			name: "rotate_api_key", reply: "api_key_with_secret.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.RotateAPIKey(ctx, "orders-api", "9")
				return err
			},
			want: seenRequest{Method: "POST", RequestURI: "/api/api-auth/apps/orders-api/keys/9/rotate", Auth: bearer},
		},
		{
			name: "check_authz_minimal", reply: "authz_check_allowed.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.CheckAuthz(ctx, testAuthzRequest())
				return err
			},
			want: seenRequest{
				Method: "POST", RequestURI: "/gw/v1/authz/check", ContentType: "application/json",
				Body: `{"principal":{"type":"api_key","value":"` + fxSecret + `"},"resource":"/v1/orders","method":"GET"}`,
			},
		},
		{
			name: "check_authz_full", reply: "authz_check_denied.json",
			call: func(ctx context.Context, c *Client) error {
				req := testAuthzRequest()
				req.ClientIP, req.UserAgent, req.RequiredPermissions = "203.0.113.7", "orders-cli/1.2", []string{"orders:write"}
				_, err := c.CheckAuthz(ctx, req)
				return err
			},
			want: seenRequest{
				Method: "POST", RequestURI: "/gw/v1/authz/check", ContentType: "application/json",
				Body: `{"principal":{"type":"api_key","value":"` + fxSecret + `"},"resource":"/v1/orders","method":"GET",` +
					`"client_ip":"203.0.113.7","user_agent":"orders-cli/1.2","required_permissions":["orders:write"]}`,
			},
		},
		{
			name: "fetch_jwks", reply: "jwks.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.FetchJWKS(ctx); return err },
			want: seenRequest{Method: "GET", RequestURI: "/fapi/.well-known/jwks.json"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{status: http.StatusOK, reply: fixture(t, tc.reply)}
			c, _ := newTestClient(t, rec, nil)
			if err := tc.call(t.Context(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			want := tc.want
			want.UserAgent = "authsvc/test"
			want.Accept = "application/json"
			if diff := cmp.Diff([]seenRequest{want}, rec.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckAuthzBodyHasNoUnknownFields decodes the body the way the gateway
// does (deny_unknown_fields).
func TestCheckAuthzBodyHasNoUnknownFields(t *testing.T) {
	t.Parallel()
	rec := &recorder{status: http.StatusOK, reply: fixture(t, "authz_check_allowed.json")}
	c, _ := newTestClient(t, rec, nil)
	req := testAuthzRequest()
	req.RequiredPermissions = []string{"a", "b"}
	if _, err := c.CheckAuthz(t.Context(), req); err != nil {
		t.Fatalf("CheckAuthz: %v", err)
	}
	var gatewayView struct {
		Principal struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"principal"`
		Resource            string   `json:"resource"`
		Method              string   `json:"method"`
		ClientIP            *string  `json:"client_ip"`
		UserAgent           *string  `json:"user_agent"`
		RequiredPermissions []string `json:"required_permissions"`
	}
	dec := json.NewDecoder(strings.NewReader(rec.requests()[0].Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&gatewayView); err != nil {
		t.Fatalf("gateway would refuse the body: %v", err)
	}
	if gatewayView.ClientIP != nil || gatewayView.UserAgent != nil {
		t.Errorf("empty optional fields were sent: %+v", rec.requests()[0].Body)
	}
}

func TestUserAgentOverride(t *testing.T) {
	t.Parallel()
	rec := &recorder{status: http.StatusOK, reply: fixture(t, "health.json")}
	c, _ := newTestClient(t, rec, func(cfg *Config) { cfg.UserAgent = "authsvc/1.4.2 (replica-a)" })
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if got := rec.requests()[0].UserAgent; got != "authsvc/1.4.2 (replica-a)" {
		t.Errorf("User-Agent = %q", got)
	}
}
