package service_test

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/benchratio"
	"github.com/authsvc/authsvc/internal/pgtest"
)

// ratioCase is one case of BenchmarkRatios.
type ratioCase struct {
	name   string
	target string // the goal, for the log; never asserted
	rig    func(b *testing.B) *benchRig
	// op returns the case's RPC, good for n calls.
	op func(b *testing.B, rig *benchRig, n int) benchOp
}

var ratioCases = []ratioCase{{
	name:   "VerifySessionRepeated",
	target: "throughput ratio >= 0.9",
	rig:    func(b *testing.B) *benchRig { return newBenchRig(b, benchRigConfig{users: 1}) },
	op: func(b *testing.B, rig *benchRig, _ int) benchOp {
		tok := rig.token(b, 0)
		return rig.verify(func(int) string { return tok })
	},
}, {
	name:   "VerifySessionUnique",
	target: "throughput ratio >= 0.6",
	rig:    func(b *testing.B) *benchRig { return newBenchRig(b, benchRigConfig{users: 1}) },
	op: func(b *testing.B, rig *benchRig, n int) benchOp {
		toks := rig.uniqueTokens(b, n)
		var next atomic.Int64
		return rig.verify(func(int) string { return toks[next.Add(1)-1] })
	},
}, {
	name:   "GetUserMemoryHit",
	target: "throughput ratio >= 0.9",
	rig: func(b *testing.B) *benchRig {
		rig := newBenchRig(b, benchRigConfig{users: benchMemoryUsers})
		rig.load(b)
		return rig
	},
	op: func(_ *testing.B, rig *benchRig, _ int) benchOp { return rig.getUser },
}, {
	name:   "GetUserPostgresHit",
	target: "p50 <= 1ms (one call in flight)",
	rig: func(b *testing.B) *benchRig {
		rig := newBenchRig(b, benchRigConfig{users: benchPostgresUsers, pool: pgtest.NewPool(b), maxEntries: benchTinyMemory})
		rig.load(b)
		return rig
	},
	op: func(_ *testing.B, rig *benchRig, _ int) benchOp { return rig.getUser },
}}

// Fixed work of each BenchmarkRatios case: after a warm-up of one round,
// ratioRounds rounds, each of a throughput batch (ratioBatch calls,
// benchConcurrency in flight) and a latency batch (ratioSerial calls, one
// in flight) of the no-op RPC and of the case.
const (
	ratioRounds = 5
	ratioBatch  = 4000
	ratioSerial = 500
)

