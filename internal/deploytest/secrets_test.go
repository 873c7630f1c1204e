package deploytest

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// wachtSecretKey matches a Wacht secret key: sk_ and base64url.
var wachtSecretKey = regexp.MustCompile(`(^|[^A-Za-z0-9])sk_[A-Za-z0-9_-]{20,}`)

// urlPattern matches a URL within a longer value.
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"']+`)

// looksSecret reports whether v looks like a credential rather than
// configuration: a Wacht secret key or webhook signing secret, a URL with
// a password, or a PEM private key.
func looksSecret(v string) bool {
	switch {
	case strings.Contains(v, "whsec_"):
		return true
	case wachtSecretKey.MatchString(v):
		return true
	case strings.Contains(v, "PRIVATE KEY-----"):
		return true
	}
	for _, raw := range urlPattern.FindAllString(v, -1) {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			continue
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
	}
	return false
}

func TestLooksSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    string
		want bool
	}{
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"sk_0Zc8lI3p-zAQxK1r8k5dF7mN2bV9wE4yT6uH1jS0aLq", true},
		{"Bearer sk_0Zc8lI3p-zAQxK1r8k5dF7mN2bV9wE4yT6uH1jS0aLq", true},
		{"postgres://authsvc:hunter2@db:5432/authsvc", true},
		{"host=db dsn=postgres://u:p@db/authsvc", true},
		{"-----BEGIN EC PRIVATE KEY-----", true},
		{"postgres://authsvc@db:5432/authsvc", false},
		{"https://api.wacht.dev", false},
		{"pk_live_ZnJvbnRlbmQuZXhhbXBsZS5jb20", false},
		{"/etc/authsvc/secrets/WACHT_API_KEY", false},
		{"task_queue", false},
		{"0.0.0.0:8080", false},
		{"24h", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := looksSecret(tt.v); got != tt.want {
			t.Errorf("looksSecret(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
