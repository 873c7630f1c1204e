package webhook_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/webhook"
)

func TestPostgresDeduper(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgtest.NewPool(t)
	d := webhook.NewPostgresDeduper(pool, 2*time.Hour)
	seen := func() map[string]bool {
		t.Helper()
		out := map[string]bool{}
		for _, id := range []string{"msg_a", "msg_b", "msg_c", "msg_d"} {
			ok, err := d.Seen(ctx, id)
			if err != nil {
				t.Fatalf("Seen(%s): %v", id, err)
			}
			out[id] = ok
		}
		return out
	}
	record := func(id string, at time.Time) {
		t.Helper()
		if err := d.Record(ctx, id, at); err != nil {
			t.Fatalf("Record(%s): %v", id, err)
		}
	}

	if diff := cmp.Diff(map[string]bool{"msg_a": false, "msg_b": false, "msg_c": false, "msg_d": false}, seen()); diff != "" {
		t.Fatalf("before any Record (-want +got):\n%s", diff)
	}
	record("msg_a", testNow)                     // cleans up: the first Record does
	record("msg_a", testNow.Add(time.Minute))    // again: no error, first time kept
	record("msg_b", testNow.Add(30*time.Minute)) // no cleanup within the hour
	if diff := cmp.Diff(map[string]bool{"msg_a": true, "msg_b": true, "msg_c": false, "msg_d": false}, seen()); diff != "" {
		t.Fatalf("after Record (-want +got):\n%s", diff)
	}
	// Two and a half hours on, a Record cleans up what is older than the
	// two hours of retention: msg_a, not msg_b.
	record("msg_c", testNow.Add(150*time.Minute))
	if diff := cmp.Diff(map[string]bool{"msg_a": false, "msg_b": true, "msg_c": true, "msg_d": false}, seen()); diff != "" {
		t.Fatalf("after the cleanup (-want +got):\n%s", diff)
	}

	n, err := d.DeleteBefore(ctx, testNow.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteBefore() = %d, %v; want 1 row", n, err)
	}
	if diff := cmp.Diff(map[string]bool{"msg_a": false, "msg_b": false, "msg_c": true, "msg_d": false}, seen()); diff != "" {
		t.Fatalf("after DeleteBefore (-want +got):\n%s", diff)
	}
}

func TestPostgresDeduperSharedByReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgtest.NewPool(t)
	one, two := webhook.NewPostgresDeduper(pool, 0), webhook.NewPostgresDeduper(pool, 0)
	if err := one.Record(ctx, "msg_1", testNow); err != nil {
		t.Fatal(err)
	}
	if ok, err := two.Seen(ctx, "msg_1"); err != nil || !ok {
		t.Fatalf("other replica: Seen() = %v, %v; want true", ok, err)
	}
}
