package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// Targets of the scale scenario.
const (
	targetP99        = 20 * time.Millisecond // every RPC, warm start
	targetLag        = time.Second           // p99 of change and sign-out lag
	targetStaleShare = 0.01                  // of responses, warm start
	targetBudgetUse  = 0.95                  // of the budget answered, cold start
)

// scaleSettings describes the scenario's settings.
func scaleSettings(o *options) string {
	so := &o.scale
	rpm := "authsvc's default AUTHSVC_WACHT_REQUESTS_PER_MINUTE"
	if so.replicaRPM > 0 {
		rpm = fmt.Sprintf("AUTHSVC_WACHT_REQUESTS_PER_MINUTE=%d on each", so.replicaRPM)
	}
	extra := ""
	if len(so.replicaEnv) > 0 {
		var kv []string
		for k, v := range so.replicaEnv {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		extra = ", and " + strings.Join(kv, " ")
	}
	return fmt.Sprintf("scale: %d users each with a sign-in; %.0f calls/s arriving open loop (Poisson; 40%% VerifySession with check_revocation "+
		"and include_user on tokens re-minted every %s, 40%% GetUser, 20%% ListSessions), users drawn Zipf s=%.2f; %s deadlines; "+
		"Backend API +%s and %d requests a minute (the emulator answers 429 over it, in any sliding minute); "+
		"a user change every %s and a sign-out every %s (users drawn from the same Zipf) delivered as signed webhooks, round robin over the replicas; "+
		"each watched for %s; replicas with %s%s; %s warm-up, then %s measured; replicas log at %s",
		o.users, so.rate, so.tokenEvery, so.zipfS, so.deadline, so.wachtLatency, so.wachtRPM, so.changeEvery, so.revokeEvery,
		so.probeLimit, rpm, extra, o.warmup, o.duration, o.logLevel)
}

// runName names a run.
func (r *scaleResult) runName() string {
	s := "s"
	if r.replicas == 1 {
		s = ""
	}
	return fmt.Sprintf("%s start, %d replica%s", r.start, r.replicas, s)
}

// total adds up the tallies of every RPC.
func (r *scaleResult) total() rpcTally {
	var t rpcTally
	t.codes = map[connect.Code]int{}
	for _, rt := range r.rpcs {
		t.took = append(t.took, rt.took...)
		t.ok += rt.ok
		t.stale += rt.stale
		t.signedOut += rt.signedOut
		for c, n := range rt.codes {
			t.codes[c] += n
		}
	}
	slices.Sort(t.took)
	return t
}

func (t rpcTally) errors() int {
	n := 0
	for _, c := range t.codes {
		n += c
	}
	return n
}

// codesString lists errors by code, most first.
func (t rpcTally) codesString() string {
	type kv struct {
		code connect.Code
		n    int
	}
	var all []kv
	for c, n := range t.codes {
		all = append(all, kv{c, n})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Or(b.n-a.n, int(a.code)-int(b.code)) })
	var parts []string
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s %d (%s)", e.code, e.n, pct(e.n, len(t.took))))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

func pct(n, of int) string {
	if of == 0 {
		return "—"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 1, 64) + "%"
}

func maxOf(sorted []time.Duration) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[len(sorted)-1]
}

// lagFigures summarises lags: how many, how many seen within 1 s and
// within the probe limit, and percentiles with the unseen counted as
// never.
type lagFigures struct {
	n, within1s, seen int
	p50, p99, max     time.Duration // math.MaxInt64: not seen
}

