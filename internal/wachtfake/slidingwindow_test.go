package wachtfake

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type took struct {
		Allowed      bool
		Remaining    int
		RetryAfterMS uint32
	}
	w := newSlidingWindow(3, time.Minute)
	var got []took
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, time.Minute, 2 * time.Minute, 2*time.Minute + time.Second} {
		a, r, ms := w.take(t0.Add(at))
		got = append(got, took{a, r, ms})
	}
	want := []took{
		{true, 2, 0}, {true, 1, 0}, {true, 0, 0},
		{false, 0, 57_000}, // the first leaves the window at 1m
		{true, 0, 0},       // 1s, 2s and 1m are in the window
		{true, 2, 0},       // only 2m is
		{true, 1, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("take (-want +got):\n%s", diff)
	}

	ample := newSlidingWindow(1<<30, time.Minute)
	if a, r, _ := ample.take(t0); !a || r != 1<<30-1 || len(ample.times) != 1 {
		t.Errorf("ample budget: allowed %v, remaining %d, %d times kept; want true, %d, 1", a, r, len(ample.times), 1<<30-1)
	}
}
