// Package e2e builds the real authsvc binary, starts it, and talks to it
// over the network, as its users do.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

// Start runs bin with args and the given environment (and nothing else
// from the test's own environment but PATH and HOME), waits until it
// logs that it is listening, and stops it when the test ends.
func Start(tb testing.TB, bin string, env map[string]string, args ...string) *Instance {
	tb.Helper()
	inst := &Instance{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	inst.cmd = exec.Command(bin, args...)
	inst.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if _, ok := env["AUTHSVC_ADDR"]; !ok {
		inst.cmd.Env = append(inst.cmd.Env, "AUTHSVC_ADDR=127.0.0.1:0")
	}
	for k, v := range env {
		inst.cmd.Env = append(inst.cmd.Env, k+"="+v)
	}
	inst.cmd.Stdout = inst.stdout
	pr, pw := io.Pipe()
	inst.cmd.Stderr = io.MultiWriter(inst.stderr, pw)
	if err := inst.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		inst.err = inst.cmd.Wait()
		pw.Close()
		close(inst.done)
	}()
	tb.Cleanup(func() {
		inst.Stop(tb)
		if tb.Failed() {
			tb.Logf("authsvc stderr:\n%s", inst.Stderr())
		}
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		inst.URL = "http://" + a
		if env["AUTHSVC_TLS_CERT"] != "" {
			inst.URL = "https://" + a
		}
	case <-inst.done:
		tb.Fatalf("authsvc exited before listening: %v\nstderr:\n%s", inst.err, inst.Stderr())
	case <-time.After(60 * time.Second):
		tb.Fatalf("authsvc did not start listening within 60s\nstderr:\n%s", inst.Stderr())
	}
	return inst
}

// Stop sends SIGTERM and waits for the process to exit, returning its
// exit error (nil for a clean exit).
func (i *Instance) Stop(tb testing.TB) error {
	tb.Helper()
	select {
	case <-i.done:
		return i.err
	default:
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.done:
	case <-time.After(30 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.done
		tb.Errorf("authsvc did not exit within 30s of SIGTERM")
	}
	return i.err
}

// Signal sends sig to the process.
func (i *Instance) Signal(sig os.Signal) error { return i.cmd.Process.Signal(sig) }

// Stdout returns what the process printed on standard output so far.
func (i *Instance) Stdout() string { return i.stdout.String() }

// Stderr returns the process's logs so far.
func (i *Instance) Stderr() string { return i.stderr.String() }

// WaitServing polls gRPC health over plain HTTP until it answers SERVING.
func (i *Instance) WaitServing(tb testing.TB, ctx context.Context) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, i.URL+"/grpc.health.v1.Health/Check",
			strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if bytes.Contains(body, []byte("SERVING")) && !bytes.Contains(body, []byte("NOT_SERVING")) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("authsvc at %s was not SERVING within 30s\nstderr:\n%s", i.URL, i.Stderr())
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
