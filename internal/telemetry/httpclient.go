package telemetry

import (
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// HTTPClient returns the client for wachtclient.Config.HTTPClient: each
// attempt is bounded (5 s to connect or finish TLS, 10 s to the response
// headers, 15 s in all) and redirects are not followed, so that the
// Authorization header never reaches another origin.
//
// When tp records, every request is a client span named after its route
// template, such as "GET /users/{user_id}/details", with the template in
// url.template; the full URL, ids included, is an attribute only. No
// trace context is sent to Wacht, which is not ours.
func HTTPClient(tp trace.TracerProvider) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 16
	var rt http.RoundTripper = tr
	if enabled(tp) {
		rt = otelhttp.NewTransport(routeTagger{next: tr},
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
			otelhttp.WithSpanNameFormatter(spanName),
		)
	}
	return &http.Client{
		Transport: rt,
		Timeout:   15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// spanName names a client span after the request's route, or its method
// alone for a request that has none, never after its concrete path.
func spanName(_ string, r *http.Request) string {
	if route := wachtclient.RouteFromContext(r.Context()); route != "" {
		return route
	}
	return r.Method
}

// routeTagger runs inside the client span and adds the route's path
// template to it.
type routeTagger struct{ next http.RoundTripper }

func (t routeTagger) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, template, ok := strings.Cut(wachtclient.RouteFromContext(r.Context()), " "); ok {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("url.template", template))
	}
	return t.next.RoundTrip(r)
}
