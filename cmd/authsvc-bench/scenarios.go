package main

import (
	"context"
	"fmt"
	"time"
)

const (
	// tokenLifetime outlives any run, so no token expires mid-run.
	tokenLifetime = time.Hour
	// maxUniqueTokens bounds the pool of tokens minted for one scenario.
	maxUniqueTokens = 1_000_000
	// probeWarmup is the warm-up of the one-call-in-flight probes.
	probeWarmup = 200 * time.Millisecond
)

// scenarios are the scenarios run against one replica, each at two loads:
// o.concurrency calls in flight, for throughput, and one call in flight,
// for latency without queueing. Each is compared with the no-op RPC on
// the same replica at the same load.
type scenarios struct {
	b            *bench
	rep          *replica
	cl           *clients
	baseC, baseS result // the no-op RPC under load and alone
}

// side is one of a scenario's two loads: many calls in flight, or one.
type side struct {
	op     op
	pool   int  // distinct inputs of op, 0 for unbounded
	split  bool // the inputs are shared out among the rounds, which end when theirs are used
	target *target
}

// pair compares a scenario with the no-op RPC at o.concurrency calls in
// flight (throughput) and at one (latency without queueing).
func (s *scenarios) pair(ctx context.Context, name string, under, alone side) ([]result, error) {
	o := s.b.o
	u, err := s.compare(ctx, name, o.concurrency, o.warmup, o.duration, under)
	if err != nil {
		return nil, err
	}
	a, err := s.compare(ctx, name, 1, probeWarmup, o.latencyDuration, alone)
	if err != nil {
		return nil, err
	}
	return []result{u, a}, nil
}

func (s *scenarios) compare(ctx context.Context, name string, workers int, warmup, duration time.Duration, sd side) (result, error) {
	before := s.b.emu.calls(everyRoute)
	c, err := comparison{workers: workers, warmup: warmup, duration: duration, rounds: s.b.o.rounds,
		caseOp: sd.op, baseOp: s.noop, pool: sd.pool, split: sd.split}.run(ctx)
	if err != nil {
		return result{}, fmt.Errorf("%s, %d in flight: %w", name, workers, err)
	}
	r := result{name: name, replica: s.rep.name, inFlight: workers, stats: c.cs,
		wachtCalls: s.b.emu.calls(everyRoute) - before, vs: &c, target: sd.target}
	switch {
	case sd.split:
		r.notes = append(r.notes, fmt.Sprintf("%d distinct inputs, each used once, shared out among the rounds", sd.pool))
	case c.cs.exhausted:
		r.notes = append(r.notes, fmt.Sprintf("used up its %d distinct inputs before its time was up", sd.pool))
	}
	s.b.logger.Info("measured", "scenario", name, "replica", s.rep.name, "in_flight", workers, "requests", r.requests,
		"errors", r.errors, "rps", int(r.rps()), "p50", r.p50, "ratio", fmt.Sprintf("%.2f", r.ratio()),
		"baseline_rps", int(c.base.rps()), "wacht_calls", r.wachtCalls)
	return r, nil
}

// measure runs l alone and counts the emulator's calls meanwhile.
func (b *bench) measure(ctx context.Context, name, replica string, l load) result {
	before := b.emu.calls(everyRoute)
	st := l.run(ctx)
	r := result{name: name, replica: replica, inFlight: l.workers, stats: st, wachtCalls: b.emu.calls(everyRoute) - before}
	b.logger.Info("measured", "scenario", name, "replica", replica, "in_flight", l.workers, "requests", st.requests,
		"errors", st.errors, "rps", int(st.rps()), "p50", st.p50, "p99", st.p99, "wacht_calls", r.wachtCalls)
	return r
}

func (s *scenarios) baseline(ctx context.Context) ([]result, error) {
	o := s.b.o
	s.baseC = s.b.measure(ctx, scenarioBaseline, s.rep.name,
		load{workers: o.concurrency, warmup: o.warmup, duration: o.duration, op: s.noop})
	s.baseS = s.b.measure(ctx, scenarioBaseline, s.rep.name,
		load{workers: 1, warmup: probeWarmup, duration: o.latencyDuration, op: s.noop})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.baseC.requests == 0 || s.baseS.requests == 0 {
		return nil, fmt.Errorf("baseline on %s: no call succeeded, first error: %v", s.rep.name, firstErr(s.baseC, s.baseS))
	}
	return []result{s.baseC, s.baseS}, nil
}

func firstErr(rs ...result) error {
	for _, r := range rs {
		if r.firstErr != nil {
			return r.firstErr
		}
	}
	return nil
}
