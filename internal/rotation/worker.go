package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// RunWorker revokes old keys whose grace period has ended, every
// PollInterval, until ctx is done. Every replica may run it: a revocation
// is attempted by one worker at a time, and one left half done by a
// stopped process is taken up again by the next pass anywhere.
func (r *Rotator) RunWorker(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		// A full batch suggests more are due: go on without waiting.
		for {
			_, tried, err := r.revokeBatch(ctx)
			if err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "revoke due api keys", "error", err)
			}
			if err != nil || tried < batchSize {
				break
			}
		}
		timer.Reset(r.poll)
	}
}

// RevokeDue makes one pass of the worker: it attempts up to 10 due
// revocations and returns how many old keys it found revoked. Failed
// attempts are not errors: they are recorded, logged and retried after a
// backoff (10 s, doubling up to 1 h). The error reports a store failure or
// ctx ending.
func (r *Rotator) RevokeDue(ctx context.Context) (int, error) {
	revoked, _, err := r.revokeBatch(ctx)
	return revoked, err
}

// revokeBatch attempts up to batchSize due revocations, one row claim at a
// time, and returns how many were revoked and how many were attempted.
func (r *Rotator) revokeBatch(ctx context.Context) (revoked, tried int, err error) {
	for tried < batchSize {
		a, found, err := r.store.revokeNext(ctx, r.clock(), r.try)
		switch {
		case err != nil:
			return revoked, tried, fmt.Errorf("revoke due api keys: %w", err)
		case !found:
			return revoked, tried, nil
		case a.abandoned:
			return revoked, tried, fmt.Errorf("revoke due api keys: %w", context.Cause(ctx))
		}
		tried++
		if a.done {
			revoked++
		}
	}
	return revoked, tried, nil
}

// try revokes one old key in Wacht.
func (r *Rotator) try(ctx context.Context, rev revocation) attempt {
	callCtx, cancel := context.WithTimeout(budget.WithClass(ctx, budget.Write), revokeTimeout)
	err := r.wacht.RevokeAPIKey(callCtx, rev.appSlug, rev.keyID, "rotated by authsvc: "+rev.rotationID)
	cancel()
	now := r.clock()
	attrs := []any{"rotation_id", rev.rotationID, "app_slug", rev.appSlug, "key_id", rev.keyID, "due_at", rev.dueAt}
	switch {
	case err == nil:
		r.log.InfoContext(ctx, "old api key revoked", attrs...)
		r.observer.ObserveRevocation(WorkerRevoked)
		return attempt{done: true, at: now}
	case errors.Is(err, wachtclient.ErrNotFound):
		// Revoked already, by an earlier attempt whose outcome was lost or
		// by someone else; or this is not the Wacht the key lives in (an
		// emulator answers 404 for every real app). Only a listing that
		// shows the key revoked says which.
		gone, lerr := r.confirmGone(ctx, rev)
		now = r.clock()
		if gone {
			r.log.InfoContext(ctx, "old api key already revoked", append(attrs, "error", err)...)
			r.observer.ObserveRevocation(WorkerRevoked)
			return attempt{done: true, at: now}
		}
		if ctx.Err() != nil {
			return attempt{abandoned: true}
		}
		err = fmt.Errorf("%w, and the key is not confirmed revoked: %w", err, lerr)
	case ctx.Err() != nil:
		return attempt{abandoned: true}
	}
	next := now.Add(backoff(rev.attempts))
	attrs = append(attrs, "attempts", rev.attempts+1, "next_attempt_at", next, "error", err)
	if wachtclient.IsTransient(err) || errors.Is(err, wachtclient.ErrOutcomeUnknown) {
		r.log.WarnContext(ctx, "revoke old api key: will retry", attrs...)
		r.observer.ObserveRevocation(WorkerRetry)
	} else {
		r.log.ErrorContext(ctx, "revoke old api key: wacht refused, will retry", attrs...)
		r.observer.ObserveRevocation(WorkerFailed)
	}
	return attempt{at: now, next: next, err: err.Error()}
}

// confirmGone reports whether the app of rev lists its key, inactive keys
// included, as revoked; if not, the error says why. Wacht keeps revoked
// keys and has no way to delete one, so a key missing from the listing,
// like an app Wacht does not know, means the call reached a Wacht that
// never had the key: no confirmation.
func (r *Rotator) confirmGone(ctx context.Context, rev revocation) (bool, error) {
	callCtx, cancel := context.WithTimeout(budget.WithClass(ctx, budget.Write), revokeTimeout)
	defer cancel()
	keys, err := r.wacht.ListAPIKeys(callCtx, rev.appSlug, true)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if string(k.ID) == rev.keyID {
			if !k.IsActive || k.RevokedAt != nil {
				return true, nil
			}
			return false, errors.New("the app lists it as active")
		}
	}
	return false, errors.New("the app does not list it, inactive keys included")
}

// backoff is the delay after the failed attempt that follows failures
// earlier ones: retryBase·2^failures, at most retryMax.
func backoff(failures int) time.Duration {
	d := retryBase
	for i := 0; i < failures && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}
