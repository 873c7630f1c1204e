package wachtfake

import (
	"net/http"
	"time"
)

// FaultMode is how a faulted route misbehaves.
type FaultMode int

// Fault modes.
const (
	// FaultNone adds only the fault's Latency.
	FaultNone FaultMode = iota
	// FaultDown closes the connection without a response. When the
	// connection cannot be hijacked (HTTP/2), the handler aborts with
	// http.ErrAbortHandler, which net/http turns into a reset stream.
	FaultDown
	// Fault5xx answers with a Backend API error of status Fault.Status
	// (default 503).
	Fault5xx
	// Fault429 answers 429 with Wacht's message and no Retry-After header.
	Fault429
)

// Fault makes routes slow or failing.
type Fault struct {
	// Mode is how the route fails after Latency.
	Mode FaultMode
	// Status is the status of a Fault5xx, from 500 to 599; anything else
	// means 503.
	Status int
	// Latency delays the response; the delay ends early when the request's
	// context is done, and then nothing is written.
	Latency time.Duration
	// Route is a route name (see the Route constants); "" means every
	// route. A fault for a route takes precedence over the one for "".
	Route string
	// Times is how many requests the fault applies to before it clears
	// itself; zero means until [Server.ClearFaults].
	Times int
	// After is how many requests the route serves normally before the
	// fault applies, for a failure in the middle of a sequence.
	After int
}

// SetFault installs f for f.Route, replacing any fault for that route.
// Out-of-range values are normalised: a Fault5xx status outside 500-599
// becomes 503, and negative Latency or Times become zero.
func (s *Server) SetFault(f Fault) {
	if f.Mode == Fault5xx && (f.Status < 500 || f.Status > 599) {
		f.Status = http.StatusServiceUnavailable
	}
	f.Latency = max(f.Latency, 0)
	f.Times = max(f.Times, 0)
	f.After = max(f.After, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[f.Route] = &f
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault that applies to route and consumes one of
// its Times.
func (s *Server) takeFault(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := route
	f, ok := s.faults[key]
	if !ok {
		key = ""
		f, ok = s.faults[key]
	}
	if !ok {
		return Fault{}, false
	}
	if f.After > 0 {
		f.After--
		return Fault{}, false
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.faults, key)
		}
	}
	return *f, true
}

// applyFault runs the fault for route, if any, and reports whether the
// request should still be served.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, route string) bool {
	f, ok := s.takeFault(route)
	if !ok {
		return true
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	switch f.Mode {
	case FaultDown:
		dropConnection(w)
		return false
	case Fault5xx:
		writeRejection(w, f.Status)
		return false
	case Fault429:
		writeError(w, http.StatusTooManyRequests, "Rate limit exceeded. Retry after 60 seconds")
		return false
	default:
		return true
	}
}

// dropConnection closes the client connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
