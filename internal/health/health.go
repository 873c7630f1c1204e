// Package health reports authsvc over gRPC health: ready while every
// dependency no request can do without answers, and each dependency it can
// do without as a health service of its own.
package health

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
)

// Probe reports whether one dependency is usable; nil means it is.
type Probe func(ctx context.Context) error

// Config configures a [Checker].
type Config struct {
	// Logger receives the dependencies' failures and recoveries; nil
	// discards them.
	Logger *slog.Logger
	// Services are the health services ready while every probe added
	// with [Checker.Add] passes; the empty name, for the server as a
	// whole, is always one of them.
	Services []string
	// Observer is told of each change of readiness, for metrics; nil
	// means none.
	Observer Observer
}

// Checker is a [grpchealth.Checker] whose answer comes from probes run in
// the background, so that a health check costs no more than an atomic
// load. It is safe for concurrent use.
type Checker struct {
	services map[string]bool
	// watched maps the health service of each watched dependency to its
	// name.
	watched  map[string]string
	logger   *slog.Logger
	observer Observer
	interval time.Duration
	timeout  time.Duration
	// grace is how long after the start a dependency that has never been
	// usable may stay so before that is worth a warning: a listener that
	// connects a moment after the first probe is not an alarm.
	grace time.Duration
	start time.Time

	mu       sync.Mutex
	probes   []namedProbe
	failing  map[string]string
	up       map[string]bool // passed its latest probe
	usable   map[string]bool // has passed a probe since the start
	warned   map[string]bool // a warning is out and no recovery logged
	ready    bool            // has been SERVING since the start
	serving  atomic.Bool
	shutdown atomic.Bool

	// observeMu orders the reports to the observer of changes of
	// Serving.
	observeMu sync.Mutex
	reported  bool // the last value of Serving given to the observer
}

type namedProbe struct {
	name  string
	probe Probe
	// required: readiness depends on it.
	required bool
}

// NewChecker returns a Checker for cfg.Services, which are ready while
// every probe added with [Checker.Add] passes. It reports them NOT_SERVING
// until [Checker.Run] has seen those probes pass. A dependency that has not
// been usable yet is logged at debug for its first 10 seconds, and warned
// about only after that; once it has been usable, a failure is a warning at
// once.
func NewChecker(cfg Config) *Checker {
	c := &Checker{
		services: map[string]bool{"": true},
		logger:   cfg.Logger,
		observer: cfg.Observer,
		interval: 2 * time.Second,
		timeout:  time.Second,
		grace:    10 * time.Second,
		start:    time.Now(), //nolint:forbidigo // the start-up grace runs on the real clock
		watched:  map[string]string{},
		failing:  map[string]string{},
		up:       map[string]bool{},
		usable:   map[string]bool{},
		warned:   map[string]bool{},
	}
	for _, s := range cfg.Services {
		c.services[s] = true
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.observer == nil {
		c.observer = nopObserver{}
	}
	return c
}

// Add registers the probe of a dependency that no request can do
// without: the services are ready only while it passes. Probes added after
// Run starts are picked up on its next round.
func (c *Checker) Add(name string, p Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probes = append(c.probes, namedProbe{name: name, probe: p, required: true})
}

// Watch registers the probe of a dependency that requests can do without,
// if less well: readiness does not depend on it, and it is reported as the
// health service named service (SERVING while it passes) and in
// [Checker.Dependencies].
func (c *Checker) Watch(name, service string, p Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probes = append(c.probes, namedProbe{name: name, probe: p})
	c.watched[service] = name
}

// report tells the observer about a change of Serving, if there was one.
func (c *Checker) report() {
	c.observeMu.Lock()
	defer c.observeMu.Unlock()
	s := c.Serving()
	if s == c.reported {
		return
	}
	c.reported = s
	c.observer.ObserveReadiness(s)
}

// Run probes every dependency now and then periodically, until ctx ends.
// Until the first time every probe passes it probes more often, from
// 100ms doubling up to the usual interval, so that readiness follows
// quickly on a dependency that needed a moment at the start.
func (c *Checker) Run(ctx context.Context) {
	wait := min(100*time.Millisecond, c.interval)
	for {
		c.Probe(ctx)
		if c.serving.Load() {
			wait = c.interval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, c.interval)
	}
}

// Probe runs every probe once and updates the reported status.
func (c *Checker) Probe(ctx context.Context) {
	c.mu.Lock()
	probes := append([]namedProbe(nil), c.probes...)
	c.mu.Unlock()

	ok := true
	for _, p := range probes {
		pctx, cancel := context.WithTimeout(ctx, c.timeout)
		err := p.probe(pctx)
		cancel()
		c.mu.Lock()
		c.up[p.name] = err == nil
		if err != nil {
			ok = ok && !p.required
			c.failing[p.name] = err.Error()
			switch {
			case c.warned[p.name]:
			case c.usable[p.name] || time.Since(c.start) >= c.grace:
				c.warned[p.name] = true
				c.logger.Warn("dependency not usable", "dependency", p.name, "error", err)
			default:
				c.logger.Debug("waiting for dependency", "dependency", p.name, "error", err)
			}
		} else {
			delete(c.failing, p.name)
			c.usable[p.name] = true
			if c.warned[p.name] {
				delete(c.warned, p.name)
				c.logger.Info("dependency usable again", "dependency", p.name)
			}
		}
		c.mu.Unlock()
	}
	c.serving.Store(ok)
	c.report()
	if ok {
		c.mu.Lock()
		if !c.ready {
			c.ready = true
			c.logger.Info("ready: every dependency a request needs is usable", "after", time.Since(c.start).Round(time.Millisecond).String())
		}
		c.mu.Unlock()
	}
}

// Failing returns the dependencies whose last probe failed, with why.
func (c *Checker) Failing() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.failing)
}

// Dependencies reports, for each probe by name, whether its latest run
// passed; false before its first.
func (c *Checker) Dependencies() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.probes))
	for _, p := range c.probes {
		out[p.name] = c.up[p.name]
	}
	return out
}

// Shutdown makes every later check answer NOT_SERVING, so that load
// balancers stop sending work before the server stops.
func (c *Checker) Shutdown() {
	c.shutdown.Store(true)
	c.report()
}

// Serving reports whether the server is ready for work.
func (c *Checker) Serving() bool { return c.serving.Load() && !c.shutdown.Load() }

// Check implements [grpchealth.Checker].
func (c *Checker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	serving := false
	switch {
	case c.services[req.Service]:
		serving = c.Serving()
	default:
		c.mu.Lock()
		name, ok := c.watched[req.Service]
		serving = c.up[name] && !c.shutdown.Load()
		c.mu.Unlock()
		if !ok {
			// The gRPC health protocol's own answer for a service it does
			// not know, which clients and kubelet read as such: not an
			// error of authsvc's, so not internal/service's to map.
			return nil, connect.NewError(connect.CodeNotFound, nil)
		}
	}
	if serving {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
