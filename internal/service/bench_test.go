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
	// ratioRounds and ratioBatch are BenchmarkRatios' fixed work: rounds
	// of one batch of no-op calls and one batch of the case's calls.
	ratioRounds = 5
	ratioBatch  = 4000
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

// runParallel runs op b.N times from benchConcurrency goroutines and
// reports the calls' p50 and p99 latencies next to ns/op.
func runParallel(b *testing.B, op benchOp) {
	b.Helper()
	var (
		next int64
		mu   sync.Mutex
		all  []time.Duration
	)
	ctx := context.Background()
	// RunParallel starts parallelism*GOMAXPROCS goroutines.
	b.SetParallelism(max(1, benchConcurrency/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		took := make([]time.Duration, 0, 1024)
		for pb.Next() {
			i := int(atomic.AddInt64(&next, 1) - 1)
			start := time.Now()
			if err := op(ctx, i); err != nil {
				b.Error(err)
				return
			}
			took = append(took, time.Since(start))
		}
		mu.Lock()
		all = append(all, took...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, "", all)
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
	runParallel(b, rig.noop)
}

func BenchmarkVerifySessionRepeated(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: 1})
	tok := rig.token(b, 0)
	runParallel(b, rig.verify(func(int) string { return tok }))
}

func BenchmarkVerifySessionUnique(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: 1})
	toks := rig.uniqueTokens(b, b.N)
	runParallel(b, rig.verify(func(i int) string { return toks[i] }))
}

func BenchmarkGetUserMemoryHit(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: benchMemoryUsers})
	rig.load(b)
	rig.reads.reset()
	runParallel(b, rig.getUser)
	rig.reads.report(b)
}

// BenchmarkGetUserPostgresHit reads users that are in Postgres through an
// in-memory level of benchTinyMemory entries, cycling through
// benchPostgresUsers of them, so nearly every read misses memory and hits
// Postgres; memory-share and postgres-share say how nearly.
func BenchmarkGetUserPostgresHit(b *testing.B) {
	rig := newBenchRig(b, benchRigConfig{users: benchPostgresUsers, pool: pgtest.NewPool(b), maxEntries: benchTinyMemory})
	rig.load(b)
	rig.reads.reset()
	runParallel(b, rig.getUser)
	rig.reads.report(b)
}

// ratioCase is one case of BenchmarkRatios.
type ratioCase struct {
	name   string
	target string // the goal, for the log; never asserted
	rig    func(b *testing.B) *benchRig
	op     func(b *testing.B, rig *benchRig) benchOp
}

var ratioCases = []ratioCase{{
	name:   "VerifySessionRepeated",
	target: "throughput ratio >= 0.9",
	rig:    func(b *testing.B) *benchRig { return newBenchRig(b, benchRigConfig{users: 1}) },
	op: func(b *testing.B, rig *benchRig) benchOp {
		tok := rig.token(b, 0)
		return rig.verify(func(int) string { return tok })
	},
}, {
	name:   "VerifySessionUnique",
	target: "throughput ratio >= 0.6",
	rig:    func(b *testing.B) *benchRig { return newBenchRig(b, benchRigConfig{users: 1}) },
	op: func(b *testing.B, rig *benchRig) benchOp {
		// Every call of the warm-up and of every round gets a new token.
		toks := rig.uniqueTokens(b, (ratioRounds+1)*ratioBatch)
		var next atomic.Int64
		verify := rig.verify(func(int) string { return toks[next.Add(1)-1] })
		return verify
	},
}, {
	name:   "GetUserMemoryHit",
	target: "throughput ratio >= 0.9",
	rig: func(b *testing.B) *benchRig {
		rig := newBenchRig(b, benchRigConfig{users: benchMemoryUsers})
		rig.load(b)
		return rig
	},
	op: func(_ *testing.B, rig *benchRig) benchOp { return rig.getUser },
}, {
	name:   "GetUserPostgresHit",
	target: "p50 <= 1ms",
	rig: func(b *testing.B) *benchRig {
		rig := newBenchRig(b, benchRigConfig{users: benchPostgresUsers, pool: pgtest.NewPool(b), maxEntries: benchTinyMemory})
		rig.load(b)
		return rig
	},
	op: func(_ *testing.B, rig *benchRig) benchOp { return rig.getUser },
}}

// BenchmarkRatios measures each case against the no-op RPC of the same
// server: a warm-up, then ratioRounds rounds of one batch of each,
// alternating which goes first. It reports the median of the rounds'
// throughput ratios (case/no-op: 1 means as fast as the no-op RPC) and
// the ratio of the p50 latencies over all rounds. It does a fixed amount
// of work whatever b.N is; ns/op is the case's.
func BenchmarkRatios(b *testing.B) {
	for _, c := range ratioCases {
		b.Run(c.name, func(b *testing.B) {
			rig := c.rig(b)
			op := c.op(b, rig)
			noop := benchOp(rig.noop)
			if _, err := runBatch(noop, ratioBatch); err != nil {
				b.Fatal(err)
			}
			if _, err := runBatch(op, ratioBatch); err != nil {
				b.Fatal(err)
			}
			rig.reads.reset()
			var (
				ratios           []float64
				noopLat, caseLat []time.Duration
				noopTime, caseT  time.Duration
			)
			b.ResetTimer()
			for round := range ratioRounds {
				first, second := noop, op
				if round%2 == 1 {
					first, second = op, noop
				}
				r1, err := runBatch(first, ratioBatch)
				if err != nil {
					b.Fatal(err)
				}
				r2, err := runBatch(second, ratioBatch)
				if err != nil {
					b.Fatal(err)
				}
				n, cs := r1, r2
				if round%2 == 1 {
					n, cs = r2, r1
				}
				ratios = append(ratios, n.elapsed.Seconds()/cs.elapsed.Seconds())
				noopLat, caseLat = append(noopLat, n.took...), append(caseLat, cs.took...)
				noopTime, caseT = noopTime+n.elapsed, caseT+cs.elapsed
			}
			b.StopTimer()
			slices.Sort(ratios)
			slices.Sort(noopLat)
			slices.Sort(caseLat)
			ops := float64(ratioRounds * ratioBatch)
			ratio := ratios[len(ratios)/2]
			p50Ratio := float64(percentile(caseLat, 50)) / float64(percentile(noopLat, 50))
			b.ReportMetric(float64(caseT.Nanoseconds())/ops, "ns/op")
			b.ReportMetric(float64(noopTime.Nanoseconds())/ops, "noop-ns/op")
			b.ReportMetric(ratio, "ratio_vs_noop")
			b.ReportMetric(p50Ratio, "p50_ratio_vs_noop")
			reportLatency(b, "", caseLat)
			reportLatency(b, "noop-", noopLat)
			rig.reads.report(b)
			b.Logf("%s: throughput %.2fx the no-op RPC's (rounds %s), p50 %v vs %v (%.2fx); target %s",
				c.name, ratio, fmtRatios(ratios), percentile(caseLat, 50), percentile(noopLat, 50), p50Ratio, c.target)
		})
	}
}

// batch is the outcome of runBatch.
type batch struct {
	elapsed time.Duration
	took    []time.Duration
}

// runBatch makes n calls of op from benchConcurrency goroutines and
// returns the wall time and each call's latency. It stops at the first
// error.
func runBatch(op benchOp, n int) (batch, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  = make([]time.Duration, 0, n)
	)
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			took := make([]time.Duration, 0, n/benchConcurrency+1)
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
