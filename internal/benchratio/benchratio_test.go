package benchratio_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/benchratio"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ratios benchratio.Ratios
		want   float64
	}{
		{"none", nil, 0},
		{"one", benchratio.Ratios{0.9}, 0.9},
		{"odd count", benchratio.Ratios{1.0, 0.5, 0.8}, 0.8},
		{"even count", benchratio.Ratios{0.4, 1.0, 0.6, 0.8}, 0.7},
		{"five rounds", benchratio.Ratios{0.93, 0.91, 0.99, 0.2, 0.95}, 0.93},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := fmt.Sprint(tt.ratios)
			if got := tt.ratios.Median(); got != tt.want {
				t.Errorf("Median of %v = %v, want %v", tt.ratios, got, tt.want)
			}
			if after := fmt.Sprint(tt.ratios); after != before {
				t.Errorf("Median reordered the ratios: %s, was %s", after, before)
			}
		})
	}
}

// recorder logs the turns of the sides it makes.
type recorder struct{ turns []string }

// side returns rates[round] in each round, and an error in round failAt.
func (r *recorder) side(name string, rates []float64, failAt int) benchratio.Side {
	return func(_ context.Context, round int) (float64, error) {
		r.turns = append(r.turns, fmt.Sprintf("%s%d", name, round))
		if round == failAt {
			return 0, errors.New("no call succeeded")
		}
		return rates[round], nil
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rounds     int
		order      benchratio.Order
		base, cs   []float64
		baseErrAt  int // round whose baseline fails, or 0 for none
		stopBefore int // More answers false from this round on, or 0 for no More
		wantTurns  []string
		wantRatios benchratio.Ratios
		wantErr    string
	}{{
		name: "alternating, baseline first in even rounds", rounds: 4,
		base: []float64{100, 100, 200, 50}, cs: []float64{90, 50, 100, 50},
		wantTurns:  []string{"base0", "case0", "case1", "base1", "base2", "case2", "case3", "base3"},
		wantRatios: benchratio.Ratios{0.9, 0.5, 0.5, 1},
	}, {
		name: "case first in every round", rounds: 3, order: benchratio.CaseFirst,
		base: []float64{10, 10, 10}, cs: []float64{20, 5, 10},
		wantTurns:  []string{"case0", "base0", "case1", "base1", "case2", "base2"},
		wantRatios: benchratio.Ratios{2, 0.5, 1},
	}, {
		name: "a case with no successful call is a ratio of 0", rounds: 1,
		base: []float64{10}, cs: []float64{0},
		wantTurns: []string{"base0", "case0"}, wantRatios: benchratio.Ratios{0},
	}, {
		name: "a baseline of rate 0 is an error, not a ratio", rounds: 3,
		base: []float64{10, 0, 10}, cs: []float64{10, 10, 10},
		wantTurns: []string{"base0", "case0", "case1", "base1"}, wantRatios: benchratio.Ratios{1},
		wantErr: "round 2: baseline rate 0",
	}, {
		name: "a NaN baseline is an error", rounds: 1,
		base: []float64{math.NaN()}, cs: []float64{10},
		wantTurns: []string{"base0", "case0"}, wantErr: "baseline rate NaN",
	}, {
		name: "an infinite case rate is an error", rounds: 1,
		base: []float64{10}, cs: []float64{math.Inf(1)},
		wantTurns: []string{"base0", "case0"}, wantErr: "case rate +Inf",
	}, {
		name: "a failed baseline ends the run before the case's turn", rounds: 3, baseErrAt: 2,
		base: []float64{10, 10, 10}, cs: []float64{5, 5, 5},
		wantTurns:  []string{"base0", "case0", "case1", "base1", "base2"},
		wantRatios: benchratio.Ratios{0.5, 0.5}, wantErr: "round 3: no call succeeded",
	}, {
		name: "More ends the run early without an error", rounds: 5, stopBefore: 2,
		base: []float64{10, 10}, cs: []float64{10, 20},
		wantTurns:  []string{"base0", "case0", "case1", "base1"},
		wantRatios: benchratio.Ratios{1, 2},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			baseErrAt := -1
			if tt.baseErrAt > 0 {
				baseErrAt = tt.baseErrAt
			}
			c := benchratio.Comparison{Rounds: tt.rounds, Order: tt.order,
				Baseline: r.side("base", tt.base, baseErrAt), Case: r.side("case", tt.cs, -1)}
			if tt.stopBefore > 0 {
				c.More = func(round int) bool { return round < tt.stopBefore }
			}
			got, err := c.Run(t.Context())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Run error = %v, want one containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantRatios, got); diff != "" {
				t.Errorf("ratios (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTurns, r.turns); diff != "" {
				t.Errorf("turns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	rounds := 0
	side := func(context.Context, int) (float64, error) { return 1, nil }
	c := benchratio.Comparison{Rounds: 5, Baseline: side, Case: func(ctx context.Context, round int) (float64, error) {
		rounds++
		if round == 1 {
			cancel()
		}
		return 1, nil
	}}
	got, err := c.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	// The round during which ctx ended has no ratio.
	if diff := cmp.Diff(benchratio.Ratios{1}, got); diff != "" || rounds != 2 {
		t.Errorf("ratios (-want +got):\n%s; case ran %d times, want 2", diff, rounds)
	}
}
