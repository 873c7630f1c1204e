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

	otel.SetErrorHandler(telemetry.ErrorHandler(logger.With("component", "otel")))
	shutdownTracing, tp, err := telemetry.NewTracing(ctx, "authsvc", version, getenv)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(flushCtx); err != nil {
			logger.Warn("flush traces", "error", err)
		}
	}()

	var emu *emulator
	if m == modeDev {
		emu, err = startEmulator(logger)
		if err != nil {
			return err
		}
		defer emu.close()
		emu.configure(cfg)
	}

	var pool *pgxpool.Pool
	if cfg.DatabaseURL != "" {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		pool, err = postgres.Open(openCtx, string(cfg.DatabaseURL))
		cancel()
		if err != nil {
			return err
		}
		defer pool.Close()
		if cfg.Migrate {
			v, err := postgres.Migrate(ctx, pool)
			if err != nil {
				return err
			}
			logger.Info("database migrated", "schema_version", v)
		}
	}

	a, err := newApp(cfg, pool, logger, tp)
	if err != nil {
		return err
	}
	defer a.close()
	handler := a.handler
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

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	a.start(runCtx)
	if cfg.CallersFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					a.reloadCallers()
				case <-runCtx.Done():
					return
				}
			}
		}()
	}

	addr := ln.Addr().String()
	store := "postgres"
	if pool == nil {
		store = "memory"
	}
	logger.Info("listening", "addr", addr, "tls", srv.TLSConfig != nil, "store", store, "version", version,
		"mode", map[mode]string{modeServe: "serve", modeDev: "dev"}[m])
	if emu != nil {
		if err := emu.printBanner(stdout, addr, store); err != nil {
			return err
		}
	}

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
	a.checker.Shutdown()
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
	stopRun()
	a.wait()
	logger.Info("stopped")
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
