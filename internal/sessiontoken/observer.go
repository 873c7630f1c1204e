package sessiontoken

// Observer is told of key set fetches and verified-token cache lookups,
// for metrics. Its methods are called concurrently, ObserveTokenCacheLookup
// on every verification, and must be quick.
type Observer interface {
	// ObserveJWKSRefresh reports one fetch of the key set (periodic,
	// explicit or on demand) and whether it succeeded. Fetches are made
	// one at a time.
	ObserveJWKSRefresh(ok bool)
	// ObserveTokenCacheLookup reports, for every verification that passed
	// the size check, whether the verified-token cache answered it.
	ObserveTokenCacheLookup(hit bool)
}

// nopObserver is the Observer of verifiers configured without one.
type nopObserver struct{}

func (nopObserver) ObserveJWKSRefresh(bool)      {}
func (nopObserver) ObserveTokenCacheLookup(bool) {}