func summariseLags(lags []lag, only func(lag) bool) lagFigures {
	var f lagFigures
	var ds []time.Duration
	for _, l := range lags {
		if only != nil && !only(l) {
			continue
		}
		f.n++
		d := time.Duration(math.MaxInt64)
		if l.seen {
			d = l.took
			f.seen++
			if l.took <= time.Second {
				f.within1s++
			}
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	f.p50, f.p99, f.max = percentile(ds, 50), percentile(ds, 99), maxOf(ds)
	return f
}

func fmtLag(d time.Duration, limit time.Duration) string {
	if d == math.MaxInt64 {
		return "> " + limit.String()
	}
	return fmtDuration(d)
}

func cached(l lag) bool { return l.cached }

// worstP99 is the highest p99 of the RPCs.
func (r *scaleResult) worstP99() time.Duration {
	var w time.Duration
	for _, rt := range r.rpcs {
		w = max(w, percentile(rt.took, 99))
	}
	return w
}

// budget is the Backend API requests the deployment may make in the
// measured time.
func (r *scaleResult) budget(rpm int) float64 {
	return float64(rpm) * r.measured.Minutes()
}

// verdicts checks r against the targets of its start.
func (r *scaleResult) verdicts(o *options) [][3]string {
	so := &o.scale
	yes := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	tot := r.total()
	chg, rev := summariseLags(r.changes, nil), summariseLags(r.revocations, nil)
	var out [][3]string
	if r.start == startWarm {
		out = append(out, [3]string{"no errors", strconv.Itoa(tot.errors()), yes(tot.errors() == 0)})
		for i, rt := range r.rpcs {
			p99 := percentile(rt.took, 99)
			out = append(out, [3]string{scaleRPC(i).String() + " p99 ≤ " + fmtDuration(targetP99), fmtDuration(p99), yes(len(rt.took) > 0 && p99 <= targetP99)})
		}
		out = append(out,
			[3]string{fmt.Sprintf("≤ %d Backend API calls in any 60 s", so.wachtRPM), strconv.Itoa(r.wacht.maxPerMinute), yes(r.wacht.maxPerMinute <= so.wachtRPM)},
			[3]string{"no 429 from Wacht", strconv.Itoa(r.wacht.limited), yes(r.wacht.limited == 0)},
			[3]string{"change lag p99 ≤ 1 s", fmtLag(chg.p99, so.probeLimit), yes(chg.n > 0 && chg.p99 <= targetLag)},
			[3]string{"sign-out lag p99 ≤ 1 s", fmtLag(rev.p99, so.probeLimit), yes(rev.n > 0 && rev.p99 <= targetLag)},
			[3]string{"< 1% served stale", pct(tot.stale, len(tot.took)), yes(float64(tot.stale) < targetStaleShare*float64(len(tot.took)))},
		)
		return out
	}
	cc, cr := summariseLags(r.changes, cached), summariseLags(r.revocations, cached)
	budget := r.budget(so.wachtRPM)
	deadline := tot.codes[connect.CodeDeadlineExceeded]
	out = append(out,
		[3]string{"no Backend API call abandoned in flight", strconv.Itoa(r.wacht.abandoned), yes(r.wacht.abandoned == 0)},
		[3]string{"≥ 95% of the budget answered", fmt.Sprintf("%d of %.0f (%s)", r.wacht.answered, budget, pct(r.wacht.answered, int(budget))),
			yes(float64(r.wacht.answered) >= targetBudgetUse*budget)},
		[3]string{"no DeadlineExceeded", strconv.Itoa(deadline), yes(deadline == 0)},
		[3]string{"change lag p99 ≤ 1 s, users cached", fmt.Sprintf("%s (%d changes)", fmtLag(cc.p99, so.probeLimit), cc.n), yes(cc.n > 0 && cc.p99 <= targetLag)},
		[3]string{"sign-out lag p99 ≤ 1 s, sessions cached", fmt.Sprintf("%s (%d sign-outs)", fmtLag(cr.p99, so.probeLimit), cr.n), yes(cr.n > 0 && cr.p99 <= targetLag)},
	)
	return out
}

// writeScaleRun writes one run's tables in Markdown.
func writeScaleRun(w io.Writer, o *options, r *scaleResult) error {
	so := &o.scale
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\n### %s\n\n", r.runName())
	if r.start == startWarm {
		p("Warmed first: every user and session list read once in %s with an ample budget, then the replicas restarted with the settings above.\n", r.warmTook.Round(time.Second))
	} else {
		p("An empty database and cache.\n")
	}
	p("Measured %s after a %s warm-up; latencies are of every call, failed ones included.\n\n", r.measured, o.warmup)

	p("| RPC | calls | OK | stale (of OK) | errors | errors by code | p50 | p99 | max |\n|---|--:|--:|--:|--:|---|--:|--:|--:|\n")
	row := func(name string, t rpcTally) {
		p("| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", name, len(t.took), t.ok, pct(t.stale, t.ok), pct(t.errors(), len(t.took)),
			t.codesString(), fmtDuration(percentile(t.took, 50)), fmtDuration(percentile(t.took, 99)), fmtDuration(maxOf(t.took)))
	}
	for i, rt := range r.rpcs {
		row(scaleRPC(i).String(), rt)
	}
	tot := r.total()
	row("all", tot)
	if tot.signedOut > 0 {
		p("\n%d VerifySession calls carried a token of a session signed out while they were on their way and were refused, as they should be; they are counted neither OK nor errors.\n", tot.signedOut)
	}

	wf := r.wacht
	p("\n| Backend API, measured | sent | answered | 429 | abandoned in flight | answered ÷ budget | most in any 60 s (whole run) |\n|---|--:|--:|--:|--:|--:|--:|\n")
	p("| %s | %d | %d | %d | %d | %s | %d |\n", r.measured, wf.sent, wf.answered, wf.limited, wf.abandoned,
		pct(wf.answered, int(r.budget(so.wachtRPM))), wf.maxPerMinute)

	p("\n| event | made | seen ≤ 1 s | seen ≤ %s | p50 | p99 | max | cached before: made | seen ≤ 1 s | p99 |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n", so.probeLimit)
	for _, e := range []struct {
		name string
		lags []lag
	}{{"user change (user.updated) → GetUser shows it", r.changes}, {"sign-out (session.deleted) → VerifySession refuses", r.revocations}} {
		a, c := summariseLags(e.lags, nil), summariseLags(e.lags, cached)
		p("| %s | %d | %d | %d | %s | %s | %s | %d | %d | %s |\n", e.name, a.n, a.within1s, a.seen,
			fmtLag(a.p50, so.probeLimit), fmtLag(a.p99, so.probeLimit), fmtLag(a.max, so.probeLimit),
			c.n, c.within1s, fmtLag(c.p99, so.probeLimit))
	}
	p("\nWebhooks: %d events delivered, %d attempts retried, %d events given up.\n", r.delivered, r.retried, r.failed)

	p("\n| Postgres table | rows at start | size at start | rows at end | size at end |\n|---|--:|--:|--:|--:|\n")
	end := map[string]tableSize{}
	for _, t := range r.tablesEnd {
		end[t.name] = t
	}
	for _, t := range r.tablesStart {
		e := end[t.name]
		p("| %s | %d | %s | %d | %s |\n", t.name, t.rows, kib(t.bytes), e.rows, kib(e.bytes))
	}

	p("\n| target (%s start) | figure | verdict |\n|---|---|---|\n", r.start)
	for _, v := range r.verdicts(o) {
		p("| %s | %s | %s |\n", v[0], v[1], v[2])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func kib(n int64) string {
	if n >= 10<<20 {
		return mib(n)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// writeScaleSummary writes one line per run, then the machine.
func writeScaleSummary(w io.Writer, o *options, m machine, results []*scaleResult) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\n### Summary\n\n| run | errors | worst p99 | stale (of OK) | changes seen ≤ 1 s / ≤ %s | sign-outs seen ≤ 1 s / ≤ %s | Backend API answered / sent | most in 60 s | 429 | abandoned | targets missed |\n",
		o.scale.probeLimit, o.scale.probeLimit)
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range results {
		t := r.total()
		errs := pct(t.errors(), len(t.took))
		if t.errors() > 0 {
			errs += " (" + t.codesString() + ")"
		}
		c, v := summariseLags(r.changes, nil), summariseLags(r.revocations, nil)
		var missed []string
		for _, vd := range r.verdicts(o) {
			if vd[2] != "met" {
				missed = append(missed, vd[0])
			}
		}
		missedText := "none"
		if len(missed) > 0 {
			missedText = strings.Join(missed, "; ")
		}
		p("| %s | %s | %s | %s | %d / %d of %d | %d / %d of %d | %d / %d | %d | %d | %d | %s |\n", r.runName(), errs,
			fmtDuration(r.worstP99()), pct(t.stale, t.ok), c.within1s, c.seen, c.n, v.within1s, v.seen, v.n,
			r.wacht.answered, r.wacht.sent, r.wacht.maxPerMinute, r.wacht.limited, r.wacht.abandoned, missedText)
	}
	p("\n%s\n", m)
	_, err := io.WriteString(w, b.String())
	return err
}
