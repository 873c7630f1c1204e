package wachtclient

import (
	"encoding/json"
	"errors"
)

// ID is a Wacht identifier: a 64-bit snowflake that Wacht serialises as a
// decimal string. Decoding also accepts a JSON integer, which some Wacht
// payloads send instead, without going through float64, so large ids keep
// every digit. The empty ID stands for JSON null: nullable id fields decode
// null to "" and encode "" as null.
type ID string

// errBadID is returned when an id is neither a string, an integer nor null.
var errBadID = errors.New("wachtclient: id must be a JSON string or integer")

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*id = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
		return nil
	case isJSONInteger(b):
		*id = ID(b)
		return nil
	default:
		return errBadID
	}
}

// MarshalJSON implements json.Marshaler. It always writes a string, or null
// for the empty ID.
func (id ID) MarshalJSON() ([]byte, error) {
	if id == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(id))
}

// String returns the id as it appears on the wire.
func (id ID) String() string { return string(id) }

// isJSONInteger reports whether b is a JSON number without fraction or
// exponent.
func isJSONInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
