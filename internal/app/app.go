// Package app builds a running authsvc from its configuration: the
// caches, the Wacht client, the RPC handlers behind one mux with the
// caller policy and interceptors, and the background work. See
// docs/architecture.md for the parts and how they connect.
package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callerlimit"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/growstack"
	"github.com/authsvc/authsvc/internal/health"
	"github.com/authsvc/authsvc/internal/jsoncodec"
	"github.com/authsvc/authsvc/internal/retention"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/rpclog"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/webhook"
	"github.com/authsvc/authsvc/internal/writethrough"
)

// maxRequestBytes bounds a request message, after decompression. The
// largest legitimate one is a VerifySession with a 16 KiB token or a
// BatchGetUsers of 100 ids.
const maxRequestBytes = 256 << 10

// compressMinBytes is the smallest response compressed when the caller
// accepts compression.
const compressMinBytes = 1024

// webhookRetention is how long Postgres remembers a webhook delivery for
// de-duplication, and so how old a delivery may be accepted.
const webhookRetention = 7 * 24 * time.Hour

// keySetLoadTimeout bounds the first load of the Frontend API key set in
// Run; after it the verifier keeps trying in the background.
const keySetLoadTimeout = 3 * time.Second

// Secret is a configuration value that must never be printed.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (Secret) GoString() string               { return "[redacted]" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Config is what the service is told by its operator. The README's
// configuration table names the variable behind each field.
type Config struct {
	WachtAPIKey        Secret
	WachtAPIURL        string
	WachtGatewayURL    string
	WachtFrontendURL   string
	WachtWebhookSecret Secret
	// WachtRequestsPerMin is the whole deployment's Backend API budget,
	// shared through Pool by every replica; zero means 1000.
	WachtRequestsPerMin int
	// BudgetWait is the longest a caller's load waits for budget before
	// it is served stale or refused; zero means 100 ms.
	BudgetWait time.Duration
	// WachtRetryBaseDelay and WachtRetryMaxDelay shape the Wacht client's
	// retries; zero means its defaults.
	WachtRetryBaseDelay time.Duration
	WachtRetryMaxDelay  time.Duration

	CallersFile  string
	InsecureOpen bool

	ExtAuthzHeaderPrefix       string
	ExtAuthzStripAuthorization bool
	ExtAuthzCheckRevocation    bool
	// ExtAuthzCredentials are the credential kinds Check and Authenticate
	// accept; zero means all.
	ExtAuthzCredentials  service.Credentials
	ExtAuthzTokenCookies []string
	ExtAuthzAPIKeyHeader string

	RotationPollInterval time.Duration
	MaxGracePeriod       time.Duration

	CacheMaxEntries int

	// UserTTL and SessionsTTL are the soft TTLs: past them an entry is
	// served and refreshed in the background. UserMaxAge and
	// SessionsMaxAge are the hard ones: past them a read loads.
	UserTTL        time.Duration
	SessionsTTL    time.Duration
	UserMaxAge     time.Duration
	SessionsMaxAge time.Duration
	MaxStale       time.Duration
	TokenLeeway    time.Duration

	// APIKeyCacheTTL is how long an allowed VerifyAPIKey answer without
	// rate limits is reused; 0 turns reuse off.
	APIKeyCacheTTL time.Duration
	// RetentionInterval is how often each replica deletes the rows past
	// their use (one replica at a time); zero means the job's default.
	RetentionInterval time.Duration
	// RevocationRetention is how long a finished key revocation is kept;
	// zero means the job's default.
	RevocationRetention time.Duration
	// AuditRetention is how long a key rotation's record is kept; zero
	// keeps it forever.
	AuditRetention time.Duration

	// NoRotationWorker keeps this process from revoking old keys whose
	// grace period ended (dev: its emulator does not hold real keys).
	NoRotationWorker bool
}

// Deps is what the service is given by the process that runs it. Every
// field may be left zero.
type Deps struct {
	// Pool is the Postgres database; nil runs on the in-memory store.
	Pool *pgxpool.Pool
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// TracerProvider receives spans; nil traces nothing.
	TracerProvider trace.TracerProvider
	// Registry receives the metrics served at /metrics; nil means a new
	// one.
	Registry *prometheus.Registry
	// Version is the build's version, reported in the build-info metric
	// and the Wacht client's User-Agent.
	Version string
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
}

