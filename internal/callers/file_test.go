package callers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	hashA = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
	hashB = "B0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1"
	hashC = "c0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
	hashD = "d0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1"
)

// summary is what a test can see of a parsed entry.
type summary struct {
	Name     string
	Roles    []Role
	Limits   *Limits
	HasToken bool
	Cert     certIdentity
}

func summarize(r *Registry) []summary {
	var out []summary
	add := func(e *entry) {
		s := summary{Name: e.name, Roles: e.roles, Limits: e.limits, HasToken: e.hasToken}
		if e.cert != nil {
			s.Cert = *e.cert
		}
		out = append(out, s)
	}
	for _, e := range r.byToken {
		add(e)
	}
	for _, e := range r.certOnly {
		add(e)
	}
	return out
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	r, err := ParseFile([]byte(`{"callers": [
		{"name": "orders", "token_sha256": "` + hashA + `", "roles": ["reader"]},
		{"name": "ops.team_2", "token_sha256": "` + hashB + `", "roles": ["admin"]},
		{"name": "envoy", "cert": {"common_name": "envoy.mesh", "uri_san": "spiffe://cluster.local/ns/gw/sa/envoy", "dns_san": "Envoy.GW.svc"}, "roles": ["reader", "admin"]},
		{"name": "signout", "token_sha256": "` + hashC + `", "roles": ["revoker"], "limits": {"wacht_calls_per_minute": 30}},
		{"name": "reports", "token_sha256": "` + hashD + `", "roles": ["reader"], "limits": {"wacht_calls_per_minute": 600, "concurrent_loads": 2}}
	]}`))
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	want := []summary{
		{Name: "envoy", Roles: []Role{RoleReader, RoleRevoker, RoleAdmin}, Cert: certIdentity{commonName: "envoy.mesh", uriSAN: "spiffe://cluster.local/ns/gw/sa/envoy", dnsSAN: "envoy.gw.svc"}},
		{Name: "ops.team_2", Roles: []Role{RoleReader, RoleRevoker, RoleAdmin}, HasToken: true},
		{Name: "orders", Roles: []Role{RoleReader}, HasToken: true},
		{Name: "reports", Roles: []Role{RoleReader}, Limits: &Limits{WachtCallsPerMinute: 600, ConcurrentLoads: 2}, HasToken: true},
		{Name: "signout", Roles: []Role{RoleReader, RoleRevoker}, Limits: &Limits{WachtCallsPerMinute: 30}, HasToken: true},
	}
	got := summarize(r)
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(certIdentity{}), sortSummaries); diff != "" {
		t.Errorf("ParseFile (-want +got):\n%s", diff)
	}
	if r.Len() != 5 {
		t.Errorf("Len() = %d, want 5", r.Len())
	}
}

var sortSummaries = cmpopts.SortSlices(func(a, b summary) bool { return a.Name < b.Name })

