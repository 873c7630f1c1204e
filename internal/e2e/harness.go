// Package e2e builds the real authsvc binary, starts it, and talks to it
// over the network, as its users do.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/authproc"
)

// Build compiles cmd/authsvc into dir and returns the binary's path.
func Build(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(dir, "authsvc")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/authsvc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/authsvc: %v\n%s", err, out)
	}
	return bin, nil
}

// Instance is one running authsvc process.
type Instance struct {
	// URL is the base URL it serves on, such as http://127.0.0.1:43121.
	URL string

	proc   *authproc.Process
	stdout *lockedBuffer
	stderr *lockedBuffer
}

// Start runs bin with args and the given environment (and nothing else
// from the test's own environment but PATH and HOME), waits until it
// logs that it is listening, and stops it when the test ends.
func Start(tb testing.TB, bin string, env map[string]string, args ...string) *Instance {
	tb.Helper()
	inst := &Instance{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := authproc.Start(ctx, bin, authproc.Options{Args: args, Env: env, Stdout: inst.stdout, Stderr: inst.stderr})
	if err != nil {
		tb.Fatalf("%v\nstderr:\n%s", err, inst.Stderr())
	}
	inst.proc, inst.URL = p, p.URL
	tb.Cleanup(func() {
		inst.Stop(tb)
		if tb.Failed() {
			tb.Logf("authsvc stderr:\n%s", inst.Stderr())
		}
	})
	return inst
}

// Stop sends SIGTERM and waits for the process to exit, returning its
// exit error (nil for a clean exit).
func (i *Instance) Stop(tb testing.TB) error {
	tb.Helper()
	err := i.proc.Stop(30 * time.Second)
	if errors.Is(err, authproc.ErrKilled) {
		tb.Errorf("authsvc: %v", err)
	}
	return err
}

// Signal sends sig to the process.
func (i *Instance) Signal(sig os.Signal) error { return i.proc.Signal(sig) }

// Stdout returns what the process printed on standard output so far.
func (i *Instance) Stdout() string { return i.stdout.String() }

// Stderr returns the process's logs so far.
func (i *Instance) Stderr() string { return i.stderr.String() }

// WaitServing polls gRPC health over plain HTTP until it answers SERVING.
func (i *Instance) WaitServing(tb testing.TB, ctx context.Context) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := i.proc.WaitServing(ctx); err != nil {
		tb.Fatalf("authsvc at %s: %v\nstderr:\n%s", i.URL, err, i.Stderr())
	}
}

// RunOnce runs bin to completion with env and args and returns its
// output and exit error.
func RunOnce(bin string, env map[string]string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		<-ctx.Done()
		if cmd.Process != nil && ctx.Err() == context.DeadlineExceeded {
			_ = cmd.Process.Kill()
		}
	}()
	err = cmd.Run()
	return o.String(), e.String(), err
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
