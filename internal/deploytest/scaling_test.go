package deploytest

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// wachtBudgetPerMinute is Wacht's request budget for one deployment,
	// shared by every replica.
	wachtBudgetPerMinute = 1000
	// wachtReservePerMinute is left for other users of the same Backend
	// API key and for replicas still draining after a rollout.
	wachtReservePerMinute = wachtBudgetPerMinute / 10
)

func TestHorizontalPodAutoscaler(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	hpa := object[*autoscalingv2.HorizontalPodAutoscaler](t, m, "authsvc")
	want := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name}
	if diff := cmp.Diff(want, hpa.Spec.ScaleTargetRef); diff != "" {
		t.Errorf("scaleTargetRef (-want +got):\n%s", diff)
	}
	if hpa.Spec.MinReplicas == nil || d.Spec.Replicas == nil || *hpa.Spec.MinReplicas != *d.Spec.Replicas {
		t.Errorf("minReplicas = %s, want the Deployment's replicas %s", show(hpa.Spec.MinReplicas), show(d.Spec.Replicas))
	}
	if hpa.Spec.MinReplicas != nil && hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
		t.Errorf("maxReplicas = %d leaves no room to scale above %d", hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
	}
	cpu := false
	for _, mt := range hpa.Spec.Metrics {
		if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU &&
			mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType && mt.Resource.Target.AverageUtilization != nil {
			cpu = true
			if u := *mt.Resource.Target.AverageUtilization; u < 50 || u > 90 {
				t.Errorf("CPU target %d%%, want between 50%% and 90%%", u)
			}
		}
	}
	if !cpu {
		t.Error("no CPU utilization target")
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("CPU utilization is measured against the CPU request, which is not set")
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, _ := deployment(t, m)
	hpa := object[*autoscalingv2.HorizontalPodAutoscaler](t, m, "authsvc")
	pdb := object[*policyv1.PodDisruptionBudget](t, m, "authsvc")
	if diff := cmp.Diff(d.Spec.Selector, pdb.Spec.Selector); diff != "" {
		t.Errorf("selector differs from the Deployment's (-deployment +pdb):\n%s", diff)
	}
	if !selects(t, pdb.Spec.Selector, d.Spec.Template.Labels) {
		t.Error("selector does not select the Deployment's pods")
	}
	// At the smallest size, one replica may go and the rest must stay.
	low := int(*hpa.Spec.MinReplicas)
	var allowed int
	switch {
	case (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil):
		t.Fatal("set exactly one of minAvailable and maxUnavailable")
	case pdb.Spec.MaxUnavailable != nil:
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, low, false)
		if err != nil {
			t.Fatal(err)
		}
		allowed = n
	default:
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, low, true)
		if err != nil {
			t.Fatal(err)
		}
		allowed = low - n
	}
	if allowed < 1 || low-allowed < 2 {
		t.Errorf("at %d replicas the budget allows %d disruptions, want at least 1 while keeping 2", low, allowed)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Error("unhealthyPodEvictionPolicy should be AlwaysAllow: replicas that are not ready during an outage must not block drains")
	}
}

func TestWachtRequestBudget(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c := deployment(t, m)
	raw, ok := effectiveEnv(t, m, c)["AUTHSVC_WACHT_REQUESTS_PER_MINUTE"]
	if !ok {
		t.Fatal("AUTHSVC_WACHT_REQUESTS_PER_MINUTE is not set; its default is all of Wacht's budget, leaving nothing to other users of the key")
	}
	deployment, err := strconv.Atoi(raw)
	if err != nil || deployment < 1 {
		t.Fatalf("AUTHSVC_WACHT_REQUESTS_PER_MINUTE = %q", raw)
	}
	// The replicas share it through Postgres: it is the deployment's,
	// however many run.
	if limit := wachtBudgetPerMinute - wachtReservePerMinute; deployment > limit {
		t.Errorf("AUTHSVC_WACHT_REQUESTS_PER_MINUTE = %d, want at most %d of Wacht's %d", deployment, limit, wachtBudgetPerMinute)
	}
}

// peakReplicas returns the most replicas that can run at once: the
// autoscaler's maximum plus the rollout's surge.
func peakReplicas(t *testing.T, m *manifests) (peak, maxReplicas, surge int) {
	t.Helper()
	d, _ := deployment(t, m)
	hpa := object[*autoscalingv2.HorizontalPodAutoscaler](t, m, "authsvc")
	maxReplicas = int(hpa.Spec.MaxReplicas)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
		var err error
		surge, err = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, maxReplicas, true)
		if err != nil {
			t.Fatalf("maxSurge: %v", err)
		}
	}
	return maxReplicas + surge, maxReplicas, surge
}
