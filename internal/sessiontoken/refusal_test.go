package sessiontoken_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// countChecks makes v count its signature checks.
func countChecks(v *sessiontoken.Verifier) *atomic.Int64 {
	var n atomic.Int64
	sessiontoken.SetSignatureCheckHook(v, func() { n.Add(1) })
	return &n
}

// TestRefusalRemembered: a token refused once is refused again, for the
// same reason, without another signature check.
func TestRefusalRemembered(t *testing.T) {
	t.Parallel()
	key, forger := newTestKey(t, "1"), newTestKey(t, "2")
	good := validClaims(baseTime)
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		wantReason sessiontoken.Reason
		wantChecks int64
	}{
		{"forged", func(t *testing.T) string { return forger.mint(t, good) }, sessiontoken.ReasonBadSignature, 1},
		{"forged_known_kid", func(t *testing.T) string { return sign(t, "ES256", forger.priv, key.kid, good) },
			sessiontoken.ReasonBadSignature, 1},
		{"unknown_kid", func(t *testing.T) string { return forger.mintKID(t, good) }, sessiontoken.ReasonUnknownKey, 0},
		{"expired", func(t *testing.T) string {
			return key.mint(t, with(good, map[string]any{"exp": baseTime.Add(-time.Hour).Unix()}))
		}, sessiontoken.ReasonExpired, 1},
		{"wrong_issuer", func(t *testing.T) string {
			return key.mint(t, with(good, map[string]any{"iss": "https://evil.example.test"}))
		}, sessiontoken.ReasonWrongIssuer, 1},
		{"missing_sid", func(t *testing.T) string { return key.mint(t, with(good, map[string]any{"sid": nil})) },
			sessiontoken.ReasonMalformed, 1},
		{"alg_none", func(t *testing.T) string { return b64(`{"alg":"none"}`) + "." + b64JSON(t, good) + "." },
			sessiontoken.ReasonUnsupportedAlgorithm, 0},
		{"garbage", func(*testing.T) string { return "not.a.token" }, sessiontoken.ReasonMalformed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFetcher(jwksOf(t, key))
			v := newVerifier(t, f, newFakeClock(baseTime), nil)
			checks := countChecks(v)
			tok := tt.token(t)
			for range 5 {
				_, err := v.Verify(context.Background(), tok)
				checkVerifyErr(t, err, tok, tt.wantReason, nil)
			}
			if got := checks.Load(); got != tt.wantChecks {
				t.Errorf("signature checks = %d, want %d", got, tt.wantChecks)
			}
			if got := f.calls.Load(); got > 2 {
				t.Errorf("key set fetches = %d, want at most 2 (the first load and one refetch)", got)
			}
		})
	}
}

// TestRefusalLiftedByNewKeys: a token refused for its kid or its signature
// is accepted once the key set holds its key, both after an explicit
// refresh and through the rate-limited refetch a repeat asks for.
func TestRefusalLiftedByNewKeys(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newTestKey(t, "1"), newTestKey(t, "2")
	good := validClaims(baseTime)
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		wantReason sessiontoken.Reason
		refresh    bool
	}{
		{"unknown_kid_refresh", func(t *testing.T) string { return newKey.mintKID(t, good) }, sessiontoken.ReasonUnknownKey, true},
		{"unknown_kid_refetch", func(t *testing.T) string { return newKey.mintKID(t, good) }, sessiontoken.ReasonUnknownKey, false},
		{"no_kid_refresh", func(t *testing.T) string { return newKey.mint(t, good) }, sessiontoken.ReasonBadSignature, true},
		{"no_kid_refetch", func(t *testing.T) string { return newKey.mint(t, good) }, sessiontoken.ReasonBadSignature, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFetcher(jwksOf(t, oldKey))
			clk := newFakeClock(baseTime)
			v := newVerifier(t, f, clk, nil)
			ctx := context.Background()
			tok := tt.token(t)
			for range 2 {
				_, err := v.Verify(ctx, tok)
				checkVerifyErr(t, err, tok, tt.wantReason, nil)
			}
			f.serve(jwksOf(t, oldKey, newKey), nil)
			if tt.refresh {
				if err := v.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				// Within the refetch interval a repeat is still refused...
				_, err := v.Verify(ctx, tok)
				checkVerifyErr(t, err, tok, tt.wantReason, nil)
				// ...and past it, the repeat's refetch brings the key.
				clk.Advance(sessiontoken.DefaultMinRefetchInterval + time.Second)
			}
			c, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("Verify once the key set holds the key: %v", err)
			}
			if c.Subject != good["sub"] {
				t.Errorf("subject = %q, want %q", c.Subject, good["sub"])
			}
		})
	}
}

