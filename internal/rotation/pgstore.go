package rotation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore is a [Store] on the api_key_rotations and
// scheduled_revocations tables, shared by every replica.
//
// A worker claims a due revocation with SELECT … FOR UPDATE SKIP LOCKED
// and keeps the row locked, in its own transaction, for the one Wacht call
// that revokes the key; only rotations still pending_revocation are taken.
// Another replica's worker skips the locked row, and
// a crash ends the transaction, which releases the row for the next pass:
// there is no lease to expire or tune. The lock is held for at most the
// revoke call's 30 s timeout.
type PostgresStore struct {
	pool *pgxpool.Pool
}

// NewPostgresStore returns a PostgresStore on pool, whose database has the
// schema of internal/postgres.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore {
	return &PostgresStore{pool: pool}
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *PostgresStore) insert(ctx context.Context, rec *Record) error {
	var id int64
	err := s.pool.QueryRow(ctx, `
		insert into api_key_rotations
		  (caller, app_slug, previous_key_id, new_key_id, new_key_suffix, reason, grace, outcome, error,
		   requested_at, previous_key_revokes_at, previous_key_revoked_at)
		values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		returning id`,
		rec.Caller, rec.AppSlug, rec.PreviousKeyID, rec.NewKeyID, rec.NewKeySuffix, rec.Reason, rec.Grace,
		string(rec.Outcome), rec.Error, rec.RequestedAt, nullTime(rec.PreviousKeyRevokesAt), nullTime(rec.PreviousKeyRevokedAt),
	).Scan(&id)
	if err != nil {
		return fmt.Errorf("insert rotation: %w", err)
	}
	rec.ID = strconv.FormatInt(id, 10)
	return nil
}

func (s *PostgresStore) update(ctx context.Context, rec Record) error {
	return updateRotation(ctx, s.pool, rec)
}

// updateRotation writes what a rotation learns after its row was inserted.
func updateRotation(ctx context.Context, db execer, rec Record) error {
	id, err := strconv.ParseInt(rec.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("update rotation %q: bad id", rec.ID)
	}
	tag, err := db.Exec(ctx, `
		update api_key_rotations
		set new_key_id = $2, new_key_suffix = $3, outcome = $4, error = $5,
		    previous_key_revokes_at = $6, previous_key_revoked_at = $7
		where id = $1`,
		id, rec.NewKeyID, rec.NewKeySuffix, string(rec.Outcome), rec.Error,
		nullTime(rec.PreviousKeyRevokesAt), nullTime(rec.PreviousKeyRevokedAt))
	if err != nil {
		return fmt.Errorf("update rotation %d: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("update rotation %d: no such row", id)
	}
	return nil
}

func (s *PostgresStore) schedule(ctx context.Context, rec Record) error {
	id, err := strconv.ParseInt(rec.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("schedule revocation of api key %s: bad rotation id %q", rec.PreviousKeyID, rec.ID)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := updateRotation(ctx, tx, rec); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			insert into scheduled_revocations (rotation_id, app_slug, key_id, due_at, next_attempt_at)
			values ($1, $2, $3, $4, $4)`,
			id, rec.AppSlug, rec.PreviousKeyID, rec.PreviousKeyRevokesAt)
		if err != nil {
			return fmt.Errorf("insert scheduled revocation: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("schedule revocation of api key %s: %w", rec.PreviousKeyID, err)
	}
	return nil
}

func (s *PostgresStore) revokeNext(ctx context.Context, now time.Time, try func(context.Context, revocation) attempt) (attempt, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return attempt{}, false, fmt.Errorf("begin: %w", err)
	}
	// After a commit, Rollback does nothing.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	var (
		rev revocation
		id  int64
	)
	err = tx.QueryRow(ctx, `
		select q.rotation_id, q.app_slug, q.key_id, q.due_at, q.attempts
		from scheduled_revocations q
		join api_key_rotations r on r.id = q.rotation_id
		where q.done_at is null and q.due_at <= $1 and q.next_attempt_at <= $1
		  and r.outcome = 'pending_revocation'
		order by q.due_at, q.rotation_id
		limit 1
		for update of q skip locked`, now).Scan(&id, &rev.appSlug, &rev.keyID, &rev.dueAt, &rev.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return attempt{}, false, nil
	}
	if err != nil {
		return attempt{}, false, fmt.Errorf("claim due revocation: %w", err)
	}
	rev.rotationID = strconv.FormatInt(id, 10)
	rev.dueAt = rev.dueAt.UTC()

	a := try(ctx, rev)
	if a.abandoned {
		return a, true, nil
	}
	// Wacht has acted: record it even if ctx ends now.
	wctx, cancel := writeContext(ctx)
	defer cancel()
	if a.done {
		_, err = tx.Exec(wctx, `update scheduled_revocations set done_at = $2, last_error = '' where rotation_id = $1`, id, a.at)
		if err == nil {
			_, err = tx.Exec(wctx, `
				update api_key_rotations set outcome = 'rotated', error = '', previous_key_revoked_at = $2
				where id = $1`, id, a.at)
		}
	} else {
		_, err = tx.Exec(wctx, `
			update scheduled_revocations set attempts = attempts + 1, next_attempt_at = $2, last_error = $3
			where rotation_id = $1`, id, a.next, a.err)
	}
	if err == nil {
		err = tx.Commit(wctx)
	}
	if err != nil {
		return a, true, fmt.Errorf("record revocation attempt of api key %s: %w", rev.keyID, err)
	}
	return a, true, nil
}

func (s *PostgresStore) list(ctx context.Context, q listQuery) ([]Record, error) {
	var (
		where []string
		args  []any
	)
	if q.appSlug != "" {
		args = append(args, q.appSlug)
		where = append(where, fmt.Sprintf("r.app_slug = $%d", len(args)))
	}
	if q.before != 0 {
		args = append(args, q.before)
		where = append(where, fmt.Sprintf("r.id < $%d", len(args)))
	}
	sql := `
		select r.id, r.caller, r.app_slug, r.previous_key_id, r.new_key_id, r.new_key_suffix, r.reason, r.grace,
		       r.outcome, r.error, r.requested_at, r.previous_key_revokes_at, r.previous_key_revoked_at,
		       coalesce(q.attempts, 0), coalesce(q.last_error, '')
		from api_key_rotations r
		left join scheduled_revocations q on q.rotation_id = r.id`
	if len(where) > 0 {
		sql += "\n\t\twhere " + strings.Join(where, " and ")
	}
	args = append(args, q.limit)
	sql += fmt.Sprintf("\n\t\torder by r.id desc limit $%d", len(args))

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query rotations: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) {
		var (
			rec                Record
			id                 int64
			outcome            string
			revokesAt, revoked *time.Time
		)
		err := row.Scan(&id, &rec.Caller, &rec.AppSlug, &rec.PreviousKeyID, &rec.NewKeyID, &rec.NewKeySuffix,
			&rec.Reason, &rec.Grace, &outcome, &rec.Error, &rec.RequestedAt, &revokesAt, &revoked,
			&rec.RevokeAttempts, &rec.RevokeError)
		rec.ID = strconv.FormatInt(id, 10)
		rec.Outcome = Outcome(outcome)
		rec.RequestedAt = rec.RequestedAt.UTC()
		rec.PreviousKeyRevokesAt = fromNull(revokesAt)
		rec.PreviousKeyRevokedAt = fromNull(revoked)
		return rec, err
	})
	if err != nil {
		return nil, fmt.Errorf("read rotations: %w", err)
	}
	return recs, nil
}

// nullTime maps the zero time to SQL null.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNull maps SQL null to the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
