package deploytest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// parseGoMemLimit parses a GOMEMLIMIT value such as 230MiB into bytes.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSuffix(s, u.suffix), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 230MiB", s)
	}
	return n * factor, nil
}

func TestParseGoMemLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"230MiB", 230 << 20, true},
		{"1GiB", 1 << 30, true},
		{"4096", 4096, true},
		{"512B", 512, true},
		{"230Mi", 0, false},
		{"MiB", 0, false},
		{"-1MiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseGoMemLimit(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseGoMemLimit(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDeploymentResources(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c := deployment(t, m)
	req, lim := c.Resources.Requests, c.Resources.Limits
	want := map[string]resource.Quantity{
		"requests.cpu":    resource.MustParse("100m"),
		"requests.memory": resource.MustParse("128Mi"),
		"limits.memory":   resource.MustParse("256Mi"),
	}
	got := map[string]resource.Quantity{}
	for name, q := range map[string]corev1.ResourceList{"requests": req, "limits": lim} {
		for r, v := range q {
			got[name+"."+string(r)] = v
		}
	}
	// No CPU limit: throttling would add latency to every check, and the
	// request alone drives the autoscaler.
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	env := effectiveEnv(t, m, c)
	raw, ok := env["GOMEMLIMIT"]
	if !ok {
		t.Fatal("GOMEMLIMIT is not set; the Go heap would grow to the memory limit and be killed there")
	}
	n, err := parseGoMemLimit(raw)
	if err != nil {
		t.Fatalf("GOMEMLIMIT: %v", err)
	}
	memLimit := lim[corev1.ResourceMemory]
	if n >= memLimit.Value() || n < memLimit.Value()*3/4 {
		t.Errorf("GOMEMLIMIT = %s (%d bytes), want between 75%% and 100%% of the memory limit %s", raw, n, memLimit.String())
	}
}
