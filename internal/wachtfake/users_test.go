package wachtfake

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackendAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	wrongKey := "sk_" + "A123456789012345678901234567890123456789012"
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string
		wantStatus int
		wantBody   string
	}{
		{"no_header", "GET", "/users", "", 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"lowercase_scheme", "GET", "/users", "bearer " + e.s.APIKey(), 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"basic_scheme", "GET", "/users", "Basic dXNlcjpwYXNz", 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"empty_key_trimmed_by_http", "GET", "/users", "Bearer ", 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"blank_key", "GET", "/users", "Bearer  \t x", 401, errorJSON(401, "Authentication failed")},
		{"bad_format", "GET", "/users", "Bearer short", 401, errorJSON(401, "Authentication failed")},
		{"wrong_key", "GET", "/users", "Bearer " + wrongKey, 401, errorJSON(401, "Authentication failed")},
		{"details_needs_auth", "GET", "/users/1/details", "", 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"keys_need_auth", "GET", "/api-auth/apps/x/keys", "Bearer " + wrongKey, 401, errorJSON(401, "Authentication failed")},
		{"wrong_method_checks_auth_first", "PUT", "/users", "", 401, errorJSON(401, "Authorization header must be Bearer token")},
		{"wrong_method", "PUT", "/users", "Bearer " + e.s.APIKey(), 405, errorJSON(405, "Method not allowed")},
		{"no_get_user_route", "GET", "/users/1", "Bearer " + e.s.APIKey(), 405, errorJSON(405, "Method not allowed")},
		{"unknown_route_before_auth", "GET", "/v1/users", "", 404, errorJSON(404, "Not found")},
		{"trailing_slash_unknown", "GET", "/users/", "Bearer " + e.s.APIKey(), 404, errorJSON(404, "Not found")},
		{"ok", "GET", "/users", "Bearer " + e.s.APIKey(), 200, `{"data":[],"has_more":false,"limit":10,"offset":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			got := e.request(t, tt.method, tt.path, "", h...)
			if got.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", got.status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, string(got.body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.clock.Advance(123456 * time.Microsecond)
	got := e.request(t, "GET", "/health", "")
	want := `{"status":"healthy","timestamp":"2026-03-04T10:00:00.123456Z"}`
	if got.status != 200 || string(got.body) != want {
		t.Errorf("GET /health = %d %s, want 200 %s", got.status, got.body, want)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{
		{APIKey: "not-a-wacht-key"},
		{TokenLifetime: -time.Second},
		{RequestsPerMinute: -1},
	} {
		if _, err := New(opts); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v) error = %v, want ErrInvalid", opts, err)
		}
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !validKeyFormat(s.APIKey()) || s.APIKey()[:3] != "sk_" || len(s.APIKey()) != 46 {
		t.Errorf("generated key %q is not sk_ + 43 characters", s.APIKey())
	}
}

// seedUsers adds n users created one minute apart, oldest first, with
// usernames u0.. and emails in reverse alphabetical order.
func seedUsers(t *testing.T, e *env, n int) []User {
	t.Helper()
	var out []User
	for i := range n {
		out = append(out, mustAddUser(t, e.s, User{
			CreatedAt: epoch.Add(time.Duration(i) * time.Minute),
			FirstName: fmt.Sprintf("First%d", i),
			LastName:  "Tester",
			Username:  fmt.Sprintf("u%d", i),
			Emails:    []Email{{Email: fmt.Sprintf("%c@example.com", 'z'-i)}},
		}))
	}
	return out
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := seedUsers(t, e, 5)
	mustAddUser(t, e.s, User{CreatedAt: epoch.Add(-time.Hour), FirstName: "Nobody"}) // no username or email
	ids := func(us ...User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	nobody := func() []string {
		got := e.backend(t, "GET", "/users?search=nobody", "").object(t)["data"].([]any)
		return []string{got[0].(map[string]any)["id"].(string)}
	}()
	tests := []struct {
		query       string
		wantIDs     []string
		wantHasMore bool
		wantLimit   float64
		wantOffset  float64
	}{
		{"", append(ids(u[4], u[3], u[2], u[1], u[0]), nobody...), false, 10, 0},
		{"?limit=2", ids(u[4], u[3]), true, 2, 0},
		{"?limit=2&offset=2", ids(u[2], u[1]), true, 2, 2},
		{"?limit=2&offset=4", append(ids(u[0]), nobody...), false, 2, 4},
		{"?limit=6", append(ids(u[4], u[3], u[2], u[1], u[0]), nobody...), false, 6, 0},
		{"?offset=50", nil, false, 10, 50},
		{"?limit=0", nil, true, 0, 0},
		{"?sort_order=asc&limit=3", append(nobody, ids(u[0], u[1])...), true, 3, 0},
		{"?sort_key=email&sort_order=asc&limit=2", ids(u[4], u[3]), true, 2, 0},
		{"?sort_key=username&sort_order=desc&limit=2", append(nobody, ids(u[4])...), true, 2, 0},
		{"?search=FIRST3", ids(u[3]), false, 10, 0},
		{"?search=%20y@example", ids(u[1]), false, 10, 0},
		{"?search=nomatch", nil, false, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			got := e.backend(t, "GET", "/users"+tt.query, "")
			if got.status != 200 {
				t.Fatalf("status %d: %s", got.status, got.body)
			}
			body := got.object(t)
			var gotIDs []string
			for _, d := range body["data"].([]any) {
				gotIDs = append(gotIDs, d.(map[string]any)["id"].(string))
			}
			if diff := cmp.Diff(tt.wantIDs, gotIDs); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			want := map[string]any{"has_more": tt.wantHasMore, "limit": tt.wantLimit, "offset": tt.wantOffset}
			delete(body, "data")
			if diff := cmp.Diff(want, body); diff != "" {
				t.Errorf("page fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListUsersBadQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	for _, q := range []string{"limit=abc", "limit=-1", "offset=x", "offset=-5", "sort_key=name", "sort_order=up"} {
		got := e.backend(t, "GET", "/users?"+q, "")
		if got.status != 400 || string(got.body) != errorJSON(400, "Bad request") {
			t.Errorf("GET /users?%s = %d %s, want 400 Bad request", q, got.status, got.body)
		}
	}
}

func TestUserWithIdentifiersShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := mustAddUser(t, e.s, User{
		FirstName: "Ada", LastName: "Lovelace", Username: "ada",
		Emails: []Email{{Email: "ada@example.com"}},
		Phones: []Phone{{PhoneNumber: "7700900123", CountryCode: "+44"}},
	})
	v := mustAddUser(t, e.s, User{CreatedAt: epoch.Add(-time.Second), FirstName: "Charles", LastName: "Babbage"})
	got := e.backend(t, "GET", "/users", "")
	want := `{"data":[` +
		`{"id":"` + u.ID + `","created_at":"2026-03-04T10:00:00Z","updated_at":"2026-03-04T10:00:00Z","first_name":"Ada","last_name":"Lovelace","username":"ada","profile_picture_url":"","primary_email_address":"ada@example.com","primary_phone_number":"+447700900123"},` +
		`{"id":"` + v.ID + `","created_at":"2026-03-04T09:59:59Z","updated_at":"2026-03-04T09:59:59Z","first_name":"Charles","last_name":"Babbage","username":null,"profile_picture_url":"","primary_email_address":null,"primary_phone_number":null}` +
		`],"has_more":false,"limit":10,"offset":0}`
	if diff := cmp.Diff(want, string(got.body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestUserDetails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	created := epoch.Add(-48*time.Hour + 123456789*time.Nanosecond)
	u := mustAddUser(t, e.s, User{
		CreatedAt: created, FirstName: "Ada", LastName: "Lovelace", Username: "ada",
		ProfilePictureURL: "https://img.example.com/ada.png", SecondFactorPolicy: "optional",
		ActiveOrganizationMembershipID: "501",
		PublicMetadata:                 map[string]any{"plan": "pro", "seats": 5},
		PrivateMetadata:                map[string]any{"crm": "c1"},
		Emails: []Email{
			{ID: "201", Email: "ada@example.com", Verified: true},
			{ID: "202", Email: "ada@engine.example", Primary: true, Verified: true, VerificationStrategy: "oauth_github",
				VerifiedAt: epoch.Add(-time.Hour + 500*time.Millisecond)},
		},
		Phones: []Phone{{ID: "301", PhoneNumber: "7700900123", CountryCode: "+44", Verified: true}},
		SocialConnections: []SocialConnection{{ID: "401", Provider: "github_oauth", EmailAddress: "ada@engine.example",
			AccessToken: "gho_access", RefreshToken: "ghr_refresh"}},
		Segments:    []Segment{{ID: "601", Name: "Beta", Type: "user"}},
		HasPassword: true,
	})
	ts := `"2026-03-02T10:00:00.123456Z"` // created, truncated to microseconds
	dep := `"` + e.s.DeploymentID() + `"`
	want := `{"id":"` + u.ID + `","created_at":` + ts + `,"updated_at":` + ts + `,` +
		`"first_name":"Ada","last_name":"Lovelace","username":"ada","profile_picture_url":"https://img.example.com/ada.png",` +
		`"schema_version":"v2","disabled":false,"second_factor_policy":"optional","availability":"available",` +
		`"last_password_reset_at":null,"active_organization_membership_id":"501","active_workspace_membership_id":null,` +
		`"deployment_id":` + dep + `,"public_metadata":{"plan":"pro","seats":5},"private_metadata":{"crm":"c1"},` +
		`"primary_email_address_id":"202","primary_email_address":"ada@engine.example",` +
		`"primary_phone_number_id":"301","primary_phone_number":"7700900123",` +
		`"email_addresses":[` +
		`{"id":"201","created_at":` + ts + `,"updated_at":` + ts + `,"deployment_id":` + dep + `,"user_id":"` + u.ID + `","email":"ada@example.com","is_primary":false,"verified":true,"verified_at":` + ts + `,"verification_strategy":"otp"},` +
		`{"id":"202","created_at":` + ts + `,"updated_at":` + ts + `,"deployment_id":` + dep + `,"user_id":"` + u.ID + `","email":"ada@engine.example","is_primary":true,"verified":true,"verified_at":"2026-03-04T09:00:00.500Z","verification_strategy":"oauth_github"}],` +
		`"phone_numbers":[{"id":"301","created_at":` + ts + `,"updated_at":` + ts + `,"user_id":"` + u.ID + `","phone_number":"7700900123","country_code":"+44","verified":true,"verified_at":` + ts + `}],` +
		`"social_connections":[{"id":"401","created_at":` + ts + `,"updated_at":` + ts + `,"user_id":"` + u.ID + `","user_email_address_id":"202","provider":"github_oauth","email_address":"ada@engine.example","access_token":"gho_access","refresh_token":"ghr_refresh"}],` +
		`"segments":[{"id":"601","created_at":` + ts + `,"updated_at":` + ts + `,"deployment_id":` + dep + `,"name":"Beta","type":"user"}],` +
		`"has_password":true,"has_backup_codes":false}`

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"found", "/users/" + u.ID + "/details", 200, want},
		{"leading_zero_id", "/users/0" + u.ID + "/details", 200, want},
		{"unknown", "/users/42/details", 404, errorJSON(404, "Resource not found")},
		{"non_numeric", "/users/ada/details", 400, errorJSON(400, "Bad request")},
		{"overflow", "/users/99999999999999999999/details", 400, errorJSON(400, "Bad request")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := e.backend(t, "GET", tt.path, "")
			if got.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", got.status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, string(got.body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUserSeeding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	meta := map[string]any{"k": "v"}
	u := mustAddUser(t, e.s, User{FirstName: "A", PublicMetadata: meta, Emails: []Email{{Email: "a@example.com"}}})
	meta["k"] = "changed" // the stored copy must not change
	if _, err := e.s.AddUser(User{ID: u.ID}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddUser with a used id: %v, want ErrInvalid", err)
	}
	if _, err := e.s.AddUser(User{ID: "abc"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddUser with a bad id: %v, want ErrInvalid", err)
	}
	if _, err := e.s.AddUser(User{PublicMetadata: map[string]any{"f": func() {}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddUser with non-JSON metadata: %v, want ErrInvalid", err)
	}

	e.clock.Advance(time.Minute)
	err := e.s.UpdateUser(u.ID, func(u *User) {
		u.Disabled = true
		u.Emails = append(u.Emails, Email{Email: "b@example.com"})
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	got, err := e.s.User(u.ID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if !got.Disabled || got.PublicMetadata["k"] != "v" || len(got.Emails) != 2 || got.Emails[1].ID == "" ||
		!got.UpdatedAt.Equal(epoch.Add(time.Minute)) || !got.CreatedAt.Equal(epoch) {
		t.Errorf("after update: %+v", got)
	}
	if err := e.s.UpdateUser(u.ID, func(u *User) { u.ID = "1" }); !errors.Is(err, ErrInvalid) {
		t.Errorf("UpdateUser changing id: %v, want ErrInvalid", err)
	}
	if err := e.s.UpdateUser("1", func(*User) {}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateUser unknown: %v, want ErrNotFound", err)
	}

	mustAddSignIn(t, e.s, u.ID, SignIn{})
	if got := e.backend(t, "DELETE", "/users/"+u.ID, ""); got.status != 200 || string(got.body) != "{}" {
		t.Errorf("DELETE /users/{id} = %d %s", got.status, got.body)
	}
	if got := e.backend(t, "GET", "/users/"+u.ID+"/details", ""); got.status != http.StatusNotFound {
		t.Errorf("details after delete = %d", got.status)
	}
	if got := e.backend(t, "GET", "/users/"+u.ID+"/sessions", ""); string(got.body) != `{"data":[],"has_more":false}` {
		t.Errorf("sessions after delete = %s", got.body)
	}
	if err := e.s.DeleteUser(u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteUser twice: %v, want ErrNotFound", err)
	}
}
