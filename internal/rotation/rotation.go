// Package rotation rotates Wacht API-auth keys, revoking the old key after a grace period that survives restarts, and keeps an audit log of every rotation.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultMaxGrace is the longest grace period a rotation may ask for.
	DefaultMaxGrace = 30 * 24 * time.Hour
	// DefaultPollInterval is how often the worker looks for due revocations.
	DefaultPollInterval = 5 * time.Second
)

// Worker outcomes passed to [Observer.ObserveRevocation], one per
// revocation attempt.
const (
	// WorkerRevoked: Wacht revoked the old key, or had already revoked it.
	WorkerRevoked = "revoked"
	// WorkerRetry: a transient failure (Wacht unreachable, 5xx, 429 or an
	// unknown outcome); the attempt is retried after a backoff.
	WorkerRetry = "retry"
	// WorkerFailed: Wacht refused the revocation (a 4xx other than 404 and
	// 429); it is still retried after a backoff, and logged as an error.
	WorkerFailed = "failed"
)

const (
	// batchSize bounds the revocations one RevokeDue pass attempts.
	batchSize = 10
	// revokeTimeout bounds one revoke call, and so how long the worker
	// holds a row lock.
	revokeTimeout = 30 * time.Second
	// writeTimeout bounds a store write that must happen even when the
	// caller has gone away, because Wacht already acted.
	writeTimeout = 10 * time.Second
	// retryBase and retryMax shape the backoff between failed attempts:
	// retryBase·2^n, at most retryMax.
	retryBase = 10 * time.Second
	retryMax  = time.Hour
)

// Wacht is the part of Wacht's Backend API that rotation uses;
// *wachtclient.Client implements it.
type Wacht interface {
	ListAPIKeys(ctx context.Context, appSlug string, includeInactive bool) ([]wachtclient.APIKey, error)
	CreateAPIKey(ctx context.Context, appSlug string, req wachtclient.CreateAPIKeyRequest) (*wachtclient.APIKeyWithSecret, error)
	RevokeAPIKey(ctx context.Context, appSlug, keyID, reason string) error
	RotateAPIKey(ctx context.Context, appSlug, keyID string) (*wachtclient.APIKeyWithSecret, error)
}

// Config configures a Rotator. Store and Wacht are required.
type Config struct {
	// Store keeps the audit log and the scheduled revocations: a
	// [PostgresStore] shared by every replica, or a [MemoryStore] for a
	// single process without a database.
	Store Store
	// Wacht is called to list, create, revoke and rotate keys.
	Wacht Wacht
	// MaxGrace is the longest grace period accepted; zero means
	// [DefaultMaxGrace].
	MaxGrace time.Duration
	// PollInterval is how often RunWorker looks for due revocations; zero
	// means [DefaultPollInterval].
	PollInterval time.Duration
	// Now is the clock for audit times and due times; nil means time.Now.
	// Replicas sharing a database should have synchronised clocks.
	Now func() time.Time
	// Logger receives rotation and worker logs; nil discards them. No log
	// ever contains a key's secret.
	Logger *slog.Logger
	// Observer is told of each revocation attempt of the worker, for
	// metrics; nil means none.
	Observer Observer
}

// Rotator rotates API keys and runs the revocations they schedule. It is
// safe for concurrent use, and any number of Rotators, in one process or
// many, may share a [PostgresStore].
type Rotator struct {
	store    Store
	wacht    Wacht
	maxGrace time.Duration
	poll     time.Duration
	now      func() time.Time
	log      *slog.Logger
	observer Observer
}

// New validates cfg, applies defaults and returns a Rotator.
func New(cfg Config) (*Rotator, error) {
	if cfg.Store == nil {
		return nil, errors.New("rotation: store is required")
	}
	if cfg.Wacht == nil {
		return nil, errors.New("rotation: wacht is required")
	}
	if cfg.MaxGrace < 0 || cfg.PollInterval < 0 {
		return nil, fmt.Errorf("rotation: max grace %s and poll interval %s must not be negative", cfg.MaxGrace, cfg.PollInterval)
	}
	r := &Rotator{
		store:    cfg.Store,
		wacht:    cfg.Wacht,
		maxGrace: cfg.MaxGrace,
		poll:     cfg.PollInterval,
		now:      cfg.Now,
		log:      cfg.Logger,
		observer: cfg.Observer,
	}
	if r.maxGrace == 0 {
		r.maxGrace = DefaultMaxGrace
	}
	if r.poll == 0 {
		r.poll = DefaultPollInterval
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.observer == nil {
		r.observer = nopObserver{}
	}
	return r, nil
}

// clock returns the time in UTC at the microsecond precision Postgres keeps,
// so that both stores give back exactly what they were given.
func (r *Rotator) clock() time.Time {
	return r.now().UTC().Truncate(time.Microsecond)
}

// writeContext returns a context for a store write that must not be cut
// short by the caller going away.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}
