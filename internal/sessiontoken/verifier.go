// Package sessiontoken verifies Wacht session tokens against the Frontend
// API's key set, without a network call per token.
package sessiontoken

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/maypok86/otter/v2"
)

// Defaults for the zero fields of [Config].
const (
	DefaultLeeway             = 5 * time.Second
	DefaultRefreshInterval    = time.Hour
	DefaultMinRefetchInterval = 10 * time.Second
	DefaultFetchTimeout       = 10 * time.Second
	DefaultCacheSize          = 100_000
	DefaultMaxTokenBytes      = 16 << 10
)

// allowedAlgorithms is the only signature algorithm Wacht session tokens use.
var allowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256}

// KeySetFetcher returns the raw JWKS document of the Frontend API
// (/.well-known/jwks.json). It must be safe for concurrent use.
type KeySetFetcher interface {
	FetchJWKS(ctx context.Context) ([]byte, error)
}

// Config configures a [Verifier]. Issuer and Fetcher are required; zero
// values of the other fields select the defaults.
type Config struct {
	// Issuer is the Frontend API origin; a token's iss must equal it exactly.
	Issuer string
	// Fetcher fetches the key set.
	Fetcher KeySetFetcher
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 5s.
	Leeway time.Duration
	// RefreshInterval is the period of [Verifier.Run]'s refresh. Default 1h.
	RefreshInterval time.Duration
	// MinRefetchInterval is the least time between two on-demand fetches,
	// those caused by an unknown kid or a failed signature check.
	// Default 10s.
	MinRefetchInterval time.Duration
	// FetchTimeout bounds one key set fetch. Default 10s.
	FetchTimeout time.Duration
	// CacheSize is the most verified tokens remembered. Default 100,000.
	CacheSize int
	// MaxTokenBytes is the longest token accepted; longer ones get
	// [ErrTokenTooLarge]. Default 16 KiB.
	MaxTokenBytes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives key set events; it never sees tokens. Default
	// slog.Default().
	Logger *slog.Logger
	// OnRefresh, if set, is called after every key set fetch (periodic,
	// explicit or on demand) with whether it succeeded.
	OnRefresh func(ok bool)
	// OnCacheLookup, if set, is called on every verification that passed
	// the size check with whether the verified-token cache answered it.
	OnCacheLookup func(hit bool)
}

// Verifier checks Wacht session tokens. It is safe for concurrent use.
type Verifier struct {
	issuer        string
	fetcher       KeySetFetcher
	leeway        time.Duration
	refreshEvery  time.Duration
	minRefetch    time.Duration
	fetchTimeout  time.Duration
	maxTokenBytes int
	now           func() time.Time
	logger        *slog.Logger
	onRefresh     func(bool)
	onCacheLookup func(bool)

	keys  atomic.Pointer[keySet]
	cache *otter.Cache[[sha256.Size]byte, *cacheEntry]

	fetchMu   sync.Mutex
	inflight  *flight
	lastFetch time.Time
}

// New returns a Verifier with no keys loaded; call [Verifier.Refresh] to load
// them and [Verifier.Run] to keep them fresh.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("new session token verifier: issuer is required")
	}
	if cfg.Fetcher == nil {
		return nil, errors.New("new session token verifier: fetcher is required")
	}
	if cfg.Leeway < 0 || cfg.RefreshInterval < 0 || cfg.MinRefetchInterval < 0 ||
		cfg.FetchTimeout < 0 || cfg.CacheSize < 0 || cfg.MaxTokenBytes < 0 {
		return nil, errors.New("new session token verifier: negative setting")
	}
	v := &Verifier{
		issuer:        cfg.Issuer,
		fetcher:       cfg.Fetcher,
		leeway:        cmp.Or(cfg.Leeway, DefaultLeeway),
		refreshEvery:  cmp.Or(cfg.RefreshInterval, DefaultRefreshInterval),
		minRefetch:    cmp.Or(cfg.MinRefetchInterval, DefaultMinRefetchInterval),
		fetchTimeout:  cmp.Or(cfg.FetchTimeout, DefaultFetchTimeout),
		maxTokenBytes: cmp.Or(cfg.MaxTokenBytes, DefaultMaxTokenBytes),
		now:           cfg.Now,
		logger:        cfg.Logger,
		onRefresh:     cfg.OnRefresh,
		onCacheLookup: cfg.OnCacheLookup,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.logger == nil {
		v.logger = slog.Default()
	}
	cache, err := newTokenCache(cmp.Or(cfg.CacheSize, DefaultCacheSize), v.now, v.leeway)
	if err != nil {
		return nil, err
	}
	v.cache = cache
	return v, nil
}

