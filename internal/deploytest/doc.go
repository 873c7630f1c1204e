// Package deploytest checks the Kubernetes manifests in deploy/kubernetes
// against the configuration authsvc reads and the properties a
// multi-replica deployment of it needs.
package deploytest
