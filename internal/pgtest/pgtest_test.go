package pgtest_test

import (
	"testing"

	"github.com/jackc/tern/v2/migrate"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/postgres"
)

func TestNewPoolIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := pgtest.NewPool(t), pgtest.NewPool(t)

	names, err := migrate.FindMigrations(postgres.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	want := int32(len(names))
	// Migrating an already migrated database is a no-op.
	got, err := postgres.Migrate(ctx, a)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if got != want || want == 0 {
		t.Fatalf("schema version = %d, want %d (> 0)", got, want)
	}

	if _, err := a.Exec(ctx, `insert into cache_entries (kind, key, found, fetched_at) values ('t', 'k', true, now())`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var n int
	if err := b.QueryRow(ctx, `select count(*) from cache_entries`).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d rows of the first, want 0", n)
	}
}
