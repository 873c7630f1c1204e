package wachtfake

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// fixtureDir holds the client's golden Wacht responses.
const fixtureDir = "../wachtclient/testdata"

// freeForm names members whose values are arbitrary JSON objects, whose
// keys are data rather than structure.
var freeForm = map[string]bool{"metadata": true, "public_metadata": true, "private_metadata": true, "headers": true}

// shapeDiff lists where got, an emulator response, differs in structure
// from want, a fixture: object member names (recursively), arrays and
// scalar types. Values are not compared. null matches anything, and a
// member that is null on one side may be absent on the other, since both
// decode the same. A fixture number matches an emulator decimal string,
// because the fixtures use numeric ids to test the client's leniency while
// Wacht always sends strings.
func shapeDiff(path string, got, want any) []string {
	if got == nil || want == nil {
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want object", path, got)}
		}
		if freeForm[lastSegment(path)] {
			return nil
		}
		var diffs []string
		for _, k := range unionKeys(g, w) {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case gok && wok:
				diffs = append(diffs, shapeDiff(path+"."+k, gv, wv)...)
			case gok && gv != nil:
				diffs = append(diffs, fmt.Sprintf("%s.%s: emulator sends a member the fixture lacks", path, k))
			case wok && wv != nil:
				diffs = append(diffs, fmt.Sprintf("%s.%s: fixture has a member the emulator lacks", path, k))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want array", path, got)}
		}
		if len(g) == 0 || len(w) == 0 {
			return nil
		}
		var diffs []string
		for i := range g {
			diffs = append(diffs, shapeDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[min(i, len(w)-1)])...)
		}
		return diffs
	case float64:
		if s, ok := got.(string); ok {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return nil
			}
		}
	}
	if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", want) {
		return []string{fmt.Sprintf("%s: got %T, want %T", path, got, want)}
	}
	return nil
}

func lastSegment(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[i+1:]
		}
	}
	return path
}

func unionKeys(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestShapeDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
		wantDiffs int
	}{
		{`{"a":"1","b":[{"c":true}]}`, `{"a":"2","b":[{"c":false}]}`, 0},
		{`{"a":"1"}`, `{"a":"1","b":2}`, 1},
		{`{"a":"1","b":null}`, `{"a":"1"}`, 0},
		{`{"a":"1","b":2}`, `{"a":"1"}`, 1},
		{`{"a":"123"}`, `{"a":123}`, 0},
		{`{"a":"x"}`, `{"a":123}`, 1},
		{`{"a":1}`, `{"a":"1"}`, 1},
		{`{"a":[{"b":1},{"c":1}]}`, `{"a":[{"b":1}]}`, 2},
		{`{"metadata":{"x":1}}`, `{"metadata":{"y":"2"}}`, 0},
		{`{"a":{}}`, `{"a":[]}`, 1},
		{`{"a":null}`, `{"a":{"b":1}}`, 0},
	}
	for _, tt := range tests {
		var got, want any
		if err := json.Unmarshal([]byte(tt.got), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
			t.Fatal(err)
		}
		if diffs := shapeDiff("$", got, want); len(diffs) != tt.wantDiffs {
			t.Errorf("shapeDiff(%s, %s) = %q, want %d differences", tt.got, tt.want, diffs, tt.wantDiffs)
		}
	}
}

// goldenEnv seeds an emulator whose responses mirror the fixtures' data,
// including which optional members are present.
type goldenEnv struct {
	*env
	user, userNoPhone, sessionUser User
	signIn                         SignIn
	keySecret, deniedSecret        string
}

