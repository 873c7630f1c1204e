package rpclog

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Defaults of the refusal log limit: at most DefaultBurst refused calls
// are logged per DefaultWindow, and the rest are counted in one summary
// line at the end of the window.
const (
	DefaultBurst  = 20
	DefaultWindow = 10 * time.Second
)

// refusalKey groups the refusals a summary counts. Both parts come from
// fixed sets (the registered procedures and the Connect codes).
type refusalKey struct{ procedure, code string }

// refusalLimiter lets the first refusals of each window be logged and
// counts the others, which flush logs once the window ends.
type refusalLimiter struct {
	logger *slog.Logger
	burst  int
	window time.Duration

	mu          sync.Mutex
	windowStart time.Time
	logged      int
	suppressed  map[refusalKey]int
	flushing    bool
}

func newRefusalLimiter(logger *slog.Logger, burst int, window time.Duration) *refusalLimiter {
	return &refusalLimiter{logger: logger, burst: burst, window: window, suppressed: map[refusalKey]int{}}
}

// allow reports whether a refusal may be logged now; if not, it is
// counted for the window's summary.
func (l *refusalLimiter) allow(procedure, code string) bool {
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
	l.suppressed[refusalKey{procedure, code}]++
	if !l.flushing {
		l.flushing = true
		time.AfterFunc(l.windowStart.Add(l.window).Sub(now), l.flush)
	}
	return false
}

// flush logs one summary of the refusals not logged since the last one.
func (l *refusalLimiter) flush() {
	l.mu.Lock()
	counts := l.suppressed
	l.suppressed = map[refusalKey]int{}
	l.flushing = false
	l.mu.Unlock()
	if len(counts) == 0 {
		return
	}
	keys := make([]refusalKey, 0, len(counts))
	total := 0
	for k, n := range counts {
		keys = append(keys, k)
		total += n
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].procedure != keys[j].procedure {
			return keys[i].procedure < keys[j].procedure
		}
		return keys[i].code < keys[j].code
	})
	by := make([]any, 0, len(keys))
	for _, k := range keys {
		by = append(by, slog.Int(k.procedure+" "+k.code, counts[k]))
	}
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "rpc refusals not logged", //nolint:forbidigo // a summary of many calls belongs to none of them
		slog.Int("count", total), slog.Duration("window", l.window), slog.Group("by", by...))
}
