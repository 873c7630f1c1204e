package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/postgres"
)

// TestPostgresOutage drops the database under a running authsvc: it keeps
// answering from memory and Wacht, reports NOT_SERVING, and recovers by
// itself once the database is back.
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
	waitStatus := func(want healthv1.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			res, err := health.Check(ctx, &healthv1.HealthCheckRequest{})
			if err == nil && res.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health is not %v 20s on: %v, %v", want, res.GetStatus(), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
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

	if err := getUser(w.demo.Users[0].ID); err != nil {
		t.Fatalf("GetUser before the outage: %v", err)
	}
	admin(fmt.Sprintf("drop database %s with (force)", cfg.Database))
	waitStatus(healthv1.HealthCheckResponse_NOT_SERVING)
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
	waitStatus(healthv1.HealthCheckResponse_SERVING)
	if err := getUser(w.demo.Users[1].ID); err != nil {
		t.Errorf("GetUser after recovery: %v", err)
	}
}
