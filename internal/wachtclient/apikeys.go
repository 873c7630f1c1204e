package wachtclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// APIKey is an API-auth key as Wacht lists it; the secret is never part of
// it. Optional ids are "" when Wacht leaves them out.
type APIKey struct {
	ID                       ID              `json:"id"`
	DeploymentID             ID              `json:"deployment_id"`
	AppSlug                  string          `json:"app_slug"`
	Name                     string          `json:"name"`
	KeyPrefix                string          `json:"key_prefix"`
	KeySuffix                string          `json:"key_suffix"`
	Permissions              []string        `json:"permissions"`
	Metadata                 json.RawMessage `json:"metadata"`
	RateLimits               []RateLimit     `json:"rate_limits"`
	RateLimitSchemeSlug      string          `json:"rate_limit_scheme_slug,omitempty"`
	OwnerUserID              ID              `json:"owner_user_id,omitempty"`
	OrganizationID           ID              `json:"organization_id,omitempty"`
	WorkspaceID              ID              `json:"workspace_id,omitempty"`
	OrganizationMembershipID ID              `json:"organization_membership_id,omitempty"`
	WorkspaceMembershipID    ID              `json:"workspace_membership_id,omitempty"`
	OrgRolePermissions       []string        `json:"org_role_permissions"`
	WorkspaceRolePermissions []string        `json:"workspace_role_permissions"`
	ExpiresAt                *time.Time      `json:"expires_at"`
	LastUsedAt               *time.Time      `json:"last_used_at"`
	RevokedAt                *time.Time      `json:"revoked_at"`
	RevokedReason            *string         `json:"revoked_reason"`
	IsActive                 bool            `json:"is_active"`
	CreatedAt                time.Time       `json:"created_at"`
	UpdatedAt                time.Time       `json:"updated_at"`
}

// RateLimit is one rate-limit rule of an API-auth app or key.
type RateLimit struct {
	Unit        string   `json:"unit"`
	Duration    int32    `json:"duration"`
	MaxRequests int32    `json:"max_requests"`
	Mode        string   `json:"mode,omitempty"`
	Endpoints   []string `json:"endpoints,omitempty"`
	Priority    int32    `json:"priority"`
}

// APIKeyWithSecret is a new key with its full secret, which Wacht shows only
// on create and rotate. Formatting, logging or JSON-encoding it prints
// [REDACTED] for the secret; read the Secret field to hand it on.
type APIKeyWithSecret struct {
	APIKey
	Secret string `json:"secret"`
}

// redactedAPIKeyWithSecret is APIKeyWithSecret without its methods.
type redactedAPIKeyWithSecret APIKeyWithSecret

func (k APIKeyWithSecret) redacted() redactedAPIKeyWithSecret {
	r := redactedAPIKeyWithSecret(k)
	if r.Secret != "" {
		r.Secret = redactedText
	}
	return r
}

// String returns the key with its secret redacted.
func (k APIKeyWithSecret) String() string { return fmt.Sprintf("%+v", k.redacted()) }

// GoString returns the key with its secret redacted.
func (k APIKeyWithSecret) GoString() string { return fmt.Sprintf("%#v", k.redacted()) }

// Format implements fmt.Formatter so that no verb prints the secret.
func (k APIKeyWithSecret) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), k.redacted())
}

// LogValue implements slog.LogValuer; the secret is redacted.
func (k APIKeyWithSecret) LogValue() slog.Value {
	secret := ""
	if k.Secret != "" {
		secret = redactedText
	}
	return slog.GroupValue(
		slog.String("id", string(k.ID)),
		slog.String("app_slug", k.AppSlug),
		slog.String("name", k.Name),
		slog.String("key_prefix", k.KeyPrefix),
		slog.String("key_suffix", k.KeySuffix),
		slog.String("secret", secret),
	)
}

// MarshalJSON encodes the key with its secret redacted.
func (k APIKeyWithSecret) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.redacted())
}

// CreateAPIKeyRequest is the body of POST /api-auth/apps/{slug}/keys.
type CreateAPIKeyRequest struct {
	// Name is required.
	Name string
	// Permissions granted to the key; nil leaves them out.
	Permissions []string
	// Metadata must be a JSON object when set.
	Metadata json.RawMessage
	// ExpiresAt, when set, is sent in UTC.
	ExpiresAt *time.Time
}

