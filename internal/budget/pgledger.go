package budget

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgLedger is the ledger of a deployment whose replicas share Postgres.
// Times are Postgres's, so that replicas' clocks need not agree.
type pgLedger struct {
	pool   *pgxpool.Pool
	limit  int
	window time.Duration
}

func (l *pgLedger) grant(ctx context.Context, want, reserve int, ttl time.Duration) (grant, error) {
	var (
		id      *int64
		granted int
		until   *time.Time
		retryIn *float64
	)
	err := l.pool.QueryRow(ctx, `select lease_id, granted, until, extract(epoch from retry_in)::float8
		from wacht_budget_grant($1, $2, $3, make_interval(secs => $4), make_interval(secs => $5))`,
		want, reserve, l.limit, (l.window+windowMargin).Seconds(), ttl.Seconds()).Scan(&id, &granted, &until, &retryIn)
	if err != nil {
		return grant{}, fmt.Errorf("budget: lease tokens: %w", err)
	}
	if id == nil || until == nil || granted <= 0 {
		g := grant{retryIn: l.window}
		if retryIn != nil {
			g.retryIn = time.Duration(*retryIn * float64(time.Second))
		}
		return g, nil
	}
	return grant{id: *id, tokens: granted, until: *until, ttl: ttl}, nil
}

func (l *pgLedger) settle(ctx context.Context, id int64, used int) error {
	_, err := l.pool.Exec(ctx, `update wacht_budget_leases set tokens = least(tokens, $2) where id = $1`, id, max(used, 0))
	if err != nil {
		return fmt.Errorf("budget: settle lease: %w", err)
	}
	return nil
}

func (l *pgLedger) backoff(ctx context.Context, d time.Duration) error {
	_, err := l.pool.Exec(ctx,
		`update wacht_budget set backoff_until = greatest(backoff_until, clock_timestamp() + make_interval(secs => $1)) where id`, d.Seconds())
	if err != nil {
		return fmt.Errorf("budget: back off: %w", err)
	}
	return nil
}
