// Package telemetry exports authsvc's Prometheus metrics and OpenTelemetry
// traces, and implements the other packages' Observers with them.
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds authsvc's Prometheus metrics. Its methods are safe for
// concurrent use and cheap enough for the request path. No label value
// is ever taken from a request: labels hold procedure names, route
// templates, status codes and fixed outcome words, never an id or a
// secret.
type Metrics struct {
	gatherer prometheus.Gatherer

	buildInfo *prometheus.GaugeVec

	ready            prometheus.Gauge
	readinessChanges *prometheus.CounterVec

	rpcRequests *prometheus.CounterVec
	rpcDuration *prometheus.HistogramVec
	// rpcOK caches, by procedure, the series of successful calls.
	rpcOK sync.Map

	cacheReads     *prometheus.CounterVec
	cacheLoads     *prometheus.HistogramVec
	cachePGErrors  *prometheus.CounterVec
	cacheAge       *prometheus.HistogramVec
	cacheAgeByKind sync.Map // kind -> prometheus.Observer, resolved once
	cacheRefresh   *prometheus.CounterVec
	cacheQueue     *prometheus.GaugeVec
	writeThroughs  *prometheus.CounterVec

	wachtRequests *prometheus.CounterVec
	wachtDuration *prometheus.HistogramVec
	budget        *BudgetMetrics

	jwksRefreshes   *prometheus.CounterVec
	jwksFailures    prometheus.Gauge
	jwksLastSuccess prometheus.Gauge
	tokenCache      *prometheus.CounterVec

	tokenCacheHits, tokenCacheMisses prometheus.Counter
	webhooks                         *prometheus.CounterVec
	revocations                      *prometheus.CounterVec
}

