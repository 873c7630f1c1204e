package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callerlimit"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// invalidArgumentError is a request the caller must fix.
type invalidArgumentError struct{ msg string }

func (e *invalidArgumentError) Error() string { return e.msg }

func invalidArgument(format string, args ...any) error {
	return &invalidArgumentError{msg: fmt.Sprintf(format, args...)}
}

// callerError is an outcome with a message written for callers and the
// code it is answered with; whatever caused it is logged, not sent.
type callerError struct {
	code connect.Code
	msg  string
}

func (e *callerError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &callerError{code: connect.CodeNotFound, msg: fmt.Sprintf(format, args...)}
}

func unavailable(format string, args ...any) error {
	return &callerError{code: connect.CodeUnavailable, msg: fmt.Sprintf(format, args...)}
}

// permissionError is a verified token that lacks required permissions.
type permissionError struct{ missing []string }

func (e *permissionError) Error() string {
	return fmt.Sprintf("the session lacks required permissions %q", e.missing)
}

// errRevoked is a verified token whose session is no longer active.
var errRevoked = errors.New("the session has been revoked or has ended")

// refusalReasons maps the verifier's reasons to the API's.
var refusalReasons = map[sessiontoken.Reason]authsvcv1.TokenRefusalReason{
	sessiontoken.ReasonMalformed:            authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MALFORMED,
	sessiontoken.ReasonExpired:              authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_EXPIRED,
	sessiontoken.ReasonNotYetValid:          authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_NOT_YET_VALID,
	sessiontoken.ReasonBadSignature:         authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_BAD_SIGNATURE,
	sessiontoken.ReasonWrongIssuer:          authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_WRONG_ISSUER,
	sessiontoken.ReasonUnsupportedAlgorithm: authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSUPPORTED_ALGORITHM,
	sessiontoken.ReasonUnknownKey:           authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNKNOWN_KEY,
}

// RefusalReason returns the API's reason for a token refusal returned by
// the verifier or by a revocation check, and whether err is one.
func RefusalReason(err error) (authsvcv1.TokenRefusalReason, bool) {
	if errors.Is(err, errRevoked) {
		return authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_REVOKED, true
	}
	if r, ok := sessiontoken.ReasonOf(err); ok {
		if reason, ok := refusalReasons[r]; ok {
			return reason, true
		}
		return authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MALFORMED, true
	}
	return 0, false
}

// refusal is a decision not to let a request through, as Check and
// Authenticate report it.
type refusal struct {
	credential authsvcv1.Credential
	reason     authsvcv1.TokenRefusalReason
	// code is Unauthenticated, PermissionDenied or ResourceExhausted.
	code       connect.Code
	retryAfter time.Duration
}

// refusalOf classifies an error of Decide: a refusal of a credential (or
// of a request without one), or false for a failure to decide.
func refusalOf(err error) (refusal, bool) {
	var ce *credentialError
	if !errors.As(err, &ce) {
		return refusal{}, false
	}
	r := refusal{credential: ce.credential, code: connect.CodeUnauthenticated}
	var (
		perm    *permissionError
		invalid *invalidArgumentError
		akr     *apiKeyRefusal
	)
	switch {
	case errors.Is(err, errNoCredential):
		r.reason = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MISSING
	case errors.As(err, &perm):
		r.reason, r.code = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_PERMISSION_DENIED, connect.CodePermissionDenied
	case errors.Is(err, sessionexchange.ErrRefused):
		r.reason = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_REVOKED
	case errors.Is(err, sessionexchange.ErrRateLimited):
		r.reason, r.code = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_RATE_LIMITED, connect.CodeResourceExhausted
		if rl := (*sessionexchange.RateLimitedError)(nil); errors.As(err, &rl) {
			r.retryAfter = rl.RetryAfter
		}
	case errors.As(err, &akr):
		switch akr.verdict.GetReason() {
		case authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_RATE_LIMITED:
			r.reason, r.code = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_RATE_LIMITED, connect.CodeResourceExhausted
			r.retryAfter = akr.verdict.GetRetryAfter().AsDuration()
		case authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_PERMISSION_DENIED:
			r.reason, r.code = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_PERMISSION_DENIED, connect.CodePermissionDenied
		default:
			r.reason = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_INVALID_API_KEY
		}
	case errors.Is(err, sessiontoken.ErrTokenTooLarge), errors.As(err, &invalid):
		r.reason = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MALFORMED
	default:
		reason, ok := RefusalReason(err)
		if !ok {
			return refusal{}, false
		}
		r.reason = reason
	}
	return r, true
}

// PanicError is a handler that panicked, as the handlers' recovery
// reports it.
type PanicError struct {
	// Procedure is the procedure whose handler panicked.
	Procedure string
	// Value is what it panicked with.
	Value any
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in handler %s: %v", e.Procedure, e.Value)
}

// errorMapper turns every error a handler returns into a Connect error.
// It is the one place that decides codes and what callers may read;
// causes that callers must not see are logged instead.
type errorMapper struct {
	logger *slog.Logger
}

