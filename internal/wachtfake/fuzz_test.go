package wachtfake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzServeHTTP checks that no request makes the handler panic or answer
// outside the statuses Wacht uses.
func FuzzServeHTTP(f *testing.F) {
	seeds := []struct{ method, path, body string }{
		{"GET", "/users?limit=99999999999&offset=-1&sort_key=email", ""},
		{"GET", "/users/%00/details", ""},
		{"POST", "/users/1/sessions/2/revoke", "{"},
		{"POST", "/api-auth/apps/orders-api/keys", `{"name":"x","metadata":{"a":[1,{"b":null}]},"permissions":[null]}`},
		{"POST", "/api-auth/apps/orders-api/keys/1/revoke", `{"reason":null,"key_id":{"x":1}}`},
		{"POST", "/api-auth/apps/orders-api/keys/9223372036854775807/rotate", ""},
		{"POST", "/v1/authz/check", `{"principal":{"type":"api_key","value":"` + strings.Repeat("a", 50) + `"},"resource":"#","method":"get","required_permissions":["(a OR b"]}`},
		{"POST", "/v1/authz/check", `{"principal":null,"resource":1,"method":[]}`},
		{"GET", "/.well-known/jwks.json", ""},
		{"DELETE", "/", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	s, err := New(Options{Issuer: "http://fapi.test"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.SeedDemo(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://wacht.test"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+s.APIKey())
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 404, 405, 413, 415, 422, 429:
		default:
			t.Errorf("%s %s %q = %d %s", method, path, body, rec.Code, rec.Body)
		}
	})
}
