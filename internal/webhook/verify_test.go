package webhook_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/webhook"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"user.updated","timestamp":"2026-05-04T10:00:00.000Z","data":{"entity_id":1}}`)
	id := "msg_1"
	ts := unix(testNow)
	good := signature(testKey, id, ts, body)
	otherKey := []byte("another key of thirty-two bytes!")

	tests := []struct {
		name       string
		secret     []byte
		id, ts     string
		body       []byte
		signatures string
		now        time.Time
		want       error
	}{
		{name: "valid", signatures: good},
		{name: "valid_among_several", signatures: "v1a,AAAA v1,bm90IGl0 v2," + good[3:] + " " + good + " v1,Zm9v"},
		{name: "valid_with_extra_spaces", signatures: "  " + good + "  "},
		{name: "retry_an_hour_late", now: testNow.Add(time.Hour)},
		{name: "within_tolerance_future", now: testNow.Add(-5 * time.Minute)},
		{name: "wrong_secret", signatures: signature(otherKey, id, ts, body), want: webhook.ErrBadSignature},
		{name: "tampered_body", body: append(append([]byte(nil), body...), ' '), want: webhook.ErrBadSignature},
		{name: "tampered_id", id: "msg_2", want: webhook.ErrBadSignature},
		{name: "tampered_timestamp", ts: unix(testNow.Add(time.Second)), want: webhook.ErrBadSignature},
		{name: "not_base64", signatures: "v1,%%%not-base64%%%", want: webhook.ErrBadSignature},
		{name: "raw_hex_digest", signatures: "v1,0123456789abcdef", want: webhook.ErrBadSignature},
		{name: "no_version", signatures: good[3:], want: webhook.ErrBadSignature},
		{name: "v1a_only", signatures: "v1a," + good[3:], want: webhook.ErrBadSignature},
		{name: "v2_only", signatures: "v2," + good[3:], want: webhook.ErrBadSignature},
		{name: "empty_secret", secret: []byte{}, want: webhook.ErrBadSignature},
		{name: "missing_id", id: "-", want: webhook.ErrMissingHeaders},
		{name: "missing_timestamp", ts: "-", want: webhook.ErrMissingHeaders},
		{name: "missing_signature", signatures: "-", want: webhook.ErrMissingHeaders},
		{name: "blank_signature", signatures: "   ", want: webhook.ErrMissingHeaders},
		{name: "timestamp_not_integer", ts: "1778000000.5", want: webhook.ErrInvalidTimestamp},
		{name: "timestamp_rfc3339", ts: "2026-05-04T10:00:00Z", want: webhook.ErrInvalidTimestamp},
		{name: "stale_past", now: testNow.Add(time.Hour + time.Second), want: webhook.ErrStaleTimestamp},
		{name: "stale_future", now: testNow.Add(-5*time.Minute - time.Second), want: webhook.ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret, msgID, stamp, b, sigs, now := testKey, id, ts, body, good, testNow
			if tt.secret != nil {
				secret = tt.secret
			}
			if tt.id != "" {
				msgID = strings.TrimPrefix(tt.id, "-")
			}
			if tt.ts != "" {
				stamp = strings.TrimPrefix(tt.ts, "-")
			}
			if tt.body != nil {
				b = tt.body
			}
			if tt.signatures != "" {
				sigs = strings.TrimPrefix(tt.signatures, "-")
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			err := webhook.Verify(secret, msgID, stamp, b, sigs, now, time.Hour, 5*time.Minute)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeSecret(t *testing.T) {
	t.Parallel()
	key32 := base64.StdEncoding.EncodeToString(testKey)
	tests := []struct {
		name    string
		secret  string
		wantKey []byte
	}{
		{name: "wacht_format", secret: "whsec_" + key32, wantKey: testKey},
		{name: "surrounding_space", secret: " whsec_" + key32 + "\n", wantKey: testKey},
		{name: "no_prefix", secret: key32},
		{name: "other_prefix", secret: "sk_" + key32},
		{name: "url_alphabet", secret: "whsec_" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff\xfe0123456789abcdef0123456789abc"))},
		{name: "unpadded", secret: "whsec_" + base64.RawStdEncoding.EncodeToString(testKey)},
		{name: "too_short", secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("short key"))},
		{name: "prefix_only", secret: "whsec_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := webhook.DecodeSecret(tt.secret)
			if tt.wantKey == nil {
				if !errors.Is(err, webhook.ErrInvalidSecret) {
					t.Fatalf("DecodeSecret() error = %v, want ErrInvalidSecret", err)
				}
				if strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimSpace(tt.secret), "whsec_")) && tt.secret != "whsec_" {
					t.Errorf("error %q quotes the secret", err)
				}
				return
			}
			if err != nil || string(key) != string(tt.wantKey) {
				t.Fatalf("DecodeSecret() = %q, %v; want the key", key, err)
			}
		})
	}
}
