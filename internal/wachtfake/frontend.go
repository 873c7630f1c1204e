package wachtfake

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// The Frontend API's token exchange limits (frontend-api
// middleware/session_token_rate_limit.go), each per minute.
const (
	// ExchangesPerAddressPair limits exchanges per (caller address,
	// X-Wacht-Forwarded-For address).
	ExchangesPerAddressPair = 10
	// ExchangesPerCaller limits exchanges per caller address.
	ExchangesPerCaller = 2000
	// ExchangesPerSession limits exchanges per session.
	ExchangesPerSession = 30
)

// Names the Frontend API reads a session from.
const (
	sessionCookieName    = "__session"
	devSessionCookieName = "__dev_session__"
	devSessionHeader     = "X-Development-Session"
	devSessionQuery      = "__dev_session__"
	forwardedForHeader   = "X-Wacht-Forwarded-For"
)

// frontendSession is a browser session the Frontend API knows by its
// cookie (or, in a development deployment, its development session).
type frontendSession struct {
	claims      TokenClaims
	development bool
}

// frontendEnvelope is the Frontend API's response shape
// (frontend-api handler/validator.go SendResponse).
type frontendEnvelope struct {
	Data    any        `json:"data"`
	Errors  []apiError `json:"errors"`
	Message string     `json:"message"`
	Session any        `json:"session"`
	Status  int        `json:"status"`
}

type sessionTokenJSON struct {
	Token   string `json:"token"`
	Expires int64  `json:"expires"` // Unix milliseconds
}

// IssueSessionCookie returns the value of a __session cookie for the
// sign-in whose session is c.SessionID: GET /session/token with it mints
// a token with c's claims (IssuedAt and Lifetime aside) for as long as the
// sign-in is active. The sign-in must exist and belong to c.UserID.
func (s *Server) IssueSessionCookie(c TokenClaims) (string, error) {
	return s.issueFrontendSession(c, false)
}

// IssueDevSession is IssueSessionCookie for a development deployment: the
// value travels in the X-Development-Session header, the __dev_session__
// query parameter or the __dev_session__ cookie.
func (s *Server) IssueDevSession(c TokenClaims) (string, error) {
	return s.issueFrontendSession(c, true)
}

func (s *Server) issueFrontendSession(c TokenClaims, development bool) (string, error) {
	if c.UserID == "" || c.SessionID == "" {
		return "", fmt.Errorf("issue session: user id and session id are required: %w", ErrInvalid)
	}
	md, err := cloneMap(c.Metadata)
	if err != nil {
		return "", fmt.Errorf("issue session: %w", err)
	}
	c.Metadata = md
	prefix := "sess"
	if development {
		prefix = "dvb"
	}
	value, err := randomSecret(prefix)
	if err != nil {
		return "", fmt.Errorf("issue session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeSignInLocked(c.UserID, c.SessionID) == nil {
		return "", fmt.Errorf("issue session: no active sign-in of user %s in session %s: %w", c.UserID, c.SessionID, ErrNotFound)
	}
	s.frontendSessions[sha256.Sum256([]byte(value))] = &frontendSession{claims: c, development: development}
	return value, nil
}

// activeSignInLocked returns the user's unrevoked, unexpired sign-in in
// the session, or nil.
func (s *Server) activeSignInLocked(userID, sessionID string) *SignIn {
	now := s.now()
	for _, si := range s.signIns {
		if si.SessionID == sessionID && si.UserID == userID && si.RevokedAt.IsZero() && si.ExpiresAt.After(now) {
			return si
		}
	}
	return nil
}

// presentedSession is a session value found in a request.
type presentedSession struct {
	value string
	dev   bool
}

// sessionFromRequestLocked finds the session a request carries: the
// __session cookie of a production deployment, or a development session
// (header, query parameter or cookie).
func (s *Server) sessionFromRequestLocked(r *http.Request) *frontendSession {
	var found []presentedSession
	if c, err := r.Cookie(sessionCookieName); err == nil && c.Value != "" {
		found = append(found, presentedSession{c.Value, false})
	}
	for _, v := range []string{r.Header.Get(devSessionHeader), r.URL.Query().Get(devSessionQuery)} {
		if v != "" {
			found = append(found, presentedSession{v, true})
		}
	}
	if c, err := r.Cookie(devSessionCookieName); err == nil && c.Value != "" {
		found = append(found, presentedSession{c.Value, true})
	}
	for _, p := range found {
		if fs, ok := s.frontendSessions[sha256.Sum256([]byte(p.value))]; ok && fs.development == p.dev {
			return fs
		}
	}
	return nil
}

// handleSessionToken serves the Frontend API's GET /session/token: the
// session's sign-in gets a fresh token from the default template, within
// the exchange limits.
func (s *Server) handleSessionToken(w http.ResponseWriter, r *http.Request, _ params) {
	caller, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		caller = r.RemoteAddr
	}
	forwarded := strings.TrimSpace(r.Header.Get(forwardedForHeader))
	now := s.now()

	s.mu.Lock()
	allowed := s.exchangeLimiterLocked("caller:"+caller, ExchangesPerCaller, now).allowed(now) &&
		s.exchangeLimiterLocked("pair:"+caller+"|"+forwarded, ExchangesPerAddressPair, now).allowed(now)
	fs := s.sessionFromRequestLocked(r)
	active := fs != nil && s.activeSignInLocked(fs.claims.UserID, fs.claims.SessionID) != nil
	if allowed && active {
		allowed = s.exchangeLimiterLocked("session:"+fs.claims.SessionID, ExchangesPerSession, now).allowed(now)
	}
	var claims TokenClaims
	if active {
		claims = fs.claims
	}
	lifetime := s.tokenLifetime
	s.mu.Unlock()

	switch {
	case !allowed:
		writeFrontendError(w, http.StatusTooManyRequests, "Too many token exchange requests, please try again later")
		return
	case !active:
		writeFrontendError(w, http.StatusUnauthorized, "No active session")
		return
	}
	claims.IssuedAt = now
	if claims.Lifetime != 0 {
		lifetime = claims.Lifetime
	}
	tok, err := s.MintToken(claims)
	if err != nil {
		writeFrontendError(w, http.StatusInternalServerError, "Something went wrong")
		return
	}
	writeJSON(w, http.StatusOK, frontendEnvelope{
		Data:    sessionTokenJSON{Token: tok, Expires: now.Add(lifetime).UnixMilli()},
		Errors:  []apiError{},
		Message: "OK",
		Status:  http.StatusOK,
	})
}

// exchangeLimiterLocked returns the one-minute limiter of an exchange
// limit bucket.
func (s *Server) exchangeLimiterLocked(bucket string, perMinute int, now time.Time) *windowLimiter {
	l, ok := s.exchangeLimiters[bucket]
	if !ok {
		l = newWindowLimiter(perMinute, time.Minute, now)
		s.exchangeLimiters[bucket] = l
	}
	return l
}

func writeFrontendError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, frontendEnvelope{
		Errors:  []apiError{{Message: message, Code: status}},
		Message: message,
		Status:  status,
	})
}
