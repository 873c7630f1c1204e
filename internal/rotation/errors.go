package rotation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// ErrInvalidArgument is wrapped by every error about a bad Request or
// ListQuery; [InvalidArgumentError] says which field and why.
var ErrInvalidArgument = errors.New("invalid argument")

// ErrNotScheduled is matched when a replacement key was created but the old
// key's revocation could not be recorded. The error's message is written
// for the caller of the rotation: it says whether the replacement was
// revoked again (nothing changed) or must be revoked by hand, and that the
// old key still works; the cause is logged, not carried. The
// replacement's secret is never returned in that case.
var ErrNotScheduled = errors.New("revocation of the old key not scheduled")

// NotScheduledError is a replacement key made for PreviousKeyID whose old
// key's revocation could not be scheduled. Its message is written for the
// caller of the rotation: what was made, what was undone and what is left
// to do. It carries no cause: the Rotator logs that. It matches
// [ErrNotScheduled] with errors.Is.
type NotScheduledError struct {
	RotationID, AppSlug, PreviousKeyID, NewKeyID string
	// ReplacementLeft says that revoking the replacement failed too: it
	// must be revoked by hand.
	ReplacementLeft bool
	// Unrecorded says that the audit log could not be updated: it may
	// still hold the rotation as pending, and the worker may revoke the
	// old key at RevokesAt.
	Unrecorded bool
	RevokesAt  time.Time
}

// Error implements error.
func (e *NotScheduledError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rotate api key %s: replacement key %s was created but the old key's revocation could not be scheduled", e.PreviousKeyID, e.NewKeyID)
	if e.ReplacementLeft {
		fmt.Fprintf(&b, ", and revoking the replacement failed too: revoke key %s of app %q by hand (its secret was never handed out)", e.NewKeyID, e.AppSlug)
	} else {
		b.WriteString("; the replacement was revoked again (its secret was never handed out)")
	}
	fmt.Fprintf(&b, "; key %s is unchanged and still works: call RotateAPIKey again later", e.PreviousKeyID)
	if e.Unrecorded {
		fmt.Fprintf(&b, "; the audit log could not be updated either: check that rotation %s is not pending, "+
			"or key %s may be revoked at %s", e.RotationID, e.PreviousKeyID, e.RevokesAt.Format(time.RFC3339))
	}
	return b.String()
}

// Is makes the error match ErrNotScheduled.
func (e *NotScheduledError) Is(target error) bool { return target == ErrNotScheduled }

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
