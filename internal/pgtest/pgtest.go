// Package pgtest gives tests their own freshly migrated Postgres database
// on a real server, and fails (never skips) when there is none.
//
// The server is found through TEST_DATABASE_URL, then DATABASE_URL, then
// postgres://postgres@127.0.0.1:5432/postgres. `make test` sets
// TEST_DATABASE_URL to a server it found or started.
package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/freshdb"
	"github.com/authsvc/authsvc/internal/postgres"
)

// defaultURL is tried when neither TEST_DATABASE_URL nor DATABASE_URL is set.
const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL is the URL of the Postgres server that tests use.
func ServerURL() string {
	for _, name := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return defaultURL
}

// NewURL creates an empty, fully migrated database for this test alone and
// returns its URL. The database is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := freshdb.Create(ctx, ServerURL(), "authsvc_test_")
	if err != nil {
		tb.Fatalf("pgtest: %v (the server is TEST_DATABASE_URL, DATABASE_URL or 127.0.0.1:5432; "+
			"`make test` finds or starts one)", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return db.URL
}

// NewPool creates a database as [NewURL] does and returns a pool on it,
// closed when the test ends.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := NewURL(tb)
	pool, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}
