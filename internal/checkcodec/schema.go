package checkcodec

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// errInvalid and errUTF8 are the refusals of an encoding proto.Unmarshal
// would refuse.
var (
	errInvalid = errors.New("cannot parse invalid wire-format data")
	errUTF8    = errors.New("string field contains invalid UTF-8")
	errDepth   = errors.New("exceeded maximum recursion depth")
)

// fieldKind is what validating a field's value takes beyond its wire
// format.
type fieldKind uint8

const (
	kindOther         fieldKind = iota // nothing: a scalar, bytes, or a field the message does not declare
	kindMessage                        // a message, validated in turn
	kindGroup                          // a group, validated in turn
	kindMap                            // a map entry
	kindUTF8                           // a string that must be valid UTF-8
	kindPackedVarint                   // a repeated varint scalar, maybe packed
	kindPackedFixed32                  // a repeated 32-bit scalar, maybe packed
	kindPackedFixed64                  // a repeated 64-bit scalar, maybe packed
)

// field is how to validate one field of a message.
type field struct {
	kind fieldKind
	// msg is the message of a message or group field, or the value
	// message of a map.
	msg              *schema
	keyUTF8, valUTF8 bool // map keys and values that must be valid UTF-8
}

// schema is how to validate the encoding of one message type: as
// proto.Unmarshal does, but without building the message.
type schema struct {
	dense  []field // by field number, up to maxDense
	sparse map[protowire.Number]field
}

// maxDense bounds the field numbers kept in a slice.
const maxDense = 256

func (s *schema) field(n protowire.Number) field {
	if int(n) < len(s.dense) {
		return s.dense[n]
	}
	return s.sparse[n]
}

// newSchema builds the schema of md and of every message it reaches.
func newSchema(md protoreflect.MessageDescriptor) *schema {
	return buildSchema(md, map[protoreflect.FullName]*schema{})
}

func buildSchema(md protoreflect.MessageDescriptor, done map[protoreflect.FullName]*schema) *schema {
	if s, ok := done[md.FullName()]; ok {
		return s
	}
	s := &schema{sparse: map[protowire.Number]field{}}
	done[md.FullName()] = s
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		f := fieldOf(fd, done)
		if fd.Number() < maxDense {
			for len(s.dense) <= int(fd.Number()) {
				s.dense = append(s.dense, field{})
			}
			s.dense[fd.Number()] = f
		} else {
			s.sparse[fd.Number()] = f
		}
	}
	return s
}

// fieldOf is how proto.Unmarshal validates fd (see protobuf-go's
// internal/impl/validate.go, whose rules this follows).
func fieldOf(fd protoreflect.FieldDescriptor, done map[protoreflect.FullName]*schema) field {
	switch {
	case fd.IsMap():
		f := field{kind: kindMap}
		f.keyUTF8 = fd.MapKey().Kind() == protoreflect.StringKind && enforceUTF8(fd)
		switch fd.MapValue().Kind() {
		case protoreflect.MessageKind:
			f.msg = buildSchema(fd.MapValue().Message(), done)
		case protoreflect.StringKind:
			f.valUTF8 = enforceUTF8(fd)
		}
		return f
	case fd.Kind() == protoreflect.MessageKind:
		return field{kind: kindMessage, msg: buildSchema(fd.Message(), done)}
	case fd.Kind() == protoreflect.GroupKind:
		return field{kind: kindGroup, msg: buildSchema(fd.Message(), done)}
	case fd.Kind() == protoreflect.StringKind:
		if enforceUTF8(fd) {
			return field{kind: kindUTF8}
		}
		return field{}
	case fd.IsList() && (fd.ContainingOneof() == nil || fd.ContainingOneof().IsSynthetic()):
		switch fd.Kind() {
		case protoreflect.BytesKind:
			return field{}
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			return field{kind: kindPackedFixed32}
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			return field{kind: kindPackedFixed64}
		default:
			return field{kind: kindPackedVarint}
		}
	}
	return field{}
}

// enforceUTF8 reports whether proto.Unmarshal refuses invalid UTF-8 in
// the string field fd.
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}

// validate reports whether b is an encoding of s's message that
// proto.Unmarshal accepts, and why not. depth is what is left of
// proto.Unmarshal's recursion limit.
func (s *schema) validate(b []byte, depth int) error {
	_, err := s.validateUntil(b, depth, 0)
	return err
}

// validateUntil validates fields of s until the end of b or, for a group
// (endGroup > 0), until its end-group tag, and returns what follows.
func (s *schema) validateUntil(b []byte, depth int, endGroup protowire.Number) ([]byte, error) {
	if depth--; depth < 0 {
		return nil, errDepth
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return nil, errInvalid
		}
		b = b[n:]
		if typ == protowire.EndGroupType {
			if endGroup == num {
				return b, nil
			}
			return nil, errInvalid
		}
		f := s.field(num)
		if f.kind == kindMap && depth == 0 {
			// proto.Unmarshal counts a map entry against the limit
			// before it looks at the wire type.
			return nil, errDepth
		}
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errInvalid
			}
			b = b[n:]
			if err := f.validateBytes(v, depth); err != nil {
				return nil, err
			}
		case protowire.StartGroupType:
			if f.kind == kindGroup {
				rest, err := f.msg.validateUntil(b, depth, num)
				if err != nil {
					return nil, err
				}
				b = rest
				continue
			}
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, errInvalid
			}
			b = b[n:]
		case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, errInvalid
			}
			b = b[n:]
		default:
			return nil, errInvalid
		}
	}
	if endGroup > 0 {
		return nil, errInvalid
	}
	return b, nil
}

// validateBytes validates the value of a length-delimited field.
func (f field) validateBytes(v []byte, depth int) error {
	switch f.kind {
	case kindMessage:
		return f.msg.validate(v, depth)
	case kindMap:
		return f.validateEntry(v, depth)
	case kindUTF8:
		if !utf8.Valid(v) {
			return errUTF8
		}
	case kindPackedVarint:
		for len(v) > 0 {
			_, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return errInvalid
			}
			v = v[n:]
		}
	case kindPackedFixed32:
		if len(v)%4 != 0 {
			return errInvalid
		}
	case kindPackedFixed64:
		if len(v)%8 != 0 {
			return errInvalid
		}
	}
	return nil
}

// validateEntry validates a map entry: its key (1) and value (2); any
// other field, or one of another wire type, is skipped.
func (f field) validateEntry(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errDepth
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errInvalid
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == 1 || num == 2) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errInvalid
			}
			b = b[n:]
			switch {
			case num == 1 && f.keyUTF8, num == 2 && f.valUTF8:
				if !utf8.Valid(v) {
					return errUTF8
				}
			case num == 2 && f.msg != nil:
				if err := f.msg.validate(v, depth); err != nil {
					return err
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return errInvalid
		}
		b = b[n:]
	}
	return nil
}
