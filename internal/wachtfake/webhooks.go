package wachtfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// webhookSecretPrefix starts every Wacht webhook signing secret.
const webhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a signing secret in Wacht's format: "whsec_"
// and the standard base64 of 32 random bytes.
func NewWebhookSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new webhook secret: %w", err)
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// SignWebhook returns the Standard Webhooks headers Wacht sends:
// webhook-id, webhook-timestamp (Unix seconds) and webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>", keyed by the secret's
// decoded bytes.
func SignWebhook(secret, msgID string, ts time.Time, body []byte) (http.Header, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("sign webhook: secret is not whsec_ and base64: %w", ErrInvalid)
	}
	unix := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + unix + "."))
	mac.Write(body)
	h := http.Header{}
	h.Set("webhook-id", msgID)
	h.Set("webhook-timestamp", unix)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return h, nil
}

// webhookEnvelope is the body Wacht's worker posts.
type webhookEnvelope struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// SendWebhook posts an event to url as Wacht's worker delivers it: body
// {"type","timestamp","data"} with the timestamp in RFC 3339 with
// milliseconds, a new "msg_<id>" webhook-id, the signature headers of
// [SignWebhook] and User-Agent Wacht-Webhook/1.0. It returns the
// response status; delivery is not retried.
func (s *Server) SendWebhook(ctx context.Context, url, secret, eventType string, data any) (int, error) {
	now := s.now()
	body, err := json.Marshal(webhookEnvelope{
		Type:      eventType,
		Timestamp: now.UTC().Format("2006-01-02T15:04:05.000Z"),
		Data:      data,
	})
	if err != nil {
		return 0, fmt.Errorf("send webhook %s: encode: %w", eventType, err)
	}
	s.mu.Lock()
	msgID := "msg_" + s.newIDLocked()
	s.mu.Unlock()
	headers, err := SignWebhook(secret, msgID, now, body)
	if err != nil {
		return 0, fmt.Errorf("send webhook %s: %w", eventType, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("send webhook %s: %w", eventType, err)
	}
	req.Header = headers
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Wacht-Webhook/1.0")
	resp, err := s.webhookClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send webhook %s: %w", eventType, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// UserEventData returns the data of a user.* event as Wacht's worker
// builds it: entity_id (a JSON number), entity_type "user", and the
// user's UserDetails merged in.
func (s *Server) UserEventData(userID string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return nil, fmt.Errorf("user event data %s: %w", userID, ErrNotFound)
	}
	return s.userEventDataLocked(u)
}

// userEventDataLocked is [Server.UserEventData] for a stored user.
func (s *Server) userEventDataLocked(u *User) (map[string]any, error) {
	out, err := toEventMap(s.userDetailsLocked(u), "user event data "+u.ID)
	if err != nil {
		return nil, err
	}
	out["entity_id"] = json.Number(u.ID)
	out["entity_type"] = "user"
	return out, nil
}

// sessionEventJSON is the data of a session.* event: the session (a
// browser session, the token's sid) and its sign-ins.
type sessionEventJSON struct {
	EntityID       json.Number  `json:"entity_id"`
	EntityType     string       `json:"entity_type"`
	ID             string       `json:"id"`
	CreatedAt      wireTime     `json:"created_at"`
	UpdatedAt      wireTime     `json:"updated_at"`
	ActiveSigninID *string      `json:"active_signin_id"`
	Signins        []signInJSON `json:"signins"`
}

// SessionEventData returns the data of a session.* event about the
// session sessionID (a token's sid) as Wacht's worker builds it
// (GetSessionWithSignInsQuery): entity_id (a JSON number), entity_type
// "session", the session's id and times, active_signin_id (null once
// every sign-in of the session is revoked) and the sign-ins of the
// session that are not revoked. A sign-out's session.deleted therefore
// no longer lists the sign-in it ended, nor, if it was the only one, any
// user.
func (s *Server) SessionEventData(sessionID string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionEventDataLocked(sessionID)
}

// sessionEventDataLocked is [Server.SessionEventData]; s.mu is held.
func (s *Server) sessionEventDataLocked(sessionID string) (map[string]any, error) {
	var sis []*SignIn
	for _, si := range s.signIns {
		if si.SessionID == sessionID {
			sis = append(sis, si)
		}
	}
	if len(sis) == 0 {
		return nil, fmt.Errorf("session event data %s: %w", sessionID, ErrNotFound)
	}
	slices.SortFunc(sis, func(a, b *SignIn) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return compareIDs(a.ID, b.ID)
	})
	// The session's row changes whenever one of its sign-ins does, a
	// revocation included.
	ev := sessionEventJSON{
		EntityID: json.Number(sessionID), EntityType: "session", ID: sessionID,
		CreatedAt: wireTime(sis[0].CreatedAt), UpdatedAt: wireTime(sis[0].UpdatedAt),
		Signins: []signInJSON{},
	}
	for _, si := range sis {
		if si.UpdatedAt.After(time.Time(ev.UpdatedAt)) {
			ev.UpdatedAt = wireTime(si.UpdatedAt)
		}
		if !si.RevokedAt.IsZero() {
			continue
		}
		ev.Signins = append(ev.Signins, signInToJSON(si))
		if ev.ActiveSigninID == nil {
			id := si.ID
			ev.ActiveSigninID = &id
		}
	}
	return toEventMap(ev, "session event data "+sessionID)
}

// toEventMap turns an event's data into the map that SendWebhook sends,
// numbers kept exact.
func toEventMap(v any, what string) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