// Ready reports whether a usable key set is loaded.
func (v *Verifier) Ready() bool {
	ks := v.keys.Load()
	return ks != nil && len(ks.keys) > 0
}

// Verify checks token and returns its claims.
//
// A refused token yields an error carrying a [Reason] (see [ReasonOf]).
// Other errors are [ErrTokenTooLarge], [ErrNoKeys] (no key set loaded), or
// ctx's error when ctx ended while waiting for a key set fetch.
//
// The returned *Claims may be shared with other callers and must not be
// modified. A token verified before is answered from a cache, keyed by the
// token's SHA-256, until its exp plus leeway, as long as the key that
// verified it is still in the key set.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxTokenBytes {
		return nil, ErrTokenTooLarge
	}
	sum := tokenKey(token)
	if e, ok := v.cache.GetIfPresent(sum); ok {
		if e.claims.stillValid(v.now(), v.leeway) && v.keys.Load().has(e.key) {
			v.cacheLookup(true)
			return e.claims, nil
		}
		v.cache.Invalidate(sum)
	}
	v.cacheLookup(false)
	e, err := v.cache.Get(ctx, sum, otter.LoaderFunc[[sha256.Size]byte, *cacheEntry](
		func(ctx context.Context, _ [sha256.Size]byte) (*cacheEntry, error) {
			return v.verifyFull(ctx, token)
		}))
	if err != nil {
		return nil, err
	}
	if !v.keys.Load().has(e.key) {
		// Loaded by a verification that began before its key was removed.
		v.cache.Invalidate(sum)
		e, err = v.verifyFull(ctx, token)
		if err != nil {
			return nil, err
		}
	}
	return e.claims, nil
}

func (v *Verifier) cacheLookup(hit bool) {
	if v.onCacheLookup != nil {
		v.onCacheLookup(hit)
	}
}

// verifyFull parses token, verifies its signature and then its claims.
func (v *Verifier) verifyFull(ctx context.Context, token string) (*cacheEntry, error) {
	tok, err := jwt.ParseSigned(token, allowedAlgorithms)
	if err != nil {
		return nil, parseError(err)
	}
	kid := tok.Headers[0].KeyID

	ks := v.keys.Load()
	raw, key, err := verifySignature(tok, ks, kid)
	if retryable(err) {
		if ferr := v.refetch(ctx); ferr != nil {
			return nil, ferr
		}
		if cur := v.keys.Load(); cur != ks {
			ks = cur
			raw, key, err = verifySignature(tok, ks, kid)
		}
	}
	if err != nil {
		return nil, err
	}
	claims, err := checkClaims(raw, v.issuer, v.now(), v.leeway)
	if err != nil {
		return nil, err
	}
	return &cacheEntry{claims: claims, key: key}, nil
}

// verifySignature checks tok with the key named by kid or, without a kid,
// with each key of ks, and decodes the payload once a key verifies it.
func verifySignature(tok *jwt.JSONWebToken, ks *keySet, kid string) (*rawClaims, *verificationKey, error) {
	if ks == nil || len(ks.keys) == 0 {
		return nil, nil, ErrNoKeys
	}
	if kid != "" {
		k := ks.byKID(kid)
		if k == nil {
			return nil, nil, newError(ReasonUnknownKey, "kid not in key set", nil)
		}
		raw, err := verifyWith(tok, k)
		return raw, k, err
	}
	var err error
	for _, k := range ks.keys {
		var raw *rawClaims
		raw, err = verifyWith(tok, k)
		if err == nil {
			return raw, k, nil
		}
		if r, _ := ReasonOf(err); r != ReasonBadSignature {
			return nil, nil, err
		}
	}
	return nil, nil, err
}

// verifyWith checks tok's signature with k and decodes the verified payload.
func verifyWith(tok *jwt.JSONWebToken, k *verificationKey) (*rawClaims, error) {
	var raw rawClaims
	if err := tok.Claims(k.pub, &raw); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, newError(ReasonBadSignature, "", err)
		}
		return nil, newError(ReasonMalformed, "bad claims or header", err)
	}
	return &raw, nil
}

// retryable reports whether err may go away with a fresh key set.
func retryable(err error) bool {
	if errors.Is(err, ErrNoKeys) {
		return true
	}
	r, ok := ReasonOf(err)
	return ok && (r == ReasonUnknownKey || r == ReasonBadSignature)
}

// parseError classifies an error of jwt.ParseSigned.
func parseError(err error) error {
	var alg *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &alg) && alg.Got != "" {
		return newError(ReasonUnsupportedAlgorithm, "alg is not ES256", err)
	}
	return newError(ReasonMalformed, "not a JWS compact token", err)
}
