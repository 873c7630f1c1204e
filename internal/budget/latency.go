package budget

import (
	"slices"
	"sync"
	"time"
)

// latencySamples is how many recent calls the estimate is taken from.
const latencySamples = 64

// latency estimates how long a Wacht call takes: the 95th percentile of
// the latest calls' durations.
type latency struct {
	mu      sync.Mutex
	samples []time.Duration
	next    int
	p95     time.Duration
}

func newLatency(initial time.Duration) *latency {
	return &latency{p95: initial}
}

func (l *latency) add(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) < latencySamples {
		l.samples = append(l.samples, d)
	} else {
		l.samples[l.next] = d
		l.next = (l.next + 1) % latencySamples
	}
	sorted := slices.Clone(l.samples)
	slices.Sort(sorted)
	l.p95 = sorted[(len(sorted)*95+99)/100-1]
}

// need is the time a call should have left before it is sent.
func (l *latency) need() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p95 + latencyMargin
}
