package wachtclient

import "strconv"

// MaxSlugBytes bounds an API-auth app slug.
const MaxSlugBytes = 64

// ParseID parses a Wacht id, a positive decimal 64-bit integer, as
// Wacht's own path extractor does, and returns it written the canonical
// way (no sign, no leading zero). Callers that key anything by an id
// compare the result with their input to refuse other spellings.
func ParseID(s string) (string, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return "", false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// ValidSlug reports whether slug can name an API-auth app: 1 to
// [MaxSlugBytes] lowercase letters, digits, '_' and '-', which keeps it
// a single path segment that needs no escaping.
func ValidSlug(slug string) bool {
	if slug == "" || len(slug) > MaxSlugBytes {
		return false
	}
	for i := range len(slug) {
		c := slug[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
