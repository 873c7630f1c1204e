package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName names the tracer of authsvc's own spans.
const instrumentationName = "github.com/authsvc/authsvc/internal/telemetry"

// OTLP protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	protocolGRPC = "grpc"
	protocolHTTP = "http/protobuf"
)

// NewTracing returns the tracer provider of the process and the function
// that flushes and stops it.
//
// Tracing is on only when getenv gives OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), and OTEL_SDK_DISABLED is not
// "true" and OTEL_TRACES_EXPORTER is not "none". Spans are then batched
// and exported over OTLP, with the protocol named by
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
// "http/protobuf" (the default, as the OpenTelemetry specification says)
// or "grpc"; any other value is an error. Their resource has service.name
// and service.version. As the specification requires, the exporter and
// the SDK read their other settings (endpoint, headers, certificates,
// timeout, sampler, OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME) from the
// process environment themselves.
//
// Otherwise the provider is a no-op one, which [ConnectInterceptor],
// [HTTPClient], [Traced] and [TraceCache] recognise and skip entirely.
func NewTracing(ctx context.Context, serviceName, version string, getenv func(string) string) (shutdown func(context.Context) error, tp trace.TracerProvider, err error) {
	off := func(context.Context) error { return nil }
	endpoint := cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if endpoint == "" || strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return off, noop.NewTracerProvider(), nil
	}
	protocol := strings.TrimSpace(cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), protocolHTTP))
	var exporter sdktrace.SpanExporter
	switch protocol {
	case protocolHTTP:
		exporter, err = otlptracehttp.New(ctx)
	case protocolGRPC:
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported: use %s or %s", protocol, protocolHTTP, protocolGRPC)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: create %s exporter: %w", protocol, err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, nil, fmt.Errorf("tracing: describe the resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return provider.Shutdown, provider, nil
}

// ErrorHandler returns a handler, for otel.SetErrorHandler, that logs
// OpenTelemetry's own failures, such as an unreachable collector, as
// warnings through logger instead of the standard log package.
func ErrorHandler(logger *slog.Logger) otel.ErrorHandler {
	return otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry failure", "error", err)
	})
}

// enabled reports whether tp records anything: it is neither nil nor a
// no-op provider.
func enabled(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return false
	}
	return true
}

// propagator reads and writes W3C trace context, and nothing else: no
// baggage, which callers could fill with anything.
func propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }
