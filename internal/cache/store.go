package cache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// channel is the LISTEN/NOTIFY channel that carries invalidations.
const channel = "authsvc_cache"

// store is the Postgres level of one kind of cache.
type store struct {
	pool    *pgxpool.Pool
	kind    string
	timeout time.Duration // per read and write-back; 10x for set

	kindRow atomic.Bool // the kind's cache_kinds row is known to exist
}

// row is a cache_entries row as read, with its kind's generation.
type row struct {
	exists     bool
	found      bool
	body       []byte
	fetchedAt  *time.Time // nil once invalidated
	generation int64
	kindGen    int64
}

// noRow is the generation that a load remembers when it read no row.
const noRow = -1

// minRowLife is how long a row is kept at least after it is written, so
// that deleting expired rows never races with a load that read the row.
const minRowLife = 10 * time.Minute

// rowExpiry returns the expires_at of a row written now whose content is
// of use until keepUntil (Unix nanoseconds; 0 for none).
func rowExpiry(keepUntil int64) time.Time {
	return time.Unix(0, max(keepUntil, time.Now().Add(minRowLife).UnixNano()))
}

// read returns key's row; row.exists is false when there is none.
func (s *store) read(ctx context.Context, key string) (row, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if !s.kindRow.Load() {
		// Write-backs lock this row, so it must exist before any load.
		if _, err := s.pool.Exec(ctx,
			`insert into cache_kinds (kind, generation) values ($1, 0) on conflict (kind) do nothing`, s.kind,
		); err != nil {
			return row{}, fmt.Errorf("register cache kind: %w", err)
		}
		s.kindRow.Store(true)
	}
	var (
		r     row
		found *bool
		gen   *int64
	)
	err := s.pool.QueryRow(ctx, `
		select k.generation, e.found, e.body, e.fetched_at, e.generation
		from cache_kinds k left join cache_entries e on e.kind = k.kind and e.key = $2
		where k.kind = $1`,
		s.kind, key,
	).Scan(&r.kindGen, &found, &r.body, &r.fetchedAt, &gen)
	if errors.Is(err, pgx.ErrNoRows) {
		s.kindRow.Store(false)
		return row{}, errors.New("read cache entry: cache kind not registered")
	}
	if err != nil {
		return row{}, fmt.Errorf("read cache entry: %w", err)
	}
	if gen == nil {
		r.generation = noRow
		return r, nil
	}
	r.exists, r.found, r.generation = true, *found, *gen
	return r, nil
}

// writeBack stores a load's result if key's row still has generation gen
// (noRow: if there is still no row) and the kind still has generation
// kindGen. A row that was read is only ever updated, never re-created, so
// that deleting rows cannot let a load's older result back in. It returns
// the row's new generation and whether it wrote.
func (s *store) writeBack(ctx context.Context, key string, found bool, body []byte, fetchedAt time.Time, expiresAt int64, gen, kindGen int64) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Both statements hold a share lock of the kind's row while writing,
	// so an invalidation of the whole kind waits for them and they see it.
	query := `
		with k as (select 1 from cache_kinds where kind = $1 and generation = $7 for share)
		update cache_entries as e
		set found = $3, body = $4, fetched_at = $5, expires_at = $8,
		    generation = nextval('cache_entries_generation')
		from k
		where e.kind = $1 and e.key = $2 and e.generation = $6
		returning e.generation`
	if gen == noRow {
		query = `
			with k as (select 1 from cache_kinds where kind = $1 and generation = $7 for share)
			insert into cache_entries as e (kind, key, found, body, fetched_at, generation, expires_at)
			select $1, $2, $3, $4, $5, nextval('cache_entries_generation'), $8 from k
			where $6::bigint = -1
			on conflict (kind, key) do nothing
			returning e.generation`
	}
	var newGen int64
	err := s.pool.QueryRow(ctx, query, s.kind, key, found, body, fetchedAt, gen, kindGen, rowExpiry(expiresAt)).Scan(&newGen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("write cache entry: %w", err)
	}
	return newGen, true, nil
}

// invalidateAll invalidates every row of the kind and notifies every
// replica, in one transaction. It first bumps the kind's generation, which
// waits for write-backs in progress and makes later ones yield, and then,
// in a statement that sees what those wrote, empties the rows.
func (s *store) invalidateAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var gen int64
		if err := tx.QueryRow(ctx, `
			insert into cache_kinds as k (kind, generation) values ($1, nextval('cache_entries_generation'))
			on conflict (kind) do update set generation = nextval('cache_entries_generation')
			returning k.generation`, s.kind,
		).Scan(&gen); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			update cache_entries
			set found = false, body = null, fetched_at = null, generation = nextval('cache_entries_generation'),
			    expires_at = $2
			where kind = $1 and fetched_at is not null`, s.kind, rowExpiry(0),
		); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `select pg_notify($1, json_build_object('kind', $2::text, 'all', true, 'generation', $3::bigint)::text)`,
			channel, s.kind, gen)
		return err
	})
	if err != nil {
		return fmt.Errorf("invalidate all cache entries: %w", err)
	}
	return nil
}

// set writes key's row unconditionally and, in the same statement,
// notifies every replica. A nil fetchedAt invalidates the row. keepUntil
// is when its content stops being of use (Unix nanoseconds). It returns
// the row's new generation.
func (s *store) set(ctx context.Context, key string, found bool, body []byte, fetchedAt *time.Time, keepUntil int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	var gen int64
	// The new generation is taken under the row's lock (in do update), so
	// a row's generations grow in the order its writes commit, which is
	// the order in which notifications arrive.
	err := s.pool.QueryRow(ctx, `
		with w as (
			insert into cache_entries as e (kind, key, found, body, fetched_at, generation, expires_at)
			values ($1, $2, $3, $4, $5, nextval('cache_entries_generation'), $7)
			on conflict (kind, key) do update
			set found = excluded.found, body = excluded.body, fetched_at = excluded.fetched_at,
			    generation = nextval('cache_entries_generation'), expires_at = excluded.expires_at
			returning e.generation
		)
		select w.generation,
		       pg_notify($6, json_build_object('kind', $1::text, 'key', $2::text, 'generation', w.generation)::text)
		from w`,
		s.kind, key, found, body, fetchedAt, channel, rowExpiry(keepUntil),
	).Scan(&gen, nil)
	if err != nil {
		return 0, fmt.Errorf("write cache entry: %w", err)
	}
	return gen, nil
}
