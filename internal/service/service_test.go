package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

func TestCheckID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"1", false},
		{"24239923154394947", false},
		{"9223372036854775807", false},
		{"9223372036854775808", true}, // overflows int64
		{"", true},
		{"0", true},
		{"-1", true},
		{"+1", true},
		{"01", true},
		{"1e3", true},
		{" 1", true},
		{"../admin", true},
		{"1/details", true},
	}
	for _, tt := range tests {
		if err := checkID("user_id", tt.in); (err != nil) != tt.wantErr {
			t.Errorf("checkID(%q) = %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestPageTokens(t *testing.T) {
	t.Parallel()
	p := pageTokens{key: []byte("0123456789abcdef0123456789abcdef")}
	other := pageTokens{key: []byte("another key, another deployment!")}
	want := page{Scope: sessionsScope("42", true), Offset: 50}
	tok := p.encode(want)

	got, err := p.decode(tok)
	if err != nil || got != want {
		t.Fatalf("decode(encode(%v)) = %v, %v", want, got, err)
	}
	bad := []string{
		"",
		"x",
		tok + "x",
		"A" + tok[1:],
		tok[:len(tok)-2] + "AA",
		p.encode(page{Scope: "s", Offset: -1}),
		string(make([]byte, 2000)),
	}
	for _, b := range bad {
		if _, err := p.decode(b); err == nil {
			t.Errorf("decode(%q) accepted a token it should refuse", b)
		}
	}
	if _, err := other.decode(tok); err == nil {
		t.Error("a token signed with another key was accepted")
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	m := errorMapper{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tests := []struct {
		name string
		err  error
		want connect.Code
	}{
		{"invalid_argument", invalidArgument("bad"), connect.CodeInvalidArgument},
		{"too_large", fmt.Errorf("verify: %w", sessiontoken.ErrTokenTooLarge), connect.CodeInvalidArgument},
		{"no_keys", sessiontoken.ErrNoKeys, connect.CodeUnavailable},
		{"permission", &permissionError{missing: []string{"a"}}, connect.CodePermissionDenied},
		{"revoked", fmt.Errorf("x: %w", errRevoked), connect.CodeUnauthenticated},
		{"cache_not_found", fmt.Errorf("get: %w", cache.ErrNotFound), connect.CodeNotFound},
		{"wacht_not_found", wachtclient.ErrNotFound, connect.CodeNotFound},
		{"wacht_unavailable", fmt.Errorf("get: %w", wachtclient.ErrUnavailable), connect.CodeUnavailable},
		{"wacht_rate_limited", wachtclient.ErrRateLimited, connect.CodeResourceExhausted},
		{"outcome_unknown", errors.Join(wachtclient.ErrOutcomeUnknown, wachtclient.ErrUnavailable), connect.CodeUnknown},
		{"wacht_refuses_our_key", wachtclient.ErrUnauthorized, connect.CodeInternal},
		{"canceled", context.Canceled, connect.CodeCanceled},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{"already_connect", connect.NewError(connect.CodeAborted, errors.New("x")), connect.CodeAborted},
		{"anything_else", errors.New("boom with a secret inside"), connect.CodeInternal},
		{"rotation_not_scheduled", &rotation.NotScheduledError{PreviousKeyID: "k1", NewKeyID: "k2"}, connect.CodeUnavailable},
	}
	for _, tt := range tests {
		got := m.toConnect(context.Background(), tt.err)
		if connect.CodeOf(got) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := m.toConnect(context.Background(), errors.New("boom with a secret inside")); got.Error() != "internal: internal error" {
		t.Errorf("an unexpected error reached the caller as %q", got.Error())
	}
	// What callers read is written for them: Wacht's status lines, the
	// Postgres errors and the ids of what failed inside stay in the logs.
	pgCause := errors.New(`ERROR: relation "cache_entries" does not exist (SQLSTATE 42P01)`)
	wacht404 := &wachtclient.APIError{StatusCode: 404, Message: "User not found"}
	messages := []struct {
		name string
		err  error
		want string
	}{
		{"wacht_not_found", fmt.Errorf("get user 7: %w", wacht404), "not_found: not found in Wacht"},
		{"cache_not_found", fmt.Errorf("users: %w: %w", cache.ErrNotFound, wacht404), "not_found: not found in Wacht"},
		{"caller_not_found", fmt.Errorf("wrapped: %w", notFound("user %s has no sign-in in session %s", "7", "9")), "not_found: user 7 has no sign-in in session 9"},
		{"unavailable_hides_cause", unavailable("revoked in Wacht, but other replicas may serve the old session list until it expires"),
			"unavailable: revoked in Wacht, but other replicas may serve the old session list until it expires"},
		{"wacht_bad_request", fmt.Errorf("rotate: %w", &wachtclient.APIError{StatusCode: 422, Message: "name is too long"}),
			"invalid_argument: Wacht refused the request as invalid: name is too long"},
		{"wacht_conflict", fmt.Errorf("create: %w", &wachtclient.APIError{StatusCode: 409, Message: "already exists"}),
			"failed_precondition: Wacht refused the request as conflicting with its state: already exists"},
		{"outcome_unknown", fmt.Errorf("revoke 7: %w", errors.Join(wachtclient.ErrOutcomeUnknown, pgCause)),
			"unknown: Wacht failed while making the change, which may or may not have been made: read it back before retrying"},
		{"postgres", fmt.Errorf("invalidate: %w", pgCause), "internal: internal error"},
		{"caller_missing", callers.ErrMissingCredential,
			"unauthenticated: missing caller credential: send Authorization: Bearer <token> or a client certificate"},
		{"caller_invalid", callers.ErrInvalidCredential, "unauthenticated: invalid caller credential"},
		{"caller_procedure_denied", callers.ErrProcedureDenied, "permission_denied: procedure not allowed"},
		{"caller_lacks_role", &callers.RoleError{Role: callers.RoleRevoker}, "permission_denied: procedure needs the revoker role"},
		{"panic", &PanicError{Procedure: "/authsvc.v1.AuthService/GetUser", Value: "boom with a secret inside"}, "internal: internal error"},
		{"rotation_not_scheduled", fmt.Errorf("rotate: %w: %w", &rotation.NotScheduledError{
			RotationID: "12", AppSlug: "orders-api", PreviousKeyID: "k1", NewKeyID: "k2",
		}, pgCause), "unavailable: rotate api key k1: replacement key k2 was created but the old key's revocation could not be scheduled; " +
			"the replacement was revoked again (its secret was never handed out); key k1 is unchanged and still works: call RotateAPIKey again later"},
		{"rotation_not_scheduled_replacement_left", &rotation.NotScheduledError{
			RotationID: "12", AppSlug: "orders-api", PreviousKeyID: "k1", NewKeyID: "k2", ReplacementLeft: true,
		}, "unavailable: rotate api key k1: replacement key k2 was created but the old key's revocation could not be scheduled, " +
			`and revoking the replacement failed too: revoke key k2 of app "orders-api" by hand (its secret was never handed out); ` +
			"key k1 is unchanged and still works: call RotateAPIKey again later"},
	}
	for _, tt := range messages {
		if got := m.toConnect(context.Background(), tt.err).Error(); got != tt.want {
			t.Errorf("%s: caller reads %q, want %q", tt.name, got, tt.want)
		}
	}
	revoked := m.toConnect(context.Background(), errRevoked)
	var ce *connect.Error
	if !errors.As(revoked, &ce) || len(ce.Details()) != 1 {
		t.Fatalf("revoked: %v has no detail", revoked)
	}
	v, err := ce.Details()[0].Value()
	if r, ok := v.(*authsvcv1.TokenRefusal); err != nil || !ok || r.GetReason() != authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_REVOKED {
		t.Errorf("revoked detail = %v, %v", v, err)
	}
}

// TestPanicLoggedNotSent checks that a handler's panic reaches the log,
// with its procedure, and not the caller.
func TestPanicLoggedNotSent(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	mapError := ConnectError(slog.New(slog.NewTextHandler(&logs, nil)))
	got := mapError(t.Context(), &PanicError{Procedure: "/authsvc.v1.AuthService/GetUser", Value: "boom with a secret inside"})
	if got.Error() != "internal: internal error" {
		t.Errorf("a panic reached the caller as %q", got.Error())
	}
	for _, want := range []string{`msg="panic in handler"`, "procedure=/authsvc.v1.AuthService/GetUser", `panic="boom with a secret inside"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q does not say %s", logs.String(), want)
		}
	}
}

func TestAPIKeyCacheKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	a := apiKeyCacheKey("sk_k", "GET", "/x\x00admin", nil)
	b := apiKeyCacheKey("sk_k", "GET", "/x", []string{"admin"})
	c := apiKeyCacheKey("sk_k", "GET", "/x", []string{"admin"})
	if a == b {
		t.Error("a resource holding a NUL and a required permission share a cache key")
	}
	if b != c {
		t.Error("the same question got two cache keys")
	}
}
