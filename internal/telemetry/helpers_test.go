package telemetry_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
	"github.com/authsvc/authsvc/internal/webhook"
)

// stack is authsvc wired as cmd/authsvc wires it, with its metrics and
// tracing, in front of the Wacht emulator.
type stack struct {
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	fake    *wachtfake.Server
	demo    wachtfake.Demo
	wacht   *wachtclient.Client
	verify  *sessiontoken.Verifier
	users   *cache.Cache[*authsvcv1.User]
	// url serves the AuthService, reflection, /webhooks/wacht and /metrics.
	url           string
	hc            *http.Client // trusts the stack's TLS certificate
	client        authsvcv1connect.AuthServiceClient
	webhookSecret string
}

// newStack builds a stack whose spans go to tp.
func newStack(t *testing.T, tp trace.TracerProvider) *stack {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s := &stack{reg: telemetry.NewRegistry()}
	s.metrics = telemetry.NewMetrics(s.reg)
	s.metrics.SetBuildInfo("v1.2.3-test")

	var err error
	// The emulator sends webhooks to the stack, whose TLS certificate is
	// known once it starts.
	webhookClient := &http.Client{Timeout: 10 * time.Second}
	s.fake, err = wachtfake.New(wachtfake.Options{WebhookClient: webhookClient})
	if err != nil {
		t.Fatal(err)
	}
	wachtSrv := httptest.NewServer(s.fake)
	t.Cleanup(wachtSrv.Close)
	s.fake.SetIssuer(wachtSrv.URL)
	if s.demo, err = s.fake.SeedDemo(); err != nil {
		t.Fatal(err)
	}

	s.wacht, err = wachtclient.New(wachtclient.Config{
		APIURL: wachtSrv.URL, GatewayURL: wachtSrv.URL, FrontendURL: wachtSrv.URL, APIKey: s.fake.APIKey(),
		HTTPClient:     telemetry.HTTPClient(tp),
		Observer:       s.metrics.ObserveWachtRequest,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.verify, err = sessiontoken.New(sessiontoken.Config{
		Issuer: wachtSrv.URL, Fetcher: s.wacht, Logger: logger,
		OnRefresh: s.metrics.ObserveJWKSRefresh, OnCacheLookup: s.metrics.ObserveTokenCacheLookup,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.verify.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.users, err = cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", Load: telemetry.Traced(tp, "user", service.LoadUser(s.wacht)),
		IsTransient: wachtclient.IsTransient, Observer: s.metrics, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.users.Close)
	sessions, err := cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", Load: telemetry.Traced(tp, "sessions", service.LoadSessions(s.wacht)),
		IsTransient: wachtclient.IsTransient, Observer: s.metrics, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	auth, err := service.NewAuthServer(service.AuthConfig{
		Logger: logger, Verifier: s.verify, Wacht: s.wacht,
		Users:        telemetry.TraceCache[*authsvcv1.User](tp, s.users),
		Sessions:     telemetry.TraceCache[[]*authsvcv1.Session](tp, sessions),
		PageTokenKey: []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}

	var secret [32]byte
	_, _ = rand.Read(secret[:])
	s.webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString(secret[:])
	hooks, err := webhook.NewHandler(webhook.Config{
		Secret:      s.webhookSecret,
		Invalidator: service.NewInvalidator(s.users, sessions, 0, nil),
		Deduper:     webhook.NewMemoryDeduper(100, time.Hour),
		Logger:      logger,
		Observer:    s.metrics.ObserveWebhook,
	})
	if err != nil {
		t.Fatal(err)
	}

	tracing, err := telemetry.ConnectInterceptor(tp)
	if err != nil {
		t.Fatal(err)
	}
	opts := connect.WithInterceptors(tracing, s.metrics.Interceptor())
	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(auth, opts))
	reflector := grpcreflect.NewStaticReflector(authsvcv1connect.AuthServiceName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, opts))
	mux.Handle("/webhooks/wacht", hooks)
	mux.Handle("GET /metrics", s.metrics.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true // bidirectional streams (reflection) need it
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url, s.hc = srv.URL, srv.Client()
	webhookClient.Transport = s.hc.Transport
	s.client = authsvcv1connect.NewAuthServiceClient(s.hc, s.url)
	return s
}

// series returns every sample gathered from reg: counters and gauges by
// their value, histograms by their count (name_count). Keys look like
// name{label="value",...}, labels sorted by name.
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name, v := f.GetName(), 0.0
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name += "_count"
				v = float64(m.GetHistogram().GetSampleCount())
			default:
				continue
			}
			out[seriesKey(name, m.GetLabel())] = v
		}
	}
	return out
}

func seriesKey(name string, labels []*dto.LabelPair) string {
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// only keeps the series whose names start with prefix.
func only(all map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range all {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// labelValues returns every label value of every authsvc_ metric.
func labelValues(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "authsvc_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				out = append(out, l.GetName()+"="+l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// inMemoryTracing returns a tracer provider that records every span, in
// the order they end, in the returned exporter.
func inMemoryTracing(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp, tp
}

// connectRequest returns a request for msg that carries the trace of ctx
// in its headers, as a traced caller's would.
func connectRequest[T any](ctx context.Context, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header()))
	return req
}
