// Package checkcodec is the pair of Connect codecs (protobuf and JSON)
// of Envoy's Check: it reads from a CheckRequest's encoding only what
// Check uses, and writes an allowed answer straight from the headers it
// sets and removes, without building Envoy's messages; what it accepts
// and writes is what Connect's own codecs would.
package checkcodec

import (
	"bytes"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"

	"google.golang.org/protobuf/proto"

	"github.com/authsvc/authsvc/internal/jsoncodec"
)

// Proto is the protobuf codec, named "proto" as Connect's is. It reads a
// [Request] without decoding what Check does not use, after checking that
// proto.Unmarshal would accept the encoding as a CheckRequest.
type Proto struct {
	checkRequest *schema
}

// NewProto returns the protobuf codec.
func NewProto() Proto {
	return Proto{checkRequest: newSchema((&authv3.CheckRequest{}).ProtoReflect().Descriptor())}
}

// Name is the name of Connect's protobuf codec, which this one replaces.
func (Proto) Name() string { return "proto" }

// IsBinary reports that the codec is binary.
func (Proto) IsBinary() bool { return true }

// Marshal encodes message.
func (c Proto) Marshal(message any) ([]byte, error) { return c.MarshalAppend(nil, message) }

// MarshalAppend appends the encoding of message to dst.
func (Proto) MarshalAppend(dst []byte, message any) ([]byte, error) {
	if a, ok := message.(*Answer); ok {
		if a.Message == nil {
			if out, ok := a.appendProto(dst); ok {
				return out, nil
			}
		}
		message = a.Proto()
	}
	m, ok := message.(proto.Message)
	if !ok {
		return nil, errNotProto(message)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}

// Unmarshal decodes data into message.
func (c Proto) Unmarshal(data []byte, message any) error {
	if r, ok := message.(*Request); ok {
		if err := c.checkRequest.validate(data, protowire.DefaultRecursionLimit); err != nil {
			return fmt.Errorf("unmarshal into %T: proto: %w", &authv3.CheckRequest{}, err)
		}
		r.decode(bytes.Clone(data))
		return nil
	}
	m, ok := message.(proto.Message)
	if !ok {
		return errNotProto(message)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", message, err)
	}
	return nil
}

// JSON is the JSON codec, named "json" as Connect's is. It reads a
// [Request] of the usual shape itself, as protojson would, and writes an
// allowed answer itself; everything else goes through [jsoncodec.Codec].
type JSON struct {
	json jsoncodec.Codec
}

// Name is the name of Connect's JSON codec, which this one replaces.
func (JSON) Name() string { return "json" }

// JSONCharsetUTF8 is [JSON] under the name of Connect's codec for
// "application/json; charset=utf-8", which it replaces as well.
type JSONCharsetUTF8 struct{ JSON }

// Name is the name of Connect's JSON codec for a charset-qualified type.
func (JSONCharsetUTF8) Name() string { return "json; charset=utf-8" }

// IsBinary reports that the codec is not binary.
func (JSON) IsBinary() bool { return false }

// Marshal encodes message.
func (c JSON) Marshal(message any) ([]byte, error) { return c.MarshalAppend(nil, message) }

// MarshalAppend appends the encoding of message to dst.
func (c JSON) MarshalAppend(dst []byte, message any) ([]byte, error) {
	if a, ok := message.(*Answer); ok {
		if a.Message == nil {
			if out, ok := a.appendJSON(dst); ok {
				return out, nil
			}
		}
		message = a.Proto()
	}
	return c.json.MarshalAppend(dst, message)
}

// Unmarshal decodes data into message.
func (c JSON) Unmarshal(data []byte, message any) error {
	if r, ok := message.(*Request); ok {
		if r.readJSON(data) {
			return nil
		}
		m := &authv3.CheckRequest{}
		if err := c.json.Unmarshal(data, m); err != nil {
			return err
		}
		*r = Request{msg: m}
		return nil
	}
	return c.json.Unmarshal(data, message)
}

func errNotProto(message any) error {
	return fmt.Errorf("%T is not a proto.Message", message)
}
