// Package deploytest checks what is shipped to run authsvc: the Kubernetes
// manifests in deploy/kubernetes against the configuration authsvc reads
// and the properties a multi-replica deployment of it needs, and the
// dashboard and alerts in deploy/grafana and deploy/prometheus against the
// metrics a running authsvc exports.
package deploytest
