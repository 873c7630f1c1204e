package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/webhook"
)

// TestHandlerRefuses checks that nothing is invalidated or recorded for a
// request that is not an authentic, fresh, well-formed delivery.
func TestHandlerRefuses(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	dedupe := webhook.NewPostgresDeduper(pool, 0)
	body := envelope("user.updated", `{"entity_id":42,"entity_type":"user","id":"42"}`)
	otherKey := []byte("another key of thirty-two bytes!")
	// Far more than any delivery of Wacht's, though under a MiB.
	padded := envelope("user.updated", `{"entity_id":42,"pad":"`+strings.Repeat("x", 300<<10)+`"}`)
	big := envelope("user.updated", `{"entity_id":42,"pad":"`+strings.Repeat("x", webhook.DefaultMaxBodyBytes)+`"}`)

	tests := []struct {
		name        string
		d           func(id string) delivery
		wantStatus  int
		wantOutcome string
	}{
		{
			name:       "get",
			d:          func(id string) delivery { d := signed(id, body); d.method = http.MethodGet; return d },
			wantStatus: http.StatusMethodNotAllowed, wantOutcome: webhook.OutcomeMethodNotAllowed,
		},
		{
			name:       "missing_id",
			d:          func(id string) delivery { d := signed(id, body); d.id = ""; return d },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeMissingHeaders,
		},
		{
			name:       "missing_timestamp",
			d:          func(id string) delivery { d := signed(id, body); d.timestamp = ""; return d },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeMissingHeaders,
		},
		{
			name:       "missing_signature",
			d:          func(id string) delivery { d := signed(id, body); d.signature = ""; return d },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeMissingHeaders,
		},
		{
			name: "wrong_secret",
			d: func(id string) delivery {
				d := signed(id, body)
				d.signature = signature(otherKey, id, d.timestamp, body)
				return d
			},
			wantStatus: http.StatusUnauthorized, wantOutcome: webhook.OutcomeBadSignature,
		},
		{
			name: "tampered_body",
			d: func(id string) delivery {
				d := signed(id, body)
				d.body = bytes.Replace(body, []byte("42"), []byte("43"), -1)
				return d
			},
			wantStatus: http.StatusUnauthorized, wantOutcome: webhook.OutcomeBadSignature,
		},
		{
			name:       "tampered_id",
			d:          func(id string) delivery { d := signed(id+"x", body); d.id = id; return d },
			wantStatus: http.StatusUnauthorized, wantOutcome: webhook.OutcomeBadSignature,
		},
		{
			name:       "signature_not_base64",
			d:          func(id string) delivery { d := signed(id, body); d.signature = "v1,***"; return d },
			wantStatus: http.StatusUnauthorized, wantOutcome: webhook.OutcomeBadSignature,
		},
		{
			name: "v1a_only",
			d: func(id string) delivery {
				d := signed(id, body)
				d.signature = "v1a," + strings.TrimPrefix(d.signature, "v1,")
				return d
			},
			wantStatus: http.StatusUnauthorized, wantOutcome: webhook.OutcomeBadSignature,
		},
		{
			name: "stale_past",
			d: func(id string) delivery {
				d := signed(id, body)
				d.timestamp = unix(testNow.Add(-webhook.DefaultRetention - time.Second))
				d.signature = signature(testKey, id, d.timestamp, body)
				return d
			},
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeStaleTimestamp,
		},
		{
			name: "stale_future",
			d: func(id string) delivery {
				d := signed(id, body)
				d.timestamp = unix(testNow.Add(6 * time.Minute))
				d.signature = signature(testKey, id, d.timestamp, body)
				return d
			},
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeStaleTimestamp,
		},
		{
			name: "timestamp_in_milliseconds",
			d: func(id string) delivery {
				d := signed(id, body)
				d.timestamp = fmt.Sprint(testNow.UnixMilli())
				d.signature = signature(testKey, id, d.timestamp, body)
				return d
			},
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeStaleTimestamp,
		},
		{
			name: "timestamp_not_a_number",
			d: func(id string) delivery {
				d := signed(id, body)
				d.timestamp = "yesterday"
				d.signature = signature(testKey, id, d.timestamp, body)
				return d
			},
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeInvalidTimestamp,
		},
		{
			name:       "too_large",
			d:          func(id string) delivery { return signed(id, big) },
			wantStatus: http.StatusRequestEntityTooLarge, wantOutcome: webhook.OutcomeTooLarge,
		},
		{
			name:       "larger_than_wacht_sends",
			d:          func(id string) delivery { return signed(id, padded) },
			wantStatus: http.StatusRequestEntityTooLarge, wantOutcome: webhook.OutcomeTooLarge,
		},
		{
			name:       "too_large_without_length",
			d:          func(id string) delivery { d := signed(id, big); d.unknownLength = true; return d },
			wantStatus: http.StatusRequestEntityTooLarge, wantOutcome: webhook.OutcomeTooLarge,
		},
		{
			name:       "not_json",
			d:          func(id string) delivery { return signed(id, []byte("user.updated 42")) },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeBadPayload,
		},
		{
			name:       "no_type",
			d:          func(id string) delivery { return signed(id, []byte(`{"data":{"entity_id":42}}`)) },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeBadPayload,
		},
		{
			name:       "data_not_object",
			d:          func(id string) delivery { return signed(id, envelope("user.updated", `[42]`)) },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeBadPayload,
		},
		{
			name:       "body_is_array",
			d:          func(id string) delivery { return signed(id, []byte(`[]`)) },
			wantStatus: http.StatusBadRequest, wantOutcome: webhook.OutcomeBadPayload,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, obs := &recorder{}, &observations{}
			h := newHandler(t, inv, dedupe, obs)
			id := "msg_" + tt.name
			w := serve(h, tt.d(id))
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", w.Code, tt.wantStatus, w.Body)
			}
			if diff := cmp.Diff(observation{webhook.EventTypeOther, tt.wantOutcome}, obs.last()); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
			if calls := inv.Calls(); len(calls) != 0 {
				t.Errorf("invalidator called: %v", calls)
			}
			var rows int
			if err := pool.QueryRow(t.Context(), `select count(*) from webhook_deliveries`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Errorf("%d deliveries recorded, want none", rows)
			}
		})
	}
}
