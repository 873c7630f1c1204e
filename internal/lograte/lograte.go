// Package lograte bounds the log lines a flood of requests can write: the
// first records of each window are logged, and the rest are counted in
// one summary line when the window ends.
package lograte

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Limiter lets the first Burst records of each window be logged and
// counts the others, by key, for a summary logged once the window ends.
// Keys must come from a fixed set (procedures, codes, outcomes), never
// from a request.
type Limiter struct {
	logger  *slog.Logger
	summary string
	burst   int
	window  time.Duration

	mu          sync.Mutex
	windowStart time.Time
	logged      int
	suppressed  map[string]int
	flushing    bool
}

// New returns a Limiter that logs its summaries to logger, with the
// message summary, at info level.
func New(logger *slog.Logger, summary string, burst int, window time.Duration) *Limiter {
	return &Limiter{logger: logger, summary: summary, burst: burst, window: window, suppressed: map[string]int{}}
}

// Allow reports whether a record may be logged now; if not, it is counted
// under key for the window's summary.
func (l *Limiter) Allow(key string) bool {
	now := time.Now() //nolint:forbidigo // a log rate window, not a fact of the domain
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= l.window {
		l.windowStart, l.logged = now, 0
	}
	if l.logged < l.burst {
		l.logged++
		return true
	}
	l.suppressed[key]++
	if !l.flushing {
		l.flushing = true
		time.AfterFunc(l.windowStart.Add(l.window).Sub(now), l.flush)
	}
	return false
}

// flush logs one summary of the records not logged since the last one.
func (l *Limiter) flush() {
	l.mu.Lock()
	counts := l.suppressed
	l.suppressed = map[string]int{}
	l.flushing = false
	l.mu.Unlock()
	if len(counts) == 0 {
		return
	}
	keys := make([]string, 0, len(counts))
	total := 0
	for k, n := range counts {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	by := make([]any, 0, len(keys))
	for _, k := range keys {
		by = append(by, slog.Int(k, counts[k]))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, l.summary, //nolint:forbidigo // a summary of many requests belongs to none of them
		slog.Int("count", total), slog.Duration("window", l.window), slog.Group("by", by...))
}
