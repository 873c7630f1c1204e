package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the manifests, relative to this package's directory.
const manifestDir = "../../deploy/kubernetes"

// kustomizationFile is the kustomize entry point in manifestDir.
const kustomizationFile = "kustomization.yaml"

// document is one object from one YAML document of a manifest file.
type document struct {
	file string
	obj  metav1.Object
}

// manifests is everything in manifestDir, decoded.
type manifests struct {
	// files are the YAML files other than the kustomization, sorted.
	files         []string
	docs          []document
	kustomization *kustomization
}

// kustomization is the part of a Kustomization these manifests use.
type kustomization struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Namespace  string           `json:"namespace"`
	Resources  []string         `json:"resources"`
	Images     []kustomizeImage `json:"images"`
}

// kustomizeImage is one entry of a Kustomization's images.
type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName"`
	NewTag  string `json:"newTag"`
	Digest  string `json:"digest"`
}

// isExample reports whether file is an example kept out of the
// kustomization.
func isExample(file string) bool { return strings.HasSuffix(file, ".example.yaml") }

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m, err := readManifests(os.DirFS(manifestDir))
	if err != nil {
		t.Fatalf("read %s: %v", manifestDir, err)
	}
	return m
}

// readManifests decodes every YAML document of every .yaml file in fsys
// into its Kubernetes API type, refusing unknown kinds, unknown or
// duplicate fields, and two objects of one kind with one name.
func readManifests(fsys fs.FS) (*manifests, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("list manifests: %w", err)
	}
	m := &manifests{}
	seen := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if ext := path.Ext(name); ext == ".yml" || ext == ".json" {
			return nil, fmt.Errorf("%s: name manifests *.yaml", name)
		}
		if path.Ext(name) != ".yaml" {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if name == kustomizationFile {
			var k kustomization
			if err := yaml.UnmarshalStrict(b, &k); err != nil {
				return nil, fmt.Errorf("decode %s: %w", name, err)
			}
			m.kustomization = &k
			continue
		}
		m.files = append(m.files, name)
		docs, err := splitDocuments(b)
		if err != nil {
			return nil, fmt.Errorf("split %s: %w", name, err)
		}
		if len(docs) == 0 {
			return nil, fmt.Errorf("%s: no objects", name)
		}
		for i, raw := range docs {
			obj, kind, err := decodeObject(raw)
			if err != nil {
				return nil, fmt.Errorf("decode %s document %d: %w", name, i+1, err)
			}
			if obj.GetName() == "" {
				return nil, fmt.Errorf("%s document %d: %s without metadata.name", name, i+1, kind)
			}
			id := kind + "/" + obj.GetName()
			if other, dup := seen[id]; dup {
				return nil, fmt.Errorf("%s: %s is also defined in %s", name, id, other)
			}
			seen[id] = name
			m.docs = append(m.docs, document{file: name, obj: obj})
		}
	}
	if m.kustomization == nil {
		return nil, fmt.Errorf("no %s", kustomizationFile)
	}
	slices.Sort(m.files)
	return m, nil
}

// splitDocuments returns the non-empty YAML documents of a multi-document
// stream.
func splitDocuments(b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := string(bytes.TrimSpace(j)); s == "null" || s == "" {
			continue
		}
		docs = append(docs, doc)
	}
}

// decodeObject decodes one document strictly into the API type its
// apiVersion and kind name, returning the object and "apiVersion, Kind".
func decodeObject(raw []byte) (metav1.Object, string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return nil, "", err
	}
	kind := tm.APIVersion + ", " + tm.Kind
	obj := newObject(kind)
	if obj == nil {
		return nil, kind, fmt.Errorf("unexpected object kind %q", kind)
	}
	if err := yaml.UnmarshalStrict(raw, obj); err != nil {
		return nil, kind, err
	}
	return obj, kind, nil
}

// newObject returns an empty object of the API type named by
// "apiVersion, Kind", or nil for a kind these manifests have no use for.
func newObject(kind string) metav1.Object {
	switch kind {
	case "v1, Namespace":
		return &corev1.Namespace{}
	case "v1, ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1, ConfigMap":
		return &corev1.ConfigMap{}
	case "v1, Secret":
		return &corev1.Secret{}
	case "v1, Service":
		return &corev1.Service{}
	case "apps/v1, Deployment":
		return &appsv1.Deployment{}
	case "batch/v1, Job":
		return &batchv1.Job{}
	case "policy/v1, PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2, HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "networking.k8s.io/v1, NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "networking.k8s.io/v1, Ingress":
		return &networkingv1.Ingress{}
	}
	return nil
}

// object returns the object of type T named name, failing the test when
// there is none.
func object[T metav1.Object](t *testing.T, m *manifests, name string) T {
	t.Helper()
	for _, d := range m.docs {
		if o, ok := d.obj.(T); ok && d.obj.GetName() == name {
			return o
		}
	}
	var zero T
	t.Fatalf("no %T named %q in %s", zero, name, manifestDir)
	return zero
}

// objects returns every object of type T.
func objects[T metav1.Object](m *manifests) []T {
	var out []T
	for _, d := range m.docs {
		if o, ok := d.obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}

// fileOf returns the file that defines obj.
func (m *manifests) fileOf(obj metav1.Object) string {
	for _, d := range m.docs {
		if d.obj == obj {
			return d.file
		}
	}
	return ""
}
