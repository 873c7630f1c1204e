// Package authproc runs an authsvc binary as a child process and waits
// until it listens and until it serves.
package authproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// pollEvery is the pause between two looks at a process that is not
// ready yet.
const pollEvery = 50 * time.Millisecond

// ErrKilled is the error of a Stop that had to kill the process.
var ErrKilled = errors.New("killed")

// Options describe a process to start.
type Options struct {
	// Args follow the binary's path, such as "serve".
	Args []string
	// Env is the process's whole environment but PATH and HOME, which it
	// inherits. Without AUTHSVC_ADDR the process listens on a free
	// loopback port, which Start reads from its "listening" log line: its
	// log level must then be info or debug.
	Env map[string]string
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Process is one running authsvc process.
type Process struct {
	// URL is the base URL it serves on, such as http://127.0.0.1:43121:
	// https when Env has AUTHSVC_TLS_CERT.
	URL string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit error, once done is closed
}

// Start runs bin with o and waits until it listens: until it logs so, or,
// with an AUTHSVC_ADDR, until that address accepts connections. It fails
// when the process exits first or ctx ends, and then leaves no process
// behind. The kernel kills the process if this one dies (on Linux).
func Start(ctx context.Context, bin string, o Options) (*Process, error) {
	addr, fixed := o.Env["AUTHSVC_ADDR"]
	p := &Process{cmd: exec.Command(bin, o.Args...), done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if !fixed {
		p.cmd.Env = append(p.cmd.Env, "AUTHSVC_ADDR=127.0.0.1:0")
	}
	for k, v := range o.Env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = o.Stdout, o.Stderr
	p.cmd.SysProcAttr = ChildAttr()
	var listening chan string
	var pw *io.PipeWriter
	if !fixed {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		if o.Stderr == nil {
			p.cmd.Stderr = pw
		} else {
			p.cmd.Stderr = io.MultiWriter(o.Stderr, pw)
		}
		listening = make(chan string, 1)
		go readListening(pr, listening)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if pw != nil {
			pw.Close()
		}
		close(p.done)
	}()

	if fixed {
		listening = make(chan string, 1)
		go func() {
			if waitAccepting(ctx, p.done, addr) {
				listening <- addr
			}
		}()
	}
	select {
	case a := <-listening:
		p.URL = "http://" + a
		if o.Env["AUTHSVC_TLS_CERT"] != "" {
			p.URL = "https://" + a
		}
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening: %v", bin, p.err)
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s did not listen: %w", bin, ctx.Err())
	}
}

// readListening sends on addr the address of the first "listening" line
// of the JSON logs read from r, and reads r to its end.
func readListening(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
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
	_, _ = io.Copy(io.Discard, r)
}

// waitAccepting reports whether addr accepted a connection before done
// was closed or ctx ended.
func waitAccepting(ctx context.Context, done <-chan struct{}, addr string) bool {
	var d net.Dialer
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		select {
		case <-done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(pollEvery):
		}
	}
}

// WaitServing polls the gRPC health check, with Connect's JSON over
// plain HTTP, until it answers SERVING. It fails when the process exits
// first or ctx ends.
func (p *Process) WaitServing(ctx context.Context) error {
	client := &http.Client{}
	defer client.CloseIdleConnections()
	var last error
	for {
		if last = p.checkHealth(ctx, client); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before serving: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("not SERVING on %s: %w (last answer: %v)", p.URL, ctx.Err(), last)
		case <-time.After(pollEvery):
		}
	}
}

// checkHealth asks the health check once and returns nil for SERVING.
func (p *Process) checkHealth(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/grpc.health.v1.Health/Check", strings.NewReader(`{}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return fmt.Errorf("health check: HTTP %d: %w", res.StatusCode, err)
	}
	// The enum's name in Connect's JSON, and in protojson's.
	if body.Status != "SERVING_STATUS_SERVING" && body.Status != "SERVING" {
		return fmt.Errorf("health check: HTTP %d, status %q", res.StatusCode, body.Status)
	}
	return nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, and SIGKILL after timeout, waits for the process to
// exit and returns its exit error: nil for a clean exit, ErrKilled when it
// had to be killed. Stopping a process that has exited returns its exit
// error again.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%w: no exit within %s of SIGTERM", ErrKilled, timeout)
	}
}
