package health_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/health"
)

// statusOf returns a function that checks one of c's services.
func statusOf(t *testing.T, c *health.Checker) func(service string) grpchealth.Status {
	return func(service string) grpchealth.Status {
		t.Helper()
		res, err := c.Check(t.Context(), &grpchealth.CheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return res.Status
	}
}

// flaky returns a probe that fails while down is set.
func flaky(down *atomic.Bool, msg string) health.Probe {
	return func(context.Context) error {
		if down.Load() {
			return errors.New(msg)
		}
		return nil
	}
}

func TestChecker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var dbDown atomic.Bool
	c := health.NewChecker(health.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Services: []string{"authsvc.v1.AuthService"}})
	c.Add("postgres", flaky(&dbDown, "connection refused"))

	status := statusOf(t, c)

	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("before any probe: %v, want NOT_SERVING", got)
	}
	c.Probe(ctx)
	for _, s := range []string{"", "authsvc.v1.AuthService"} {
		if got := status(s); got != grpchealth.StatusServing {
			t.Errorf("Check(%q) with all probes passing = %v, want SERVING", s, got)
		}
	}
	dbDown.Store(true)
	c.Probe(ctx)
	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("with postgres down: %v, want NOT_SERVING", got)
	}
	if _, ok := c.Failing()["postgres"]; !ok {
		t.Errorf("Failing() = %v, want postgres listed", c.Failing())
	}
	dbDown.Store(false)
	c.Probe(ctx)
	if got := status(""); got != grpchealth.StatusServing {
		t.Errorf("after recovery: %v, want SERVING", got)
	}
	c.Shutdown()
	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("after Shutdown: %v, want NOT_SERVING", got)
	}
	if _, err := c.Check(ctx, &grpchealth.CheckRequest{Service: "no.such.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("unknown service: %v, want NotFound", err)
	}
}

