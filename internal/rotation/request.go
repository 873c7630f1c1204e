package rotation

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on Request fields.
const (
	// MaxReasonLength is the longest Reason, in characters.
	MaxReasonLength = 500
	// MaxCallerLength is the longest Caller, in characters.
	MaxCallerLength = 200
	// maxSlugLength is the longest Wacht app slug.
	maxSlugLength = 64
)

// Request asks for one key to be rotated.
type Request struct {
	// Caller names who asked, for the audit log; required.
	Caller string
	// AppSlug is the key's API-auth app: 1 to 64 lowercase letters,
	// digits, '_' and '-'.
	AppSlug string
	// KeyID is the key to replace, a positive decimal id.
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
	ok := s != "" && len(s) <= maxSlugLength
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return invalid(field, "must be 1 to %d lowercase letters, digits, '_' or '-'", maxSlugLength)
	}
	return nil
}

// canonicalID parses a positive decimal int64 id and returns it without
// leading zeros.
func canonicalID(field, s string) (string, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || s[0] < '0' || s[0] > '9' {
		return "", invalid(field, "must be a positive decimal id")
	}
	return strconv.FormatInt(n, 10), nil
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
