// Package benchratio compares a case with a baseline in alternating rounds
// and takes the median of the rounds' ratios.
package benchratio

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Side measures one side of one round and returns its rate: a figure
// where more is better, such as calls a second.
type Side func(ctx context.Context, round int) (rate float64, err error)

// Order says which side goes first in each round.
type Order int

const (
	// Alternate runs the baseline first in even rounds (0, 2, …) and the
	// case first in odd ones, so that drift in the machine's load between
	// rounds hits both sides alike.
	Alternate Order = iota
	// CaseFirst runs the case first in every round, for a baseline that
	// takes its length from the case's.
	CaseFirst
)

// Comparison is a case, its baseline and how they take turns.
type Comparison struct {
	Rounds   int
	Order    Order
	Baseline Side
	Case     Side
	// More, when set, is asked before each round whether to run it; when
	// it answers false the run ends with the rounds so far.
	More func(round int) bool
}

// Run runs the rounds and returns each round's ratio, the case's rate
// divided by the baseline's, in round order. It ends at the first error
// of either side, at a baseline rate that is not positive and finite or a
// case rate that is negative or not finite, and when ctx ends, returning
// the ratios of the rounds before with the error.
func (c Comparison) Run(ctx context.Context) (Ratios, error) {
	var out Ratios
	for round := range c.Rounds {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if c.More != nil && !c.More(round) {
			break
		}
		var base, cs float64
		var err error
		if c.Order == CaseFirst || round%2 == 1 {
			if cs, err = c.Case(ctx, round); err == nil {
				base, err = c.Baseline(ctx, round)
			}
		} else {
			if base, err = c.Baseline(ctx, round); err == nil {
				cs, err = c.Case(ctx, round)
			}
		}
		switch {
		case err != nil:
			return out, fmt.Errorf("round %d: %w", round+1, err)
		case ctx.Err() != nil:
			return out, ctx.Err()
		case !(base > 0) || math.IsInf(base, 0):
			return out, fmt.Errorf("round %d: baseline rate %v is not a positive number", round+1, base)
		case !(cs >= 0) || math.IsInf(cs, 0):
			return out, fmt.Errorf("round %d: case rate %v is not a number of at least 0", round+1, cs)
		}
		out = append(out, cs/base)
	}
	return out, nil
}

// Ratios are the rounds' ratios of a comparison, case ÷ baseline.
type Ratios []float64

// Median is the middle ratio, the mean of the middle two of an even
// count, or 0 when there are none.
func (r Ratios) Median() float64 {
	if len(r) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
