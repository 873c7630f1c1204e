package freshdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/authsvc/authsvc/internal/freshdb"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/postgres"
)

func TestCreateAndDrop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := freshdb.Create(ctx, pgtest.ServerURL(), "authsvc_freshdb_")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(db.Name, "authsvc_freshdb_") || !strings.Contains(db.URL, "/"+db.Name) {
		t.Errorf("Create = %q at %q, want a name with the prefix in the URL", db.Name, db.URL)
	}

	pool, err := postgres.Open(ctx, db.URL)
	if err != nil {
		t.Fatalf("open %s: %v", db.Name, err)
	}
	names, err := migrate.FindMigrations(postgres.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	// Migrating an already migrated database is a no-op.
	got, err := postgres.Migrate(ctx, pool)
	pool.Close()
	if err != nil || got != int32(len(names)) || len(names) == 0 {
		t.Fatalf("schema version = %d, %v; want %d (> 0)", got, err, len(names))
	}

	for range 2 { // dropping twice is no error
		if err := db.Drop(ctx); err != nil {
			t.Fatalf("Drop: %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "select exists (select 1 from pg_database where datname = $1)", db.Name).Scan(&exists); err != nil || exists {
		t.Errorf("database %s exists after Drop: %v, %v", db.Name, exists, err)
	}
}

func TestCreateKeepsThePasswordOutOfItsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url string }{
		{"not a URL", "postgres://u:hunter2@[::1"},
		{"no server", "postgres://u:hunter2@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := freshdb.Create(t.Context(), tt.url, "authsvc_freshdb_")
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Create(%s) error = %v, want one without the password", tt.name, err)
			}
		})
	}
}
