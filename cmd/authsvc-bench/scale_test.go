package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/e2e"
	"github.com/authsvc/authsvc/internal/pgtest"
)

func TestMostInWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(secs ...float64) []time.Time {
		var out []time.Time
		for _, s := range secs {
			out = append(out, t0.Add(time.Duration(s*float64(time.Second))))
		}
		return out
	}
	tests := []struct {
		name  string
		times []time.Time
		want  int
	}{
		{"none", nil, 0},
		{"one", at(5), 1},
		{"all in a minute", at(0, 10, 59.9), 3},
		{"exactly a minute apart fall in different windows", at(0, 60), 1},
		{"a burst later", at(0, 1, 70, 71, 72, 129), 4},
	}
	for _, tt := range tests {
		if got := mostInWindow(tt.times, time.Minute); got != tt.want {
			t.Errorf("%s: mostInWindow = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestPickRPCFollowsTheMix(t *testing.T) {
	t.Parallel()
	got := map[scaleRPC]int{}
	for i := range 1000 {
		got[pickRPC(float64(i)/1000)]++
	}
	want := map[scaleRPC]int{rpcVerifySession: 400, rpcGetUser: 400, rpcListSessions: 200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mix (-want +got):\n%s", diff)
	}
}

func TestSummariseLagsCountsTheUnseenAsNever(t *testing.T) {
	t.Parallel()
	lags := []lag{{took: 5 * time.Millisecond, seen: true, cached: true}, {took: 2 * time.Second, seen: true}, {}}
	got := summariseLags(lags, nil)
	if got.n != 3 || got.within1s != 1 || got.seen != 2 || got.p50 != 2*time.Second || fmtLag(got.p99, 10*time.Second) != "> 10s" {
		t.Errorf("summariseLags = %+v", got)
	}
	if c := summariseLags(lags, cached); c.n != 1 || c.p99 != 5*time.Millisecond {
		t.Errorf("cached only = %+v", c)
	}
}

func TestWachtMeterSortsOutcomes(t *testing.T) {
	t.Parallel()
	m := &wachtMeter{}
	h := m.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/users/1/details":
			w.WriteHeader(http.StatusOK)
		case "/users/2/details":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/users/3/details":
			// The caller went away: nothing is written.
		}
	}))
	for _, path := range []string{"/users/1/details", "/users/2/details", "/users/3/details", "/.well-known/jwks.json"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	got := m.figures(time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	want := wachtFigures{sent: 3, answered: 1, limited: 1, abandoned: 1, maxPerMinute: 3}
	if got != want {
		t.Errorf("figures = %+v, want %+v", got, want)
	}
}

// TestScaleSmoke runs the scale scenario at a tiny size against the real
// binary, cold on one replica and warm on two, and checks that every part
// of it measured something.
func TestScaleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs authsvc")
	}
	bin, err := e2e.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"-bin", bin, "-scenario", "scale", "-database-url", pgtest.ServerURL(),
		"-users", "300", "-rate", "80", "-warmup", "1s", "-duration", "2s",
		"-change-every", "200ms", "-revoke-every", "400ms", "-probe-limit", "1s", "-wacht-latency", "5ms", "-log-level", "warn",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		start    string
		replicas int
	}{{startCold, 1}, {startWarm, 2}} {
		t.Run(run.start, func(t *testing.T) {
			t.Parallel()
			smokeRun(t, o, run.start, run.replicas)
		})
	}
}

// smokeRun runs one start of the smoke test.
func smokeRun(t *testing.T, o *options, start string, replicas int) {
	r, err := runScaleOnce(t.Context(), o, slog.New(slog.DiscardHandler), start, replicas)
	if err != nil {
		t.Fatalf("%s start: %v", start, err)
	}
	tot := r.total()
	if len(tot.took) < 100 || tot.ok == 0 {
		t.Errorf("%s start: %d calls, %d OK; want about 160 calls, most OK", start, len(tot.took), tot.ok)
	}
	for i, rt := range r.rpcs {
		if len(rt.took) == 0 {
			t.Errorf("%s start: no %s call", start, scaleRPC(i))
		}
	}
	if c, v := summariseLags(r.changes, nil), summariseLags(r.revocations, nil); c.n < 6 || v.n < 3 || c.seen == 0 || v.seen == 0 {
		t.Errorf("%s start: changes %+v, sign-outs %+v; want about 10 and 5, some seen", start, c, v)
	}
	// A warm deployment may need no Backend API request at all: webhooks
	// bring every change. A cold one must load.
	if r.delivered == 0 || (start == startCold && r.wacht.sent == 0) || r.wacht.maxPerMinute > 1000 {
		t.Errorf("%s start: %d webhooks delivered, Backend API %+v", start, r.delivered, r.wacht)
	}
	if len(r.tablesStart) == 0 || len(r.tablesEnd) != len(r.tablesStart) {
		t.Errorf("%s start: tables %v at start, %v at end", start, r.tablesStart, r.tablesEnd)
	}
	var out strings.Builder
	if err := writeScaleRun(&out, o, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### " + r.runName(), "| VerifySession |", "| GetUser |", "| ListSessions |",
		"| target (" + start + " start) |", "| Postgres table |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s start: report lacks %q:\n%s", start, want, out.String())
		}
	}
}
