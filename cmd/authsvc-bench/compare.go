package main

import (
	"context"
	"time"

	"github.com/authsvc/authsvc/internal/benchratio"
)

// minBaselineRound is the shortest baseline round of a split comparison.
const minBaselineRound = 100 * time.Millisecond

// comparison runs a case and the no-op RPC in alternating rounds on one
// replica at one load, so that changes in the machine's load between
// rounds hit both.
type comparison struct {
	workers  int
	warmup   time.Duration // of each side before the first round; none when split
	duration time.Duration // of each side, over all its rounds
	rounds   int
	caseOp   op
	baseOp   op
	// pool is how many distinct inputs caseOp has, 0 for unbounded; no
	// input is used twice, warm-up included.
	pool int
	// split gives each case round an equal share of pool and ends the
	// round when its share is used up; the baseline round after it then
	// runs as long as it did.
	split bool
}

// compared is what a comparison measured.
type compared struct {
	cs, base stats
	ratios   benchratio.Ratios // per round: case req/s ÷ baseline req/s
}

// run runs the comparison. It fails when a baseline round has no
// successful call or ctx ends.
func (c comparison) run(ctx context.Context) (compared, error) {
	used := 0
	left := func() int { return c.pool - used }
	if c.warmup > 0 && !c.split {
		load{workers: c.workers, duration: c.warmup, op: c.baseOp}.run(ctx)
		wl := load{workers: c.workers, duration: c.warmup, op: c.caseOp}
		if c.pool > 0 {
			// Keep at least one input per round for the timed part.
			wl.limit = max(c.pool/2, 1)
		}
		used += wl.run(ctx).started
	}
	rounds := max(c.rounds, 1)
	per := c.duration / time.Duration(rounds)
	var (
		cases, base []stats
		caseTook    time.Duration // of the last case round
	)
	caseSide := func(ctx context.Context, r int) (float64, error) {
		cl := load{workers: c.workers, duration: per, offset: used, op: c.caseOp}
		if c.pool > 0 {
			cl.limit = left()
		}
		if c.split {
			if r < rounds-1 {
				cl.limit = max(min(c.pool/rounds, left()), 1)
			}
			cl.duration = 10 * time.Minute
		}
		cs := cl.run(ctx)
		used += cs.started
		caseTook = cs.elapsed
		cases = append(cases, cs)
		return cs.rps(), nil
	}
	baseSide := func(ctx context.Context, _ int) (float64, error) {
		bl := load{workers: c.workers, duration: per, op: c.baseOp}
		if c.split {
			bl.duration = max(caseTook, minBaselineRound)
		}
		bs := bl.run(ctx)
		base = append(base, bs)
		return bs.rps(), nil
	}
	order := benchratio.Alternate
	if c.split {
		order = benchratio.CaseFirst
	}
	ratios, err := benchratio.Comparison{Rounds: rounds, Order: order, Baseline: baseSide, Case: caseSide,
		More: func(int) bool { return c.pool == 0 || left() > 0 }}.Run(ctx)
	out := compared{cs: merge(cases...), base: merge(base...), ratios: ratios}
	if c.split {
		// Using every input up is how a split comparison ends.
		out.cs.exhausted = false
	}
	return out, err
}
