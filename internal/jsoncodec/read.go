package jsoncodec

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/authsvc/authsvc/internal/plainjson"
)

// assignment is one field value read on the fast path.
type assignment struct {
	fd   protoreflect.FieldDescriptor
	str  string
	b    bool
	list []string
}

// readFlat reads data into m if data is a JSON object whose members all
// name known fields of m, once each, none in a oneof, with values that
// need no unescaping: printable ASCII strings without backslash for
// string fields, arrays of them for repeated strings, true or false for
// bools. It reports false, leaving m untouched, for anything else.
func readFlat(data []byte, m protoreflect.Message) bool {
	s := plainjson.New(data)
	fields := m.Descriptor().Fields()
	var (
		set  [8]assignment
		sets = set[:0]
		seen uint64
	)
	ok := s.Object(func(name []byte) bool {
		fd := fields.ByJSONName(string(name))
		if fd == nil {
			fd = fields.ByTextName(string(name))
		}
		if fd == nil || fd.Number() > 63 || fd.ContainingOneof() != nil || fd.IsMap() || seen&(1<<fd.Number()) != 0 {
			return false
		}
		seen |= 1 << fd.Number()
		a := assignment{fd: fd}
		ok := false
		switch {
		case fd.IsList():
			if fd.Kind() == protoreflect.StringKind {
				a.list, ok = readStrings(&s)
			}
		case fd.Kind() == protoreflect.StringKind:
			var b []byte
			b, ok = s.Str()
			a.str = string(b)
		case fd.Kind() == protoreflect.BoolKind:
			a.b, ok = s.Bool()
		}
		sets = append(sets, a)
		return ok
	})
	if !ok || !s.End() {
		return false
	}
	proto.Reset(m.Interface())
	for _, a := range sets {
		switch {
		case a.fd.IsList():
			l := m.Mutable(a.fd).List()
			for _, v := range a.list {
				l.Append(protoreflect.ValueOfString(v))
			}
		case a.fd.Kind() == protoreflect.StringKind:
			m.Set(a.fd, protoreflect.ValueOfString(a.str))
		default:
			m.Set(a.fd, protoreflect.ValueOfBool(a.b))
		}
	}
	return true
}

// readStrings reads an array of plain strings.
func readStrings(s *plainjson.Scanner) ([]string, bool) {
	var out []string
	ok := s.Array(func() bool {
		b, ok := s.Str()
		out = append(out, string(b))
		return ok
	})
	return out, ok
}
