package wachtclient

import (
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxSlugBytes bounds an app slug taken into a path.
const maxSlugBytes = 255

// idSegment validates a numeric Wacht id (Wacht parses path ids as i64 and
// answers 400 otherwise) and returns it ready for a path.
func idSegment(field, id string) (string, error) {
	if id == "" || id[0] < '0' || id[0] > '9' {
		return "", invalidInput("%s must be a decimal id", field)
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return "", invalidInput("%s must be a decimal id", field)
	}
	return id, nil
}

// slugSegment validates an app slug and returns it escaped for a path.
func slugSegment(slug string) (string, error) {
	if slug == "" || len(slug) > maxSlugBytes || !utf8.ValidString(slug) {
		return "", invalidInput("app slug must be 1 to %d bytes of UTF-8", maxSlugBytes)
	}
	for _, r := range slug {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return "", invalidInput("app slug must not contain spaces or control characters")
		}
	}
	if slug == "." || slug == ".." {
		return "", invalidInput("app slug must not be a dot segment")
	}
	return url.PathEscape(slug), nil
}
