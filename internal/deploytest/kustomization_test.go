package deploytest

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// namespace is where authsvc runs.
const namespace = "auth"

func TestKustomization(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	k := m.kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s, %s", k.APIVersion, k.Kind)
	}
	if k.Namespace != namespace {
		t.Errorf("namespace = %q, want %q", k.Namespace, namespace)
	}
	// Every manifest but the examples (the Secret above all), once.
	var want []string
	for _, f := range m.files {
		if !isExample(f) {
			want = append(want, f)
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	for _, f := range m.files {
		if strings.HasPrefix(f, "secret") && !isExample(f) {
			t.Errorf("%s: a Secret manifest must be an example, never applied from the repository", f)
		}
	}

	_, c := deployment(t, m)
	repo, _, _ := strings.Cut(c.Image, ":")
	found := false
	for _, img := range k.Images {
		if img.Name == repo {
			found = true
		}
	}
	if !found {
		t.Errorf("images has no entry named %q, the Deployment's image, to set the real one with", repo)
	}
}

func TestNamespaces(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	ns := object[*corev1.Namespace](t, m, namespace)
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace/%s enforces Pod Security %q, want restricted", namespace, got)
	}
	// Explicit namespaces, so that kubectl apply -f works without kustomize.
	for _, d := range m.docs {
		if _, isNS := d.obj.(*corev1.Namespace); isNS {
			continue
		}
		if d.obj.GetNamespace() != namespace {
			t.Errorf("%s: %s has namespace %q, want %q", d.file, d.obj.GetName(), d.obj.GetNamespace(), namespace)
		}
		if d.obj.GetLabels()["app.kubernetes.io/name"] != "authsvc" {
			t.Errorf("%s: %s lacks the label app.kubernetes.io/name=authsvc", d.file, d.obj.GetName())
		}
	}
}
