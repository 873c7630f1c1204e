package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authsvc/authsvc/internal/cache"
)

// Span attribute keys of authsvc's own spans. Cache keys are ids or
// hashes, never secrets (the cache package requires it), so they may go
// into traces; they never go into metrics.
const (
	attrKind     = attribute.Key("authsvc.cache.kind")
	attrKey      = attribute.Key("authsvc.cache.key")
	attrLevel    = attribute.Key("authsvc.cache.level")
	attrStale    = attribute.Key("authsvc.cache.stale")
	attrNotFound = attribute.Key("authsvc.cache.not_found")
)

// Traced wraps a cache loader in an internal span "cache.load <kind>".
// A "not found" answer is not an error of the span. With a no-op
// provider it returns load itself.
func Traced[V any](tp trace.TracerProvider, kind string, load cache.Loader[V]) cache.Loader[V] {
	if !enabled(tp) {
		return load
	}
	tracer := tp.Tracer(instrumentationName)
	name := "cache.load " + kind
	return func(ctx context.Context, key string) (V, error) {
		ctx, span := tracer.Start(ctx, name, trace.WithAttributes(attrKind.String(kind), attrKey.String(key)))
		defer span.End()
		v, err := load(ctx, key)
		endSpan(span, err)
		return v, err
	}
}

// Cache is the part of a *cache.Cache that [TraceCache] traces.
type Cache[V any] interface {
	Kind() string
	Get(ctx context.Context, key string) (cache.Result[V], error)
	Reload(ctx context.Context, key string) (cache.Result[V], error)
	Invalidate(ctx context.Context, key string) error
}

// TraceCache returns c with a span around each Get, Reload and
// Invalidate ("cache.get <kind>" and so on) that records the level that
// answered and whether the value was stale. With a no-op provider it
// returns c itself.
func TraceCache[V any](tp trace.TracerProvider, c Cache[V]) Cache[V] {
	if !enabled(tp) {
		return c
	}
	kind := c.Kind()
	return &tracedCache[V]{
		next:       c,
		tracer:     tp.Tracer(instrumentationName),
		kind:       kind,
		getName:    "cache.get " + kind,
		reloadName: "cache.reload " + kind,
		dropName:   "cache.invalidate " + kind,
	}
}

type tracedCache[V any] struct {
	next                          Cache[V]
	tracer                        trace.Tracer
	kind                          string
	getName, reloadName, dropName string
}

func (c *tracedCache[V]) Kind() string { return c.kind }

func (c *tracedCache[V]) Get(ctx context.Context, key string) (cache.Result[V], error) {
	return c.read(ctx, c.getName, key, c.next.Get)
}

func (c *tracedCache[V]) Reload(ctx context.Context, key string) (cache.Result[V], error) {
	return c.read(ctx, c.reloadName, key, c.next.Reload)
}

func (c *tracedCache[V]) Invalidate(ctx context.Context, key string) error {
	ctx, span := c.start(ctx, c.dropName, key)
	defer span.End()
	err := c.next.Invalidate(ctx, key)
	endSpan(span, err)
	return err
}

func (c *tracedCache[V]) read(ctx context.Context, name, key string, read func(context.Context, string) (cache.Result[V], error)) (cache.Result[V], error) {
	ctx, span := c.start(ctx, name, key)
	defer span.End()
	res, err := read(ctx, key)
	if err == nil {
		span.SetAttributes(attrLevel.String(res.Source.String()), attrStale.Bool(res.Stale))
	}
	endSpan(span, err)
	return res, err
}

func (c *tracedCache[V]) start(ctx context.Context, name, key string) (context.Context, trace.Span) {
	return c.tracer.Start(ctx, name, trace.WithAttributes(attrKind.String(c.kind), attrKey.String(key)))
}

// endSpan records err on span: "not found" as an attribute, any other
// error as the span's error.
func endSpan(span trace.Span, err error) {
	switch {
	case err == nil:
	case errors.Is(err, cache.ErrNotFound):
		span.SetAttributes(attrNotFound.Bool(true))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
