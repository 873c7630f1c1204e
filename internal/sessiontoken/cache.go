package sessiontoken

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// cacheEntry is a verified token in the form the cache keeps it: the
// strings of its claims back to back in one string, its permission lists
// shared with the entries that have the same, the times as Unix
// seconds (JWT times are whole seconds), and the key that verified it.
// [cacheEntry.claims] rebuilds the *Claims.
type cacheEntry struct {
	key *verificationKey
	// text holds sub, sid, organization and workspace back to back; ends
	// marks where each ends.
	text string
	// perms are the organization permissions, then the workspace ones,
	// shared with other entries unless ownPerms.
	perms    []string
	ends     [4]uint16
	orgPerms uint16
	has      timeFlags
	ownPerms bool
	iat      int64
	exp      int64
	nbf      int64
	metadata map[string]any
}

// timeFlags says which optional time claims a token had.
type timeFlags uint8

const (
	hasIAT timeFlags = 1 << iota
	hasNBF
)

// newCacheEntry packs the claims of a token that passed every check.
func newCacheEntry(raw *rawClaims, sid string, key *verificationKey, perms *permSets) *cacheEntry {
	var org, ws []string
	if raw.Permissions != nil {
		org, ws = raw.Permissions.Organization, raw.Permissions.Workspace
	}
	var b strings.Builder
	b.Grow(len(raw.Subject) + len(sid) + len(raw.Organization) + len(raw.Workspace))
	e := &cacheEntry{key: key, exp: int64(*raw.Expiry), metadata: raw.Metadata}
	for i, s := range []string{raw.Subject, sid, raw.Organization, raw.Workspace} {
		b.WriteString(s)
		e.ends[i] = uint16(b.Len())
	}
	e.text = b.String()
	e.perms, e.ownPerms = perms.intern(org, ws)
	e.orgPerms = uint16(len(org))
	if raw.IssuedAt != nil {
		e.has |= hasIAT
		e.iat = int64(*raw.IssuedAt)
	}
	if raw.NotBefore != nil {
		e.has |= hasNBF
		e.nbf = int64(*raw.NotBefore)
	}
	return e
}

// permSets interns permission lists: the tokens of one organization and
// role carry the same lists, so their entries share one copy. It holds at
// most maxPermSets lists; beyond that, entries keep their own.
type permSets struct {
	mu   sync.Mutex
	sets map[string][]string
}

// maxPermSets bounds the distinct permission lists interned.
const maxPermSets = 4096

// intern returns the organization permissions followed by the workspace
// ones in one slice, shared with every other entry with the same lists
// when own is false.
func (p *permSets) intern(org, ws []string) (perms []string, own bool) {
	if len(org)+len(ws) == 0 {
		return nil, false
	}
	var buf [512]byte
	key := binary.AppendUvarint(buf[:0], uint64(len(org)))
	for _, list := range [][]string{org, ws} {
		for _, s := range list {
			key = binary.AppendUvarint(key, uint64(len(s)))
			key = append(key, s...)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if got, ok := p.sets[string(key)]; ok {
		return got, false
	}
	perms = append(append(make([]string, 0, len(org)+len(ws)), org...), ws...)
	if len(p.sets) >= maxPermSets {
		return perms, true
	}
	if p.sets == nil {
		p.sets = make(map[string][]string)
	}
	p.sets[string(key)] = perms
	return perms, false
}

// claims returns the entry's claims in a new *Claims; its strings and
// slices are shared with the entry and must not be modified.
func (e *cacheEntry) claims(issuer string) *Claims {
	c := &Claims{
		Issuer:       issuer,
		Subject:      e.text[:e.ends[0]],
		SessionID:    e.text[e.ends[0]:e.ends[1]],
		Organization: e.text[e.ends[1]:e.ends[2]],
		Workspace:    e.text[e.ends[2]:e.ends[3]],
		ExpiresAt:    time.Unix(e.exp, 0),
		Metadata:     e.metadata,
	}
	if e.orgPerms > 0 {
		c.OrganizationPermissions = e.perms[:e.orgPerms:e.orgPerms]
	}
	if len(e.perms) > int(e.orgPerms) {
		c.WorkspacePermissions = e.perms[e.orgPerms:]
	}
	if e.has&hasIAT != 0 {
		c.IssuedAt = time.Unix(e.iat, 0)
	}
	if e.has&hasNBF != 0 {
		c.NotBefore = time.Unix(e.nbf, 0)
	}
	return c
}

// stillValid repeats the time checks for a cached token, so a cached entry
// never outlives its exp (plus leeway) whatever the cache's own expiry does.
func (e *cacheEntry) stillValid(now time.Time, leeway time.Duration) bool {
	if now.Add(-leeway).After(time.Unix(e.exp, 0)) {
		return false
	}
	if e.has&hasNBF != 0 && now.Add(leeway).Before(time.Unix(e.nbf, 0)) {
		return false
	}
	return e.has&hasIAT == 0 || !now.Add(leeway).Before(time.Unix(e.iat, 0))
}

// entryOverhead is the heap an entry costs besides its strings: the
// cache's node holding the key and a pointer, the cacheEntry itself and
// the node's share of the cache's hash table, as BenchmarkCachedTokenMemory
// measures them (about 96 + 96 + 40 bytes).
const entryOverhead = 232

// weight is the heap, in bytes, that the entry is taken to cost. Metadata
// is rare and of any shape; its decoded maps are counted at 8 bytes per
// byte of its JSON, well above what encoding it as Go values costs.
func (e *cacheEntry) weight() uint32 {
	w := entryOverhead + roundUp(len(e.text))
	if e.ownPerms {
		w += 16 * len(e.perms)
		for _, p := range e.perms {
			w += roundUp(len(p))
		}
	}
	if e.metadata != nil {
		w += 8 * e.metadataBytes()
	}
	return uint32(min(w, 1<<30))
}

// metadataBytes estimates the JSON size of the metadata claim.
func (e *cacheEntry) metadataBytes() int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			n += 2
			for k, x := range v {
				n += len(k) + 4
				walk(x)
			}
		case []any:
			n += 2
			for _, x := range v {
				n++
				walk(x)
			}
		case string:
			n += len(v) + 2
		default:
			n += 8
		}
	}
	walk(e.metadata)
	return n
}

