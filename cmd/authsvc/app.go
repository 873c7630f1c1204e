package main

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
	"go.opentelemetry.io/otel/trace"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/health"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/rpclog"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/webhook"
)

// maxRequestBytes bounds a request message, after decompression. The
// largest legitimate one is a VerifySession with a 16 KiB token or a
// BatchGetUsers of 100 ids.
const maxRequestBytes = 256 << 10

// compressMinBytes is the smallest response compressed when the caller
// accepts compression.
const compressMinBytes = 1024

// app is every long-lived part of a running authsvc.
type app struct {
	logger   *slog.Logger
	wacht    *wachtclient.Client
	verifier *sessiontoken.Verifier
	notifier *cache.Notifier // nil without Postgres
	users    *cache.Cache[*authsvcv1.User]
	sessions *cache.Cache[[]*authsvcv1.Session]
	auth     *service.AuthServer
	rotator  *rotation.Rotator
	checker  *health.Checker
	callers  *callers.Authenticator
	metrics  *telemetry.Metrics
	handler  http.Handler

	background sync.WaitGroup
}

// newApp builds the service from its configuration. pool may be nil (the
// in-memory store).
func newApp(cfg *config, pool *pgxpool.Pool, logger *slog.Logger, tp trace.TracerProvider) (*app, error) {
	a := &app{logger: logger}
	a.metrics = telemetry.NewMetrics(telemetry.NewRegistry())
	a.metrics.SetBuildInfo(version)
	var err error
	a.wacht, err = wachtclient.New(wachtclient.Config{
		HTTPClient:        telemetry.HTTPClient(tp),
		Observer:          a.metrics.ObserveWachtRequest,
		APIURL:            cfg.WachtAPIURL,
		GatewayURL:        cfg.WachtGatewayURL,
		FrontendURL:       cfg.WachtFrontendURL,
		APIKey:            string(cfg.WachtAPIKey),
		Version:           version,
		RequestsPerMinute: cfg.WachtRequestsPerMin,
		Logger:            logger.With("component", "wacht"),
	})
	if err != nil {
		return nil, fmt.Errorf("wacht client: %w", err)
	}
	a.verifier, err = sessiontoken.New(sessiontoken.Config{
		Issuer:        cfg.WachtFrontendURL,
		Fetcher:       a.wacht,
		Leeway:        cfg.TokenLeeway,
		Logger:        logger.With("component", "keyset"),
		OnRefresh:     a.metrics.ObserveJWKSRefresh,
		OnCacheLookup: a.metrics.ObserveTokenCacheLookup,
	})
	if err != nil {
		return nil, fmt.Errorf("session token verifier: %w", err)
	}

	if pool != nil {
		a.notifier = cache.NewNotifier(pool, logger)
	}
	a.users, err = newCache(a, cfg, pool, tp, "user", cfg.UserTTL, service.LoadUser(a.wacht), service.UserCodec{})
	if err != nil {
		return nil, err
	}
	a.sessions, err = newCache(a, cfg, pool, tp, "sessions", cfg.SessionsTTL, service.LoadSessions(a.wacht), service.SessionsCodec{})
	if err != nil {
		return nil, err
	}

	pageKey := sha256.Sum256(append([]byte("authsvc page tokens\x00"), cfg.WachtAPIKey...))
	a.auth, err = service.NewAuthServer(service.AuthConfig{
		Logger:       logger,
		Verifier:     a.verifier,
		Users:        telemetry.TraceCache[*authsvcv1.User](tp, a.users),
		Sessions:     telemetry.TraceCache[[]*authsvcv1.Session](tp, a.sessions),
		Wacht:        a.wacht,
		PageTokenKey: pageKey[:],
	})
	if err != nil {
		return nil, err
	}
	var store rotation.Store = rotation.NewMemoryStore()
	if pool != nil {
		store = rotation.NewPostgresStore(pool)
	}
	a.rotator, err = rotation.New(rotation.Config{
		Store:        store,
		Wacht:        a.wacht,
		MaxGrace:     cfg.MaxGracePeriod,
		PollInterval: cfg.RotationPollInterval,
		Logger:       logger.With("component", "rotation"),
		Observer:     a.metrics.ObserveRevocation,
	})
	if err != nil {
		return nil, err
	}
	admin, err := service.NewAdminServer(service.AdminConfig{Logger: logger, Rotator: a.rotator, PageTokenKey: pageKey[:]})
	if err != nil {
		return nil, err
	}
	extAuthz, err := service.NewExtAuthz(service.ExtAuthzConfig{
		Logger:             logger,
		Decider:            a.auth,
		HeaderPrefix:       cfg.ExtAuthzHeaderPrefix,
		StripAuthorization: cfg.ExtAuthzStripAuthorization,
		CheckRevocation:    cfg.ExtAuthzCheckRevocation,
	})
	if err != nil {
		return nil, err
	}

	var dedupe webhook.Deduper = webhook.NewMemoryDeduper(100_000, 24*time.Hour)
	if pool != nil {
		dedupe = webhook.NewPostgresDeduper(pool, 7*24*time.Hour)
	}
	hooks, err := webhook.NewHandler(webhook.Config{
		Secret:      string(cfg.WachtWebhookSecret),
		Invalidator: service.NewInvalidator(a.users, a.sessions, 0, logger),
		Deduper:     dedupe,
		Logger:      logger.With("component", "webhook"),
		Observer:    a.metrics.ObserveWebhook,
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}

	a.checker = health.NewChecker(logger, authsvcv1connect.AuthServiceName, authsvcv1connect.AdminServiceName)
	a.checker.Add("keyset", func(context.Context) error {
		if !a.verifier.Ready() {
			return errors.New("the Frontend API key set is not loaded")
		}
		return nil
	})
	if pool != nil {
		a.checker.Add("postgres", pool.Ping)
		a.checker.Add("cache-notifier", func(context.Context) error {
			if !a.notifier.Ready() {
				return errors.New("not listening for cache invalidations")
			}
			return nil
		})
	}

	tracing, err := telemetry.ConnectInterceptor(tp)
	if err != nil {
		return nil, err
	}
	opts := []connect.HandlerOption{
		// Bounds what a request may decompress to, before any handler runs.
		connect.WithReadMaxBytes(maxRequestBytes),
		// Small answers cost more to compress than to send.
		connect.WithCompressMinBytes(compressMinBytes),
		// Tracing outermost, then metrics (whose exemplars need the span),
		// then the log line.
		connect.WithInterceptors(tracing, a.metrics.Interceptor(), rpclog.NewInterceptor(logger, callers.LogAttrs)),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			logger.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	}
	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(a.auth, opts...))
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

	callerCfg := callers.Config{Path: cfg.CallersFile, Policy: callers.DefaultPolicy(), Logger: logger, HandlerOptions: opts}
	if cfg.CallersFile == "" {
		callerCfg.Open = true
		logger.Warn("no AUTHSVC_CALLERS_FILE: every caller that reaches the port may call every RPC")
	} else if cfg.InsecureOpen {
		logger.Warn("AUTHSVC_INSECURE_OPEN is ignored: AUTHSVC_CALLERS_FILE is set")
	}
	a.callers, err = callers.New(callerCfg)
	if err != nil {
		return nil, fmt.Errorf("AUTHSVC_CALLERS_FILE: %w", err)
	}
	a.handler = a.callers.Wrap(mux)
	return a, nil
}

