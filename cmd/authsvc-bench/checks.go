package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

const (
	// budgetCallTimeout is the deadline of each call of the budget check;
	// calls held back by the rate limiter for longer fail.
	budgetCallTimeout = 2 * time.Second
	// sampleEvery is how often the budget check reads the emulator's
	// counters.
	sampleEvery = 100 * time.Millisecond
)

// sample is the emulator's Backend API call count at one moment.
type sample struct {
	at    time.Time
	calls int
}

// budget starts a replica whose Wacht budget is o.budgetRPM and sends it a
// burst of misses for o.budgetDuration, cycling through users nothing has
// read (a user whose load was refused stays a miss; the few loaded become
// hits), then counts the Backend API calls that reached the emulator in
// every minute-long window.
func (b *bench) budget(ctx context.Context) ([]result, error) {
	rep, cl, err := b.start(ctx, "r3", b.o.budgetRPM)
	if err != nil {
		return nil, err
	}
	s := &scenarios{b: b, rep: rep, cl: cl}
	samples := []sample{{time.Now(), b.emu.calls(backendRoutes)}}
	var mu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case now := <-t.C:
				mu.Lock()
				samples = append(samples, sample{now, b.emu.calls(backendRoutes)})
				mu.Unlock()
			}
		}
	}()
	l := load{workers: b.o.concurrency, duration: b.o.budgetDuration, timeout: budgetCallTimeout, op: s.getUser(b.pools.budget)}
	r := b.measure(ctx, fmt.Sprintf("GetUser, burst of misses, budget %d/min", b.o.budgetRPM), rep.name, l, nil)
	// Loads that outlived their callers may still call Wacht: stop the
	// replica, then take the last count.
	rep.stop()
	close(stopSampling)
	<-sampled
	samples = append(samples, sample{time.Now(), b.emu.calls(backendRoutes)})

	total := samples[len(samples)-1].calls - samples[0].calls
	worst := maxPerWindow(samples, time.Minute)
	span := samples[len(samples)-1].at.Sub(samples[0].at)
	r.errorsExpected = true
	r.target = &target{maxWachtCalls: b.o.budgetRPM, wachtCallsOf: worst}
	r.notes = append(r.notes,
		fmt.Sprintf("%d Backend API calls in %s, at most %d in any 60 s window (budget %d a minute)",
			total, span.Round(100*time.Millisecond), worst, b.o.budgetRPM),
		fmt.Sprintf("%d calls answered, %d failed (deadline %s; first failure: %v)",
			r.requests, r.errors, budgetCallTimeout, r.firstErr))
	if span < time.Minute {
		r.notes = append(r.notes, "the run is shorter than a minute, so the window is the whole run: pass -budget-duration 70s to slide it")
	}
	return []result{r}, ctx.Err()
}

// maxPerWindow returns the most calls counted in any window of length w
// between samples, which are in time order.
func maxPerWindow(samples []sample, w time.Duration) int {
	worst, k := 0, 0
	for j := range samples {
		// k is the latest sample at least w before samples[j].
		for k+1 < j && !samples[k+1].at.After(samples[j].at.Add(-w)) {
			k++
		}
		worst = max(worst, samples[j].calls-samples[k].calls)
	}
	return worst
}

// memory loads o.memoryUsers users into a fresh replica, as many as its
// in-memory level holds, and reads its resident memory.
func (b *bench) memory(ctx context.Context) ([]result, error) {
	start := time.Now()
	users, err := b.emu.seed(b.o.memoryUsers, false)
	if err != nil {
		return nil, err
	}
	b.logger.Info("wacht emulator seeded", "users", len(users), "took", time.Since(start).Round(time.Millisecond))
	rep, cl, err := b.start(ctx, "r4", ampleRPM)
	if err != nil {
		return nil, err
	}
	rssStart, _, err := rep.memory()
	if err != nil {
		return nil, err
	}
	s := &scenarios{b: b, rep: rep, cl: cl}
	l := load{workers: b.o.concurrency, duration: 10 * time.Minute, limit: len(users), op: s.getUser(users)}
	r := b.measure(ctx, fmt.Sprintf("GetUser, load %d users into one replica", len(users)), rep.name, l, nil)
	rss, peak, err := rep.memory()
	if err != nil {
		return nil, err
	}
	r.target = &target{maxRSS: 150 << 20, rss: rss}
	r.notes = append(r.notes, fmt.Sprintf("VmRSS %s after loading (%s at start, peak VmHWM %s); %d user details calls",
		mib(rss), mib(rssStart), mib(peak), b.emu.fake.Calls(wachtfake.RouteUserDetails)))
	rep.stop()
	return []result{r}, ctx.Err()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
