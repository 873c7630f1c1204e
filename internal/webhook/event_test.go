package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWachtID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string
		want wachtID
	}{
		{`24239923154394947`, "24239923154394947"},
		{`9223372036854775807`, "9223372036854775807"},
		{`"24239923154394947"`, "24239923154394947"},
		{`"user_2abc"`, "user_2abc"},
		{`0`, "0"},
		{`-5`, ""},
		{`1.5`, ""},
		{`1e3`, ""},
		{`null`, ""},
		{`true`, ""},
		{`{}`, ""},
		{`[1]`, ""},
		{`""`, ""},
		{`"a b"`, ""},
		{`"a\nb"`, ""},
		{`"` + strings.Repeat("1", maxIDBytes+1) + `"`, ""},
		{strings.Repeat("1", maxIDBytes+1), ""},
	}
	for _, tt := range tests {
		var got struct {
			ID wachtID `json:"id"`
		}
		if err := json.Unmarshal([]byte(`{"id":`+tt.json+`}`), &got); err != nil {
			t.Errorf("unmarshal %s: %v", tt.json, err)
			continue
		}
		if got.ID != tt.want {
			t.Errorf("unmarshal %s = %q, want %q", tt.json, got.ID, tt.want)
		}
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    event
		wantErr bool
	}{
		{
			name: "session",
			body: `{"type":"session.created","timestamp":"2026-05-04T10:00:00.000Z","data":{"entity_id":3001,"entity_type":"session",` +
				`"id":"3001","active_signin_id":"4002","signins":[{"id":"4002","user_id":"12","session_id":"3001"}]}}`,
			want: event{Type: "session.created", Timestamp: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), Data: eventData{
				EntityID: "3001", EntityType: "session", ID: "3001", ActiveSigninID: "4002",
				Signins: []signin{{ID: "4002", UserID: "12"}},
			}, Raw: json.RawMessage(`{"entity_id":3001,"entity_type":"session",` +
				`"id":"3001","active_signin_id":"4002","signins":[{"id":"4002","user_id":"12","session_id":"3001"}]}`)},
		},
		{
			name: "timestamp_not_rfc3339_is_zero",
			body: `{"type":"user.updated","timestamp":"yesterday","data":null}`,
			want: event{Type: "user.updated"},
		},
		{
			name: "fields_of_wrong_type_are_skipped",
			body: `{"type":"user.updated","data":{"entity_id":5,"entity_type":["user"],"signins":{"id":"1"},"user_id":"6"}}`,
			want: event{Type: "user.updated", Data: eventData{EntityID: "5", UserID: "6"},
				Raw: json.RawMessage(`{"entity_id":5,"entity_type":["user"],"signins":{"id":"1"},"user_id":"6"}`)},
		},
		{name: "no_data", body: `{"type":"user.updated"}`, want: event{Type: "user.updated"}},
		{name: "empty_type_is_a_type", body: `{"type":"","data":{}}`, want: event{Raw: json.RawMessage(`{}`)}},
		{name: "type_not_string", body: `{"type":1,"data":{}}`, wantErr: true},
		{name: "no_type", body: `{"data":{}}`, wantErr: true},
		{name: "data_string", body: `{"type":"user.updated","data":"42"}`, wantErr: true},
		{name: "truncated", body: `{"type":"user.updated","data":{"entity_id":4`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEvent([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseEvent() error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseEvent() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventLabel(t *testing.T) {
	t.Parallel()
	for eventType := range eventActions {
		if got := eventLabel(eventType); got != eventType {
			t.Errorf("eventLabel(%q) = %q", eventType, got)
		}
		if actionFor(eventType) == actionNone {
			t.Errorf("eventActions lists %q with no action", eventType)
		}
	}
	for _, eventType := range []string{"", "organization.created", "user", "user.updated ", "USER.UPDATED", "session.revoked"} {
		if got := eventLabel(eventType); got != EventTypeOther {
			t.Errorf("eventLabel(%q) = %q, want %q", eventType, got, EventTypeOther)
		}
	}
}

func TestPayloadEntities(t *testing.T) {
	t.Parallel()
	const details = `"id":"77","created_at":"2026-05-04T09:00:00Z","updated_at":"2026-05-04T09:30:00.123456Z",` +
		`"first_name":"Ada","last_name":"Lovelace","email_addresses":[],"phone_numbers":[]`
	updated := time.Date(2026, 5, 4, 9, 30, 0, 123456000, time.UTC)
	users := []struct {
		name        string
		eventType   string
		data        string
		wantUpdated time.Time // zero: no details taken
	}{
		{"whole_details", "user.updated", `{"entity_id":77,"entity_type":"user",` + details + `}`, updated},
		{"email_entity", "user.email.added", `{"entity_id":77,"entity_type":"user_email",` + details + `}`, updated},
		{"without_entity_type", "user.created", `{` + details + `}`, updated},
		{"partial", "user.updated", `{"entity_id":77,"entity_type":"user","id":"77","first_name":"Ada","updated_at":"2026-05-04T09:30:00Z"}`, time.Time{}},
		{"another_users_details", "user.updated", `{"entity_id":78,"entity_type":"user",` + details + `}`, time.Time{}},
		{"authenticator", "user.mfa.enabled", `{"entity_id":77,"entity_type":"user_authenticator","user_id":"77",` + details + `}`, time.Time{}},
		{"null_field", "user.updated", `{"entity_id":77,"entity_type":"user",` + details + `,"email_addresses":null}`, time.Time{}},
		{"malformed_field", "user.updated", `{"entity_id":77,"entity_type":"user",` + details + `,"disabled":"no"}`, time.Time{}},
	}
	for _, tt := range users {
		ev, err := parseEvent([]byte(`{"type":"` + tt.eventType + `","timestamp":"2026-05-04T10:00:00.000Z","data":` + tt.data + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		u := userDetailsOf(ev, userIDOf(ev.Data))
		switch {
		case tt.wantUpdated.IsZero() && u != nil:
			t.Errorf("%s: took %+v for the user's details, want none", tt.name, u)
		case !tt.wantUpdated.IsZero() && (u == nil || !u.UpdatedAt.Equal(tt.wantUpdated) || u.FirstName != "Ada"):
			t.Errorf("%s: details %+v, want Ada updated at %v", tt.name, u, tt.wantUpdated)
		}
	}

	const signIn = `{"id":"4001","session_id":"3001","user_id":"11","created_at":"2026-05-04T09:00:00Z",` +
		`"updated_at":"2026-05-04T09:00:00Z","expires_at":"2026-05-11T09:00:00Z","last_active_at":"2026-05-04T09:00:00Z"}`
	sessions := []struct {
		name         string
		data         string
		wantSession  string
		wantComplete bool
		wantSignIns  int
	}{
		{"complete", `{"entity_id":3001,"entity_type":"session","id":"3001","updated_at":"2026-05-04T09:59:00Z","signins":[` + signIn + `]}`, "3001", true, 1},
		{"no_sign_in_left", `{"entity_id":3001,"entity_type":"session","id":"3001","signins":[]}`, "3001", true, 0},
		{"entity_id_only", `{"entity_id":3001,"entity_type":"session","signins":[` + signIn + `]}`, "3001", true, 1},
		{"no_sign_in_list", `{"entity_id":3001,"entity_type":"session","id":"3001"}`, "3001", false, 0},
		{"sign_in_of_another_session", `{"entity_id":3002,"entity_type":"session","id":"3002","signins":[` + signIn + `]}`, "3002", false, 0},
		{"not_a_session", `{"entity_id":3001,"entity_type":"organization","id":"3001","signins":[]}`, "", false, 0},
	}
	for _, tt := range sessions {
		ev, err := parseEvent([]byte(`{"type":"session.deleted","timestamp":"2026-05-04T10:00:00.000Z","data":` + tt.data + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		sev := sessionEventOf(ev)
		if sev.SessionID != tt.wantSession || sev.Complete != tt.wantComplete || len(sev.SignIns) != tt.wantSignIns ||
			!sev.Timestamp.Equal(time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: session %q complete %v with %d sign-ins at %v; want %q %v %d", tt.name,
				sev.SessionID, sev.Complete, len(sev.SignIns), sev.Timestamp, tt.wantSession, tt.wantComplete, tt.wantSignIns)
		}
	}
}