// TestNotYetValidNotRemembered: a token refused as not yet valid is
// accepted once its time comes.
func TestNotYetValidNotRemembered(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	for _, claim := range []string{"nbf", "iat"} {
		t.Run(claim, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(baseTime)
			v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), clk, nil)
			tok := key.mint(t, with(validClaims(baseTime), map[string]any{claim: baseTime.Add(20 * time.Second).Unix()}))
			for range 2 {
				_, err := v.Verify(context.Background(), tok)
				checkVerifyErr(t, err, tok, sessiontoken.ReasonNotYetValid, nil)
			}
			clk.Advance(20 * time.Second)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("Verify once valid: %v", err)
			}
		})
	}
}

// TestForgedStreamKeepsRefetchRate: never-seen forged tokens, with and
// without a kid, fetch the key set at most once per refetch interval.
func TestForgedStreamKeepsRefetchRate(t *testing.T) {
	t.Parallel()
	key, forger := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, key))
	clk := newFakeClock(baseTime)
	v := newVerifier(t, f, clk, nil)
	clk.Advance(sessiontoken.DefaultMinRefetchInterval)
	for i := range 200 {
		claims := with(validClaims(baseTime), map[string]any{"sid": strconv.Itoa(i)})
		tok := forger.mint(t, claims)
		if i%2 == 1 {
			tok = forger.mintKID(t, claims)
		}
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatal("forged token accepted")
		}
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("key set fetches = %d, want 2 (the first load and one refetch)", got)
	}
}

// TestRefusalNeverAccepts: verifying a refused token over and over, also
// concurrently with key set refreshes that do not bring its key, never
// accepts it.
func TestRefusalNeverAccepts(t *testing.T) {
	t.Parallel()
	key, forger := newTestKey(t, "1"), newTestKey(t, "2")
	f := newFakeFetcher(jwksOf(t, key))
	v := newVerifier(t, f, newFakeClock(baseTime), nil)
	toks := []string{forger.mint(t, validClaims(baseTime)), forger.mintKID(t, validClaims(baseTime))}
	other := newTestKey(t, "3")
	for i := range 50 {
		if i%10 == 0 {
			f.serve(jwksOf(t, key, newTestKey(t, strconv.Itoa(10+i))), nil)
			if i%20 == 0 {
				f.serve(jwksOf(t, key, other), nil)
			}
			if err := v.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		for _, tok := range toks {
			if c, err := v.Verify(context.Background(), tok); err == nil {
				t.Fatalf("forged token accepted with claims %+v", c)
			}
		}
	}
}

// TestCacheBounded: the verified-token cache holds at most its byte bound
// and at most its entry bound.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	tests := []struct {
		name    string
		entries int
		bytes   int64
	}{
		{"by_bytes", 100_000, 64 << 10},
		{"by_entries", 50, 32 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), newFakeClock(baseTime), func(c *sessiontoken.Config) {
				c.CacheSize, c.CacheBytes = tt.entries, tt.bytes
			})
			for i := range 600 {
				tok := key.mint(t, with(validClaims(baseTime), map[string]any{"sid": strconv.Itoa(i)}))
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Fatal(err)
				}
			}
			n, w := sessiontoken.CacheUse(v)
			if n == 0 || n > tt.entries || w > uint64(tt.bytes) {
				t.Errorf("cache holds %d entries weighing %d bytes; want 1 to %d entries and at most %d bytes", n, w, tt.entries, tt.bytes)
			}
		})
	}
}

// signRaw signs header and claims, given as JSON, with k: ES256 over the
// exact bytes, so that tests choose the header's form.
func signRaw(t *testing.T, k testKey, header, claims string) string {
	t.Helper()
	input := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestHeaderForms: Wacht's header, read without a JSON decoder, and the
// same members in other forms are read alike.
func TestHeaderForms(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "k1")
	claims := string(mustJSON(t, validClaims(baseTime)))
	tests := []struct {
		header     string
		wantReason sessiontoken.Reason
	}{
		{`{"alg":"ES256","typ":"JWT"}`, 0},
		{`{"typ":"JWT","alg":"ES256"}`, 0},
		{` {"alg" : "ES256"}`, 0},
		{`{"alg":"ES256","kid":"k1"}`, 0},
		{`{"alg":"ES256","typ":"JWT","crit":["exp"]}`, sessiontoken.ReasonMalformed},
		{`{"alg":"ES256","b64":false,"crit":["b64"]}`, sessiontoken.ReasonMalformed},
		{`{"ALG":"ES256"}`, sessiontoken.ReasonMalformed},
		{`{"alg":"es256"}`, sessiontoken.ReasonUnsupportedAlgorithm},
		{`{"alg":"ES256","typ":"JWT"} `, 0},
	}
	for _, tt := range tests {
		v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), newFakeClock(baseTime), nil)
		tok := signRaw(t, key, tt.header, claims)
		_, err := v.Verify(context.Background(), tok)
		if got, _ := sessiontoken.ReasonOf(err); got != tt.wantReason {
			t.Errorf("header %s: Verify error = %v, want reason %v", tt.header, err, tt.wantReason)
		}
	}
}
