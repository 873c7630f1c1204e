package deploytest

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// secretKeys returns the keys of the Secret the Deployment reads through
// NAME_FILE variables.
func secretKeys(t *testing.T, m *manifests) (secretName string, keys []string) {
	t.Helper()
	d, c := deployment(t, m)
	secretVolumes := map[string]string{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = v.Secret.SecretName
		}
	}
	for _, vm := range c.VolumeMounts {
		name, ok := secretVolumes[vm.Name]
		if !ok {
			continue
		}
		secretName = name
		for _, e := range c.Env {
			if strings.HasSuffix(e.Name, "_FILE") && path.Dir(e.Value) == path.Clean(vm.MountPath) {
				keys = append(keys, path.Base(e.Value))
			}
		}
	}
	slices.Sort(keys)
	return secretName, keys
}

func TestSecretExample(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	vars := loadEnvVars(t)
	name, keys := secretKeys(t, m)
	if diff := cmp.Diff([]string{"DATABASE_URL", "WACHT_API_KEY", "WACHT_WEBHOOK_SECRET"}, keys); diff != "" {
		t.Errorf("secret keys the Deployment reads (-want +got):\n%s", diff)
	}
	s := object[*corev1.Secret](t, m, name)
	if f := m.fileOf(s); !isExample(f) {
		t.Errorf("secret/%s is in %s; keep it in a *.example.yaml, out of the kustomization", name, f)
	}
	if s.Type != corev1.SecretTypeOpaque || len(s.Data) != 0 {
		t.Errorf("secret/%s: want an Opaque Secret written as stringData", name)
	}
	var got []string
	for k, v := range s.StringData {
		got = append(got, k)
		if vars[k] != kindSecret {
			t.Errorf("secret/%s: %s is not a secret authsvc reads", name, k)
		}
		if !strings.Contains(v, "REPLACE") {
			t.Errorf("secret/%s: %s holds something other than a placeholder", name, k)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("secret/%s keys, against what the Deployment reads (-want +got):\n%s", name, diff)
	}
	// Without pool_max_conns, pgx sizes each replica's pool by the node's
	// CPU count, since no CPU limit is set.
	if !strings.Contains(s.StringData["DATABASE_URL"], "pool_max_conns=") {
		t.Errorf("secret/%s: DATABASE_URL should set pool_max_conns", name)
	}
	if cfg, err := pgxpool.ParseConfig(s.StringData["DATABASE_URL"]); err != nil {
		t.Errorf("secret/%s: DATABASE_URL is not a URL authsvc can open: %v", name, err)
	} else if peak, _, _ := peakReplicas(t, m); int(cfg.MaxConns+1)*peak > 100 {
		t.Errorf("secret/%s: %d connections per replica (and a listener) at %d replicas are more than a default Postgres allows",
			name, cfg.MaxConns, peak)
	}
	if v := s.StringData["WACHT_WEBHOOK_SECRET"]; !strings.HasPrefix(v, "whsec_") {
		t.Errorf("secret/%s: WACHT_WEBHOOK_SECRET placeholder %q lacks the whsec_ prefix authsvc requires", name, v)
	}
}

func TestMigrateJobExample(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, dc := deployment(t, m)
	job := object[*batchv1.Job](t, m, "authsvc-migrate")
	if f := m.fileOf(job); !isExample(f) {
		t.Errorf("job/%s is in %s; a Job's template cannot be changed by a later apply, so keep it an example", job.Name, f)
	}
	spec := &job.Spec.Template.Spec
	checkHardened(t, "job/"+job.Name, spec)
	checkEnvironment(t, m, "job/"+job.Name, spec)
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy = %q", spec.RestartPolicy)
	}
	c := container(t, spec, "migrate")
	if c.Image != dc.Image {
		t.Errorf("image = %q, want the Deployment's %q", c.Image, dc.Image)
	}
	if diff := cmp.Diff([]string{"migrate"}, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	env := effectiveEnv(t, m, c)
	if env["DATABASE_URL_FILE"] == "" {
		t.Error("DATABASE_URL_FILE is not set")
	}
	if len(env) != 1 {
		t.Errorf("environment %v: migrate reads only DATABASE_URL_FILE", env)
	}
	pdb := object[*policyv1.PodDisruptionBudget](t, m, "authsvc")
	for what, sel := range map[string]*metav1.LabelSelector{"deployment": d.Spec.Selector, "pdb": pdb.Spec.Selector} {
		if selects(t, sel, job.Spec.Template.Labels) {
			t.Errorf("the %s selector also selects the migration pods", what)
		}
	}
}
