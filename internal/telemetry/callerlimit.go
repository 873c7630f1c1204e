package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authsvc/authsvc/internal/callerlimit"
)

// CallerLimitMetrics count the Wacht calls each caller's requests asked
// for, by caller name. Names come from the callers file (open mode's
// caller is "anonymous"), so the label is bounded.
type CallerLimitMetrics struct {
	loads    *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
}

var _ callerlimit.Observer = (*CallerLimitMetrics)(nil)

// NewCallerLimitMetrics creates the per-caller metrics and registers them
// with reg. It panics if reg already holds them.
func NewCallerLimitMetrics(reg prometheus.Registerer) *CallerLimitMetrics {
	m := &CallerLimitMetrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_caller_wacht_loads_total",
			Help: "Cache misses that asked for a Wacht call, by caller and outcome (admitted; refused_rate: over the caller's calls per minute; refused_concurrency: its concurrent loads stayed busy). Background refreshes are not counted.",
		}, []string{"caller", "outcome"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authsvc_caller_wacht_loads_in_flight",
			Help: "Wacht calls running for each caller's requests.",
		}, []string{"caller"}),
	}
	reg.MustRegister(m.loads, m.inFlight)
	return m
}

// ObserveCallerLoad implements [callerlimit.Observer].
func (m *CallerLimitMetrics) ObserveCallerLoad(caller string, outcome callerlimit.Outcome) {
	m.loads.WithLabelValues(caller, string(outcome)).Inc()
}

// ObserveCallerLoadsInFlight implements [callerlimit.Observer].
func (m *CallerLimitMetrics) ObserveCallerLoadsInFlight(caller string, delta int) {
	m.inFlight.WithLabelValues(caller).Add(float64(delta))
}
