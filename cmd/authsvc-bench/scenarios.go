package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtfake"
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

// timed is a load of o.concurrency workers for the warm-up and duration.
func (s *scenarios) timed(o op, limit int) load {
	return load{workers: s.b.o.concurrency, warmup: s.b.o.warmup, duration: s.b.o.duration, limit: limit, op: o}
}

// probe is one worker for the latency probe's duration.
func (s *scenarios) probe(o op, limit int) load {
	return load{workers: 1, warmup: probeWarmup, duration: s.b.o.latencyDuration, limit: limit, op: o}
}

// measure runs l and counts the emulator's calls meanwhile.
func (s *scenarios) measure(ctx context.Context, name string, l load, base *result) result {
	return s.b.measure(ctx, name, s.rep.name, l, base)
}

func (b *bench) measure(ctx context.Context, name, replica string, l load, base *result) result {
	before := b.emu.calls(everyRoute)
	st := l.run(ctx)
	r := result{name: name, replica: replica, inFlight: l.workers, stats: st,
		wachtCalls: b.emu.calls(everyRoute) - before, baseline: base}
	if st.exhausted {
		r.notes = append(r.notes, fmt.Sprintf("ran out of its %d distinct inputs after %s", l.limit, st.elapsed.Round(time.Millisecond)))
	}
	b.logger.Info("measured", "scenario", name, "replica", replica, "in_flight", l.workers, "requests", st.requests,
		"errors", st.errors, "rps", int(st.rps()), "p50", st.p50, "p99", st.p99, "wacht_calls", r.wachtCalls)
	return r
}

// pair measures o under load and alone, against the baselines.
func (s *scenarios) pair(ctx context.Context, name string, under, alone load, target, aloneTarget *target) []result {
	c := s.measure(ctx, name, under, &s.baseC)
	c.target = target
	a := s.measure(ctx, name, alone, &s.baseS)
	a.target = aloneTarget
	return []result{c, a}
}

func (s *scenarios) noop(ctx context.Context, w, _ int) error {
	_, h := s.cl.pick(w)
	_, err := h.CallUnary(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
	return err
}

func (s *scenarios) verify(token func(i int) string) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token(i)}))
		return err
	}
}

func (s *scenarios) getUser(users []seeded) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: users[i%len(users)].userID}))
		return err
	}
}

func (s *scenarios) listSessionsOp(users []seeded) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: users[i%len(users)].userID}))
		return err
	}
}

// once calls o for every index below n, o.concurrency at a time.
func (s *scenarios) once(ctx context.Context, what string, o op, n int) error {
	st := load{workers: s.b.o.concurrency, duration: 10 * time.Minute, limit: n, op: o}.run(ctx)
	if st.errors > 0 {
		return fmt.Errorf("%s on %s: %d of %d calls failed, first: %v", what, s.rep.name, st.errors, n, st.firstErr)
	}
	if st.requests < n {
		return fmt.Errorf("%s on %s: only %d of %d calls made", what, s.rep.name, st.requests, n)
	}
	return ctx.Err()
}

func (s *scenarios) baseline(ctx context.Context) error {
	s.baseC = s.measure(ctx, scenarioBaseline, s.timed(s.noop, 0), nil)
	s.baseS = s.measure(ctx, scenarioBaseline, s.probe(s.noop, 0), nil)
	if s.baseC.requests == 0 || s.baseS.requests == 0 {
		return fmt.Errorf("baseline on %s: no call succeeded, first error: %v", s.rep.name, firstErr(s.baseC, s.baseS))
	}
	return ctx.Err()
}

func (s *scenarios) verifyRepeated(ctx context.Context) ([]result, error) {
	u := s.b.pools.hot[0]
	tok, err := s.b.emu.fake.MintToken(wachtfake.TokenClaims{UserID: u.userID, SessionID: u.sessionID, Lifetime: tokenLifetime})
	if err != nil {
		return nil, err
	}
	o := s.verify(func(int) string { return tok })
	return s.pair(ctx, "VerifySession, one repeated token", s.timed(o, 0), s.probe(o, 0),
		&target{minRatio: 0.9}, nil), ctx.Err()
}

// verifyUnique gives every call a token never seen before: the pools are
// sized from the no-op RPC's throughput, an upper bound on verification's.
func (s *scenarios) verifyUnique(ctx context.Context) ([]result, error) {
	o := s.b.o
	under := poolSize(s.baseC.rps(), o.warmup+o.duration) + o.concurrency
	alone := poolSize(s.baseS.rps(), probeWarmup+o.latencyDuration) + 1
	start := time.Now()
	toks, err := s.mintUnique(ctx, under+alone)
	if err != nil {
		return nil, err
	}
	s.b.logger.Info("tokens minted", "count", len(toks), "took", time.Since(start).Round(time.Millisecond))
	underToks, aloneToks := toks[:under], toks[under:]
	return s.pair(ctx, "VerifySession, unique tokens",
		s.timed(s.verify(func(i int) string { return underToks[i] }), len(underToks)),
		s.probe(s.verify(func(i int) string { return aloneToks[i] }), len(aloneToks)),
		&target{minRatio: 0.6}, nil), ctx.Err()
}

func poolSize(rps float64, d time.Duration) int {
	return min(maxUniqueTokens, int(math.Ceil(rps*d.Seconds()*1.25)))
}