// newCache makes one of the read-through caches in front of Wacht.
func newCache[V any](a *app, cfg *config, pool *pgxpool.Pool, tp trace.TracerProvider, kind string,
	ttl time.Duration, load cache.Loader[V], codec cache.Codec[V]) (*cache.Cache[V], error) {
	return cache.New(cache.Config[V]{
		Kind:        kind,
		Pool:        pool,
		Notifier:    a.notifier,
		Load:        telemetry.Traced(tp, kind, load),
		Codec:       codec,
		TTL:         ttl,
		MaxStale:    cfg.MaxStale,
		MaxEntries:  cfg.CacheMaxEntries,
		IsTransient: wachtclient.IsTransient,
		Observer:    a.metrics,
		Logger:      a.logger.With("component", "cache"),
	})
}

// start loads the key set and starts the background work, which stops
// when ctx ends.
func (a *app) start(ctx context.Context) {
	loadCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := a.verifier.Refresh(loadCtx); err != nil {
		a.logger.Warn("could not load the Frontend API key set yet; retrying in the background", "error", err)
	}
	cancel()
	run := func(f func(context.Context)) {
		a.background.Add(1)
		go func() {
			defer a.background.Done()
			f(ctx)
		}()
	}
	run(a.verifier.Run)
	if a.notifier != nil {
		run(a.notifier.Run)
	}
	run(a.checker.Run)
	run(a.rotator.RunWorker)
}

// wait waits for the background work started by start to stop, once its
// context has ended.
func (a *app) wait() { a.background.Wait() }

// reloadCallers re-reads the callers file, keeping the current one when
// the new one is broken.
func (a *app) reloadCallers() {
	if err := a.callers.Reload(); err != nil {
		a.logger.Error("reload AUTHSVC_CALLERS_FILE: keeping the callers loaded before", "error", err)
		return
	}
	a.logger.Info("reloaded AUTHSVC_CALLERS_FILE")
}

// close releases what newApp made.
func (a *app) close() {
	a.users.Close()
	a.sessions.Close()
}
