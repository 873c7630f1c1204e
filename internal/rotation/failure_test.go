package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

func TestScheduleFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// revokeFails makes revoking the replacement fail too.
		revokeFails bool
	}{
		{"replacement revoked again", false},
		{"replacement left for an operator", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pool := pgtest.NewPool(t)
			// Every scheduled revocation insert fails; the audit log works.
			_, err := pool.Exec(t.Context(), `
				create function refuse_revocations() returns trigger language plpgsql
				as $$ begin raise exception 'scheduled_revocations is read-only'; end $$;
				create trigger refuse before insert on scheduled_revocations
				for each row execute function refuse_revocations();`)
			if err != nil {
				t.Fatal(err)
			}
			r := e.rotator(t, rotation.NewPostgresStore(pool))
			old := e.addKey(t, appOrders, "k")
			if tc.revokeFails {
				e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeAPIKey, Mode: wachtfake.Fault5xx, Status: 503})
			}

			res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: old.ID, Grace: time.Hour})
			if res != nil || !errors.Is(err, rotation.ErrNotScheduled) {
				t.Fatalf("Rotate() = %v, %v; want ErrNotScheduled", res, err)
			}
			ids := e.keyIDs(t, appOrders)
			if len(ids) != 2 {
				t.Fatalf("app has keys %v, want the old one and the replacement", ids)
			}
			newID := ids[0]
			if newID == old.ID {
				newID = ids[1]
			}
			msg := err.Error()
			for _, s := range []string{"replacement key " + newID + " was created", "revocation could not be scheduled",
				"key " + old.ID + " is unchanged and still works: call RotateAPIKey again later"} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
			// The database's error is the operator's to read, not the
			// caller's: it is logged, and the error (which the audit log
			// keeps too) leaves it out.
			if strings.Contains(msg, "read-only") {
				t.Errorf("error %q carries the database's error", msg)
			}
			if n := strings.Count(e.logs.String(), "scheduled_revocations is read-only"); n != 1 {
				t.Errorf("the database's error was logged %d times, want once", n)
			}
			wantOutcome, wantSay, wantActive := rotation.OutcomeFailed, "revoked again", false
			if tc.revokeFails {
				wantOutcome, wantSay, wantActive = rotation.OutcomeUnknown, "revoke key "+newID+` of app "orders-api" by hand`, true
			}
			if !strings.Contains(msg, wantSay) {
				t.Errorf("error %q does not say %q", msg, wantSay)
			}
			if got := e.key(t, appOrders, newID).IsActive; got != wantActive {
				t.Errorf("replacement active = %t, want %t", got, wantActive)
			}
			if !e.key(t, appOrders, old.ID).IsActive {
				t.Error("old key revoked")
			}
			rec := onlyRecord(t, r)
			if rec.Outcome != wantOutcome || rec.Error != msg || rec.NewKeyID != newID || !rec.PreviousKeyRevokesAt.IsZero() {
				t.Errorf("audit record %+v; want outcome %s, the error, new key %s, no revocation time", rec, wantOutcome, newID)
			}
			if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"api key rotation: replacement key created but the old key's revocation could not be scheduled"`) {
				t.Error("the unscheduled replacement was not logged as an error")
			}
		})
	}
}

func TestRecordFailureRefusesRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := pgtest.NewPool(t)
	r := e.rotator(t, rotation.NewPostgresStore(pool))
	k := e.addKey(t, appOrders, "k")
	pool.Close()
	for _, grace := range []time.Duration{0, time.Hour} {
		if res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: k.ID, Grace: grace}); res != nil || err == nil {
			t.Fatalf("Rotate() without a database = %v, %v; want an error", res, err)
		}
	}
	for _, route := range []string{wachtfake.RouteListAPIKeys, wachtfake.RouteCreateAPIKey, wachtfake.RouteRotateAPIKey} {
		if n := e.fake.Calls(route); n != 0 {
			t.Errorf("%s called %d times without an audit row", route, n)
		}
	}
}

func TestRotateNowKeepsSecretWhenAuditFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := pgtest.NewPool(t)
	// The audit row is inserted, but can no longer be updated.
	_, err := pool.Exec(t.Context(), `
		create function refuse_updates() returns trigger language plpgsql
		as $$ begin raise exception 'api_key_rotations is append-only'; end $$;
		create trigger refuse before update on api_key_rotations
		for each row execute function refuse_updates();`)
	if err != nil {
		t.Fatal(err)
	}
	r := e.rotator(t, rotation.NewPostgresStore(pool))
	old := e.addKey(t, appOrders, "k")
	// Wacht revoked the old key: losing the new secret would lock the
	// caller out, so it is returned.
	res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: old.ID})
	if err != nil || res.Secret == "" {
		t.Fatalf("Rotate() = %v, %v; want the new key and its secret", res, err)
	}
	if rec := onlyRecord(t, r); rec.Outcome != rotation.OutcomeUnknown || !strings.Contains(rec.Error, "in progress, or interrupted") {
		t.Errorf("audit record %+v; want it left unknown", rec)
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"record api key rotation outcome"`) {
		t.Error("the audit failure was not logged as an error")
	}
}

func TestWorkerRevokesOnlyPendingRotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := pgtest.NewPool(t)
	r := e.rotator(t, rotation.NewPostgresStore(pool))
	abandonedID, res := rotateLater(t, e, r, appOrders, time.Minute)
	pendingID, _ := rotateLater(t, e, r, appOrders, time.Minute)
	// A rotation given up after its revocation was recorded, as when a
	// commit reported as failed went through.
	if _, err := pool.Exec(t.Context(), `update api_key_rotations set outcome = 'failed' where id = $1`, res.AuditID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	revokeDue(t, r, 1)
	revokeDue(t, r, 0)
	abandoned, pending := e.key(t, appOrders, abandonedID).IsActive, e.key(t, appOrders, pendingID).IsActive
	if !abandoned || pending {
		t.Errorf("old key of the abandoned rotation active %t, of the pending one %t; want true, false", abandoned, pending)
	}
}
