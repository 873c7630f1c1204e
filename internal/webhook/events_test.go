package webhook_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/webhook"
)

// envelope returns a body as Wacht's worker sends it.
func envelope(eventType, data string) []byte {
	return []byte(`{"type":"` + eventType + `","timestamp":"2026-05-04T10:00:00.000Z","data":` + data + `}`)
}

func TestHandlerEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		eventType   string
		data        string
		want        []call
		wantOutcome string
	}{
		{
			name: "entity_id_big_number", eventType: "user.updated",
			data: `{"entity_id":24239923154394947,"entity_type":"user","id":"24239923154394947","first_name":"Ada"}`,
			want: []call{{"UserChanged", "24239923154394947"}},
		},
		{
			name: "entity_id_beyond_float_precision", eventType: "user.updated",
			data: `{"entity_id":9007199254740993,"entity_type":"user"}`,
			want: []call{{"UserChanged", "9007199254740993"}},
		},
		{
			name: "entity_id_string", eventType: "user.updated",
			data: `{"entity_id":"24239923154394947","entity_type":"user"}`,
			want: []call{{"UserChanged", "24239923154394947"}},
		},
		{
			name: "user_details_only", eventType: "user.updated",
			data: `{"id":"77","first_name":"Ada","email_addresses":[{"id":"78","user_id":"77"}]}`,
			want: []call{{"UserChanged", "77"}},
		},
		{
			name: "entity_id_not_an_integer", eventType: "user.updated",
			data: `{"entity_id":1.5e3,"entity_type":"user","id":"1500"}`,
			want: []call{{"UserChanged", "1500"}},
		},
		{
			name: "entity_type_of_wrong_type", eventType: "user.updated",
			data: `{"entity_id":5,"entity_type":7}`,
			want: []call{{"UserChanged", "5"}},
		},
		{
			name: "user_created", eventType: "user.created",
			data: `{"entity_id":101,"entity_type":"user","id":"101"}`,
			want: []call{{"UserChanged", "101"}},
		},
		{
			name: "user_deleted", eventType: "user.deleted",
			data: `{"entity_id":24239923154394947,"entity_type":"user"}`,
			want: []call{{"UserDeleted", "24239923154394947"}},
		},
		{
			name: "email_added", eventType: "user.email.added",
			data: `{"entity_id":201,"entity_type":"user_email","id":"201","email_addresses":[{"id":"900","user_id":"201"}]}`,
			want: []call{{"UserChanged", "201"}},
		},
		{
			name: "email_removed", eventType: "user.email.removed",
			data: `{"entity_id":"202","entity_type":"user_email","id":"202"}`,
			want: []call{{"UserChanged", "202"}},
		},
		{
			name: "email_verified", eventType: "user.email.verified",
			data: `{"entity_type":"user_email","id":"203"}`,
			want: []call{{"UserChanged", "203"}},
		},
		{
			name: "phone_added", eventType: "user.phone.added",
			data: `{"entity_id":301,"entity_type":"user_phone","id":"301"}`,
			want: []call{{"UserChanged", "301"}},
		},
		{
			name: "phone_removed", eventType: "user.phone.removed",
			data: `{"entity_id":302,"entity_type":"user_phone","id":"302"}`,
			want: []call{{"UserChanged", "302"}},
		},
		{
			name: "phone_verified", eventType: "user.phone.verified",
			data: `{"entity_id":303,"entity_type":"user_phone","id":"303"}`,
			want: []call{{"UserChanged", "303"}},
		},
		{
			name: "password_updated", eventType: "user.password.updated",
			data: `{"entity_id":401,"entity_type":"user","id":"401"}`,
			want: []call{{"UserChanged", "401"}},
		},
		{
			name: "mfa_enabled", eventType: "user.mfa.enabled",
			data: `{"entity_id":501,"entity_type":"user_authenticator","id":"9001","user_id":"501"}`,
			want: []call{{"UserChanged", "501"}},
		},
		{
			name: "mfa_disabled_user_id_only", eventType: "user.mfa.disabled",
			data: `{"entity_type":"user_authenticator","id":"9002","user_id":502}`,
			want: []call{{"UserChanged", "502"}},
		},
		{
			name: "user_event_of_foreign_entity", eventType: "user.updated",
			data:        `{"entity_id":601,"entity_type":"organization","id":"601"}`,
			wantOutcome: webhook.OutcomeNoUserID,
		},
		{
			name: "user_event_without_data", eventType: "user.updated",
			data: `null`, wantOutcome: webhook.OutcomeNoUserID,
		},
		{
			name: "session_created", eventType: "session.created",
			data: `{"entity_id":3001,"entity_type":"session","id":"3001","active_signin_id":"4002",` +
				`"signins":[{"id":"4001","user_id":"11"},{"id":"4002","user_id":"12"},{"id":"4003","user_id":"11"}]}`,
			want: []call{{"SessionChanged", "12"}, {"SessionChanged", "11"}},
		},
		{
			name: "session_deleted_user_id", eventType: "session.deleted",
			data: `{"entity_id":3002,"entity_type":"session","user_id":"13","signins":[]}`,
			want: []call{{"SessionChanged", "13"}},
		},
		{
			name: "session_signin_user_id_number", eventType: "session.deleted",
			data: `{"entity_id":3003,"entity_type":"session","active_signin_id":null,"signins":[{"id":"4004","user_id":24239923154394947}]}`,
			want: []call{{"SessionChanged", "24239923154394947"}},
		},
		{
			name: "session_expired_without_user", eventType: "session.expired",
			data: `{"entity_id":3004,"entity_type":"session","id":"3004","active_signin_id":null,"signins":[]}`,
			want: []call{{"SessionChanged", ""}},
		},
		{
			name: "session_without_data", eventType: "session.deleted",
			want: []call{{"SessionChanged", ""}},
		},
		{
			name: "organization_event", eventType: "organization.created",
			data: `{"entity_id":701,"entity_type":"organization","id":"701"}`, wantOutcome: webhook.OutcomeIgnored,
		},
		{
			name: "internal_event", eventType: "agent.model.usage",
			data: `{"model":"m","user_id":"11"}`, wantOutcome: webhook.OutcomeIgnored,
		},
		{
			name: "session_revoked_is_not_a_wacht_event", eventType: "session.revoked",
			data: `{"user_id":"11"}`, wantOutcome: webhook.OutcomeIgnored,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv, obs := &recorder{}, &observations{}
			dedupe := webhook.NewMemoryDeduper(0, 0)
			h := newHandler(t, inv, dedupe, obs)
			data := tt.data
			if data == "" {
				data = "null"
			}
			w := serve(h, signed("msg_"+tt.name, envelope(tt.eventType, data)))
			if w.Code != http.StatusOK || w.Body.String() != "{}" {
				t.Errorf("response = %d %q, want 200 {}", w.Code, w.Body)
			}
			if diff := cmp.Diff(tt.want, inv.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			wantOutcome, wantLabel := tt.wantOutcome, tt.eventType
			if wantOutcome == "" {
				wantOutcome = webhook.OutcomeHandled
			}
			if wantOutcome == webhook.OutcomeIgnored {
				wantLabel = webhook.EventTypeOther
			}
			if diff := cmp.Diff(observation{wantLabel, wantOutcome}, obs.last()); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
			seen, err := dedupe.Seen(t.Context(), "msg_"+tt.name)
			if err != nil || !seen {
				t.Errorf("Seen() = %v, %v; want the delivery recorded", seen, err)
			}
		})
	}
}
