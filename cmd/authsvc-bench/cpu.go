package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

// The CPU scenario measures the server CPU time each request costs: the
// utime+stime of the server process over a fixed number of requests, read
// from /proc, which leaves the load generator out. Each figure is set
// against a no-op net/http server (the floor) measured in the same
// repetition over the same transport.

const (
	// cycledTokens is the size of the pools of known and of forged
	// tokens cycled through.
	cycledTokens = 10_000
	// cpuRunLimit bounds the time of one measured run.
	cpuRunLimit = 2 * time.Minute
	// cpuWarmup is the number of calls before each measured run.
	cpuWarmup = 1000
)

// The names of the cases with fresh token pools.
const (
	caseFresh       = "VerifySession, each token new"
	caseForgedFresh = "VerifySession, each forged token new"
)

// caseSignatureFloor names the row of the no-op server that checks one
// P-256 signature per request: the floor plus the signature check,
// measured as one server in the same repetition as the cases.
const caseSignatureFloor = "reference: no-op server + one P-256 signature check"

// cpuCase is one row of the CPU scenario.
type cpuCase struct {
	name string
	rpc  rpc
	// want is the outcome every call must have on authsvc.
	want outcome
	// token returns the i-th token of the case's run number run; fresh
	// cases never return the same token twice.
	token func(run, i int) string
}

// cpuFigure is one measured run.
type cpuFigure struct {
	perRequest time.Duration
	rps        float64
}

// cpuRow is the medians of a case over the repetitions.
type cpuRow struct {
	name      string
	transport transport
	cpu       time.Duration // median server CPU per request
	floor     time.Duration // median floor CPU per request, same transport
	ratio     float64       // median over repetitions of cpu ÷ floor
	rps       float64
	calls     int
}

