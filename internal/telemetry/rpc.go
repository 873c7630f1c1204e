package telemetry

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// codeOK is the code label of a call that succeeded.
const codeOK = "ok"

// Interceptor returns a Connect handler interceptor that counts and times
// every unary and streaming call by procedure and code ("ok", or the
// Connect code such as "unauthenticated"). The procedure is the handler's
// own, so the label is bounded by the procedures served. Put it after
// the tracing interceptor, so that durations carry the call's trace as an
// exemplar. On clients it does nothing.
func (m *Metrics) Interceptor() connect.Interceptor {
	return rpcInterceptor{m: m}
}

type rpcInterceptor struct{ m *Metrics }

func (i rpcInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := time.Now()
		res, err := next(ctx, req)
		i.m.observeRPC(ctx, req.Spec().Procedure, time.Since(start), err)
		return res, err
	}
}

func (i rpcInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i rpcInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		i.m.observeRPC(ctx, conn.Spec().Procedure, time.Since(start), err)
		return err
	}
}

func (m *Metrics) observeRPC(ctx context.Context, procedure string, took time.Duration, err error) {
	if err == nil {
		s := m.okSeries(procedure)
		s.requests.Inc()
		observeWithTrace(ctx, s.duration, took.Seconds())
		return
	}
	code := connect.CodeOf(err).String()
	m.rpcRequests.WithLabelValues(procedure, code).Inc()
	observeWithTrace(ctx, m.rpcDuration.WithLabelValues(procedure, code), took.Seconds())
}

// rpcSeries are the series of one procedure's successful calls.
type rpcSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// okSeries returns the series of procedure's successful calls, looked up
// by label values once per procedure rather than on every call.
func (m *Metrics) okSeries(procedure string) *rpcSeries {
	if s, ok := m.rpcOK.Load(procedure); ok {
		return s.(*rpcSeries)
	}
	s, _ := m.rpcOK.LoadOrStore(procedure, &rpcSeries{
		requests: m.rpcRequests.WithLabelValues(procedure, codeOK),
		duration: m.rpcDuration.WithLabelValues(procedure, codeOK),
	})
	return s.(*rpcSeries)
}

// observeWithTrace observes v, with the sampled trace of ctx, if any, as
// the exemplar that links the bucket to a trace.
func observeWithTrace(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(v)
}
