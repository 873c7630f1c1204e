package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

func TestRotateWithoutGrace(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		old := e.addKey(t, appOrders, "orders backend")

		// A key id with leading zeros names the same key.
		res, err := r.Rotate(t.Context(), rotation.Request{
			Caller: "ops", AppSlug: appOrders, KeyID: "00" + old.ID, Reason: "leaked in a log",
		})
		if err != nil {
			t.Fatalf("Rotate() error: %v", err)
		}
		if res.Secret == "" || string(res.Key.ID) == old.ID || res.Key.Name != old.Name {
			t.Fatalf("Rotate() = key %s %q with secret %t; want a new key named %q with a secret", res.Key.ID, res.Key.Name, res.Secret != "", old.Name)
		}
		if !strings.HasSuffix(res.Secret, res.Key.KeySuffix) {
			t.Errorf("secret does not end with key suffix %q", res.Key.KeySuffix)
		}
		if diff := cmp.Diff(rotation.Result{Key: res.Key, Secret: res.Secret, PreviousKeyID: old.ID, PreviousKeyRevokesAt: testStart, AuditID: "1"}, *res); diff != "" {
			t.Errorf("Rotate() result (-want +got):\n%s", diff)
		}

		// Wacht revoked the old key at once.
		inactive, err := e.client.ListAPIKeys(t.Context(), appOrders, true)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, k := range inactive {
			got[string(k.ID)] = k.IsActive
		}
		if diff := cmp.Diff(map[string]bool{old.ID: false, string(res.Key.ID): true}, got); diff != "" {
			t.Errorf("keys by activity (-want +got):\n%s", diff)
		}
		if n := e.fake.Calls(wachtfake.RouteRotateAPIKey); n != 1 {
			t.Errorf("rotate calls = %d, want 1", n)
		}

		want := rotation.Record{
			ID: "1", Caller: "ops", AppSlug: appOrders, PreviousKeyID: old.ID,
			NewKeyID: string(res.Key.ID), NewKeySuffix: res.Key.KeySuffix, Reason: "leaked in a log",
			Outcome: rotation.OutcomeRotated, RequestedAt: testStart,
			PreviousKeyRevokesAt: testStart, PreviousKeyRevokedAt: testStart,
		}
		if diff := cmp.Diff(want, onlyRecord(t, r)); diff != "" {
			t.Errorf("audit record (-want +got):\n%s", diff)
		}
		revokeDue(t, r, 0)
	})
}

