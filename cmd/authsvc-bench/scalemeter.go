package main

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// wachtMeter records every Backend API request the emulator gets and
// how it ended, to count what the deployment spent of its budget.
type wachtMeter struct {
	mu    sync.Mutex
	calls []wachtCall
}

// callOutcome is how one Backend API request ended.
type callOutcome int

const (
	// outcomeAnswered: an answer other than 429 reached a caller still
	// waiting for it.
	outcomeAnswered callOutcome = iota
	// outcomeLimited: 429, the deployment's budget was spent.
	outcomeLimited
	// outcomeAbandoned: the caller went away before the answer.
	outcomeAbandoned
)

type wachtCall struct {
	at      time.Time
	outcome callOutcome
}

// isBackend reports whether a request is to the Backend API, whose
// requests count against the budget: users, their sessions and API keys.
func isBackend(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/users") || strings.HasPrefix(r.URL.Path, "/api-auth/")
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// wrap returns next with its Backend API requests recorded.
func (m *wachtMeter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isBackend(r) {
			next.ServeHTTP(w, r)
			return
		}
		at := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		c := wachtCall{at: at}
		switch {
		case rec.status == 0 || r.Context().Err() != nil:
			c.outcome = outcomeAbandoned
		case rec.status == http.StatusTooManyRequests:
			c.outcome = outcomeLimited
		}
		m.mu.Lock()
		m.calls = append(m.calls, c)
		m.mu.Unlock()
	})
}

// reset forgets every request recorded so far.
func (m *wachtMeter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = nil
}

// wachtFigures are the Backend API requests of a stretch of time.
type wachtFigures struct {
	sent, answered, limited, abandoned int
	// maxPerMinute is the most requests sent in any 60 s, over the whole
	// run since the replicas measured started.
	maxPerMinute int
}

// figures counts the requests sent from from to to, and the most sent
// in any minute of all recorded.
func (m *wachtMeter) figures(from, to time.Time) wachtFigures {
	m.mu.Lock()
	calls := slices.Clone(m.calls)
	m.mu.Unlock()
	slices.SortFunc(calls, func(a, b wachtCall) int { return a.at.Compare(b.at) })
	var f wachtFigures
	at := make([]time.Time, len(calls))
	for i, c := range calls {
		at[i] = c.at
		if c.at.Before(from) || c.at.After(to) {
			continue
		}
		f.sent++
		switch c.outcome {
		case outcomeAnswered:
			f.answered++
		case outcomeLimited:
			f.limited++
		case outcomeAbandoned:
			f.abandoned++
		}
	}
	f.maxPerMinute = mostInWindow(at, time.Minute)
	return f
}

// mostInWindow returns the most of the sorted times that fall in any
// half-open window of the given length.
func mostInWindow(sorted []time.Time, window time.Duration) int {
	most, lo := 0, 0
	for hi, t := range sorted {
		for !sorted[lo].After(t.Add(-window)) {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}
