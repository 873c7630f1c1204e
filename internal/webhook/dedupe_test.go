package webhook

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an otter clock that moves only when told.
type fakeClock struct{ nanos atomic.Int64 }

func (c *fakeClock) NowNano() int64                      { return c.nanos.Load() }
func (c *fakeClock) Tick(time.Duration) <-chan time.Time { return nil }
func (c *fakeClock) advance(d time.Duration)             { c.nanos.Add(int64(d)) }

func TestMemoryDeduperExpires(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := &fakeClock{}
	d := newMemoryDeduper(10, time.Hour, clock)
	seen := func(id string) bool {
		t.Helper()
		ok, err := d.Seen(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if seen("msg_1") {
		t.Fatal("Seen before Record")
	}
	if err := d.Record(ctx, "msg_1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := d.Record(ctx, "msg_1", time.Now()); err != nil {
		t.Fatalf("second Record: %v", err)
	}
	clock.advance(59 * time.Minute)
	if !seen("msg_1") {
		t.Fatal("not Seen within the retention")
	}
	clock.advance(2 * time.Minute)
	if seen("msg_1") {
		t.Fatal("still Seen after the retention")
	}
}

func TestMemoryDeduperBounded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const limit = 10
	d := newMemoryDeduper(limit, time.Hour, &fakeClock{})
	for i := range 1000 {
		if err := d.Record(ctx, fmt.Sprintf("msg_%d", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d.seen.CleanUp()
	kept := 0
	for i := range 1000 {
		if ok, _ := d.Seen(ctx, fmt.Sprintf("msg_%d", i)); ok {
			kept++
		}
	}
	if kept == 0 || kept > limit {
		t.Errorf("%d deliveries remembered, want 1 to %d", kept, limit)
	}
}
