package authproc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/authproc"
)

// childEnv makes this test binary act as the authsvc process of a test:
// its value says how (see child).
const childEnv = "AUTHPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		child(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child listens on AUTHSVC_ADDR, logs "listening" as authsvc does unless
// mode is "quiet", answers the health check SERVING, and exits on SIGTERM
// unless mode is "stubborn". In mode "fail" it exits at once.
func child(mode string) {
	if mode == "fail" {
		fmt.Fprintln(os.Stderr, `{"msg":"no config"}`)
		os.Exit(3)
	}
	sig := make(chan os.Signal, 1)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sig, syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", os.Getenv("AUTHSVC_ADDR"))
	if err != nil {
		os.Exit(4)
	}
	if mode != "quiet" {
		line, _ := json.Marshal(map[string]string{"msg": "listening", "addr": ln.Addr().String()})
		fmt.Fprintln(os.Stderr, string(line))
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"status":"SERVING_STATUS_SERVING"}`)
		}))
	}()
	<-sig
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestStartWaitServingStop(t *testing.T) {
	t.Parallel()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mode     string
		fixed    bool // AUTHSVC_ADDR given
		startErr string
		stopErr  error
	}{
		{name: "address from the log", mode: "log"},
		{name: "given address, no log line", mode: "quiet", fixed: true},
		{name: "exits before listening", mode: "fail", startErr: "exited before listening: exit status 3"},
		{name: "killed when SIGTERM is ignored", mode: "stubborn", stopErr: authproc.ErrKilled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{childEnv: tt.mode}
			if tt.fixed {
				env["AUTHSVC_ADDR"] = freeAddr(t)
			}
			ctx := t.Context()
			p, err := authproc.Start(ctx, bin, authproc.Options{Env: env})
			if tt.startErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.startErr) {
					t.Fatalf("Start error = %v, want one containing %q", err, tt.startErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if tt.fixed && p.URL != "http://"+env["AUTHSVC_ADDR"] || !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
				t.Errorf("URL = %q, want http:// and the address it listens on", p.URL)
			}
			if err := p.WaitServing(ctx); err != nil {
				t.Errorf("WaitServing: %v", err)
			}
			// Long enough for a clean exit on a loaded machine.
			timeout := 30 * time.Second
			if tt.stopErr != nil {
				timeout = 500 * time.Millisecond
			}
			err = p.Stop(timeout)
			if tt.stopErr == nil && err != nil || tt.stopErr != nil && !errors.Is(err, tt.stopErr) {
				t.Errorf("Stop = %v, want %v", err, tt.stopErr)
			}
			if again := p.Stop(timeout); (again == nil) != (tt.stopErr == nil) {
				t.Errorf("second Stop = %v after %v", again, err)
			}
		})
	}
}

func TestStartGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// Quiet, with no address given: Start waits for a line never logged.
	_, err = authproc.Start(ctx, bin, authproc.Options{Env: map[string]string{childEnv: "quiet"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start error = %v, want context.DeadlineExceeded", err)
	}
}
