package wachtclient

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestIDUnmarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{`"24239923154394947"`, "24239923154394947", false},
		{`24239923154394947`, "24239923154394947", false},
		{`9223372036854775807`, "9223372036854775807", false}, // beyond float64 precision
		{`-1`, "-1", false},
		{`null`, "", false},
		{`""`, "", false},
		{`1.5`, "", true},
		{`1e3`, "", true},
		{`true`, "", true},
		{`{}`, "", true},
		{`"unterminated`, "", true},
		{`-`, "", true},
	} {
		var got struct {
			ID ID `json:"id"`
		}
		err := json.Unmarshal([]byte(`{"id":`+tc.in+`}`), &got)
		if (err != nil) != tc.wantErr {
			t.Errorf("unmarshal %s: error = %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if got.ID != tc.want {
			t.Errorf("unmarshal %s = %q, want %q", tc.in, got.ID, tc.want)
		}
	}
}

func TestIDMarshal(t *testing.T) {
	t.Parallel()
	got, err := json.Marshal(struct {
		A ID `json:"a"`
		B ID `json:"b"`
		C ID `json:"c,omitempty"`
	}{A: "42"})
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if want := `{"a":"42","b":null}`; string(got) != want {
		t.Errorf("marshal = %s, want %s", got, want)
	}
}

func TestSanitizeMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"Resource not found", "Resource not found"},
		{"  spaced \t out\n", "spaced out"},
		{"key sk_abc leaked", "key " + redactedText + " leaked"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"esc\x1b[31mred", "esc [31mred"},
	} {
		if got := sanitizeMessage(tc.in, []string{"sk_abc", ""}); got != tc.want {
			t.Errorf("sanitizeMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestImports keeps the package a leaf: the standard library plus the rate
// limiter and the backoff module, and nothing of Connect or the cache.
func TestImports(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{
		"golang.org/x/time/rate":         true,
		"github.com/cenkalti/backoff/v5": true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			stdlib := !strings.Contains(strings.Split(path, "/")[0], ".")
			if !stdlib && !allowed[path] {
				t.Errorf("%s imports %s; wachtclient may import only the standard library, x/time/rate and backoff/v5", name, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
