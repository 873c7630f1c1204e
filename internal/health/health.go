// Package health reports authsvc as serving over gRPC health only while
// every dependency it needs answers.
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

// Checker is a [grpchealth.Checker] whose answer comes from probes run in
// the background, so that a health check costs no more than an atomic
// load. It is safe for concurrent use.
type Checker struct {
	services map[string]bool
	logger   *slog.Logger
	interval time.Duration
	timeout  time.Duration

	mu       sync.Mutex
	probes   []namedProbe
	failing  map[string]string
	serving  atomic.Bool
	shutdown atomic.Bool
}

type namedProbe struct {
	name  string
	probe Probe
}

// NewChecker returns a Checker for the named services (the empty name, for
// the server as a whole, is always included). It reports NOT_SERVING until
// [Checker.Run] has seen every probe pass.
func NewChecker(logger *slog.Logger, services ...string) *Checker {
	c := &Checker{
		services: map[string]bool{"": true},
		logger:   logger,
		interval: 2 * time.Second,
		timeout:  time.Second,
		failing:  map[string]string{},
	}
	for _, s := range services {
		c.services[s] = true
	}
	return c
}

// Add registers a probe. Probes added after Run starts are picked up on
// its next round.
func (c *Checker) Add(name string, p Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probes = append(c.probes, namedProbe{name, p})
}

// Run probes every dependency now and then periodically, until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
		_, wasFailing := c.failing[p.name]
		if err != nil {
			ok = false
			c.failing[p.name] = err.Error()
			if !wasFailing {
				c.logger.Warn("dependency not usable", "dependency", p.name, "error", err)
			}
		} else if wasFailing {
			delete(c.failing, p.name)
			c.logger.Info("dependency usable again", "dependency", p.name)
		}
		c.mu.Unlock()
	}
	c.serving.Store(ok)
}

// Failing returns the dependencies whose last probe failed, with why.
func (c *Checker) Failing() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.failing)
}

// Shutdown makes every later check answer NOT_SERVING, so that load
// balancers stop sending work before the server stops.
func (c *Checker) Shutdown() { c.shutdown.Store(true) }

// Serving reports whether the server is ready for work.
func (c *Checker) Serving() bool { return c.serving.Load() && !c.shutdown.Load() }

// Check implements [grpchealth.Checker].
func (c *Checker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if !c.services[req.Service] {
		return nil, connect.NewError(connect.CodeNotFound, nil)
	}
	if c.Serving() {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
