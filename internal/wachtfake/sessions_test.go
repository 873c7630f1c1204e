package wachtfake

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sessionIDs returns the ids of a sign-in list response.
func sessionIDs(t *testing.T, r response) []string {
	t.Helper()
	body := r.object(t)
	if len(body) != 2 || body["has_more"] != false {
		t.Errorf("list envelope = %s, want only data and has_more:false", r.body)
	}
	var ids []string
	for _, d := range body["data"].([]any) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := mustAddUser(t, e.s, User{FirstName: "Ada"})
	other := mustAddUser(t, e.s, User{FirstName: "Other"})
	a := mustAddSignIn(t, e.s, u.ID, SignIn{
		CreatedAt: epoch.Add(-time.Hour + 654321*time.Microsecond), LastActiveAt: epoch,
		ActiveOrganizationMembershipID: "501", ActiveWorkspaceMembershipID: "601",
		IPAddress: "203.0.113.7", Browser: "Firefox", Device: "Desktop", City: "London", Region: "England",
		RegionCode: "ENG", Country: "United Kingdom", CountryCode: "GB",
	})
	b := mustAddSignIn(t, e.s, u.ID, SignIn{LastActiveAt: epoch.Add(-time.Minute)})
	c := mustAddSignIn(t, e.s, u.ID, SignIn{LastActiveAt: epoch.Add(-2 * time.Minute), ExpiresAt: epoch})
	mustAddSignIn(t, e.s, u.ID, SignIn{RevokedAt: epoch})
	soon := mustAddSignIn(t, e.s, other.ID, SignIn{ExpiresAt: epoch.Add(time.Minute)})

	tests := []struct {
		path    string
		wantIDs []string
	}{
		{"/users/" + u.ID + "/sessions", []string{a.ID, b.ID}},
		{"/users/" + u.ID + "/sessions?include_expired=false", []string{a.ID, b.ID}},
		{"/users/" + u.ID + "/sessions?include_expired=true", []string{a.ID, b.ID, c.ID}},
		{"/users/" + other.ID + "/sessions", []string{soon.ID}},
		{"/users/42/sessions", nil},
	}
	for _, tt := range tests {
		got := e.backend(t, "GET", tt.path, "")
		if got.status != 200 {
			t.Fatalf("GET %s = %d %s", tt.path, got.status, got.body)
		}
		if diff := cmp.Diff(tt.wantIDs, sessionIDs(t, got)); diff != "" {
			t.Errorf("GET %s ids (-want +got):\n%s", tt.path, diff)
		}
	}

	e.clock.Advance(time.Minute) // expires_at == now counts as expired
	if got := sessionIDs(t, e.backend(t, "GET", "/users/"+other.ID+"/sessions", "")); len(got) != 0 {
		t.Errorf("sign-in expiring now is still listed: %v", got)
	}

	for _, q := range []string{"include_expired=yes", "include_expired=1"} {
		if got := e.backend(t, "GET", "/users/"+u.ID+"/sessions?"+q, ""); got.status != 400 || string(got.body) != errorJSON(400, "Bad request") {
			t.Errorf("?%s = %d %s, want 400", q, got.status, got.body)
		}
	}
	if got := e.backend(t, "GET", "/users/x/sessions", ""); got.status != 400 {
		t.Errorf("non-numeric user = %d, want 400", got.status)
	}

	got := e.backend(t, "GET", "/users/"+u.ID+"/sessions", "").object(t)["data"].([]any)[0]
	want := map[string]any{
		"id": a.ID, "session_id": a.SessionID, "user_id": u.ID,
		"created_at": "2026-03-04T09:00:00.654321Z", "updated_at": "2026-03-04T09:00:00.654321Z",
		"expires_at": "2026-03-11T09:00:00.654321Z", "last_active_at": "2026-03-04T10:00:00Z",
		"active_organization_membership_id": "501", "active_workspace_membership_id": "601",
		"ip_address": "203.0.113.7", "browser": "Firefox", "device": "Desktop", "city": "London",
		"region": "England", "region_code": "ENG", "country": "United Kingdom", "country_code": "GB",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sign-in JSON (-want +got):\n%s", diff)
	}
	nulls := e.backend(t, "GET", "/users/"+u.ID+"/sessions", "").object(t)["data"].([]any)[1].(map[string]any)
	if nulls["active_organization_membership_id"] != nil || nulls["active_workspace_membership_id"] != nil || nulls["ip_address"] != "" {
		t.Errorf("unset fields = %v, want null memberships and empty strings", nulls)
	}
}

func TestRevokeSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := mustAddUser(t, e.s, User{FirstName: "Ada"})
	other := mustAddUser(t, e.s, User{FirstName: "Other"})
	a := mustAddSignIn(t, e.s, u.ID, SignIn{LastActiveAt: epoch})
	b := mustAddSignIn(t, e.s, u.ID, SignIn{LastActiveAt: epoch.Add(-time.Minute)})
	c := mustAddSignIn(t, e.s, u.ID, SignIn{ExpiresAt: epoch.Add(-time.Hour)})
	mustAddSignIn(t, e.s, u.ID, SignIn{RevokedAt: epoch.Add(-time.Hour)})
	o := mustAddSignIn(t, e.s, other.ID, SignIn{})
	revoke := func(userID, signInID string) string { return "/users/" + userID + "/sessions/" + signInID + "/revoke" }

	e.clock.Advance(time.Second)
	steps := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"revoke_b", revoke(u.ID, b.ID), 200, `{}`},
		{"revoke_b_again", revoke(u.ID, b.ID), 404, errorJSON(404, "signin not found")},
		{"other_users_signin", revoke(u.ID, o.ID), 404, errorJSON(404, "signin not found")},
		{"unknown_signin", revoke(u.ID, "42"), 404, errorJSON(404, "signin not found")},
		{"non_numeric_signin", revoke(u.ID, "abc"), 400, errorJSON(400, "Bad request")},
		{"revoke_all_counts_expired", "/users/" + u.ID + "/sessions/revoke-all", 200, `{"revoked":2}`},
		{"revoke_all_again", "/users/" + u.ID + "/sessions/revoke-all", 200, `{"revoked":0}`},
		{"revoke_all_unknown_user", "/users/42/sessions/revoke-all", 200, `{"revoked":0}`},
		{"revoke_all_non_numeric", "/users/x/sessions/revoke-all", 400, errorJSON(400, "Bad request")},
		{"revoke_after_revoke_all", revoke(u.ID, a.ID), 404, errorJSON(404, "signin not found")},
	}
	for _, st := range steps {
		got := e.backend(t, "POST", st.path, "")
		if got.status != st.wantStatus || string(got.body) != st.wantBody {
			t.Errorf("%s: POST %s = %d %s, want %d %s", st.name, st.path, got.status, got.body, st.wantStatus, st.wantBody)
		}
	}
	if got := e.backend(t, "GET", "/users/"+u.ID+"/sessions?include_expired=true", ""); string(got.body) != `{"data":[],"has_more":false}` {
		t.Errorf("after revoke-all: %s", got.body)
	}
	all, err := e.s.SignIns(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range all {
		if si.RevokedAt.IsZero() {
			t.Errorf("sign-in %s not revoked", si.ID)
		}
		if si.ID == c.ID && !si.RevokedAt.Equal(epoch.Add(time.Second)) {
			t.Errorf("revoked_at = %v, want the clock's time", si.RevokedAt)
		}
	}
	if got := sessionIDs(t, e.backend(t, "GET", "/users/"+other.ID+"/sessions", "")); len(got) != 1 {
		t.Errorf("other user's sign-ins touched: %v", got)
	}
	if got := e.backend(t, "GET", revoke(u.ID, a.ID), ""); got.status != 405 {
		t.Errorf("GET on revoke = %d, want 405", got.status)
	}
	if _, err := e.s.AddSignIn("42", SignIn{}); err == nil {
		t.Error("AddSignIn for an unknown user succeeded")
	}
}

func TestSignOutAndSessionEventData(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	u := mustAddUser(t, e.s, User{FirstName: "Ada"})
	other := mustAddUser(t, e.s, User{FirstName: "Other"})
	a := mustAddSignIn(t, e.s, u.ID, SignIn{})
	e.clock.Advance(time.Second)
	b := mustAddSignIn(t, e.s, other.ID, SignIn{SessionID: a.SessionID})

	data, err := e.s.SessionEventData(a.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(data)
	for _, want := range []string{`"entity_id":` + a.SessionID + `,`, `"entity_type":"session"`, `"id":"` + a.SessionID + `"`,
		`"active_signin_id":"` + a.ID + `"`, `"user_id":"` + u.ID + `"`, `"user_id":"` + other.ID + `"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("session data %s lacks %s", raw, want)
		}
	}

	e.clock.Advance(time.Second)
	calls := e.s.Calls(RouteRevokeSession)
	got, err := e.s.SignOut(u.ID, a.ID)
	if err != nil || !got.RevokedAt.Equal(epoch.Add(2*time.Second)) {
		t.Fatalf("SignOut = %+v, %v; want revoked at the clock's time", got, err)
	}
	if e.s.Calls(RouteRevokeSession) != calls {
		t.Error("SignOut counted as a Backend API request")
	}
	if ids := sessionIDs(t, e.backend(t, "GET", "/users/"+u.ID+"/sessions", "")); len(ids) != 0 {
		t.Errorf("signed-out sign-in still listed: %v", ids)
	}
	data, err = e.s.SessionEventData(a.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(data)
	// Wacht's worker lists the sign-ins that are not deleted.
	if !strings.Contains(string(raw), `"active_signin_id":"`+b.ID+`"`) || strings.Contains(string(raw), `"id":"`+a.ID+`"`) ||
		!strings.Contains(string(raw), `"updated_at":"`+epoch.Add(2*time.Second).Format("2006-01-02T15:04:05Z")) {
		t.Errorf("after sign-out: %s, want the other sign-in active, the signed-out one gone and the session updated at the sign-out", raw)
	}
	if _, err := e.s.SignOut(u.ID, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("SignOut of another user's sign-in = %v, want ErrNotFound", err)
	}
	if _, err := e.s.SessionEventData("42"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SessionEventData unknown = %v, want ErrNotFound", err)
	}
}