// App is every long-lived part of a running authsvc.
type App struct {
	logger    *slog.Logger
	now       func() time.Time
	pool      *pgxpool.Pool
	budget    *budget.Budget
	wacht     *wachtclient.Client
	verifier  *sessiontoken.Verifier
	notifier  *cache.Notifier // nil without Postgres
	users     *cache.Cache[*authsvcv1.User]
	sessions  *cache.Cache[[]*authsvcv1.Session]
	applier   *writethrough.Applier
	rotator   *rotation.Rotator
	retention *retention.Job // nil without Postgres
	checker   *health.Checker
	callers   *callers.Authenticator
	limiter   *callerlimit.Limiter
	metrics   *telemetry.Metrics
	handler   http.Handler

	noRotationWorker bool

	closeOnce sync.Once
}

// New builds the service. It starts nothing: Run does that.
func New(cfg Config, deps Deps) (_ *App, err error) {
	deps = deps.withDefaults()
	a := &App{logger: deps.Logger, now: deps.Now, pool: deps.Pool, metrics: telemetry.NewMetrics(deps.Registry), noRotationWorker: cfg.NoRotationWorker}
	a.metrics.SetBuildInfo(deps.Version)
	if err := a.connectWacht(cfg, deps); err != nil {
		return nil, err
	}
	// From here on, a failure must release the budget.
	defer func() {
		if err != nil {
			a.budget.Close()
		}
	}()
	if a.pool != nil {
		a.retention, err = retention.New(retention.Config{
			Pool:                a.pool,
			Now:                 deps.Now,
			Interval:            cfg.RetentionInterval,
			WebhookRetention:    webhookRetention,
			RevocationRetention: cfg.RevocationRetention,
			AuditRetention:      cfg.AuditRetention,
			Logger:              a.logger.With("component", "retention"),
			Observer:            telemetry.NewRetentionMetrics(deps.Registry),
		})
		if err != nil {
			return nil, err
		}
	}
	a.limiter, err = callerlimit.New(callerlimit.Config{Now: deps.Now, Observer: telemetry.NewCallerLimitMetrics(deps.Registry)})
	if err != nil {
		return nil, err
	}
	if err := a.newCaches(cfg, deps.TracerProvider); err != nil {
		return nil, err
	}
	// From here on, a failure must release the caches.
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	mux, opts, err := a.routes(cfg, deps.TracerProvider, deps.Registry)
	if err != nil {
		return nil, err
	}
	// Refusals are mapped as the handlers' errors are: by the service.
	callerCfg := callers.Config{Path: cfg.CallersFile, Policy: CallerPolicy(), Logger: a.logger, HandlerOptions: opts,
		MapError: service.ConnectError(a.logger)}
	if cfg.CallersFile == "" {
		callerCfg.Open = true
		a.logger.Warn("no AUTHSVC_CALLERS_FILE: every caller that reaches the port may call every RPC")
	} else if cfg.InsecureOpen {
		a.logger.Warn("AUTHSVC_INSECURE_OPEN is ignored: AUTHSVC_CALLERS_FILE is set")
	}
	a.callers, err = callers.New(callerCfg)
	if err != nil {
		return nil, fmt.Errorf("AUTHSVC_CALLERS_FILE: %w", err)
	}
	a.handler = growstack.Handler(a.callers.Wrap(mux))
	return a, nil
}

// withDefaults fills the fields left zero.
func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.TracerProvider == nil {
		d.TracerProvider = noop.NewTracerProvider()
	}
	if d.Registry == nil {
		d.Registry = telemetry.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// newCaches makes the user and session-list caches, which share one
// invalidation listener on Postgres.
func (a *App) newCaches(cfg Config, tp trace.TracerProvider) error {
	if a.pool != nil {
		a.notifier = cache.NewNotifier(a.pool, a.logger)
	}
	var err error
	a.users, err = newCache(a, cfg, tp, cache.Config[*authsvcv1.User]{
		Kind: "user", TTL: cfg.UserTTL, MaxAge: cfg.UserMaxAge,
		Load: service.LoadUser(a.wacht), Codec: service.UserCodec{},
		// Webhooks write users through in the order of their updated_at.
		Version: service.UserVersion,
	})
	if err != nil {
		return err
	}
	a.sessions, err = newCache(a, cfg, tp, cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", TTL: cfg.SessionsTTL, MaxAge: cfg.SessionsMaxAge,
		Load: service.LoadSessions(a.wacht), Codec: service.SessionsCodec{},
		// A sign-out's webhook finds the lists holding its session.
		Tags: writethrough.SessionTags,
	})
	if err != nil {
		a.users.Close()
		return err
	}
	return nil
}

