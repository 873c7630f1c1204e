package rotation

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Limits on Request fields.
const (
	// MaxReasonLength is the longest Reason, in characters.
	MaxReasonLength = 500
	// MaxCallerLength is the longest Caller, in characters.
	MaxCallerLength = 200
)

// Request asks for one key to be rotated.
type Request struct {
	// Caller names who asked, for the audit log; required.
	Caller string
	// AppSlug is the key's API-auth app (see [wachtclient.ValidSlug]).
	AppSlug string
	// KeyID is the key to replace, a Wacht id (see [wachtclient.ValidID]).
	KeyID string
	// Reason is kept in the audit log; at most [MaxReasonLength]
	// characters.
	Reason string
	// Grace is how long the old key keeps working. Zero uses Wacht's own
	// rotate, which revokes the old key at once; otherwise it must not be
	// longer than Config.MaxGrace.
	Grace time.Duration
}

// validate checks r and returns the key id in canonical form.
func (r Request) validate(maxGrace time.Duration) (string, error) {
	if r.Caller == "" {
		return "", invalid("caller", "is required")
	}
	if err := validText("caller", r.Caller, MaxCallerLength, false); err != nil {
		return "", err
	}
	if err := validSlug("app_slug", r.AppSlug); err != nil {
		return "", err
	}
	keyID, err := canonicalID("key_id", r.KeyID)
	if err != nil {
		return "", err
	}
	if r.Grace < 0 || r.Grace > maxGrace {
		return "", invalid("grace_period", "must be between 0 and %s, got %s", maxGrace, r.Grace)
	}
	if err := validText("reason", r.Reason, MaxReasonLength, true); err != nil {
		return "", err
	}
	return keyID, nil
}

// validSlug checks a Wacht app slug.
func validSlug(field, s string) error {
	if !wachtclient.ValidSlug(s) {
		return invalid(field, "must be 1 to %d lowercase letters, digits, '_' or '-'", wachtclient.MaxSlugBytes)
	}
	return nil
}

// canonicalID parses a Wacht id and returns it in canonical form, so that
// "007" and "7" rotate the same key under one audit record.
func canonicalID(field, s string) (string, error) {
	id, ok := wachtclient.ParseID(s)
	if !ok {
		return "", invalid(field, "must be a Wacht id (a positive decimal number)")
	}
	return id, nil
}

// validText checks that s is UTF-8 of at most max characters without
// control characters; multiline allows newlines and tabs.
func validText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalid(field, "must be at most %d characters, got %d", max, n)
	}
	for _, c := range s {
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t')) {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}
