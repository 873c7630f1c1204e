package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// scenarioBaseline names the no-op RPC rows.
const scenarioBaseline = "baseline: grpc.health.v1.Health/Check (no-op)"

// result is one row of the report.
type result struct {
	name     string
	replica  string
	inFlight int
	stats
	wachtCalls int // calls that reached the emulator, on any route
	// vs is the comparison with the no-op RPC on the same replica at the
	// same load that stats come from, or nil.
	vs             *compared
	target         *target
	notes          []string
	errorsExpected bool
}

// target is a goal a row is checked against: a figure, never an assertion.
type target struct {
	minRatio      float64       // throughput ÷ baseline throughput, at least
	maxP50        time.Duration // p50, at most
	maxWachtCalls int           // wachtCallsOf, at most
	wachtCallsOf  int
	maxRSS        int64 // rss, at most
	rss           int64
}

func (t *target) String() string {
	switch {
	case t == nil:
		return ""
	case t.minRatio > 0:
		return fmt.Sprintf("≥ %.1f× baseline req/s", t.minRatio)
	case t.maxP50 > 0:
		return "p50 ≤ " + t.maxP50.String()
	case t.maxRSS > 0:
		return "VmRSS ≤ " + mib(t.maxRSS)
	default:
		return fmt.Sprintf("≤ %d Wacht calls", t.maxWachtCalls)
	}
}

// verdict says whether r meets its target.
func (r *result) verdict() string {
	t := r.target
	var met bool
	switch {
	case t == nil:
		return ""
	case r.requests == 0 && (t.minRatio > 0 || t.maxP50 > 0):
		return "no data"
	case t.minRatio > 0:
		met = r.ratio() >= t.minRatio
	case t.maxP50 > 0:
		met = r.requests > 0 && r.p50 <= t.maxP50
	case t.maxRSS > 0:
		met = t.rss <= t.maxRSS
	default:
		met = t.wachtCallsOf <= t.maxWachtCalls
	}
	if met {
		return "met"
	}
	return "MISSED"
}

// ratio is the median over the rounds of r's throughput divided by the
// baseline's, or 0 without a baseline.
func (r *result) ratio() float64 {
	if r.vs == nil {
		return 0
	}
	return r.vs.ratios.Median()
}

// p50Ratio is r's p50 divided by its baseline's, or 0 without one.
func (r *result) p50Ratio() float64 {
	if r.vs == nil || r.vs.base.p50 == 0 {
		return 0
	}
	return float64(r.p50) / float64(r.vs.base.p50)
}

var columns = []string{"scenario", "replica", "in flight", "requests", "errors", "req/s", "p50", "p99",
	"baseline req/s", "baseline p50", "req/s ÷ baseline", "p50 ÷ baseline", "Wacht calls", "target", "verdict"}

func (r *result) cells() []string {
	baseRPS, baseP50, ratio, p50Ratio := "—", "—", "—", "—"
	if r.vs != nil {
		baseRPS = strconv.FormatFloat(r.vs.base.rps(), 'f', 0, 64)
		baseP50 = fmtDuration(r.vs.base.p50)
		ratio = strconv.FormatFloat(r.ratio(), 'f', 3, 64)
		p50Ratio = strconv.FormatFloat(r.p50Ratio(), 'f', 2, 64)
	}
	return []string{
		r.name, r.replica, strconv.Itoa(r.inFlight), strconv.Itoa(r.requests), strconv.Itoa(r.errors),
		strconv.FormatFloat(r.rps(), 'f', 0, 64), fmtDuration(r.p50), fmtDuration(r.p99),
		baseRPS, baseP50, ratio, p50Ratio, strconv.Itoa(r.wachtCalls), r.target.String(), r.verdict(),
	}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

// writeReport writes the machine, then the results as an aligned table
// and as a Markdown table, then the notes.
func writeReport(w io.Writer, o *options, m machine, results []result) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\n%s\n", m)
	p("settings: %d rounds; %d calls in flight (and 1 for the latency rows) over %d HTTP/2 connections, Connect's gRPC protocol over h2c; "+
		"warm-up %s, duration %s per timed scenario; %d users seeded with a sign-in, %d more for the Postgres hits; replicas log at %s\n\n",
		o.rounds, o.concurrency, o.conns, o.warmup, o.duration, o.users, o.postgresUsers, o.logLevel)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for i := range results {
		fmt.Fprintln(tw, strings.Join(results[i].cells(), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	p("\n| %s |\n|%s\n", strings.Join(columns, " | "), strings.Repeat("---|", len(columns)))
	for i := range results {
		p("| %s |\n", strings.Join(results[i].cells(), " | "))
	}
	p("\nNotes:\n")
	for i := range results {
		for _, n := range results[i].notes {
			p("- %s (%s): %s\n", results[i].name, results[i].replica, n)
		}
	}
	p("- Each compared row ran in %d rounds alternating with the no-op RPC on the same replica at the same number of calls in flight; "+
		"req/s ÷ baseline is the median of the rounds' ratios, p50 ÷ baseline is over all rounds. "+
		"Rows whose inputs are used once (misses, Postgres hits) run the case first in each round and the baseline for as long.\n", o.rounds)
	p("- r1 serves every scenario but these: r2 (a second replica on the same database) the Postgres hits, r3 the budget check, r4 the memory check.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
