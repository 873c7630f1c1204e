// Package webhook receives Wacht's webhooks: it verifies their Standard
// Webhooks signatures, drops duplicates, and hands each event, with the
// entity its payload carries, to an [Applier].
package webhook

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/lograte"
)

// Defaults of [Config].
const (
	// DefaultTolerance is how far in the future webhook-timestamp may be.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes bounds a request body. Wacht's largest
	// delivery is a user event carrying the user's details, metadata
	// included: a few KiB, tens at most.
	DefaultMaxBodyBytes = 256 << 10
	// DefaultMaxConcurrent bounds the deliveries handled at once.
	DefaultMaxConcurrent = 16
)

// Config configures a [Handler].
type Config struct {
	// Secret is the endpoint's signing secret, "whsec_" and the standard
	// base64 of the key. Empty means webhooks are not configured: the
	// handler then answers every request 503, so that Wacht keeps the
	// deliveries and retries them, and Applier and Deduper may be nil.
	Secret string
	// Applier receives the events. Required with a Secret.
	Applier Applier
	// Deduper remembers handled deliveries. Required with a Secret.
	Deduper Deduper
	// MaxAge is how old webhook-timestamp may be. Wacht signs a delivery
	// once, when it is queued, and its retries keep that timestamp, so
	// this is how late a retry is still accepted. Zero means the
	// Deduper's retention (see [Retainer]), or [DefaultRetention]; it
	// may not exceed that retention, so that every delivery still
	// accepted is one the Deduper remembers.
	MaxAge time.Duration
	// Tolerance is how far in the future webhook-timestamp may be, for
	// clock skew; zero means [DefaultTolerance].
	Tolerance time.Duration
	// MaxBodyBytes bounds a request body; zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// MaxConcurrent bounds the deliveries read and handled at once; the
	// next ones are answered 503, which Wacht retries. Zero means
	// [DefaultMaxConcurrent].
	MaxConcurrent int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives one record per request; nil discards them. The
	// secret, the signatures and the body are never logged. Requests not
	// shown to come from Wacht, which anyone can send by the thousand, are
	// logged with a limit: the first [RefusalLogBurst] of every
	// [RefusalLogWindow], then one summary with their counts by outcome.
	// The Observer counts every one.
	Logger *slog.Logger
	// Observer is told of every request, for metrics; nil means none.
	Observer Observer
}

// Handler is the http.Handler of POST /webhooks/wacht. It is safe for
// concurrent use.
type Handler struct {
	key          []byte // nil when not configured
	applier      Applier
	deduper      Deduper
	maxAge       time.Duration
	tolerance    time.Duration
	maxBodyBytes int64
	slots        chan struct{}
	now          func() time.Time
	logger       *slog.Logger
	refusals     *lograte.Limiter
	observer     Observer
}

// Bounds of the log lines of unverified requests.
const (
	RefusalLogBurst  = 20
	RefusalLogWindow = 10 * time.Second
)

