package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// Linux fixes it at 100 for user space on every architecture Go runs on.
const clockTicks = 100

// processCPU returns the user plus system CPU time the process pid has
// used, all its threads together, from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, errors.New("parse /proc stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// outcome is how a call ended, as the load generator sees it.
type outcome int

const (
	outcomeAllowed outcome = iota // the token was accepted
	outcomeRefused                // the token was refused as unauthenticated
	outcomeFailed                 // anything else: transport or server error
)

// transport names how a load reaches a server.
type transport string

const (
	transportJSON transport = "Connect JSON, HTTP/1.1"
	transportGRPC transport = "gRPC, h2c"
)

// rpc is the call under load.
type rpc int

const (
	rpcVerify rpc = iota // AuthService/VerifySession
	rpcCheck             // Envoy's Authorization/Check
)

// caller sends one call with a token and reports its outcome. It is safe
// for concurrent use.
type caller interface {
	call(ctx context.Context, r rpc, token string) (outcome, error)
	close()
}

// jsonCaller speaks Connect's protocol with JSON over HTTP/1.1, one
// connection per call in flight, as a typical HTTP load generator does.
type jsonCaller struct {
	base string
	hc   *http.Client
	tr   *http.Transport
}

func newJSONCaller(base string, conns int) *jsonCaller {
	var h1 http.Protocols
	h1.SetHTTP1(true)
	tr := &http.Transport{Protocols: &h1, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &jsonCaller{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr: tr}
}

func (c *jsonCaller) call(ctx context.Context, r rpc, token string) (outcome, error) {
	var body []byte
	path := authsvcv1connect.AuthServiceVerifySessionProcedure
	if r == rpcCheck {
		path = "/envoy.service.auth.v3.Authorization/Check"
		body = append(append([]byte(`{"attributes":{"request":{"http":{"headers":{"authorization":"Bearer `), token...), `"}}}}}`...)
	} else {
		body = append(append([]byte(`{"token":"`), token...), `"}`...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return outcomeFailed, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	res, err := c.hc.Do(req)
	if err != nil {
		return outcomeFailed, err
	}
	out, rerr := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if rerr != nil {
		return outcomeFailed, rerr
	}
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return outcomeRefused, nil
	case res.StatusCode != http.StatusOK:
		return outcomeFailed, fmt.Errorf("HTTP %d: %.200s", res.StatusCode, out)
	case r == rpcCheck && bytes.Contains(out, []byte(`"deniedResponse"`)):
		return outcomeRefused, nil
	}
	return outcomeAllowed, nil
}

func (c *jsonCaller) close() { c.tr.CloseIdleConnections() }

// grpcCaller speaks gRPC (binary protobuf) over cleartext HTTP/2, with the
// calls spread over a few connections.
type grpcCaller struct {
	verify     []authsvcv1connect.AuthServiceClient
	check      []*connect.Client[authv3.CheckRequest, authv3.CheckResponse]
	transports []*http.Transport
	next       atomic.Uint32
}

func newGRPCCaller(base string, conns int) *grpcCaller {
	c := &grpcCaller{}
	for range conns {
		var h2c http.Protocols
		h2c.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &h2c}
		hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		c.transports = append(c.transports, tr)
		c.verify = append(c.verify, authsvcv1connect.NewAuthServiceClient(hc, base, connect.WithGRPC()))
		c.check = append(c.check, connect.NewClient[authv3.CheckRequest, authv3.CheckResponse](
			hc, base+"/envoy.service.auth.v3.Authorization/Check", connect.WithGRPC()))
	}
	return c
}

func (c *grpcCaller) call(ctx context.Context, r rpc, token string) (outcome, error) {
	i := int(c.next.Add(1)) % len(c.verify)
	if r == rpcCheck {
		res, err := c.check[i].CallUnary(ctx, connect.NewRequest(&authv3.CheckRequest{
			Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"authorization": "Bearer " + token}},
			}},
		}))
		switch {
		case err != nil:
			return outcomeFailed, err
		case res.Msg.GetDeniedResponse() != nil:
			return outcomeRefused, nil
		}
		return outcomeAllowed, nil
	}
	_, err := c.verify[i].VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token}))
	switch {
	case err == nil:
		return outcomeAllowed, nil
	case connect.CodeOf(err) == connect.CodeUnauthenticated:
		return outcomeRefused, nil
	}
	return outcomeFailed, err
}

func (c *grpcCaller) close() {
	for _, tr := range c.transports {
		tr.CloseIdleConnections()
	}
}

// tally counts the outcomes of a run.
type tally struct {
	allowed, refused, failed int
	firstErr                 error
}

// drive makes n calls, inFlight at a time, the i-th with token(i), and
// stops early when limit passes or ctx ends.
func drive(ctx context.Context, c caller, r rpc, n, inFlight int, limit time.Duration, token func(i int) string) (tally, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		next    atomic.Int64
		mu      sync.Mutex
		t       tally
		wg      sync.WaitGroup
		started = time.Now()
	)
	for range inFlight {
		wg.Go(func() {
			var local tally
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				o, err := c.call(ctx, r, token(i))
				switch o {
				case outcomeAllowed:
					local.allowed++
				case outcomeRefused:
					local.refused++
				default:
					local.failed++
					if local.firstErr == nil {
						local.firstErr = err
					}
				}
			}
			mu.Lock()
			t.allowed += local.allowed
			t.refused += local.refused
			t.failed += local.failed
			if t.firstErr == nil {
				t.firstErr = local.firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return t, time.Since(started)
}
