package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// The scale scenario runs a deployment at a realistic size inside
// Wacht's request budget: many users in the emulator, read with a Zipf
// distribution by open-loop arrivals with short deadlines, a Backend API
// with latency and Wacht's 1000-a-minute limit, and users changing and
// signing out through signed webhooks. It runs each start (cold, warm)
// with each replica count, each on a fresh emulator and database.

// authClient is a client of the AuthService.
type authClient = authsvcv1connect.AuthServiceClient

// warmEmulatorRPM is the emulator's budget while the warm start reads
// every user once: ample, but bounded, as the emulator keeps a slot per
// request of its window.
const warmEmulatorRPM = 1_000_000

// scaleLoad is one run's load: the users, the replicas and what the
// calls and events measured.
type scaleLoad struct {
	so       *scaleOptions
	fake     *wachtfake.Server
	secret   string
	users    []*scaleUser
	replicas []*replica
	clients  []*clients

	seq, hookSeq, changeSeq atomic.Int64

	tallies    callTallies
	changeLags lagTally
	revokeLags lagTally
	hooks      webhookTally

	errMu         sync.Mutex
	firstEventErr error
}

// scaleResult is what one run measured.
type scaleResult struct {
	start       string
	replicas    int
	users       int
	measured    time.Duration
	rpcs        [numScaleRPCs]rpcTally
	wacht       wachtFigures
	changes     []lag
	revocations []lag
	delivered   int64
	retried     int64
	failed      int64
	tablesStart []tableSize
	tablesEnd   []tableSize
	warmTook    time.Duration
}