// roundUp rounds n up to the next multiple of 16, the granularity of small
// heap allocations.
func roundUp(n int) int { return (n + 15) &^ 15 }

// keyHasher hashes tokens into cache keys (their SHA-256, so the caches
// never hold a token) and signing inputs into the digests their
// signatures cover. A string is copied for hashing into a pooled buffer,
// which keeps the hit path free of allocations without a large stack
// frame (a new request's goroutine would have to grow its stack for it).
type keyHasher struct {
	bufs sync.Pool
}

// sum returns the SHA-256 of s.
func (h *keyHasher) sum(s string) [sha256.Size]byte {
	bp, _ := h.bufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < len(s) {
		b := make([]byte, 0, max(len(s), 2048))
		bp = &b
	}
	b := append((*bp)[:0], s...)
	sum := sha256.Sum256(b)
	*bp = b[:0]
	h.bufs.Put(bp)
	return sum
}

// tokenCache maps the SHA-256 of a verified token to its entry.
type tokenCache = otter.Cache[[sha256.Size]byte, *cacheEntry]

// newTokenCache returns a cache whose entries weigh what they cost in heap
// bytes, at least maxBytes/maxEntries each, so that it holds at most
// maxBytes and at most maxEntries. Entries expire at their token's exp
// plus leeway, measured with now.
func newTokenCache(maxEntries int, maxBytes int64, now func() time.Time, leeway time.Duration) (*tokenCache, error) {
	least := uint32(min(maxBytes/int64(maxEntries), 1<<30))
	c, err := otter.New(&otter.Options[[sha256.Size]byte, *cacheEntry]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ [sha256.Size]byte, e *cacheEntry) uint32 {
			return max(e.weight(), least, 1)
		},
		Clock: clock{now: now},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[sha256.Size]byte, *cacheEntry]) time.Duration {
			return max(time.Unix(e.Value.exp, 0).Add(leeway).Sub(now()), 0)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("new verified token cache: %w", err)
	}
	return c, nil
}

// refusal is a token refused before, and why.
type refusal struct {
	err *Error
	// keys is the key set under which a refusal that a key set change may
	// lift (a bad signature, an unknown kid) was made; nil for the others.
	keys *keySet
}

// refusalCache maps the SHA-256 of a refused token to its refusal.
type refusalCache = otter.Cache[[sha256.Size]byte, refusal]

// newRefusalCache returns a cache of at most size refusals, each kept for
// ttl after it was made.
func newRefusalCache(size int, ttl time.Duration, now func() time.Time) (*refusalCache, error) {
	c, err := otter.New(&otter.Options[[sha256.Size]byte, refusal]{
		MaximumSize:      size,
		Clock:            clock{now: now},
		ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, refusal](ttl),
	})
	if err != nil {
		return nil, fmt.Errorf("new refused token cache: %w", err)
	}
	return c, nil
}

// clock gives the caches the verifier's time source.
type clock struct {
	now func() time.Time
}

// NowNano returns the current time in Unix nanoseconds.
func (c clock) NowNano() int64 { return c.now().UnixNano() }

// Tick returns the ticks of a ticker the cache uses for periodic clean-up.
func (c clock) Tick(d time.Duration) <-chan time.Time { return time.NewTicker(d).C }
