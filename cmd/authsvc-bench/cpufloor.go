package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/authproc"
)

// floorCommand is the hidden first argument that makes this program serve
// the no-op floor instead of measuring: `noop-server <addr>`, or
// `noop-server <addr> signature` for the floor that also checks one
// P-256 signature per request.
const (
	floorCommand  = "noop-server"
	signatureFlag = "signature"
)

// serveFloor serves the no-op floor on addr until the process is killed:
// plain net/http, HTTP/1.1 and cleartext HTTP/2 on one port, answering
// every POST with the smallest valid reply of the caller's protocol. With
// withSignature, each request first pays one P-256 signature check, the
// only work a new token needs that a no-op server does not do.
func serveFloor(addr string, withSignature bool) error {
	handler := http.Handler(http.HandlerFunc(floorHandler))
	if withSignature {
		check, err := newSignatureCheck()
		if err != nil {
			return fmt.Errorf("no-op server: %w", err)
		}
		handler = signatureFloor(check)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("no-op server: %w", err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	return srv.Serve(ln)
}

// signatureFloor is floorHandler after one signature check per request;
// a check that fails (it never should) is answered with a 500, which the
// load generator counts as a failed call.
func signatureFloor(check func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !check() {
			http.Error(w, "signature check failed", http.StatusInternalServerError)
			return
		}
		floorHandler(w, r)
	})
}

// floorHandler reads the request body and answers with an empty message:
// a gRPC frame of length zero and grpc-status 0 to gRPC callers, "{}" to
// Connect JSON callers. It parses nothing.
func floorHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		var frame [5]byte
		binary.BigEndian.PutUint32(frame[1:], 0)
		_, _ = w.Write(frame[:])
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Grpc-Message", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

// floorProcess is the no-op server, run as a child process so that its
// CPU time is its own.
type floorProcess struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startFloor runs this program as the no-op server, with a signature
// check per request if withSignature, on a free loopback port and waits
// until it answers.
func startFloor(ctx context.Context, withSignature bool) (*floorProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the no-op server: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f := &floorProcess{url: "http://" + addr, done: make(chan struct{})}
	args := []string{floorCommand, addr}
	if withSignature {
		args = append(args, signatureFlag)
	}
	f.cmd = exec.Command(filepath.Clean(self), args...)
	f.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	f.cmd.Stderr = os.Stderr
	f.cmd.SysProcAttr = authproc.ChildAttr()
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the no-op server: %w", err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Post(f.url+"/", "application/json", strings.NewReader("{}"))
		if err == nil {
			_ = res.Body.Close()
			return f, nil
		}
		select {
		case <-f.done:
			return nil, errors.New("the no-op server exited before serving")
		case <-ctx.Done():
			f.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.stop()
			return nil, fmt.Errorf("the no-op server did not answer within 10s: %w", err)
		}
	}
}

func (f *floorProcess) pid() int { return f.cmd.Process.Pid }

// stop kills the no-op server and waits for it.
func (f *floorProcess) stop() {
	select {
	case <-f.done:
		return
	default:
	}
	_ = f.cmd.Process.Kill()
	<-f.done
}
