package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	// startTimeout bounds the wait for a replica to be SERVING.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a replica gets to exit after SIGTERM before
	// it is killed.
	stopTimeout = 10 * time.Second
)

// replica is one running `authsvc serve` process.
type replica struct {
	name    string
	url     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // the process's exit error, once done is closed
}

// startReplica runs `bin serve` with env (plus PATH and HOME) on a free
// loopback port, its output going to a log file in dir, and waits until
// its health check answers SERVING.
func startReplica(ctx context.Context, bin, name, dir string, env map[string]string) (*replica, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	r := &replica{name: name, url: "http://" + addr, logPath: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	defer logFile.Close()
	r.cmd = exec.Command(bin, "serve")
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "AUTHSVC_ADDR=" + addr}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = childAttr()
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	if err := r.waitServing(ctx); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// waitServing polls the gRPC health check until it answers SERVING.
func (r *replica) waitServing(ctx context.Context) error {
	c := newClients(r.url, 1)
	defer c.close()
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := c.health[0].CallUnary(cctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
		cancel()
		if err == nil && res.Msg.GetStatus() == healthv1.HealthCheckResponse_SERVING {
			return nil
		}
		last = err
		select {
		case <-r.done:
			return fmt.Errorf("replica %s exited before serving: %v\n%s", r.name, r.err, r.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("replica %s was not SERVING on %s within %s (last error: %v)\n%s", r.name, r.url, startTimeout, last, r.logTail())
}

// stop sends SIGTERM, and SIGKILL after stopTimeout, and waits for the
// process to exit. It is safe to call more than once.
func (r *replica) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// memory reads the process's resident set size now (VmRSS) and at its
// peak (VmHWM), in bytes.
func (r *replica) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of replica %s: %w", r.name, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, perr := strconv.ParseInt(fields[0], 10, 64)
		if perr != nil {
			continue
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("read memory of replica " + r.name + ": no VmRSS in /proc status")
	}
	return rss, peak, nil
}

// logTail returns the end of the replica's log, for error messages.
func (r *replica) logTail() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
