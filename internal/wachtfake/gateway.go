package wachtfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// authzCheckRequest is the Gateway's AuthzCheckRequest, which denies
// unknown fields at both levels.
type authzCheckRequest struct {
	Principal *struct {
		Type  *string `json:"type"`
		Value *string `json:"value"`
	} `json:"principal"`
	Resource            *string  `json:"resource"`
	Method              *string  `json:"method"`
	ClientIP            *string  `json:"client_ip"`
	UserAgent           *string  `json:"user_agent"`
	RequiredPermissions []string `json:"required_permissions"`
}

// authzCheckResponse is the Gateway's AuthzCheckResponse.
type authzCheckResponse struct {
	RequestID   string            `json:"request_id"`
	Allowed     bool              `json:"allowed"`
	Reason      *string           `json:"reason"`
	BlockedRule *string           `json:"blocked_rule"`
	Identity    *authzIdentity    `json:"identity"`
	Permissions []string          `json:"permissions"`
	Metadata    map[string]any    `json:"metadata"`
	RateLimits  []rateLimitState  `json:"rate_limits"`
	RetryAfter  *uint32           `json:"retry_after"`
	Headers     map[string]string `json:"headers"`
}

type authzIdentity struct {
	KeyID                    string  `json:"key_id"`
	DeploymentID             string  `json:"deployment_id"`
	AppSlug                  string  `json:"app_slug"`
	KeyName                  string  `json:"key_name"`
	OwnerUserID              *string `json:"owner_user_id"`
	OrganizationID           *string `json:"organization_id"`
	WorkspaceID              *string `json:"workspace_id"`
	OrganizationMembershipID *string `json:"organization_membership_id"`
	WorkspaceMembershipID    *string `json:"workspace_membership_id"`
}

type rateLimitState struct {
	Rule      string `json:"rule"`
	Remaining int    `json:"remaining"`
	Limit     int    `json:"limit"`
}

// allowedMethod reports whether the Gateway accepts method.
func allowedMethod(method string) bool {
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
		return true
	default:
		return false
	}
}

