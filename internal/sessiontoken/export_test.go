package sessiontoken

import josejson "github.com/go-jose/go-jose/v4/json"

// SetSignatureCheckHook makes v call f before each signature check.
func SetSignatureCheckHook(v *Verifier, f func()) { v.onSignatureCheck = f }

// CacheUse returns the verified-token cache's entries and their total
// weight in estimated heap bytes.
func CacheUse(v *Verifier) (entries int, bytes uint64) {
	v.cache.CleanUp()
	return v.cache.EstimatedSize(), v.cache.WeightedSize()
}

// DecodePlainClaims decodes payload with the plain-payload decoder and
// reports whether it handled it; the claims are a *rawClaims.
func DecodePlainClaims(payload []byte) (any, bool) {
	var raw rawClaims
	ok := decodePlainClaims(payload, &raw)
	return &raw, ok
}

// DecodeJoseClaims decodes payload with go-jose's decoder, as a payload
// that is not plain is; the claims are a *rawClaims.
func DecodeJoseClaims(payload []byte) (any, error) {
	var raw rawClaims
	err := josejson.Unmarshal(payload, &raw)
	return &raw, err
}
