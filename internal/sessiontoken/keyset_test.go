package sessiontoken_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

func TestRefetchFailureKeepsOldKeys(t *testing.T) {
	t.Parallel()
	key, forger := newTestKey(t, "1"), newTestKey(t, "2")
	rsaOnly := []byte(`{"keys":[{"kty":"RSA","kid":"9","use":"sig","alg":"RS256","n":"sXch","e":"AQAB"}]}`)
	tests := []struct {
		name string
		body []byte
		err  error
	}{
		{name: "fetch_error", err: errors.New("connection refused")},
		{name: "not_json", body: []byte("<html>bad gateway</html>")},
		{name: "empty_set", body: []byte(`{"keys":[]}`)},
		{name: "no_es256_key", body: rsaOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeFetcher(jwksOf(t, key))
			clk := newFakeClock(baseTime)
			var obs counter
			v := newVerifier(t, f, clk, obs.hook)
			f.serve(tt.body, tt.err)
			ctx := context.Background()

			if err := v.Refresh(ctx); err == nil {
				t.Fatal("Refresh succeeded, want error")
			}
			clk.Advance(time.Minute)
			_, err := v.Verify(ctx, forger.mint(t, validClaims(clk.Now()))) // triggers a failing refetch
			if r, _ := sessiontoken.ReasonOf(err); r != sessiontoken.ReasonBadSignature {
				t.Errorf("Verify(forged) err = %v, want bad_signature", err)
			}
			if !v.Ready() {
				t.Error("Ready() = false after failed refreshes, want true")
			}
			if _, err := v.Verify(ctx, key.mint(t, validClaims(clk.Now()))); err != nil {
				t.Errorf("Verify(good token) after failed refreshes: %v", err)
			}
			if got, want := [2]int64{obs.refreshOK.Load(), obs.refreshFails.Load()}, [2]int64{1, 2}; got != want {
				t.Errorf("ObserveJWKSRefresh (ok, failed) = %v, want %v", got, want)
			}
		})
	}
}

func TestKeySetFiltering(t *testing.T) {
	t.Parallel()
	good, encKey := newTestKey(t, "1"), newTestKey(t, "enc")
	encJWK := encKey.publicJWK()
	encJWK.Use = "enc"
	encJWK.Algorithm = ""
	privJWK := newTestKey(t, "priv")
	doc := map[string]any{"keys": []any{
		map[string]any{"kty": "OKP", "crv": "X448", "x": "AAAA"}, // unsupported type
		map[string]any{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
		map[string]any{"kty": "EC", "crv": "P-384", "alg": "ES384", "x": "x", "y": "y"},
		map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256"},
		encJWK,
		map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES384",
			"x": jwkField(t, good.publicJWK(), "x"), "y": jwkField(t, good.publicJWK(), "y")},
		privateJWK(t, privJWK),
		good.publicJWK(),
	}}
	body := mustJSON(t, doc)
	f := newFakeFetcher(body)
	v := newVerifier(t, f, newFakeClock(baseTime), nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, good.mint(t, validClaims(baseTime))); err != nil {
		t.Errorf("Verify(token of the usable key): %v", err)
	}
	for _, k := range []testKey{encKey, privJWK} {
		_, err := v.Verify(ctx, k.mint(t, validClaims(baseTime)))
		if r, _ := sessiontoken.ReasonOf(err); r != sessiontoken.ReasonBadSignature {
			t.Errorf("Verify(token of skipped key %q) err = %v, want bad_signature", k.kid, err)
		}
	}
}