func (s *Server) handleAuthzCheck(w http.ResponseWriter, r *http.Request, _ params) {
	var req authzCheckRequest
	if rej := decodeBody(r, &req, true); rej != nil {
		writeText(w, rej.status, rej.text)
		return
	}
	if req.Principal == nil || req.Principal.Type == nil || req.Principal.Value == nil ||
		req.Resource == nil || req.Method == nil ||
		(*req.Principal.Type != "api_key" && *req.Principal.Type != "oauth_access_token") {
		writeText(w, http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type")
		return
	}
	s.mu.Lock()
	requestID := "req_" + s.newIDLocked()
	s.mu.Unlock()
	method := strings.ToUpper(strings.TrimSpace(*req.Method))
	if !allowedMethod(method) {
		writeAuthzError(w, http.StatusBadRequest, requestID)
		return
	}
	resource, ok := normalizeResource(*req.Resource)
	if !ok {
		writeAuthzError(w, http.StatusBadRequest, requestID)
		return
	}
	if *req.Principal.Type == "oauth_access_token" {
		// OAuth access tokens are not emulated; none is ever valid.
		writeAuthzError(w, http.StatusUnauthorized, requestID)
		return
	}
	key := strings.TrimSpace(*req.Principal.Value)
	if key == "" || !validKeyFormat(key) {
		writeAuthzError(w, http.StatusUnauthorized, requestID)
		return
	}
	clientIP := ""
	if req.ClientIP != nil {
		clientIP = strings.TrimSpace(*req.ClientIP)
	}
	if clientIP == "" {
		clientIP = cmp.Or(strings.TrimSpace(r.Header.Get("X-Original-Client-Ip")), remoteIP(r))
	}

	s.mu.Lock()
	resp, outcome := s.checkKeyLocked(key, resource, clientIP, req.RequiredPermissions)
	s.mu.Unlock()
	switch outcome {
	case keyUnknown:
		writeText(w, http.StatusUnauthorized, "Invalid API key")
	case keyExpired:
		writeAuthzError(w, http.StatusUnauthorized, requestID)
	default:
		resp.RequestID = requestID
		writeJSON(w, http.StatusOK, resp)
	}
}

// keyOutcome is how the Gateway's key lookup ended.
type keyOutcome int

const (
	keyChecked keyOutcome = iota // the response says whether it is allowed
	keyUnknown                   // unknown, revoked, or of an inactive app
	keyExpired
)

// checkKeyLocked looks the key up and applies permissions and rate limits.
func (s *Server) checkKeyLocked(key, resource, clientIP string, required []string) (authzCheckResponse, keyOutcome) {
	sum := sha256.Sum256([]byte(key))
	rec, ok := s.keys[s.keyHash[hex.EncodeToString(sum[:])]]
	if !ok || !rec.key.IsActive {
		return authzCheckResponse{}, keyUnknown
	}
	app, ok := s.apps[rec.key.AppSlug]
	if !ok || app.Inactive {
		return authzCheckResponse{}, keyUnknown
	}
	k := rec.key
	now := s.now()
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(now) {
		return authzCheckResponse{}, keyExpired
	}

	headers := map[string]string{
		"x-wacht-key-id":        k.ID,
		"x-wacht-deployment-id": k.DeploymentID,
		"x-wacht-app-slug":      k.AppSlug,
		"x-wacht-key-name":      k.Name,
	}
	setIf(headers, "x-wacht-organization-id", k.OrganizationID)
	setIf(headers, "x-wacht-workspace-id", k.WorkspaceID)
	setIf(headers, "x-wacht-organization-membership-id", k.OrganizationMembershipID)
	setIf(headers, "x-wacht-workspace-membership-id", k.WorkspaceMembershipID)

	perms := slices.Concat(k.Permissions, k.OrgRolePermissions, k.WorkspaceRolePermissions)
	slices.Sort(perms)
	perms = nonNil(slices.Compact(perms))
	setIf(headers, "x-wacht-permissions", strings.Join(perms, ","))
	setIf(headers, "x-wacht-metadata", metadataHeader(k.Metadata))

	resp := authzCheckResponse{
		Allowed: true,
		Identity: &authzIdentity{
			KeyID:                    k.ID,
			DeploymentID:             k.DeploymentID,
			AppSlug:                  k.AppSlug,
			KeyName:                  k.Name,
			OwnerUserID:              optString(k.OwnerUserID),
			OrganizationID:           optString(k.OrganizationID),
			WorkspaceID:              optString(k.WorkspaceID),
			OrganizationMembershipID: optString(k.OrganizationMembershipID),
			WorkspaceMembershipID:    optString(k.WorkspaceMembershipID),
		},
		Permissions: perms,
		Metadata:    nonNilMap(k.Metadata),
		RateLimits:  []rateLimitState{},
		Headers:     headers,
	}

	for _, p := range required {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(perms, p) {
			resp.Allowed = false
			resp.Reason = optString("permission_denied")
			resp.BlockedRule = optString("permission_denied")
			headers["x-wacht-permission-denied"] = "true"
			return resp, keyChecked
		}
	}

	for _, rl := range s.rulesLocked(k, app, resource) {
		window, _ := windowOf(rl)
		label := windowLabel(window)
		rule := fmt.Sprintf("%d/%s", rl.MaxRequests, label)
		allowed, remaining, retry := s.limiterLocked(rl, window, k, clientIP, resource, now).take(now)
		headers["x-ratelimit-"+label+"-limit"] = strconv.Itoa(rl.MaxRequests)
		headers["x-ratelimit-"+label+"-remaining"] = strconv.Itoa(remaining)
		if !allowed {
			resp.Allowed = false
			if resp.RetryAfter == nil || retry < *resp.RetryAfter {
				resp.RetryAfter = &retry
			}
			headers["x-ratelimit-"+label+"-reset"] = strconv.FormatUint(uint64(retry), 10)
			if resp.BlockedRule == nil {
				resp.BlockedRule = &rule
			}
		}
		resp.RateLimits = append(resp.RateLimits, rateLimitState{Rule: rule, Remaining: remaining, Limit: rl.MaxRequests})
	}
	if !resp.Allowed {
		resp.Reason = optString("rate_limited")
	}
	return resp, keyChecked
}

// metadataHeader renders the string values of metadata as k=v pairs.
func metadataHeader(md map[string]any) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if s, ok := md[k].(string); ok {
			pairs = append(pairs, k+"="+s)
		}
	}
	return strings.Join(pairs, ",")
}

func setIf(h map[string]string, name, value string) {
	if value != "" {
		h[name] = value
	}
}

// normalizeResource strips the fragment and query and adds a leading
// slash, as the Gateway does.
func normalizeResource(resource string) (string, bool) {
	res := strings.TrimSpace(resource)
	if i := strings.IndexByte(res, '#'); i >= 0 {
		res = res[:i]
	}
	if i := strings.IndexByte(res, '?'); i >= 0 {
		res = res[:i]
	}
	res = strings.TrimSpace(res)
	if res == "" {
		return "", false
	}
	if !strings.HasPrefix(res, "/") {
		res = "/" + res
	}
	return res, true
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeAuthzError writes the Gateway's error_response: an empty, denied
// AuthzCheckResponse with the given status.
func writeAuthzError(w http.ResponseWriter, status int, requestID string) {
	writeJSON(w, status, authzCheckResponse{
		RequestID:   requestID,
		Permissions: []string{},
		RateLimits:  []rateLimitState{},
		Headers:     map[string]string{},
	})
}
