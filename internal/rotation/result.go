package rotation

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// redactedText replaces the secret when a Result is printed.
const redactedText = "[REDACTED]"

// Result is a successful rotation. Formatting, logging or JSON-encoding it
// prints [REDACTED] for the secret; read the Secret field to hand it on.
type Result struct {
	// Key is the new key.
	Key wachtclient.APIKey
	// Secret is the new key's full secret. Wacht shows it once and it is
	// never stored, logged or put in an error.
	Secret string
	// PreviousKeyID is the replaced key.
	PreviousKeyID string
	// PreviousKeyRevokesAt is when the old key stops working: the time of
	// the rotation when the grace period is zero.
	PreviousKeyRevokesAt time.Time
	// AuditID is the rotation's [Record.ID].
	AuditID string
}

// redactedResult is Result without its methods.
type redactedResult Result

func (r Result) redacted() redactedResult {
	out := redactedResult(r)
	if out.Secret != "" {
		out.Secret = redactedText
	}
	return out
}

// String returns the result with its secret redacted.
func (r Result) String() string { return fmt.Sprintf("%+v", r.redacted()) }

// GoString returns the result with its secret redacted.
func (r Result) GoString() string { return fmt.Sprintf("%#v", r.redacted()) }

// Format implements fmt.Formatter so that no verb prints the secret.
func (r Result) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), r.redacted())
}

// LogValue implements slog.LogValuer; the secret is left out.
func (r Result) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("audit_id", r.AuditID),
		slog.String("app_slug", r.Key.AppSlug),
		slog.String("key_id", string(r.Key.ID)),
		slog.String("key_suffix", r.Key.KeySuffix),
		slog.String("previous_key_id", r.PreviousKeyID),
		slog.Time("previous_key_revokes_at", r.PreviousKeyRevokesAt),
	)
}

// MarshalJSON encodes the result with its secret redacted.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(r.redacted())
}
