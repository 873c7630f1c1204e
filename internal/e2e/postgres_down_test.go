package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/postgres"
)

// TestPostgresOutage drops the database under a running authsvc: it keeps
// answering from memory and Wacht and stays ready, reports Postgres and the
// invalidation listener NOT_SERVING as health services of their own and in
// its metrics, and recovers by itself once the database is back.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	dbURL := pgtest.NewURL(t)
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	inst := w.serve(t, dbURL, nil)
	client := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, inst.URL)
	health := healthv1.NewHealthClient(grpcConn(t, inst))
	getUser := func(id string) error {
		_, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: id}))
		return err
	}
	serving, notServing := healthv1.HealthCheckResponse_SERVING, healthv1.HealthCheckResponse_NOT_SERVING
	// waitStatus waits until each dependency's health service reports
	// want, checking meanwhile that the server as a whole (what the
	// readiness probe asks) stays SERVING.
	waitStatus := func(want healthv1.HealthCheckResponse_ServingStatus, services ...string) {
		t.Helper()
		start := time.Now()
		deadline := start.Add(20 * time.Second)
		for checks := 1; ; checks++ {
			overall, err := health.Check(ctx, &healthv1.HealthCheckRequest{})
			if err != nil || overall.GetStatus() != serving {
				t.Fatalf("overall health while Postgres comes and goes: %v, %v; want SERVING", overall.GetStatus(), err)
			}
			done := true
			for _, s := range services {
				res, err := health.Check(ctx, &healthv1.HealthCheckRequest{Service: s})
				done = done && err == nil && res.GetStatus() == want
			}
			if done {
				t.Logf("%v %v after %v; the server as a whole SERVING in all %d checks meanwhile",
					services, want, time.Since(start).Round(time.Millisecond), checks)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v are not %v 20s on", services, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	dependencyUp := func(dep string) string {
		t.Helper()
		body := getBody(t, inst.URL+"/metrics")
		for line := range strings.Lines(body) {
			if rest, ok := strings.CutPrefix(line, `authsvc_dependency_up{dependency="`+dep+`"} `); ok {
				return strings.TrimSpace(rest)
			}
		}
		t.Fatalf("no authsvc_dependency_up for %s in /metrics", dep)
		return ""
	}
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, pgtest.ServerURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	deps := []string{app.PostgresHealthService, app.InvalidationHealthService}
	waitStatus(serving, deps...)
	if got := dependencyUp("postgres"); got != "1" {
		t.Errorf("authsvc_dependency_up{postgres} before the outage = %s, want 1", got)
	}
	if err := getUser(w.demo.Users[0].ID); err != nil {
		t.Fatalf("GetUser before the outage: %v", err)
	}
	admin(fmt.Sprintf("drop database %s with (force)", cfg.Database))
	waitStatus(notServing, deps...)
	for _, dep := range []string{"postgres", "invalidation"} {
		if got := dependencyUp(dep); got != "0" {
			t.Errorf("authsvc_dependency_up{%s} during the outage = %s, want 0", dep, got)
		}
	}
	if got := dependencyUp("keyset"); got != "1" {
		t.Errorf("authsvc_dependency_up{keyset} during the outage = %s, want 1", got)
	}
	for _, u := range w.demo.Users {
		if err := getUser(u.ID); err != nil {
			t.Errorf("GetUser(%s) with Postgres gone: %v", u.ID, err)
		}
	}

	admin(fmt.Sprintf("create database %s", cfg.Database))
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	waitStatus(serving, deps...)
	if got := dependencyUp("postgres"); got != "1" {
		t.Errorf("authsvc_dependency_up{postgres} after recovery = %s, want 1", got)
	}
	if err := getUser(w.demo.Users[1].ID); err != nil {
		t.Errorf("GetUser after recovery: %v", err)
	}
}

// getBody returns the body of a GET of url, which must answer 200.
func getBody(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, res.StatusCode, err)
	}
	return string(body)
}
