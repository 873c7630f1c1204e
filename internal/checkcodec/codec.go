// Package checkcodec is the pair of Connect codecs (protobuf and JSON)
// of Envoy's Check: it writes an allowed answer straight from the headers
// it sets and removes, without building Envoy's CheckResponse, and
// otherwise encodes and decodes as Connect's own codecs do.
package checkcodec

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/authsvc/authsvc/internal/jsoncodec"
)

// Proto is the protobuf codec, named "proto" as Connect's is.
type Proto struct{}

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
func (Proto) Unmarshal(data []byte, message any) error {
	m, ok := message.(proto.Message)
	if !ok {
		return errNotProto(message)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", message, err)
	}
	return nil
}

// JSON is the JSON codec, named "json" as Connect's is; messages other
// than an allowed answer go through [jsoncodec.Codec].
type JSON struct {
	json jsoncodec.Codec
}

// Name is the name of Connect's JSON codec, which this one replaces.
func (JSON) Name() string { return "json" }

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
	return c.json.Unmarshal(data, message)
}

func errNotProto(message any) error {
	return fmt.Errorf("%T is not a proto.Message", message)
}