func TestRotateWithGrace(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		old := e.addKey(t, appBilling, "billing worker")
		other := e.addKey(t, appBilling, "untouched")
		const grace = 24 * time.Hour

		res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appBilling, KeyID: old.ID, Grace: grace})
		if err != nil {
			t.Fatalf("Rotate() error: %v", err)
		}
		if res.Secret == "" || res.PreviousKeyID != old.ID || !res.PreviousKeyRevokesAt.Equal(testStart.Add(grace)) {
			t.Fatalf("Rotate() = previous %s revoked at %s, secret set %t; want %s at %s with a secret",
				res.PreviousKeyID, res.PreviousKeyRevokesAt, res.Secret != "", old.ID, testStart.Add(grace))
		}

		// The replacement copies the old key; both work during the grace.
		newKey := e.key(t, appBilling, string(res.Key.ID))
		copied := func(k wachtfake.APIKey) wachtfake.APIKey {
			return wachtfake.APIKey{Name: k.Name, Permissions: k.Permissions, Metadata: k.Metadata, ExpiresAt: k.ExpiresAt.UTC(), IsActive: k.IsActive}
		}
		if diff := cmp.Diff(copied(old), copied(newKey)); diff != "" {
			t.Errorf("replacement differs from the old key (-old +new):\n%s", diff)
		}
		if !e.key(t, appBilling, old.ID).IsActive {
			t.Fatal("old key revoked before its grace period ended")
		}
		if n := e.fake.Calls(wachtfake.RouteRotateAPIKey); n != 0 {
			t.Errorf("Wacht's rotate called %d times with a grace period", n)
		}

		want := rotation.Record{
			ID: res.AuditID, Caller: "ops", AppSlug: appBilling, PreviousKeyID: old.ID,
			NewKeyID: string(res.Key.ID), NewKeySuffix: res.Key.KeySuffix, Grace: grace,
			Outcome: rotation.OutcomePendingRevocation, RequestedAt: testStart,
			PreviousKeyRevokesAt: testStart.Add(grace),
		}
		if diff := cmp.Diff(want, onlyRecord(t, r)); diff != "" {
			t.Errorf("audit record while pending (-want +got):\n%s", diff)
		}

		revokeDue(t, r, 0)
		e.clock.Advance(grace - time.Second)
		revokeDue(t, r, 0)
		if n := e.fake.Calls(wachtfake.RouteRevokeAPIKey); n != 0 {
			t.Fatalf("revoke called %d times before the grace period ended", n)
		}
		e.clock.Advance(time.Second)
		revokeDue(t, r, 1)
		revokeDue(t, r, 0)

		gone := e.key(t, appBilling, old.ID)
		if gone.IsActive || gone.RevokedReason != "rotated by authsvc: "+res.AuditID {
			t.Errorf("old key active %t, revoked reason %q; want revoked by the rotation", gone.IsActive, gone.RevokedReason)
		}
		if !e.key(t, appBilling, other.ID).IsActive || !e.key(t, appBilling, string(res.Key.ID)).IsActive {
			t.Error("another key was revoked")
		}
		want.Outcome = rotation.OutcomeRotated
		want.PreviousKeyRevokedAt = testStart.Add(grace)
		if diff := cmp.Diff(want, onlyRecord(t, r)); diff != "" {
			t.Errorf("audit record after revocation (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{rotation.WorkerRevoked}, e.observed.list()); diff != "" {
			t.Errorf("observed outcomes (-want +got):\n%s", diff)
		}
		if !e.classes.all(budget.Write) {
			t.Errorf("Wacht budget spent as %v, want write for the rotation and its revocation", e.classes.got)
		}
	})
}

func TestRotateNotFound(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		revoked := e.addKey(t, appOrders, "revoked")
		if err := e.client.RevokeAPIKey(t.Context(), appOrders, revoked.ID, "test"); err != nil {
			t.Fatal(err)
		}
		elsewhere := e.addKey(t, appBilling, "of another app")
		for _, tc := range []struct {
			name, app, key string
		}{
			{"unknown key", appOrders, "42"},
			{"revoked key", appOrders, revoked.ID},
			{"key of another app", appOrders, elsewhere.ID},
			{"unknown app", "no-such-app", "42"},
		} {
			for _, grace := range []time.Duration{0, time.Hour} {
				res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: tc.app, KeyID: tc.key, Grace: grace})
				if res != nil || !errors.Is(err, wachtclient.ErrNotFound) {
					t.Errorf("%s, grace %s: Rotate() = %v, %v; want not found", tc.name, grace, res, err)
					continue
				}
				recs, _, lerr := r.List(t.Context(), rotation.ListQuery{Limit: 1})
				if lerr != nil {
					t.Fatal(lerr)
				}
				want := rotation.Record{
					ID: recs[0].ID, Caller: "ops", AppSlug: tc.app, PreviousKeyID: tc.key, Grace: grace,
					Outcome: rotation.OutcomeFailed, Error: err.Error(), RequestedAt: testStart,
				}
				if diff := cmp.Diff(want, recs[0]); diff != "" {
					t.Errorf("%s, grace %s: audit record (-want +got):\n%s", tc.name, grace, diff)
				}
			}
		}
		for _, route := range []string{wachtfake.RouteCreateAPIKey, wachtfake.RouteRotateAPIKey} {
			if n := e.fake.Calls(route); n != 0 {
				t.Errorf("%s called %d times", route, n)
			}
		}
	})
}

func TestRotateOutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grace time.Duration
		route string
		mode  wachtfake.FaultMode
		want  []string
	}{
		{"rotate answers 503", 0, wachtfake.RouteRotateAPIKey, wachtfake.Fault5xx,
			[]string{"list the app's keys including inactive ones", `a new key named "payments"`, "may be revoked"}},
		{"rotate connection dropped", 0, wachtfake.RouteRotateAPIKey, wachtfake.FaultDown,
			[]string{"list the app's keys including inactive ones", `a new key named "payments"`, "may be revoked"}},
		{"create answers 502", time.Hour, wachtfake.RouteCreateAPIKey, wachtfake.Fault5xx,
			[]string{"list the app's keys", `a new key named "payments" may exist`, "revocation was not scheduled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.rotator(t, rotation.NewPostgresStore(pgtest.NewPool(t)))
			k := e.addKey(t, appOrders, "payments")
			e.fake.SetFault(wachtfake.Fault{Route: tc.route, Mode: tc.mode, Status: 502})

			res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: k.ID, Grace: tc.grace})
			if res != nil || !errors.Is(err, wachtclient.ErrOutcomeUnknown) {
				t.Fatalf("Rotate() = %v, %v; want an unknown outcome", res, err)
			}
			for _, s := range append(tc.want, "key "+k.ID) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if n := e.fake.Calls(tc.route); n != 1 {
				t.Errorf("%s called %d times, want once (never retried)", tc.route, n)
			}
			want := rotation.Record{
				ID: "1", Caller: "ops", AppSlug: appOrders, PreviousKeyID: k.ID, Grace: tc.grace,
				Outcome: rotation.OutcomeUnknown, Error: err.Error(), RequestedAt: testStart,
			}
			if diff := cmp.Diff(want, onlyRecord(t, r)); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}
			// Nothing was scheduled.
			e.fake.ClearFaults()
			e.clock.Advance(2 * time.Hour)
			revokeDue(t, r, 0)
			if n := e.fake.Calls(wachtfake.RouteRevokeAPIKey); n != 0 {
				t.Errorf("revoke called %d times", n)
			}
		})
	}
}

func TestRotateWachtFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grace time.Duration
		fault wachtfake.Fault
		is    error
	}{
		{"list unavailable", time.Hour, wachtfake.Fault{Route: wachtfake.RouteListAPIKeys, Mode: wachtfake.Fault5xx, Status: 503}, wachtclient.ErrUnavailable},
		{"rotate rate limited", 0, wachtfake.Fault{Route: wachtfake.RouteRotateAPIKey, Mode: wachtfake.Fault429}, wachtclient.ErrRateLimited},
		{"create rate limited", time.Hour, wachtfake.Fault{Route: wachtfake.RouteCreateAPIKey, Mode: wachtfake.Fault429}, wachtclient.ErrRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.rotator(t, rotation.NewMemoryStore())
			k := e.addKey(t, appOrders, "k")
			e.fake.SetFault(tc.fault)
			res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: k.ID, Grace: tc.grace})
			if res != nil || !errors.Is(err, tc.is) || errors.Is(err, wachtclient.ErrOutcomeUnknown) {
				t.Fatalf("Rotate() = %v, %v; want %v", res, err, tc.is)
			}
			rec := onlyRecord(t, r)
			if rec.Outcome != rotation.OutcomeFailed || rec.Error != err.Error() {
				t.Errorf("audit record outcome %q error %q; want failed with %q", rec.Outcome, rec.Error, err)
			}
			if diff := cmp.Diff([]string{k.ID}, e.keyIDs(t, appOrders)); diff != "" || !e.key(t, appOrders, k.ID).IsActive {
				t.Errorf("keys changed (-want +got):\n%s", diff)
			}
		})
	}
}
