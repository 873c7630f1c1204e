package jsoncodec

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	r := reader{data: data}
	fields := m.Descriptor().Fields()
	var (
		set  [8]assignment
		sets = set[:0]
		seen uint64
	)
	if !r.consume('{') {
		return false
	}
	if !r.consume('}') {
		for {
			name, ok := r.str()
			if !ok || !r.consume(':') {
				return false
			}
			fd := fields.ByJSONName(name)
			if fd == nil {
				fd = fields.ByTextName(name)
			}
			if fd == nil || fd.Number() > 63 || fd.ContainingOneof() != nil || fd.IsMap() || seen&(1<<fd.Number()) != 0 {
				return false
			}
			seen |= 1 << fd.Number()
			a := assignment{fd: fd}
			switch {
			case fd.IsList():
				if fd.Kind() != protoreflect.StringKind {
					return false
				}
				if a.list, ok = r.strings(); !ok {
					return false
				}
			case fd.Kind() == protoreflect.StringKind:
				if a.str, ok = r.str(); !ok {
					return false
				}
			case fd.Kind() == protoreflect.BoolKind:
				if a.b, ok = r.boolean(); !ok {
					return false
				}
			default:
				return false
			}
			sets = append(sets, a)
			if r.consume(',') {
				continue
			}
			if !r.consume('}') {
				return false
			}
			break
		}
	}
	r.space()
	if r.i != len(r.data) {
		return false
	}
	proto.Reset(m.Interface())
	for _, a := range sets {
		switch {
		case a.fd.IsList():
			l := m.Mutable(a.fd).List()
			for _, s := range a.list {
				l.Append(protoreflect.ValueOfString(s))
			}
		case a.fd.Kind() == protoreflect.StringKind:
			m.Set(a.fd, protoreflect.ValueOfString(a.str))
		default:
			m.Set(a.fd, protoreflect.ValueOfBool(a.b))
		}
	}
	return true
}

// reader scans JSON tokens from data.
type reader struct {
	data []byte
	i    int
}

func (r *reader) space() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (r *reader) consume(c byte) bool {
	r.space()
	if r.i < len(r.data) && r.data[r.i] == c {
		r.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (r *reader) str() (string, bool) {
	if !r.consume('"') {
		return "", false
	}
	start := r.i
	for r.i < len(r.data) {
		c := r.data[r.i]
		switch {
		case c == '"':
			s := string(r.data[start:r.i])
			r.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
		r.i++
	}
	return "", false
}

// strings reads an array of such strings.
func (r *reader) strings() ([]string, bool) {
	if !r.consume('[') {
		return nil, false
	}
	var out []string
	if r.consume(']') {
		return out, true
	}
	for {
		s, ok := r.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if r.consume(',') {
			continue
		}
		return out, r.consume(']')
	}
}

// boolean reads true or false.
func (r *reader) boolean() (bool, bool) {
	r.space()
	rest := r.data[r.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		r.i += 4
		return true, r.delimited()
	case len(rest) >= 5 && string(rest[:5]) == "false":
		r.i += 5
		return false, r.delimited()
	}
	return false, false
}

// delimited reports whether a literal just read ends there, as in
// "true," and not "truex".
func (r *reader) delimited() bool {
	if r.i == len(r.data) {
		return true
	}
	switch r.data[r.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}
