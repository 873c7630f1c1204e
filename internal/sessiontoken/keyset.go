package sessiontoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

const (
	// maxKeySetBytes bounds the JWKS document accepted from the fetcher.
	maxKeySetBytes = 1 << 20
	// maxKeys bounds the usable keys kept, and so the signature checks one
	// token without kid can cost.
	maxKeys = 16
)

// errNoUsableKeys is returned when a fetched key set holds no ES256 key.
var errNoUsableKeys = errors.New("key set has no usable ES256 key")

// verificationKey is one ES256 public key from the key set. Its pointer
// identity is stable across refreshes while the key stays in the set, so
// cache entries can tell whether the key that verified them still exists.
type verificationKey struct {
	kid        string
	pub        *ecdsa.PublicKey
	thumbprint string
}

// keySet is an immutable snapshot of the usable keys.
type keySet struct {
	keys []*verificationKey
}

// has reports whether k is in the set.
func (s *keySet) has(k *verificationKey) bool {
	if s == nil {
		return false
	}
	for _, c := range s.keys {
		if c == k {
			return true
		}
	}
	return false
}

// byKID returns the key with the given kid, or nil.
func (s *keySet) byKID(kid string) *verificationKey {
	if s == nil {
		return nil
	}
	for _, k := range s.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

func (s *keySet) kids() []string {
	out := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k.kid)
	}
	return out
}

// parseKeySet parses a JWKS document and keeps only keys fit for ES256
// signature checks. Keys that fail to parse, are private, of another type,
// curve, algorithm or use are skipped (and logged), so one odd key never
// hides the good ones. Keys whose kid and thumbprint match a key of prev
// keep their identity.
func parseKeySet(raw []byte, prev *keySet, logger *slog.Logger) (*keySet, error) {
	if len(raw) > maxKeySetBytes {
		return nil, fmt.Errorf("parse key set: document of %d bytes exceeds %d", len(raw), maxKeySetBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse key set: %w", err)
	}
	set := &keySet{}
	for i, rawKey := range doc.Keys {
		k, why := usableKey(rawKey)
		if k == nil {
			logger.Warn("session token key set: key skipped", slog.Int("index", i), slog.String("why", why))
			continue
		}
		if len(set.keys) == maxKeys {
			logger.Warn("session token key set: too many keys, rest skipped", slog.Int("max", maxKeys))
			break
		}
		if dup := slices.ContainsFunc(set.keys, func(o *verificationKey) bool {
			return o.thumbprint == k.thumbprint && o.kid == k.kid
		}); dup {
			continue
		}
		if old := prev.matching(k); old != nil {
			k = old
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("parse key set: %w", errNoUsableKeys)
	}
	return set, nil
}

// matching returns the key of s with the same kid and public key as k.
func (s *keySet) matching(k *verificationKey) *verificationKey {
	if s == nil {
		return nil
	}
	for _, o := range s.keys {
		if o.kid == k.kid && o.thumbprint == k.thumbprint {
			return o
		}
	}
	return nil
}

// removedFrom reports whether some key of old is missing from s.
func (s *keySet) removedFrom(old *keySet) bool {
	if old == nil {
		return false
	}
	for _, k := range old.keys {
		if !s.has(k) {
			return true
		}
	}
	return false
}

// usableKey parses one JWK and returns it if it is an ES256 P-256 public
// signing key; otherwise it returns nil and a short reason that holds no key
// material.
func usableKey(raw json.RawMessage) (*verificationKey, string) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, "unparsable or unsupported key"
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, "use is not sig"
	}
	if jwk.Algorithm != "" && jwk.Algorithm != string(jose.ES256) {
		return nil, "alg is not ES256"
	}
	if !jwk.IsPublic() {
		return nil, "not a public key"
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, "not an EC P-256 key"
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, "no thumbprint"
	}
	return &verificationKey{kid: jwk.KeyID, pub: pub, thumbprint: string(tp)}, ""
}