func TestParseFileErrors(t *testing.T) {
	t.Parallel()
	entry := func(fields string) string { return `{"callers": [` + fields + `]}` }
	ok := `{"name": "orders", "token_sha256": "` + hashA + `", "roles": ["reader"]}`
	type where struct {
		Index int
		Name  string
		Field string
	}
	tests := []struct {
		name    string
		file    string
		want    where
		message string // a part of the error message
	}{
		{"not json", `callers:`, where{Index: -1}, "invalid character"},
		{"empty", " \n", where{Index: -1}, "empty file"},
		{"unknown top-level field", `{"callers": [` + ok + `], "admins": []}`, where{Index: -1}, `unknown field "admins"`},
		{"trailing data", `{"callers": [` + ok + `]} {}`, where{Index: -1}, "trailing data"},
		{"no callers field", `{}`, where{Index: -1, Field: "callers"}, "no callers"},
		{"empty callers", `{"callers": []}`, where{Index: -1, Field: "callers"}, "no callers"},
		{"unknown entry field", entry(ok + `, {"name": "x", "token": "t", "roles": ["reader"]}`), where{Index: 1, Name: "x"}, `unknown field "token"`},
		{"hash not a string", entry(`{"name": "x", "token_sha256": 12, "roles": ["reader"]}`), where{Index: 0, Name: "x"}, "cannot unmarshal number"},
		{"entry not an object", entry(`"orders"`), where{Index: 0}, "cannot unmarshal string"},
		{"missing name", entry(`{"token_sha256": "` + hashA + `", "roles": ["reader"]}`), where{Index: 0, Field: "name"}, "missing"},
		{"uppercase name", entry(`{"name": "Orders", "token_sha256": "` + hashA + `", "roles": ["reader"]}`), where{Index: 0, Field: "name"}, "a-z"},
		{"name with space", entry(`{"name": "my svc", "token_sha256": "` + hashA + `", "roles": ["reader"]}`), where{Index: 0, Field: "name"}, "a-z"},
		{"reserved name", entry(`{"name": "anonymous", "token_sha256": "` + hashA + `", "roles": ["reader"]}`), where{Index: 0, Name: "anonymous", Field: "name"}, "reserved"},
		{"bad hex", entry(`{"name": "x", "token_sha256": "` + strings.Repeat("g", 64) + `", "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "token_sha256"}, "non-hex"},
		{"short hash", entry(`{"name": "x", "token_sha256": "` + hashA[:63] + `", "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "token_sha256"}, "got 63 characters"},
		{"long hash", entry(`{"name": "x", "token_sha256": "` + hashA + `00", "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "token_sha256"}, "got 66 characters"},
		{"empty hash", entry(`{"name": "x", "token_sha256": "", "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "token_sha256"}, "got 0 characters"},
		{"unknown role", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["writer"]}`), where{Index: 0, Name: "x", Field: "roles"}, `unknown role "writer"`},
		{"role case", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["Admin"]}`), where{Index: 0, Name: "x", Field: "roles"}, "unknown role"},
		{"duplicate role", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["reader", "reader"]}`), where{Index: 0, Name: "x", Field: "roles"}, "twice"},
		{"no roles", entry(`{"name": "x", "token_sha256": "` + hashA + `"}`), where{Index: 0, Name: "x", Field: "roles"}, "at least one"},
		{"empty roles", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": []}`), where{Index: 0, Name: "x", Field: "roles"}, "at least one"},
		{"limits zero", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["reader"], "limits": {"wacht_calls_per_minute": 0}}`), where{Index: 0, Name: "x", Field: "limits.wacht_calls_per_minute"}, "want 1 to"},
		{"limits negative", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["reader"], "limits": {"concurrent_loads": -1}}`), where{Index: 0, Name: "x", Field: "limits.concurrent_loads"}, "want 1 to"},
		{"limits unknown field", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["reader"], "limits": {"calls_per_minute": 5}}`), where{Index: 0, Name: "x"}, `unknown field "calls_per_minute"`},
		{"limits not a number", entry(`{"name": "x", "token_sha256": "` + hashA + `", "roles": ["reader"], "limits": {"concurrent_loads": "4"}}`), where{Index: 0, Name: "x"}, "cannot unmarshal string"},
		{"no credential", entry(ok + `, {"name": "x", "roles": ["reader"]}`), where{Index: 1, Name: "x"}, "needs token_sha256, cert or both"},
		{"empty cert", entry(`{"name": "x", "cert": {}, "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "cert"}, "common_name"},
		{"unknown cert field", entry(`{"name": "x", "cert": {"cn": "a"}, "roles": ["reader"]}`), where{Index: 0, Name: "x"}, `unknown field "cn"`},
		{"relative uri san", entry(`{"name": "x", "cert": {"uri_san": "envoy"}, "roles": ["reader"]}`), where{Index: 0, Name: "x", Field: "cert.uri_san"}, "absolute URI"},
		{"duplicate name", entry(ok + `, {"name": "orders", "token_sha256": "` + hashB + `", "roles": ["reader"]}`), where{Index: 1, Name: "orders", Field: "name"}, "duplicates callers[0]"},
		{"duplicate hash", entry(ok + `, {"name": "y", "token_sha256": "` + hashA + `", "roles": ["admin"]}`), where{Index: 1, Name: "y", Field: "token_sha256"}, "duplicates callers[0]"},
		{"duplicate hash, other case", entry(ok + `, {"name": "y", "token_sha256": "` + strings.ToUpper(hashA) + `", "roles": ["admin"]}`), where{Index: 1, Name: "y", Field: "token_sha256"}, "duplicates callers[0]"},
		{"duplicate cert", entry(`{"name": "a", "cert": {"common_name": "c"}, "roles": ["reader"]}, {"name": "b", "cert": {"common_name": "c"}, "roles": ["admin"]}`), where{Index: 1, Name: "b", Field: "cert"}, "duplicates callers[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFile([]byte(tt.file))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseFile: got %v, want a *ParseError", err)
			}
			got := where{Index: pe.Index, Name: pe.Name, Field: pe.Field}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error at (-want +got):\n%s\nerror: %v", diff, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.message) {
				t.Errorf("error %q does not say %q", msg, tt.message)
			}
			if strings.Contains(strings.ToLower(msg), hashA) || strings.Contains(msg, hashA[:63]) {
				t.Errorf("error %q echoes a token hash", msg)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing): got %v, want ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big): got %v, want a size error", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"callers": [{"name": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var pe *ParseError
	if _, err := Load(bad); !errors.As(err, &pe) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad): got %v, want a *ParseError naming the file", err)
	}
}
