package sessiontoken

import (
	"errors"
	"strconv"
)

// ErrTokenTooLarge is returned, before any parsing, for a token longer than
// [Config.MaxTokenBytes]. Callers should treat it as an invalid argument.
var ErrTokenTooLarge = errors.New("session token too large")

// ErrNoKeys is returned when no usable verification key has been loaded yet
// and fetching the key set did not yield one. It says nothing about the
// token; callers should treat it as a temporary unavailability.
var ErrNoKeys = errors.New("no session token verification keys loaded")

// Reason says why a token was refused.
type Reason int

// The reasons a token is refused. The zero value is not used.
const (
	// ReasonMalformed: not a JWS compact token, bad base64 or JSON, a
	// required claim (sub, sid, exp) missing or of the wrong type.
	ReasonMalformed Reason = iota + 1
	// ReasonExpired: exp is in the past by more than the leeway.
	ReasonExpired
	// ReasonNotYetValid: nbf or iat is in the future by more than the leeway.
	ReasonNotYetValid
	// ReasonBadSignature: the signature does not verify with any known key.
	ReasonBadSignature
	// ReasonWrongIssuer: iss differs from the configured issuer.
	ReasonWrongIssuer
	// ReasonUnsupportedAlgorithm: the header alg is not ES256.
	ReasonUnsupportedAlgorithm
	// ReasonUnknownKey: the header kid names no key in the key set, even
	// after a refetch.
	ReasonUnknownKey
)

// String returns a short lowercase name for r, suitable for metric labels.
func (r Reason) String() string {
	switch r {
	case ReasonMalformed:
		return "malformed"
	case ReasonExpired:
		return "expired"
	case ReasonNotYetValid:
		return "not_yet_valid"
	case ReasonBadSignature:
		return "bad_signature"
	case ReasonWrongIssuer:
		return "wrong_issuer"
	case ReasonUnsupportedAlgorithm:
		return "unsupported_algorithm"
	case ReasonUnknownKey:
		return "unknown_key"
	default:
		return "reason(" + strconv.Itoa(int(r)) + ")"
	}
}

// Error is returned by [Verifier.Verify] for a token that was refused.
//
// Its message is built only from the reason and a fixed detail phrase, so it
// never contains any part of the token and is safe to log or return to a
// caller. The wrapped cause comes from the JOSE or JSON library and may quote
// fragments of the token (such as its alg header); do not log it verbatim.
type Error struct {
	// Reason classifies the refusal.
	Reason Reason
	detail string
	cause  error
}

func newError(reason Reason, detail string, cause error) *Error {
	return &Error{Reason: reason, detail: detail, cause: cause}
}

// Error returns a message safe to show: the reason and a fixed detail.
func (e *Error) Error() string {
	msg := "invalid session token: " + e.Reason.String()
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// ReasonOf reports the [Reason] carried by err, if err wraps an [*Error].
func ReasonOf(err error) (Reason, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return 0, false
}