// runScale runs the scale scenario and writes each run's report as it
// ends, then a summary.
func runScale(ctx context.Context, o *options, logger *slog.Logger, stdout io.Writer) error {
	facts := readMachine(o.bin)
	fmt.Fprintf(stdout, "%s\n", scaleSettings(o))
	var results []*scaleResult
	var err error
	for _, start := range o.scale.starts {
		for _, n := range o.scale.replicaCounts {
			var r *scaleResult
			r, err = runScaleOnce(ctx, o, logger, start, n)
			if err != nil {
				break
			}
			results = append(results, r)
			if werr := writeScaleRun(stdout, o, r); werr != nil {
				return werr
			}
		}
		if err != nil {
			break
		}
	}
	facts.loadAfter = loadAverage()
	if len(results) > 0 {
		if werr := writeScaleSummary(stdout, o, facts, results); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// runScaleOnce runs one start with n replicas on a fresh emulator and
// database.
func runScaleOnce(ctx context.Context, o *options, logger *slog.Logger, start string, n int) (_ *scaleResult, err error) {
	so := &o.scale
	logger = logger.With("start", start, "replicas", n)
	dir, err := os.MkdirTemp("", "authsvc-bench-scale-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			logger.Info("replica logs kept", "dir", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	meter := &wachtMeter{}
	emu, err := serveEmulator(logger, wachtfake.Options{RequestsPerMinute: warmEmulatorRPM}, meter.wrap)
	if err != nil {
		return nil, err
	}
	defer emu.close()
	t0 := time.Now()
	seededUsers, err := emu.seed(o.users, true)
	if err != nil {
		return nil, err
	}
	db, err := createDatabase(ctx, o.databaseURL)
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := dropDatabase(db); derr != nil && err == nil {
			err = derr
		}
	}()
	secret, err := wachtfake.NewWebhookSecret()
	if err != nil {
		return nil, err
	}
	logger.Info("emulator seeded, database created", "users", len(seededUsers), "took", time.Since(t0).Round(time.Millisecond))

	l := &scaleLoad{so: so, fake: emu.fake, secret: secret}
	for _, s := range seededUsers {
		l.users = append(l.users, &scaleUser{id: s.userID, signInID: s.signInID, sessionID: s.sessionID})
	}
	env := replicaEnv(emu, db.URL, o.logLevel)
	env["WACHT_WEBHOOK_SECRET"] = secret
	maps.Copy(env, so.replicaEnv)
	res := &scaleResult{start: start, replicas: n, users: len(l.users)}

	if start == startWarm {
		warmEnv := maps.Clone(env)
		warmEnv["AUTHSVC_WACHT_REQUESTS_PER_MINUTE"] = strconv.Itoa(ampleRPM)
		// Every read of the warm start must load: its calls wait for their
		// lease of the budget from Postgres as long as that takes.
		warmEnv["AUTHSVC_BUDGET_WAIT"] = "5s"
		t := time.Now()
		reps, cls, err := startReplicas(ctx, o.bin, "warm", dir, warmEnv, n, o.conns)
		if err != nil {
			return nil, err
		}
		werr := warmUsers(ctx, l.users, cls, so)
		stopReplicas(reps, cls)
		if werr != nil {
			return nil, werr
		}
		res.warmTook = time.Since(t)
		logger.Info("every user read once", "took", res.warmTook.Round(time.Millisecond))
	}

	emu.fake.SetRequestsPerMinute(so.wachtRPM)
	emu.fake.SetBackendLatency(so.wachtLatency)
	meter.reset()
	if so.replicaRPM > 0 {
		env["AUTHSVC_WACHT_REQUESTS_PER_MINUTE"] = strconv.Itoa(so.replicaRPM)
	}
	l.replicas, l.clients, err = startReplicas(ctx, o.bin, "r", dir, env, n, o.conns)
	if err != nil {
		return nil, err
	}
	defer stopReplicas(l.replicas, l.clients)
	if res.tablesStart, err = tableSizes(ctx, db.URL); err != nil {
		return nil, err
	}

	begin := time.Now()
	measureFrom := begin.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	logger.Info("load running", "rate", so.rate, "warmup", o.warmup, "duration", o.duration)
	var wg sync.WaitGroup
	wg.Go(func() { l.arrive(ctx, begin, measureFrom, end) })
	wg.Go(func() { l.events(ctx, measureFrom, end) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.firstEventErr != nil {
		return nil, fmt.Errorf("scale, %s start, %d replicas: making events in the emulator: %w", start, n, l.firstEventErr)
	}
	res.measured = end.Sub(measureFrom)
	res.rpcs = l.tallies.snapshot()
	res.wacht = meter.figures(measureFrom, end)
	res.changes, res.revocations = l.changeLags.snapshot(), l.revokeLags.snapshot()
	res.delivered, res.retried, res.failed = l.hooks.delivered.Load(), l.hooks.retried.Load(), l.hooks.failed.Load()
	if res.tablesEnd, err = tableSizes(ctx, db.URL); err != nil {
		return nil, err
	}
	logger.Info("run done")
	return res, nil
}

// startReplicas starts n replicas named prefix1, prefix2, … with env, one
// after the other, with their clients.
func startReplicas(ctx context.Context, bin, prefix, dir string, env map[string]string, n, conns int) ([]*replica, []*clients, error) {
	var reps []*replica
	var cls []*clients
	for i := range n {
		r, err := startReplica(ctx, bin, prefix+strconv.Itoa(i+1), dir, env)
		if err != nil {
			stopReplicas(reps, cls)
			return nil, nil, err
		}
		reps = append(reps, r)
		cls = append(cls, newClients(r.url, conns))
	}
	return reps, cls, nil
}

func stopReplicas(reps []*replica, cls []*clients) {
	for _, c := range cls {
		c.close()
	}
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(r.stop)
	}
	wg.Wait()
}

// warmTries bounds the tries of one user's reads in the warm start.
const warmTries = 10

// warmUsers reads every user and its session list once, spread over the
// replicas, so that all of them are in the shared database.
func warmUsers(ctx context.Context, users []*scaleUser, cls []*clients, so *scaleOptions) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for w := range so.warmCalls {
		wg.Go(func() {
			a, _ := cls[w%len(cls)].pick(w)
			for i := int(next.Add(1) - 1); i < len(users) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				u := users[i]
				var err error
				// A read refused for want of budget is tried again: even an
				// ample budget is leased through a busy Postgres.
				for try := 0; try < warmTries; try++ {
					if try > 0 {
						time.Sleep(time.Duration(try) * 200 * time.Millisecond)
					}
					cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					_, err = a.GetUser(cctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: u.id}))
					if err == nil {
						_, err = a.ListSessions(cctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: u.id}))
					}
					cancel()
					if connect.CodeOf(err) != connect.CodeResourceExhausted {
						break
					}
				}
				if err == nil {
					u.read.Store(true)
					u.sessionsRead.Store(true)
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("warm start: reading user %s: %w", u.id, err)
					}
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
