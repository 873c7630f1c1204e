package rotation

import (
	"errors"
	"fmt"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// ErrInvalidArgument is wrapped by every error about a bad Request or
// ListQuery; [InvalidArgumentError] says which field and why.
var ErrInvalidArgument = errors.New("invalid argument")

// ErrNotScheduled is wrapped when a replacement key was created but the old
// key's revocation could not be recorded. The error says whether the
// replacement was revoked again (nothing changed) or must be revoked by
// hand. The replacement's secret is never returned in that case.
var ErrNotScheduled = errors.New("revocation of the old key not scheduled")

// InvalidArgumentError is a request field that failed validation. It
// matches [ErrInvalidArgument] with errors.Is.
type InvalidArgumentError struct {
	// Field is the field's name as the API spells it, e.g. "app_slug".
	Field string
	// Reason says what the field must be.
	Reason string
}

// Error implements error.
func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid argument: %s %s", e.Field, e.Reason)
}

// Is makes the error match ErrInvalidArgument.
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// keyNotFoundError is an old key that is not among the app's active keys.
// It matches wachtclient.ErrNotFound.
type keyNotFoundError struct {
	appSlug, keyID string
}

func (e *keyNotFoundError) Error() string {
	return fmt.Sprintf("api key %s of app %q not found or not active", e.keyID, e.appSlug)
}

func (e *keyNotFoundError) Is(target error) bool { return target == wachtclient.ErrNotFound }
