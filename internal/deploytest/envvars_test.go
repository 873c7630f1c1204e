package deploytest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// commandDir is cmd/authsvc, the only place that reads the environment,
// relative to this package's directory.
const commandDir = "../../cmd/authsvc"

// appDir holds the composition root that serves the routes.
const appDir = "../app"

// varKind is how authsvc reads an environment variable.
type varKind string

const (
	kindString     varKind = "string"
	kindURL        varKind = "url"
	kindDuration   varKind = "duration"
	kindBoolean    varKind = "boolean"
	kindInteger    varKind = "integer"
	kindSecret     varKind = "secret"      // NAME, read as a secret
	kindSecretFile varKind = "secret file" // NAME_FILE, the file holding NAME
)

// readerKind returns what fn, one of the functions cmd/authsvc reads
// variables with, reads.
func readerKind(fn string) (varKind, bool) {
	switch fn {
	case "getenv", "Getenv", "str":
		return kindString, true
	case "baseURL":
		return kindURL, true
	case "duration":
		return kindDuration, true
	case "boolean":
		return kindBoolean, true
	case "integer":
		return kindInteger, true
	case "secret":
		return kindSecret, true
	}
	return "", false
}

// isRuntimeVar reports whether name is read by the Go runtime rather than
// by authsvc.
func isRuntimeVar(name string) bool {
	switch name {
	case "GOMEMLIMIT", "GOGC", "GOMAXPROCS", "GODEBUG":
		return true
	}
	return false
}

// readEnvVars parses the Go files of dir (tests excluded) and returns every
// environment variable read through a readerKind function with a literal
// name, and how it is read.
func readEnvVars(dir string) (map[string]varKind, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	vars := map[string]varKind{}
	add := func(name string, k varKind) error {
		if old, ok := vars[name]; ok && old != k {
			return fmt.Errorf("%s is read both as %s and as %s", name, old, k)
		}
		vars[name] = k
		return nil
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		var walkErr error
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 || walkErr != nil {
				return walkErr == nil
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.Ident:
				fn = f.Name
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			}
			k, ok := readerKind(fn)
			lit, isLit := call.Args[0].(*ast.BasicLit)
			if !ok || !isLit || lit.Kind != token.STRING {
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil {
				walkErr = err
				return false
			}
			if walkErr = add(name, k); walkErr == nil && k == kindSecret {
				walkErr = add(name+"_FILE", kindSecretFile)
			}
			return walkErr == nil
		})
		if walkErr != nil {
			return nil, fmt.Errorf("%s: %w", file, walkErr)
		}
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("no environment variables read in %s", dir)
	}
	return vars, nil
}

func loadEnvVars(t *testing.T) map[string]varKind {
	t.Helper()
	vars, err := readEnvVars(commandDir)
	if err != nil {
		t.Fatalf("read the variables authsvc reads: %v", err)
	}
	return vars
}

func TestReadEnvVarsFromAuthsvc(t *testing.T) {
	t.Parallel()
	vars := loadEnvVars(t)
	want := map[string]varKind{
		"WACHT_API_KEY":                     kindSecret,
		"WACHT_API_KEY_FILE":                kindSecretFile,
		"WACHT_WEBHOOK_SECRET_FILE":         kindSecretFile,
		"DATABASE_URL":                      kindSecret,
		"DATABASE_URL_FILE":                 kindSecretFile,
		"WACHT_PUBLISHABLE_KEY":             kindString,
		"WACHT_API_URL":                     kindURL,
		"AUTHSVC_ADDR":                      kindString,
		"AUTHSVC_CALLERS_FILE":              kindString,
		"AUTHSVC_USER_TTL":                  kindDuration,
		"AUTHSVC_SESSIONS_TTL":              kindDuration,
		"AUTHSVC_MAX_STALE":                 kindDuration,
		"AUTHSVC_SHUTDOWN_TIMEOUT":          kindDuration,
		"AUTHSVC_WACHT_REQUESTS_PER_MINUTE": kindInteger,
		"AUTHSVC_BUDGET_WAIT":               kindDuration,
		"AUTHSVC_MIGRATE":                   kindBoolean,
		"AUTHSVC_INSECURE_OPEN":             kindBoolean,
	}
	got := map[string]varKind{}
	for name := range want {
		if k, ok := vars[name]; ok {
			got[name] = k
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables read by %s (-want +got):\n%s", commandDir, diff)
	}
}

func TestReadEnvVarsSynthetic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		want    map[string]varKind
		wantErr string
	}{
		{
			name: "every reader",
			src: `package main
func f(e *env, getenv func(string) string) {
	_ = getenv("A_STR")
	_ = e.secret("A_SECRET")
	_ = e.duration("A_DUR", 0)
	_ = e.boolean("A_BOOL", false)
	_ = e.integer("A_INT", 1, 1)
	_ = e.baseURL("A_URL", "")
	name := "NOT_LITERAL"
	_ = e.str(name, "")
	_ = e.problem("NOT_A_READ %s", name)
}`,
			want: map[string]varKind{
				"A_STR": kindString, "A_SECRET": kindSecret, "A_SECRET_FILE": kindSecretFile,
				"A_DUR": kindDuration, "A_BOOL": kindBoolean, "A_INT": kindInteger, "A_URL": kindURL,
			},
		},
		{
			name:    "conflicting reads",
			src:     "package main\nfunc f(e *env) { _ = e.str(\"X\", \"\"); _ = e.boolean(\"X\", false) }\n",
			wantErr: "X is read both as string and as boolean",
		},
		{
			name:    "nothing read",
			src:     "package main\nfunc f() {}\n",
			wantErr: "no environment variables",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.go"), []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			// Test files are not configuration.
			if err := os.WriteFile(filepath.Join(dir, "config_test.go"), []byte("package main\nfunc g(e *env) { _ = e.str(\"IN_TEST\", \"\") }\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readEnvVars(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readEnvVars() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readEnvVars() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("readEnvVars() (-want +got):\n%s", diff)
			}
		})
	}
}
