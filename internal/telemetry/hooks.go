package telemetry

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/health"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/webhook"
	"github.com/authsvc/authsvc/internal/writethrough"
)

// Label values of authsvc_readiness_changes_total.
const (
	readinessServing    = "serving"
	readinessNotServing = "not_serving"
)

// Result label values.
const (
	resultOK       = "ok"
	resultNotFound = "not_found"
	resultError    = "error"
)

var (
	_ cache.Observer        = (*Metrics)(nil)
	_ wachtclient.Observer  = (*Metrics)(nil)
	_ webhook.Observer      = (*Metrics)(nil)
	_ writethrough.Observer = (*Metrics)(nil)
	_ rotation.Observer     = (*Metrics)(nil)
	_ health.Observer       = (*Metrics)(nil)
	_ sessiontoken.Observer = (*Metrics)(nil)
)

// ObserveRead implements [cache.Observer]: one read of a cache of the
// given kind, by the level that answered and how. A read answered at
// level "load" is a miss; a "stale" outcome is a stale value served
// while loading failed.
func (m *Metrics) ObserveRead(kind string, source cache.Source, outcome cache.Outcome) {
	m.cacheReads.WithLabelValues(kind, source.String(), outcome.String()).Inc()
}

// ObserveLoad implements [cache.Observer]: one loader call, timed, by
// result.
func (m *Metrics) ObserveLoad(kind string, took time.Duration, err error) {
	result := resultOK
	switch {
	case err == nil:
	case errors.Is(err, cache.ErrNotFound):
		result = resultNotFound
	default:
		result = resultError
	}
	m.cacheLoads.WithLabelValues(kind, result).Observe(took.Seconds())
}

// ObservePostgresError implements [cache.Observer]: one failed Postgres
// operation of the cache. The error itself is logged by the cache.
func (m *Metrics) ObservePostgresError(kind, op string, _ error) {
	m.cachePGErrors.WithLabelValues(kind, op).Inc()
}

// ObserveServed implements [cache.Observer]: the age of one value served.
func (m *Metrics) ObserveServed(kind string, age time.Duration) {
	o, ok := m.cacheAgeByKind.Load(kind)
	if !ok {
		o, _ = m.cacheAgeByKind.LoadOrStore(kind, m.cacheAge.WithLabelValues(kind))
	}
	o.(prometheus.Observer).Observe(age.Seconds())
}

// ObserveRefresh implements [cache.Observer]: one background refresh, by
// outcome.
func (m *Metrics) ObserveRefresh(kind string, outcome cache.RefreshOutcome) {
	m.cacheRefresh.WithLabelValues(kind, outcome.String()).Inc()
}

// ObserveRefreshQueue implements [cache.Observer]: the refresh queue's
// depth.
func (m *Metrics) ObserveRefreshQueue(kind string, depth int) {
	m.cacheQueue.WithLabelValues(kind).Set(float64(depth))
}

// ObserveWriteThrough implements [writethrough.Observer]: one webhook
// event written into the cache, by event type (from the webhook package's
// fixed list) and result ("applied", "older", "invalidated").
func (m *Metrics) ObserveWriteThrough(eventType, result string) {
	m.writeThroughs.WithLabelValues(eventType, result).Inc()
}

// ObserveWachtRequest implements [wachtclient.Observer]: one attempt to
// call route (a template such as "GET /users/{user_id}/details"), with
// the status Wacht answered, or 0 when none came. An attempt the budget
// refused to send is no request: the budget's own metrics count it (see
// [Metrics.Budget]).
func (m *Metrics) ObserveWachtRequest(route string, status int, took time.Duration, err error) {
	if status == 0 && errors.Is(err, wachtclient.ErrRateLimited) {
		return
	}
	label := resultError
	if status > 0 {
		label = strconv.Itoa(status)
	}
	m.wachtRequests.WithLabelValues(route, label).Inc()
	m.wachtDuration.WithLabelValues(route).Observe(took.Seconds())
}

// ObserveJWKSRefresh implements [sessiontoken.Observer]: one fetch of the
// key set and whether it succeeded. Fetches are made one at a time.
func (m *Metrics) ObserveJWKSRefresh(ok bool) {
	if !ok {
		m.jwksRefreshes.WithLabelValues(resultError).Inc()
		m.jwksFailures.Inc()
		return
	}
	m.jwksRefreshes.WithLabelValues(resultOK).Inc()
	m.jwksFailures.Set(0)
	m.jwksLastSuccess.SetToCurrentTime()
}

// ObserveTokenCacheLookup implements [sessiontoken.Observer]: whether the
// verified-token cache answered a verification.
func (m *Metrics) ObserveTokenCacheLookup(hit bool) {
	// Called on every verification: the two series are looked up once,
	// in NewMetrics.
	if hit {
		m.tokenCacheHits.Inc()
	} else {
		m.tokenCacheMisses.Inc()
	}
}

// ObserveWebhook implements [webhook.Observer]: one webhook request, by
// event type and outcome, both of them from the webhook package's fixed
// lists.
func (m *Metrics) ObserveWebhook(eventType, outcome string) {
	m.webhooks.WithLabelValues(eventType, outcome).Inc()
}

// ObserveRevocation implements [rotation.Observer]: one attempt of the
// rotation worker to revoke a replaced key, by outcome ("revoked",
// "retry", "failed").
func (m *Metrics) ObserveRevocation(outcome string) {
	m.revocations.WithLabelValues(outcome).Inc()
}

// ObserveReadiness implements [health.Observer]: the server's gRPC health
// changed to SERVING (true) or NOT_SERVING.
func (m *Metrics) ObserveReadiness(serving bool) {
	to := readinessNotServing
	v := 0.0
	if serving {
		to, v = readinessServing, 1
	}
	m.ready.Set(v)
	m.readinessChanges.WithLabelValues(to).Inc()
}
