package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxCallsPerLoad bounds the calls of one load, whatever its duration.
const maxCallsPerLoad = 20_000_000

// op is one call; worker numbers the caller, i the call (from 0, across
// workers, warm-up included).
type op func(ctx context.Context, worker, i int) error

// load is a closed loop: workers call op back to back, for warmup and then
// for duration, or until limit calls have been made.
type load struct {
	workers  int
	warmup   time.Duration
	duration time.Duration
	// limit is how many calls op can serve (distinct users or tokens
	// left); 0 means no limit but maxCallsPerLoad.
	limit int
	// offset is added to the call numbers given to op, so that loads can
	// share out one pool of inputs.
	offset  int
	timeout time.Duration // per call; 0 means 10s
	op      op
}

// stats are what a load measured after its warm-up.
type stats struct {
	requests int           // calls that succeeded
	errors   int           // calls that failed
	elapsed  time.Duration // from the end of the warm-up to the last call's end
	p50, p99 time.Duration // of the calls that succeeded
	firstErr error
	// exhausted reports that the run ended because limit was reached.
	exhausted bool
	// started is how many call numbers the run used, warm-up included.
	started int
	took    []time.Duration // latencies of the calls that succeeded, sorted
}

// merge adds up the stats of several loads, as if one.
func merge(all ...stats) stats {
	var m stats
	for _, s := range all {
		m.requests += s.requests
		m.errors += s.errors
		m.elapsed += s.elapsed
		m.exhausted = m.exhausted || s.exhausted
		m.started += s.started
		m.took = append(m.took, s.took...)
		if m.firstErr == nil {
			m.firstErr = s.firstErr
		}
	}
	slices.Sort(m.took)
	m.p50, m.p99 = percentile(m.took, 50), percentile(m.took, 99)
	return m
}

// rps is the throughput of successful calls.
func (s stats) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.requests) / s.elapsed.Seconds()
}

// run runs l until its time or calls are used up, or ctx ends.
func (l load) run(ctx context.Context) stats {
	limit := l.limit
	if limit <= 0 || limit > maxCallsPerLoad {
		limit = maxCallsPerLoad
	}
	timeout := l.timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var (
		next      atomic.Int64
		exhausted atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		st        stats
		took      []time.Duration
		lastEnd   time.Time
	)
	start := time.Now()
	measureFrom := start.Add(l.warmup)
	end := measureFrom.Add(l.duration)
	for w := range l.workers {
		wg.Go(func() {
			var (
				mine          []time.Duration
				errs          int
				firstErr      error
				latest        time.Time
				callsThisTime int
			)
			for ctx.Err() == nil && time.Now().Before(end) && callsThisTime < maxCallsPerLoad {
				i := int(next.Add(1) - 1)
				if i >= limit {
					exhausted.Store(true)
					break
				}
				callsThisTime++
				cctx, cancel := context.WithTimeout(ctx, timeout)
				t0 := time.Now()
				err := l.op(cctx, w, l.offset+i)
				t1 := time.Now()
				cancel()
				if t0.Before(measureFrom) {
					continue
				}
				latest = t1
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				mine = append(mine, t1.Sub(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			took = append(took, mine...)
			st.errors += errs
			if st.firstErr == nil {
				st.firstErr = firstErr
			}
			if latest.After(lastEnd) {
				lastEnd = latest
			}
		})
	}
	wg.Wait()
	st.requests = len(took)
	st.exhausted = exhausted.Load()
	st.started = min(int(next.Load()), limit)
	if !lastEnd.IsZero() {
		st.elapsed = lastEnd.Sub(measureFrom)
	}
	slices.Sort(took)
	st.took = took
	st.p50, st.p99 = percentile(took, 50), percentile(took, 99)
	return st
}

// percentile returns the p-th percentile of sorted durations, or 0.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
