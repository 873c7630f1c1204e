package wachtfake

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// APIAuthApp is an "API auth" app: a namespace of API keys for one of the
// customer's own APIs. Its keys inherit its owner, membership context and
// rate-limit scheme.
type APIAuthApp struct {
	Slug        string // required, e.g. "orders-api"
	Name        string // default Slug
	KeyPrefix   string // default "sk"
	Description string
	// Inactive apps' keys are refused by the Gateway.
	Inactive bool
	// UserID owns the app's keys (owner_user_id).
	UserID string
	// The membership context copied onto every new key.
	OrganizationID           string
	WorkspaceID              string
	OrganizationMembershipID string
	WorkspaceMembershipID    string
	OrgRolePermissions       []string
	WorkspaceRolePermissions []string
	// RateLimitScheme names the rate-limit scheme whose RateLimits the
	// Gateway applies to the app's keys. Without a scheme it applies
	// Wacht's default: 1000 requests a minute per app.
	RateLimitScheme string
	RateLimits      []RateLimit
}

// RateLimit is one rule of a rate-limit scheme.
type RateLimit struct {
	// Unit is "millisecond", "second", "minute", "hour", "day",
	// "calendar_day", "month" or "calendar_month" (calendar units are
	// emulated as rolling windows).
	Unit        string
	Duration    int
	MaxRequests int
	// Mode is "per_app" (default), "per_key", "per_key_and_ip" or
	// "per_app_and_ip".
	Mode string
	// Endpoints limits the rule to these resources; empty means all.
	Endpoints []string
	Priority  int
}

// APIKey is a key of an [APIAuthApp]. Only the SHA-256 of its secret is
// kept, as in Wacht.
type APIKey struct {
	ID                       string
	DeploymentID             string
	AppSlug                  string
	Name                     string
	KeyPrefix                string
	KeySuffix                string // last 8 characters of the secret
	Permissions              []string
	Metadata                 map[string]any
	RateLimitSchemeSlug      string
	OwnerUserID              string
	OrganizationID           string
	WorkspaceID              string
	OrganizationMembershipID string
	WorkspaceMembershipID    string
	OrgRolePermissions       []string
	WorkspaceRolePermissions []string
	ExpiresAt                time.Time
	LastUsedAt               time.Time // never set: the emulator does not record use
	IsActive                 bool
	CreatedAt                time.Time
	UpdatedAt                time.Time
	RevokedAt                time.Time
	RevokedReason            string
}

type apiKeyRecord struct {
	key  APIKey
	hash string
}

// AddAPIAuthApp stores an app. Its slug must be new.
func (s *Server) AddAPIAuthApp(app APIAuthApp) error {
	if app.Slug == "" {
		return fmt.Errorf("add api auth app: empty slug: %w", ErrInvalid)
	}
	if len(app.RateLimits) > 0 && app.RateLimitScheme == "" {
		return fmt.Errorf("add api auth app %s: rate limits without a scheme name: %w", app.Slug, ErrInvalid)
	}
	for _, rl := range app.RateLimits {
		if _, err := windowOf(rl); err != nil {
			return fmt.Errorf("add api auth app %s: %w", app.Slug, err)
		}
	}
	app.Name = cmp.Or(app.Name, app.Slug)
	app.KeyPrefix = cmp.Or(app.KeyPrefix, "sk")
	app.OrgRolePermissions = slices.Clone(app.OrgRolePermissions)
	app.WorkspaceRolePermissions = slices.Clone(app.WorkspaceRolePermissions)
	app.RateLimits = slices.Clone(app.RateLimits)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.apps[app.Slug]; dup {
		return fmt.Errorf("add api auth app %s: slug in use: %w", app.Slug, ErrInvalid)
	}
	s.apps[app.Slug] = &app
	return nil
}

