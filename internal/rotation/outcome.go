package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// unscheduled handles a replacement key whose old key's revocation could
// not be recorded. Its secret is never handed out, so nobody can use it:
// it is revoked again, which leaves things as they were. Handing the
// secret out instead would leave the old key working for ever, unnoticed.
//
// A failed commit may still have committed. The rotation is therefore
// marked as no longer pending before the replacement is revoked: the
// worker revokes only the old keys of pending rotations, so the app is
// never left without a working key.
//
// cause, and the errors of marking the rotation and of revoking the
// replacement, are logged here and nowhere else: the error returned, which callers and the audit log read,
// says what was done and what is left to do.
func (r *Rotator) unscheduled(ctx context.Context, rec *Record, cause error) error {
	r.log.ErrorContext(ctx, "api key rotation: replacement key created but the old key's revocation could not be scheduled",
		rec.logAttrs("new_key_id", rec.NewKeyID, "error", cause)...)
	ns := &NotScheduledError{RotationID: rec.ID, AppSlug: rec.AppSlug, PreviousKeyID: rec.PreviousKeyID,
		NewKeyID: rec.NewKeyID, RevokesAt: rec.PreviousKeyRevokesAt}
	rec.PreviousKeyRevokesAt = time.Time{}
	rec.Outcome = OutcomeUnknown
	rec.Error = fmt.Sprintf("replacement key %s was created but the old key's revocation could not be scheduled; revoking the replacement",
		rec.NewKeyID)
	wctx, cancel := writeContext(ctx)
	defer cancel()
	if err := r.store.update(wctx, *rec); err != nil {
		ns.Unrecorded = true
		r.log.ErrorContext(ctx, "api key rotation: the rotation could not be marked as no longer pending",
			rec.logAttrs("new_key_id", rec.NewKeyID, "revokes_at", ns.RevokesAt, "error", err)...)
	}
	revokeErr := r.wacht.RevokeAPIKey(wctx, rec.AppSlug, rec.NewKeyID,
		"authsvc rotation "+rec.ID+": the old key's revocation could not be scheduled")

	outcome := OutcomeFailed
	if revokeErr != nil && !errors.Is(revokeErr, wachtclient.ErrNotFound) {
		outcome, ns.ReplacementLeft = OutcomeUnknown, true
		r.log.ErrorContext(ctx, "api key rotation: revoking the replacement key failed: revoke it by hand",
			rec.logAttrs("new_key_id", rec.NewKeyID, "error", revokeErr)...)
	}
	return r.fail(ctx, rec, outcome, ns)
}

// fail records rec with outcome and err, logs it, and returns err.
func (r *Rotator) fail(ctx context.Context, rec *Record, outcome Outcome, err error) error {
	rec.Outcome, rec.Error = outcome, err.Error()
	level := slog.LevelWarn
	if outcome == OutcomeUnknown {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, "api key rotation "+string(outcome), rec.logAttrs("error", err)...)
	r.record(ctx, *rec)
	return err
}

// record writes rec's outcome to its audit row. A failure is logged only:
// the caller needs the rotation's own outcome more.
func (r *Rotator) record(ctx context.Context, rec Record) {
	wctx, cancel := writeContext(ctx)
	defer cancel()
	if err := r.store.update(wctx, rec); err != nil {
		r.log.ErrorContext(ctx, "record api key rotation outcome", rec.logAttrs("outcome", rec.Outcome, "error", err)...)
	}
}

// logAttrs returns rec's identifying log attributes followed by extra.
func (rec Record) logAttrs(extra ...any) []any {
	return append([]any{
		"rotation_id", rec.ID,
		"caller", rec.Caller,
		"app_slug", rec.AppSlug,
		"key_id", rec.PreviousKeyID,
		"grace", rec.Grace,
	}, extra...)
}