// Bucket bounds, in seconds: RPCs answered from memory take well under a
// millisecond, calls to Wacht tens to hundreds, loads include retries.
var (
	rpcBuckets   = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	wachtBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15}
	loadBuckets  = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// ageBuckets span a value served just after a load to one served at
	// the end of its maximum age or stale limit.
	ageBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600}
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors, to pass to [NewMetrics].
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// NewMetrics creates authsvc's metrics and registers them with reg; nil
// means a new empty registry. [Metrics.Handler] serves reg when it is
// also a [prometheus.Gatherer], as a *prometheus.Registry is, and
// otherwise only these metrics. It panics if reg already holds metrics
// of the same names, as registering twice is a programming error.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authsvc_build_info",
			Help: "Always 1; the version label names the running build.",
		}, []string{"version"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authsvc_ready",
			Help: "1 while gRPC health reports the server SERVING (the readiness probe's answer), else 0.",
		}),
		readinessChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_readiness_changes_total",
			Help: "Changes of the server's gRPC health, by the status it changed to (serving, not_serving).",
		}, []string{"to"}),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_rpc_requests_total",
			Help: "RPCs handled, by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		rpcDuration: newHistogram("authsvc_rpc_duration_seconds",
			"Time to handle an RPC, by procedure and Connect code.", rpcBuckets, "procedure", "code"),
		cacheReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_cache_reads_total",
			Help: "Cache reads by kind, the level that answered (memory, postgres, or load on a miss) and outcome (fresh, stale, not_found, error).",
		}, []string{"kind", "level", "outcome"}),
		cacheLoads: newHistogram("authsvc_cache_load_duration_seconds",
			"Time of a cache loader call (coalesced callers count once), by kind and result (ok, not_found, error).",
			loadBuckets, "kind", "result"),
		cachePGErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_cache_postgres_errors_total",
			Help: "Failed Postgres operations of the cache, by kind and operation (read, write, put, invalidate).",
		}, []string{"kind", "op"}),
		cacheAge: newHistogram("authsvc_cache_served_age_seconds",
			"Age of the values that cache reads served (time since they were fetched from Wacht), by kind.",
			ageBuckets, "kind"),
		cacheRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_cache_refreshes_total",
			Help: "Background refreshes of cache entries, by kind and outcome (claimed: loaded here; skipped: left to another replica or no longer due; refused: no budget or queue full, retried later; failed).",
		}, []string{"kind", "outcome"}),
		cacheQueue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authsvc_cache_refresh_queue_depth",
			Help: "Keys waiting for a background refresh, by kind.",
		}, []string{"kind"}),
		writeThroughs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_webhook_write_throughs_total",
			Help: "Webhook events written into the cache without a Wacht call, by event type and result (applied; older: a newer state was kept; invalidated: the payload could not be applied, the entry was dropped instead).",
		}, []string{"type", "result"}),
		wachtRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_wacht_requests_total",
			Help: "Requests sent to Wacht, retries included, by route template and HTTP status (\"error\" when no answer came).",
		}, []string{"route", "status"}),
		wachtDuration: newHistogram("authsvc_wacht_request_duration_seconds",
			"Time of one request to Wacht, by route template.", wachtBuckets, "route"),
		budget: newBudgetMetrics(),
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_jwks_refreshes_total",
			Help: "Fetches of Wacht's session token key set, by result (ok, error).",
		}, []string{"result"}),
		jwksFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authsvc_jwks_consecutive_failures",
			Help: "Fetches of Wacht's session token key set that failed since the last one that succeeded.",
		}),
		jwksLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authsvc_jwks_last_success_timestamp_seconds",
			Help: "When Wacht's session token key set was last fetched successfully, in Unix seconds; 0 if never.",
		}),
		tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_token_cache_lookups_total",
			Help: "Lookups in the verified session token cache, by result (hit, miss).",
		}, []string{"result"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_webhook_events_total",
			Help: "Wacht webhook requests, by event type (\"other\" for types not acted on) and outcome.",
		}, []string{"type", "outcome"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_rotation_revocations_total",
			Help: "Attempts of the rotation worker to revoke a replaced API key, by outcome.",
		}, []string{"outcome"}),
	}
	cs := []prometheus.Collector{
		m.buildInfo, m.ready, m.readinessChanges, m.rpcRequests, m.rpcDuration, m.cacheReads, m.cacheLoads, m.cachePGErrors,
		m.cacheAge, m.cacheRefresh, m.cacheQueue, m.writeThroughs,
		m.wachtRequests, m.wachtDuration, m.jwksRefreshes, m.jwksFailures, m.jwksLastSuccess, m.tokenCache, m.webhooks, m.revocations,
	}
	cs = append(cs, m.budget.collectors()...)
	reg.MustRegister(cs...)
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		own := prometheus.NewRegistry()
		own.MustRegister(cs...)
		m.gatherer = own
	}
	// Series whose label values are all known start at zero, so that
	// rates are defined before the first event.
	for _, r := range []string{resultOK, resultError} {
		m.jwksRefreshes.WithLabelValues(r)
	}
	for _, to := range []string{readinessServing, readinessNotServing} {
		m.readinessChanges.WithLabelValues(to)
	}
	m.tokenCacheHits = m.tokenCache.WithLabelValues("hit")
	m.tokenCacheMisses = m.tokenCache.WithLabelValues("miss")
	return m
}

// newHistogram returns a histogram with classic buckets, and native
// buckets for scrapers that ask for them.
func newHistogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                            name,
		Help:                            help,
		Buckets:                         buckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	}, labels)
}

// SetBuildInfo sets authsvc_build_info{version} to 1, replacing any
// version set before.
func (m *Metrics) SetBuildInfo(version string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version).Set(1)
}

// Budget returns the metrics of the Wacht request budget, its
// [budget.Observer].
func (m *Metrics) Budget() *BudgetMetrics { return m.budget }

// Handler serves the metrics in the Prometheus text format, OpenMetrics
// (with trace exemplars) or protobuf, as the scraper asks, for GET
// /metrics. A collector that fails leaves out its metrics and does not
// fail the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		EnableOpenMetrics:   true,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}
