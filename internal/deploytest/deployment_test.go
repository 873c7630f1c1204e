package deploytest

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// servicePort is the port authsvc serves everything on.
const servicePort = 8080

// wantReplicas is how many replicas run when nothing scales them up.
const wantReplicas = 3

func deployment(t *testing.T, m *manifests) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := object[*appsv1.Deployment](t, m, "authsvc")
	return d, container(t, &d.Spec.Template.Spec, "authsvc")
}

func TestDeploymentShape(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
		t.Errorf("replicas = %s, want %d", show(d.Spec.Replicas), wantReplicas)
	}
	if !selects(t, d.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("selector %v does not select the pod template's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Errorf("%d containers, want 1", n)
	}
	if c.Image != "authsvc:latest" {
		t.Errorf("image = %q, want the placeholder authsvc:latest (set the real one in kustomization.yaml)", c.Image)
	}
	if len(c.Command) != 0 {
		t.Errorf("command = %q, want none: the image's entrypoint is authsvc", c.Command)
	}
	if diff := cmp.Diff([]string{"serve"}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	want := []corev1.ContainerPort{{Name: "grpc", ContainerPort: servicePort, Protocol: corev1.ProtocolTCP}}
	if diff := cmp.Diff(want, c.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge == nil {
		t.Errorf("strategy = %+v, want a rolling update with maxUnavailable 0 and an explicit maxSurge", d.Spec.Strategy)
	}
}

// show formats an optional number.
func show(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}

func TestDeploymentShutdown(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatalf("preStop = %+v, want the kubelet's sleep action (the image has no shell)", c.Lifecycle)
	}
	if c.Lifecycle.PreStop.Exec != nil {
		t.Errorf("preStop runs a command; the distroless image has no shell or sleep")
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if sleep < time.Second {
		t.Errorf("preStop sleeps %v; endpoints need a few seconds to drop the pod", sleep)
	}
	env := effectiveEnv(t, m, c)
	raw, ok := env["AUTHSVC_SHUTDOWN_TIMEOUT"]
	if !ok {
		t.Fatal("AUTHSVC_SHUTDOWN_TIMEOUT is not set; the grace period is sized from it")
	}
	drain, err := time.ParseDuration(raw)
	if err != nil {
		t.Fatalf("AUTHSVC_SHUTDOWN_TIMEOUT: %v", err)
	}
	g := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if g == nil {
		t.Fatal("terminationGracePeriodSeconds is not set (the default 30s is not derived from the drain time)")
	}
	grace := time.Duration(*g) * time.Second
	if margin := 5 * time.Second; grace < sleep+drain+margin {
		t.Errorf("terminationGracePeriodSeconds = %v, want at least preStop %v + AUTHSVC_SHUTDOWN_TIMEOUT %v + %v",
			grace, sleep, drain, margin)
	}
}

func TestDeploymentSecurity(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, _ := deployment(t, m)
	checkHardened(t, "deployment/authsvc", &d.Spec.Template.Spec)
	sa := object[*corev1.ServiceAccount](t, m, d.Spec.Template.Spec.ServiceAccountName)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("serviceaccount/%s: automountServiceAccountToken must be false", sa.Name)
	}
}

func TestDeploymentEnvironment(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	checkEnvironment(t, m, "deployment/authsvc", &d.Spec.Template.Spec)
	// serve needs all three secrets, each from a file.
	env := effectiveEnv(t, m, c)
	for _, name := range []string{"WACHT_API_KEY_FILE", "WACHT_WEBHOOK_SECRET_FILE", "DATABASE_URL_FILE"} {
		if env[name] == "" {
			t.Errorf("%s is not set", name)
		}
	}
}

func TestDeploymentSpread(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, _ := deployment(t, m)
	spec := &d.Spec.Template.Spec
	acrossNodes := false
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.TopologyKey == corev1.LabelHostname && tsc.MaxSkew == 1 &&
			tsc.WhenUnsatisfiable == corev1.DoNotSchedule && selects(t, tsc.LabelSelector, d.Spec.Template.Labels) {
			acrossNodes = true
		}
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if term.TopologyKey == corev1.LabelHostname && selects(t, term.LabelSelector, d.Spec.Template.Labels) {
				acrossNodes = true
			}
		}
	}
	if !acrossNodes {
		t.Error("nothing spreads the replicas across nodes: want a hostname topology spread constraint (maxSkew 1, DoNotSchedule) or anti-affinity")
	}
}
