package wachtfake

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// authorizeBackend applies Wacht's backend_deployment_middleware: a
// case-sensitive "Bearer " prefix, the key check the Gateway would do, and
// the deployment's request budget. It writes the error and reports false
// when the request must stop.
func (s *Server) authorizeBackend(w http.ResponseWriter, r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, http.StatusUnauthorized, "Authorization header must be Bearer token")
		return false
	}
	key = strings.TrimSpace(key)
	sum := sha256.Sum256([]byte(key))
	if !validKeyFormat(key) || subtle.ConstantTimeCompare(sum[:], s.apiKeyHash[:]) != 1 {
		writeError(w, http.StatusUnauthorized, "Authentication failed")
		return false
	}
	s.mu.Lock()
	allowed, _, retryAfterMS := s.backendLimit.take(s.now())
	if !allowed {
		s.rateLimited++
	}
	s.mu.Unlock()
	if !allowed {
		// Wacht puts the Gateway's milliseconds into a message that says
		// seconds, and sends no Retry-After header.
		writeError(w, http.StatusTooManyRequests,
			fmt.Sprintf("Rate limit exceeded. Retry after %d seconds", retryAfterMS))
		return false
	}
	return true
}

// validKeyFormat is the Gateway's format check: at least 46 characters,
// the last 43 of them URL-safe base64.
func validKeyFormat(key string) bool {
	if len(key) < 46 {
		return false
	}
	for _, c := range key[len(key)-43:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
