package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// invalidArgumentError is a request the caller must fix.
type invalidArgumentError struct{ msg string }

func (e *invalidArgumentError) Error() string { return e.msg }

func invalidArgument(format string, args ...any) error {
	return &invalidArgumentError{msg: fmt.Sprintf(format, args...)}
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

// errorMapper turns every error a handler returns into a Connect error.
// It is the one place that decides codes and what callers may read;
// causes that callers must not see are logged instead.
type errorMapper struct {
	logger *slog.Logger
}

func (m errorMapper) toConnect(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce
	}
	var (
		invalid *invalidArgumentError
		perm    *permissionError
	)
	switch {
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
	case errors.Is(err, rotation.ErrNotScheduled):
		m.logger.ErrorContext(ctx, "key rotation could not be scheduled", "error", err)
		return connect.NewError(connect.CodeUnavailable, err)
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
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, wachtclient.ErrOutcomeUnknown):
		m.logger.WarnContext(ctx, "wacht call outcome unknown", "error", err)
		return connect.NewError(connect.CodeUnknown, err)
	case errors.Is(err, wachtclient.ErrRateLimited):
		return connect.NewError(connect.CodeResourceExhausted, errors.New("over the Wacht request budget; retry later"))
	case errors.Is(err, wachtclient.ErrUnavailable):
		m.logger.WarnContext(ctx, "wacht unavailable", "error", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("wacht is unavailable; retry later"))
	case errors.Is(err, wachtclient.ErrBadRequest):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, wachtclient.ErrConflict):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, wachtclient.ErrUnauthorized), errors.Is(err, wachtclient.ErrForbidden):
		m.logger.ErrorContext(ctx, "wacht refused authsvc's API key: check WACHT_API_KEY", "error", err)
		return connect.NewError(connect.CodeInternal, errors.New("authsvc's Wacht credentials were refused"))
	}
	m.logger.ErrorContext(ctx, "internal error", "error", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
