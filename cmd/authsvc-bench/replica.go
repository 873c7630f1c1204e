package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/authproc"
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
	proc    *authproc.Process
}

// startReplica runs `bin serve` with env (plus PATH and HOME) on a free
// loopback port, its output going to a log file in dir, and waits until
// its health check answers SERVING.
func startReplica(ctx context.Context, bin, name, dir string, env map[string]string) (*replica, error) {
	// The port is chosen here, not read from the replica's logs, which
	// -log-level may silence.
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	r := &replica{name: name, logPath: filepath.Join(dir, name+".log")}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("start replica %s: %w", name, err)
	}
	defer logFile.Close()
	env = maps.Clone(env)
	env["AUTHSVC_ADDR"] = addr
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	r.proc, err = authproc.Start(ctx, bin, authproc.Options{Args: []string{"serve"}, Env: env, Stdout: logFile, Stderr: logFile})
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w\n%s", name, err, r.logTail())
	}
	r.url = r.proc.URL
	if err := r.proc.WaitServing(ctx); err != nil {
		r.stop()
		return nil, fmt.Errorf("replica %s: %w\n%s", name, err, r.logTail())
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

// stop sends SIGTERM, and SIGKILL after stopTimeout, and waits for the
// process to exit. It is safe to call more than once.
func (r *replica) stop() { _ = r.proc.Stop(stopTimeout) }

// memory reads the process's resident set size now (VmRSS) and at its
// peak (VmHWM), in bytes.
func (r *replica) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.proc.Pid()))
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
