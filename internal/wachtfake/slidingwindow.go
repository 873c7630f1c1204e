package wachtfake

import (
	"math"
	"time"
)

// slidingWindow allows at most max requests in any window: it remembers
// the times of the latest max requests allowed. The Gateway counts the
// deployment's Backend API requests over a sliding window; a token bucket
// would let through twice the budget in the first window.
type slidingWindow struct {
	window time.Duration
	times  []time.Time // ring of the latest allowed requests
	next   int
	full   bool
}

func newSlidingWindow(maxRequests int, window time.Duration) *slidingWindow {
	return &slidingWindow{window: window, times: make([]time.Time, maxRequests)}
}

// take spends one request at now. It returns whether it was allowed, how
// many requests remain in the window, and when refused the wait in
// milliseconds until one is allowed.
func (w *slidingWindow) take(now time.Time) (allowed bool, remaining int, retryAfterMS uint32) {
	if w.full {
		// The oldest of the latest max requests must have left the window.
		oldest := w.times[w.next]
		if free := oldest.Add(w.window); now.Before(free) {
			wait := math.Ceil(float64(free.Sub(now)) / float64(time.Millisecond))
			return false, 0, uint32(min(wait, math.MaxUint32))
		}
	}
	w.times[w.next] = now
	w.next = (w.next + 1) % len(w.times)
	if w.next == 0 {
		w.full = true
	}
	// Count those still in the window.
	used := 0
	for i := range w.times {
		if (w.full || i < w.next) && now.Sub(w.times[i]) < w.window {
			used++
		}
	}
	return true, len(w.times) - used, 0
}
