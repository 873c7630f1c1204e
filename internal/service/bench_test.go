package service_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/jackc/pgx/v5/pgxpool"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// These benchmarks serve the real AuthService (real verifier, real
// caches, real Wacht client against the emulator) and a no-op gRPC health
// Check from one in-process HTTP/2 cleartext server, and call both with
// Connect's gRPC protocol over one shared HTTP/2 connection. Speed is
// never asserted: BenchmarkRatios reports each case against the no-op RPC
// measured in the same process, minutes apart at most.

const (
	// benchConcurrency is how many calls are in flight at once, in
	// RunParallel benchmarks and in BenchmarkRatios.
	benchConcurrency = 32
	// benchPostgresUsers is how many users the Postgres-hit cases cycle
	// through, far more than benchTinyMemory.
	benchPostgresUsers = 2000
	// benchTinyMemory bounds the in-memory level in the Postgres-hit
	// cases, so that a user is evicted long before it is read again.
	benchTinyMemory = 16
	// benchMemoryUsers is how many users the memory-hit cases cycle through.
	benchMemoryUsers = 16
	// benchTokenLifetime outlives any benchmark, so the verified-token
	// cache never expires an entry mid-run.
	benchTokenLifetime = 2 * time.Hour
)

// benchHealthClient calls grpc.health.v1.Health/Check.
type benchHealthClient = connect.Client[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse]

// benchRig is an AuthService and a no-op health service on one server,
// with gRPC clients of both.
type benchRig struct {
	fake    *wachtfake.Server
	auth    authsvcv1connect.AuthServiceClient
	health  *benchHealthClient
	users   []string // seeded user ids
	session []string // each user's session id (a token's sid)
	reads   *benchReadCounter
}

// benchRigConfig shapes a benchRig.
type benchRigConfig struct {
	users      int
	pool       *pgxpool.Pool // nil: memory-only caches
	maxEntries int           // in-memory level bound; 0 means the cache's default
}

