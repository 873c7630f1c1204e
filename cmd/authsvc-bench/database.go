package main

import (
	"context"
	"fmt"
	"time"

	"github.com/authsvc/authsvc/internal/freshdb"
)

// createDatabase creates the run's database, empty and migrated, on the
// server at serverURL.
func createDatabase(ctx context.Context, serverURL string) (*freshdb.Database, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db, err := freshdb.Create(ctx, serverURL, "authsvc_bench_")
	if err != nil {
		return nil, fmt.Errorf("%w (pass -database-url, or run under tools/with-postgres.sh as make bench does)", err)
	}
	return db, nil
}

// dropDatabase drops db, in a context of its own: the run's may have
// ended.
func dropDatabase(db *freshdb.Database) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return db.Drop(ctx)
}
