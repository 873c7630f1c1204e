package sessiontoken

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"

	josejson "github.com/go-jose/go-jose/v4/json"
)

// es256SignatureSize is the size of an ES256 JWS signature: R and S, each
// 32 bytes big-endian (RFC 7518, section 3.4).
const es256SignatureSize = 64

// compactJWS is a token in the JWS compact serialization, split and
// decoded only as far as checking its signature needs. Nothing in it is
// trusted until [compactJWS.verify] succeeds.
type compactJWS struct {
	// signingInput is the token up to its last dot, exactly as received:
	// what the signature covers.
	signingInput string
	kid          string
	payload      []byte
	signature    []byte
}

// wachtHeader is the protected header of every Wacht session token,
// byte for byte; it needs no JSON decoding.
const wachtHeader = `{"alg":"ES256","typ":"JWT"}`

// joseHeader holds the protected header members that matter here.
type joseHeader struct {
	Alg  string `json:"alg"`
	Kid  string `json:"kid"`
	Crit []any  `json:"crit"`
	B64  *bool  `json:"b64"`
}

// parseCompact splits token into its three segments and decodes them. It
// refuses, before any signature check: anything but exactly three
// segments, bad base64, a header that is not a JSON object or has no alg,
// an alg other than ES256, critical header parameters (none is understood)
// and an unencoded payload. The JSON decoder is go-jose's, which matches
// member names case-sensitively, as the JOSE specifications require.
func parseCompact(token string) (*compactJWS, error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errNotCompact
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		return nil, errNotCompact
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, errNotCompact
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, errNotCompact
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errNotCompact
	}
	var hdr joseHeader
	if string(rawHeader) == wachtHeader {
		hdr.Alg = "ES256"
	} else if err := josejson.Unmarshal(rawHeader, &hdr); err != nil {
		return nil, errBadHeader
	}
	switch {
	case hdr.Alg == "":
		return nil, errBadHeader
	case hdr.Alg != "ES256":
		return nil, errAlgorithm
	case hdr.Crit != nil || (hdr.B64 != nil && !*hdr.B64):
		return nil, errCritical
	}
	return &compactJWS{signingInput: token[:len(h)+1+len(p)], kid: hdr.Kid, payload: payload, signature: sig}, nil
}

// The refusals of parseCompact and verify. They carry no cause, so they
// can be shared.
var (
	errNotCompact  = newError(ReasonMalformed, "not a JWS compact token", nil)
	errBadHeader   = newError(ReasonMalformed, "bad JOSE header", nil)
	errCritical    = newError(ReasonMalformed, "unsupported critical header", nil)
	errAlgorithm   = newError(ReasonUnsupportedAlgorithm, "alg is not ES256", nil)
	errBadSigSize  = newError(ReasonBadSignature, "", nil)
	errBadSig      = newError(ReasonBadSignature, "", nil)
	errUnknownKey  = newError(ReasonUnknownKey, "kid not in key set", nil)
	errBadClaims   = newError(ReasonMalformed, "bad claims", nil)
	errMissingSub  = newError(ReasonMalformed, "missing sub claim", nil)
	errMissingSID  = newError(ReasonMalformed, "missing sid claim", nil)
	errMissingExp  = newError(ReasonMalformed, "missing exp claim", nil)
	errWrongIssuer = newError(ReasonWrongIssuer, "", nil)
)

// digest is the SHA-256 of the signing input.
func (t *compactJWS) digest() [sha256.Size]byte {
	return sha256.Sum256([]byte(t.signingInput))
}

// verify checks the ES256 signature, whose digest is given, with pub: R
// and S as 32-byte big-endian integers, which crypto/ecdsa requires to be
// in [1, N-1]. The caller has checked the signature's length.
func (t *compactJWS) verify(pub *ecdsa.PublicKey, digest *[sha256.Size]byte) bool {
	r := new(big.Int).SetBytes(t.signature[:32])
	s := new(big.Int).SetBytes(t.signature[32:])
	return ecdsa.Verify(pub, digest[:], r, s)
}
