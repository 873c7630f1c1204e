package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authsvc/authsvc/internal/retention"
)

// RetentionMetrics count the rows the retention job deleted.
type RetentionMetrics struct {
	deleted *prometheus.CounterVec
}

var _ retention.Observer = (*RetentionMetrics)(nil)

// NewRetentionMetrics creates the retention job's metrics and registers
// them with reg. It panics if reg already holds them.
func NewRetentionMetrics(reg prometheus.Registerer) *RetentionMetrics {
	m := &RetentionMetrics{deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authsvc_retention_deleted_rows_total",
		Help: "Rows the retention job deleted as past their use, by table.",
	}, []string{"table"})}
	reg.MustRegister(m.deleted)
	return m
}

// ObserveDeleted implements [retention.Observer]: rows of table one run
// deleted.
func (m *RetentionMetrics) ObserveDeleted(table string, n int64) {
	m.deleted.WithLabelValues(table).Add(float64(n))
}
