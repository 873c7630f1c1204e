package rpclog

import (
	"log/slog"
	"time"

	"github.com/authsvc/authsvc/internal/lograte"
)

// Defaults of the refusal log limit: at most DefaultBurst refused calls
// are logged per DefaultWindow, and the rest are counted in one summary
// line at the end of the window.
const (
	DefaultBurst  = 20
	DefaultWindow = 10 * time.Second
)

// refusalSummary is the message of the summary of refusals not logged,
// whose counts are by procedure and code.
const refusalSummary = "rpc refusals not logged"

func newRefusalLimiter(logger *slog.Logger, burst int, window time.Duration) *lograte.Limiter {
	return lograte.New(logger, refusalSummary, burst, window)
}
