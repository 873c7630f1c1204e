// Package freshdb creates empty, fully migrated Postgres databases, each a
// copy of a template database migrated once per set of migrations.
package freshdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/authsvc/authsvc/internal/postgres"
)

// templateLock is the advisory lock under which a template is made.
const templateLock = int64(0x61757468737663)

// Database is a database that Create made.
type Database struct {
	// Name is the database's name on its server.
	Name string
	// URL reaches the database with the server URL's credentials, which it
	// carries: it is for connecting, never for logs.
	URL    string
	server string
}

// Create creates an empty, fully migrated database named prefix and a
// random suffix on the server at serverURL. The template it copies is
// made on first use and kept on the server, named after a digest of the
// migrations, for the next Create there (processes running at once
// share it).
func Create(ctx context.Context, serverURL, prefix string) (*Database, error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, errors.New("parse the Postgres server URL: not a valid URL or DSN")
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("create the template database: %w", err)
	}
	d := &Database{Name: prefix + hex.EncodeToString(randomBytes(8)), server: serverURL}
	if _, err := admin.Exec(ctx, fmt.Sprintf("create database %s template %s", d.Name, tmpl)); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.Name, err)
	}
	cfg.Database = d.Name
	d.URL = urlOf(cfg)
	return d, nil
}

// Drop drops the database, closing any connection left to it.
func (d *Database) Drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.server)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "drop database if exists "+d.Name+" with (force)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}

// ensureTemplate returns the name of the migrated template of the current
// migrations, making it first if the server has none, so that each
// database costs a copy rather than the migrations.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
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
	exists := func() (bool, error) {
		var ok bool
		err := admin.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", name).Scan(&ok)
		return ok, err
	}
	if ok, err := exists(); err != nil || ok {
		return name, err
	}

	if _, err := admin.Exec(ctx, "select pg_advisory_lock($1)", templateLock); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock($1)", templateLock)
	if ok, err := exists(); err != nil || ok {
		return name, err
	}
	// Migrate under a temporary name and rename when done, so that a run
	// that dies half way leaves no half-migrated template behind.
	building := name + "_building_" + hex.EncodeToString(randomBytes(4))
	if _, err := admin.Exec(ctx, "create database "+building); err != nil {
		return "", err
	}
	cfg := admin.Config().Copy()
	cfg.Database = building
	pool, err := postgres.Open(ctx, urlOf(cfg))
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

// urlOf renders the server, credentials and database of cfg as a URL
// that pgx and authsvc's DATABASE_URL accept.
func urlOf(cfg *pgx.ConnConfig) string {
	u := url.URL{Scheme: "postgres", Path: "/" + cfg.Database}
	switch {
	case cfg.Password != "":
		u.User = url.UserPassword(cfg.User, cfg.Password)
	case cfg.User != "":
		u.User = url.User(cfg.User)
	}
	q := url.Values{}
	if strings.HasPrefix(cfg.Host, "/") {
		// A Unix socket directory.
		q.Set("host", cfg.Host)
		q.Set("port", strconv.Itoa(int(cfg.Port)))
	} else {
		u.Host = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
		if cfg.TLSConfig == nil {
			q.Set("sslmode", "disable")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
