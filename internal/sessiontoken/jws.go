package sessiontoken

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
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
// byte for byte, and wachtHeaderSegment its base64url form as Wacht
// sends it; neither needs decoding.
const (
	wachtHeader        = `{"alg":"ES256","typ":"JWT"}`
	wachtHeaderSegment = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9"
)

// joseHeader holds the protected header members that matter here.
type joseHeader struct {
	Alg  string `json:"alg"`
	Kid  string `json:"kid"`
	Crit []any  `json:"crit"`
	B64  *bool  `json:"b64"`
}

// parseCompact splits token into its three segments and decodes them into
// tok. It refuses, before any signature check: anything but exactly three
// segments, bad base64, a header that is not a JSON object or has no alg,
// an alg other than ES256, critical header parameters (none is understood)
// and an unencoded payload. A header other than Wacht's own is decoded
// with go-jose's JSON decoder, which matches member names
// case-sensitively, as the JOSE specifications require. The payload is
// only base64-decoded: its JSON is decoded after the signature check. The
// payload and the signature share one allocation.
func parseCompact(token string, tok *compactJWS) error {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return errNotCompact
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 {
		return errNotCompact
	}
	var rawHeader []byte
	isWacht := h == wachtHeaderSegment
	if !isWacht {
		var err error
		if rawHeader, err = base64.RawURLEncoding.DecodeString(h); err != nil {
			return errNotCompact
		}
		isWacht = string(rawHeader) == wachtHeader
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, enc.DecodedLen(len(p))+enc.DecodedLen(len(s)))
	np, err := enc.Decode(buf, []byte(p))
	if err != nil {
		return errNotCompact
	}
	ns, err := enc.Decode(buf[np:], []byte(s))
	if err != nil {
		return errNotCompact
	}
	hdr := joseHeader{Alg: "ES256"}
	if !isWacht {
		if hdr, err = decodeHeader(rawHeader); err != nil {
			return err
		}
	}
	switch {
	case hdr.Alg == "":
		return errBadHeader
	case hdr.Alg != "ES256":
		return errAlgorithm
	case hdr.Crit != nil || (hdr.B64 != nil && !*hdr.B64):
		return errCritical
	}
	*tok = compactJWS{
		signingInput: token[:len(h)+1+len(p)],
		kid:          hdr.Kid,
		payload:      buf[:np:np],
		signature:    buf[np : np+ns : np+ns],
	}
	return nil
}

// decodeHeader decodes a protected header that is not Wacht's own form.
func decodeHeader(raw []byte) (joseHeader, error) {
	var hdr joseHeader
	if err := josejson.Unmarshal(raw, &hdr); err != nil {
		return joseHeader{}, errBadHeader
	}
	return hdr, nil
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

// verify checks the ES256 signature with pub, given the SHA-256 of the
// signing input. It does what ecdsa.Verify does with R and S read as
// 32-byte big-endian integers (refuse a zero R or S, encode both as
// minimal DER integers, then ecdsa.VerifyASN1, which requires them to be
// in [1, N-1]), without the big.Int and ASN.1 builder allocations. The
// caller has checked the signature's length.
func (t *compactJWS) verify(pub *ecdsa.PublicKey, digest *[sha256.Size]byte) bool {
	var buf [derSignatureMax]byte
	der, ok := appendDERSignature(buf[:0], t.signature)
	return ok && ecdsa.VerifyASN1(pub, digest[:], der)
}

// derSignatureMax is the longest DER encoding of an ES256 signature: a
// SEQUENCE of two INTEGERs of at most 33 content bytes each.
const derSignatureMax = 2 + 2*(2+33)

// appendDERSignature appends to b the DER encoding of the 64-byte R || S
// signature sig, SEQUENCE { INTEGER R, INTEGER S }, as crypto/ecdsa
// encodes it: leading zero bytes dropped, a zero byte prepended when the
// high bit is set. It reports false, as ecdsa.Verify refuses, when R or S
// is zero.
func appendDERSignature(b, sig []byte) ([]byte, bool) {
	r, s := trimLeadingZeros(sig[:32]), trimLeadingZeros(sig[32:])
	if len(r) == 0 || len(s) == 0 {
		return b, false
	}
	b = append(b, 0x30, byte(derIntLen(r)+derIntLen(s)))
	return appendDERInt(appendDERInt(b, r), s), true
}

func trimLeadingZeros(n []byte) []byte {
	for len(n) > 0 && n[0] == 0 {
		n = n[1:]
	}
	return n
}

// derIntLen is the encoded length of the DER INTEGER of the positive,
// minimal big-endian n: tag, length and content.
func derIntLen(n []byte) int {
	return 2 + len(n) + int(n[0]>>7)
}

func appendDERInt(b, n []byte) []byte {
	b = append(b, 0x02, byte(len(n)+int(n[0]>>7)))
	if n[0]&0x80 != 0 {
		b = append(b, 0)
	}
	return append(b, n...)
}
