package wachtclient

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Frontend API header and cookie names used by the token exchange.
const (
	// SessionCookie is the Frontend API's long-lived session cookie.
	SessionCookie = "__session"
	// DevSessionCookie holds a development deployment's session in the
	// browser.
	DevSessionCookie = "__dev_session__"
	// DevSessionHeader carries a development deployment's session.
	DevSessionHeader = "X-Development-Session"
	// ForwardedForHeader tells the Frontend API the end user's address.
	ForwardedForHeader = "X-Wacht-Forwarded-For"
)

// SessionTokenRequest asks the Frontend API to exchange a session for a
// short-lived session token. Session is a secret: formatting or logging a
// SessionTokenRequest prints [REDACTED] for it.
type SessionTokenRequest struct {
	// Session is the value of the __session cookie or, with Development,
	// the development session.
	Session string
	// Development sends Session as a development deployment's session
	// (the X-Development-Session header) instead of the __session cookie.
	Development bool
	// ForwardedFor is the end user's IP address, sent as
	// X-Wacht-Forwarded-For; Wacht's exchange limits count per address
	// pair, so leaving it out makes every end user share one limit.
	ForwardedFor netip.Addr
}

// String returns the request with its session redacted.
func (r SessionTokenRequest) String() string {
	return fmt.Sprintf("{Session:%s Development:%t ForwardedFor:%s}", redactedText, r.Development, r.ForwardedFor)
}

// GoString returns the request with its session redacted.
func (r SessionTokenRequest) GoString() string { return r.String() }

// Format implements fmt.Formatter so that no verb prints the session.
func (r SessionTokenRequest) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// LogValue implements slog.LogValuer; the session is redacted.
func (r SessionTokenRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("session", redactedText),
		slog.Bool("development", r.Development),
		slog.String("forwarded_for", r.ForwardedFor.String()),
	)
}

// SessionToken is a session token minted by the Frontend API.
type SessionToken struct {
	// Token is the compact JWS; it is a credential.
	Token string
	// Expires is when the token expires, as the Frontend API reports it.
	Expires time.Time
}

// sessionTokenBody is the Frontend API's envelope around the token.
type sessionTokenBody struct {
	Data *struct {
		Token   string `json:"token"`
		Expires int64  `json:"expires"` // Unix milliseconds
	} `json:"data"`
}

// ExchangeSessionToken calls the Frontend API's GET /session/token with a
// session, as Wacht's Next.js middleware does, and returns the minted
// session token (not yet verified). It needs FrontendURL, sends no
// Authorization header and does not use the Backend API budget. It is
// sent once, never retried: the Frontend API limits exchanges (30 a
// minute per session, 10 per address pair) and the caller decides when to
// ask again. A session the Frontend API does not accept wraps
// ErrUnauthorized (401) or ErrForbidden (403); over its limits, the error
// wraps ErrRateLimited. The session never appears in an error.
func (c *Client) ExchangeSessionToken(ctx context.Context, req SessionTokenRequest) (*SessionToken, error) {
	if req.Session == "" {
		return nil, fmt.Errorf("exchange session token: %w", invalidInput("empty session"))
	}
	if !validHeaderValue(req.Session) || strings.ContainsAny(req.Session, " \";,\\") {
		return nil, fmt.Errorf("exchange session token: %w", invalidInput("session holds characters not allowed in a header"))
	}
	h := http.Header{}
	if req.Development {
		h.Set(DevSessionHeader, req.Session)
	} else {
		h.Set("Cookie", SessionCookie+"="+req.Session)
	}
	if req.ForwardedFor.IsValid() {
		h.Set(ForwardedForHeader, req.ForwardedFor.Unmap().String())
	}
	r := request{
		target: frontendAPI, method: http.MethodGet, route: "GET /session/token", path: "/session/token",
		idempotent: true, once: true, header: h, secrets: []string{req.Session},
	}
	var body sessionTokenBody
	if err := c.do(ctx, r, &body); err != nil {
		return nil, fmt.Errorf("exchange session token: %w", err)
	}
	if body.Data == nil || body.Data.Token == "" || body.Data.Expires <= 0 {
		return nil, fmt.Errorf("exchange session token: %w: no token or expiry", ErrInvalidResponse)
	}
	return &SessionToken{Token: body.Data.Token, Expires: time.UnixMilli(body.Data.Expires)}, nil
}