// BenchmarkRatios measures each case against the no-op RPC of the same
// server and transport, alternating which of the two goes first in each
// round so that drift in the machine's load hits both. It reports
// ratio_vs_noop, the median over the rounds of the case's throughput
// divided by the no-op's (1 means as fast as the no-op RPC), and
// p50_ratio_vs_noop, the case's p50 latency with one call in flight
// divided by the no-op's. It does a fixed amount of work whatever b.N is;
// ns/op is the case's under load, p50-ns its latency alone.
func BenchmarkRatios(b *testing.B) {
	for _, c := range ratioCases {
		b.Run(c.name, func(b *testing.B) {
			rig := c.rig(b)
			op := c.op(b, rig, (ratioRounds+1)*(ratioBatch+ratioSerial))
			if _, err := (&ratioRun{noop: rig.noop, op: op}).comparison(1).Run(b.Context()); err != nil { // warm-up
				b.Fatal(err)
			}
			rig.reads.reset()
			m := &ratioRun{noop: rig.noop, op: op}
			b.ReportAllocs()
			b.ResetTimer()
			ratios, err := m.comparison(ratioRounds).Run(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			m.report(b, c, ratios)
			rig.reads.report(b)
		})
	}
}

// ratioRun accumulates the rounds of one BenchmarkRatios case.
type ratioRun struct {
	noop, op             benchOp
	noopTime, opTime     time.Duration
	noopSerial, opSerial []time.Duration
	// opBytes and opAllocs are the heap allocations, client and server,
	// during the case's throughput batches.
	opBytes, opAllocs uint64
}

// comparison runs the no-op RPC and the case in alternating rounds.
func (m *ratioRun) comparison(rounds int) benchratio.Comparison {
	return benchratio.Comparison{Rounds: rounds, Order: benchratio.Alternate, Baseline: m.noopSide, Case: m.caseSide}
}

// noopSide runs a throughput batch and a latency batch of the no-op RPC
// and returns its throughput.
func (m *ratioRun) noopSide(ctx context.Context, _ int) (float64, error) {
	tp, err := runBatch(ctx, m.noop, ratioBatch, benchConcurrency)
	if err != nil {
		return 0, err
	}
	lat, err := runBatch(ctx, m.noop, ratioSerial, 1)
	if err != nil {
		return 0, err
	}
	m.noopTime += tp.elapsed
	m.noopSerial = append(m.noopSerial, lat.took...)
	return ratioBatch / tp.elapsed.Seconds(), nil
}

// caseSide runs a throughput batch, counting its allocations, and a
// latency batch of the case and returns its throughput.
func (m *ratioRun) caseSide(ctx context.Context, _ int) (float64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tp, err := runBatch(ctx, m.op, ratioBatch, benchConcurrency)
	runtime.ReadMemStats(&after)
	if err != nil {
		return 0, err
	}
	lat, err := runBatch(ctx, m.op, ratioSerial, 1)
	if err != nil {
		return 0, err
	}
	m.opTime += tp.elapsed
	m.opSerial = append(m.opSerial, lat.took...)
	m.opBytes += after.TotalAlloc - before.TotalAlloc
	m.opAllocs += after.Mallocs - before.Mallocs
	return ratioBatch / tp.elapsed.Seconds(), nil
}

func (m *ratioRun) report(b *testing.B, c ratioCase, ratios benchratio.Ratios) {
	slices.Sort(m.noopSerial)
	slices.Sort(m.opSerial)
	ops := float64(len(ratios) * ratioBatch)
	ratio := ratios.Median()
	opP50, noopP50 := percentile(m.opSerial, 50), percentile(m.noopSerial, 50)
	p50Ratio := float64(opP50) / float64(noopP50)
	b.ReportMetric(float64(m.opTime.Nanoseconds())/ops, "ns/op")
	b.ReportMetric(float64(m.noopTime.Nanoseconds())/ops, "noop-ns/op")
	b.ReportMetric(float64(m.opBytes)/ops, "B/op")
	b.ReportMetric(float64(m.opAllocs)/ops, "allocs/op")
	b.ReportMetric(ratio, "ratio_vs_noop")
	b.ReportMetric(p50Ratio, "p50_ratio_vs_noop")
	reportLatency(b, "", m.opSerial)
	reportLatency(b, "noop-", m.noopSerial)
	b.Logf("%s: throughput %.2fx the no-op RPC's (rounds: %s); p50 alone %v vs %v (%.2fx); target: %s",
		c.name, ratio, fmtRatios(slices.Sorted(slices.Values(ratios))), opP50, noopP50, p50Ratio, c.target)
}

// batch is the outcome of runBatch.
type batch struct {
	elapsed time.Duration
	took    []time.Duration
}

// runBatch makes n calls of op, conc at a time, and returns the wall time
// and each call's latency. It stops at the first error.
func runBatch(ctx context.Context, op benchOp, n, conc int) (batch, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  = make([]time.Duration, 0, n)
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			took := make([]time.Duration, 0, n/conc+1)
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				t0 := time.Now()
				if err := op(ctx, i); err != nil {
					cancel(err)
					return
				}
				took = append(took, time.Since(t0))
			}
			mu.Lock()
			all = append(all, took...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return batch{}, err
	}
	return batch{elapsed: elapsed, took: all}, nil
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}
