package wachtfake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenClaims describes a session token as the Frontend API's
// GET /session/token mints it with the default template.
type TokenClaims struct {
	UserID                  string // sub; required
	SessionID               string // sid, the SignIn's SessionID; required
	Organization            string // active organisation id; claim left out when empty
	Workspace               string // active workspace id; claim left out when empty
	OrganizationPermissions []string
	WorkspacePermissions    []string
	Metadata                map[string]any // claim left out when empty
	Lifetime                time.Duration  // exp - iat; zero means Options.TokenLifetime
	IssuedAt                time.Time      // zero means now
}

// signingKey is the deployment's one ES256 key pair.
type signingKey struct {
	id     string
	priv   *ecdsa.PrivateKey
	signer jose.Signer
}

// wireClaims is the claim set of Wacht's default template.
type wireClaims struct {
	Issuer       string              `json:"iss"`
	Subject      string              `json:"sub"`
	SessionID    string              `json:"sid"`
	IssuedAt     int64               `json:"iat"`
	Expiry       int64               `json:"exp"`
	Organization string              `json:"organization,omitempty"`
	Workspace    string              `json:"workspace,omitempty"`
	Permissions  map[string][]string `json:"permissions"`
	Metadata     map[string]any      `json:"metadata,omitempty"`
}

func (s *Server) newSigningKeyLocked() (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	// A raw key, not a JSONWebKey, so the header carries no kid, as
	// Wacht's tokens do not.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("create signer: %w", err)
	}
	return &signingKey{id: s.newIDLocked(), priv: priv, signer: signer}, nil
}

// MintToken returns a session token signed with the current key: header
// {"alg":"ES256","typ":"JWT"} without kid; claims iss, sub, sid, iat, exp,
// organization and workspace when set, permissions ({} when there are
// none; each list present when its context is active or it is non-empty)
// and metadata when non-empty. No nbf, aud or jti.
func (s *Server) MintToken(c TokenClaims) (string, error) {
	if c.UserID == "" || c.SessionID == "" {
		return "", fmt.Errorf("mint token: user id and session id are required: %w", ErrInvalid)
	}
	md, err := cloneMap(c.Metadata)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	s.mu.Lock()
	issuer, key := s.issuer, s.key
	lifetime := s.tokenLifetime
	s.mu.Unlock()
	if issuer == "" {
		return "", fmt.Errorf("mint token: issuer not set: %w", ErrInvalid)
	}
	if c.Lifetime != 0 {
		lifetime = c.Lifetime
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = s.now()
	}
	claims := wireClaims{
		Issuer:       issuer,
		Subject:      c.UserID,
		SessionID:    c.SessionID,
		IssuedAt:     iat.Unix(),
		Expiry:       iat.Add(lifetime).Unix(),
		Organization: c.Organization,
		Workspace:    c.Workspace,
		Permissions:  map[string][]string{},
	}
	if c.Organization != "" || len(c.OrganizationPermissions) > 0 {
		claims.Permissions["organization"] = nonNil(slices.Clone(c.OrganizationPermissions))
	}
	if c.Workspace != "" || len(c.WorkspacePermissions) > 0 {
		claims.Permissions["workspace"] = nonNil(slices.Clone(c.WorkspacePermissions))
	}
	if len(md) > 0 {
		claims.Metadata = md
	}
	tok, err := jwt.Signed(key.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("mint token: sign: %w", err)
	}
	return tok, nil
}

// SignClaims signs arbitrary claims with the current key and MintToken's
// header, for tokens Wacht would never mint (wrong issuer, missing sid,
// an nbf claim...).
func (s *Server) SignClaims(claims map[string]any) (string, error) {
	if _, err := json.Marshal(claims); err != nil {
		return "", fmt.Errorf("sign claims: not JSON: %w", ErrInvalid)
	}
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	tok, err := jwt.Signed(key.signer).Claims(maps.Clone(claims)).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign claims: %w", err)
	}
	return tok, nil
}

// RotateSigningKey replaces the signing key with a new P-256 key and a new
// kid. The JWKS then serves only the new key, since Wacht's has exactly
// one; tokens signed before no longer verify.
func (s *Server) RotateSigningKey() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, err := s.newSigningKeyLocked()
	if err != nil {
		return fmt.Errorf("rotate signing key: %w", err)
	}
	s.key = key
	return nil
}

// PublicKey returns the current signing key's public half.
func (s *Server) PublicKey() *ecdsa.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &s.key.priv.PublicKey
}

// KeyID returns the kid the JWKS gives the current key.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.id
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request, _ params) {
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &key.priv.PublicKey,
		KeyID:     key.id,
		Algorithm: string(jose.ES256),
		Use:       "sig",
	}}})
}
