package telemetry

import (
	"fmt"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/trace"
)

// ConnectInterceptor returns a Connect interceptor that opens a server
// span for every call, named after its procedure, with the RPC semantic
// conventions' attributes. It records no metrics (see
// [Metrics.Interceptor]), no peer address and no headers. Put it first,
// so that the other interceptors and the handler run inside its span.
//
// A caller's W3C traceparent is trusted: the server span becomes a child
// of the caller's span, so one trace follows a request from the calling
// service through authsvc to Wacht. authsvc is internal, and callers are
// authenticated before any interceptor runs; an edge service would link
// to the remote span instead.
//
// With a no-op provider (tracing off) the interceptor does nothing.
func ConnectInterceptor(tp trace.TracerProvider) (connect.Interceptor, error) {
	if !enabled(tp) {
		return passInterceptor{}, nil
	}
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(tp),
		otelconnect.WithoutMetrics(),
		otelconnect.WithPropagator(propagator()),
		otelconnect.WithTrustRemote(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing interceptor: %w", err)
	}
	return i, nil
}

// passInterceptor changes nothing.
type passInterceptor struct{}

func (passInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (passInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (passInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
