package webhook

import (
	"encoding/json"
	"strings"
	"testing"

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
			want: event{Type: "session.created", Data: eventData{
				EntityID: "3001", EntityType: "session", ID: "3001", ActiveSigninID: "4002",
				Signins: []signin{{ID: "4002", UserID: "12"}},
			}},
		},
		{
			name: "fields_of_wrong_type_are_skipped",
			body: `{"type":"user.updated","data":{"entity_id":5,"entity_type":["user"],"signins":{"id":"1"},"user_id":"6"}}`,
			want: event{Type: "user.updated", Data: eventData{EntityID: "5", UserID: "6"}},
		},
		{name: "no_data", body: `{"type":"user.updated"}`, want: event{Type: "user.updated"}},
		{name: "empty_type_is_a_type", body: `{"type":"","data":{}}`, want: event{}},
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
	for _, eventType := range EventTypes() {
		if got := eventLabel(eventType); got != eventType {
			t.Errorf("eventLabel(%q) = %q", eventType, got)
		}
		if actionFor(eventType) == actionNone {
			t.Errorf("EventTypes() lists %q, which has no action", eventType)
		}
	}
	for _, eventType := range []string{"", "organization.created", "user", "user.updated ", "USER.UPDATED", "session.revoked"} {
		if got := eventLabel(eventType); got != EventTypeOther {
			t.Errorf("eventLabel(%q) = %q, want %q", eventType, got, EventTypeOther)
		}
	}
}
