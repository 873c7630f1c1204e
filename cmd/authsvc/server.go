package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/postgres"
	"github.com/authsvc/authsvc/internal/telemetry"
)

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// serve runs the service until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, m mode, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(m, getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)

	tp, flushTraces, err := startTracing(ctx, getenv, logger)
	if err != nil {
		return err
	}
	defer flushTraces()

	var emu *emulator
	if m == modeDev {
		emu, err = startEmulator(logger)
		if err != nil {
			return err
		}
		defer emu.close()
		emu.configure(cfg)
	}

	pool, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if pool != nil {
		defer pool.Close() // last: after the app's background work and Close
	}

	a, err := app.New(cfg.Config, app.Deps{Pool: pool, Logger: logger, TracerProvider: tp, Version: version})
	if err != nil {
		return err
	}
	defer a.Close()
	handler := a.Handler()
	if emu != nil {
		handler = emu.wrap(handler)
	}
	srv, err := newHTTPServer(cfg, handler, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on AUTHSVC_ADDR %s: %w", cfg.Addr, err)
	}

	// The background work stops and is waited for on every way out, before
	// the app and the pool close.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		a.Run(runCtx)
	}()
	defer func() {
		stopRun()
		<-ran
	}()
	if cfg.CallersFile != "" {
		stopReload := reloadOnHangup(a)
		defer stopReload()
	}

	if err := announce(m, ln.Addr().String(), srv.TLSConfig != nil, pool != nil, emu, stdout, logger); err != nil {
		_ = ln.Close()
		return err
	}
	if err := serveUntil(ctx, cfg, srv, ln, a, logger); err != nil {
		return err
	}
	stopRun()
	<-ran
	logger.Info("stopped")
	return nil
}

// startTracing sets up tracing from the environment. The function it
// returns flushes what is left, for up to 5 seconds.
func startTracing(ctx context.Context, getenv func(string) string, logger *slog.Logger) (trace.TracerProvider, func(), error) {
	otel.SetErrorHandler(telemetry.ErrorHandler(logger.With("component", "otel")))
	shutdown, tp, err := telemetry.NewTracing(ctx, "authsvc", version, getenv)
	if err != nil {
		return nil, nil, err
	}
	return tp, func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(flushCtx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}, nil
}

// announce logs that the server listens on addr and, in dev mode, points
// the emulator's webhooks at it and prints the banner.
func announce(m mode, addr string, withTLS, postgres bool, emu *emulator, stdout io.Writer, logger *slog.Logger) error {
	store := "memory"
	if postgres {
		store = "postgres"
	}
	logger.Info("listening", "addr", addr, "tls", withTLS, "store", store, "version", version,
		"mode", map[mode]string{modeServe: "serve", modeDev: "dev"}[m])
	if emu == nil {
		return nil
	}
	if err := emu.deliverWebhooks(addr, withTLS); err != nil {
		return err
	}
	return emu.printBanner(stdout, addr, store)
}

// openDatabase opens and migrates the database named by DATABASE_URL, or
// returns nil without one.
func openDatabase(ctx context.Context, cfg *config, logger *slog.Logger) (*pgxpool.Pool, error) {
	if cfg.DatabaseURL == "" {
		return nil, nil
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	pool, err := postgres.Open(openCtx, string(cfg.DatabaseURL))
	cancel()
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		v, err := postgres.Migrate(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, err
		}
		logger.Info("database migrated", "schema_version", v)
	}
	return pool, nil
}

// reloadOnHangup re-reads the callers file on every SIGHUP until the
// returned function is called.
func reloadOnHangup(a *app.App) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				a.ReloadCallers()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// serveUntil serves on ln until ctx ends, then drains: health turns
// NOT_SERVING, and after ShutdownDelay the server stops taking calls and
// waits up to ShutdownTimeout for those in flight.
func serveUntil(ctx context.Context, cfg *config, srv *http.Server, ln net.Listener, a *app.App, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String(), "delay", cfg.ShutdownDelay.String())
	a.Drain()
	// Let load balancers see NOT_SERVING before the listener closes.
	time.Sleep(cfg.ShutdownDelay)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// newHTTPServer serves h over HTTP/1.1 and HTTP/2: cleartext HTTP/2
// (h2c) without TLS, so gRPC works either way.
func newHTTPServer(cfg *config, h http.Handler, logger *slog.Logger) (*http.Server, error) {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert == "" {
		protocols.SetUnencryptedHTTP2(true)
		return srv, nil
	}
	protocols.SetHTTP2(true)
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load AUTHSVC_TLS_CERT/AUTHSVC_TLS_KEY: %w", err)
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("read AUTHSVC_TLS_CLIENT_CA: %w", err)
		}
		cas := x509.NewCertPool()
		if !cas.AppendCertsFromPEM(pem) {
			return nil, errors.New("AUTHSVC_TLS_CLIENT_CA: no PEM certificate found")
		}
		srv.TLSConfig.ClientCAs = cas
		srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return srv, nil
}

// migrateCmd applies the embedded migrations and exits.
func migrateCmd(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	e := &env{getenv: getenv, readFile: os.ReadFile}
	url := e.secret("DATABASE_URL")
	if len(e.problems) > 0 {
		return fmt.Errorf("configuration: %s", e.problems[0])
	}
	if url == "" {
		return errors.New("DATABASE_URL is not set: set it to the Postgres database to migrate")
	}
	pool, err := postgres.Open(ctx, string(url))
	if err != nil {
		return err
	}
	defer pool.Close()
	v, err := postgres.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database migrated to schema version %d\n", v)
	return nil
}
