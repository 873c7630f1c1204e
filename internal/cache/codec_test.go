package cache

import (
	"encoding/json"
	"fmt"
)

// JSONCodec is a [Codec] that stores values as JSON, for the tests.
type JSONCodec[V any] struct{}

// Marshal implements [Codec].
func (JSONCodec[V]) Marshal(v V) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return b, nil
}

// Unmarshal implements [Codec].
func (JSONCodec[V]) Unmarshal(b []byte) (V, error) {
	var v V
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode json: %w", err)
	}
	return v, nil
}