// AddAPIKey creates a key in an app from k's Name, Permissions, Metadata
// and ExpiresAt (zero means never; a past time makes an expired key), as
// POST /api-auth/apps/{app_slug}/keys does. The key inherits the app's
// owner, membership context and scheme; non-empty OwnerUserID,
// OrganizationID, WorkspaceID, membership ids, role permissions and
// RateLimitSchemeSlug of k replace the app's, as for a key made before
// the app changed. It returns the key and its secret, which is not kept.
func (s *Server) AddAPIKey(appSlug string, k APIKey) (APIKey, string, error) {
	md, err := cloneMap(k.Metadata)
	if err != nil {
		return APIKey{}, "", fmt.Errorf("add api key to %s: %w", appSlug, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.apps[appSlug]
	if !ok {
		return APIKey{}, "", fmt.Errorf("add api key to %s: %w", appSlug, ErrNotFound)
	}
	c := contextOf(app)
	c.ownerUserID = cmp.Or(k.OwnerUserID, c.ownerUserID)
	c.organizationID = cmp.Or(k.OrganizationID, c.organizationID)
	c.workspaceID = cmp.Or(k.WorkspaceID, c.workspaceID)
	c.organizationMembershipID = cmp.Or(k.OrganizationMembershipID, c.organizationMembershipID)
	c.workspaceMembershipID = cmp.Or(k.WorkspaceMembershipID, c.workspaceMembershipID)
	c.rateLimitScheme = cmp.Or(k.RateLimitSchemeSlug, c.rateLimitScheme)
	if len(k.OrgRolePermissions) > 0 {
		c.orgRolePermissions = k.OrgRolePermissions
	}
	if len(k.WorkspaceRolePermissions) > 0 {
		c.workspaceRolePermissions = k.WorkspaceRolePermissions
	}
	key, secret, err := s.createKeyLocked(app, c, k.Name, k.Permissions, md, k.ExpiresAt)
	if err != nil {
		return APIKey{}, "", fmt.Errorf("add api key to %s: %w", appSlug, err)
	}
	return key, secret, nil
}

// keyContext is what a new key copies from its app.
type keyContext struct {
	ownerUserID              string
	organizationID           string
	workspaceID              string
	organizationMembershipID string
	workspaceMembershipID    string
	orgRolePermissions       []string
	workspaceRolePermissions []string
	rateLimitScheme          string
}

func contextOf(app *APIAuthApp) keyContext {
	return keyContext{
		ownerUserID:              app.UserID,
		organizationID:           app.OrganizationID,
		workspaceID:              app.WorkspaceID,
		organizationMembershipID: app.OrganizationMembershipID,
		workspaceMembershipID:    app.WorkspaceMembershipID,
		orgRolePermissions:       app.OrgRolePermissions,
		workspaceRolePermissions: app.WorkspaceRolePermissions,
		rateLimitScheme:          app.RateLimitScheme,
	}
}

// APIKeys returns every key of an app, revoked ones included, newest
// first.
func (s *Server) APIKeys(appSlug string) ([]APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[appSlug]; !ok {
		return nil, fmt.Errorf("list api keys of %s: %w", appSlug, ErrNotFound)
	}
	var out []APIKey
	for _, rec := range s.appKeysLocked(appSlug, true) {
		k := rec.key
		k.Permissions = slices.Clone(k.Permissions)
		k.Metadata, _ = cloneMap(k.Metadata)
		out = append(out, k)
	}
	return out, nil
}

// createKeyLocked makes a new active key of app with a fresh secret.
func (s *Server) createKeyLocked(app *APIAuthApp, c keyContext, name string, perms []string, md map[string]any, expires time.Time) (APIKey, string, error) {
	secret, err := randomSecret(app.KeyPrefix)
	if err != nil {
		return APIKey{}, "", err
	}
	now := s.stamp()
	if !expires.IsZero() {
		expires = dbTime(expires)
	}
	md, err = cloneMap(md)
	if err != nil {
		return APIKey{}, "", err
	}
	if md == nil {
		md = map[string]any{}
	}
	k := APIKey{
		ID:                       s.newIDLocked(),
		DeploymentID:             s.deploymentID,
		AppSlug:                  app.Slug,
		Name:                     name,
		KeyPrefix:                app.KeyPrefix,
		KeySuffix:                secret[len(secret)-8:],
		Permissions:              nonNil(slices.Clone(perms)),
		Metadata:                 md,
		RateLimitSchemeSlug:      c.rateLimitScheme,
		OwnerUserID:              c.ownerUserID,
		OrganizationID:           c.organizationID,
		WorkspaceID:              c.workspaceID,
		OrganizationMembershipID: c.organizationMembershipID,
		WorkspaceMembershipID:    c.workspaceMembershipID,
		OrgRolePermissions:       nonNil(slices.Clone(c.orgRolePermissions)),
		WorkspaceRolePermissions: nonNil(slices.Clone(c.workspaceRolePermissions)),
		ExpiresAt:                expires,
		IsActive:                 true,
		CreatedAt:                now,
		UpdatedAt:                now,
	}
	sum := sha256.Sum256([]byte(secret))
	rec := &apiKeyRecord{key: k, hash: hex.EncodeToString(sum[:])}
	s.keys[k.ID] = rec
	s.keyHash[rec.hash] = k.ID
	out := k
	out.Permissions = slices.Clone(k.Permissions)
	out.Metadata, _ = cloneMap(k.Metadata)
	return out, secret, nil
}

// appKeysLocked returns an app's keys by created_at DESC.
func (s *Server) appKeysLocked(appSlug string, includeInactive bool) []*apiKeyRecord {
	var out []*apiKeyRecord
	for _, rec := range s.keys {
		if rec.key.AppSlug == appSlug && (includeInactive || rec.key.IsActive) {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b *apiKeyRecord) int {
		if c := b.key.CreatedAt.Compare(a.key.CreatedAt); c != 0 {
			return c
		}
		ai, _ := strconv.ParseInt(a.key.ID, 10, 64)
		bi, _ := strconv.ParseInt(b.key.ID, 10, 64)
		return cmp.Compare(bi, ai)
	})
	return out
}

// revokeKeyLocked marks a key revoked now.
func (s *Server) revokeKeyLocked(rec *apiKeyRecord, reason string) {
	now := s.stamp()
	rec.key.IsActive = false
	rec.key.RevokedAt = now
	rec.key.RevokedReason = reason
	rec.key.UpdatedAt = now
}
