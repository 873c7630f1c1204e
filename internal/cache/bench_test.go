package cache

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/pgtest"
)

func benchConfig(src *source) Config[user] {
	return Config[user]{Kind: "user", Load: src.load, TTL: time.Hour}
}

func BenchmarkGetMemoryHit(b *testing.B) {
	src := newSource()
	src.set("user_2x7Jk9", "Ada")
	c := newCache(b, benchConfig(src))
	ctx := context.Background()
	if _, err := c.Get(ctx, "user_2x7Jk9"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "user_2x7Jk9"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetPostgresHit(b *testing.B) {
	src := newSource()
	src.set("user_2x7Jk9", "Ada")
	c := newCache(b, withPostgres(b, benchConfig(src), pgtest.NewPool(b)))
	ctx := context.Background()
	if _, err := c.Get(ctx, "user_2x7Jk9"); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		c.mem.Invalidate("user_2x7Jk9") // skip the memory level
		start := time.Now()
		r, err := c.Get(ctx, "user_2x7Jk9")
		took = append(took, time.Since(start))
		if err != nil || r.Source != SourcePostgres {
			b.Fatalf("Get = %+v, %v; want a Postgres hit", r, err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}