// connectWacht makes the deployment's request budget, the Wacht client
// that spends it and the session token verifier that reads its key set.
// On failure it releases what it made.
func (a *App) connectWacht(cfg Config, deps Deps) (err error) {
	logger := a.logger
	a.budget, err = budget.New(budget.Config{
		RequestsPerMinute: cfg.WachtRequestsPerMin,
		Pool:              a.pool,
		Wait:              cfg.BudgetWait,
		Logger:            logger.With("component", "budget"),
		Observer:          a.metrics.Budget(),
	})
	if err != nil {
		return fmt.Errorf("wacht request budget: %w", err)
	}
	a.metrics.Budget().SetLimit(a.budget.PerMinute())
	defer func() {
		if err != nil {
			a.budget.Close()
		}
	}()
	a.wacht, err = wachtclient.New(wachtclient.Config{
		HTTPClient:     telemetry.HTTPClient(deps.TracerProvider),
		Observer:       a.metrics,
		APIURL:         cfg.WachtAPIURL,
		GatewayURL:     cfg.WachtGatewayURL,
		FrontendURL:    cfg.WachtFrontendURL,
		APIKey:         string(cfg.WachtAPIKey),
		Version:        deps.Version,
		Limiter:        a.budget,
		RetryBaseDelay: cfg.WachtRetryBaseDelay,
		RetryMaxDelay:  cfg.WachtRetryMaxDelay,
		Logger:         logger.With("component", "wacht"),
	})
	if err != nil {
		return fmt.Errorf("wacht client: %w", err)
	}
	a.verifier, err = sessiontoken.New(sessiontoken.Config{
		Issuer:   cfg.WachtFrontendURL,
		Fetcher:  a.wacht,
		Leeway:   cfg.TokenLeeway,
		Now:      a.now,
		Logger:   logger.With("component", "keyset"),
		Observer: a.metrics,
	})
	if err != nil {
		return fmt.Errorf("session token verifier: %w", err)
	}
	return nil
}

// routes builds the RPC handlers and mounts them, the webhook receiver
// and /metrics on one mux. It returns the handler options, which the
// caller policy's refusals must match.
func (a *App) routes(cfg Config, tp trace.TracerProvider, reg prometheus.Registerer) (*http.ServeMux, []connect.HandlerOption, error) {
	logger := a.logger
	var exchange service.SessionExchanger
	if cfg.ExtAuthzCredentials == 0 || cfg.ExtAuthzCredentials&service.CredentialsSessionCookie != 0 {
		x, err := sessionexchange.New(sessionexchange.Config{
			Exchanger: a.wacht, Verifier: a.verifier, Logger: logger.With("component", "session_exchange"), Now: a.now,
		})
		if err != nil {
			return nil, nil, err
		}
		exchange = x
	}
	pageKey := sha256.Sum256(append([]byte("authsvc page tokens\x00"), cfg.WachtAPIKey...))
	auth, err := service.NewAuthServer(service.AuthConfig{
		Logger:         logger,
		Verifier:       a.verifier,
		Users:          telemetry.TraceCache[*authsvcv1.User](tp, a.users),
		Sessions:       telemetry.TraceCache[[]*authsvcv1.Session](tp, a.sessions),
		Wacht:          a.wacht,
		PageTokenKey:   pageKey[:],
		APIKeyCacheTTL: cfg.APIKeyCacheTTL,
		ClockLeeway:    cfg.TokenLeeway,
		Now:            a.now,
		Authenticate: service.AuthenticateConfig{
			Credentials:  cfg.ExtAuthzCredentials,
			TokenCookies: cfg.ExtAuthzTokenCookies,
			APIKeyHeader: cfg.ExtAuthzAPIKeyHeader,
			Exchange:     exchange,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	var store rotation.Store = rotation.NewMemoryStore()
	if a.pool != nil {
		store = rotation.NewPostgresStore(a.pool)
	}
	a.rotator, err = rotation.New(rotation.Config{
		Store:        store,
		Wacht:        a.wacht,
		MaxGrace:     cfg.MaxGracePeriod,
		PollInterval: cfg.RotationPollInterval,
		Now:          a.now,
		Logger:       logger.With("component", "rotation"),
		Observer:     a.metrics,
	})
	if err != nil {
		return nil, nil, err
	}
	admin, err := service.NewAdminServer(service.AdminConfig{Logger: logger, Rotator: a.rotator, PageTokenKey: pageKey[:]})
	if err != nil {
		return nil, nil, err
	}
	extAuthz, err := service.NewExtAuthz(service.ExtAuthzConfig{
		Logger:             logger,
		Decider:            auth,
		HeaderPrefix:       cfg.ExtAuthzHeaderPrefix,
		StripAuthorization: cfg.ExtAuthzStripAuthorization,
		CheckRevocation:    cfg.ExtAuthzCheckRevocation,
	})
	if err != nil {
		return nil, nil, err
	}

	hooks, err := a.webhooks(cfg)
	if err != nil {
		return nil, nil, err
	}

	a.checker, err = a.newChecker(reg)
	if err != nil {
		return nil, nil, err
	}

	opts, err := a.handlerOptions(tp)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(auth, opts...))
	mux.Handle(authsvcv1connect.NewAdminServiceHandler(admin, opts...))
	mux.Handle(extAuthz.Handler(opts...))
	// Every handler on the port gets the same options, so health checks
	// are counted, traced and bounded like any other call.
	mux.Handle(grpchealth.NewHandler(a.checker, opts...))
	reflector := grpcreflect.NewStaticReflector(
		authsvcv1connect.AuthServiceName,
		authsvcv1connect.AdminServiceName,
		service.ExtAuthzServiceName,
		grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName,
		grpcreflect.ReflectV1AlphaServiceName,
	)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, opts...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, opts...))
	mux.Handle("/webhooks/wacht", hooks)
	mux.Handle("GET /metrics", a.metrics.Handler())
	return mux, opts, nil
}

