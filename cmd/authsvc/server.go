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
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/health"
	"github.com/authsvc/authsvc/internal/postgres"
	"github.com/authsvc/authsvc/internal/rpclog"
	"github.com/authsvc/authsvc/internal/service"
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

	checker := health.NewChecker(logger, authsvcv1connect.AuthServiceName, authsvcv1connect.AdminServiceName)
	if pool != nil {
		checker.Add("postgres", pool.Ping)
	}

	mux := newMux(logger, checker)
	srv, err := newHTTPServer(cfg, mux, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on AUTHSVC_ADDR %s: %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	store := "postgres"
	if pool == nil {
		store = "memory"
	}
	logger.Info("listening", "addr", addr, "tls", srv.TLSConfig != nil, "store", store, "version", version,
		"mode", map[mode]string{modeServe: "serve", modeDev: "dev"}[m])
	if m == modeDev {
		printDevBanner(stdout, addr)
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go checker.Run(runCtx)

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

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	checker.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	stopRun()
	logger.Info("stopped")
	return nil
}

// newMux mounts every service on one handler.
func newMux(logger *slog.Logger, checker *health.Checker) *http.ServeMux {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(rpclog.NewInterceptor(logger)),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			logger.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	}
	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(service.NewAuthServer(logger), opts...))
	mux.Handle(authsvcv1connect.NewAdminServiceHandler(service.NewAdminServer(logger), opts...))
	mux.Handle(grpchealth.NewHandler(checker))
	reflector := grpcreflect.NewStaticReflector(
		authsvcv1connect.AuthServiceName,
		authsvcv1connect.AdminServiceName,
		grpchealth.HealthV1ServiceName,
	)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
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
func migrateCmd(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
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
	_ = stderr
	return nil
}
