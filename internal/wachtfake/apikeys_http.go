package wachtfake

import (
	"net/http"
	"slices"
	"time"
)

// apiKeyJSON is Wacht's ApiKey.
type apiKeyJSON struct {
	ID                       string          `json:"id"`
	DeploymentID             string          `json:"deployment_id"`
	AppSlug                  string          `json:"app_slug"`
	Name                     string          `json:"name"`
	KeyPrefix                string          `json:"key_prefix"`
	KeySuffix                string          `json:"key_suffix"`
	Permissions              []string        `json:"permissions"`
	Metadata                 map[string]any  `json:"metadata"`
	RateLimits               []rateLimitJSON `json:"rate_limits"`
	RateLimitSchemeSlug      *string         `json:"rate_limit_scheme_slug,omitempty"`
	OwnerUserID              *string         `json:"owner_user_id,omitempty"`
	OrganizationID           *string         `json:"organization_id,omitempty"`
	WorkspaceID              *string         `json:"workspace_id,omitempty"`
	OrganizationMembershipID *string         `json:"organization_membership_id,omitempty"`
	WorkspaceMembershipID    *string         `json:"workspace_membership_id,omitempty"`
	OrgRolePermissions       []string        `json:"org_role_permissions"`
	WorkspaceRolePermissions []string        `json:"workspace_role_permissions"`
	ExpiresAt                *wireTime       `json:"expires_at"`
	LastUsedAt               *wireTime       `json:"last_used_at"`
	IsActive                 bool            `json:"is_active"`
	CreatedAt                wireTime        `json:"created_at"`
	UpdatedAt                wireTime        `json:"updated_at"`
	RevokedAt                *wireTime       `json:"revoked_at"`
	RevokedReason            *string         `json:"revoked_reason"`
}

// apiKeyWithSecretJSON is Wacht's ApiKeyWithSecret: the key's fields
// flattened, plus the secret.
type apiKeyWithSecretJSON struct {
	apiKeyJSON
	Secret string `json:"secret"`
}

// rateLimitJSON is Wacht's RateLimit.
type rateLimitJSON struct {
	Unit        string   `json:"unit"`
	Duration    int      `json:"duration"`
	MaxRequests int      `json:"max_requests"`
	Mode        *string  `json:"mode,omitempty"`
	Endpoints   []string `json:"endpoints,omitempty"`
	Priority    int      `json:"priority"`
}

func apiKeyToJSON(k APIKey) apiKeyJSON {
	return apiKeyJSON{
		ID:                       k.ID,
		DeploymentID:             k.DeploymentID,
		AppSlug:                  k.AppSlug,
		Name:                     k.Name,
		KeyPrefix:                k.KeyPrefix,
		KeySuffix:                k.KeySuffix,
		Permissions:              nonNil(slices.Clone(k.Permissions)),
		Metadata:                 nonNilMap(k.Metadata),
		RateLimits:               []rateLimitJSON{},
		RateLimitSchemeSlug:      optString(k.RateLimitSchemeSlug),
		OwnerUserID:              optString(k.OwnerUserID),
		OrganizationID:           optString(k.OrganizationID),
		WorkspaceID:              optString(k.WorkspaceID),
		OrganizationMembershipID: optString(k.OrganizationMembershipID),
		WorkspaceMembershipID:    optString(k.WorkspaceMembershipID),
		OrgRolePermissions:       nonNil(slices.Clone(k.OrgRolePermissions)),
		WorkspaceRolePermissions: nonNil(slices.Clone(k.WorkspaceRolePermissions)),
		ExpiresAt:                optTime(k.ExpiresAt),
		LastUsedAt:               optTime(k.LastUsedAt),
		IsActive:                 k.IsActive,
		CreatedAt:                wireTime(k.CreatedAt),
		UpdatedAt:                wireTime(k.UpdatedAt),
		RevokedAt:                optTime(k.RevokedAt),
		RevokedReason:            optString(k.RevokedReason),
	}
}

