package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// inProgress is the error text of a rotation whose outcome is not recorded
// yet; it stays so if the process stops half way.
const inProgress = "rotation in progress, or interrupted before its outcome was recorded: " +
	"list the app's keys including inactive ones to see whether a new key was made and the old one revoked"

// Rotate replaces a key. With a zero Grace it uses Wacht's rotate, which
// revokes the old key at once. Otherwise it creates a replacement with the
// old key's name, permissions, metadata and expiry and schedules the old
// key's revocation when the grace period ends, durably.
//
// Every request that passes validation is written to the audit log before
// Wacht is called; if that write fails nothing is done. Errors wrap
// [ErrInvalidArgument] for a bad request, wachtclient.ErrNotFound when the
// key is not an active key of the app, wachtclient.ErrOutcomeUnknown when
// Wacht may or may not have acted (the message says how to check), and
// [ErrNotScheduled] when a replacement was made but its old key's
// revocation could not be recorded. Rotate never retries a call that
// changes keys.
func (r *Rotator) Rotate(ctx context.Context, req Request) (*Result, error) {
	keyID, err := req.validate(r.maxGrace)
	if err != nil {
		return nil, err
	}
	// Every Wacht call of a rotation is part of a write.
	ctx = budget.WithClass(ctx, budget.Write)
	rec := Record{
		Caller:        req.Caller,
		AppSlug:       req.AppSlug,
		PreviousKeyID: keyID,
		Reason:        req.Reason,
		Grace:         req.Grace,
		Outcome:       OutcomeUnknown,
		Error:         inProgress,
		RequestedAt:   r.clock(),
	}
	if err := r.store.insert(ctx, &rec); err != nil {
		return nil, fmt.Errorf("rotate api key %s: record the rotation: %w", keyID, err)
	}
	old, err := r.activeKey(ctx, rec.AppSlug, keyID)
	if err != nil {
		return nil, r.fail(ctx, &rec, OutcomeFailed, fmt.Errorf("rotate api key %s: %w", keyID, err))
	}
	if rec.Grace == 0 {
		return r.rotateNow(ctx, &rec, old)
	}
	return r.rotateLater(ctx, &rec, old)
}

// activeKey finds an active key of an app.
func (r *Rotator) activeKey(ctx context.Context, appSlug, keyID string) (wachtclient.APIKey, error) {
	keys, err := r.wacht.ListAPIKeys(ctx, appSlug, false)
	if err != nil {
		return wachtclient.APIKey{}, err
	}
	for _, k := range keys {
		if string(k.ID) == keyID && k.IsActive {
			return k, nil
		}
	}
	return wachtclient.APIKey{}, &keyNotFoundError{appSlug: appSlug, keyID: keyID}
}

// rotateNow rotates with Wacht's own rotate.
func (r *Rotator) rotateNow(ctx context.Context, rec *Record, old wachtclient.APIKey) (*Result, error) {
	key, err := r.wacht.RotateAPIKey(ctx, rec.AppSlug, rec.PreviousKeyID)
	if errors.Is(err, wachtclient.ErrOutcomeUnknown) {
		// The client's error names the call, the key and the app already.
		return nil, r.fail(ctx, rec, OutcomeUnknown, fmt.Errorf(
			"%w; to check, list the app's keys including inactive ones: "+
				"a new key named %q may exist, and key %s may be revoked (if both, the new key's secret is lost: rotate the new key)",
			err, old.Name, rec.PreviousKeyID))
	}
	if err != nil {
		return nil, r.fail(ctx, rec, OutcomeFailed, err)
	}
	now := r.clock()
	rec.Outcome, rec.Error = OutcomeRotated, ""
	rec.NewKeyID, rec.NewKeySuffix = string(key.ID), key.KeySuffix
	rec.PreviousKeyRevokesAt, rec.PreviousKeyRevokedAt = now, now
	// The old key is gone already: the caller needs the new secret even if
	// the audit row cannot be completed, so a failure here is only logged.
	r.record(ctx, *rec)
	r.log.InfoContext(ctx, "api key rotated", rec.logAttrs("new_key_id", rec.NewKeyID)...)
	return resultOf(rec, key), nil
}

// rotateLater creates a replacement key and schedules the old key's
// revocation.
func (r *Rotator) rotateLater(ctx context.Context, rec *Record, old wachtclient.APIKey) (*Result, error) {
	key, err := r.wacht.CreateAPIKey(ctx, rec.AppSlug, replacementOf(old))
	if errors.Is(err, wachtclient.ErrOutcomeUnknown) {
		return nil, r.fail(ctx, rec, OutcomeUnknown, fmt.Errorf(
			"rotate api key %s: %w; key %s is still active and its revocation was not scheduled; "+
				"to check, list the app's keys: a new key named %q may exist (if so, revoke it: its secret was not received)",
			rec.PreviousKeyID, err, rec.PreviousKeyID, old.Name))
	}
	if err != nil {
		return nil, r.fail(ctx, rec, OutcomeFailed, fmt.Errorf("rotate api key %s: %w", rec.PreviousKeyID, err))
	}
	rec.Outcome, rec.Error = OutcomePendingRevocation, ""
	rec.NewKeyID, rec.NewKeySuffix = string(key.ID), key.KeySuffix
	rec.PreviousKeyRevokesAt = r.clock().Add(rec.Grace)
	wctx, cancel := writeContext(ctx)
	defer cancel()
	if err := r.store.schedule(wctx, *rec); err != nil {
		return nil, r.unscheduled(ctx, rec, err)
	}
	r.checkInherited(ctx, rec, old, key.APIKey)
	r.log.InfoContext(ctx, "api key rotated, old key revoked later", rec.logAttrs(
		"new_key_id", rec.NewKeyID, "revokes_at", rec.PreviousKeyRevokesAt)...)
	return resultOf(rec, key), nil
}

// checkInherited warns when the replacement key's owner, scope or rate
// limits differ from the old key's: a new key takes them from the app,
// which may have changed since the old key was made.
func (r *Rotator) checkInherited(ctx context.Context, rec *Record, old, key wachtclient.APIKey) {
	same := old.OwnerUserID == key.OwnerUserID &&
		old.OrganizationID == key.OrganizationID &&
		old.WorkspaceID == key.WorkspaceID &&
		old.OrganizationMembershipID == key.OrganizationMembershipID &&
		old.WorkspaceMembershipID == key.WorkspaceMembershipID &&
		old.RateLimitSchemeSlug == key.RateLimitSchemeSlug &&
		slices.Equal(old.OrgRolePermissions, key.OrgRolePermissions) &&
		slices.Equal(old.WorkspaceRolePermissions, key.WorkspaceRolePermissions)
	if !same {
		r.log.WarnContext(ctx, "replacement api key has another owner, scope or rate-limit scheme than the old key: it took them from the app",
			rec.logAttrs("new_key_id", rec.NewKeyID)...)
	}
}

// replacementOf is the request that creates a copy of old.
func replacementOf(old wachtclient.APIKey) wachtclient.CreateAPIKeyRequest {
	req := wachtclient.CreateAPIKeyRequest{Name: old.Name, Permissions: old.Permissions, ExpiresAt: old.ExpiresAt}
	if md := bytes.TrimSpace(old.Metadata); len(md) > 0 && !bytes.Equal(md, []byte("null")) {
		req.Metadata = md
	}
	return req
}

func resultOf(rec *Record, key *wachtclient.APIKeyWithSecret) *Result {
	return &Result{
		Key:                  key.APIKey,
		Secret:               key.Secret,
		PreviousKeyID:        rec.PreviousKeyID,
		PreviousKeyRevokesAt: rec.PreviousKeyRevokesAt,
		AuditID:              rec.ID,
	}
}
