package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"
)

// errBadPayload is returned for an authentic body that is not Wacht's
// envelope: not a JSON object, without a type, or with a data field that
// is not an object.
var errBadPayload = errors.New("webhook: body is not a {type, timestamp, data} envelope")

// event is Wacht's envelope {"type","timestamp","data"} as the handler
// reads it.
type event struct {
	Type string
	// Timestamp is the envelope's timestamp; zero when it is missing or
	// not RFC 3339.
	Timestamp time.Time
	Data      eventData
	// Raw is data as sent, from which the entity's details are decoded;
	// nil when data is missing or null.
	Raw json.RawMessage
}

// eventData holds the fields of data that name the user concerned. Wacht
// merges the entity's details into data: for user, user_email and
// user_phone entities the user's UserDetails (so id is the user id), for an
// authenticator its row, for a session the session and its active
// sign-ins.
type eventData struct {
	EntityID       wachtID  `json:"entity_id"`
	EntityType     string   `json:"entity_type"`
	ID             wachtID  `json:"id"`
	UserID         wachtID  `json:"user_id"`
	ActiveSigninID wachtID  `json:"active_signin_id"`
	Signins        []signin `json:"signins"`
}

// signin is the part of a sign-in in a session event's data that is read.
type signin struct {
	ID     wachtID `json:"id"`
	UserID wachtID `json:"user_id"`
}

// envelope is the wire form of [event].
type envelope struct {
	Type      *string         `json:"type"`
	Timestamp json.RawMessage `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// parseEvent decodes an envelope. A missing or null data decodes to empty
// data; ids of an unexpected shape decode to "".
func parseEvent(body []byte) (event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Type == nil {
		return event{}, errBadPayload
	}
	ev := event{Type: *env.Type}
	var ts string
	if json.Unmarshal(env.Timestamp, &ts) == nil {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			ev.Timestamp = t
		}
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || string(data) == "null" {
		return ev, nil
	}
	if data[0] != '{' {
		return event{}, errBadPayload
	}
	ev.Raw = data
	if err := json.Unmarshal(data, &ev.Data); err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return event{}, errBadPayload
		}
		// A field of an unexpected type is left empty; the others are
		// still read.
	}
	return ev, nil
}

// maxIDBytes bounds the length of an id taken from a payload.
const maxIDBytes = 128

// wachtID is an id from a webhook payload as a decimal string. Wacht sends
// ids as strings, except data.entity_id, which events raised by its API
// send as a JSON number; the number's digits are kept as they are, never
// through float64, so 64-bit ids survive exactly. A value that is neither
// a non-negative integer nor a short printable string decodes to "".
type wachtID string

// UnmarshalJSON implements json.Unmarshaler. It never fails, so that one
// odd id does not stop the rest of the payload from being read.
func (id *wachtID) UnmarshalJSON(b []byte) error {
	*id = ""
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil && printableID(s) {
			*id = wachtID(s)
		}
	case digitsOnly(b):
		*id = wachtID(b)
	}
	return nil
}

// digitsOnly reports whether b is a JSON integer without sign, fraction or
// exponent.
func digitsOnly(b []byte) bool {
	if len(b) == 0 || len(b) > maxIDBytes {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// printableID reports whether s is usable as an id: not empty, short, and
// free of spaces and control characters.
func printableID(s string) bool {
	if s == "" || len(s) > maxIDBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