func (s *Server) handleListAPIKeys(w http.ResponseWriter, r *http.Request, p params) {
	includeInactive, ok := parseBoolQuery(r.URL.Query(), "include_inactive")
	if !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	_, found := s.apps[p["app_slug"]]
	keys := []apiKeyJSON{}
	for _, rec := range s.appKeysLocked(p["app_slug"], includeInactive) {
		keys = append(keys, apiKeyToJSON(rec.key))
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "API key app not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string][]apiKeyJSON{"keys": keys})
}

// createKeyRequest is Wacht's CreateApiKeyRequest.
type createKeyRequest struct {
	Name        *string         `json:"name"`
	Permissions []string        `json:"permissions"`
	Metadata    *map[string]any `json:"metadata"`
	ExpiresAt   *time.Time      `json:"expires_at"`
}

func (s *Server) handleCreateAPIKey(w http.ResponseWriter, r *http.Request, p params) {
	var req createKeyRequest
	if rej := decodeBody(r, &req, false); rej != nil {
		writeRejection(w, rej.status)
		return
	}
	if req.Name == nil {
		writeRejection(w, http.StatusUnprocessableEntity)
		return
	}
	var md map[string]any
	if req.Metadata != nil {
		md = *req.Metadata
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	}
	s.mu.Lock()
	app, found := s.apps[p["app_slug"]]
	var (
		key    APIKey
		secret string
		err    error
	)
	if found {
		key, secret, err = s.createKeyLocked(app, contextOf(app), *req.Name, req.Permissions, md, expires)
	}
	s.mu.Unlock()
	switch {
	case !found:
		writeError(w, http.StatusNotFound, "API key app not found")
	case err != nil:
		writeRejection(w, http.StatusInternalServerError)
	default:
		writeJSON(w, http.StatusOK, apiKeyWithSecretJSON{apiKeyJSON: apiKeyToJSON(key), Secret: secret})
	}
}

// revokeKeyRequest is Wacht's RevokeApiKeyRequest; key_id is only read by
// an unrouted variant.
type revokeKeyRequest struct {
	KeyID  any     `json:"key_id"`
	Reason *string `json:"reason"`
}

// findAppKeyLocked resolves an app and one of its keys the way Wacht's
// ensure_api_key_exists_for_app does, returning the 404 message on failure.
func (s *Server) findAppKeyLocked(slug, rawKeyID string) (*APIAuthApp, *apiKeyRecord, string) {
	app, ok := s.apps[slug]
	if !ok {
		return nil, nil, "API key app not found"
	}
	id, _ := canonicalID(rawKeyID)
	rec, ok := s.keys[id]
	if !ok || rec.key.AppSlug != slug {
		return nil, nil, "API key not found"
	}
	return app, rec, ""
}

func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request, p params) {
	if _, ok := canonicalID(p["key_id"]); !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	var req revokeKeyRequest
	if rej := decodeBody(r, &req, false); rej != nil {
		writeRejection(w, rej.status)
		return
	}
	s.mu.Lock()
	_, rec, msg := s.findAppKeyLocked(p["app_slug"], p["key_id"])
	if msg == "" && !rec.key.IsActive {
		msg = "API key not found or already revoked"
	}
	if msg == "" {
		reason := ""
		if req.Reason != nil {
			reason = *req.Reason
		}
		s.revokeKeyLocked(rec, reason)
	}
	s.mu.Unlock()
	if msg != "" {
		writeError(w, http.StatusNotFound, msg)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) handleRotateAPIKey(w http.ResponseWriter, _ *http.Request, p params) {
	if _, ok := canonicalID(p["key_id"]); !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	app, rec, msg := s.findAppKeyLocked(p["app_slug"], p["key_id"])
	switch {
	case msg != "":
	case !rec.key.IsActive:
		msg = "API key not found or inactive"
	case app.Inactive:
		msg = "API key app not found or inactive"
	}
	var (
		key    APIKey
		secret string
		err    error
	)
	if msg == "" {
		old := rec.key
		key, secret, err = s.createKeyLocked(app, contextOf(app), old.Name, old.Permissions, old.Metadata, old.ExpiresAt)
		if err == nil {
			s.revokeKeyLocked(rec, "Rotated")
		}
	}
	s.mu.Unlock()
	switch {
	case msg != "":
		writeError(w, http.StatusNotFound, msg)
	case err != nil:
		writeRejection(w, http.StatusInternalServerError)
	default:
		writeJSON(w, http.StatusOK, apiKeyWithSecretJSON{apiKeyJSON: apiKeyToJSON(key), Secret: secret})
	}
}
