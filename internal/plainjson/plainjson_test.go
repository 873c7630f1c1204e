package plainjson_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/plainjson"
)

// scan reads doc as an object of members whose values are plain strings,
// digits, booleans or arrays of plain strings, and returns what it read,
// one entry per value, or ok false where the scanner refused.
func scan(doc string) (got []string, ok bool) {
	s := plainjson.New([]byte(doc))
	ok = s.Object(func(name []byte) bool {
		got = append(got, "name "+string(name))
		switch string(name) {
		case "s":
			v, ok := s.Str()
			got = append(got, "str "+string(v))
			return ok
		case "n":
			got = append(got, "digits "+string(s.Digits()))
			return true
		case "b":
			v, ok := s.Bool()
			got = append(got, "bool "+map[bool]string{true: "true", false: "false"}[v])
			return ok
		case "a":
			return s.Array(func() bool {
				v, ok := s.Str()
				got = append(got, "elem "+string(v))
				return ok
			})
		}
		return false
	}) && s.End()
	return got, ok
}

func TestScanner(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc    string
		want   []string
		wantOK bool
	}{
		{`{}`, nil, true},
		{" \t\r\n{ } \n", nil, true},
		{`{"s":"a b/:~"}`, []string{"name s", "str a b/:~"}, true},
		{`{"s" : "" , "n" : 0012 }`, []string{"name s", "str ", "name n", "digits 0012"}, true},
		{`{"b":true,"b":false}`, []string{"name b", "bool true", "name b", "bool false"}, true},
		{`{"a":[],"a":[ "x" , "y" ]}`, []string{"name a", "name a", "elem x", "elem y"}, true},
		{`{"n":-1}`, []string{"name n", "digits "}, false},
		{`{"n":1.5}`, []string{"name n", "digits 1"}, false},
		{`{"b":truex}`, []string{"name b", "bool true"}, false},
		{`{"b":tru}`, []string{"name b", "bool false"}, false},
		{`{"s":"a\"b"}`, []string{"name s", "str "}, false},
		{`{"s":"é"}`, []string{"name s", "str "}, false},
		{"{\"s\":\"a\tb\"}", []string{"name s", "str "}, false},
		{`{"s":"open`, []string{"name s", "str "}, false},
		{`{"a":["x",]}`, []string{"name a", "elem x", "elem "}, false},
		{`{"a":["x"`, []string{"name a", "elem x"}, false},
		{`{"s":"x",}`, []string{"name s", "str x"}, false},
		{`{"s":"x"} x`, []string{"name s", "str x"}, false},
		{`{"s" "x"}`, nil, false},
		{`["x"]`, nil, false},
		{``, nil, false},
	} {
		got, ok := scan(tc.doc)
		if ok != tc.wantOK {
			t.Errorf("%q: ok = %v, want %v", tc.doc, ok, tc.wantOK)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q: read (-want +got):\n%s", tc.doc, diff)
		}
	}
}

func TestPos(t *testing.T) {
	t.Parallel()
	s := plainjson.New([]byte(`  "ab" x`))
	if _, ok := s.Str(); !ok {
		t.Fatal("Str refused a plain string")
	}
	if got := s.Pos(); got != 6 {
		t.Errorf("Pos = %d after the string, want 6", got)
	}
	if s.End() {
		t.Error("End = true with x left")
	}
}

func TestPlain(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"":              true,
		"Bearer a.b-c~": true,
		`a"b`:           false,
		`a\b`:           false,
		"a\tb":          false,
		"a\x7fb":        false,
		"é":             false,
	} {
		if got := plainjson.Plain(s); got != want {
			t.Errorf("Plain(%q) = %v, want %v", s, got, want)
		}
	}
}
