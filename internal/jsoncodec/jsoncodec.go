// Package jsoncodec is Connect's JSON codec with a fast path for flat
// messages of strings, booleans and whole-second timestamps, such as
// VerifySession's request and answer; every other message goes through
// protojson, with Connect's own options.
package jsoncodec

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authsvc/authsvc/internal/plainjson"
)

// Codec encodes messages as Connect's default JSON codec does: protojson
// with default options when writing, and discarding unknown fields when
// reading. What it writes on the fast path is JSON that protojson reads
// back as the same message, and what it reads there is read as protojson
// would read it; anything else takes protojson's own path.
type Codec struct{}

// New returns the codec, for connect.WithCodec.
func New() Codec { return Codec{} }

// Name is the name Connect's JSON codec has, which this codec replaces.
func (Codec) Name() string { return "json" }

// Marshal encodes message.
func (c Codec) Marshal(message any) ([]byte, error) { return c.MarshalAppend(nil, message) }

// MarshalAppend appends the encoding of message to dst.
func (Codec) MarshalAppend(dst []byte, message any) ([]byte, error) {
	m, ok := message.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", message)
	}
	if out, ok := appendFlat(dst, m.ProtoReflect()); ok {
		return out, nil
	}
	return protojson.MarshalOptions{}.MarshalAppend(dst, m)
}

// Unmarshal decodes data into message.
func (Codec) Unmarshal(data []byte, message any) error {
	m, ok := message.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", message)
	}
	if len(data) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	if readFlat(data, m.ProtoReflect()) {
		return nil
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", message, err)
	}
	return nil
}

// IsBinary reports that the codec is not binary.
func (Codec) IsBinary() bool { return false }

// timestampName is the full name of google.protobuf.Timestamp.
var timestampName = (&timestamppb.Timestamp{}).ProtoReflect().Descriptor().FullName()

// Timestamps protojson can write: years 1 to 9999.
const (
	minTimestamp = -62135596800
	maxTimestamp = 253402300799
)

// appendFlat appends m as JSON if every populated field of m is a string,
// a bool, a list of strings or a timestamp of whole seconds, with strings
// of printable ASCII only; ok is false, with dst unchanged, otherwise.
func appendFlat(dst []byte, m protoreflect.Message) (out []byte, ok bool) {
	if len(m.GetUnknown()) > 0 {
		return dst, false
	}
	fields := m.Descriptor().Fields()
	out = append(dst, '{')
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, '"')
		out = append(out, fd.JSONName()...)
		out = append(out, '"', ':')
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			return dst, false
		case fd.IsList():
			if fd.Kind() != protoreflect.StringKind {
				return dst, false
			}
			list := v.List()
			out = append(out, '[')
			for j := range list.Len() {
				if j > 0 {
					out = append(out, ',')
				}
				if out, ok = appendString(out, list.Get(j).String()); !ok {
					return dst, false
				}
			}
			out = append(out, ']')
		case fd.Kind() == protoreflect.StringKind:
			if out, ok = appendString(out, v.String()); !ok {
				return dst, false
			}
		case fd.Kind() == protoreflect.BoolKind:
			if v.Bool() {
				out = append(out, "true"...)
			} else {
				out = append(out, "false"...)
			}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == timestampName:
			if out, ok = appendTimestamp(out, v.Message()); !ok {
				return dst, false
			}
		default:
			return dst, false
		}
	}
	return append(out, '}'), true
}

// appendString appends s quoted if it is printable ASCII without quote or
// backslash, so that it needs no escaping.
func appendString(dst []byte, s string) ([]byte, bool) {
	if !plainjson.Plain(s) {
		return dst, false
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// appendTimestamp appends a timestamp of whole seconds within protojson's
// range in its RFC 3339 form.
func appendTimestamp(dst []byte, m protoreflect.Message) ([]byte, bool) {
	if len(m.GetUnknown()) > 0 {
		return dst, false
	}
	fields := m.Descriptor().Fields()
	seconds := m.Get(fields.ByNumber(1)).Int()
	nanos := m.Get(fields.ByNumber(2)).Int()
	if nanos != 0 || seconds < minTimestamp || seconds > maxTimestamp {
		return dst, false
	}
	dst = append(dst, '"')
	dst = time.Unix(seconds, 0).UTC().AppendFormat(dst, "2006-01-02T15:04:05Z")
	return append(dst, '"'), true
}
