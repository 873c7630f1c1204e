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

	"github.com/maypok86/otter/v2"
)

// Defaults for the zero fields of [Config].
const (
	DefaultLeeway             = 5 * time.Second
	DefaultRefreshInterval    = time.Hour
	DefaultMinRefetchInterval = 10 * time.Second
	DefaultFetchTimeout       = 10 * time.Second
	DefaultCacheSize          = 100_000
	DefaultCacheBytes         = 32 << 20
	DefaultRefusalCacheSize   = 65_536
	DefaultMaxTokenBytes      = 16 << 10
)

// refusalTTL is how long a refusal is remembered.
const refusalTTL = 10 * time.Minute

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
	// CacheBytes bounds the heap the remembered verified tokens take, as
	// estimated per entry. Default 32 MiB.
	CacheBytes int64
	// RefusalCacheSize is the most refused tokens remembered, so that a
	// token refused once is refused again without a signature check.
	// Default 65,536 (about 10 MiB).
	RefusalCacheSize int
	// MaxTokenBytes is the longest token accepted; longer ones get
	// [ErrTokenTooLarge]. Default 16 KiB.
	MaxTokenBytes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives key set events; it never sees tokens. Default
	// slog.Default().
	Logger *slog.Logger
	// Observer is told of key set fetches and verified-token cache
	// lookups, for metrics; nil means none.
	Observer Observer
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
	observer      Observer
	// onSignatureCheck, set only by tests, is called before each
	// signature check.
	onSignatureCheck func()

	keys    atomic.Pointer[keySet]
	cache   *tokenCache
	refused *refusalCache
	perms   permSets
	hasher  keyHasher

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
		cfg.FetchTimeout < 0 || cfg.CacheSize < 0 || cfg.CacheBytes < 0 || cfg.RefusalCacheSize < 0 || cfg.MaxTokenBytes < 0 {
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
		observer:      cfg.Observer,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.logger == nil {
		v.logger = slog.Default()
	}
	if v.observer == nil {
		v.observer = nopObserver{}
	}
	cache, err := newTokenCache(cmp.Or(cfg.CacheSize, DefaultCacheSize), cmp.Or(cfg.CacheBytes, DefaultCacheBytes), v.now, v.leeway)
	if err != nil {
		return nil, err
	}
	refused, err := newRefusalCache(cmp.Or(cfg.RefusalCacheSize, DefaultRefusalCacheSize), refusalTTL, v.now)
	if err != nil {
		return nil, err
	}
	v.cache, v.refused = cache, refused
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
// The strings, slices and Metadata map of the returned *Claims may be
// shared with other callers and must not be modified. A token verified
// before is answered from a cache, keyed by the token's SHA-256, until its
// exp plus leeway, as long as the key that verified it is still in the key
// set. A token refused before is refused again from a second cache, keyed
// the same way, without a signature check: for as long as the key set is
// the same when it was refused for its signature or its kid, and never
// when it was refused as not yet valid.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxTokenBytes {
		return nil, ErrTokenTooLarge
	}
	sum := v.hasher.sum(token)
	if e, ok := v.cache.GetIfPresent(sum); ok {
		if e.stillValid(v.now(), v.leeway) && v.keys.Load().has(e.key) {
			v.observer.ObserveTokenCacheLookup(true)
			return e.claims(v.issuer), nil
		}
		v.cache.Invalidate(sum)
	}
	v.observer.ObserveTokenCacheLookup(false)
	if err := v.refusedBefore(ctx, sum); err != nil {
		return nil, err
	}
	e, err := v.cache.Get(ctx, sum, otter.LoaderFunc[[sha256.Size]byte, *cacheEntry](
		func(ctx context.Context, _ [sha256.Size]byte) (*cacheEntry, error) {
			e, ks, err := v.verifyFull(ctx, token)
			if err != nil {
				v.rememberRefusal(sum, err, ks)
			}
			return e, err
		}))
	if err != nil {
		return nil, err
	}
	if !v.keys.Load().has(e.key) {
		// Loaded by a verification that began before its key was removed.
		v.cache.Invalidate(sum)
		e, _, err = v.verifyFull(ctx, token)
		if err != nil {
			return nil, err
		}
	}
	return e.claims(v.issuer), nil
}

