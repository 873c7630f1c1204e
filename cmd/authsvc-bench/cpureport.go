package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// cpu targets, as ratios measured in the same run.
const (
	maxKnownRatio      = 1.6  // a known token ÷ the floor
	maxCheckOverVerify = 1.10 // Envoy Check ÷ VerifySession, one known token
	maxForgedOverKnown = 1.5  // 10,000 forged tokens cycled ÷ one known token
	newTokenAllowance  = 20 * time.Microsecond
)

// writeCPUReport prints the CPU scenario's rows, then each target with
// its verdict.
func writeCPUReport(w io.Writer, o *options, m machine, rows []cpuRow, sig time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", m)
	fmt.Fprintf(&b, "CPU per request of the server process (utime+stime from /proc), median of %d repetitions of %d calls, %d in flight;\n"+
		"the floor is a no-op net/http server measured in the same repetition over the same transport;\n"+
		"the reference row, run with the new-token cases, is the same server checking one P-256 signature per request.\n"+
		"P-256 signature check on this machine, alone on a locked thread: %s of CPU.\n\n", o.cpuReps, o.cpuRequests, o.cpuInFlight, us(sig))
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| case\t transport\t authsvc CPU/req\t floor CPU/req\t ÷ floor\t authsvc req/s\t")
	fmt.Fprintln(tw, "|---\t---\t---:\t---:\t---:\t---:\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "| %s\t %s\t %s\t %s\t %.2f\t %.0f\t\n", r.name, r.transport, us(r.cpu), us(r.floor), r.ratio, r.rps)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nTargets:\n\n")
	for _, tr := range []transport{transportJSON, transportGRPC} {
		get := func(prefix string) cpuRow {
			for _, r := range rows {
				if r.transport == tr && strings.HasPrefix(r.name, prefix) {
					return r
				}
			}
			return cpuRow{}
		}
		known := get("VerifySession, one known token")
		check := get("Envoy Check")
		fresh := get("VerifySession, each token new")
		forged := get("VerifySession, 10,000 forged")
		forgedFresh := get("VerifySession, each forged")
		if known.cpu > 0 {
			fmt.Fprintf(&b, "- %s: known token %.2f× floor (≤ %.1f): %s\n", tr, known.ratio, maxKnownRatio, verdict(known.ratio <= maxKnownRatio))
		}
		if known.cpu > 0 && check.cpu > 0 {
			cv := float64(check.cpu) / float64(known.cpu)
			fmt.Fprintf(&b, "- %s: Check ÷ VerifySession %.2f (≤ %.2f): %s\n", tr, cv, maxCheckOverVerify, verdict(cv <= maxCheckOverVerify))
		}
		if ref := get(caseSignatureFloor); fresh.cpu > 0 && ref.cpu > 0 {
			budget := ref.cpu + newTokenAllowance
			fmt.Fprintf(&b, "- %s: new token %s ≤ (floor + signature, as one server) + 20 µs = %s: %s\n", tr, us(fresh.cpu), us(budget), verdict(fresh.cpu <= budget))
		}
		if fresh.cpu > 0 {
			budget := fresh.floor + sig + newTokenAllowance
			fmt.Fprintf(&b, "- %s: new token %s ≤ floor + signature (thread clock) + 20 µs = %s: %s\n", tr, us(fresh.cpu), us(budget), verdict(sig > 0 && fresh.cpu <= budget))
		}
		if known.cpu > 0 && forged.cpu > 0 {
			fk := float64(forged.cpu) / float64(known.cpu)
			fmt.Fprintf(&b, "- %s: 10,000 forged cycled ÷ known token %.2f (≤ %.1f): %s\n", tr, fk, maxForgedOverKnown, verdict(fk <= maxForgedOverKnown))
		}
		if fresh.cpu > 0 && forgedFresh.cpu > 0 {
			ff := float64(forgedFresh.cpu) / float64(fresh.cpu)
			fmt.Fprintf(&b, "- %s: new forged token ÷ new valid token %.2f (≤ 1): %s\n", tr, ff, verdict(ff <= 1))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// us renders d in microseconds with one decimal.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