func newGoldenEnv(t *testing.T) *goldenEnv {
	t.Helper()
	g := &goldenEnv{env: newEnv(t, Options{})}
	s := g.s
	g.user = mustAddUser(t, s, User{
		CreatedAt: epoch.Add(-24 * time.Hour), FirstName: "Ada", LastName: "Lovelace", Username: "ada",
		ProfilePictureURL: "https://img.example.com/ada.png", SecondFactorPolicy: "optional",
		ActiveOrganizationMembershipID: "5001",
		PublicMetadata:                 map[string]any{"plan": "pro", "seats": 5},
		PrivateMetadata:                map[string]any{"crm_id": "cus_9f2b"},
		Emails:                         []Email{{Email: "ada@example.com", Primary: true, Verified: true}, {Email: "ada@analytical.engine", Verified: true, VerificationStrategy: "oauth_github"}},
		Phones:                         []Phone{{PhoneNumber: "7700900123", CountryCode: "+44", Primary: true, Verified: true}},
		SocialConnections:              []SocialConnection{{Provider: "github_oauth", EmailAddress: "ada@analytical.engine", AccessToken: "gho_x", RefreshToken: "ghr_x"}},
		Segments:                       []Segment{{Name: "Beta testers", Type: "user"}},
		HasPassword:                    true,
	})
	g.userNoPhone = mustAddUser(t, s, User{CreatedAt: epoch.Add(-48 * time.Hour), FirstName: "Charles", LastName: "Babbage",
		Emails: []Email{{Email: "charles@example.com"}}})
	mustAddUser(t, s, User{CreatedAt: epoch.Add(-72 * time.Hour), FirstName: "Third"})

	g.sessionUser = g.user
	g.signIn = mustAddSignIn(t, s, g.user.ID, SignIn{ActiveOrganizationMembershipID: "5001", ActiveWorkspaceMembershipID: "5201",
		IPAddress: "203.0.113.7", Browser: "Firefox", Device: "Desktop", City: "London"})
	mustAddSignIn(t, s, g.user.ID, SignIn{LastActiveAt: epoch.Add(-time.Hour)})

	if err := s.AddAPIAuthApp(APIAuthApp{Slug: "orders-api", KeyPrefix: "ak"}); err != nil {
		t.Fatal(err)
	}
	e := g.env
	old, _, err := s.AddAPIKey("orders-api", APIKey{Name: "old laptop", Permissions: []string{"orders:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.backend(t, "POST", "/api-auth/apps/orders-api/keys/"+old.ID+"/revoke", `{"reason":"Rotated"}`); got.status != 200 {
		t.Fatalf("revoke: %d %s", got.status, got.body)
	}
	e.clock.Advance(time.Second)
	if _, g.keySecret, err = s.AddAPIKey("orders-api", APIKey{
		Name: "ci deploy", Permissions: []string{"orders:read", "orders:write"}, Metadata: map[string]any{"team": "payments"},
		ExpiresAt: epoch.Add(300 * 24 * time.Hour), RateLimitSchemeSlug: "standard", OwnerUserID: g.user.ID,
		OrganizationID: "5100", OrganizationMembershipID: "5001", OrgRolePermissions: []string{"org:billing:read"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, g.deniedSecret, err = s.AddAPIKey("orders-api", APIKey{
		Name: "read only", Permissions: []string{"orders:read"}, WorkspaceID: "5200", WorkspaceMembershipID: "5201",
	}); err != nil {
		t.Fatal(err)
	}
	// The newest key must not be listed with the fixture's two keys.
	if err := s.AddAPIAuthApp(APIAuthApp{Slug: "ctx", KeyPrefix: "ak", UserID: g.user.ID, OrganizationID: "5100",
		OrganizationMembershipID: "5001", OrgRolePermissions: []string{"org:billing:read"}, RateLimitScheme: "standard",
		RateLimits: []RateLimit{{Unit: "minute", Duration: 1, MaxRequests: 1000}}}); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFixtureShapes(t *testing.T) {
	t.Parallel()
	g := newGoldenEnv(t)
	limited := newEnv(t, Options{RequestsPerMinute: 1})
	limited.backend(t, "GET", "/users", "")

	cases := []struct {
		file string
		get  func(t *testing.T) response
	}{
		{"user_details.json", func(t *testing.T) response { return g.backend(t, "GET", "/users/"+g.user.ID+"/details", "") }},
		{"users_list.json", func(t *testing.T) response { return g.backend(t, "GET", "/users?limit=2", "") }},
		{"sessions_list.json", func(t *testing.T) response {
			return g.backend(t, "GET", "/users/"+g.sessionUser.ID+"/sessions", "")
		}},
		{"api_keys_list.json", func(t *testing.T) response {
			r := g.backend(t, "GET", "/api-auth/apps/orders-api/keys?include_inactive=true", "")
			// Keep the fixture's pair: the "ci deploy" key and the revoked one.
			var body struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			body.Keys = slices.DeleteFunc(body.Keys, func(k map[string]any) bool { return k["name"] == "read only" })
			r.body, _ = json.Marshal(body)
			return r
		}},
		{"api_key_with_secret.json", func(t *testing.T) response {
			return g.backend(t, "POST", "/api-auth/apps/ctx/keys",
				`{"name":"ci deploy","permissions":["orders:read"],"metadata":{"team":"payments"},"expires_at":"2027-01-01T00:00:00Z"}`)
		}},
		{"authz_check_allowed.json", func(t *testing.T) response { return g.check(t, checkBody(g.keySecret, "")) }},
		{"authz_check_denied.json", func(t *testing.T) response {
			return g.check(t, checkBody(g.deniedSecret, `,"required_permissions":["orders:write"]`))
		}},
		{"jwks.json", func(t *testing.T) response { return g.request(t, "GET", "/.well-known/jwks.json", "") }},
		{"error_404.json", func(t *testing.T) response { return g.backend(t, "GET", "/users/42/details", "") }},
		{"error_429.json", func(t *testing.T) response { return limited.backend(t, "GET", "/users", "") }},
		{"revoke_all.json", func(t *testing.T) response {
			return g.backend(t, "POST", "/users/"+g.userNoPhone.ID+"/sessions/revoke-all", "")
		}},
		{"empty.json", func(t *testing.T) response {
			return g.backend(t, "POST", "/users/"+g.user.ID+"/sessions/"+g.signIn.ID+"/revoke", "")
		}},
		{"health.json", func(t *testing.T) response { return g.request(t, "GET", "/health", "") }},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(fixtureDir, tc.file))
			if err != nil {
				t.Fatalf("read fixture: %v", err)
			}
			var want any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("decode fixture: %v", err)
			}
			got := tc.get(t)
			for _, d := range shapeDiff("$", got.json(t), want) {
				t.Error(d)
			}
		})
	}
}
