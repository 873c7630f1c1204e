package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
)

func TestInvalidateAllSessionsIsCoalesced(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var loads atomic.Int32
	sessions, err := cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions",
		Load: func(context.Context, string) ([]*authsvcv1.Session, error) {
			loads.Add(1)
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sessions.Close()
	users, err := cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user",
		Load: func(context.Context, string) (*authsvcv1.User, error) { return nil, cache.ErrNotFound },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	inv := newInvalidator(users, sessions, invalidatorConfig{Window: 2 * time.Second})
	defer inv.close()
	get := func() {
		t.Helper()
		if _, err := sessions.Get(ctx, "7"); err != nil {
			t.Fatal(err)
		}
	}

	get() // load 1
	if err := inv.InvalidateAllSessions(ctx); err != nil {
		t.Fatal(err)
	}
	get() // dropped at once: load 2
	for range 10 {
		if err := inv.InvalidateAllSessions(ctx); err != nil {
			t.Fatal(err)
		}
	}
	get() // within the window: still cached
	if got := loads.Load(); got != 2 {
		t.Fatalf("loads = %d after a coalesced burst, want 2", got)
	}
	deadline := time.Now().Add(15 * time.Second)
	for loads.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the drop asked for within the window never happened")
		}
		time.Sleep(20 * time.Millisecond)
		get()
	}
}

// countingSessions counts drops of every session list.
type countingSessions struct{ all atomic.Int32 }

func (*countingSessions) Invalidate(context.Context, string) error { return nil }
func (c *countingSessions) InvalidateAll(context.Context) error {
	c.all.Add(1)
	return nil
}

type noUsers struct{}

func (noUsers) Invalidate(context.Context, string) error   { return nil }
func (noUsers) MarkNotFound(context.Context, string) error { return nil }

// TestInvalidatorCloseRunsDeferredDrop: a drop deferred to the end of its
// window is neither lost nor left running after close.
func TestInvalidatorCloseRunsDeferredDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sessions := &countingSessions{}
	inv := newInvalidator(noUsers{}, sessions, invalidatorConfig{Window: time.Hour, Now: func() time.Time { return clock }})
	for range 3 {
		if err := inv.InvalidateAllSessions(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := sessions.all.Load(); got != 1 {
		t.Fatalf("drops = %d within the window, want 1", got)
	}
	inv.close()
	if got := sessions.all.Load(); got != 2 {
		t.Fatalf("drops = %d after close, want 2 (the deferred one ran)", got)
	}
	if err := inv.InvalidateAllSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sessions.all.Load(); got != 3 {
		t.Fatalf("drops = %d for a drop after close, want 3 (at once)", got)
	}
}

// TestInvalidatorWindowFollowsClock: the window is measured on the
// injected clock.
func TestInvalidatorWindowFollowsClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var offset atomic.Int64
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	sessions := &countingSessions{}
	inv := newInvalidator(noUsers{}, sessions, invalidatorConfig{Window: time.Hour, Now: now})
	defer inv.close()
	if err := inv.InvalidateAllSessions(ctx); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(2 * time.Hour))
	if err := inv.InvalidateAllSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sessions.all.Load(); got != 2 {
		t.Fatalf("drops = %d two windows apart, want 2 (both at once)", got)
	}
}
