package sessiontoken_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// counter is a [sessiontoken.Observer] that counts what it is told.
type counter struct {
	hits, misses            atomic.Int64
	refreshOK, refreshFails atomic.Int64
}

func (c *counter) ObserveTokenCacheLookup(hit bool) {
	if hit {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
}

func (c *counter) ObserveJWKSRefresh(ok bool) {
	if ok {
		c.refreshOK.Add(1)
	} else {
		c.refreshFails.Add(1)
	}
}

// hook makes c the Observer of a verifier's Config.
func (c *counter) hook(cfg *sessiontoken.Config) { cfg.Observer = c }

// get returns the cache hits and misses.
func (c *counter) get() [2]int64 { return [2]int64{c.hits.Load(), c.misses.Load()} }

func TestCacheHitReturnsSameClaims(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	f := newFakeFetcher(jwksOf(t, key))
	var lc counter
	v := newVerifier(t, f, newFakeClock(baseTime), lc.hook)
	tok := key.mint(t, validClaims(baseTime))
	ctx := context.Background()

	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("cache hit returned different claims (-first +again):\n%s", diff)
		}
	}
	if got, want := lc.get(), [2]int64{3, 1}; got != want {
		t.Errorf("(hits, misses) = %v, want %v", got, want)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

func TestCacheExpiry(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	exp := baseTime.Add(35 * time.Second)
	tests := []struct {
		name       string
		at         time.Time
		wantReason sessiontoken.Reason
		wantHits   int64
	}{
		{name: "before_exp", at: exp.Add(-time.Second), wantHits: 1},
		{name: "within_leeway", at: exp.Add(sessiontoken.DefaultLeeway - time.Second), wantHits: 1},
		{name: "past_leeway", at: exp.Add(sessiontoken.DefaultLeeway + time.Second), wantReason: sessiontoken.ReasonExpired},
		{name: "long_after", at: exp.Add(24 * time.Hour), wantReason: sessiontoken.ReasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock(baseTime)
			var lc counter
			v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), clk, lc.hook)
			tok := key.mint(t, validClaims(baseTime))
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.at.Sub(baseTime))
			_, err := v.Verify(context.Background(), tok)
			checkVerifyErr(t, err, tok, tt.wantReason, nil)
			if got := lc.hits.Load(); got != tt.wantHits {
				t.Errorf("hits = %d, want %d", got, tt.wantHits)
			}
		})
	}
}

func TestFailuresAreNotCached(t *testing.T) {
	t.Parallel()
	key, forger := newTestKey(t, "1"), newTestKey(t, "2")
	var lc counter
	v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), newFakeClock(baseTime), lc.hook)
	tok := forger.mint(t, validClaims(baseTime))
	for range 3 {
		_, err := v.Verify(context.Background(), tok)
		checkVerifyErr(t, err, tok, sessiontoken.ReasonBadSignature, nil)
	}
	if got, want := lc.get(), [2]int64{0, 3}; got != want {
		t.Errorf("(hits, misses) = %v, want %v", got, want)
	}
}

func TestConcurrentSameTokenSharesOneResult(t *testing.T) {
	t.Parallel()
	key := newTestKey(t, "1")
	v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), newFakeClock(baseTime), nil)
	tok := key.mint(t, validClaims(baseTime))
	const callers = 200
	got := make([]*sessiontoken.Claims, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Errorf("Verify: %v", err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	for i, c := range got {
		if diff := cmp.Diff(got[0], c); diff != "" {
			t.Fatalf("caller %d got different claims (-caller 0 +caller %d):\n%s", i, i, diff)
		}
	}
}

func TestHasPermission(t *testing.T) {
	t.Parallel()
	c := &sessiontoken.Claims{
		OrganizationPermissions: []string{"org:read", "org:admin"},
		WorkspacePermissions:    []string{"ws:write"},
	}
	tests := []struct {
		perm string
		want bool
	}{
		{"org:read", true},
		{"org:admin", true},
		{"ws:write", true},
		{"ws:read", false},
		{"", false},
		{"ORG:READ", false},
	}
	for _, tt := range tests {
		if got := c.HasPermission(tt.perm); got != tt.want {
			t.Errorf("HasPermission(%q) = %v, want %v", tt.perm, got, tt.want)
		}
	}
	if (&sessiontoken.Claims{}).HasPermission("org:read") {
		t.Error("HasPermission on empty claims = true, want false")
	}
}

func TestReasonString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    sessiontoken.Reason
		want string
	}{
		{sessiontoken.ReasonMalformed, "malformed"},
		{sessiontoken.ReasonExpired, "expired"},
		{sessiontoken.ReasonNotYetValid, "not_yet_valid"},
		{sessiontoken.ReasonBadSignature, "bad_signature"},
		{sessiontoken.ReasonWrongIssuer, "wrong_issuer"},
		{sessiontoken.ReasonUnsupportedAlgorithm, "unsupported_algorithm"},
		{sessiontoken.ReasonUnknownKey, "unknown_key"},
		{sessiontoken.Reason(0), "reason(0)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("Reason(%d).String() = %q, want %q", int(tt.r), got, tt.want)
		}
	}
}