type createAPIKeyBody struct {
	Name        string          `json:"name"`
	Permissions []string        `json:"permissions,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
}

type apiKeyList struct {
	Keys []APIKey `json:"keys"`
}

type revokeAPIKeyBody struct {
	Reason string `json:"reason,omitempty"`
}

// ListAPIKeys returns the keys of an API-auth app, inactive (revoked or
// expired) ones too when includeInactive is set. Wacht does not paginate it.
func (c *Client) ListAPIKeys(ctx context.Context, appSlug string, includeInactive bool) ([]APIKey, error) {
	slug, err := slugSegment(appSlug)
	if err != nil {
		return nil, fmt.Errorf("list api keys of app %q: %w", appSlug, err)
	}
	q := url.Values{"include_inactive": {strconv.FormatBool(includeInactive)}}
	var list apiKeyList
	err = c.do(ctx, request{target: backendAPI, method: http.MethodGet, route: "GET /api-auth/apps/{app_slug}/keys", path: "/api-auth/apps/" + slug + "/keys", query: q, idempotent: true}, &list)
	if err == nil && list.Keys == nil {
		err = fmt.Errorf("%w: list without keys", ErrInvalidResponse)
	}
	if err != nil {
		return nil, fmt.Errorf("list api keys of app %q: %w", appSlug, err)
	}
	return list.Keys, nil
}

// CreateAPIKey creates a key in an API-auth app and returns it with its
// secret. It is never retried; a failure after the request may have reached
// Wacht wraps ErrOutcomeUnknown.
func (c *Client) CreateAPIKey(ctx context.Context, appSlug string, req CreateAPIKeyRequest) (*APIKeyWithSecret, error) {
	slug, err := slugSegment(appSlug)
	if err != nil {
		return nil, fmt.Errorf("create api key in app %q: %w", appSlug, err)
	}
	body, err := req.body()
	if err != nil {
		return nil, fmt.Errorf("create api key in app %q: %w", appSlug, err)
	}
	key, err := c.keyWithSecret(ctx, request{target: backendAPI, method: http.MethodPost, route: "POST /api-auth/apps/{app_slug}/keys", path: "/api-auth/apps/" + slug + "/keys", body: body})
	if err != nil {
		return nil, fmt.Errorf("create api key in app %q: %w", appSlug, err)
	}
	return key, nil
}

// RevokeAPIKey revokes a key; reason is optional. An unknown or already
// revoked key wraps ErrNotFound. It is never retried; a failure after the
// request may have reached Wacht wraps ErrOutcomeUnknown.
func (c *Client) RevokeAPIKey(ctx context.Context, appSlug, keyID, reason string) error {
	path, err := keyPath(appSlug, keyID, "revoke")
	if err != nil {
		return fmt.Errorf("revoke api key %q of app %q: %w", keyID, appSlug, err)
	}
	// Wacht requires a JSON body, at least {}.
	r := request{target: backendAPI, method: http.MethodPost, route: "POST /api-auth/apps/{app_slug}/keys/{key_id}/revoke", path: path, body: revokeAPIKeyBody{Reason: reason}}
	if err := c.do(ctx, r, nil); err != nil {
		return fmt.Errorf("revoke api key %s of app %q: %w", keyID, appSlug, err)
	}
	return nil
}

// RotateAPIKey replaces a key by a new one (new id, same name, permissions,
// metadata and expiry) and revokes the old one at once. It is never
// retried; a failure after the request may have reached Wacht wraps
// ErrOutcomeUnknown.
func (c *Client) RotateAPIKey(ctx context.Context, appSlug, keyID string) (*APIKeyWithSecret, error) {
	path, err := keyPath(appSlug, keyID, "rotate")
	if err != nil {
		return nil, fmt.Errorf("rotate api key %q of app %q: %w", keyID, appSlug, err)
	}
	key, err := c.keyWithSecret(ctx, request{target: backendAPI, method: http.MethodPost, route: "POST /api-auth/apps/{app_slug}/keys/{key_id}/rotate", path: path})
	if err != nil {
		return nil, fmt.Errorf("rotate api key %s of app %q: %w", keyID, appSlug, err)
	}
	return key, nil
}

func (c *Client) keyWithSecret(ctx context.Context, r request) (*APIKeyWithSecret, error) {
	var key APIKeyWithSecret
	if err := c.do(ctx, r, &key); err != nil {
		return nil, err
	}
	if key.ID == "" || key.Secret == "" {
		return nil, &outcomeUnknownError{err: fmt.Errorf("%w: key without id or secret", ErrInvalidResponse)}
	}
	return &key, nil
}

func keyPath(appSlug, keyID, action string) (string, error) {
	slug, err := slugSegment(appSlug)
	if err != nil {
		return "", err
	}
	id, err := idSegment("key id", keyID)
	if err != nil {
		return "", err
	}
	return "/api-auth/apps/" + slug + "/keys/" + id + "/" + action, nil
}

func (r CreateAPIKeyRequest) body() (createAPIKeyBody, error) {
	if r.Name == "" {
		return createAPIKeyBody{}, invalidInput("key name is required")
	}
	b := createAPIKeyBody{Name: r.Name, Permissions: r.Permissions}
	if len(r.Metadata) > 0 {
		trimmed := bytes.TrimSpace(r.Metadata)
		if !json.Valid(trimmed) || trimmed[0] != '{' {
			return createAPIKeyBody{}, invalidInput("key metadata must be a JSON object")
		}
		b.Metadata = trimmed
	}
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC()
		b.ExpiresAt = &t
	}
	return b, nil
}
