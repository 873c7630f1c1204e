package deploytest

import (
	"path"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// nonrootID is the uid and gid of distroless's "nonroot" user, which the
// image runs as.
const nonrootID = 65532

// container returns the container named name in spec.
func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container named %q", name)
	return nil
}

// resolvePort returns the container port p names, or 0 when it names none.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		for _, cp := range c.Ports {
			if cp.ContainerPort == p.IntVal {
				return p.IntVal
			}
		}
		return 0
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// selects reports whether sel selects pods labelled podLabels.
func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// effectiveEnv returns the environment a container starts with: its
// envFrom ConfigMaps, overridden by its literal env values.
func effectiveEnv(t *testing.T, m *manifests, c *corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		cm := object[*corev1.ConfigMap](t, m, from.ConfigMapRef.Name)
		for k, v := range cm.Data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// checkHardened checks what the "restricted" Pod Security Standard and
// authsvc's image ask of a pod: a non-root user, no privilege escalation,
// no capabilities, a read-only root, the default seccomp profile, and no
// Kubernetes API token.
func checkHardened(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	check := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf(what+": "+format, args...)
		}
	}
	check(spec.ServiceAccountName == "authsvc", "serviceAccountName = %q, want the dedicated account authsvc", spec.ServiceAccountName)
	check(spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken, "automountServiceAccountToken must be false")
	check(spec.EnableServiceLinks != nil && !*spec.EnableServiceLinks, "enableServiceLinks must be false, or Service links add AUTHSVC_* variables")
	check(!spec.HostNetwork && !spec.HostPID && !spec.HostIPC, "must not share the host's namespaces")

	psc := spec.SecurityContext
	if psc == nil {
		t.Fatalf("%s: no pod securityContext", what)
	}
	check(psc.RunAsNonRoot != nil && *psc.RunAsNonRoot, "pod runAsNonRoot must be true")
	check(psc.RunAsUser != nil && *psc.RunAsUser == nonrootID, "pod runAsUser must be %d", nonrootID)
	check(psc.RunAsGroup != nil && *psc.RunAsGroup == nonrootID, "pod runAsGroup must be %d", nonrootID)
	check(psc.FSGroup != nil && *psc.FSGroup == nonrootID, "pod fsGroup must be %d, so mounted secrets are readable", nonrootID)
	check(psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "pod seccompProfile must be RuntimeDefault")

	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: container %s has no securityContext", what, c.Name)
			continue
		}
		check(sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "container %s: allowPrivilegeEscalation must be false", c.Name)
		check(sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "container %s: readOnlyRootFilesystem must be true", c.Name)
		check(sc.Privileged == nil || !*sc.Privileged, "container %s: must not be privileged", c.Name)
		check(sc.RunAsUser == nil || *sc.RunAsUser != 0, "container %s: must not run as root", c.Name)
		check(sc.RunAsNonRoot == nil || *sc.RunAsNonRoot, "container %s: runAsNonRoot must not be false", c.Name)
		caps := sc.Capabilities
		check(caps != nil && slices.Equal(caps.Drop, []corev1.Capability{"ALL"}), "container %s: capabilities must drop ALL", c.Name)
		check(caps == nil || len(caps.Add) == 0, "container %s: must add no capabilities", c.Name)
		for _, vm := range c.VolumeMounts {
			check(vm.ReadOnly, "container %s: volume %s must be mounted read-only", c.Name, vm.Name)
		}
	}
}

// checkEnvironment checks that every variable a pod's containers get is
// one authsvc (or the Go runtime) reads, that no secret is in the
// environment, and that each NAME_FILE names the file of key NAME in a
// read-only mounted Secret.
func checkEnvironment(t *testing.T, m *manifests, what string, spec *corev1.PodSpec) {
	t.Helper()
	vars := loadEnvVars(t)
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		for _, from := range c.EnvFrom {
			switch {
			case from.SecretRef != nil:
				t.Errorf("%s: container %s: envFrom Secret %s puts secrets in the environment; mount it and use NAME_FILE", what, c.Name, from.SecretRef.Name)
			case from.ConfigMapRef != nil:
				if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					t.Errorf("%s: container %s: ConfigMap %s must not be optional", what, c.Name, from.ConfigMapRef.Name)
				}
				object[*corev1.ConfigMap](t, m, from.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			kind, read := vars[e.Name]
			switch {
			case !read && !isRuntimeVar(e.Name):
				t.Errorf("%s: container %s: %s is not a variable authsvc reads", what, c.Name, e.Name)
			case kind == kindSecret:
				t.Errorf("%s: container %s: %s is a secret: set %s_FILE to a mounted Secret file instead", what, c.Name, e.Name, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("%s: container %s: %s comes from a Secret into the environment; mount it and use NAME_FILE", what, c.Name, e.Name)
			}
			if looksSecret(e.Value) {
				t.Errorf("%s: container %s: the value of %s looks like a secret", what, c.Name, e.Name)
			}
			if kind == kindSecretFile {
				checkSecretFile(t, what, c, volumes, e)
			}
		}
	}
}

// checkSecretFile checks that NAME_FILE points at the file of key NAME in
// a Secret volume that c mounts read-only.
func checkSecretFile(t *testing.T, what string, c *corev1.Container, volumes map[string]corev1.Volume, e corev1.EnvVar) {
	t.Helper()
	dir, file := path.Split(e.Value)
	dir = path.Clean(dir)
	wantKey := e.Name[:len(e.Name)-len("_FILE")]
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) != dir || vm.SubPath != "" {
			continue
		}
		v, ok := volumes[vm.Name]
		if !ok || v.Secret == nil {
			t.Errorf("%s: %s = %s is not in a Secret volume", what, e.Name, e.Value)
			return
		}
		if !vm.ReadOnly {
			t.Errorf("%s: Secret volume %s must be mounted read-only", what, vm.Name)
		}
		key := file
		if len(v.Secret.Items) > 0 {
			key = ""
			for _, it := range v.Secret.Items {
				if it.Path == file {
					key = it.Key
				}
			}
		}
		if key != wantKey {
			t.Errorf("%s: %s = %s holds Secret key %q, want %q", what, e.Name, e.Value, key, wantKey)
		}
		if mode := v.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 || *mode&0o040 == 0 {
			t.Errorf("%s: Secret volume %s: defaultMode must let the group (fsGroup) read and others not", what, vm.Name)
		}
		return
	}
	t.Errorf("%s: %s = %s is not in a volume that container %s mounts", what, e.Name, e.Value, c.Name)
}
