package telemetry

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authsvc/authsvc/internal/budget"
)

func TestBudgetMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg).Budget()
	var _ budget.Observer = m
	m.ObserveBudgetAdmitted(budget.Refresh, 3*time.Millisecond)
	m.ObserveBudgetAdmitted(budget.Refresh, 0)
	m.ObserveBudgetRefused(budget.Foreground, budget.ReasonExhausted, 100*time.Millisecond)
	m.ObserveBudgetLease(10, 4, nil)
	m.ObserveBudgetLease(10, 0, errors.New("postgres down"))
	m.SetLimit(875)
	want := `
# HELP authsvc_wacht_budget_leases_total Requests for a lease of budget tokens, by result (full, partial, none, error).
# TYPE authsvc_wacht_budget_leases_total counter
authsvc_wacht_budget_leases_total{result="error"} 1
authsvc_wacht_budget_leases_total{result="partial"} 1
# HELP authsvc_wacht_budget_refused_total Wacht requests not sent because the budget could not admit them, by class and reason (exhausted, deadline, backoff, canceled).
# TYPE authsvc_wacht_budget_refused_total counter
authsvc_wacht_budget_refused_total{class="foreground",reason="exhausted"} 1
# HELP authsvc_wacht_budget_tokens_spent_total Wacht Backend API requests admitted by the deployment's budget, by class (write, foreground, revocation, refresh).
# TYPE authsvc_wacht_budget_tokens_spent_total counter
authsvc_wacht_budget_tokens_spent_total{class="foreground"} 0
authsvc_wacht_budget_tokens_spent_total{class="refresh"} 2
authsvc_wacht_budget_tokens_spent_total{class="revocation"} 0
authsvc_wacht_budget_tokens_spent_total{class="write"} 0
# HELP authsvc_wacht_budget_leased_tokens_total Budget tokens granted to this replica in leases.
# TYPE authsvc_wacht_budget_leased_tokens_total counter
authsvc_wacht_budget_leased_tokens_total 4
# HELP authsvc_wacht_budget_requests_per_minute The deployment's Wacht Backend API budget, in requests a minute (AUTHSVC_WACHT_REQUESTS_PER_MINUTE), as this replica was configured.
# TYPE authsvc_wacht_budget_requests_per_minute gauge
authsvc_wacht_budget_requests_per_minute 875
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"authsvc_wacht_budget_leases_total", "authsvc_wacht_budget_refused_total",
		"authsvc_wacht_budget_tokens_spent_total", "authsvc_wacht_budget_leased_tokens_total",
		"authsvc_wacht_budget_requests_per_minute"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.waited); n != 2 {
		t.Errorf("%d wait series, want 2 (refresh admitted, foreground refused)", n)
	}
}
