package freshdb

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestURLOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/bench?sslmode=disable"},
		{"postgres://u:p%40ss@localhost:6000/x?sslmode=disable", "postgres://u:p%40ss@localhost:6000/bench?sslmode=disable"},
		{"host=/tmp/pg port=5433 user=postgres dbname=postgres", "postgres://postgres@/bench?host=%2Ftmp%2Fpg&port=5433"},
	}
	for _, tt := range tests {
		cfg, err := pgx.ParseConfig(tt.in)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", tt.in, err)
		}
		cfg.Database = "bench"
		if got := urlOf(cfg); got != tt.want {
			t.Errorf("urlOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
