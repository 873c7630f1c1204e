package deploytest

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const minimalKustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n"

func TestReadManifestsRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name: "unknown field",
			files: map[string]string{
				"a.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 3\n  replica: 4\n",
			},
			want: `unknown field "replica"`,
		},
		{
			name: "misplaced field",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n  - port: 8080\n    containerPort: 8080\n",
			},
			want: "unknown field",
		},
		{
			name: "duplicate field",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: b}\ndata: {C: d}\n",
			},
			want: `key "data" already set`,
		},
		{
			name: "unknown kind",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
			},
			want: `unexpected object kind "v1, Pod"`,
		},
		{
			name: "old api version",
			files: map[string]string{
				"a.yaml": "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n",
			},
			want: "unexpected object kind",
		},
		{
			name: "bad quantity",
			files: map[string]string{
				"a.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        resources: {limits: {memory: lots}}\n",
			},
			want: "quantities must match",
		},
		{
			name: "same object twice",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
				"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
			},
			want: "also defined in a.yaml",
		},
		{
			name: "no name",
			files: map[string]string{
				"a.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {A: b}\n",
			},
			want: "without metadata.name",
		},
		{
			name:  "only comments",
			files: map[string]string{"a.yaml": "# nothing here\n---\n# nor here\n"},
			want:  "no objects",
		},
		{
			name:  "yml extension",
			files: map[string]string{"a.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
			want:  "name manifests *.yaml",
		},
		{
			name:  "unknown kustomization field",
			files: map[string]string{kustomizationFile: minimalKustomization + "commonLabels: {a: b}\n"},
			want:  `unknown field "commonLabels"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := fstest.MapFS{}
			if _, ok := tt.files[kustomizationFile]; !ok {
				fsys[kustomizationFile] = &fstest.MapFile{Data: []byte(minimalKustomization)}
			}
			for name, body := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(body)}
			}
			_, err := readManifests(fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("readManifests() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestReadManifestsMissingKustomization(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{"a.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")}}
	if _, err := readManifests(fsys); err == nil || !strings.Contains(err.Error(), "no kustomization.yaml") {
		t.Fatalf("readManifests() error = %v, want a missing kustomization", err)
	}
}

func TestReadManifestsMultiDocument(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		kustomizationFile: {Data: []byte(minimalKustomization)},
		"a.yaml": {Data: []byte("# two objects\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n" +
			"---\n# a comment-only document\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: two}\n")},
		"notes.txt": {Data: []byte("not a manifest")},
	}
	m, err := readManifests(fsys)
	if err != nil {
		t.Fatalf("readManifests() error = %v", err)
	}
	var got []string
	for _, d := range m.docs {
		got = append(got, d.file+":"+d.obj.GetName())
	}
	if diff := cmp.Diff([]string{"a.yaml:one", "a.yaml:two"}, got); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a.yaml"}, m.files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}
