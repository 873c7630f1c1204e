package sessiontoken_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

func benchVerifier(b *testing.B, key testKey) *sessiontoken.Verifier {
	b.Helper()
	v, err := sessiontoken.New(sessiontoken.Config{
		Issuer:  testIssuer,
		Fetcher: newFakeFetcher(jwksOf(b, key)),
		Logger:  quietLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return v
}

// benchClaims are claims valid for an hour from now, made unique by n.
func benchClaims(n int) map[string]any {
	now := time.Now()
	return with(validClaims(now), map[string]any{
		"exp": now.Add(time.Hour).Unix(),
		"sid": strconv.Itoa(n),
	})
}

// BenchmarkVerifyRepeated measures the cache-hit path: the same token over
// and over.
func BenchmarkVerifyRepeated(b *testing.B) {
	key := newTestKey(b, "1")
	v := benchVerifier(b, key)
	tok := key.mint(b, benchClaims(0))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkVerifyUnique measures the full path: every token is new, so each
// is parsed, its signature checked and its claims validated and cached.
func BenchmarkVerifyUnique(b *testing.B) {
	key := newTestKey(b, "1")
	mint := func(b *testing.B) []string {
		b.Helper()
		toks := make([]string, b.N)
		for i := range toks {
			toks[i] = key.mint(b, benchClaims(i))
		}
		return toks
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		v := benchVerifier(b, key)
		toks := mint(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.Verify(ctx, toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		v := benchVerifier(b, key)
		toks := mint(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				if _, err := v.Verify(ctx, toks[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCachedTokenMemory measures the live heap that remembering one
// verified token costs: 20,000 tokens shaped like Wacht's (an
// organization with two permissions) are verified, and the heap in use is
// read before and after, each after a full collection.
func BenchmarkCachedTokenMemory(b *testing.B) {
	const n = 20_000
	key := newTestKey(b, "1")
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		toks[i] = key.mint(b, with(validClaims(now), map[string]any{
			"exp": now.Add(time.Hour).Unix(),
			"sub": strconv.Itoa(3_000_000_000 + i),
			"sid": strconv.Itoa(7_000_000_000 + i),
			"permissions": map[string]any{
				"organization": []string{"org:read", "org:write"},
			},
			"workspace": nil,
		}))
	}
	ctx := context.Background()
	for b.Loop() {
		v := benchVerifier(b, key)
		before := liveHeap()
		for _, tok := range toks {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		after := liveHeap()
		b.ReportMetric(float64(after-before)/n, "heap-B/token")
		runtime.KeepAlive(v)
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkDecodeClaims measures decoding a Wacht payload alone: with the
// plain-payload decoder, and with go-jose's, which any other payload
// takes.
func BenchmarkDecodeClaims(b *testing.B) {
	payload := []byte(wachtPayload)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := sessiontoken.DecodePlainClaims(payload); !ok {
				b.Fatal("not handled")
			}
		}
	})
	b.Run("go-jose", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sessiontoken.DecodeJoseClaims(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
