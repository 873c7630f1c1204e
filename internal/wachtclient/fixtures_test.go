package wachtclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	fxDeployment = ID("24239923154394947")
	fxUser       = ID("73012345678901234")
	fxSecret     = "ak_gJmYFqvcXrg-mLxNYse2IBbQryC8Xr8fOcIAZsAL_MQ"
)

// fixtureCase decodes one fixture through the client method that receives it.
type fixtureCase struct {
	file string
	call func(context.Context, *Client) (any, error)
	want any
}

func fixtureCases(t *testing.T) []fixtureCase {
	tm := func(s string) time.Time { return mustTime(t, s) }
	tp := func(s string) *time.Time { return ptr(mustTime(t, s)) }
	activeKey := APIKey{
		ID:                       "73012345678909001",
		DeploymentID:             fxDeployment,
		AppSlug:                  "orders-api",
		Name:                     "ci deploy",
		KeyPrefix:                "ak",
		KeySuffix:                "Xk3v_9Qa",
		Permissions:              []string{"orders:read", "orders:write"},
		Metadata:                 json.RawMessage(`{"team":"payments"}`),
		RateLimits:               []RateLimit{},
		RateLimitSchemeSlug:      "standard",
		OwnerUserID:              fxUser,
		OrganizationID:           "73012345678905100",
		OrganizationMembershipID: "73012345678905001",
		OrgRolePermissions:       []string{"org:billing:read"},
		WorkspaceRolePermissions: []string{},
		ExpiresAt:                tp("2027-01-01T00:00:00Z"),
		LastUsedAt:               tp("2026-03-04T09:59:58.42Z"),
		IsActive:                 true,
		CreatedAt:                tm("2026-02-10T11:00:00Z"),
		UpdatedAt:                tm("2026-03-04T09:59:58.42Z"),
	}
	newKey := activeKey
	newKey.ID = "73012345678909003"
	newKey.KeySuffix = "AZsAL_MQ"
	newKey.LastUsedAt = nil
	newKey.CreatedAt = tm("2026-03-04T10:05:00.000123Z")
	newKey.UpdatedAt = tm("2026-03-04T10:05:00.000123Z")
	rateLimitHeaders := func(remaining string, keyID string) map[string]string {
		return map[string]string{
			"X-RateLimit-60s-Limit":     "1000",
			"X-RateLimit-60s-Remaining": remaining,
			"X-RateLimit-60s-Reset":     "1772618460",
			"X-Wacht-Key-ID":            keyID,
		}
	}

	return []fixtureCase{
		{
			file: "user_details.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetUser(ctx, string(fxUser)) },
			want: &UserDetails{
				ID:                             fxUser,
				DeploymentID:                   fxDeployment,
				CreatedAt:                      tm("2026-01-15T09:30:00.123456Z"),
				UpdatedAt:                      tm("2026-03-04T10:00:00.5Z"),
				FirstName:                      "Ada",
				LastName:                       "Lovelace",
				Username:                       ptr("ada"),
				ProfilePictureURL:              "https://img.wacht.dev/avatars/73012345678901234.png",
				SchemaVersion:                  "v2",
				SecondFactorPolicy:             "optional",
				Availability:                   "available",
				ActiveOrganizationMembershipID: "73012345678905001",
				PublicMetadata:                 json.RawMessage(`{"plan":"pro","seats":5}`),
				PrivateMetadata:                json.RawMessage(`{"crm_id":"cus_9f2b"}`),
				PrimaryEmailAddressID:          "73012345678902001",
				PrimaryEmailAddress:            ptr("ada@example.com"),
				PrimaryPhoneNumberID:           "73012345678903001",
				PrimaryPhoneNumber:             ptr("+447700900123"),
				EmailAddresses: []UserEmailAddress{
					{
						ID: "73012345678902001", CreatedAt: tm("2026-01-15T09:30:00.123456Z"), UpdatedAt: tm("2026-01-15T09:31:12Z"),
						DeploymentID: fxDeployment, UserID: fxUser, Email: "ada@example.com", IsPrimary: true,
						Verified: true, VerifiedAt: tm("2026-01-15T09:31:12Z"), VerificationStrategy: "otp",
					},
					{
						ID: "73012345678902002", CreatedAt: tm("2026-02-01T18:04:05.000001Z"), UpdatedAt: tm("2026-02-01T18:04:05.000001Z"),
						DeploymentID: fxDeployment, UserID: fxUser, Email: "ada@analytical.engine",
						Verified: true, VerifiedAt: tm("2026-02-01T18:04:05.000001Z"), VerificationStrategy: "oauth_github",
					},
				},
				PhoneNumbers: []UserPhoneNumber{{
					ID: "73012345678903001", CreatedAt: tm("2026-01-20T12:00:00Z"), UpdatedAt: tm("2026-01-20T12:02:30.25Z"),
					UserID: fxUser, PhoneNumber: "7700900123", CountryCode: "+44", Verified: true, VerifiedAt: tm("2026-01-20T12:02:30.25Z"),
				}},
				SocialConnections: []SocialConnection{{
					ID: "73012345678904001", CreatedAt: tm("2026-02-01T18:04:05.000001Z"), UpdatedAt: tm("2026-02-01T18:04:05.000001Z"),
					UserID: fxUser, UserEmailAddressID: "73012345678902002", Provider: "github_oauth", EmailAddress: "ada@analytical.engine",
				}},
				Segments: []Segment{{
					ID: "73012345678906001", CreatedAt: tp("2026-01-02T00:00:00Z"), UpdatedAt: tp("2026-01-02T00:00:00Z"),
					DeploymentID: fxDeployment, Name: "Beta testers", Type: "user",
				}},
				HasPassword: true,
			},
		},
		{
			file: "users_list.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.ListUsers(ctx, ListUsersParams{Limit: 2}) },
			want: &UserPage{
				Data: []UserWithIdentifiers{
					{
						ID: fxUser, CreatedAt: tm("2026-01-15T09:30:00.123456Z"), UpdatedAt: tm("2026-03-04T10:00:00.5Z"),
						FirstName: "Ada", LastName: "Lovelace", Username: ptr("ada"),
						ProfilePictureURL:   "https://img.wacht.dev/avatars/73012345678901234.png",
						PrimaryEmailAddress: ptr("ada@example.com"), PrimaryPhoneNumber: ptr("+447700900123"),
					},
					{
						ID: "73012345678901235", CreatedAt: tm("2026-01-14T08:00:00Z"), UpdatedAt: tm("2026-01-14T08:00:00Z"),
						FirstName: "Charles", LastName: "Babbage", PrimaryEmailAddress: ptr("charles@example.com"),
					},
				},
				HasMore: true,
				Limit:   2,
			},
		},
		{
			file: "sessions_list.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListUserSessions(ctx, string(fxUser), true)
			},
			want: []SignIn{
				{
					ID: "73012345678907001", SessionID: "73012345678908001", UserID: fxUser,
					ActiveOrganizationMembershipID: "73012345678905001", ActiveWorkspaceMembershipID: "73012345678905201",
					CreatedAt: tm("2026-03-04T09:00:00.654321Z"), UpdatedAt: tm("2026-03-04T10:00:00Z"),
					ExpiresAt: tm("2026-04-03T09:00:00.654321Z"), LastActiveAt: tm("2026-03-04T10:00:00Z"),
					IPAddress: "203.0.113.7", Browser: "Firefox", Device: "Desktop", City: "London",
					Region: "England", RegionCode: "ENG", Country: "United Kingdom", CountryCode: "GB",
				},
				{
					ID: "73012345678907002", SessionID: "73012345678908002", UserID: fxUser,
					CreatedAt: tm("2026-01-10T07:15:00Z"), UpdatedAt: tm("2026-01-10T07:15:00Z"),
					ExpiresAt: tm("2026-02-09T07:15:00Z"), LastActiveAt: tm("2026-01-10T07:15:00Z"),
				},
			},
		},
		{
			file: "api_keys_list.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.ListAPIKeys(ctx, "orders-api", true) },
			want: []APIKey{
				activeKey,
				{
					ID: "73012345678909002", DeploymentID: fxDeployment, AppSlug: "orders-api", Name: "old laptop",
					KeyPrefix: "ak", KeySuffix: "p0Lm2_Zr", Permissions: []string{"orders:read"},
					Metadata: json.RawMessage(`{}`), RateLimits: []RateLimit{},
					OrgRolePermissions: []string{}, WorkspaceRolePermissions: []string{},
					RevokedAt: tp("2026-02-20T16:45:00.1Z"), RevokedReason: ptr("Rotated"),
					CreatedAt: tm("2026-01-05T10:00:00Z"), UpdatedAt: tm("2026-02-20T16:45:00.1Z"),
				},
			},
		},
		{
			file: "api_key_with_secret.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateAPIKey(ctx, "orders-api", CreateAPIKeyRequest{Name: "ci deploy"})
			},
			want: &APIKeyWithSecret{APIKey: newKey, Secret: fxSecret},
		},
		{
			file: "api_key_with_secret.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RotateAPIKey(ctx, "orders-api", "73012345678909001")
			},
			want: &APIKeyWithSecret{APIKey: newKey, Secret: fxSecret},
		},
		{
			file: "authz_check_allowed.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.CheckAuthz(ctx, testAuthzRequest()) },
			want: &AuthzCheckResponse{
				RequestID: "req_73012345678910001",
				Allowed:   true,
				Identity: &AuthzIdentity{
					KeyID: "73012345678909001", DeploymentID: fxDeployment, AppSlug: "orders-api", KeyName: "ci deploy",
					OwnerUserID: fxUser, OrganizationID: "73012345678905100", OrganizationMembershipID: "73012345678905001",
				},
				Permissions: []string{"orders:read", "orders:write", "org:billing:read"},
				Metadata:    json.RawMessage(`{"team":"payments"}`),
				RateLimits:  []AuthzRateLimit{{Rule: "1000/minute", Remaining: 998, Limit: 1000}},
				Headers:     rateLimitHeaders("998", "73012345678909001"),
			},
		},
		{
			file: "authz_check_denied.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.CheckAuthz(ctx, testAuthzRequest()) },
			want: &AuthzCheckResponse{
				RequestID: "req_73012345678910002",
				Reason:    ReasonPermissionDenied,
				Identity: &AuthzIdentity{
					KeyID: "73012345678909002", DeploymentID: fxDeployment, AppSlug: "orders-api", KeyName: "read only",
					WorkspaceID: "73012345678905200", WorkspaceMembershipID: "73012345678905201",
				},
				Permissions: []string{"orders:read"},
				Metadata:    json.RawMessage(`{}`),
				RateLimits:  []AuthzRateLimit{{Rule: "1000/minute", Remaining: 997, Limit: 1000}},
				Headers:     rateLimitHeaders("997", "73012345678909002"),
			},
		},
		{
			file: "revoke_all.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.RevokeAllSessions(ctx, string(fxUser)) },
			want: int64(2),
		},
		{
			file: "empty.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return "ok", c.RevokeSignIn(ctx, string(fxUser), "73012345678907001")
			},
			want: "ok",
		},
		{
			file: "empty.json",
			call: func(ctx context.Context, c *Client) (any, error) {
				return "ok", c.RevokeAPIKey(ctx, "orders-api", "73012345678909001", "")
			},
			want: "ok",
		},
		{
			file: "health.json",
			call: func(ctx context.Context, c *Client) (any, error) { return c.CheckHealth(ctx) },
			want: &HealthStatus{Status: StatusHealthy, Timestamp: tm("2026-03-04T10:00:00.123456789Z")},
		},
	}
}

