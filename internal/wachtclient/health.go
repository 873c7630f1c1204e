package wachtclient

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// HealthStatus is the Backend API's GET /health answer.
type HealthStatus struct {
	Status    string    `json:"status"`
	Timestamp time.Time `json:"timestamp"`
}

// StatusHealthy is the status a healthy Backend API reports.
const StatusHealthy = "healthy"

// Health checks that the Backend API answers GET /health (no auth, no
// budget) with status "healthy"; any other status wraps ErrUnavailable.
func (c *Client) Health(ctx context.Context) error {
	st, err := c.CheckHealth(ctx)
	if err != nil {
		return err
	}
	if st.Status != StatusHealthy {
		return fmt.Errorf("check health: %w: status %q", ErrUnavailable, st.Status)
	}
	return nil
}

// CheckHealth returns the Backend API's GET /health answer.
func (c *Client) CheckHealth(ctx context.Context) (*HealthStatus, error) {
	var st HealthStatus
	if err := c.do(ctx, request{target: backendOpen, method: http.MethodGet, route: "GET /health", path: "/health", idempotent: true}, &st); err != nil {
		return nil, fmt.Errorf("check health: %w", err)
	}
	return &st, nil
}

// FetchJWKS returns the raw JSON key set served at
// <FrontendURL>/.well-known/jwks.json. It needs FrontendURL (else it wraps
// ErrNotConfigured), sends no Authorization header and does not use the
// Backend API budget. A body that is not JSON wraps ErrInvalidResponse.
func (c *Client) FetchJWKS(ctx context.Context) ([]byte, error) {
	var raw []byte
	if err := c.do(ctx, request{target: frontendAPI, method: http.MethodGet, route: "GET /.well-known/jwks.json", path: "/.well-known/jwks.json", idempotent: true}, &raw); err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	return raw, nil
}
