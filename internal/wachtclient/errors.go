package wachtclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Errors returned by Client methods wrap one or more of
// them; test with errors.Is.
var (
	// ErrNotFound is wrapped when Wacht answered 404.
	ErrNotFound = errors.New("wacht: not found")
	// ErrUnauthorized is wrapped when Wacht answered 401: a bad or revoked
	// Backend API key or, from the gateway, an invalid checked key.
	ErrUnauthorized = errors.New("wacht: unauthorized")
	// ErrForbidden is wrapped when Wacht answered 403.
	ErrForbidden = errors.New("wacht: forbidden")
	// ErrRateLimited is wrapped when Wacht answered 429, or when the client's
	// own request budget could not admit the request before the context's
	// deadline.
	ErrRateLimited = errors.New("wacht: rate limited")
	// ErrBadRequest is wrapped when Wacht answered 400 or 422, or when the
	// client refused the input without sending it.
	ErrBadRequest = errors.New("wacht: bad request")
	// ErrConflict is wrapped when Wacht answered 409.
	ErrConflict = errors.New("wacht: conflict")
	// ErrUnavailable is wrapped when Wacht answered 5xx, could not be
	// reached, or did not answer in time.
	ErrUnavailable = errors.New("wacht: unavailable")
	// ErrOutcomeUnknown is wrapped, together with the cause, when a call
	// that changes state (create, rotate, revoke) failed after the request
	// may have reached Wacht: a 5xx answer, a connection lost or a timeout
	// after sending, or a 2xx answer that could not be read. The change may
	// or may not have happened. Such calls are never retried by the client.
	ErrOutcomeUnknown = errors.New("wacht: outcome unknown, the request may have reached wacht")
	// ErrInvalidResponse is wrapped when Wacht's answer could not be used:
	// larger than the limit, not the expected JSON, or missing required
	// fields.
	ErrInvalidResponse = errors.New("wacht: invalid response")
	// ErrNotConfigured is wrapped when a call needs configuration the Client
	// was built without: the Backend API key or the Frontend API URL.
	ErrNotConfigured = errors.New("wachtclient: not configured")
)

// APIError is an error status answered by Wacht. Message comes from Wacht's
// error body (or the status text when the body has none) and never contains
// the Backend API key or a checked key.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is Wacht's message, sanitised and truncated.
	Message string
	// RetryAfter is the delay a Retry-After header asked for, zero if absent.
	// Wacht does not send the header on 429 today.
	RetryAfter time.Duration
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("wacht: status %d: %s", e.StatusCode, e.Message)
}

// Is maps the status to the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrUnavailable:
		return e.StatusCode >= 500 && e.StatusCode <= 599
	}
	return false
}

// AsAPIError returns the *APIError in err's chain, if any.
func AsAPIError(err error) (*APIError, bool) {
	var apiErr *APIError
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}

// IsTransient reports whether err says nothing authoritative about the
// resource: Wacht could not be reached, timed out, failed (5xx), rate limited
// the call (429, or the local budget ran out), or sent an unreadable answer.
// Retrying later may succeed and cached data may still be served. It is false
// for nil, for authoritative answers such as 404, 401 or 400, and for a
// cancelled context.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrUnavailable) ||
		errors.Is(err, ErrRateLimited) ||
		errors.Is(err, ErrInvalidResponse) ||
		errors.Is(err, context.DeadlineExceeded)
}

// transportError is a failure to send a request or read its response.
type transportError struct {
	err error
	// sent reports whether the request may have reached Wacht: a
	// connection was obtained before the failure.
	sent bool
}

func (e *transportError) Error() string { return "wacht unreachable: " + e.err.Error() }

func (e *transportError) Unwrap() error { return e.err }

// Is makes every transport failure match ErrUnavailable, except a
// cancellation by the caller.
func (e *transportError) Is(target error) bool {
	return target == ErrUnavailable && !errors.Is(e.err, context.Canceled)
}

// abandonedError is a request given up because its context ended while
// it was in flight. It wraps the context's cause and, unlike a
// transportError, never matches ErrUnavailable: Wacht was not at fault.
type abandonedError struct {
	err  error
	took time.Duration
	// sent reports whether the request may have reached Wacht.
	sent bool
}

func (e *abandonedError) Error() string {
	return fmt.Sprintf("wacht request abandoned after %s: %v", e.took.Round(time.Millisecond), e.err)
}

func (e *abandonedError) Unwrap() error { return e.err }

// outcomeUnknownError wraps the failure of a state-changing call that may
// have reached Wacht.
type outcomeUnknownError struct{ err error }

func (e *outcomeUnknownError) Error() string {
	return "outcome unknown, the request may have reached wacht: " + e.err.Error()
}

func (e *outcomeUnknownError) Unwrap() error { return e.err }

func (e *outcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// budgetError reports that the Limiter did not admit the request, which
// was therefore not sent: Wacht was not asked and is not at fault.
type budgetError struct{ err error }

func (e *budgetError) Error() string { return "wacht request not sent: " + e.err.Error() }

func (e *budgetError) Unwrap() error { return e.err }

func (e *budgetError) Is(target error) bool { return target == ErrRateLimited }

// stoppedError reports retries that stopped early (context done or budget
// exhausted) after at least one failed attempt; it matches both causes.
type stoppedError struct {
	stop     error
	last     error
	attempts int
}

func (e *stoppedError) Error() string {
	return fmt.Sprintf("%v after %d attempts, last: %v", e.stop, e.attempts, e.last)
}

func (e *stoppedError) Unwrap() []error { return []error{e.stop, e.last} }

// inputError is input the client refuses to send.
type inputError struct{ msg string }

func (e *inputError) Error() string { return "invalid input: " + e.msg }

func (e *inputError) Is(target error) bool { return target == ErrBadRequest }

// Input says what was wrong with the input, for whoever sent it.
func (e *inputError) Input() string { return e.msg }

func invalidInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}
