package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// tableSize is one table of the database: its rows and its size on disk,
// indexes and TOAST included.
type tableSize struct {
	name  string
	rows  int64
	bytes int64
}

// tableSizes reads every table of the public schema of the database at
// url.
func tableSizes(ctx context.Context, url string) ([]tableSize, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("table sizes: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `select c.relname, pg_total_relation_size(c.oid)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname`)
	if err != nil {
		return nil, fmt.Errorf("table sizes: %w", err)
	}
	var out []tableSize
	for rows.Next() {
		var t tableSize
		if err := rows.Scan(&t.name, &t.bytes); err != nil {
			return nil, fmt.Errorf("table sizes: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table sizes: %w", err)
	}
	for i := range out {
		q := "select count(*) from " + pgx.Identifier{"public", out[i].name}.Sanitize()
		if err := conn.QueryRow(ctx, q).Scan(&out[i].rows); err != nil {
			return nil, fmt.Errorf("table sizes: count %s: %w", out[i].name, err)
		}
	}
	return out, nil
}