// ConnectError returns the mapping of every handler's errors to what
// callers read, for the code that answers calls outside a handler: the
// caller middleware (callers.Config.MapError), which refuses a call before
// Connect reads it, and the handlers' recovery from a panic (*PanicError).
// A nil logger discards.
func ConnectError(logger *slog.Logger) func(context.Context, error) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return errorMapper{logger: logger}.toConnect
}

func (m errorMapper) toConnect(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce
	}
	if r, ok := refusalOf(err); ok {
		ce := connect.NewError(r.code, err)
		if detail, derr := connect.NewErrorDetail(&authsvcv1.TokenRefusal{Reason: r.reason, Credential: r.credential}); derr == nil {
			ce.AddDetail(detail)
		}
		return ce
	}
	var (
		invalid      *invalidArgumentError
		perm         *permissionError
		ce           *callerError
		notScheduled *rotation.NotScheduledError
		role         *callers.RoleError
		panicked     *PanicError
	)
	switch {
	// A refused caller reads a fixed message, which never says which
	// callers exist.
	case errors.Is(err, callers.ErrMissingCredential):
		return connect.NewError(connect.CodeUnauthenticated, callers.ErrMissingCredential)
	case errors.Is(err, callers.ErrInvalidCredential):
		return connect.NewError(connect.CodeUnauthenticated, callers.ErrInvalidCredential)
	case errors.Is(err, callers.ErrProcedureDenied):
		return connect.NewError(connect.CodePermissionDenied, callers.ErrProcedureDenied)
	case errors.As(err, &role):
		return connect.NewError(connect.CodePermissionDenied, errors.New(role.Error()))
	case errors.As(err, &panicked):
		m.logger.ErrorContext(ctx, "panic in handler", "procedure", panicked.Procedure, "panic", fmt.Sprint(panicked.Value))
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	case errors.As(err, &ce):
		return connect.NewError(ce.code, errors.New(ce.msg))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed"))
	case errors.As(err, &invalid):
		return connect.NewError(connect.CodeInvalidArgument, invalid)
	case errors.Is(err, sessiontoken.ErrTokenTooLarge):
		return connect.NewError(connect.CodeInvalidArgument, errors.New("the token is too large to be a Wacht session token"))
	case errors.As(err, &perm):
		return connect.NewError(connect.CodePermissionDenied, perm)
	case errors.Is(err, rotation.ErrInvalidArgument):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.As(err, &notScheduled):
		// Its message is written for the caller; the rotator logged the
		// cause.
		return connect.NewError(connect.CodeUnavailable, errors.New(notScheduled.Error()))
	}
	if reason, ok := RefusalReason(err); ok {
		ce := connect.NewError(connect.CodeUnauthenticated, err)
		if detail, derr := connect.NewErrorDetail(&authsvcv1.TokenRefusal{Reason: reason}); derr == nil {
			ce.AddDetail(detail)
		}
		return ce
	}
	switch {
	case errors.Is(err, sessiontoken.ErrNoKeys):
		return connect.NewError(connect.CodeUnavailable, errors.New("the Wacht key set has not been loaded yet"))
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, wachtclient.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found in Wacht"))
	case errors.Is(err, wachtclient.ErrOutcomeUnknown):
		m.logger.WarnContext(ctx, "wacht call outcome unknown", "error", err)
		return connect.NewError(connect.CodeUnknown, errors.New("Wacht failed while making the change, which may or may not have been made: read it back before retrying"))
	case errors.Is(err, callerlimit.ErrExhausted):
		return connect.NewError(connect.CodeResourceExhausted, errors.New("over this caller's limit of Wacht calls (its callers file limits); answers from the cache are still served; retry later"))
	case errors.Is(err, wachtclient.ErrRateLimited):
		return connect.NewError(connect.CodeResourceExhausted, errors.New("over the Wacht request budget; retry later"))
	case errors.Is(err, wachtclient.ErrUnavailable):
		m.logger.WarnContext(ctx, "wacht unavailable", "error", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("wacht is unavailable; retry later"))
	case errors.Is(err, wachtclient.ErrBadRequest):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(wachtRefusal("Wacht refused the request as invalid", err)))
	case errors.Is(err, wachtclient.ErrConflict):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(wachtRefusal("Wacht refused the request as conflicting with its state", err)))
	case errors.Is(err, wachtclient.ErrUnauthorized), errors.Is(err, wachtclient.ErrForbidden):
		m.logger.ErrorContext(ctx, "wacht refused authsvc's API key: check WACHT_API_KEY", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("authsvc's Wacht credentials were refused"))
	}
	m.logger.ErrorContext(ctx, "internal error", "error", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// wachtRefusal is what a caller reads of a request Wacht (or the client,
// before sending it) refused: Wacht's own message, which the client has
// sanitised, never the request or authsvc's credentials.
func wachtRefusal(what string, err error) string {
	if apiErr, ok := wachtclient.AsAPIError(err); ok && apiErr.Message != "" {
		return what + ": " + apiErr.Message
	}
	var input interface{ Input() string }
	if errors.As(err, &input) {
		return what + ": " + input.Input()
	}
	return what
}