// logLines returns a logger at debug level and a function that returns the
// level and message of every line logged so far.
func logLines(t *testing.T) (*slog.Logger, func() []string) {
	t.Helper()
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(h), func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			level, msg := field(line, "level="), field(line, "msg=")
			out = append(out, level+" "+msg)
		}
		return out
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// field returns the value after key in a text log line, unquoted.
func field(line, key string) string {
	_, rest, ok := strings.Cut(line, key)
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, `"`) {
		end := strings.Index(rest[1:], `"`)
		return rest[1 : end+1]
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

func TestCheckerLogsQuietlyAtStart(t *testing.T) {
	t.Parallel()
	type round struct{ listening, db bool }
	tests := []struct {
		name   string
		grace  time.Duration
		rounds []round
		want   []string
	}{
		{
			name:   "a listener a moment late at the start is no alarm",
			grace:  time.Hour,
			rounds: []round{{false, true}, {true, true}, {true, true}},
			want: []string{
				"DEBUG waiting for dependency",
				"INFO ready: every dependency a request needs is usable",
			},
		},
		{
			name:   "never usable past the grace period is a warning, once",
			grace:  0,
			rounds: []round{{false, true}, {false, true}, {true, true}},
			want: []string{
				"WARN dependency not usable",
				"INFO dependency usable again",
				"INFO ready: every dependency a request needs is usable",
			},
		},
		{
			name:   "a failure after being usable is a warning at once, even in the grace period",
			grace:  time.Hour,
			rounds: []round{{true, true}, {true, false}, {true, false}, {true, true}},
			want: []string{
				"INFO ready: every dependency a request needs is usable",
				"WARN dependency not usable",
				"INFO dependency usable again",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, lines := logLines(t)
			var current round
			c := health.NewChecker(health.Config{Logger: logger})
			c.SetGrace(tt.grace)
			c.Add("cache-notifier", func(context.Context) error {
				if !current.listening {
					return errors.New("not listening")
				}
				return nil
			})
			c.Add("postgres", func(context.Context) error {
				if !current.db {
					return errors.New("connection refused")
				}
				return nil
			})
			for _, r := range tt.rounds {
				current = r
				c.Probe(t.Context())
			}
			if diff := cmp.Diff(tt.want, lines()); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunReadiesSoonAfterASlowStart(t *testing.T) {
	t.Parallel()
	logger, _ := logLines(t)
	c := health.NewChecker(health.Config{Logger: logger})
	// An hour between probes: readiness within the test's time can only
	// come from the faster probes at the start (100ms, then 200ms).
	c.SetInterval(time.Hour)
	var calls atomic.Int32
	c.Add("cache-notifier", func(context.Context) error {
		if calls.Add(1) < 3 {
			return errors.New("not listening")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(time.Minute)
	for !c.Serving() {
		if time.Now().After(deadline) {
			t.Fatalf("not SERVING after %d probes; want the start-up probes to come faster than the interval", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatchedDependencyDoesNotDecideReadiness(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var keysDown, dbDown atomic.Bool
	c := health.NewChecker(health.Config{Logger: slog.New(slog.DiscardHandler), Services: []string{"authsvc.v1.AuthService"}})
	c.Add("keyset", flaky(&keysDown, "not loaded"))
	c.Watch("postgres", "authsvc.postgres", flaky(&dbDown, "connection refused"))
	status := statusOf(t, c)
	type state struct {
		Overall, Auth, Postgres grpchealth.Status
		Deps                    map[string]bool
	}
	serving, notServing := grpchealth.StatusServing, grpchealth.StatusNotServing
	tests := []struct {
		name                   string
		keysDown, dbDown, stop bool
		want                   state
	}{
		{"all up", false, false, false, state{serving, serving, serving, map[string]bool{"keyset": true, "postgres": true}}},
		{"postgres down", false, true, false, state{serving, serving, notServing, map[string]bool{"keyset": true, "postgres": false}}},
		{"postgres back", false, false, false, state{serving, serving, serving, map[string]bool{"keyset": true, "postgres": true}}},
		{"key set lost", true, false, false, state{notServing, notServing, serving, map[string]bool{"keyset": false, "postgres": true}}},
		{"shutting down", false, false, true, state{notServing, notServing, notServing, map[string]bool{"keyset": true, "postgres": true}}},
	}
	for _, tt := range tests {
		keysDown.Store(tt.keysDown)
		dbDown.Store(tt.dbDown)
		if tt.stop {
			c.Shutdown()
		}
		c.Probe(ctx)
		got := state{status(""), status("authsvc.v1.AuthService"), status("authsvc.postgres"), c.Dependencies()}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
	}
	if _, err := c.Check(ctx, &grpchealth.CheckRequest{Service: "authsvc.nothing"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("Check of an unknown service: %v, want NotFound", err)
	}
}

// changes is a [health.Observer] that records what it is told.
type changes struct{ got []bool }

func (c *changes) ObserveReadiness(serving bool) { c.got = append(c.got, serving) }

func TestObserverIsToldEachChangeOfServing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var down atomic.Bool
	obs := &changes{}
	c := health.NewChecker(health.Config{Logger: slog.New(slog.DiscardHandler), Observer: obs})
	c.Add("keyset", func(context.Context) error {
		if down.Load() {
			return errors.New("not loaded")
		}
		return nil
	})
	down.Store(true)
	c.Probe(ctx) // NOT_SERVING from the start: no change
	down.Store(false)
	c.Probe(ctx)
	c.Probe(ctx) // still SERVING: no change
	down.Store(true)
	c.Probe(ctx)
	down.Store(false)
	c.Probe(ctx)
	c.Shutdown()
	c.Probe(ctx) // probes pass, but shutting down stays NOT_SERVING
	c.Shutdown()

	if diff := cmp.Diff([]bool{true, false, true, false}, obs.got); diff != "" {
		t.Errorf("reported changes (-want +got):\n%s", diff)
	}
}
