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

// Fixed work of each BenchmarkRatios case: after a warm-up of one batch
// of each, ratioRounds rounds, each of a throughput batch (ratioBatch
// calls, benchConcurrency in flight) and a latency batch (ratioSerial
// calls, one in flight) of the no-op RPC and of the case.
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
			m := ratioRun{noop: rig.noop, op: op}
			if err := m.round(false, false); err != nil { // warm-up
				b.Fatal(err)
			}
			rig.reads.reset()
			m = ratioRun{noop: rig.noop, op: op}
			b.ReportAllocs()
			b.ResetTimer()
			for round := range ratioRounds {
				if err := m.round(round%2 == 1, true); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.report(b, c)
			rig.reads.report(b)
		})
	}
}

// ratioRun accumulates the rounds of one BenchmarkRatios case.
type ratioRun struct {
	noop, op             benchOp
	ratios               []float64 // per round: case throughput / no-op throughput
	noopTime, opTime     time.Duration
	noopSerial, opSerial []time.Duration
	// opBytes and opAllocs are the heap allocations, client and server,
	// during the case's throughput batches.
	opBytes, opAllocs uint64
}

// round runs one throughput batch and one latency batch of each, the
// case first when caseFirst, and keeps the figures when keep.
func (m *ratioRun) round(caseFirst, keep bool) error {
	type pair struct{ noop, op batch }
	var bytes, allocs uint64
	run := func(n, conc int) (pair, error) {
		var p pair
		var err error
		caseBatch := func() {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p.op, err = runBatch(m.op, n, conc)
			runtime.ReadMemStats(&after)
			bytes, allocs = after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
		}
		if caseFirst {
			if caseBatch(); err != nil {
				return p, err
			}
			p.noop, err = runBatch(m.noop, n, conc)
			return p, err
		}
		if p.noop, err = runBatch(m.noop, n, conc); err != nil {
			return p, err
		}
		caseBatch()
		return p, err
	}
	tp, err := run(ratioBatch, benchConcurrency)
	if err != nil {
		return err
	}
	tpBytes, tpAllocs := bytes, allocs
	lat, err := run(ratioSerial, 1)
	if err != nil {
		return err
	}
	if keep {
		m.ratios = append(m.ratios, tp.noop.elapsed.Seconds()/tp.op.elapsed.Seconds())
		m.noopTime += tp.noop.elapsed
		m.opTime += tp.op.elapsed
		m.noopSerial = append(m.noopSerial, lat.noop.took...)
		m.opSerial = append(m.opSerial, lat.op.took...)
		m.opBytes += tpBytes
		m.opAllocs += tpAllocs
	}
	return nil
}

func (m *ratioRun) report(b *testing.B, c ratioCase) {
	slices.Sort(m.ratios)
	slices.Sort(m.noopSerial)
	slices.Sort(m.opSerial)
	ops := float64(len(m.ratios) * ratioBatch)
	ratio := m.ratios[len(m.ratios)/2]
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
		c.name, ratio, fmtRatios(m.ratios), opP50, noopP50, p50Ratio, c.target)
}

// batch is the outcome of runBatch.
type batch struct {
	elapsed time.Duration
	took    []time.Duration
}

// runBatch makes n calls of op, conc at a time, and returns the wall time
// and each call's latency. It stops at the first error.
func runBatch(op benchOp, n, conc int) (batch, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
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