func newBenchRig(b *testing.B, cfg benchRigConfig) *benchRig {
	b.Helper()
	ctx := context.Background()
	fake, err := wachtfake.New(wachtfake.Options{RequestsPerMinute: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	wachtSrv := httptest.NewServer(fake)
	b.Cleanup(wachtSrv.Close)
	fake.SetIssuer(wachtSrv.URL)
	rig := &benchRig{fake: fake, reads: &benchReadCounter{}}
	for i := range cfg.users {
		uid, sid := benchSeedUser(b, fake, i)
		rig.users = append(rig.users, uid)
		rig.session = append(rig.session, sid)
	}

	discard := slog.New(slog.DiscardHandler)
	wacht, err := wachtclient.New(wachtclient.Config{
		APIURL:            wachtSrv.URL,
		GatewayURL:        wachtSrv.URL,
		FrontendURL:       wachtSrv.URL,
		APIKey:            fake.APIKey(),
		RequestsPerMinute: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := sessiontoken.New(sessiontoken.Config{Issuer: wachtSrv.URL, Fetcher: wacht, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := verifier.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	var notifier *cache.Notifier
	if cfg.pool != nil {
		notifier = cache.NewNotifier(cfg.pool, discard)
	}
	users, err := cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", Pool: cfg.pool, Notifier: notifier,
		Load: service.LoadUser(wacht), Codec: service.UserCodec{},
		TTL: time.Hour, MaxEntries: cfg.maxEntries,
		IsTransient: wachtclient.IsTransient, Observer: rig.reads,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(users.Close)
	sessions, err := cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", Pool: cfg.pool, Notifier: notifier,
		Load: service.LoadSessions(wacht), Codec: service.SessionsCodec{},
		TTL: time.Hour, IsTransient: wachtclient.IsTransient,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sessions.Close)
	auth, err := service.NewAuthServer(service.AuthConfig{
		Logger: discard, Verifier: verifier, Users: users, Sessions: sessions, Wacht: wacht,
		PageTokenKey: []byte("benchmark page token key, 32 by"),
	})
	if err != nil {
		b.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(auth))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker()))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	b.Cleanup(srv.Close)

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: &h2c}
	b.Cleanup(transport.CloseIdleConnections)
	hc := &http.Client{Transport: transport}
	rig.auth = authsvcv1connect.NewAuthServiceClient(hc, srv.URL, connect.WithGRPC())
	rig.health = connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
		hc, srv.URL+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	return rig
}

// benchSeedUser adds a user shaped like a typical Wacht user, with one
// sign-in, and returns the user id and the sign-in's session id.
func benchSeedUser(b *testing.B, fake *wachtfake.Server, i int) (userID, sessionID string) {
	b.Helper()
	n := strconv.Itoa(i)
	u, err := fake.AddUser(wachtfake.User{
		FirstName: "Bench", LastName: "User " + n, Username: "bench" + n,
		PublicMetadata: map[string]any{"plan": "team", "seat": i},
		Emails:         []wachtfake.Email{{Email: "bench" + n + "@example.com", Primary: true, Verified: true}},
		Phones:         []wachtfake.Phone{{PhoneNumber: "2025550143", CountryCode: "+1", Primary: true, Verified: true}},
		HasPassword:    true,
	})
	if err != nil {
		b.Fatal(err)
	}
	si, err := fake.AddSignIn(u.ID, wachtfake.SignIn{IPAddress: "192.0.2.10", Browser: "Firefox 133", Device: "Linux",
		City: "Berlin", Country: "Germany", CountryCode: "DE"})
	if err != nil {
		b.Fatal(err)
	}
	return u.ID, si.SessionID
}

// token mints a session token for user i that outlives the benchmark.
func (r *benchRig) token(b *testing.B, i int) string {
	b.Helper()
	tok, err := r.fake.MintToken(wachtfake.TokenClaims{
		UserID: r.users[i%len(r.users)], SessionID: r.session[i%len(r.session)], Lifetime: benchTokenLifetime,
	})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// uniqueTokens mints n distinct tokens, each with a session id of its
// own, on every core.
func (r *benchRig) uniqueTokens(b *testing.B, n int) []string {
	b.Helper()
	toks := make([]string, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mintErr atomic.Value
	)
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				tok, err := r.fake.MintToken(wachtfake.TokenClaims{
					UserID: r.users[i%len(r.users)], SessionID: strconv.Itoa(1_000_000 + i), Lifetime: benchTokenLifetime,
				})
				if err != nil {
					mintErr.Store(err)
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	if err, ok := mintErr.Load().(error); ok {
		b.Fatal(err)
	}
	return toks
}

// load reads every user once through the cache, so the next reads hit.
func (r *benchRig) load(b *testing.B) {
	b.Helper()
	for _, id := range r.users {
		if _, err := r.auth.GetUser(context.Background(), connect.NewRequest(&authsvcv1.GetUserRequest{UserId: id})); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOp is one RPC; i numbers the calls of a run from 0.
type benchOp func(ctx context.Context, i int) error

func (r *benchRig) noop(ctx context.Context, _ int) error {
	_, err := r.health.CallUnary(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
	return err
}

func (r *benchRig) verify(token func(i int) string) benchOp {
	return func(ctx context.Context, i int) error {
		_, err := r.auth.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token(i)}))
		return err
	}
}

func (r *benchRig) getUser(ctx context.Context, i int) error {
	_, err := r.auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: r.users[i%len(r.users)]}))
	return err
}

// benchReadCounter counts the user cache's reads by the level that
// answered, to show what a benchmark really measured.
type benchReadCounter struct {
	memory, postgres, load atomic.Int64
}

func (c *benchReadCounter) ObserveRead(_ string, source cache.Source, _ cache.Outcome) {
	switch source {
	case cache.SourceMemory:
		c.memory.Add(1)
	case cache.SourcePostgres:
		c.postgres.Add(1)
	case cache.SourceLoad:
		c.load.Add(1)
	}
}

func (*benchReadCounter) ObserveLoad(string, time.Duration, error)   {}
func (*benchReadCounter) ObservePostgresError(string, string, error) {}

func (c *benchReadCounter) reset() {
	c.memory.Store(0)
	c.postgres.Store(0)
	c.load.Store(0)
}

// report adds the share of reads each level answered.
func (c *benchReadCounter) report(b *testing.B) {
	total := float64(c.memory.Load() + c.postgres.Load() + c.load.Load())
	if total == 0 {
		return
	}
	b.ReportMetric(float64(c.memory.Load())/total, "memory-share")
	b.ReportMetric(float64(c.postgres.Load())/total, "postgres-share")
	b.ReportMetric(float64(c.load.Load())/total, "load-share")
}

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
}

// round runs one throughput batch and one latency batch of each, the
// case first when caseFirst, and keeps the figures when keep.
func (m *ratioRun) round(caseFirst, keep bool) error {
	type pair struct{ noop, op batch }
	run := func(n, conc int) (pair, error) {
		var p pair
		first, second := &p.noop, &p.op
		fo, so := m.noop, m.op
		if caseFirst {
			first, second, fo, so = second, first, so, fo
		}
		var err error
		if *first, err = runBatch(fo, n, conc); err != nil {
			return p, err
		}
		*second, err = runBatch(so, n, conc)
		return p, err
	}
	tp, err := run(ratioBatch, benchConcurrency)
	if err != nil {
		return err
	}
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
