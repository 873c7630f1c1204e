package wachtfake

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// webhookEndpoint is where the emulator delivers the events of its users
// and sessions.
type webhookEndpoint struct {
	url, secret string
}

// pendingEvent is an event raised under the Server's lock, delivered
// once the lock is released.
type pendingEvent struct {
	eventType string
	data      any
}

// WebhookStats counts the deliveries to the endpoint set with
// [Server.SetWebhookEndpoint].
type WebhookStats struct {
	// Delivered counts deliveries answered 2xx.
	Delivered int
	// Failed counts the others: an error status or no answer.
	Failed int
	// LastFailure describes the latest failure, "" if none.
	LastFailure string
}

// SetWebhookEndpoint makes the emulator deliver events to url, signed
// with secret ("whsec_" and base64), as Wacht delivers them to the
// endpoint configured in its console: user.created, user.updated and
// user.deleted when a user is added, changed or deleted, session.created
// when a sign-in is added, and session.deleted on a Frontend API sign-out
// ([Server.SignOut]). A revocation through the Backend API raises no
// event, as in Wacht. Each event is delivered once, before the call that
// raised it returns; an empty url stops deliveries.
func (s *Server) SetWebhookEndpoint(url, secret string) error {
	if url != "" {
		if _, err := SignWebhook(secret, "msg_check", s.now(), nil); err != nil {
			return fmt.Errorf("set webhook endpoint: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoint = webhookEndpoint{url: url, secret: secret}
	return nil
}

// WebhookStats returns the counts of deliveries so far.
func (s *Server) WebhookStats() WebhookStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhookStats
}

// raiseLocked queues an event for delivery when an endpoint is set.
func (s *Server) raiseLocked(eventType string, data any) {
	if s.endpoint.url != "" {
		s.pending = append(s.pending, pendingEvent{eventType, data})
	}
}

// deliverPending delivers the events raised so far, in order. It must be
// called without the lock.
func (s *Server) deliverPending() {
	s.mu.Lock()
	events, ep := s.pending, s.endpoint
	s.pending = nil
	s.mu.Unlock()
	for _, ev := range events {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		status, err := s.SendWebhook(ctx, ep.url, ep.secret, ev.eventType, ev.data)
		cancel()
		s.mu.Lock()
		switch {
		case err != nil:
			s.webhookStats.Failed++
			s.webhookStats.LastFailure = err.Error()
		case status < 200 || status > 299:
			s.webhookStats.Failed++
			s.webhookStats.LastFailure = fmt.Sprintf("%s: status %d", ev.eventType, status)
		default:
			s.webhookStats.Delivered++
		}
		s.mu.Unlock()
	}
}

// raiseUserLocked raises a user event carrying the user's details.
func (s *Server) raiseUserLocked(eventType string, u *User) {
	if s.endpoint.url == "" {
		return
	}
	data, err := s.userEventDataLocked(u)
	if err != nil {
		s.webhookStats.Failed++
		s.webhookStats.LastFailure = err.Error()
		return
	}
	s.raiseLocked(eventType, data)
}

// raiseUserDeletedLocked raises user.deleted. The user's row is gone by
// the time Wacht's worker would read its details, so data only names it.
func (s *Server) raiseUserDeletedLocked(userID string) {
	s.raiseLocked("user.deleted", map[string]any{
		"entity_id": json.Number(userID), "entity_type": "user", "id": userID,
	})
}

// raiseSessionLocked raises a session event carrying the session and its
// sign-ins that are not revoked.
func (s *Server) raiseSessionLocked(eventType, sessionID string) {
	if s.endpoint.url == "" {
		return
	}
	data, err := s.sessionEventDataLocked(sessionID)
	if err != nil {
		s.webhookStats.Failed++
		s.webhookStats.LastFailure = err.Error()
		return
	}
	s.raiseLocked(eventType, data)
}
