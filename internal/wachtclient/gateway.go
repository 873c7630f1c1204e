package wachtclient

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
)

// Principal types accepted by the gateway.
const (
	PrincipalAPIKey           = "api_key"
	PrincipalOAuthAccessToken = "oauth_access_token"
)

// Deny reasons the gateway reports.
const (
	ReasonPermissionDenied = "permission_denied"
	ReasonRateLimited      = "rate_limited"
)

// Principal is the credential the gateway checks. Value is a secret:
// formatting or logging a Principal prints [REDACTED] for it.
type Principal struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type redactedPrincipal Principal

func (p Principal) redacted() redactedPrincipal {
	r := redactedPrincipal(p)
	if r.Value != "" {
		r.Value = redactedText
	}
	return r
}

// String returns the principal with its value redacted.
func (p Principal) String() string { return fmt.Sprintf("%+v", p.redacted()) }

// GoString returns the principal with its value redacted.
func (p Principal) GoString() string { return fmt.Sprintf("%#v", p.redacted()) }

// Format implements fmt.Formatter so that no verb prints the value.
func (p Principal) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), p.redacted())
}

// LogValue implements slog.LogValuer; the value is redacted.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", p.Type), slog.String("value", p.redacted().Value))
}

// AuthzCheckRequest is the body of the gateway's POST /v1/authz/check. The
// gateway refuses unknown fields, so optional fields are left out when
// empty.
type AuthzCheckRequest struct {
	Principal Principal `json:"principal"`
	// Resource is the request path; the gateway strips query and fragment.
	Resource string `json:"resource"`
	// Method is one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
	Method              string   `json:"method"`
	ClientIP            string   `json:"client_ip,omitempty"`
	UserAgent           string   `json:"user_agent,omitempty"`
	RequiredPermissions []string `json:"required_permissions,omitempty"`
}

// LogValue implements slog.LogValuer; the principal's value is redacted.
func (r AuthzCheckRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("principal", r.Principal),
		slog.String("resource", r.Resource),
		slog.String("method", r.Method),
		slog.Any("required_permissions", r.RequiredPermissions),
	)
}

// AuthzCheckResponse is the gateway's verdict. A denial is Allowed false
// with a Reason, not an error. Nullable strings are "" when null.
type AuthzCheckResponse struct {
	RequestID   string           `json:"request_id"`
	Allowed     bool             `json:"allowed"`
	Reason      string           `json:"reason"`
	BlockedRule string           `json:"blocked_rule"`
	Identity    *AuthzIdentity   `json:"identity"`
	Permissions []string         `json:"permissions"`
	Metadata    json.RawMessage  `json:"metadata"`
	RateLimits  []AuthzRateLimit `json:"rate_limits"`
	// RetryAfter is in milliseconds; 0 when null.
	RetryAfter int64             `json:"retry_after"`
	Headers    map[string]string `json:"headers"`
}

// AuthzIdentity is the key (or token) the gateway recognised. Optional ids
// are "" when left out.
type AuthzIdentity struct {
	KeyID                    ID     `json:"key_id"`
	DeploymentID             ID     `json:"deployment_id"`
	AppSlug                  string `json:"app_slug"`
	KeyName                  string `json:"key_name"`
	OwnerUserID              ID     `json:"owner_user_id,omitempty"`
	OrganizationID           ID     `json:"organization_id,omitempty"`
	WorkspaceID              ID     `json:"workspace_id,omitempty"`
	OrganizationMembershipID ID     `json:"organization_membership_id,omitempty"`
	WorkspaceMembershipID    ID     `json:"workspace_membership_id,omitempty"`
}

// AuthzRateLimit is the state of one rate-limit rule after the check.
type AuthzRateLimit struct {
	Rule      string `json:"rule"`
	Remaining int64  `json:"remaining"`
	Limit     int64  `json:"limit"`
}

// GatewayMethods are the methods the Gateway checks requests of, in
// upper case.
var GatewayMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodHead, http.MethodOptions,
}

// IsGatewayMethod reports whether the Gateway checks requests of method
// (upper case).
func IsGatewayMethod(method string) bool { return slices.Contains(GatewayMethods, method) }

// CheckAuthz asks the gateway whether the principal may call method on
// resource. It sends no Authorization header and does not use the Backend
// API budget. An unknown, revoked, expired or malformed key is answered 401
// and wraps ErrUnauthorized.
func (c *Client) CheckAuthz(ctx context.Context, req AuthzCheckRequest) (*AuthzCheckResponse, error) {
	switch {
	case req.Principal.Type != PrincipalAPIKey && req.Principal.Type != PrincipalOAuthAccessToken:
		return nil, fmt.Errorf("check authz: %w", invalidInput("unknown principal type %q", req.Principal.Type))
	case req.Principal.Value == "":
		return nil, fmt.Errorf("check authz: %w", invalidInput("empty principal value"))
	case !IsGatewayMethod(req.Method):
		return nil, fmt.Errorf("check authz: %w", invalidInput("unsupported method %q", req.Method))
	case req.Resource == "":
		return nil, fmt.Errorf("check authz: %w", invalidInput("empty resource"))
	}
	r := request{
		target: gateway, method: http.MethodPost, route: "POST /v1/authz/check", path: "/v1/authz/check", body: req,
		idempotent: true, secrets: []string{req.Principal.Value},
	}
	var resp AuthzCheckResponse
	if err := c.do(ctx, r, &resp); err != nil {
		return nil, fmt.Errorf("check authz: %w", err)
	}
	return &resp, nil
}