// handlerOptions are the options of every handler on the mux.
func (a *App) handlerOptions(tp trace.TracerProvider) ([]connect.HandlerOption, error) {
	logger := a.logger
	mapError := service.ConnectError(logger)
	tracing, err := telemetry.ConnectInterceptor(tp)
	if err != nil {
		return nil, err
	}
	return []connect.HandlerOption{
		// Bounds what a request may decompress to, before any handler runs.
		connect.WithReadMaxBytes(maxRequestBytes),
		// Small answers cost more to compress than to send.
		connect.WithCompressMinBytes(compressMinBytes),
		// Connect's JSON, with a fast path for flat messages such as
		// VerifySession's.
		connect.WithCodec(jsoncodec.New()),
		// Tracing outermost, then metrics (whose exemplars need the span),
		// then the log line; innermost, the deadline the budget keeps to.
		connect.WithInterceptors(tracing, a.metrics.Interceptor(), rpclog.NewInterceptor(logger, callers.LogAttrs), callerDeadline()),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			return mapError(ctx, &service.PanicError{Procedure: spec.Procedure, Value: p})
		}),
	}, nil
}

// Health services of the dependencies that requests can do without.
const (
	// PostgresHealthService is SERVING while Postgres answers.
	PostgresHealthService = "authsvc.postgres"
	// InvalidationHealthService is SERVING while the cache listens for
	// invalidations.
	InvalidationHealthService = "authsvc.invalidation"
)

// newChecker returns the health service. Readiness depends only on what
// no request can do without: the key set (and not shutting down). Postgres
// and the invalidation listener are reported on their own, as health
// services and in authsvc_dependency_up, since the caches serve from
// memory and Wacht without them.
func (a *App) newChecker(reg prometheus.Registerer) (*health.Checker, error) {
	c := health.NewChecker(health.Config{
		Logger:   a.logger,
		Services: []string{authsvcv1connect.AuthServiceName, authsvcv1connect.AdminServiceName},
		Observer: a.metrics,
	})
	c.Add("keyset", func(context.Context) error {
		if !a.verifier.Ready() {
			return errors.New("the Frontend API key set is not loaded")
		}
		return nil
	})
	if a.pool != nil {
		c.Watch("postgres", PostgresHealthService, func(ctx context.Context) error {
			err := a.pool.Ping(ctx)
			if err != nil {
				// Leases come from the replica's own share until
				// Postgres is back, instead of each waiting on it.
				a.budget.PostgresFailed(err)
			}
			return err
		})
		c.Watch("invalidation", InvalidationHealthService, func(context.Context) error {
			if !a.notifier.Ready() {
				return errors.New("not listening for cache invalidations")
			}
			return nil
		})
	}
	if err := telemetry.RegisterDependencies(reg, c.Dependencies); err != nil {
		return nil, fmt.Errorf("dependency metrics: %w", err)
	}
	return c, nil
}

