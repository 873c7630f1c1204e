package telemetry

import "github.com/prometheus/client_golang/prometheus"

// dependencyUp is authsvc_dependency_up, read from the health probes at
// each scrape.
var dependencyUp = prometheus.NewDesc("authsvc_dependency_up",
	"1 while the latest health probe of a dependency passed, else 0, by dependency (keyset, postgres, invalidation). Only keyset decides readiness.",
	[]string{"dependency"}, nil)

// dependencyCollector reports the health probes' latest results.
type dependencyCollector struct{ up func() map[string]bool }

// RegisterDependencies registers authsvc_dependency_up with reg: one
// series per dependency that up reports, 1 while its latest probe passed.
func RegisterDependencies(reg prometheus.Registerer, up func() map[string]bool) error {
	return reg.Register(dependencyCollector{up})
}

func (d dependencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dependencyUp }

func (d dependencyCollector) Collect(ch chan<- prometheus.Metric) {
	for name, up := range d.up() {
		v := 0.0
		if up {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(dependencyUp, prometheus.GaugeValue, v, name)
	}
}
