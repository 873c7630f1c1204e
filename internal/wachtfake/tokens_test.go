package wachtfake

import (
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

// fetchJWKS gets and decodes the served key set.
func (e *env) fetchJWKS(t *testing.T) (jose.JSONWebKeySet, map[string]any) {
	t.Helper()
	got := e.request(t, "GET", "/.well-known/jwks.json", "")
	if got.status != 200 {
		t.Fatalf("jwks = %d %s", got.status, got.body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(got.body, &set); err != nil {
		t.Fatalf("decode jwks: %v", err)
	}
	return set, got.object(t)
}

// verify checks tok against the served JWKS and returns its header and
// claims as raw JSON objects.
func (e *env) verify(t *testing.T, tok string) (map[string]any, map[string]any, error) {
	t.Helper()
	set, _ := e.fetchJWKS(t)
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, nil, err
	}
	var claims map[string]any
	if err := parsed.Claims(set.Keys[0].Key, &claims); err != nil {
		return nil, nil, err
	}
	seg := strings.Split(tok, ".")[0]
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatalf("decode header: %v", err)
	}
	return header, claims, nil
}

func TestMintToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	iat := float64(epoch.Unix())
	tests := []struct {
		name   string
		claims TokenClaims
		want   map[string]any
	}{{
		name:   "minimal",
		claims: TokenClaims{UserID: "101", SessionID: "201"},
		want: map[string]any{"iss": e.srv.URL, "sub": "101", "sid": "201", "iat": iat, "exp": iat + 35,
			"permissions": map[string]any{}},
	}, {
		name: "org_and_workspace",
		claims: TokenClaims{UserID: "101", SessionID: "201", Organization: "301", Workspace: "401",
			OrganizationPermissions: []string{"org:read"}, WorkspacePermissions: []string{"ws:read", "ws:write"},
			Metadata: map[string]any{"plan": "pro"}, Lifetime: time.Hour},
		want: map[string]any{"iss": e.srv.URL, "sub": "101", "sid": "201", "iat": iat, "exp": iat + 3600,
			"organization": "301", "workspace": "401",
			"permissions": map[string]any{"organization": []any{"org:read"}, "workspace": []any{"ws:read", "ws:write"}},
			"metadata":    map[string]any{"plan": "pro"}},
	}, {
		name: "org_without_permissions_and_empty_metadata",
		claims: TokenClaims{UserID: "101", SessionID: "201", Organization: "301", Metadata: map[string]any{},
			IssuedAt: epoch.Add(-time.Hour)},
		want: map[string]any{"iss": e.srv.URL, "sub": "101", "sid": "201", "iat": iat - 3600, "exp": iat - 3600 + 35,
			"organization": "301", "permissions": map[string]any{"organization": []any{}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := e.s.MintToken(tt.claims)
			if err != nil {
				t.Fatalf("MintToken: %v", err)
			}
			header, claims, err := e.verify(t, tok)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "JWT"}, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMintTokenErrors(t *testing.T) {
	t.Parallel()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []TokenClaims{{SessionID: "1"}, {UserID: "1"}, {UserID: "1", SessionID: "2", Metadata: map[string]any{"f": func() {}}}} {
		if _, err := s.MintToken(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("MintToken(%+v) = %v, want ErrInvalid", c, err)
		}
	}
	if _, err := s.MintToken(TokenClaims{UserID: "1", SessionID: "2"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("MintToken without issuer = %v, want ErrInvalid", err)
	}
	s.SetIssuer("https://fapi.example")
	if s.Issuer() != "https://fapi.example" {
		t.Errorf("Issuer = %q", s.Issuer())
	}
	if _, err := s.MintToken(TokenClaims{UserID: "1", SessionID: "2"}); err != nil {
		t.Errorf("MintToken after SetIssuer: %v", err)
	}
}

func TestTokenLifetimeOption(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{TokenLifetime: 10 * time.Minute})
	tok, err := e.s.MintToken(TokenClaims{UserID: "1", SessionID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	_, claims, err := e.verify(t, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := claims["exp"].(float64) - claims["iat"].(float64); got != 600 {
		t.Errorf("exp - iat = %v, want 600", got)
	}
}

func TestJWKSAndRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	set, raw := e.fetchJWKS(t)
	keys := raw["keys"].([]any)
	if len(keys) != 1 || len(raw) != 1 {
		t.Fatalf("jwks = %v, want exactly one key", raw)
	}
	jwk := keys[0].(map[string]any)
	if diff := cmp.Diff([]string{"alg", "crv", "kid", "kty", "use", "x", "y"}, sortedKeys(jwk)); diff != "" {
		t.Errorf("jwk members (-want +got):\n%s", diff)
	}
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk["alg"] != "ES256" || jwk["use"] != "sig" || jwk["kid"] != e.s.KeyID() {
		t.Errorf("jwk = %v", jwk)
	}
	if _, err := strconv.ParseInt(jwk["kid"].(string), 10, 64); err != nil {
		t.Errorf("kid %v is not decimal", jwk["kid"])
	}
	if pub, ok := set.Keys[0].Key.(*ecdsa.PublicKey); !ok || !pub.Equal(e.s.PublicKey()) {
		t.Error("JWKS key differs from PublicKey")
	}

	before, err := e.s.MintToken(TokenClaims{UserID: "1", SessionID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	oldKid := e.s.KeyID()
	if err := e.s.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	set2, raw2 := e.fetchJWKS(t)
	if n := len(raw2["keys"].([]any)); n != 1 || set2.Keys[0].KeyID == oldKid || set2.Keys[0].KeyID != e.s.KeyID() {
		t.Errorf("after rotation: %d keys, kid %s (old %s)", n, set2.Keys[0].KeyID, oldKid)
	}
	if _, _, err := e.verify(t, before); err == nil {
		t.Error("token signed with the old key still verifies against the new JWKS")
	}
	after, err := e.s.MintToken(TokenClaims{UserID: "1", SessionID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.verify(t, after); err != nil {
		t.Errorf("new token: %v", err)
	}
	if got := e.request(t, "POST", "/.well-known/jwks.json", ""); got.status != 405 {
		t.Errorf("POST jwks = %d, want 405", got.status)
	}
}

func TestSignClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	tok, err := e.s.SignClaims(map[string]any{"iss": "https://evil.example", "sub": "1", "nbf": 5})
	if err != nil {
		t.Fatal(err)
	}
	header, claims, err := e.verify(t, tok)
	if err != nil {
		t.Fatal(err)
	}
	if header["kid"] != nil || claims["iss"] != "https://evil.example" || claims["nbf"] != float64(5) {
		t.Errorf("header %v claims %v", header, claims)
	}
	if _, err := e.s.SignClaims(map[string]any{"f": func() {}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SignClaims non-JSON = %v", err)
	}
}
