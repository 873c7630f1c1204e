package deploytest

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeWindow is how long a probe may fail before the kubelet acts.
func probeWindow(p *corev1.Probe) time.Duration {
	period, failures := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10
	}
	if failures == 0 {
		failures = 3
	}
	return time.Duration(period*failures) * time.Second
}

func TestDeploymentProbes(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c := deployment(t, m)

	// Ready means gRPC health for the server as a whole ("") is SERVING:
	// only while every dependency is usable, and not once SIGTERM arrives.
	r := c.ReadinessProbe
	switch {
	case r == nil || r.GRPC == nil:
		t.Errorf("readinessProbe = %+v, want a grpc probe", r)
	case r.GRPC.Port != servicePort || resolvePort(c, intstr.FromInt32(r.GRPC.Port)) != servicePort:
		t.Errorf("readinessProbe port = %d, want the container's port %d", r.GRPC.Port, servicePort)
	case r.GRPC.Service == nil || *r.GRPC.Service != "":
		t.Errorf("readinessProbe service = %v, want \"\", the whole server", r.GRPC.Service)
	}

	// Liveness and startup must not depend on Postgres or Wacht: gRPC
	// health does, so an outage would restart every replica.
	for _, p := range []struct {
		name      string
		probe     *corev1.Probe
		minWindow time.Duration
	}{
		// A minute of silence before a restart.
		{"livenessProbe", c.LivenessProbe, 30 * time.Second},
		// Opening Postgres may take 30s, then migrations run.
		{"startupProbe", c.StartupProbe, 60 * time.Second},
	} {
		switch {
		case p.probe == nil:
			t.Errorf("%s missing", p.name)
			continue
		case p.probe.GRPC != nil:
			t.Errorf("%s is a gRPC health probe, which fails while a dependency is down", p.name)
		case p.probe.Exec != nil:
			t.Errorf("%s runs a command; the image has nothing to run", p.name)
		case p.probe.TCPSocket != nil:
			if got := resolvePort(c, p.probe.TCPSocket.Port); got != servicePort {
				t.Errorf("%s checks port %s, want %d", p.name, p.probe.TCPSocket.Port.String(), servicePort)
			}
		case p.probe.HTTPGet != nil:
			if got := resolvePort(c, p.probe.HTTPGet.Port); got != servicePort {
				t.Errorf("%s checks port %s, want %d", p.name, p.probe.HTTPGet.Port.String(), servicePort)
			}
		default:
			t.Errorf("%s has no handler", p.name)
		}
		if w := probeWindow(p.probe); w < p.minWindow {
			t.Errorf("%s gives up after %v, want at least %v", p.name, w, p.minWindow)
		}
	}
}