// NewHandler checks cfg, decodes its secret once and returns the handler.
// It fails with [ErrInvalidSecret] for a secret that is set but malformed.
func NewHandler(cfg Config) (*Handler, error) {
	h := &Handler{
		applier:      cfg.Applier,
		deduper:      cfg.Deduper,
		maxAge:       cfg.MaxAge,
		tolerance:    cfg.Tolerance,
		maxBodyBytes: cfg.MaxBodyBytes,
		now:          cfg.Now,
		logger:       cfg.Logger,
		observer:     cfg.Observer,
	}
	if cfg.Secret != "" {
		key, err := DecodeSecret(cfg.Secret)
		if err != nil {
			return nil, fmt.Errorf("new webhook handler: %w", err)
		}
		if cfg.Applier == nil || cfg.Deduper == nil {
			return nil, errors.New("new webhook handler: an Applier and a Deduper are required")
		}
		h.key = key
	}
	switch {
	case h.tolerance < 0:
		return nil, errors.New("new webhook handler: negative Tolerance")
	case h.tolerance == 0:
		h.tolerance = DefaultTolerance
	}
	retention := DefaultRetention
	if r, ok := cfg.Deduper.(Retainer); ok {
		retention = r.Retention()
	}
	switch {
	case h.maxAge < 0:
		return nil, errors.New("new webhook handler: negative MaxAge")
	case h.maxAge == 0:
		h.maxAge = retention
	case h.maxAge > retention && cfg.Deduper != nil:
		return nil, fmt.Errorf("new webhook handler: MaxAge %v exceeds the de-duplication retention %v", h.maxAge, retention)
	}
	switch {
	case cfg.MaxConcurrent < 0:
		return nil, errors.New("new webhook handler: negative MaxConcurrent")
	case cfg.MaxConcurrent == 0:
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	h.slots = make(chan struct{}, cfg.MaxConcurrent)
	switch {
	case h.maxBodyBytes < 0:
		return nil, errors.New("new webhook handler: negative MaxBodyBytes")
	case h.maxBodyBytes == 0:
		h.maxBodyBytes = DefaultMaxBodyBytes
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.observer == nil {
		h.observer = nopObserver{}
	}
	h.refusals = lograte.New(h.logger, "wacht webhook refusals not logged", RefusalLogBurst, RefusalLogWindow)
	return h, nil
}

// ServeHTTP handles one delivery. It answers 200 "{}" for a handled,
// duplicate or ignored event; 405 for another method than POST; 503 when
// no secret is configured or too many deliveries are being handled;
// 400 for missing headers, a malformed or stale timestamp or an authentic body that is not Wacht's envelope; 401 for a
// bad signature; 413 for a body over the limit; and 500 when the
// delivery could not be checked against earlier ones or applying it
// failed, so that Wacht retries it. Nothing is applied or recorded
// unless the signature and the timestamp are valid.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, r, result{status: http.StatusMethodNotAllowed, outcome: OutcomeMethodNotAllowed})
		return
	}
	if h.key == nil {
		h.reply(w, r, result{status: http.StatusServiceUnavailable, outcome: OutcomeNotConfigured})
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		h.reply(w, r, result{status: http.StatusServiceUnavailable, outcome: OutcomeBusy})
		return
	}
	msgID := r.Header.Get("webhook-id")
	timestamp := r.Header.Get("webhook-timestamp")
	signatures := strings.Join(r.Header.Values("webhook-signature"), " ")
	if msgID == "" || timestamp == "" || strings.TrimSpace(signatures) == "" {
		h.reply(w, r, result{status: http.StatusBadRequest, outcome: OutcomeMissingHeaders, msgID: msgID})
		return
	}
	body, res, ok := h.readBody(w, r)
	if !ok {
		res.msgID = msgID
		h.reply(w, r, res)
		return
	}
	if err := Verify(h.key, msgID, timestamp, body, signatures, h.now(), h.maxAge, h.tolerance); err != nil {
		h.reply(w, r, verifyFailure(err, msgID))
		return
	}
	ev, err := parseEvent(body)
	if err != nil {
		h.reply(w, r, result{status: http.StatusBadRequest, outcome: OutcomeBadPayload, msgID: msgID, verified: true, err: err})
		return
	}
	h.reply(w, r, h.handle(r, msgID, ev))
}

// readBody reads the body within the size limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, result, bool) {
	if r.ContentLength > h.maxBodyBytes {
		return nil, result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge}, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, result{status: http.StatusRequestEntityTooLarge, outcome: OutcomeTooLarge}, false
		}
		return nil, result{status: http.StatusBadRequest, outcome: OutcomeReadFailed, err: err}, false
	}
	return body, result{}, true
}

// verifyFailure maps an error of [Verify] to the answer.
func verifyFailure(err error, msgID string) result {
	res := result{status: http.StatusBadRequest, msgID: msgID, err: err}
	switch {
	case errors.Is(err, ErrBadSignature):
		res.status, res.outcome = http.StatusUnauthorized, OutcomeBadSignature
	case errors.Is(err, ErrStaleTimestamp):
		res.outcome = OutcomeStaleTimestamp
	case errors.Is(err, ErrInvalidTimestamp):
		res.outcome = OutcomeInvalidTimestamp
	default:
		res.outcome = OutcomeMissingHeaders
	}
	return res
}

// handle acts on an authentic event: it skips a delivery already handled,
// applies it, then records the delivery.
func (h *Handler) handle(r *http.Request, msgID string, ev event) result {
	ctx := r.Context()
	res := result{status: http.StatusOK, msgID: msgID, eventType: ev.Type, verified: true}
	seen, err := h.deduper.Seen(ctx, msgID)
	if err != nil {
		res.status, res.outcome, res.err = http.StatusInternalServerError, OutcomeDedupeFailed, err
		return res
	}
	if seen {
		res.outcome = OutcomeDuplicate
		return res
	}
	userIDs, err := dispatch(ctx, h.applier, ev)
	res.userIDs = userIDs
	switch {
	case errors.Is(err, errNoUserID):
		// Retrying cannot add the missing id; acknowledge.
		res.outcome, res.err = OutcomeNoUserID, err
	case err != nil:
		res.status, res.outcome, res.err = http.StatusInternalServerError, OutcomeInvalidateFailed, err
		return res
	case actionFor(ev.Type) == actionNone:
		res.outcome = OutcomeIgnored
	default:
		res.outcome = OutcomeHandled
	}
	if err := h.deduper.Record(ctx, msgID, h.now()); err != nil {
		// The event is applied; a redelivery would only repeat it.
		h.logger.LogAttrs(ctx, slog.LevelWarn, "webhook delivery not recorded",
			slog.String("webhook_id", msgID), slog.String("error", err.Error()))
	}
	return res
}
