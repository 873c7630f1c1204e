package telemetry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/telemetry"
)

// envOf returns a getenv reading m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestTracingIsOffUnlessAnEndpointIsSet(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"no endpoint":  {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"sdk disabled": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			shutdown, tp, err := telemetry.NewTracing(t.Context(), "authsvc", "v1", envOf(env))
			if err != nil {
				t.Fatalf("NewTracing: %v", err)
			}
			if _, ok := tp.(noop.TracerProvider); !ok {
				t.Errorf("provider is %T, want a no-op provider", tp)
			}
			_, span := tp.Tracer("test").Start(t.Context(), "probe")
			if span.IsRecording() || span.SpanContext().IsValid() {
				t.Error("a span of the provider records")
			}
			span.End()
			if _, ok := telemetry.HTTPClient(tp).Transport.(*http.Transport); !ok {
				t.Errorf("HTTPClient transport is %T, want a plain *http.Transport", telemetry.HTTPClient(tp).Transport)
			}
			if err := shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

func TestTracingRefusesAnUnknownProtocol(t *testing.T) {
	t.Parallel()
	_, _, err := telemetry.NewTracing(t.Context(), "authsvc", "v1", envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
	}))
	if err == nil || !strings.Contains(err.Error(), `"http/json"`) {
		t.Errorf("NewTracing(http/json) = %v, want an error naming the protocol", err)
	}
}

// collector receives OTLP trace exports, over HTTP and over gRPC.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.got <- req
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &coltracepb.ExportTraceServiceRequest{}
	if r.URL.Path != "/v1/traces" || err != nil || proto.Unmarshal(body, req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.got <- req
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Not parallel: the exporters read the process environment.
func TestTracingExportsOverOTLP(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			col := &collector{got: make(chan *coltracepb.ExportTraceServiceRequest, 4)}
			var endpoint string
			if protocol == "grpc" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv := grpc.NewServer()
				coltracepb.RegisterTraceServiceServer(srv, col)
				go srv.Serve(ln)
				t.Cleanup(srv.Stop)
				endpoint = "http://" + ln.Addr().String()
			} else {
				srv := httptest.NewServer(col)
				t.Cleanup(srv.Close)
				endpoint = srv.URL
			}
			for k, v := range map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "",
				"OTEL_SERVICE_NAME": "", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
			} {
				t.Setenv(k, v)
			}
			shutdown, tp, err := telemetry.NewTracing(t.Context(), "authsvc", "v9.8.7", os.Getenv)
			if err != nil {
				t.Fatalf("NewTracing: %v", err)
			}
			_, span := tp.Tracer("test").Start(t.Context(), "probe", trace.WithSpanKind(trace.SpanKindServer))
			span.End()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			var req *coltracepb.ExportTraceServiceRequest
			select {
			case req = <-col.got:
			default:
				t.Fatal("shutdown returned and the collector received nothing")
			}
			if len(req.GetResourceSpans()) != 1 {
				t.Fatalf("export has %d resources, want 1", len(req.GetResourceSpans()))
			}
			rs := req.GetResourceSpans()[0]
			attrs := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			want := map[string]string{
				"service.name": "authsvc", "service.version": "v9.8.7", "deployment.environment.name": "test",
			}
			for k, v := range want {
				if attrs[k] != v {
					t.Errorf("resource %s = %q, want %q", k, attrs[k], v)
				}
			}
			var names []string
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					names = append(names, sp.GetName())
				}
			}
			if diff := cmp.Diff([]string{"probe"}, names); diff != "" {
				t.Errorf("exported spans (-want +got):\n%s", diff)
			}
		})
	}
}

// spanTree describes a span for comparison: its name, kind, parent's
// name and some attributes.
type spanTree struct {
	Name, Kind, Parent string
	Attrs              map[string]string
}

func TestSpansFromCallerToWacht(t *testing.T) {
	t.Parallel()
	exp, tp := inMemoryTracing(t)
	s := newStack(t, tp)
	exp.Reset() // the key set fetch at start
	ada := s.demo.Users[0].ID

	ctx, caller := tp.Tracer("caller").Start(t.Context(), "caller", trace.WithSpanKind(trace.SpanKindClient))
	for range 2 {
		req := connectRequest(ctx, &authsvcv1.GetUserRequest{UserId: ada})
		if _, err := s.client.GetUser(ctx, req); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
	}
	caller.End()

	spans := exp.GetSpans()
	byID := map[trace.SpanID]string{caller.SpanContext().SpanID(): "caller"}
	for _, sp := range spans {
		byID[sp.SpanContext.SpanID()] = sp.Name
	}
	var got []spanTree
	for _, sp := range spans {
		if sp.Name == "caller" {
			continue
		}
		if sp.SpanContext.TraceID() != caller.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, not the caller's", sp.Name, sp.SpanContext.TraceID())
		}
		if strings.Contains(sp.Name, ada) {
			t.Errorf("span name %q holds the user id", sp.Name)
		}
		attrs := map[string]string{}
		for _, kv := range sp.Attributes {
			switch kv.Key {
			case "authsvc.cache.level", "authsvc.cache.key", "url.template", "rpc.method":
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
		}
		got = append(got, spanTree{Name: sp.Name, Kind: sp.SpanKind.String(), Parent: byID[sp.Parent.SpanID()], Attrs: attrs})
	}
	const server = "authsvc.v1.AuthService/GetUser"
	want := []spanTree{
		// First call: a miss, loaded from Wacht.
		{Name: "GET /users/{user_id}/details", Kind: "client", Parent: "cache.load user",
			Attrs: map[string]string{"url.template": "/users/{user_id}/details"}},
		{Name: "cache.load user", Kind: "internal", Parent: "cache.get user", Attrs: map[string]string{"authsvc.cache.key": ada}},
		{Name: "cache.get user", Kind: "internal", Parent: server,
			Attrs: map[string]string{"authsvc.cache.key": ada, "authsvc.cache.level": "load"}},
		{Name: server, Kind: "server", Parent: "caller", Attrs: map[string]string{"rpc.method": server}},
		// Second call: from memory.
		{Name: "cache.get user", Kind: "internal", Parent: server,
			Attrs: map[string]string{"authsvc.cache.key": ada, "authsvc.cache.level": "memory"}},
		{Name: server, Kind: "server", Parent: "caller", Attrs: map[string]string{"rpc.method": server}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans, in the order they ended (-want +got):\n%s", diff)
	}

	// The RPC durations carry the trace as an exemplar.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	exemplar := `# {trace_id="` + caller.SpanContext().TraceID().String() + `"}`
	if !strings.Contains(string(body), exemplar) {
		t.Errorf("/metrics in OpenMetrics has no exemplar %s", exemplar)
	}
}

func TestErrorHandlerLogsAWarning(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	telemetry.ErrorHandler(logger).Handle(errors.New("traces export: connection refused"))
	out := buf.String()
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "connection refused") {
		t.Errorf("logged %q, want a warning with the error", out)
	}
}
