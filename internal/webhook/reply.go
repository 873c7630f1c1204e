package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"unicode/utf8"
)

// Outcomes given to [Observer.ObserveWebhook] and logged.
const (
	OutcomeHandled          = "handled"            // applied, 200
	OutcomeIgnored          = "ignored"            // authentic, of a type not acted on, 200
	OutcomeDuplicate        = "duplicate"          // delivery already handled, 200
	OutcomeNoUserID         = "no_user_id"         // user event naming no user, 200
	OutcomeMethodNotAllowed = "method_not_allowed" // 405
	OutcomeNotConfigured    = "not_configured"     // no secret, 503
	OutcomeBusy             = "busy"               // too many deliveries at once, 503
	OutcomeMissingHeaders   = "missing_headers"    // 400
	OutcomeTooLarge         = "too_large"          // 413
	OutcomeReadFailed       = "read_failed"        // body could not be read, 400
	OutcomeBadSignature     = "bad_signature"      // 401
	OutcomeInvalidTimestamp = "invalid_timestamp"  // 400
	OutcomeStaleTimestamp   = "stale_timestamp"    // 400
	OutcomeBadPayload       = "bad_payload"        // authentic but not an envelope, 400
	OutcomeDedupeFailed     = "dedupe_failed"      // 500
	OutcomeInvalidateFailed = "invalidate_failed"  // applying failed, 500
)

// Bounds of the values taken from requests into logs: before
// verification a webhook-id is whatever the caller sent.
const (
	maxLoggedIDBytes   = 64
	maxLoggedTypeBytes = 64
)

// result is the answer to one request and what to log about it.
type result struct {
	status    int
	outcome   string
	msgID     string
	eventType string // "" until the body is trusted
	verified  bool
	userIDs   []string
	err       error
}

// reply logs res, reports it to the observer and writes the response.
func (h *Handler) reply(w http.ResponseWriter, r *http.Request, res result) {
	label := EventTypeOther
	if res.verified {
		label = eventLabel(res.eventType)
	}
	h.observer.ObserveWebhook(label, res.outcome)
	h.log(r.Context(), res)

	if res.status == http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("{}"))
		return
	}
	http.Error(w, http.StatusText(res.status), res.status)
}

// log writes one record for res.
func (h *Handler) log(ctx context.Context, res result) {
	level := slog.LevelInfo
	switch res.outcome {
	case OutcomeIgnored:
		level = slog.LevelDebug
	case OutcomeDedupeFailed, OutcomeInvalidateFailed:
		level = slog.LevelError
	case OutcomeHandled, OutcomeDuplicate, OutcomeMethodNotAllowed:
	default:
		level = slog.LevelWarn
	}
	if !h.logger.Enabled(ctx, level) {
		return
	}
	if !res.verified && !h.refusals.Allow(res.outcome) {
		return
	}
	attrs := []slog.Attr{
		slog.String("outcome", res.outcome),
		slog.Int("status", res.status),
	}
	if res.msgID != "" {
		attrs = append(attrs, slog.String("webhook_id", truncate(res.msgID, maxLoggedIDBytes)))
	}
	if res.verified {
		attrs = append(attrs, slog.String("type", truncate(res.eventType, maxLoggedTypeBytes)))
	}
	if len(res.userIDs) > 0 {
		attrs = append(attrs, slog.Any("user_ids", res.userIDs))
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("error", res.err.Error()))
	}
	h.logger.LogAttrs(ctx, level, "wacht webhook", attrs...)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
