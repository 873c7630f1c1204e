package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// database is a database created for one run on a Postgres server.
type database struct {
	server string // URL of the server's admin database
	name   string
	url    string // URL of the new database
}

// createDatabase creates an empty database with a random name on the
// server at serverURL; authsvc migrates it when it starts.
func createDatabase(ctx context.Context, serverURL string) (*database, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, errors.New("parse the Postgres server URL: not a valid URL or DSN")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres at %s:%d (pass -database-url, or run under tools/with-postgres.sh as make bench does): %w",
			cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var b [6]byte
	_, _ = rand.Read(b[:])
	d := &database{server: serverURL, name: "authsvc_bench_" + hex.EncodeToString(b[:])}
	if _, err := conn.Exec(ctx, "create database "+d.name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.name, err)
	}
	cfg.Database = d.name
	d.url = urlOf(cfg)
	return d, nil
}

// drop drops the database, closing any connection left to it.
func (d *database) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.server)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "drop database if exists "+d.name+" with (force)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}

// urlOf renders the server, credentials and database of cfg as a URL
// that authsvc's DATABASE_URL accepts.
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