// mintUnique mints n distinct tokens of the hot users on every core.
func (s *scenarios) mintUnique(ctx context.Context, n int) ([]string, error) {
	toks := make([]string, n)
	hot := s.b.pools.hot
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		mintErr error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				u := hot[i%len(hot)]
				tok, err := s.b.emu.fake.MintToken(wachtfake.TokenClaims{UserID: u.userID, SessionID: u.sessionID, Lifetime: tokenLifetime})
				if err != nil {
					mu.Lock()
					mintErr = err
					mu.Unlock()
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	if mintErr != nil {
		return nil, mintErr
	}
	return toks, ctx.Err()
}

func (s *scenarios) memoryHit(ctx context.Context) ([]result, error) {
	hot := s.b.pools.hot
	o := s.getUser(hot)
	if err := s.once(ctx, "load the hot users", o, len(hot)); err != nil {
		return nil, err
	}
	return s.pair(ctx, fmt.Sprintf("GetUser, memory hit (%d users)", len(hot)), s.timed(o, 0), s.probe(o, 0),
		&target{minRatio: 0.9}, nil), ctx.Err()
}

func (s *scenarios) listSessions(ctx context.Context) ([]result, error) {
	hot := s.b.pools.hot
	o := s.listSessionsOp(hot)
	if err := s.once(ctx, "load the hot users' sessions", o, len(hot)); err != nil {
		return nil, err
	}
	return s.pair(ctx, fmt.Sprintf("ListSessions, memory hit (%d users)", len(hot)), s.timed(o, 0), s.probe(o, 0),
		nil, nil), ctx.Err()
}

// miss reads users no replica has read, so each call loads from the
// emulator, whose user details route is slowed by o.missLatency.
func (s *scenarios) miss(ctx context.Context) ([]result, error) {
	p := s.b.pools
	s.b.emu.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteUserDetails, Latency: s.b.o.missLatency})
	defer s.b.emu.fake.ClearFaults()
	name := fmt.Sprintf("GetUser, miss (Wacht +%s)", s.b.o.missLatency)
	under := s.timed(s.getUser(p.miss), len(p.miss))
	under.warmup = 0
	alone := s.probe(s.getUser(p.missSerial), len(p.missSerial))
	alone.warmup = 0
	return s.pair(ctx, name, under, alone, nil, nil), ctx.Err()
}

// preloadPostgres reads the users of the Postgres-hit scenario once here,
// which stores them in Postgres for the next replica.
func (s *scenarios) preloadPostgres(ctx context.Context) ([]result, error) {
	p := s.b.pools
	users := append(append([]seeded(nil), p.pg...), p.pgSerial...)
	return nil, s.once(ctx, "load the Postgres-hit users into Postgres", s.getUser(users), len(users))
}

// postgresHit reads, on a replica that has never read them, users that
// another replica stored in Postgres: each read once, so each is a
// Postgres hit.
func (s *scenarios) postgresHit(ctx context.Context) ([]result, error) {
	p := s.b.pools
	under := s.timed(s.getUser(p.pg), len(p.pg))
	under.warmup = 0
	alone := s.probe(s.getUser(p.pgSerial), len(p.pgSerial))
	alone.warmup = 0
	rs := s.pair(ctx, "GetUser, Postgres hit (each user once)", under, alone, nil, &target{maxP50: time.Millisecond})
	for i := range rs {
		if rs[i].wachtCalls > 0 {
			rs[i].notes = append(rs[i].notes, fmt.Sprintf("%d calls reached Wacht: not every read was a Postgres hit", rs[i].wachtCalls))
		}
	}
	return rs, ctx.Err()
}

// coalescing sends many concurrent GetUser calls for one user nothing has
// read, while the emulator holds the first user details call for 200ms so
// that every caller arrives during the load.
func (s *scenarios) coalescing(ctx context.Context) ([]result, error) {
	const hold = 200 * time.Millisecond
	n := s.b.o.coalesceCallers
	s.b.emu.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteUserDetails, Latency: hold, Times: 1})
	defer s.b.emu.fake.ClearFaults()
	before, beforeAll := s.b.emu.fake.Calls(wachtfake.RouteUserDetails), s.b.emu.calls(everyRoute)
	o := s.getUser([]seeded{s.b.pools.coalesce})
	st := load{workers: n, duration: time.Minute, limit: n, timeout: 30 * time.Second, op: o}.run(ctx)
	details := s.b.emu.fake.Calls(wachtfake.RouteUserDetails) - before
	r := result{name: fmt.Sprintf("GetUser, %d concurrent cold calls for one user", n), replica: s.rep.name,
		inFlight: n, stats: st, wachtCalls: s.b.emu.calls(everyRoute) - beforeAll,
		target: &target{maxWachtCalls: 1, wachtCallsOf: details}}
	r.notes = append(r.notes, fmt.Sprintf("%d call(s) to Wacht's user details for %d callers (expected 1); the emulator held the first for %s",
		details, n, hold))
	s.b.logger.Info("measured", "scenario", r.name, "requests", st.requests, "errors", st.errors, "user_details_calls", details)
	return []result{r}, ctx.Err()
}

func firstErr(rs ...result) error {
	for _, r := range rs {
		if r.firstErr != nil {
			return r.firstErr
		}
	}
	return nil
}
