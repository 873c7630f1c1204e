package wachtfake

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ordersApp is an app whose keys carry an owner, an organisation context
// and a scheme.
var ordersApp = APIAuthApp{
	Slug: "orders-api", Name: "Orders API", KeyPrefix: "ak",
	UserID: "101", OrganizationID: "5100", OrganizationMembershipID: "5001",
	OrgRolePermissions: []string{"org:billing:read"},
	RateLimitScheme:    "standard",
	RateLimits:         []RateLimit{{Unit: "minute", Duration: 1, MaxRequests: 1000}},
}

func newKeysEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, Options{})
	if err := e.s.AddAPIAuthApp(ordersApp); err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddAPIAuthApp(APIAuthApp{Slug: "other"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	e := newKeysEnv(t)
	got := e.backend(t, "POST", "/api-auth/apps/orders-api/keys",
		`{"name":"ci deploy","permissions":["orders:read","orders:write"],"metadata":{"team":"payments"},"expires_at":"2027-01-01T00:00:00Z","extra":1}`)
	if got.status != 200 {
		t.Fatalf("create = %d %s", got.status, got.body)
	}
	body := got.object(t)
	secret, _ := body["secret"].(string)
	if !strings.HasPrefix(secret, "ak_") || len(secret) != 46 || !validKeyFormat(secret) {
		t.Errorf("secret %q is not ak_ + 43 URL-safe characters", secret)
	}
	if body["key_suffix"] != secret[len(secret)-8:] {
		t.Errorf("key_suffix = %v, want last 8 of the secret", body["key_suffix"])
	}
	wantKeys := []string{
		"app_slug", "created_at", "deployment_id", "expires_at", "id", "is_active", "key_prefix", "key_suffix",
		"last_used_at", "metadata", "name", "org_role_permissions", "organization_id", "organization_membership_id",
		"owner_user_id", "permissions", "rate_limit_scheme_slug", "rate_limits", "revoked_at", "revoked_reason",
		"secret", "updated_at", "workspace_role_permissions",
	}
	if diff := cmp.Diff(wantKeys, sortedKeys(body)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	delete(body, "id")
	delete(body, "secret")
	delete(body, "key_suffix")
	want := map[string]any{
		"deployment_id": e.s.DeploymentID(), "app_slug": "orders-api", "name": "ci deploy", "key_prefix": "ak",
		"permissions": []any{"orders:read", "orders:write"}, "metadata": map[string]any{"team": "payments"},
		"rate_limits": []any{}, "rate_limit_scheme_slug": "standard", "owner_user_id": "101",
		"organization_id": "5100", "organization_membership_id": "5001",
		"org_role_permissions": []any{"org:billing:read"}, "workspace_role_permissions": []any{},
		"expires_at": "2027-01-01T00:00:00Z", "last_used_at": nil, "is_active": true,
		"created_at": "2026-03-04T10:00:00Z", "updated_at": "2026-03-04T10:00:00Z",
		"revoked_at": nil, "revoked_reason": nil,
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}

	minimal := e.backend(t, "POST", "/api-auth/apps/other/keys", `{"name":"bare","permissions":null}`).object(t)
	for _, k := range []string{"rate_limit_scheme_slug", "owner_user_id", "organization_id", "workspace_id", "organization_membership_id", "workspace_membership_id"} {
		if _, ok := minimal[k]; ok {
			t.Errorf("%s present on a key without it; Wacht leaves it out", k)
		}
	}
	if minimal["key_prefix"] != "sk" || !cmp.Equal(minimal["permissions"], []any{}) || !cmp.Equal(minimal["metadata"], map[string]any{}) || minimal["expires_at"] != nil {
		t.Errorf("minimal key = %v", minimal)
	}
}

func TestCreateAPIKeyErrors(t *testing.T) {
	t.Parallel()
	e := newKeysEnv(t)
	auth := []string{"Authorization", "Bearer " + e.s.APIKey()}
	tests := []struct {
		name       string
		path       string
		body       string
		ct         string
		wantStatus int
		wantMsg    string
	}{
		{"no_content_type", "/api-auth/apps/orders-api/keys", `{"name":"x"}`, "", 415, "Request failed"},
		{"text_content_type", "/api-auth/apps/orders-api/keys", `{"name":"x"}`, "text/plain", 415, "Request failed"},
		{"empty_body", "/api-auth/apps/orders-api/keys", "", "application/json", 400, "Bad request"},
		{"syntax", "/api-auth/apps/orders-api/keys", `{"name":`, "application/json", 400, "Bad request"},
		{"trailing_data", "/api-auth/apps/orders-api/keys", `{"name":"x"} {}`, "application/json", 400, "Bad request"},
		{"missing_name", "/api-auth/apps/orders-api/keys", `{}`, "application/json", 422, "Invalid request payload"},
		{"null_name", "/api-auth/apps/orders-api/keys", `{"name":null}`, "application/json", 422, "Invalid request payload"},
		{"name_type", "/api-auth/apps/orders-api/keys", `{"name":5}`, "application/json", 422, "Invalid request payload"},
		{"metadata_array", "/api-auth/apps/orders-api/keys", `{"name":"x","metadata":[1]}`, "application/json", 422, "Invalid request payload"},
		{"bad_expiry", "/api-auth/apps/orders-api/keys", `{"name":"x","expires_at":"tomorrow"}`, "application/json", 422, "Invalid request payload"},
		{"json_suffix_type_ok_unknown_app", "/api-auth/apps/nope/keys", `{"name":"x"}`, "application/vnd.api+json", 404, "API key app not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := slices.Clone(auth)
			if tt.ct != "" {
				h = append(h, "Content-Type", tt.ct)
			}
			got := e.request(t, "POST", tt.path, tt.body, h...)
			if got.status != tt.wantStatus || string(got.body) != errorJSON(tt.wantStatus, tt.wantMsg) {
				t.Errorf("= %d %s, want %d %q", got.status, got.body, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

// keyIDs lists the ids of a {"keys":[...]} response.
func keyIDs(t *testing.T, r response) []string {
	t.Helper()
	body := r.object(t)
	if len(body) != 1 {
		t.Errorf("list body %s has keys besides \"keys\"", r.body)
	}
	var ids []string
	for _, k := range body["keys"].([]any) {
		ids = append(ids, k.(map[string]any)["id"].(string))
	}
	return ids
}

func TestListRevokeRotateAPIKeys(t *testing.T) {
	t.Parallel()
	e := newKeysEnv(t)
	older, olderSecret, err := e.s.AddAPIKey("orders-api", APIKey{Name: "older", Permissions: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	newer, newerSecret, err := e.s.AddAPIKey("orders-api", APIKey{
		Name: "newer", Permissions: []string{"orders:write"}, Metadata: map[string]any{"team": "a"},
		ExpiresAt: epoch.Add(365 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := e.s.AddAPIKey("other", APIKey{Name: "o"})
	if err != nil {
		t.Fatal(err)
	}
	list := func(q string) response { return e.backend(t, "GET", "/api-auth/apps/orders-api/keys"+q, "") }
	keysPath := func(id, action string) string { return "/api-auth/apps/orders-api/keys/" + id + "/" + action }

	if diff := cmp.Diff([]string{newer.ID, older.ID}, keyIDs(t, list(""))); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	for _, secret := range []string{olderSecret, newerSecret} {
		if strings.Contains(string(list("").body), secret[3:]) {
			t.Error("list response contains a secret")
		}
	}
	if strings.Contains(string(list("").body), "key_hash") {
		t.Error("list response contains key_hash")
	}

	e.clock.Advance(time.Second)
	steps := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"revoke_without_body", "POST", keysPath(older.ID, "revoke"), "", 415, errorJSON(415, "Request failed")},
		{"revoke_bad_reason", "POST", keysPath(older.ID, "revoke"), `{"reason":7}`, 422, errorJSON(422, "Invalid request payload")},
		{"revoke_non_numeric", "POST", keysPath("abc", "revoke"), `{}`, 400, errorJSON(400, "Bad request")},
		{"revoke_unknown_app", "POST", "/api-auth/apps/nope/keys/" + older.ID + "/revoke", `{}`, 404, errorJSON(404, "API key app not found")},
		{"revoke_other_apps_key", "POST", keysPath(otherKey.ID, "revoke"), `{}`, 404, errorJSON(404, "API key not found")},
		{"revoke_unknown_key", "POST", keysPath("42", "revoke"), `{}`, 404, errorJSON(404, "API key not found")},
		{"revoke", "POST", keysPath(older.ID, "revoke"), `{"reason":"leaked"}`, 200, `{}`},
		{"revoke_again", "POST", keysPath(older.ID, "revoke"), `{}`, 404, errorJSON(404, "API key not found or already revoked")},
		{"rotate_revoked", "POST", keysPath(older.ID, "rotate"), "", 404, errorJSON(404, "API key not found or inactive")},
		{"rotate_unknown", "POST", keysPath("42", "rotate"), "", 404, errorJSON(404, "API key not found")},
		{"rotate_non_numeric", "POST", keysPath("x", "rotate"), "", 400, errorJSON(400, "Bad request")},
		{"list_unknown_app", "GET", "/api-auth/apps/nope/keys", "", 404, errorJSON(404, "API key app not found")},
		{"list_bad_flag", "GET", "/api-auth/apps/orders-api/keys?include_inactive=maybe", "", 400, errorJSON(400, "Bad request")},
	}
	for _, st := range steps {
		got := e.backend(t, st.method, st.path, st.body)
		if got.status != st.wantStatus || string(got.body) != st.wantBody {
			t.Errorf("%s: %s %s = %d %s, want %d %s", st.name, st.method, st.path, got.status, got.body, st.wantStatus, st.wantBody)
		}
	}

	rot := e.backend(t, "POST", keysPath(newer.ID, "rotate"), "")
	if rot.status != 200 {
		t.Fatalf("rotate = %d %s", rot.status, rot.body)
	}
	rotated := rot.object(t)
	newSecret := rotated["secret"].(string)
	if rotated["id"] == newer.ID || newSecret == newerSecret || rotated["key_suffix"] != newSecret[len(newSecret)-8:] {
		t.Errorf("rotation kept the id or secret: %v", rotated)
	}
	for k, want := range map[string]any{
		"name": "newer", "permissions": []any{"orders:write"}, "metadata": map[string]any{"team": "a"},
		"expires_at": "2027-03-04T10:00:00Z", "is_active": true, "revoked_at": nil, "rate_limit_scheme_slug": "standard",
	} {
		if !cmp.Equal(rotated[k], want) {
			t.Errorf("rotated %s = %v, want %v", k, rotated[k], want)
		}
	}
	if diff := cmp.Diff([]string{rotated["id"].(string)}, keyIDs(t, list(""))); diff != "" {
		t.Errorf("active keys after rotate (-want +got):\n%s", diff)
	}
	all := list("?include_inactive=true").object(t)["keys"].([]any)
	byID := map[string]map[string]any{}
	for _, k := range all {
		byID[k.(map[string]any)["id"].(string)] = k.(map[string]any)
	}
	if len(byID) != 3 {
		t.Fatalf("include_inactive lists %d keys, want 3", len(byID))
	}
	for id, want := range map[string]any{older.ID: "leaked", newer.ID: "Rotated"} {
		k := byID[id]
		if k["is_active"] != false || k["revoked_reason"] != want || k["revoked_at"] != "2026-03-04T10:01:01Z" {
			t.Errorf("key %s = %v, want revoked with reason %v", id, k, want)
		}
	}
	if got := e.backend(t, "POST", keysPath(rotated["id"].(string), "revoke"), `{}`); got.status != 200 {
		t.Fatalf("revoke rotated = %d", got.status)
	}
	keys, err := e.s.APIKeys("orders-api")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.IsActive {
			t.Errorf("key %s still active", k.ID)
		}
		if k.ID == rotated["id"] && k.RevokedReason != "" {
			t.Errorf("revoke without reason stored %q", k.RevokedReason)
		}
	}
}

func TestAPIAuthAppSeeding(t *testing.T) {
	t.Parallel()
	e := newKeysEnv(t)
	for _, app := range []APIAuthApp{
		{},
		{Slug: "orders-api"},
		{Slug: "x", RateLimits: []RateLimit{{Unit: "minute", Duration: 1, MaxRequests: 1}}},
		{Slug: "y", RateLimitScheme: "s", RateLimits: []RateLimit{{Unit: "fortnight", Duration: 1, MaxRequests: 1}}},
		{Slug: "z", RateLimitScheme: "s", RateLimits: []RateLimit{{Unit: "second", Duration: 0, MaxRequests: 1}}},
	} {
		if err := e.s.AddAPIAuthApp(app); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddAPIAuthApp(%+v) = %v, want ErrInvalid", app, err)
		}
	}
	if _, _, err := e.s.AddAPIKey("nope", APIKey{Name: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddAPIKey to unknown app = %v, want ErrNotFound", err)
	}
	k, _, err := e.s.AddAPIKey("other", APIKey{Name: "ctx", OwnerUserID: "7", WorkspaceID: "8", WorkspaceRolePermissions: []string{"w"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.OwnerUserID != "7" || k.WorkspaceID != "8" || !slices.Equal(k.WorkspaceRolePermissions, []string{"w"}) || k.KeyPrefix != "sk" {
		t.Errorf("key context overrides not applied: %+v", k)
	}
	if _, err := e.s.APIKeys("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("APIKeys unknown = %v", err)
	}
}
