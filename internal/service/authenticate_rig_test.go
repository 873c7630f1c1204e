package service_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// edgeClock is a settable clock shared by every part of an edgeRig.
type edgeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *edgeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *edgeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// edgeRig is the whole service (apptest) on the emulator, served over
// HTTP/2 and called with grpc-go (Envoy's client) and Connect.
type edgeRig struct {
	fake  *wachtfake.Server
	wacht *wachtclient.Client
	demo  wachtfake.Demo
	clock *edgeClock
	logs  *syncBuffer
	envoy authv3.AuthorizationClient
	url   string
	hc    *http.Client
}

// edgeRigConfig shapes an edgeRig.
type edgeRigConfig struct {
	credentials     service.Credentials
	checkRevocation bool
	// clock, when set, drives every part; nil means real time.
	clock *edgeClock
}

// tokenCookie is the cookie name the rig's authsvc reads a token from.
const tokenCookie = "__auth_demo"

func newEdgeRig(tb testing.TB, cfg edgeRigConfig) *edgeRig {
	tb.Helper()
	var now func() time.Time
	if cfg.clock != nil {
		now = cfg.clock.Now
	}
	logs := &syncBuffer{}
	h := apptest.New(tb, apptest.Options{
		SeedDemo: true,
		Fake:     wachtfake.Options{RequestsPerMinute: 100_000, Now: now},
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      now,
		Config: func(c *app.Config) {
			c.WachtRequestsPerMin = 100_000
			c.WachtRetryBaseDelay, c.WachtRetryMaxDelay = time.Millisecond, 5*time.Millisecond
			c.ExtAuthzCredentials = cfg.credentials
			c.ExtAuthzTokenCookies = []string{tokenCookie}
			c.ExtAuthzAPIKeyHeader = "X-API-Key"
			c.ExtAuthzCheckRevocation = cfg.checkRevocation
		},
	})
	conn, err := grpc.NewClient(strings.TrimPrefix(h.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return &edgeRig{
		fake: h.Fake, wacht: h.App.Wacht(), demo: h.Demo, clock: cfg.clock, logs: logs,
		envoy: authv3.NewAuthorizationClient(conn), url: h.URL, hc: h.HTTPClient,
	}
}

// connectClient returns an AuthService client speaking Connect, or gRPC.
func (r *edgeRig) connectClient(grpcProtocol bool) authsvcv1connect.AuthServiceClient {
	var opts []connect.ClientOption
	if grpcProtocol {
		opts = append(opts, connect.WithGRPC())
	}
	return authsvcv1connect.NewAuthServiceClient(r.hc, r.url, opts...)
}
