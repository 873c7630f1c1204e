// Package pgtest gives tests their own freshly migrated Postgres database
// on a real server, and fails (never skips) when there is none.
//
// The server is found through TEST_DATABASE_URL, then DATABASE_URL, then
// postgres://postgres@127.0.0.1:5432/postgres. `make test` sets
// TEST_DATABASE_URL to a server it found or started.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// template holds the name of this process's migrated template database.
type template struct {
	once sync.Once
	name string
	err  error
}

// tmpl is the one piece of state this package keeps: the template is
// looked up or made once per test binary.
var tmpl template

// NewURL creates an empty, fully migrated database for this test alone and
// returns its URL. The database is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		tb.Fatalf("pgtest: no Postgres server at TEST_DATABASE_URL/DATABASE_URL or 127.0.0.1:5432 "+
			"(run `make test`, which finds or starts one): %v", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))

	tmpl.once.Do(func() { tmpl.name, tmpl.err = createTemplate(ctx, admin) })
	if tmpl.err != nil {
		tb.Fatalf("pgtest: create template database: %v", tmpl.err)
	}

	name := "authsvc_test_" + randomSuffix(tb)
	if _, err := admin.Exec(ctx, fmt.Sprintf("create database %s template %s", name, tmpl.name)); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("drop database if exists %s with (force)", name)); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})

	cfg, err := pgx.ParseConfig(ServerURL())
	if err != nil {
		tb.Fatalf("pgtest: parse server URL: %v", err)
	}
	cfg.Database = name
	return connString(cfg)
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

// createTemplate makes, once per set of migrations, a migrated database
// that test databases are copied from, so that each test pays for a copy
// rather than for the migrations. Test binaries running at once share it.
func createTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	sum := sha256.New()
	err := fs.WalkDir(postgres.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(postgres.Migrations(), path)
		sum.Write([]byte(path))
		sum.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "authsvc_tmpl_" + hex.EncodeToString(sum.Sum(nil)[:8])

	if _, err := admin.Exec(ctx, "select pg_advisory_lock($1)", int64(0x61757468737663)); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock($1)", int64(0x61757468737663))

	var exists bool
	if err := admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Migrate under a temporary name and rename when done, so that a run
	// that dies half way leaves no half-migrated template behind.
	building := name + "_building_" + hex.EncodeToString(randomBytes(4))
	if _, err := admin.Exec(ctx, "create database "+building); err != nil {
		return "", err
	}
	cfg := admin.Config().Copy()
	cfg.Database = building
	pool, err := postgres.Open(ctx, connString(cfg))
	if err != nil {
		return "", err
	}
	_, err = postgres.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("alter database %s rename to %s", building, name)); err != nil {
		return "", err
	}
	return name, nil
}

// connString renders cfg's server, user and database as a URL.
func connString(cfg *pgx.ConnConfig) string {
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") {
		q.Set("host", cfg.Host)
		q.Set("port", fmt.Sprint(cfg.Port))
	} else {
		u.Host = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func randomSuffix(tb testing.TB) string {
	tb.Helper()
	return hex.EncodeToString(randomBytes(8))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
