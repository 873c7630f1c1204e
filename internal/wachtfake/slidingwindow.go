package wachtfake

import (
	"math"
	"sort"
	"time"
)

// slidingWindow allows at most max requests in any window: it remembers
// the times of the latest max requests allowed. The Gateway counts the
// deployment's Backend API requests over a sliding window; a token bucket
// would let through twice the budget in the first window.
type slidingWindow struct {
	window time.Duration
	max    int
	// times is a ring of the latest allowed requests, in the order they
	// came, the oldest at next; it grows to max as requests come, so that
	// an ample budget costs no memory until it is spent.
	times []time.Time
	next  int
}

func newSlidingWindow(maxRequests int, window time.Duration) *slidingWindow {
	return &slidingWindow{window: window, max: maxRequests}
}

// take spends one request at now. It returns whether it was allowed, how
// many requests remain in the window, and when refused the wait in
// milliseconds until one is allowed.
func (w *slidingWindow) take(now time.Time) (allowed bool, remaining int, retryAfterMS uint32) {
	if len(w.times) < w.max {
		w.times = append(w.times, now)
	} else {
		// The oldest of the latest max requests must have left the window.
		oldest := w.times[w.next]
		if free := oldest.Add(w.window); now.Before(free) {
			wait := math.Ceil(float64(free.Sub(now)) / float64(time.Millisecond))
			return false, 0, uint32(min(wait, math.MaxUint32))
		}
		w.times[w.next] = now
		w.next = (w.next + 1) % len(w.times)
	}
	// Count those still in the window: the ring is in time order from
	// next on, so those that left it come first.
	n := len(w.times)
	left := sort.Search(n, func(k int) bool { return now.Sub(w.times[(w.next+k)%n]) < w.window })
	return true, w.max - (n - left), 0
}
