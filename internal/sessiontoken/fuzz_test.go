package sessiontoken_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzVerify")

// fuzzKeyJWK is a throwaway P-256 key used only by the fuzz seed corpus, so
// the committed valid seeds keep verifying.
const fuzzKeyJWK = `{"use":"sig","kty":"EC","kid":"fuzz-1","crv":"P-256","alg":"ES256",` +
	`"x":"v6D9iewk9L7c1efGQ_qbQ2d5sNC11t4z7ypPqVsCCw4","y":"F4eN70mOnk-UHYOeyU85P9fElQ5PBYY3BqFdRdz0Y9Y",` +
	`"d":"y2U41a0kQvcZMFFELxCWeWl5ggmFLUJv3CVRnXF9T-A"}`

// fuzzNow is the clock of the fuzz verifier; the valid seeds are valid then.
var fuzzNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const fuzzSeedDir = "testdata/fuzz/FuzzVerify"

func fuzzKey(tb testing.TB) testKey {
	tb.Helper()
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(fuzzKeyJWK), &jwk); err != nil {
		tb.Fatalf("parse fuzz key: %v", err)
	}
	priv, ok := jwk.Key.(*ecdsa.PrivateKey)
	if !ok {
		tb.Fatalf("fuzz key is %T", jwk.Key)
	}
	return testKey{kid: jwk.KeyID, priv: priv}
}

func fuzzVerifier(tb testing.TB) *sessiontoken.Verifier {
	tb.Helper()
	return newVerifier(tb, newFakeFetcher(jwksOf(tb, fuzzKey(tb))), newFakeClock(fuzzNow), nil)
}

// fuzzSeeds builds the seed corpus: good tokens and hostile ones.
func fuzzSeeds(tb testing.TB) map[string]string {
	tb.Helper()
	key, forger := fuzzKey(tb), newTestKey(tb, "forger")
	good := validClaims(fuzzNow.Add(-10 * time.Second))
	valid := key.mint(tb, good)
	parts := strings.Split(valid, ".")
	return map[string]string{
		"valid":            valid,
		"valid_kid":        key.mintKID(tb, with(good, map[string]any{"metadata": map[string]any{"a": []any{1, "b", nil}}})),
		"valid_session_id": key.mint(tb, with(good, map[string]any{"sid": nil, "session_id": "42", "permissions": map[string]any{}})),
		"expired":          key.mint(tb, with(good, map[string]any{"exp": fuzzNow.Add(-time.Hour).Unix()})),
		"wrong_issuer":     key.mint(tb, with(good, map[string]any{"iss": "https://evil.example.test"})),
		"forged":           forger.mint(tb, good),
		"unknown_kid":      forger.mintKID(tb, good),
		"alg_none":         b64(`{"alg":"none"}`) + "." + parts[1] + ".",
		"hs256":            sign(tb, jose.HS256, []byte(fuzzKeyJWK), "", good),
		"tampered_payload": parts[0] + "." + b64(`{"iss":"`+testIssuer+`","sub":"1","sid":"1","exp":9999999999}`) + "." + parts[2],
		"five_segments":    valid + ".e30.e30",
		"garbage":          "\x00\xffnot.a.token",
		"empty":            "",
	}
}

func FuzzVerify(f *testing.F) {
	v := fuzzVerifier(f)
	f.Add(strings.Repeat("A", sessiontoken.DefaultMaxTokenBytes+1))
	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		c, err := v.Verify(ctx, token)
		if err != nil {
			if c != nil {
				t.Fatalf("Verify returned claims with error %v", err)
			}
			_, hasReason := sessiontoken.ReasonOf(err)
			if !hasReason && !errors.Is(err, sessiontoken.ErrTokenTooLarge) {
				t.Fatalf("Verify error %v has no reason", err)
			}
			if msg := err.Error(); len(msg) > 100 {
				t.Fatalf("error message of %d bytes; messages must be fixed phrases", len(msg))
			}
			return
		}
		if c.Issuer != testIssuer || c.Subject == "" || c.SessionID == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted token with claims %+v", c)
		}
		again, err := v.Verify(ctx, token)
		if err != nil || !cmp.Equal(again, c) {
			t.Fatalf("second Verify of an accepted token = %v, %v", again, err)
		}
	})
}

// TestFuzzSeedCorpus checks that the committed seeds still mean what their
// names say, and rewrites them with -update-fuzz-seeds.
func TestFuzzSeedCorpus(t *testing.T) {
	t.Parallel()
	if *updateFuzzSeeds {
		for name, tok := range fuzzSeeds(t) {
			body := "go test fuzz v1\nstring(" + strconv.Quote(tok) + ")\n"
			if err := os.WriteFile(filepath.Join(fuzzSeedDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]sessiontoken.Reason{
		"valid": 0, "valid_kid": 0, "valid_session_id": 0,
		"expired":          sessiontoken.ReasonExpired,
		"wrong_issuer":     sessiontoken.ReasonWrongIssuer,
		"forged":           sessiontoken.ReasonBadSignature,
		"unknown_kid":      sessiontoken.ReasonUnknownKey,
		"alg_none":         sessiontoken.ReasonUnsupportedAlgorithm,
		"hs256":            sessiontoken.ReasonUnsupportedAlgorithm,
		"tampered_payload": sessiontoken.ReasonBadSignature,
		"five_segments":    sessiontoken.ReasonMalformed,
		"garbage":          sessiontoken.ReasonMalformed,
		"empty":            sessiontoken.ReasonMalformed,
	}
	v := fuzzVerifier(t)
	for name, wantReason := range want {
		tok := readSeed(t, filepath.Join(fuzzSeedDir, name))
		_, err := v.Verify(context.Background(), tok)
		checkVerifyErr(t, err, tok, wantReason, nil)
	}
}

// readSeed reads a one-string seed file in the "go test fuzz v1" format.
func readSeed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read seed: %v", err)
	}
	body, ok := strings.CutPrefix(string(b), "go test fuzz v1\nstring(")
	body, ok2 := strings.CutSuffix(strings.TrimSpace(body), ")")
	if !ok || !ok2 {
		t.Fatalf("seed %s: not a go test fuzz v1 string", path)
	}
	s, err := strconv.Unquote(body)
	if err != nil {
		t.Fatalf("seed %s: %v", path, err)
	}
	return s
}

// FuzzClaimsDecode holds the plain-payload decoder to go-jose's: whatever
// payload it handles, go-jose must decode without error into the same
// claims. Its seeds are the cases of TestDecodePlainClaims.
func FuzzClaimsDecode(f *testing.F) {
	zero, _ := sessiontoken.DecodeJoseClaims([]byte(`{}`))
	for _, tc := range claimsDecodeCases {
		f.Add([]byte(tc.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, handled := sessiontoken.DecodePlainClaims(payload)
		if !handled {
			if !cmp.Equal(got, zero) {
				t.Fatalf("claims changed by a payload not handled: %+v", got)
			}
			return
		}
		checkSameClaims(t, payload, got)
	})
}
