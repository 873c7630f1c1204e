package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authsvc/authsvc/internal/budget"
)

// budgetWaitBuckets, in seconds: most calls get a token at once, a
// foreground call waits at most 100 ms by default, a write up to 10 s.
var budgetWaitBuckets = []float64{.0001, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}

// BudgetMetrics exports the events of the Wacht request budget. It
// implements [budget.Observer].
type BudgetMetrics struct {
	spent       *prometheus.CounterVec
	waited      *prometheus.HistogramVec
	refused     *prometheus.CounterVec
	leases      *prometheus.CounterVec
	leaseTokens prometheus.Counter
	limit       prometheus.Gauge
}

var _ budget.Observer = (*BudgetMetrics)(nil)

// newBudgetMetrics creates the budget's metrics; [NewMetrics] registers
// them with the rest.
func newBudgetMetrics() *BudgetMetrics {
	m := &BudgetMetrics{
		spent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_wacht_budget_tokens_spent_total",
			Help: "Wacht Backend API requests admitted by the deployment's budget, by class (write, foreground, revocation, refresh).",
		}, []string{"class"}),
		waited: newHistogram("authsvc_wacht_budget_wait_seconds",
			"Time a Wacht request waited for the budget, by class and result (admitted, refused).",
			budgetWaitBuckets, "class", "result"),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_wacht_budget_refused_total",
			Help: "Wacht requests not sent because the budget could not admit them, by class and reason (exhausted, deadline, backoff, canceled).",
		}, []string{"class", "reason"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authsvc_wacht_budget_leases_total",
			Help: "Requests for a lease of budget tokens, by result (full, partial, none, error).",
		}, []string{"result"}),
		leaseTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authsvc_wacht_budget_leased_tokens_total",
			Help: "Budget tokens granted to this replica in leases.",
		}),
		limit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authsvc_wacht_budget_requests_per_minute",
			Help: "The deployment's Wacht Backend API budget, in requests a minute (AUTHSVC_WACHT_REQUESTS_PER_MINUTE), as this replica was configured.",
		}),
	}
	for _, c := range budget.Classes {
		m.spent.WithLabelValues(c.String())
	}
	return m
}

// collectors returns the budget's metrics, to register.
func (m *BudgetMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.spent, m.waited, m.refused, m.leases, m.leaseTokens, m.limit}
}

// SetLimit sets authsvc_wacht_budget_requests_per_minute, the budget the
// spending is measured against.
func (m *BudgetMetrics) SetLimit(perMinute int) { m.limit.Set(float64(perMinute)) }

// ObserveBudgetAdmitted implements [budget.Observer].
func (m *BudgetMetrics) ObserveBudgetAdmitted(class budget.Class, waited time.Duration) {
	m.spent.WithLabelValues(class.String()).Inc()
	m.waited.WithLabelValues(class.String(), "admitted").Observe(waited.Seconds())
}

// ObserveBudgetRefused implements [budget.Observer].
func (m *BudgetMetrics) ObserveBudgetRefused(class budget.Class, reason string, waited time.Duration) {
	m.refused.WithLabelValues(class.String(), reason).Inc()
	m.waited.WithLabelValues(class.String(), "refused").Observe(waited.Seconds())
}

// ObserveBudgetLease implements [budget.Observer].
func (m *BudgetMetrics) ObserveBudgetLease(requested, granted int, err error) {
	result := "full"
	switch {
	case err != nil:
		result = "error"
	case granted == 0:
		result = "none"
	case granted < requested:
		result = "partial"
	}
	m.leases.WithLabelValues(result).Inc()
	m.leaseTokens.Add(float64(granted))
}
