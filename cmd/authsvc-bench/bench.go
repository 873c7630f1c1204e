package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/authsvc/authsvc/internal/freshdb"
)

const (
	// ampleRPM is the Wacht budget of replicas whose scenarios measure
	// authsvc rather than its rate limiter.
	ampleRPM = 100_000_000
	// cacheTTL is the replicas' user and session list TTL: long enough
	// that nothing loaded during a run expires before it is read.
	cacheTTL = "10m"
	// hotUsers is how many users the memory-hit and ListSessions
	// scenarios cycle through.
	hotUsers = 16
)

// bench is one run: the emulator, the database and the replicas, which
// close stops and removes.
type bench struct {
	o      *options
	logger *slog.Logger
	emu    *emulator
	db     *freshdb.Database
	dir    string
	pools  pools

	replicas []*replica
	clients  []*clients
}

// pools share the seeded users out among the scenarios, so that each
// scenario that needs cold users gets users nothing has read yet.
type pools struct {
	hot        []seeded // memory hits and ListSessions
	coalesce   seeded
	budget     []seeded
	pgSerial   []seeded
	pg         []seeded
	missSerial []seeded
	miss       []seeded
}

// splitPools shares users out: the hot ones, one for the coalescing
// check, a fifth to the budget check, 50 to the miss latency probe and the
// rest to the miss scenario. The Postgres hits have users of their own,
// a fifth of them for the latency probe.
func splitPools(users, pg []seeded) pools {
	n := len(users)
	take := func(k int) []seeded {
		out := users[:k:k]
		users = users[k:]
		return out
	}
	p := pools{hot: take(hotUsers), coalesce: take(1)[0]}
	p.budget = take(n / 5)
	p.missSerial = take(50)
	p.miss = users
	p.pgSerial, p.pg = pg[:len(pg)/5], pg[len(pg)/5:]
	return p
}

func newBench(ctx context.Context, o *options, logger *slog.Logger) (_ *bench, err error) {
	b := &bench{o: o, logger: logger}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	b.dir, err = os.MkdirTemp("", "authsvc-bench-")
	if err != nil {
		return nil, err
	}
	b.emu, err = startEmulator(logger)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	users, err := b.emu.seed(o.users, true)
	if err != nil {
		return nil, err
	}
	pg, err := b.emu.seed(o.postgresUsers, false)
	if err != nil {
		return nil, err
	}
	b.pools = splitPools(users, pg)
	logger.Info("wacht emulator seeded", "url", b.emu.url, "users", len(users)+len(pg), "took", time.Since(start).Round(time.Millisecond))
	b.db, err = createDatabase(ctx, o.databaseURL)
	if err != nil {
		return nil, err
	}
	logger.Info("database created", "name", b.db.Name)
	return b, nil
}

// start starts a replica with the given Wacht budget and returns it with
// its clients.
func (b *bench) start(ctx context.Context, name string, rpm int) (*replica, *clients, error) {
	env := replicaEnv(b.emu, b.db.URL, b.o.logLevel)
	env["AUTHSVC_USER_TTL"] = cacheTTL
	env["AUTHSVC_SESSIONS_TTL"] = cacheTTL
	env["AUTHSVC_WACHT_REQUESTS_PER_MINUTE"] = strconv.Itoa(rpm)
	r, err := startReplica(ctx, b.o.bin, name, b.dir, env)
	if err != nil {
		return nil, nil, err
	}
	b.replicas = append(b.replicas, r)
	c := newClients(r.url, b.o.conns)
	b.clients = append(b.clients, c)
	b.logger.Info("replica serving", "name", name, "url", r.url, "pid", r.proc.Pid(), "wacht_requests_per_minute", rpm)
	return r, c, nil
}

// close stops every replica, drops the database and stops the emulator.
func (b *bench) close() {
	for _, c := range b.clients {
		c.close()
	}
	for _, r := range b.replicas {
		r.stop()
	}
	if b.db != nil {
		if err := dropDatabase(b.db); err != nil {
			b.logger.Error("drop the benchmark database", "error", err)
		}
	}
	if b.emu != nil {
		b.emu.close()
	}
	if b.dir != "" {
		if b.o.keep {
			b.logger.Info("replica logs kept", "dir", b.dir)
		} else {
			_ = os.RemoveAll(b.dir)
		}
	}
}

// runAll runs every scenario in turn and returns the results so far
// with the first error.
func (b *bench) runAll(ctx context.Context) ([]result, error) {
	var out []result
	// keep adds a step's results unless it failed or was interrupted
	// part way, which leaves its figures meaningless.
	keep := func(rs []result, err error) error {
		if err == nil {
			out = append(out, rs...)
		}
		return err
	}

	r1, c1, err := b.start(ctx, "r1", ampleRPM)
	if err != nil {
		return out, err
	}
	s1 := &scenarios{b: b, rep: r1, cl: c1}
	if err := keep(s1.baseline(ctx)); err != nil {
		return out, err
	}
	steps := []func(context.Context) ([]result, error){
		s1.verifyRepeated, s1.verifyUnique, s1.memoryHit, s1.listSessions, s1.miss, s1.coalescing, s1.preloadPostgres,
	}
	for _, step := range steps {
		if err := keep(step(ctx)); err != nil {
			return out, err
		}
	}

	r2, c2, err := b.start(ctx, "r2", ampleRPM)
	if err != nil {
		return out, err
	}
	s2 := &scenarios{b: b, rep: r2, cl: c2}
	if err := keep(s2.baseline(ctx)); err != nil {
		return out, err
	}
	if err := keep(s2.postgresHit(ctx)); err != nil {
		return out, err
	}
	if err := keep(b.budget(ctx)); err != nil {
		return out, err
	}
	if b.o.memoryUsers > 0 {
		if err := keep(b.memory(ctx)); err != nil {
			return out, err
		}
	}
	for _, r := range out {
		if r.errors > 0 && !r.errorsExpected {
			return out, fmt.Errorf("%s on %s: %d calls failed, first: %v", r.name, r.replica, r.errors, r.firstErr)
		}
	}
	return out, nil
}
