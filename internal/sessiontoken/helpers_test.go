package sessiontoken_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

const testIssuer = "https://frontend.example.test"

// baseTime is the fixed "now" of most tests.
var baseTime = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testKey is a P-256 signing key with its kid.
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newTestKey(tb testing.TB, kid string) testKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return testKey{kid: kid, priv: priv}
}

// publicJWK is k's public key as published in a JWKS.
func (k testKey) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// jwksOf returns a JWKS document holding the public keys of keys.
func jwksOf(tb testing.TB, keys ...testKey) []byte {
	tb.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.publicJWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		tb.Fatalf("marshal jwks: %v", err)
	}
	return b
}

// validClaims returns the claims of a good default-template token issued at
// iat.
func validClaims(iat time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "1234567890",
		"sid": "987654321",
		"iat": iat.Unix(),
		"exp": iat.Add(35 * time.Second).Unix(),
		"permissions": map[string]any{
			"organization": []string{"org:read"},
			"workspace":    []string{"ws:write"},
		},
		"organization": "111",
		"workspace":    "222",
	}
}

// with returns a copy of c with set applied; a nil value deletes the claim.
func with(c map[string]any, set map[string]any) map[string]any {
	out := maps.Clone(c)
	for k, v := range set {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// sign mints a compact JWS of claims with alg and key; withKID puts k's kid
// in the header (Wacht's own tokens carry none).
func sign(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	tb.Helper()
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatalf("new signer: %v", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return tok
}

// mint signs claims with k the way Wacht does: ES256 with no kid.
func (k testKey) mint(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return sign(tb, jose.ES256, k.priv, "", claims)
}

// signPayload signs payload, as it is, with k, in a header like Wacht's.
func signPayload(tb testing.TB, k testKey, payload string) string {
	tb.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := signer.Sign([]byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// mintKID signs claims with k and puts k's kid in the header.
func (k testKey) mintKID(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return sign(tb, jose.ES256, k.priv, k.kid, claims)
}

// fakeFetcher serves a JWKS document and counts fetches.
type fakeFetcher struct {
	mu    sync.Mutex
	body  []byte
	err   error
	gate  chan struct{} // when set, fetches wait for it to close
	calls atomic.Int64
}

func newFakeFetcher(body []byte) *fakeFetcher { return &fakeFetcher{body: body} }

func (f *fakeFetcher) FetchJWKS(ctx context.Context) ([]byte, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate, body, err := f.gate, f.body, f.err
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return body, err
}

func (f *fakeFetcher) serve(body []byte, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.err = body, err
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// quietLogger discards log output.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newVerifier returns a Verifier over f and clk whose key set is loaded.
// Extra settings can be applied through mod.
func newVerifier(tb testing.TB, f sessiontoken.KeySetFetcher, clk *fakeClock, mod func(*sessiontoken.Config)) *sessiontoken.Verifier {
	tb.Helper()
	cfg := sessiontoken.Config{
		Issuer:  testIssuer,
		Fetcher: f,
		Now:     clk.Now,
		Logger:  quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := sessiontoken.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		tb.Fatalf("Refresh: %v", err)
	}
	return v
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

// jwkField returns one member of k's JSON form.
func jwkField(tb testing.TB, k jose.JSONWebKey, name string) string {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustJSON(tb, k), &m); err != nil {
		tb.Fatalf("unmarshal jwk: %v", err)
	}
	s, _ := m[name].(string)
	return s
}

// privateJWK is k as a JWK holding its private part, which a key set must
// never contain.
func privateJWK(_ testing.TB, k testKey) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"}
}