// refusedBefore returns the remembered refusal of the token whose hash is
// sum, or nil when the token must be verified. A refusal for a bad
// signature or an unknown kid holds only under the key set it was made
// under, and, as a first refusal of that kind does, it first asks for a
// fresh key set (the shared, rate-limited refetch), so that a key Wacht
// has just added is found whether or not the token was seen before.
func (v *Verifier) refusedBefore(ctx context.Context, sum [sha256.Size]byte) error {
	r, ok := v.refused.GetIfPresent(sum)
	if !ok {
		return nil
	}
	if r.keys == nil {
		return r.err
	}
	if v.keys.Load() == r.keys {
		if err := v.refetch(ctx); err != nil {
			return err
		}
		if v.keys.Load() == r.keys {
			return r.err
		}
	}
	v.refused.Invalidate(sum)
	return nil
}

// rememberRefusal remembers err for the token whose hash is sum, if err
// is a refusal that holds for good, or for as long as ks is the key set.
// A token refused as not yet valid becomes valid with time, so that
// refusal is never remembered; neither are errors that are not refusals.
func (v *Verifier) rememberRefusal(sum [sha256.Size]byte, err error, ks *keySet) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	switch e.Reason {
	case ReasonNotYetValid:
		return
	case ReasonBadSignature, ReasonUnknownKey:
		if ks == nil {
			return
		}
		v.refused.Set(sum, refusal{err: e, keys: ks})
	default:
		v.refused.Set(sum, refusal{err: e})
	}
}

// verifyFull parses token, verifies its signature, then decodes its
// claims with [decodeClaims] (a plain payload by decodePlainClaims, any
// other by go-jose's JSON decoder; a payload that go-jose refuses yields
// errBadClaims) and checks them. It returns the key set the signature was
// checked against, if any.
func (v *Verifier) verifyFull(ctx context.Context, token string) (*cacheEntry, *keySet, error) {
	var tok compactJWS
	if err := parseCompact(token, &tok); err != nil {
		return nil, nil, err
	}
	ks := v.keys.Load()
	digest := v.hasher.sum(tok.signingInput)
	key, err := v.verifySignature(&tok, &digest, ks)
	if retryable(err) {
		if ferr := v.refetch(ctx); ferr != nil {
			return nil, nil, ferr
		}
		if cur := v.keys.Load(); cur != ks {
			ks = cur
			key, err = v.verifySignature(&tok, &digest, ks)
		}
	}
	if err != nil {
		return nil, ks, err
	}
	var raw rawClaims
	if err := decodeClaims(tok.payload, &raw); err != nil {
		return nil, ks, errBadClaims
	}
	sid, err := checkClaims(&raw, v.issuer, v.now(), v.leeway)
	if err != nil {
		return nil, ks, err
	}
	return newCacheEntry(&raw, sid, key, &v.perms), ks, nil
}

// verifySignature checks tok, whose signing input hashes to digest, with
// the key named by its kid or, without a kid, with each key of ks, and
// returns the key that verified it.
func (v *Verifier) verifySignature(tok *compactJWS, digest *[sha256.Size]byte, ks *keySet) (*verificationKey, error) {
	if ks == nil || len(ks.keys) == 0 {
		return nil, ErrNoKeys
	}
	if len(tok.signature) != es256SignatureSize {
		// No key can verify it: not worth a key set fetch.
		return nil, errBadSigSize
	}
	if tok.kid != "" {
		k := ks.byKID(tok.kid)
		if k == nil {
			return nil, errUnknownKey
		}
		if !v.checkSignature(tok, k, digest) {
			return nil, errBadSig
		}
		return k, nil
	}
	for _, k := range ks.keys {
		if v.checkSignature(tok, k, digest) {
			return k, nil
		}
	}
	return nil, errBadSig
}

func (v *Verifier) checkSignature(tok *compactJWS, k *verificationKey, digest *[sha256.Size]byte) bool {
	if v.onSignatureCheck != nil {
		v.onSignatureCheck()
	}
	return tok.verify(k.pub, digest)
}

// retryable reports whether err may go away with a fresh key set.
func retryable(err error) bool {
	return err == ErrNoKeys || err == errUnknownKey || err == errBadSig
}
