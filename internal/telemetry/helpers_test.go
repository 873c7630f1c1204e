package telemetry_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// stack is authsvc as app.New wires it, with its metrics and tracing, in
// front of the Wacht emulator.
type stack struct {
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	fake    *wachtfake.Server
	demo    wachtfake.Demo
	wacht   *wachtclient.Client
	verify  *sessiontoken.Verifier
	// url serves the AuthService, reflection, /webhooks/wacht and /metrics.
	url           string
	hc            *http.Client // speaks cleartext HTTP/2 to url
	client        authsvcv1connect.AuthServiceClient
	webhookSecret string
}

// newStack builds a stack whose spans go to tp.
func newStack(t *testing.T, tp trace.TracerProvider) *stack {
	t.Helper()
	h := apptest.New(t, apptest.Options{
		SeedDemo:       true,
		TracerProvider: tp,
		Version:        "v1.2.3-test",
		Config: func(c *app.Config) {
			c.WachtRetryBaseDelay, c.WachtRetryMaxDelay = time.Millisecond, 5*time.Millisecond
		},
	})
	return &stack{
		reg: h.Registry, metrics: h.App.Metrics(), fake: h.Fake, demo: h.Demo,
		wacht: h.App.Wacht(), verify: h.App.Verifier(),
		url: h.URL, hc: h.HTTPClient, client: h.AuthClient(), webhookSecret: h.WebhookSecret,
	}
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
