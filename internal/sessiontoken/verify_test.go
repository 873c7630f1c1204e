package sessiontoken_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// corpusKeys are the keys the token corpus is built from.
type corpusKeys struct {
	good  testKey // in the key set
	other testKey // a P-256 key not in the key set
	rsa   *rsa.PrivateKey
	p384  *ecdsa.PrivateKey
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// segments splits a compact token into its three parts.
func segments(t *testing.T, tok string) (header, payload, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func TestVerifyCorpus(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := corpusKeys{good: newTestKey(t, "101"), other: newTestKey(t, "202"), rsa: rsaKey, p384: p384}
	iat := baseTime.Add(-10 * time.Second)
	good := validClaims(iat)

	wantGood := &sessiontoken.Claims{
		Issuer:                  testIssuer,
		Subject:                 "1234567890",
		SessionID:               "987654321",
		Organization:            "111",
		Workspace:               "222",
		OrganizationPermissions: []string{"org:read"},
		WorkspacePermissions:    []string{"ws:write"},
		IssuedAt:                time.Unix(iat.Unix(), 0),
		ExpiresAt:               time.Unix(iat.Add(35*time.Second).Unix(), 0),
	}
	want := func(mod func(c *sessiontoken.Claims)) *sessiontoken.Claims {
		c := *wantGood
		mod(&c)
		return &c
	}
	ecdhPub, err := keys.good.priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		token      func(t *testing.T) string
		want       *sessiontoken.Claims
		wantReason sessiontoken.Reason
		wantErr    error
	}{
		{
			name:  "valid",
			token: func(t *testing.T) string { return keys.good.mint(t, good) },
			want:  wantGood,
		},
		{
			name:  "valid_with_known_kid",
			token: func(t *testing.T) string { return keys.good.mintKID(t, good) },
			want:  wantGood,
		},
		{
			name: "expired",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"exp": baseTime.Add(-6 * time.Second).Unix()}))
			},
			wantReason: sessiontoken.ReasonExpired,
		},
		{
			name: "expired_within_leeway",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"exp": baseTime.Add(-4 * time.Second).Unix()}))
			},
			want: want(func(c *sessiontoken.Claims) { c.ExpiresAt = baseTime.Add(-4 * time.Second) }),
		},
		{
			name: "nbf_in_future",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"nbf": baseTime.Add(time.Minute).Unix()}))
			},
			wantReason: sessiontoken.ReasonNotYetValid,
		},
		{
			name: "nbf_within_leeway",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"nbf": baseTime.Add(4 * time.Second).Unix()}))
			},
			want: want(func(c *sessiontoken.Claims) { c.NotBefore = baseTime.Add(4 * time.Second) }),
		},
		{
			name: "iat_in_future",
			token: func(t *testing.T) string {
				return keys.good.mint(t, validClaims(baseTime.Add(time.Minute)))
			},
			wantReason: sessiontoken.ReasonNotYetValid,
		},
		{
			name: "wrong_issuer",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"iss": "https://evil.example.test"}))
			},
			wantReason: sessiontoken.ReasonWrongIssuer,
		},
		{
			name: "issuer_with_trailing_slash",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"iss": testIssuer + "/"}))
			},
			wantReason: sessiontoken.ReasonWrongIssuer,
		},
		{
			name:       "missing_sub",
			token:      func(t *testing.T) string { return keys.good.mint(t, with(good, map[string]any{"sub": nil})) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "missing_sid",
			token:      func(t *testing.T) string { return keys.good.mint(t, with(good, map[string]any{"sid": nil})) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "missing_exp",
			token:      func(t *testing.T) string { return keys.good.mint(t, with(good, map[string]any{"exp": nil})) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "sub_not_a_string",
			token:      func(t *testing.T) string { return keys.good.mint(t, with(good, map[string]any{"sub": 1234567890})) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "exp_not_a_number",
			token:      func(t *testing.T) string { return keys.good.mint(t, with(good, map[string]any{"exp": "tomorrow"})) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "payload_not_an_object",
			token: func(t *testing.T) string {
				return signPayload(t, keys.good, `["not","claims"]`)
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "sid_fallback_session_id",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"sid": nil, "session_id": "555"}))
			},
			want: want(func(c *sessiontoken.Claims) { c.SessionID = "555" }),
		},
		{
			name: "sid_preferred_over_session_id",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"session_id": "555"}))
			},
			want: wantGood,
		},
		{
			name: "permissions_absent_no_org",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"permissions": nil, "organization": nil, "workspace": nil}))
			},
			want: want(func(c *sessiontoken.Claims) {
				c.OrganizationPermissions, c.WorkspacePermissions, c.Organization, c.Workspace = nil, nil, "", ""
			}),
		},
		{
			name: "permissions_empty_object",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"permissions": map[string]any{}}))
			},
			want: want(func(c *sessiontoken.Claims) { c.OrganizationPermissions, c.WorkspacePermissions = nil, nil }),
		},
		{
			name: "metadata",
			token: func(t *testing.T) string {
				return keys.good.mint(t, with(good, map[string]any{"metadata": map[string]any{"plan": "pro", "seats": 3}}))
			},
			want: want(func(c *sessiontoken.Claims) { c.Metadata = map[string]any{"plan": "pro", "seats": float64(3)} }),
		},
		{
			name:       "alg_none",
			token:      func(t *testing.T) string { return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64JSON(t, good) + "." },
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name: "hs256_with_public_key_point_as_secret",
			token: func(t *testing.T) string {
				return sign(t, jose.HS256, ecdhPub.Bytes(), "", good)
			},
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name: "hs256_with_jwks_as_secret",
			token: func(t *testing.T) string {
				return sign(t, jose.HS256, jwksOf(t, keys.good), "", good)
			},
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name:       "rs256",
			token:      func(t *testing.T) string { return sign(t, jose.RS256, keys.rsa, "", good) },
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name:       "es384",
			token:      func(t *testing.T) string { return sign(t, jose.ES384, keys.p384, "", good) },
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name: "es256_header_on_es384_signature",
			token: func(t *testing.T) string {
				_, p, s := segments(t, sign(t, jose.ES384, keys.p384, "", good))
				return b64(`{"alg":"ES256","typ":"JWT"}`) + "." + p + "." + s
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name:       "signed_by_other_p256_key",
			token:      func(t *testing.T) string { return keys.other.mint(t, good) },
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "forged_and_expired",
			token: func(t *testing.T) string {
				return keys.other.mint(t, with(good, map[string]any{"exp": baseTime.Add(-time.Hour).Unix()}))
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "forged_with_embedded_jwk",
			token: func(t *testing.T) string {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: keys.other.priv},
					&jose.SignerOptions{EmbedJWK: true})
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(good)
				obj, err := signer.Sign(b)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := obj.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				return tok
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "tampered_payload",
			token: func(t *testing.T) string {
				h, _, s := segments(t, keys.good.mint(t, good))
				return h + "." + b64JSON(t, with(good, map[string]any{"sub": "1"})) + "." + s
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "tampered_header",
			token: func(t *testing.T) string {
				_, p, s := segments(t, keys.good.mint(t, good))
				return b64(`{"alg":"ES256","typ":"JOSE"}`) + "." + p + "." + s
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "header_alg_switched_to_hs256",
			token: func(t *testing.T) string {
				_, p, s := segments(t, keys.good.mint(t, good))
				return b64(`{"alg":"HS256","typ":"JWT"}`) + "." + p + "." + s
			},
			wantReason: sessiontoken.ReasonUnsupportedAlgorithm,
		},
		{
			name: "header_without_alg",
			token: func(t *testing.T) string {
				_, p, s := segments(t, keys.good.mint(t, good))
				return b64(`{"typ":"JWT"}`) + "." + p + "." + s
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "header_not_json",
			token: func(t *testing.T) string {
				_, p, s := segments(t, keys.good.mint(t, good))
				return b64(`{"alg":"ES256"`) + "." + p + "." + s
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "truncated_signature",
			token: func(t *testing.T) string {
				tok := keys.good.mint(t, good)
				return tok[:len(tok)-8]
			},
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name: "truncated_to_two_segments",
			token: func(t *testing.T) string {
				tok := keys.good.mint(t, good)
				return tok[:strings.LastIndex(tok, ".")]
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "bad_base64",
			token: func(t *testing.T) string {
				h, p, s := segments(t, keys.good.mint(t, good))
				return h + "." + p + "!" + "." + s
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "garbage",
			token:      func(*testing.T) string { return "garbage\x00\xff not a token" },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "jwe_five_segments",
			token: func(t *testing.T) string {
				enc, err := jose.NewEncrypter(jose.A128GCM,
					jose.Recipient{Algorithm: jose.ECDH_ES, Key: &keys.good.priv.PublicKey}, nil)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := enc.Encrypt([]byte(`{"sub":"1"}`))
				if err != nil {
					t.Fatal(err)
				}
				tok, err := obj.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				if n := strings.Count(tok, "."); n != 4 {
					t.Fatalf("JWE has %d dots", n)
				}
				return tok
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name: "jws_json_serialization",
			token: func(t *testing.T) string {
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: keys.good.priv}, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(good)
				obj, err := signer.Sign(b)
				if err != nil {
					t.Fatal(err)
				}
				return obj.FullSerialize()
			},
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "surrounding_whitespace",
			token:      func(t *testing.T) string { return " " + keys.good.mint(t, good) + "\n" },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:    "too_large",
			token:   func(*testing.T) string { return strings.Repeat("a", sessiontoken.DefaultMaxTokenBytes+1) },
			wantErr: sessiontoken.ErrTokenTooLarge,
		},
		{
			name:       "at_size_limit_is_parsed",
			token:      func(*testing.T) string { return strings.Repeat("a", sessiontoken.DefaultMaxTokenBytes) },
			wantReason: sessiontoken.ReasonMalformed,
		},
		{
			name:       "unknown_kid",
			token:      func(t *testing.T) string { return keys.other.mintKID(t, good) },
			wantReason: sessiontoken.ReasonUnknownKey,
		},
		{
			name:       "known_kid_wrong_key",
			token:      func(t *testing.T) string { return sign(t, jose.ES256, keys.other.priv, keys.good.kid, good) },
			wantReason: sessiontoken.ReasonBadSignature,
		},
		{
			name:       "empty",
			token:      func(*testing.T) string { return "" },
			wantReason: sessiontoken.ReasonMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(baseTime)
			v := newVerifier(t, newFakeFetcher(jwksOf(t, keys.good)), clk, nil)
			token := tt.token(t)

			got, err := v.Verify(context.Background(), token)

			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Verify claims mismatch (-want +got):\n%s", diff)
			}
			checkVerifyErr(t, err, token, tt.wantReason, tt.wantErr)
		})
	}
}

// checkVerifyErr checks err against the wanted reason or sentinel, and that
// its message holds no part of the token.
func checkVerifyErr(t *testing.T, err error, token string, wantReason sessiontoken.Reason, wantErr error) {
	t.Helper()
	gotReason, _ := sessiontoken.ReasonOf(err)
	switch {
	case wantErr != nil:
		if !errors.Is(err, wantErr) {
			t.Errorf("Verify error = %v, want %v", err, wantErr)
		}
	case wantReason != 0:
		if gotReason != wantReason {
			t.Errorf("Verify error = %v (reason %v), want reason %v", err, gotReason, wantReason)
		}
	case err != nil:
		t.Errorf("Verify error = %v, want none", err)
	}
	if err == nil {
		return
	}
	msg := err.Error()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error message %q contains a token segment", msg)
		}
	}
}
