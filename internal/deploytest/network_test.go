package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// webhookPath is where authsvc receives Wacht's webhooks.
const webhookPath = "/webhooks/wacht"

func TestServices(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	services := objects[*corev1.Service](m)
	var names []string
	for _, s := range services {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"authsvc", "authsvc-headless"}, names); diff != "" {
		t.Fatalf("services (-want +got):\n%s", diff)
	}
	jobLabels := map[string]string{}
	for _, j := range objects[*batchv1.Job](m) {
		jobLabels = j.Spec.Template.Labels
	}
	for _, s := range services {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("service/%s has no selector", s.Name)
		}
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("service/%s selects %s=%s, which the Deployment's pods do not have", s.Name, k, v)
			}
		}
		if len(jobLabels) > 0 && matchesAll(s.Spec.Selector, jobLabels) {
			t.Errorf("service/%s would also send traffic to migration Job pods", s.Name)
		}
		if len(s.Spec.Ports) != 1 {
			t.Errorf("service/%s has %d ports, want 1", s.Name, len(s.Spec.Ports))
			continue
		}
		p := s.Spec.Ports[0]
		if p.Name != "grpc" || p.Port != servicePort || p.Protocol != corev1.ProtocolTCP {
			t.Errorf("service/%s port = %s %d/%s, want grpc %d/TCP", s.Name, p.Name, p.Port, p.Protocol, servicePort)
		}
		if p.TargetPort.Type != intstr.String || resolvePort(c, p.TargetPort) != servicePort {
			t.Errorf("service/%s targetPort = %s, want the container's named port grpc", s.Name, p.TargetPort.String())
		}
		if p.AppProtocol == nil || *p.AppProtocol != "grpc" {
			t.Errorf("service/%s appProtocol = %v, want grpc so meshes speak HTTP/2", s.Name, p.AppProtocol)
		}
	}
	for _, s := range services {
		switch s.Name {
		case "authsvc":
			if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.ClusterIP != "" {
				t.Errorf("service/authsvc: type %q clusterIP %q, want a ClusterIP Service", s.Spec.Type, s.Spec.ClusterIP)
			}
		case "authsvc-headless":
			if s.Spec.ClusterIP != corev1.ClusterIPNone || s.Spec.PublishNotReadyAddresses {
				t.Errorf("service/authsvc-headless: want clusterIP None listing only ready replicas")
			}
		}
	}
}

// matchesAll reports whether every label of sel is in set.
func matchesAll(sel, set map[string]string) bool {
	for k, v := range sel {
		if set[k] != v {
			return false
		}
	}
	return true
}

// portKey is a protocol and port, such as TCP/443.
func portKey(p networkingv1.NetworkPolicyPort) string {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	port := "any"
	if p.Port != nil {
		port = p.Port.String()
	}
	return string(proto) + "/" + port
}

func TestNetworkPolicy(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d, c := deployment(t, m)
	np := object[*networkingv1.NetworkPolicy](t, m, "authsvc")
	if !selects(t, &np.Spec.PodSelector, d.Spec.Template.Labels) {
		t.Error("podSelector does not select the Deployment's pods")
	}
	for _, j := range objects[*batchv1.Job](m) {
		if !selects(t, &np.Spec.PodSelector, j.Spec.Template.Labels) {
			t.Errorf("podSelector does not select job/%s's pods, which need the same egress", j.Name)
		}
	}
	types := slices.Clone(np.Spec.PolicyTypes)
	slices.Sort(types)
	if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeEgress, networkingv1.PolicyTypeIngress}, types); diff != "" {
		t.Errorf("policyTypes (-want +got):\n%s", diff)
	}
	if len(np.Spec.Ingress) == 0 {
		t.Error("no ingress rule: nothing could call authsvc")
	}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			t.Errorf("ingress[%d] admits every source", i)
		}
		for _, peer := range r.From {
			if peer.IPBlock == nil && peer.NamespaceSelector == nil && peer.PodSelector == nil {
				t.Errorf("ingress[%d] has an empty peer", i)
			}
			if peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels) == 0 &&
				len(peer.NamespaceSelector.MatchExpressions) == 0 && (peer.PodSelector == nil || len(peer.PodSelector.MatchLabels) == 0) {
				t.Errorf("ingress[%d] admits every pod of every namespace", i)
			}
		}
		if len(r.Ports) == 0 {
			t.Errorf("ingress[%d] opens every port", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || resolvePort(c, *p.Port) != servicePort || portKey(p) != "TCP/"+p.Port.String() {
				t.Errorf("ingress[%d] opens %s, want only TCP %d", i, portKey(p), servicePort)
			}
		}
	}
	var egress []string
	for i, r := range np.Spec.Egress {
		if len(r.Ports) == 0 {
			t.Errorf("egress[%d] allows every port", i)
		}
		for _, p := range r.Ports {
			egress = append(egress, portKey(p))
		}
	}
	slices.Sort(egress)
	// DNS, Postgres, and HTTPS for Wacht's Backend API, Frontend API key
	// set and gateway.
	want := []string{"TCP/443", "TCP/53", "TCP/5432", "UDP/53"}
	if diff := cmp.Diff(want, egress); diff != "" {
		t.Errorf("egress ports (-want +got):\n%s", diff)
	}
}

func TestIngressExample(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	_, c := deployment(t, m)
	app, err := os.ReadFile(filepath.Join(appDir, "app.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(app), strconv.Quote(webhookPath)) {
		t.Fatalf("%s/app.go no longer serves %s", appDir, webhookPath)
	}
	ings := objects[*networkingv1.Ingress](m)
	if len(ings) == 0 {
		t.Fatal("no Ingress example for the webhook")
	}
	for _, ing := range ings {
		if !isExample(m.fileOf(ing)) {
			t.Errorf("ingress/%s is in %s; the host and class are the cluster's own, so keep it an example", ing.Name, m.fileOf(ing))
		}
		if ing.Spec.DefaultBackend != nil {
			t.Errorf("ingress/%s has a default backend; expose the webhook path only", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				t.Errorf("ingress/%s: a rule without paths", ing.Name)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if p.Path != webhookPath || p.PathType == nil || *p.PathType != networkingv1.PathTypeExact {
					t.Errorf("ingress/%s exposes %s; only %s (Exact) should be public", ing.Name, p.Path, webhookPath)
				}
				svc := p.Backend.Service
				if svc == nil {
					t.Errorf("ingress/%s: %s has no Service backend", ing.Name, p.Path)
					continue
				}
				s := object[*corev1.Service](t, m, svc.Name)
				port := svc.Port.Name
				if port == "" {
					port = strconv.Itoa(int(svc.Port.Number))
				}
				found := false
				for _, sp := range s.Spec.Ports {
					if (sp.Name == port || strconv.Itoa(int(sp.Port)) == port) && resolvePort(c, sp.TargetPort) == servicePort {
						found = true
					}
				}
				if !found {
					t.Errorf("ingress/%s: service/%s has no port %s reaching authsvc", ing.Name, svc.Name, port)
				}
			}
		}
	}
}
