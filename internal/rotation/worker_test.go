package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// rotateLater rotates a new key of app with grace and returns the old
// key's id and the result.
func rotateLater(t *testing.T, e *env, r *rotation.Rotator, app string, grace time.Duration) (string, *rotation.Result) {
	t.Helper()
	k := e.addKey(t, app, "k")
	res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: app, KeyID: k.ID, Grace: grace})
	if err != nil {
		t.Fatalf("Rotate() error: %v", err)
	}
	return k.ID, res
}

func TestRevocationSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := pgtest.NewURL(t)
	poolA := openPool(t, url)
	a := e.rotator(t, rotation.NewPostgresStore(poolA))
	oldID, res := rotateLater(t, e, a, appOrders, time.Hour)
	// Replica A goes away before the grace period ends.
	poolA.Close()

	b := e.rotator(t, rotation.NewPostgresStore(openPool(t, url)))
	revokeDue(t, b, 0)
	e.clock.Advance(time.Hour)
	revokeDue(t, b, 1)
	if e.key(t, appOrders, oldID).IsActive {
		t.Fatal("old key still active after the restart and the grace period")
	}
	rec := record(t, b, res.AuditID)
	if rec.Outcome != rotation.OutcomeRotated || !rec.PreviousKeyRevokedAt.Equal(testStart.Add(time.Hour)) {
		t.Errorf("audit record outcome %q revoked at %s; want rotated at %s", rec.Outcome, rec.PreviousKeyRevokedAt, testStart.Add(time.Hour))
	}
}

func TestWorkersRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// stores returns the stores of two replicas sharing state.
		stores func(t *testing.T) (rotation.Store, rotation.Store)
	}{
		{"postgres", func(t *testing.T) (rotation.Store, rotation.Store) {
			url := pgtest.NewURL(t)
			return rotation.NewPostgresStore(openPool(t, url)), rotation.NewPostgresStore(openPool(t, url))
		}},
		{"memory", func(*testing.T) (rotation.Store, rotation.Store) {
			s := rotation.NewMemoryStore()
			return s, s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, due := range []int{1, 4} {
				e := newEnv(t)
				one, two := tc.stores(t)
				replicas := []*rotation.Rotator{e.rotator(t, one), e.rotator(t, two)}
				var oldIDs []string
				for range due {
					id, _ := rotateLater(t, e, replicas[0], appOrders, time.Minute)
					oldIDs = append(oldIDs, id)
				}
				e.clock.Advance(time.Minute)
				// A slow revoke widens the window in which passes overlap.
				e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeAPIKey, Latency: 20 * time.Millisecond})

				var (
					wg      sync.WaitGroup
					mu      sync.Mutex
					revoked int
				)
				for w := range 8 {
					r := replicas[w%2]
					wg.Go(func() {
						for range 10 {
							n, err := r.RevokeDue(context.Background())
							if err != nil {
								t.Errorf("RevokeDue() error: %v", err)
								return
							}
							mu.Lock()
							revoked += n
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if n := e.fake.Calls(wachtfake.RouteRevokeAPIKey); n != due || revoked != due {
					t.Errorf("%d due: revoke called %d times, RevokeDue counted %d; want %d each", due, n, revoked, due)
				}
				for _, id := range oldIDs {
					if e.key(t, appOrders, id).IsActive {
						t.Errorf("key %s still active", id)
					}
				}
			}
		})
	}
}

func TestRevokeRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		oldID, res := rotateLater(t, e, r, appOrders, time.Hour)
		e.clock.Advance(time.Hour)
		e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeAPIKey, Mode: wachtfake.Fault5xx, Status: 503, Times: 2})

		revokeDue(t, r, 0) // fails: retry in 10 s
		rec := record(t, r, res.AuditID)
		if rec.Outcome != rotation.OutcomePendingRevocation || rec.RevokeAttempts != 1 || !strings.Contains(rec.RevokeError, "503") {
			t.Errorf("after a failure: outcome %q, %d attempts, error %q; want pending, 1, a 503", rec.Outcome, rec.RevokeAttempts, rec.RevokeError)
		}
		revokeDue(t, r, 0) // not due again yet
		e.clock.Advance(10 * time.Second)
		revokeDue(t, r, 0) // fails again: retry in 20 s
		e.clock.Advance(19 * time.Second)
		revokeDue(t, r, 0)
		if n := e.fake.Calls(wachtfake.RouteRevokeAPIKey); n != 2 {
			t.Errorf("revoke called %d times before the backoff ended, want 2", n)
		}
		e.clock.Advance(time.Second)
		revokeDue(t, r, 1)

		if e.key(t, appOrders, oldID).IsActive {
			t.Fatal("old key still active")
		}
		rec = record(t, r, res.AuditID)
		if rec.Outcome != rotation.OutcomeRotated || rec.RevokeAttempts != 2 || rec.RevokeError != "" ||
			!rec.PreviousKeyRevokedAt.Equal(testStart.Add(time.Hour+30*time.Second)) {
			t.Errorf("after success: %+v", rec)
		}
		want := []string{rotation.WorkerRetry, rotation.WorkerRetry, rotation.WorkerRevoked}
		if diff := cmp.Diff(want, e.observed.list()); diff != "" {
			t.Errorf("observed outcomes (-want +got):\n%s", diff)
		}
	})
}

func TestRevokeRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := pgtest.NewPool(t)
	good := e.rotator(t, rotation.NewPostgresStore(pool))
	oldID, res := rotateLater(t, e, good, appOrders, time.Minute)
	e.clock.Advance(time.Minute)

	// A replica with a wrong Backend API key is refused with 401.
	badKey := "sk_" + strings.Repeat("A", 43)
	bad := e.rotator(t, rotation.NewPostgresStore(pool), func(c *rotation.Config) { c.Wacht = e.newClient(t, badKey) })
	revokeDue(t, bad, 0)
	if !e.key(t, appOrders, oldID).IsActive {
		t.Fatal("refused revocation revoked the key")
	}
	rec := record(t, good, res.AuditID)
	if rec.RevokeAttempts != 1 || !strings.Contains(rec.RevokeError, "401") {
		t.Errorf("after a refusal: %d attempts, error %q; want 1 and a 401", rec.RevokeAttempts, rec.RevokeError)
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"revoke old api key: wacht refused, will retry"`) {
		t.Error("refusal not logged as an error")
	}
	// It stays queued and a working replica revokes it after the backoff.
	revokeDue(t, good, 0)
	e.clock.Advance(10 * time.Second)
	revokeDue(t, good, 1)
	if diff := cmp.Diff([]string{rotation.WorkerFailed, rotation.WorkerRevoked}, e.observed.list()); diff != "" {
		t.Errorf("observed outcomes (-want +got):\n%s", diff)
	}
}

func TestRevokeAlreadyRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rotator(t, rotation.NewMemoryStore())
	oldID, res := rotateLater(t, e, r, appOrders, time.Minute)
	if err := e.client.RevokeAPIKey(t.Context(), appOrders, oldID, "by hand"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	revokeDue(t, r, 1)
	if rec := record(t, r, res.AuditID); rec.Outcome != rotation.OutcomeRotated || rec.RevokeAttempts != 0 {
		t.Errorf("audit record outcome %q, %d attempts; want rotated, 0", rec.Outcome, rec.RevokeAttempts)
	}
	if got := e.key(t, appOrders, oldID).RevokedReason; got != "by hand" {
		t.Errorf("revoked reason %q, want the first revocation's", got)
	}
}

func TestRevokeDueStopsWithContext(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		_, res := rotateLater(t, e, r, appOrders, time.Minute)
		e.clock.Advance(time.Minute)
		// The emulator does not see the client give up on a POST whose body
		// it has not read, so the latency is kept short.
		e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeAPIKey, Latency: 500 * time.Millisecond, Times: 1})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if n, err := r.RevokeDue(ctx); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("RevokeDue() = %d, %v; want 0 and the context's error", n, err)
		}
		// The interrupted attempt is not counted and the revocation is due.
		if rec := record(t, r, res.AuditID); rec.RevokeAttempts != 0 || rec.Outcome != rotation.OutcomePendingRevocation {
			t.Errorf("after an interrupted attempt: %+v", rec)
		}
		revokeDue(t, r, 1)
	})
}

func TestRunWorker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rotator(t, rotation.NewPostgresStore(pgtest.NewPool(t)), func(c *rotation.Config) { c.PollInterval = 10 * time.Millisecond })
	var oldIDs []string
	for range 12 { // more than one batch
		id, _ := rotateLater(t, e, r, appOrders, time.Minute)
		oldIDs = append(oldIDs, id)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		r.RunWorker(ctx)
		close(stopped)
	}()
	time.Sleep(50 * time.Millisecond)
	if n := e.fake.Calls(wachtfake.RouteRevokeAPIKey); n != 0 {
		t.Fatalf("worker revoked %d keys before they were due", n)
	}
	e.clock.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for e.fake.Calls(wachtfake.RouteRevokeAPIKey) < len(oldIDs) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWorker did not return after its context ended")
	}
	for _, id := range oldIDs {
		if e.key(t, appOrders, id).IsActive {
			t.Errorf("key %s still active", id)
		}
	}
}

// lyingWacht answers every revocation 404, as a Wacht that does not hold
// the key (an emulator on a shared database) does.
type lyingWacht struct{ rotation.Wacht }

func (lyingWacht) RevokeAPIKey(_ context.Context, appSlug, keyID, _ string) error {
	return fmt.Errorf("revoke api key %s of app %q: %w", keyID, appSlug, wachtclient.ErrNotFound)
}

// TestRevokeNotFoundIsConfirmed checks that a 404 to a revocation marks
// it done only once the app lists the key as revoked.
func TestRevokeNotFoundIsConfirmed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		wacht func(e *env) rotation.Wacht
	}{
		// Answers 404 but lists the key as active.
		{"key_still_active", func(e *env) rotation.Wacht { return lyingWacht{e.client} }},
		// Another Wacht altogether: the app is unknown there.
		{"another_wacht", func(e *env) rotation.Wacht {
			other := newEnv(t)
			return other.client
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pool := pgtest.NewPool(t)
			good := e.rotator(t, rotation.NewPostgresStore(pool))
			oldID, res := rotateLater(t, e, good, appOrders, time.Minute)
			e.clock.Advance(time.Minute)

			wrong := e.rotator(t, rotation.NewPostgresStore(pool), func(c *rotation.Config) { c.Wacht = tt.wacht(e) })
			revokeDue(t, wrong, 0)
			rec := record(t, good, res.AuditID)
			if rec.Outcome != rotation.OutcomePendingRevocation || rec.RevokeAttempts != 1 || !strings.Contains(rec.RevokeError, "not confirmed revoked") {
				t.Fatalf("after an unconfirmed 404: outcome %q, %d attempts, error %q; want pending, 1, not confirmed",
					rec.Outcome, rec.RevokeAttempts, rec.RevokeError)
			}
			if !e.key(t, appOrders, oldID).IsActive {
				t.Fatal("the key is revoked already")
			}
			// The real Wacht revokes it after the backoff.
			e.clock.Advance(10 * time.Second)
			revokeDue(t, good, 1)
			if e.key(t, appOrders, oldID).IsActive {
				t.Error("the old key was never revoked")
			}
		})
	}
}
