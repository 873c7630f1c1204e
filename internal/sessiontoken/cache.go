package sessiontoken

import (
	"crypto/sha256"
	"fmt"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
)

// cacheEntry is a verified token: its immutable claims and the key that
// verified it.
type cacheEntry struct {
	claims *Claims
	key    *verificationKey
}

// tokenKey returns the cache key of token: its SHA-256, so the cache never
// holds a token. The bytes are hashed in place (sha256 only reads them),
// which keeps the hit path free of a copy of the token.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// tokenCache maps the SHA-256 of a verified token to its entry.
type tokenCache = otter.Cache[[sha256.Size]byte, *cacheEntry]

// newTokenCache returns a bounded cache whose entries expire at their
// token's exp plus leeway, measured with now.
func newTokenCache(size int, now func() time.Time, leeway time.Duration) (*tokenCache, error) {
	c, err := otter.New(&otter.Options[[sha256.Size]byte, *cacheEntry]{
		MaximumSize: size,
		Clock:       clock{now: now},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[sha256.Size]byte, *cacheEntry]) time.Duration {
			return max(e.Value.claims.ExpiresAt.Add(leeway).Sub(now()), 0)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("new verified token cache: %w", err)
	}
	return c, nil
}

// clock gives the cache the verifier's time source.
type clock struct {
	now func() time.Time
}

// NowNano returns the current time in Unix nanoseconds.
func (c clock) NowNano() int64 { return c.now().UnixNano() }

// Tick returns the ticks of a ticker the cache uses for periodic clean-up.
func (c clock) Tick(d time.Duration) <-chan time.Time { return time.NewTicker(d).C }
