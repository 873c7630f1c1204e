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
	version    *int64
	expiresAt  time.Time
}

// noRow is the generation that a load remembers when it read no row.
const noRow = -1

// minRowLife is how long a row is kept at least after it is written, so
// that deleting expired rows never races with a load that read the row.
const minRowLife = 10 * time.Minute

// nullVersion returns version for Postgres: null when unknown (0).
func nullVersion(version int64) *int64 {
	if version <= 0 {
		return nil
	}
	return &version
}

// nonNil returns tags, never nil, for a column that is not null.
func nonNil(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// rowExpiry returns the expires_at of a row written now whose content is
// of use until keepUntil (Unix nanoseconds; 0 for none).
func rowExpiry(keepUntil int64) time.Time {
	return time.Unix(0, max(keepUntil, time.Now().Add(minRowLife).UnixNano())) //nolint:forbidigo // rows are shared: their expiry is on the wall clock Postgres compares with
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
	var expires *time.Time
	err := s.pool.QueryRow(ctx, `
		select k.generation, e.found, e.body, e.fetched_at, e.generation, e.version, e.expires_at
		from cache_kinds k left join cache_entries e on e.kind = k.kind and e.key = $2
		where k.kind = $1`,
		s.kind, key,
	).Scan(&r.kindGen, &found, &r.body, &r.fetchedAt, &gen, &r.version, &expires)
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
	if expires != nil {
		r.expiresAt = *expires
	}
	return r, nil
}

// writeBack stores a load's result if key's row still has generation gen
// (noRow: if there is still no row) and the kind still has generation
// kindGen. A row that was read is only ever updated, never re-created, so
// that deleting rows cannot let a load's older result back in. It returns
// the row's new generation and whether it wrote.
func (s *store) writeBack(ctx context.Context, key string, found bool, body []byte, fetchedAt time.Time, expiresAt, version int64, tags []string, gen, kindGen int64) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Both statements hold a share lock of the kind's row while writing,
	// so an invalidation of the whole kind waits for them and they see it.
	// Other replicas are told, so that they drop older copies (a
	// background refresh replaces what they serve).
	query := `
		with k as (select 1 from cache_kinds where kind = $1 and generation = $7 for share),
		w as (
			update cache_entries as e
			set found = $3, body = $4, fetched_at = $5, expires_at = $8, version = $9, tags = $10,
			    generation = nextval('cache_entries_generation'), refresh_claimed_until = null
			from k
			where e.kind = $1 and e.key = $2 and e.generation = $6
			returning e.generation
		)
		select w.generation, pg_notify($11, json_build_object('kind', $1::text, 'key', $2::text, 'generation', w.generation)::text)
		from w`
	if gen == noRow {
		query = `
			with k as (select 1 from cache_kinds where kind = $1 and generation = $7 for share),
			w as (
				insert into cache_entries as e (kind, key, found, body, fetched_at, generation, expires_at, version, tags)
				select $1, $2, $3, $4, $5, nextval('cache_entries_generation'), $8, $9, $10 from k
				where $6::bigint = -1
				on conflict (kind, key) do nothing
				returning e.generation
			)
			select w.generation, pg_notify($11, json_build_object('kind', $1::text, 'key', $2::text, 'generation', w.generation)::text)
			from w`
	}
	var newGen int64
	err := s.pool.QueryRow(ctx, query, s.kind, key, found, body, fetchedAt, gen, kindGen, rowExpiry(expiresAt),
		nullVersion(version), nonNil(tags), channel).Scan(&newGen, nil)
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

// set writes key's row and, in the same statement, notifies every
// replica. A nil fetchedAt invalidates the row. keepUntil is when its
// content stops being of use (Unix nanoseconds). With ordered set, the row
// is written only if its version is null or at most version (a late write
// changes nothing). It returns the row's new generation and whether it
// wrote.
func (s *store) set(ctx context.Context, key string, found bool, body []byte, fetchedAt *time.Time, keepUntil, version int64, tags []string, ordered bool) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	var gen int64
	// The new generation is taken under the row's lock (in do update), so
	// a row's generations grow in the order its writes commit, which is
	// the order in which notifications arrive. An invalidation keeps the
	// version, so that it still orders later writes.
	err := s.pool.QueryRow(ctx, `
		with w as (
			insert into cache_entries as e (kind, key, found, body, fetched_at, generation, expires_at, version, tags)
			values ($1, $2, $3, $4, $5, nextval('cache_entries_generation'), $7, $8, $9)
			on conflict (kind, key) do update
			set found = excluded.found, body = excluded.body, fetched_at = excluded.fetched_at,
			    generation = nextval('cache_entries_generation'), expires_at = excluded.expires_at,
			    version = case when excluded.fetched_at is null then greatest(e.version, excluded.version)
			                   else excluded.version end,
			    tags = excluded.tags, refresh_claimed_until = null
			where not $10 or e.version is null or e.version <= excluded.version
			returning e.generation
		)
		select w.generation,
		       pg_notify($6, json_build_object('kind', $1::text, 'key', $2::text, 'generation', w.generation)::text)
		from w`,
		s.kind, key, found, body, fetchedAt, channel, rowExpiry(keepUntil), nullVersion(version), nonNil(tags), ordered,
	).Scan(&gen, nil)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("write cache entry: %w", err)
	}
	return gen, true, nil
}