// runCPU runs the CPU scenario.
func runCPU(ctx context.Context, o *options, logger *slog.Logger, stdout io.Writer) error {
	facts := readMachine(o.bin)
	dir, err := os.MkdirTemp("", "authsvc-bench-cpu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	emu, err := startEmulator(discardLogger())
	if err != nil {
		return err
	}
	defer emu.close()
	db, err := createDatabase(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = dropDatabase(db) }()

	env := replicaEnv(emu, db.URL, o.logLevel)
	rep, err := startReplica(ctx, o.bin, "authsvc", dir, env)
	if err != nil {
		return err
	}
	defer rep.stop()
	floor, err := startFloor(ctx, false)
	if err != nil {
		return err
	}
	defer floor.stop()
	logger.Info("servers up", "authsvc_pid", rep.proc.Pid(), "floor_pid", floor.pid())

	n, reps := o.cpuRequests, o.cpuReps
	fresh := 2 * reps * (n + cpuWarmup) // each fresh case: both transports, every repetition
	start := time.Now()
	known, err := mintTokens(ctx, emu.fake, 0, cycledTokens)
	if err != nil {
		return err
	}
	// The fresh pools are made only for the cases that run.
	wantedOn := func(tr transport, name string) bool { return o.cpuOnly.MatchString(string(tr) + ": " + name) }
	wanted := func(name string) bool { return wantedOn(transportJSON, name) || wantedOn(transportGRPC, name) }
	// The floor that also checks a signature is the new-token target's
	// reference: it runs only when a new-token case does.
	var sigFloor *floorProcess
	if wanted(caseFresh) || wanted(caseForgedFresh) {
		if sigFloor, err = startFloor(ctx, true); err != nil {
			return err
		}
		defer sigFloor.stop()
	}
	var freshValid, forgedFresh []string
	if wanted(caseFresh) {
		if freshValid, err = mintTokens(ctx, emu.fake, cycledTokens, fresh); err != nil {
			return err
		}
	}
	if wanted(caseForgedFresh) {
		forgedFresh = forgeTokens(known[:64], fresh)
	}
	forgedCycled := forgeTokens(known[:64], cycledTokens)
	logger.Info("tokens ready", "minted", len(known)+len(freshValid), "forged", len(forgedCycled)+len(forgedFresh),
		"took", time.Since(start).Round(time.Millisecond))

	// run numbers are allotted in order, so that each fresh run takes
	// its own slice of the fresh pools.
	slice := func(pool []string) func(run, i int) string {
		return func(run, i int) string { return pool[run*(n+cpuWarmup)+i] }
	}
	cases := []cpuCase{
		{name: "VerifySession, one known token", rpc: rpcVerify, want: outcomeAllowed,
			token: func(int, int) string { return known[0] }},
		{name: "VerifySession, 10,000 known tokens cycled", rpc: rpcVerify, want: outcomeAllowed,
			token: func(_, i int) string { return known[i%cycledTokens] }},
		{name: caseFresh, rpc: rpcVerify, want: outcomeAllowed, token: slice(freshValid)},
		{name: "VerifySession, 10,000 forged tokens cycled", rpc: rpcVerify, want: outcomeRefused,
			token: func(_, i int) string { return forgedCycled[i%cycledTokens] }},
		{name: caseForgedFresh, rpc: rpcVerify, want: outcomeRefused, token: slice(forgedFresh)},
		{name: "Envoy Check, one known token", rpc: rpcCheck, want: outcomeAllowed,
			token: func(int, int) string { return known[0] }},
	}

	transports := []transport{transportJSON, transportGRPC}
	newCaller := func(t transport, base string) caller {
		if t == transportJSON {
			return newJSONCaller(base, o.cpuInFlight)
		}
		return newGRPCCaller(base, 4)
	}
	// The cycled pools are seen once before any measurement, so that
	// "known" and "forged, seen before" mean what they say.
	warm := newGRPCCaller(rep.url, 4)
	for _, pool := range []struct {
		toks []string
		want outcome
	}{{known, outcomeAllowed}, {forgedCycled, outcomeRefused}} {
		t, _ := drive(ctx, warm, rpcVerify, len(pool.toks), o.cpuInFlight, cpuRunLimit, func(i int) string { return pool.toks[i] })
		if err := t.check(pool.want, len(pool.toks)); err != nil {
			warm.close()
			return fmt.Errorf("warming the token pools: %w", err)
		}
	}
	warm.close()

	figs := map[string][]cpuFigure{}      // by transport + case name
	floors := map[transport][]cpuFigure{} // by transport
	ratios := map[string][]float64{}
	runs := map[transport]int{}
	// measureFloor measures a no-op server over tr.
	measureFloor := func(tr transport, f *floorProcess) (cpuFigure, error) {
		c := newCaller(tr, f.url)
		defer c.close()
		return measureCPU(ctx, c, f.pid(), rpcVerify, outcomeAllowed, n, o.cpuInFlight, func(int) string { return known[0] })
	}
	for r := range reps {
		for _, tr := range transports {
			fl, err := measureFloor(tr, floor)
			if err != nil {
				return fmt.Errorf("floor, %s: %w", tr, err)
			}
			floors[tr] = append(floors[tr], fl)
			if wantedOn(tr, caseFresh) || wantedOn(tr, caseForgedFresh) {
				sf, err := measureFloor(tr, sigFloor)
				if err != nil {
					return fmt.Errorf("floor with a signature check, %s: %w", tr, err)
				}
				key := string(tr) + "\x00" + caseSignatureFloor
				figs[key] = append(figs[key], sf)
				ratios[key] = append(ratios[key], float64(sf.perRequest)/float64(fl.perRequest))
			}
			c := newCaller(tr, rep.url)
			for _, cs := range cases {
				if !wantedOn(tr, cs.name) {
					continue
				}
				run := runs[tr]*2 + transportIndex(tr)
				logger.Info("measuring", "repetition", r+1, "transport", tr, "case", cs.name)
				fig, err := measureCPU(ctx, c, rep.proc.Pid(), cs.rpc, cs.want, n, o.cpuInFlight,
					func(i int) string { return cs.token(run, i) })
				if err != nil {
					c.close()
					return fmt.Errorf("%s, %s: %w", cs.name, tr, err)
				}
				key := string(tr) + "\x00" + cs.name
				figs[key] = append(figs[key], fig)
				ratios[key] = append(ratios[key], float64(fig.perRequest)/float64(fl.perRequest))
				logger.Info("measured", "repetition", r+1, "transport", tr, "case", cs.name,
					"cpu_per_request", fig.perRequest, "floor", fl.perRequest)
			}
			runs[tr]++
			c.close()
		}
	}

	var rows []cpuRow
	for _, tr := range transports {
		for _, cs := range append(cases, cpuCase{name: caseSignatureFloor}) {
			key := string(tr) + "\x00" + cs.name
			if len(figs[key]) == 0 {
				continue
			}
			rows = append(rows, cpuRow{
				name: cs.name, transport: tr,
				cpu:   medianFigure(figs[key]).perRequest,
				floor: medianFigure(floors[tr]).perRequest,
				ratio: medianFloat(ratios[key]),
				rps:   medianFigure(figs[key]).rps,
				calls: n,
			})
		}
	}
	facts.loadAfter = loadAverage()
	sig := signatureCost()
	return writeCPUReport(stdout, o, facts, rows, sig)
}

func transportIndex(t transport) int {
	if t == transportJSON {
		return 0
	}
	return 1
}

// check reports an error unless every one of n calls had outcome want.
func (t tally) check(want outcome, n int) error {
	got := map[outcome]int{outcomeAllowed: t.allowed, outcomeRefused: t.refused, outcomeFailed: t.failed}
	if got[want] == n {
		return nil
	}
	return fmt.Errorf("%d of %d calls as expected (%d allowed, %d refused, %d failed; first failure: %v)",
		got[want], n, t.allowed, t.refused, t.failed, t.firstErr)
}

// measureCPU warms up, then makes n calls and returns the CPU time of
// process pid per call.
func measureCPU(ctx context.Context, c caller, pid int, r rpc, want outcome, n, inFlight int, token func(i int) string) (cpuFigure, error) {
	t, _ := drive(ctx, c, r, cpuWarmup, inFlight, cpuRunLimit, token)
	if err := t.check(want, cpuWarmup); err != nil {
		return cpuFigure{}, fmt.Errorf("warm-up: %w", err)
	}
	before, err := processCPU(pid)
	if err != nil {
		return cpuFigure{}, err
	}
	t, took := drive(ctx, c, r, n, inFlight, cpuRunLimit, func(i int) string { return token(cpuWarmup + i) })
	after, err := processCPU(pid)
	if err != nil {
		return cpuFigure{}, err
	}
	if err := t.check(want, n); err != nil {
		return cpuFigure{}, err
	}
	return cpuFigure{perRequest: (after - before) / time.Duration(n), rps: float64(n) / took.Seconds()}, nil
}

func medianFigure(fs []cpuFigure) cpuFigure {
	s := slices.Clone(fs)
	slices.SortFunc(s, func(a, b cpuFigure) int { return int(a.perRequest - b.perRequest) })
	return s[len(s)/2]
}

func medianFloat(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	return s[len(s)/2]
}

// mintTokens mints n distinct valid tokens, numbered from first, on every
// core. Verification does not look users up, so the ids need no user.
func mintTokens(ctx context.Context, fake *wachtfake.Server, first, n int) ([]string, error) {
	toks := make([]string, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		mintErr error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				num := strconv.Itoa(first + i)
				tok, err := fake.MintToken(wachtfake.TokenClaims{
					UserID: "7" + num, SessionID: "9" + num, Lifetime: tokenLifetime,
					Organization: "31", OrganizationPermissions: []string{"org:read", "org:write"},
				})
				if err != nil {
					errOnce.Do(func() { mintErr = err })
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

// forgeTokens returns n distinct forged tokens: the header and claims of
// a valid token from bases, each with a random signature of the right
// length, so that only the signature check can refuse them.
func forgeTokens(bases []string, n int) []string {
	out := make([]string, n)
	var sig [64]byte
	for i := range out {
		base := bases[i%len(bases)]
		_, _ = rand.Read(sig[:])
		out[i] = base[:strings.LastIndexByte(base, '.')+1] + base64.RawURLEncoding.EncodeToString(sig[:])
	}
	return out
}

// newSignatureCheck returns a function that checks one P-256 ECDSA
// signature, made with a key of its own, and reports whether it verified.
func newSignatureCheck() (func() bool, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signature check: %w", err)
	}
	digest := sha256.Sum256([]byte("authsvc"))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signature check: %w", err)
	}
	return func() bool { return ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) }, nil
}

// signatureCost is the CPU time of one P-256 ECDSA signature check on
// this machine: the least of a few runs on one locked thread, read from
// that thread's own CPU clock.
func signatureCost() time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	check, err := newSignatureCheck()
	if err != nil {
		return 0
	}
	const loops = 500
	best := time.Duration(0)
	for range 3 {
		before := threadCPU()
		for range loops {
			check()
		}
		d := (threadCPU() - before) / loops
		if best == 0 || d < best {
			best = d
		}
	}
	return best
}
