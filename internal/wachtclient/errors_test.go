package wachtclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var allSentinels = []error{
	ErrNotFound, ErrUnauthorized, ErrForbidden, ErrRateLimited, ErrBadRequest, ErrConflict,
	ErrUnavailable, ErrOutcomeUnknown, ErrInvalidResponse, ErrNotConfigured,
}

// checkSentinels fails unless err matches exactly the sentinels in want.
func checkSentinels(t *testing.T, err error, want ...error) {
	t.Helper()
	for _, s := range allSentinels {
		if got, wantIt := errors.Is(err, s), containsErr(want, s); got != wantIt {
			t.Errorf("errors.Is(%v, %v) = %t, want %t", err, s, got, wantIt)
		}
	}
}

func containsErr(list []error, e error) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		status        int
		contentType   string
		body          string
		gateway       bool
		wantSentinels []error
		wantMessage   string
		wantTransient bool
	}{
		{"json_400", 400, "application/json", `{"errors":[{"message":"Invalid user id","code":400}]}`, false, []error{ErrBadRequest}, "Invalid user id", false},
		{"json_401", 401, "application/json", `{"errors":[{"message":"Authentication failed","code":401}]}`, false, []error{ErrUnauthorized}, "Authentication failed", false},
		{"json_403", 403, "application/json", `{"errors":[{"message":"Permission denied for this resource","code":403}]}`, false, []error{ErrForbidden}, "Permission denied for this resource", false},
		{"json_404", 404, "application/json", `{"errors":[{"message":"Resource not found","code":404}]}`, false, []error{ErrNotFound}, "Resource not found", false},
		{"json_409", 409, "application/json", `{"errors":[{"message":"Resource already exists","code":409}]}`, false, []error{ErrConflict}, "Resource already exists", false},
		{"json_422", 422, "application/json", `{"errors":[{"message":"Invalid request payload","code":422}]}`, false, []error{ErrBadRequest}, "Invalid request payload", false},
		{"json_429", 429, "application/json", `{"errors":[{"message":"Rate limit exceeded","code":429}]}`, false, []error{ErrRateLimited}, "Rate limit exceeded", true},
		{"json_500", 500, "application/json", `{"errors":[{"message":"Something went wrong","code":500}]}`, false, []error{ErrUnavailable}, "Something went wrong", true},
		{"json_504", 504, "application/json", `{"errors":[{"message":"Operation timed out","code":504}]}`, false, []error{ErrUnavailable}, "Operation timed out", true},
		{"json_two_errors", 400, "application/json", `{"errors":[{"message":"a","code":400},{"message":"b","code":400}]}`, false, []error{ErrBadRequest}, "a; b", false},
		{"gateway_plain_text_401", 401, "text/plain; charset=utf-8", "Invalid API key", true, []error{ErrUnauthorized}, "Invalid API key", false},
		{"html_502", 502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", false, []error{ErrUnavailable}, "Bad Gateway", true},
		{"empty_503", 503, "", "", false, []error{ErrUnavailable}, "Service Unavailable", true},
		{"json_without_errors_405", 405, "application/json", `{"message":"nope"}`, false, nil, "Method Not Allowed", false},
		{"unknown_status", 599, "", "", false, []error{ErrUnavailable}, "Request failed", true},
		{"control_chars_in_text", 400, "text/plain", "bad\r\nInjected: header\x00", false, []error{ErrBadRequest}, "bad Injected: header", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := func(w http.ResponseWriter, _ *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}
			c, _ := newTestClient(t, http.HandlerFunc(h), func(cfg *Config) { cfg.MaxRetries = -1 })
			var err error
			if tc.gateway {
				_, err = c.CheckAuthz(t.Context(), testAuthzRequest())
			} else {
				_, err = c.GetUser(t.Context(), "42")
			}
			checkSentinels(t, err, tc.wantSentinels...)
			apiErr, ok := AsAPIError(err)
			if !ok {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if diff := cmp.Diff(&APIError{StatusCode: tc.status, Message: tc.wantMessage}, apiErr); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if got := IsTransient(err); got != tc.wantTransient {
				t.Errorf("IsTransient(%v) = %t, want %t", err, got, tc.wantTransient)
			}
		})
	}
}

func TestLongErrorMessageIsTruncated(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5000)
	c, _ := newTestClient(t, replyJSON(400, []byte(`{"errors":[{"message":"`+long+`","code":400}]}`)), nil)
	_, err := c.GetUser(t.Context(), "42")
	apiErr, ok := AsAPIError(err)
	if !ok {
		t.Fatalf("error %v is not an *APIError", err)
	}
	if n := len([]rune(apiErr.Message)); n > maxMessageRunes+1 {
		t.Errorf("message has %d runes, want at most %d", n, maxMessageRunes+1)
	}
}