// update applies change to key's row under the row's lock, in one
// transaction, and notifies every replica. change gets the row as read
// (row.exists false if there is none) and returns the new body, or false
// to invalidate the row instead. The new version is the greatest of the
// row's and version. It returns the row's new generation.
func (s *store) update(ctx context.Context, key string, version int64, change func(r row) (body []byte, tags []string, ok bool)) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	var gen int64
	var applied bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var r row
		var expires *time.Time
		err := tx.QueryRow(ctx, `
			select found, body, fetched_at, generation, version, expires_at
			from cache_entries where kind = $1 and key = $2 for update`, s.kind, key,
		).Scan(&r.found, &r.body, &r.fetchedAt, &r.generation, &r.version, &expires)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			r.exists = true
			if expires != nil {
				r.expiresAt = *expires
			}
		}
		body, tags, ok := change(r)
		applied = ok
		if ok {
			err = tx.QueryRow(ctx, `
				update cache_entries
				set body = $3, tags = $4, version = greatest(version, $5),
				    generation = nextval('cache_entries_generation')
				where kind = $1 and key = $2
				returning generation`, s.kind, key, body, nonNil(tags), version).Scan(&gen)
		} else {
			err = tx.QueryRow(ctx, `
				insert into cache_entries as e (kind, key, found, generation, expires_at, version)
				values ($1, $2, false, nextval('cache_entries_generation'), $3, $4)
				on conflict (kind, key) do update
				set found = false, body = null, fetched_at = null, tags = '{}', refresh_claimed_until = null,
				    generation = nextval('cache_entries_generation'), expires_at = excluded.expires_at,
				    version = greatest(e.version, excluded.version)
				returning e.generation`, s.kind, key, rowExpiry(0), version).Scan(&gen)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `select pg_notify($1, json_build_object('kind', $2::text, 'key', $3::text, 'generation', $4::bigint)::text)`,
			channel, s.kind, key, gen)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("update cache entry: %w", err)
	}
	return gen, applied, nil
}

// claim is the answer of [store.claim].
type claim struct {
	claimed      bool
	row          row        // the row, claimed or as read when not claimed
	claimedUntil *time.Time // another replica's claim, if any
}

// claim claims key's row for a background refresh, for d, if it holds a
// value fetched no later than fetchedAt (not refreshed since) and no other
// replica's claim is running. A row that it does not claim is read.
func (s *store) claim(ctx context.Context, key string, fetchedAt time.Time, d time.Duration) (claim, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var cl claim
	cl.row.exists = true
	err := s.pool.QueryRow(ctx, `
		update cache_entries as e
		set refresh_claimed_until = now() + $4::interval
		from cache_kinds k
		where e.kind = $1 and e.key = $2 and k.kind = e.kind
		  and e.found and e.fetched_at <= $3
		  and (e.refresh_claimed_until is null or e.refresh_claimed_until < now())
		returning e.generation, k.generation`,
		s.kind, key, fetchedAt, d,
	).Scan(&cl.row.generation, &cl.row.kindGen)
	if err == nil {
		cl.claimed = true
		return cl, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return claim{}, fmt.Errorf("claim cache entry: %w", err)
	}
	r, err := s.read(ctx, key)
	if err != nil {
		return claim{}, err
	}
	if !r.exists {
		// Nothing to claim (a write-back failed, or the row expired):
		// refreshing inserts it.
		return claim{claimed: true, row: r}, nil
	}
	cl.row = r
	err = s.pool.QueryRow(ctx, `
		select refresh_claimed_until from cache_entries
		where kind = $1 and key = $2 and refresh_claimed_until > now()`, s.kind, key,
	).Scan(&cl.claimedUntil)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return claim{}, fmt.Errorf("read cache entry claim: %w", err)
	}
	return cl, nil
}

// release gives up a claim of key's row, so that another replica may
// refresh it. Failures are ignored: the claim runs out anyway.
func (s *store) release(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `
		update cache_entries set refresh_claimed_until = null
		where kind = $1 and key = $2 and refresh_claimed_until is not null`, s.kind, key)
}

// fence makes every load of the kind in progress on any replica skip its
// write-back, by taking a new generation for the kind; rows are kept.
func (s *store) fence(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `
		insert into cache_kinds as k (kind, generation) values ($1, nextval('cache_entries_generation'))
		on conflict (kind) do update set generation = nextval('cache_entries_generation')`, s.kind)
	if err != nil {
		return fmt.Errorf("fence cache kind: %w", err)
	}
	return nil
}

// keysTagged returns up to limit keys of rows holding a value tagged tag.
func (s *store) keysTagged(ctx context.Context, tag string, limit int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		select key from cache_entries
		where kind = $1 and tags @> array[$2::text] and fetched_at is not null
		limit $3`, s.kind, tag, limit)
	if err != nil {
		return nil, fmt.Errorf("find tagged cache entries: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find tagged cache entries: %w", err)
	}
	return keys, nil
}
