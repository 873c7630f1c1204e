package service_test

import (
	"context"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/pgtest"
)

// These benchmarks serve the real AuthService (real verifier, real
// caches, real Wacht client against the emulator) and a no-op gRPC health
// Check from one in-process HTTP/2 cleartext server, and call both with
// Connect's gRPC protocol over one shared HTTP/2 connection. Speed is
// never asserted: BenchmarkRatios reports each case against the no-op RPC
// of the same server, measured in alternating rounds.

// benchRPC runs op b.N times in two sub-benchmarks: "serial", one call at
// a time, whose p50-ns and p99-ns are the latency of a call; and
// "parallel", benchConcurrency calls in flight, whose ns/op is the
// inverse of throughput (its latencies would only show queueing, so they
// are not reported). prepare returns the op for b.N calls.
func benchRPC(b *testing.B, reads *benchReadCounter, prepare func(b *testing.B) benchOp) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		op := prepare(b)
		reads.reset()
		took := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			if err := op(ctx, i); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, "", took)
		reads.report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		op := prepare(b)
		reads.reset()
		var next atomic.Int64
		// RunParallel starts parallelism*GOMAXPROCS goroutines.
		b.SetParallelism(max(1, benchConcurrency/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(ctx, int(next.Add(1)-1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		reads.report(b)
	})
}

func reportLatency(b *testing.B, prefix string, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(percentile(took, 50).Nanoseconds()), prefix+"p50-ns")
	b.ReportMetric(float64(percentile(took, 99).Nanoseconds()), prefix+"p99-ns")
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func BenchmarkNoopRPC(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: 1})
	benchRPC(b, rig.reads, func(*testing.B) benchOp { return rig.noop })
}

func BenchmarkVerifySessionRepeated(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: 1})
	tok := rig.token(b, 0)
	benchRPC(b, rig.reads, func(*testing.B) benchOp { return rig.verify(func(int) string { return tok }) })
}

// BenchmarkVerifySessionUnique verifies a token never seen before on
// every call: b.N of them are minted before the timer starts.
func BenchmarkVerifySessionUnique(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: 1})
	benchRPC(b, rig.reads, func(b *testing.B) benchOp {
		toks := rig.uniqueTokens(b, b.N)
		return rig.verify(func(i int) string { return toks[i] })
	})
}

func BenchmarkGetUserMemoryHit(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: benchMemoryUsers})
	rig.load(b)
	benchRPC(b, rig.reads, func(*testing.B) benchOp { return rig.getUser })
}

// BenchmarkGetUserPostgresHit reads users that are in Postgres through an
// in-memory level of benchTinyMemory entries, cycling through
// benchPostgresUsers of them, so nearly every read misses memory and hits
// Postgres; memory-share and postgres-share say how nearly.
func BenchmarkGetUserPostgresHit(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: benchPostgresUsers, pool: pgtest.NewPool(b), maxEntries: benchTinyMemory})
	rig.load(b)
	benchRPC(b, rig.reads, func(*testing.B) benchOp { return rig.getUser })
}

// BenchmarkCachedUserMemory reports the Go heap that one user held by the
// in-memory level costs: benchMemoryProbeUsers users are read through
// GetUser, and the live heap after a GC is compared with before. It does
// a fixed amount of work whatever b.N is.
func BenchmarkCachedUserMemory(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: benchMemoryProbeUsers, maxEntries: 2 * benchMemoryProbeUsers})
	before := liveHeap()
	b.ResetTimer()
	rig.load(b)
	b.StopTimer()
	after := liveHeap()
	b.ReportMetric(float64(after-before)/benchMemoryProbeUsers, "heap-B/user")
	b.ReportMetric(0, "ns/op")
	runtime.KeepAlive(rig)
}

// benchMemoryProbeUsers is how many users BenchmarkCachedUserMemory loads.
const benchMemoryProbeUsers = 5000

// liveHeap returns the bytes of live heap objects after a full GC.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