func testAuthzRequest() AuthzCheckRequest {
	return AuthzCheckRequest{
		Principal: Principal{Type: PrincipalAPIKey, Value: fxSecret},
		Resource:  "/v1/orders",
		Method:    http.MethodGet,
	}
}

func TestFixturesDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtureCases(t) {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, replyJSON(http.StatusOK, fixture(t, tc.file)), nil)
			got, err := tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, jsonEqual); diff != "" {
				t.Errorf("decoded %s (-want +got):\n%s", tc.file, diff)
			}
		})
	}
}

func TestFixtureJWKSIsReturnedRaw(t *testing.T) {
	t.Parallel()
	want := fixture(t, "jwks.json")
	c, _ := newTestClient(t, replyJSON(http.StatusOK, want), nil)
	got, err := c.FetchJWKS(t.Context())
	if err != nil {
		t.Fatalf("FetchJWKS: %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("FetchJWKS (-want +got):\n%s", diff)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(got, &set); err != nil {
		t.Fatalf("unmarshal jwks: %v", err)
	}
	wantKey := map[string]string{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "24239923154395001"}
	if len(set.Keys) != 1 {
		t.Fatalf("jwks has %d keys, want exactly 1", len(set.Keys))
	}
	for k, v := range wantKey {
		if set.Keys[0][k] != v {
			t.Errorf("jwks key %s = %q, want %q", k, set.Keys[0][k], v)
		}
	}
	for _, k := range []string{"x", "y"} {
		if len(set.Keys[0][k]) != 43 {
			t.Errorf("jwks coordinate %s has %d base64url chars, want 43", k, len(set.Keys[0][k]))
		}
	}
}

func TestFixtureErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file     string
		status   int
		wantIs   error
		wantBody *APIError
	}{
		{"error_404.json", http.StatusNotFound, ErrNotFound, &APIError{StatusCode: 404, Message: "Resource not found"}},
		{"error_429.json", http.StatusTooManyRequests, ErrRateLimited, &APIError{StatusCode: 429, Message: "Rate limit exceeded. Retry after 1843 seconds"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, replyJSON(tc.status, fixture(t, tc.file)), func(cfg *Config) { cfg.MaxRetries = -1 })
			_, err := c.GetUser(t.Context(), string(fxUser))
			if !errors.Is(err, tc.wantIs) {
				t.Fatalf("GetUser error = %v, want %v", err, tc.wantIs)
			}
			got, ok := AsAPIError(err)
			if !ok {
				t.Fatalf("GetUser error %v is not an *APIError", err)
			}
			if diff := cmp.Diff(tc.wantBody, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSocialConnectionTokensAreDropped(t *testing.T) {
	t.Parallel()
	raw := fixture(t, "user_details.json")
	tokens := []string{"gho_FixtureAccessToken0000000000000000", "ghr_FixtureRefreshToken000000000000000"}
	for _, tok := range tokens {
		if !strings.Contains(string(raw), tok) {
			t.Fatalf("fixture lacks token %q; the test would prove nothing", tok)
		}
	}
	typ := reflect.TypeFor[SocialConnection]()
	for i := range typ.NumField() {
		tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
		if tag == "access_token" || tag == "refresh_token" {
			t.Errorf("SocialConnection has field %s for %q", typ.Field(i).Name, tag)
		}
	}
	c, _ := newTestClient(t, replyJSON(http.StatusOK, raw), nil)
	u, err := c.GetUser(t.Context(), string(fxUser))
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	encoded, err := json.Marshal(u)
	if err != nil {
		t.Fatalf("marshal user: %v", err)
	}
	for _, out := range []string{fmt.Sprintf("%+v", u), fmt.Sprintf("%#v", u), string(encoded)} {
		for _, tok := range tokens {
			if strings.Contains(out, tok) {
				t.Errorf("decoded user still holds token %q", tok)
			}
		}
	}
}

// TestFixtureKeySets checks that the types model every field of the
// fixtures: decoding and re-encoding keeps the same keys, apart from the
// OAuth tokens we drop on purpose.
func TestFixtureKeySets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		into any
	}{
		{"user_details.json", &UserDetails{}},
		{"users_list.json", &UserPage{}},
		{"sessions_list.json", &signInList{}},
		{"api_keys_list.json", &apiKeyList{}},
		{"api_key_with_secret.json", &APIKeyWithSecret{}},
		{"authz_check_allowed.json", &AuthzCheckResponse{}},
		{"authz_check_denied.json", &AuthzCheckResponse{}},
		{"revoke_all.json", &revokeAllResponse{}},
		{"empty.json", &struct{}{}},
		{"health.json", &HealthStatus{}},
		{"error_404.json", &errorBodyKeys{}},
		{"error_429.json", &errorBodyKeys{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			raw := fixture(t, tc.file)
			if err := json.Unmarshal(raw, tc.into); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			again, err := json.Marshal(tc.into)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			want := keyPaths(t, raw)
			want = slices.DeleteFunc(want, func(p string) bool {
				return strings.HasSuffix(p, ".access_token") || strings.HasSuffix(p, ".refresh_token")
			})
			if diff := cmp.Diff(want, keyPaths(t, again)); diff != "" {
				t.Errorf("key paths of %s (-fixture +re-encoded):\n%s", tc.file, diff)
			}
		})
	}
}

// errorBodyKeys mirrors Wacht's error body with both of its fields.
type errorBodyKeys struct {
	Errors []struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
	} `json:"errors"`
}

// keyPaths lists every object key path in a JSON document, sorted, with
// array elements written as [] and metadata objects left opaque.
func keyPaths(t *testing.T, raw []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, child := range x {
				p := prefix + "." + k
				set[p] = true
				if !strings.HasSuffix(k, "metadata") && k != "headers" {
					walk(p, child)
				}
			}
		case []any:
			for _, child := range x {
				walk(prefix+"[]", child)
			}
		}
	}
	walk("", v)
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}
