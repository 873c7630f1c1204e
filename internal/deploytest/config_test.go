package deploytest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/authsvc/authsvc/internal/callers"
)

// checkValue reports whether v is a value authsvc accepts for a variable
// read as k.
func checkValue(k varKind, v string) error {
	switch k {
	case kindDuration:
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 30s", v)
		}
	case kindBoolean:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
	case kindInteger:
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return fmt.Errorf("%q is not a whole number of at least 1", v)
		}
	case kindURL:
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", v)
		}
	case kindSecret:
		return errors.New("a secret belongs in the Secret, read through NAME_FILE")
	default:
		if strings.TrimSpace(v) == "" {
			return errors.New("empty")
		}
	}
	return nil
}

func TestCheckValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind varKind
		v    string
		ok   bool
	}{
		{kindDuration, "60s", true},
		{kindDuration, "60", false},
		{kindDuration, "-1s", false},
		{kindBoolean, "true", true},
		{kindBoolean, "yes", false},
		{kindInteger, "125", true},
		{kindInteger, "0", false},
		{kindInteger, "1.5", false},
		{kindURL, "https://api.wacht.dev", true},
		{kindURL, "api.wacht.dev", false},
		{kindSecret, "anything", false},
		{kindString, "0.0.0.0:8080", true},
		{kindString, " ", false},
	}
	for _, tt := range tests {
		if err := checkValue(tt.kind, tt.v); (err == nil) != tt.ok {
			t.Errorf("checkValue(%s, %q) = %v, want ok %v", tt.kind, tt.v, err, tt.ok)
		}
	}
}

func TestConfigMap(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	vars := loadEnvVars(t)
	cm := object[*corev1.ConfigMap](t, m, "authsvc")
	if len(cm.BinaryData) != 0 {
		t.Errorf("configmap/authsvc has binaryData; environment variables are text")
	}
	for name, v := range cm.Data {
		kind, ok := vars[name]
		if !ok {
			t.Errorf("configmap/authsvc: %s is not a variable authsvc reads", name)
			continue
		}
		if err := checkValue(kind, v); err != nil {
			t.Errorf("configmap/authsvc: %s: %v", name, err)
		}
		if looksSecret(v) {
			t.Errorf("configmap/authsvc: the value of %s looks like a secret", name)
		}
	}
	// What serve refuses to start without, apart from the secrets.
	if cm.Data["WACHT_PUBLISHABLE_KEY"] == "" && cm.Data["WACHT_FRONTEND_API_URL"] == "" {
		t.Error("configmap/authsvc: set WACHT_PUBLISHABLE_KEY (or WACHT_FRONTEND_API_URL)")
	}
	if cm.Data["AUTHSVC_CALLERS_FILE"] == "" {
		t.Error("configmap/authsvc: set AUTHSVC_CALLERS_FILE; without it serve is either refused or open to all")
	}
	if open, _ := strconv.ParseBool(cm.Data["AUTHSVC_INSECURE_OPEN"]); open {
		t.Error("configmap/authsvc: AUTHSVC_INSECURE_OPEN=true lets anyone who reaches the port call every RPC")
	}
	for _, name := range []string{"AUTHSVC_TLS_CERT", "AUTHSVC_TLS_KEY"} {
		if cm.Data[name] != "" {
			t.Errorf("configmap/authsvc: %s is set, but the kubelet's gRPC probes cannot speak TLS", name)
		}
	}
}

func TestListenAddress(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c := deployment(t, m)
	addr := effectiveEnv(t, m, c)["AUTHSVC_ADDR"]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("AUTHSVC_ADDR = %q: %v (the default, 127.0.0.1:8080, is unreachable from outside the pod)", addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("AUTHSVC_ADDR host = %q, want every interface (0.0.0.0) so probes and the Service reach it", host)
	}
	if port != strconv.Itoa(servicePort) {
		t.Errorf("AUTHSVC_ADDR port = %s, want the container port %d", port, servicePort)
	}
}

func TestCallersFile(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	p := effectiveEnv(t, m, c)["AUTHSVC_CALLERS_FILE"]
	dir, file := path.Split(p)
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == path.Clean(dir) && vm.SubPath == "" {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("AUTHSVC_CALLERS_FILE = %q is in no mounted volume (a whole-directory mount, so edits reach the pod)", p)
	}
	var cmName string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil && len(v.ConfigMap.Items) == 0 {
			cmName = v.ConfigMap.Name
		}
	}
	if cmName == "" {
		t.Fatalf("volume %s is not a whole ConfigMap", mount.Name)
	}
	data, ok := object[*corev1.ConfigMap](t, m, cmName).Data[file]
	if !ok {
		t.Fatalf("configmap/%s has no key %q", cmName, file)
	}
	reg, err := callers.ParseFile([]byte(data))
	if err != nil {
		t.Fatalf("configmap/%s %s: %v", cmName, file, err)
	}
	if reg.Len() == 0 {
		t.Errorf("configmap/%s %s lists no callers", cmName, file)
	}
}
