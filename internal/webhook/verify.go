package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by [Verify] and [NewHandler]; test with errors.Is. None
// of them carries the secret or the signatures.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is missing or empty.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	// ErrInvalidTimestamp: webhook-timestamp is not an integer number of
	// Unix seconds.
	ErrInvalidTimestamp = errors.New("webhook: webhook-timestamp is not Unix seconds")
	// ErrBadSignature: no v1 entry of webhook-signature is the HMAC of the
	// message under the secret.
	ErrBadSignature = errors.New("webhook: no valid signature")
	// ErrStaleTimestamp: the signature is valid but webhook-timestamp is
	// older than the maximum age or further in the future than the
	// tolerance.
	ErrStaleTimestamp = errors.New("webhook: timestamp too old or in the future")
	// ErrInvalidSecret: the signing secret is not "whsec_" followed by the
	// standard base64 of at least 24 bytes.
	ErrInvalidSecret = errors.New("webhook: signing secret must be whsec_ and the standard base64 of 24 bytes or more")
)

// secretPrefix starts every Standard Webhooks signing secret.
const secretPrefix = "whsec_"

// minSecretBytes is the shortest key the Standard Webhooks specification
// allows; Wacht's keys have 32 bytes.
const minSecretBytes = 24

// DecodeSecret returns the HMAC key of a signing secret "whsec_<base64>":
// the prefix is required and the rest is standard, padded base64. Its
// error never quotes the secret.
func DecodeSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(secret), secretPrefix)
	if !ok {
		return nil, ErrInvalidSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) < minSecretBytes {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

// Verify checks a Standard Webhooks delivery: secret is the decoded key
// (see [DecodeSecret]), id, timestamp and signatures are the values of the
// webhook-id, webhook-timestamp and webhook-signature headers, and body is
// the raw request body. It accepts the message when any space-separated
// "v1,<base64>" entry equals HMAC-SHA256(secret, id.timestamp.body),
// compared in constant time; entries of other versions, such as the
// asymmetric "v1a", are ignored. The signature is checked before the
// timestamp, so that a forged message is always reported as
// [ErrBadSignature]; an authentic one is then refused with
// [ErrStaleTimestamp] when its timestamp is more than maxAge before now
// or more than future after it. Other errors are [ErrMissingHeaders] and
// [ErrInvalidTimestamp].
func Verify(secret []byte, id, timestamp string, body []byte, signatures string, now time.Time, maxAge, future time.Duration) error {
	if id == "" || timestamp == "" || strings.TrimSpace(signatures) == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if len(secret) == 0 {
		// An empty HMAC key is a key anyone can use.
		return fmt.Errorf("%w: no secret", ErrBadSignature)
	}
	if !signatureMatches(secret, id, timestamp, body, signatures) {
		return ErrBadSignature
	}
	nowUnix := now.Unix()
	if ts < nowUnix-int64(max(maxAge, 0)/time.Second) || ts > nowUnix+int64(max(future, 0)/time.Second) {
		return ErrStaleTimestamp
	}
	return nil
}

// signatureMatches reports whether one v1 entry of signatures is the
// message's HMAC.
func signatureMatches(secret []byte, id, timestamp string, body []byte, signatures string) bool {
	want := sign(secret, id, timestamp, body)
	for _, entry := range strings.Fields(signatures) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// sign returns HMAC-SHA256(secret, id + "." + timestamp + "." + body).
func sign(secret []byte, id, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}
