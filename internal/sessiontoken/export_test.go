package sessiontoken

// SetSignatureCheckHook makes v call f before each signature check.
func SetSignatureCheckHook(v *Verifier, f func()) { v.onSignatureCheck = f }

// CacheUse returns the verified-token cache's entries and their total
// weight in estimated heap bytes.
func CacheUse(v *Verifier) (entries int, bytes uint64) {
	v.cache.CleanUp()
	return v.cache.EstimatedSize(), v.cache.WeightedSize()
}