// newCache makes one of the read-through caches in front of Wacht, from
// what kc says of its kind and what every cache shares.
func newCache[V any](a *App, cfg Config, tp trace.TracerProvider, kc cache.Config[V]) (*cache.Cache[V], error) {
	kc.Pool = a.pool
	kc.Notifier = a.notifier
	kc.Load = telemetry.Traced(tp, kc.Kind, callerlimit.Loader(a.limiter, kc.Load))
	kc.MaxStale = cfg.MaxStale
	kc.MaxEntries = cfg.CacheMaxEntries
	kc.Now = a.now
	kc.IsTransient = wachtclient.IsTransient
	kc.Observer = a.metrics
	kc.Logger = a.logger.With("component", "cache")
	return cache.New(kc)
}

// webhooks returns the receiver of Wacht's webhooks, which writes what
// they carry through to the caches.
func (a *App) webhooks(cfg Config) (http.Handler, error) {
	// Deliveries are accepted for as long as they are de-duplicated, and
	// a deleted user is remembered as deleted as long.
	accepted := 24 * time.Hour
	var dedupe webhook.Deduper = webhook.NewMemoryDeduper(100_000, accepted)
	if a.pool != nil {
		accepted = webhookRetention
		dedupe = webhook.NewPostgresDeduper(a.pool, webhookRetention)
	}
	var err error
	a.applier, err = writethrough.New(writethrough.Config{
		Users: a.users, Sessions: a.sessions,
		Keep:     accepted,
		Now:      a.now,
		Logger:   a.logger.With("component", "webhook"),
		Observer: a.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	hooks, err := webhook.NewHandler(webhook.Config{
		Secret:   string(cfg.WachtWebhookSecret),
		Applier:  a.applier,
		Deduper:  dedupe,
		MaxAge:   accepted,
		Now:      a.now,
		Logger:   a.logger.With("component", "webhook"),
		Observer: a.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return hooks, nil
}

// Handler serves every RPC, /webhooks/wacht and /metrics, behind the
// caller policy.
func (a *App) Handler() http.Handler { return a.handler }

// Run loads the Frontend API key set, then runs the background work (key
// set refresh, cache invalidations, health probes, the rotation worker,
// the retention job) until ctx ends. It returns once all of it has
// stopped.
func (a *App) Run(ctx context.Context) {
	loadCtx, cancel := context.WithTimeout(ctx, keySetLoadTimeout)
	if err := a.verifier.Refresh(loadCtx); err != nil {
		a.logger.Warn("could not load the Frontend API key set yet; retrying in the background", "error", err)
	}
	cancel()
	var wg sync.WaitGroup
	wg.Go(func() { a.verifier.Run(ctx) })
	if a.notifier != nil {
		wg.Go(func() { a.notifier.Run(ctx) })
	}
	wg.Go(func() { a.checker.Run(ctx) })
	if !a.noRotationWorker {
		wg.Go(func() { a.rotator.RunWorker(ctx) })
	}
	if a.retention != nil {
		wg.Go(func() { a.retention.Run(ctx) })
	}
	wg.Wait()
}

// Drain makes the health service answer NOT_SERVING, so that load
// balancers stop sending calls before the listener closes.
func (a *App) Drain() { a.checker.Shutdown() }

// ReloadCallers re-reads the callers file, keeping the current one when
// the new one is broken.
func (a *App) ReloadCallers() {
	if err := a.callers.Reload(); err != nil {
		a.logger.Error("reload AUTHSVC_CALLERS_FILE: keeping the callers loaded before", "error", err)
		return
	}
	a.logger.Info("reloaded AUTHSVC_CALLERS_FILE")
}

// Close finishes the drop of session lists the webhook receiver still
// owes, releases the caches and returns the unused request budget. Call
// it after Run has returned and before the database pool closes.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		if a.applier != nil {
			a.applier.Close()
		}
		a.users.Close()
		a.sessions.Close()
		a.budget.Close()
	})
}

// Metrics returns the service's metrics.
func (a *App) Metrics() *telemetry.Metrics { return a.metrics }

// Wacht returns the service's Wacht client.
func (a *App) Wacht() *wachtclient.Client { return a.wacht }

// Verifier returns the service's session token verifier.
func (a *App) Verifier() *sessiontoken.Verifier { return a.verifier }