func TestInvalidInputIsRefusedWithoutARequest(t *testing.T) {
	t.Parallel()
	h, hits := counting(replyJSON(200, []byte(`{}`)))
	c, _ := newTestClient(t, h, nil)
	ctx := t.Context()
	badIDs := []string{"", "abc", "-1", "+1", "1.5", "12 ", "../1", "99999999999999999999", "1/2"}
	for _, id := range badIDs {
		calls := map[string]func() error{
			"GetUser":           func() error { _, err := c.GetUser(ctx, id); return err },
			"ListUserSessions":  func() error { _, err := c.ListUserSessions(ctx, id, false); return err },
			"RevokeSignIn/user": func() error { return c.RevokeSignIn(ctx, id, "1") },
			"RevokeSignIn/sign": func() error { return c.RevokeSignIn(ctx, "1", id) },
			"RevokeAllSessions": func() error { _, err := c.RevokeAllSessions(ctx, id); return err },
			"RevokeAPIKey":      func() error { return c.RevokeAPIKey(ctx, "app", id, "") },
			"RotateAPIKey":      func() error { _, err := c.RotateAPIKey(ctx, "app", id); return err },
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, ErrBadRequest) || IsTransient(err) {
				t.Errorf("%s(%q) error = %v, want ErrBadRequest", name, id, err)
			}
		}
	}
	badSlugs := []string{"", " ", "a b", "a\nb", ".", "..", "a/b?c", "Orders", strings.Repeat("s", 65), "\xff"}
	for _, slug := range badSlugs {
		if _, err := c.ListAPIKeys(ctx, slug, false); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ListAPIKeys(%q) error = %v, want ErrBadRequest", slug, err)
		}
	}
	others := map[string]func() error{
		"negative limit":  func() error { _, err := c.ListUsers(ctx, ListUsersParams{Limit: -1}); return err },
		"negative offset": func() error { _, err := c.ListUsers(ctx, ListUsersParams{Offset: -1}); return err },
		"bad sort key":    func() error { _, err := c.ListUsers(ctx, ListUsersParams{SortKey: "password"}); return err },
		"bad sort order":  func() error { _, err := c.ListUsers(ctx, ListUsersParams{SortOrder: "up"}); return err },
		"no key name":     func() error { _, err := c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{}); return err },
		"metadata not object": func() error {
			_, err := c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{Name: "n", Metadata: []byte(`[1]`)})
			return err
		},
		"metadata not json": func() error {
			_, err := c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{Name: "n", Metadata: []byte(`{`)})
			return err
		},
		"principal type": func() error {
			r := testAuthzRequest()
			r.Principal.Type = "password"
			_, err := c.CheckAuthz(ctx, r)
			return err
		},
		"principal value": func() error {
			r := testAuthzRequest()
			r.Principal.Value = ""
			_, err := c.CheckAuthz(ctx, r)
			return err
		},
		"method": func() error {
			r := testAuthzRequest()
			r.Method = "get"
			_, err := c.CheckAuthz(ctx, r)
			return err
		},
		"resource": func() error {
			r := testAuthzRequest()
			r.Resource = ""
			_, err := c.CheckAuthz(ctx, r)
			return err
		},
		"nil context": func() error {
			var nilCtx context.Context
			_, err := c.GetUser(nilCtx, "1")
			return err
		},
	}
	for name, call := range others {
		if err := call(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: error = %v, want ErrBadRequest", name, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	h, hits := counting(replyJSON(200, fixture(t, "health.json")))
	c, _ := newTestClient(t, h, func(cfg *Config) {
		cfg.APIKey = ""
		cfg.FrontendURL = ""
	})
	if _, err := c.GetUser(t.Context(), "1"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("GetUser without key: error = %v, want ErrNotConfigured", err)
	}
	if _, err := c.FetchJWKS(t.Context()); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("FetchJWKS without frontend url: error = %v, want ErrNotConfigured", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
	// Calls that need no key still work.
	if err := c.Health(t.Context()); err != nil {
		t.Errorf("Health without key: %v", err)
	}
}

func TestInvalidResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		call func(context.Context, *Client) error
	}{
		{
			name: "html_200_for_user",
			h:    func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>captive portal</html>") },
			call: func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "1"); return err },
		},
		{
			name: "empty_object_for_user",
			h:    replyJSON(200, []byte(`{}`)),
			call: func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "1"); return err },
		},
		{
			name: "wrong_type",
			h:    replyJSON(200, []byte(`{"id":"1","disabled":"yes"}`)),
			call: func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "1"); return err },
		},
		{
			name: "float_id",
			h:    replyJSON(200, []byte(`{"id":1.5}`)),
			call: func(ctx context.Context, c *Client) error { _, err := c.GetUser(ctx, "1"); return err },
		},
		{
			name: "list_without_data",
			h:    replyJSON(200, []byte(`{"has_more":false}`)),
			call: func(ctx context.Context, c *Client) error { _, err := c.ListUserSessions(ctx, "1", false); return err },
		},
		{
			name: "keys_without_keys",
			h:    replyJSON(200, []byte(`{"data":[]}`)),
			call: func(ctx context.Context, c *Client) error { _, err := c.ListAPIKeys(ctx, "app", false); return err },
		},
		{
			name: "jwks_not_json",
			h:    func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "OK") },
			call: func(ctx context.Context, c *Client) error { _, err := c.FetchJWKS(ctx); return err },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, tc.h, nil)
			err := tc.call(t.Context(), c)
			checkSentinels(t, err, ErrInvalidResponse)
			if !IsTransient(err) {
				t.Errorf("IsTransient(%v) = false, want true", err)
			}
		})
	}
}

func TestUnhealthyStatus(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, replyJSON(200, []byte(`{"status":"degraded","timestamp":"2026-03-04T10:00:00Z"}`)), nil)
	if err := c.Health(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Health error = %v, want ErrUnavailable", err)
	}
}

func TestIsTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("other"), false},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("get user: %w", &APIError{StatusCode: 404}), false},
		{fmt.Errorf("get user: %w", &APIError{StatusCode: 503}), true},
		{&transportError{err: context.Canceled}, false},
		{&transportError{err: errors.New("connection reset")}, true},
		{&budgetError{err: errors.New("would exceed deadline")}, true},
		{&outcomeUnknownError{err: &APIError{StatusCode: 502}}, true},
		{invalidInput("bad"), false},
	} {
		if got := IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"999999999999", 10 * time.Second},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := retryAfter(tc.header, now, 10*time.Second); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
