// Command authsvc-bench measures a built authsvc binary over the network.
// It runs a Wacht emulator in process, starts `authsvc serve` replicas
// against it and a fresh Postgres database, drives each scenario with
// concurrent gRPC clients, and reports every figure next to its ratio to
// a no-op RPC (grpc.health.v1.Health/Check) measured in the same run.
// -scenario scale instead runs a deployment at a realistic size inside
// Wacht's request budget (scale.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == floorCommand {
		if err := serveFloor(os.Args[2], slices.Contains(os.Args[3:], signatureFlag)); err != nil {
			fmt.Fprintln(os.Stderr, "authsvc-bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authsvc-bench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// localPostgres is the server tried when no other is named, as the tests
// do.
const localPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// options are the command's flags.
type options struct {
	bin             string
	databaseURL     string
	users           int
	postgresUsers   int
	concurrency     int
	conns           int
	warmup          time.Duration
	duration        time.Duration
	latencyDuration time.Duration
	rounds          int
	missLatency     time.Duration
	coalesceCallers int
	budgetRPM       int
	budgetDuration  time.Duration
	memoryUsers     int
	logLevel        string
	keep            bool
	scenario        string
	cpuRequests     int
	cpuReps         int
	cpuInFlight     int
	cpuOnly         *regexp.Regexp
	scale           scaleOptions
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("authsvc-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "", "the authsvc binary to measure (required)")
	fs.StringVar(&o.databaseURL, "database-url", "",
		"a Postgres server on which to create, and at the end drop, a fresh database; default TEST_DATABASE_URL, then DATABASE_URL, then "+localPostgres)
	fs.IntVar(&o.users, "users", 2000, "users seeded in the emulator, each with a sign-in, shared out among the scenarios")
	fs.IntVar(&o.postgresUsers, "postgres-users", 10_000,
		"further users, each read once on a second replica, for the Postgres-hit scenario (it ends when they are used up)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "calls in flight in the throughput scenarios")
	fs.IntVar(&o.conns, "conns", 4, "HTTP/2 connections the calls are spread over")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each timed scenario")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed scenario")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds, alternating with the no-op RPC, that each compared scenario's duration is split into")
	fs.DurationVar(&o.latencyDuration, "latency-duration", time.Second, "length of each one-call-in-flight latency probe")
	fs.DurationVar(&o.missLatency, "miss-latency", 20*time.Millisecond, "latency added to the emulator's user details route in the miss scenario")
	fs.IntVar(&o.coalesceCallers, "coalesce-callers", 1000, "concurrent cold GetUser calls for one user in the coalescing check")
	fs.IntVar(&o.budgetRPM, "budget-rpm", 120, "AUTHSVC_WACHT_REQUESTS_PER_MINUTE of the replica in the budget check")
	fs.DurationVar(&o.budgetDuration, "budget-duration", 10*time.Second,
		"length of the budget check's burst of misses; 70s or more also checks every sliding minute")
	fs.IntVar(&o.memoryUsers, "memory-users", 100_000, "users loaded into one replica before its VmRSS is read; 0 skips")
	fs.StringVar(&o.logLevel, "log-level", "info", "AUTHSVC_LOG_LEVEL of the replicas (info, as in production, logs failed RPCs; debug logs every RPC)")
	fs.BoolVar(&o.keep, "keep-logs", false, "keep the replicas' logs in their temporary directory")
	fs.StringVar(&o.scenario, "scenario", "all",
		"all: every scenario against `authsvc serve` replicas; cpu: server CPU per request of VerifySession and Check beside a no-op net/http server; "+
			"scale: a deployment at a realistic size inside Wacht's budget, where -users defaults to 20000, -duration to 4m and -warmup to 15s")
	fs.IntVar(&o.cpuRequests, "cpu-requests", 20_000, "calls in each measured run of the cpu scenario")
	fs.IntVar(&o.cpuReps, "cpu-repetitions", 3, "repetitions of the cpu scenario; figures are their medians")
	fs.IntVar(&o.cpuInFlight, "cpu-in-flight", 64, "calls in flight in the cpu scenario (HTTP/1.1: one connection each)")
	cpuOnly := fs.String("cpu-only", "", "a regular expression: run only the cpu cases whose \"<transport>: <case>\" it matches (to profile one)")
	replicas, starts, env := o.scale.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.scenario == "scale" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := o.scale.parse(o, set, *replicas, *starts, *env); err != nil {
			return nil, err
		}
	}
	re, err := regexp.Compile(*cpuOnly)
	if err != nil {
		return nil, fmt.Errorf("-cpu-only: %w", err)
	}
	o.cpuOnly = re
	if o.databaseURL == "" {
		o.databaseURL = getenv("TEST_DATABASE_URL")
	}
	if o.databaseURL == "" {
		o.databaseURL = getenv("DATABASE_URL")
	}
	if o.databaseURL == "" {
		o.databaseURL = localPostgres
	}
	switch {
	case o.bin == "":
		return nil, errors.New("-bin is required: build authsvc first (make build) and pass bin/authsvc")
	case o.users < 200:
		return nil, errors.New("-users must be at least 200")
	case o.concurrency < 1 || o.conns < 1 || o.coalesceCallers < 1 || o.budgetRPM < 1 || o.rounds < 1:
		return nil, errors.New("-concurrency, -conns, -coalesce-callers, -budget-rpm and -rounds must be positive")
	case o.warmup < 0 || o.duration <= 0 || o.latencyDuration <= 0 || o.budgetDuration <= 0 || o.missLatency < 0:
		return nil, errors.New("durations must be positive (-warmup may be 0)")
	case o.scenario != "all" && o.scenario != "cpu" && o.scenario != "scale":
		return nil, errors.New("-scenario must be all, cpu or scale")
	case o.cpuRequests < 1000 || o.cpuReps < 1 || o.cpuInFlight < 1:
		return nil, errors.New("-cpu-requests must be at least 1000, -cpu-repetitions and -cpu-in-flight positive")
	case o.memoryUsers < 0 || o.postgresUsers < 100:
		return nil, errors.New("-memory-users must not be negative, -postgres-users must be at least 100")
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch o.scenario {
	case "cpu":
		return runCPU(ctx, o, logger, stdout)
	case "scale":
		return runScale(ctx, o, logger, stdout)
	}
	facts := readMachine(o.bin)
	b, err := newBench(ctx, o, logger)
	if err != nil {
		return err
	}
	defer b.close()
	results, err := b.runAll(ctx)
	facts.loadAfter = loadAverage()
	if len(results) > 0 {
		if werr := writeReport(stdout, o, facts, results); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
