package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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
	r := b.measure(ctx, fmt.Sprintf("GetUser, burst of misses, budget %d/min", b.o.budgetRPM), rep.name, l)
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
		fmt.Sprintf("%d calls answered (the users that did load are read again as the burst cycles through its %d users), "+
			"%d failed (deadline %s; first failure: %v)",
			r.requests, len(b.pools.budget), r.errors, budgetCallTimeout, r.firstErr))
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
	r := b.measure(ctx, fmt.Sprintf("GetUser, load %d users into one replica", len(users)), rep.name, l)
	rss, peak, err := rep.memory()
	if err != nil {
		return nil, err
	}
	r.target = &target{maxRSS: 150 << 20, rss: rss}
	r.notes = append(r.notes, fmt.Sprintf("VmRSS %s after loading (%s at start, peak VmHWM %s)", mib(rss), mib(rssStart), mib(peak)))
	if m, err := goMemstats(ctx, rep.url); err != nil {
		b.logger.Warn("read the replica's Go memory statistics", "error", err)
	} else {
		r.notes = append(r.notes, fmt.Sprintf("Go heap: %s allocated (live and not yet collected), %s in use, %s obtained from the OS; next GC at %s",
			mib(m["go_memstats_heap_alloc_bytes"]), mib(m["go_memstats_heap_inuse_bytes"]),
			mib(m["go_memstats_sys_bytes"]), mib(m["go_memstats_next_gc_bytes"])))
	}
	rep.stop()
	return []result{r}, ctx.Err()
}

// goMemstats reads the Go runtime's memory gauges from a replica's
// /metrics.
func goMemstats(ctx context.Context, baseURL string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(io.LimitReader(res.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "go_memstats_") {
			continue
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = int64(f)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("no go_memstats_ gauges in /metrics")
	}
	return out, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
