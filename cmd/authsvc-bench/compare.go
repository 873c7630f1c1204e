package main

import (
	"context"
	"slices"
	"time"
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
	ratios   []float64 // per round: case req/s ÷ baseline req/s
}

// ratio is the median of the rounds' throughput ratios, or 0.
func (c compared) ratio() float64 {
	if len(c.ratios) == 0 {
		return 0
	}
	rs := slices.Clone(c.ratios)
	slices.Sort(rs)
	if len(rs)%2 == 1 {
		return rs[len(rs)/2]
	}
	return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
}

func (c comparison) run(ctx context.Context) compared {
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
		out         compared
		cases, base []stats
	)
	for r := range rounds {
		if ctx.Err() != nil || (c.pool > 0 && left() <= 0) {
			break
		}
		cl := load{workers: c.workers, duration: per, offset: used, op: c.caseOp}
		if c.pool > 0 {
			cl.limit = left()
		}
		bl := load{workers: c.workers, duration: per, op: c.baseOp}
		var cs, bs stats
		switch {
		case c.split:
			if r < rounds-1 {
				cl.limit = max(min(c.pool/rounds, left()), 1)
			}
			cl.duration = 10 * time.Minute
			cs = cl.run(ctx)
			bl.duration = max(cs.elapsed, minBaselineRound)
			bs = bl.run(ctx)
		case r%2 == 0:
			bs = bl.run(ctx)
			cs = cl.run(ctx)
		default:
			cs = cl.run(ctx)
			bs = bl.run(ctx)
		}
		used += cs.started
		cases, base = append(cases, cs), append(base, bs)
		if bs.rps() > 0 && cs.requests > 0 {
			out.ratios = append(out.ratios, cs.rps()/bs.rps())
		}
	}
	out.cs, out.base = merge(cases...), merge(base...)
	if c.split {
		// Using every input up is how a split comparison ends.
		out.cs.exhausted = false
	}
	return out
}
