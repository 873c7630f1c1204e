package health_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/authsvc/authsvc/internal/health"
)

func TestChecker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var dbDown atomic.Bool
	c := health.NewChecker(slog.New(slog.NewTextHandler(io.Discard, nil)), "authsvc.v1.AuthService")
	c.Add("postgres", func(context.Context) error {
		if dbDown.Load() {
			return errors.New("connection refused")
		}
		return nil
	})

	status := func(service string) grpchealth.Status {
		t.Helper()
		res, err := c.Check(ctx, &grpchealth.CheckRequest{Service: service})
		if err != nil {
			t.Fatalf("Check(%q): %v", service, err)
		}
		return res.Status
	}

	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("before any probe: %v, want NOT_SERVING", got)
	}
	c.Probe(ctx)
	for _, s := range []string{"", "authsvc.v1.AuthService"} {
		if got := status(s); got != grpchealth.StatusServing {
			t.Errorf("Check(%q) with all probes passing = %v, want SERVING", s, got)
		}
	}
	dbDown.Store(true)
	c.Probe(ctx)
	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("with postgres down: %v, want NOT_SERVING", got)
	}
	if _, ok := c.Failing()["postgres"]; !ok {
		t.Errorf("Failing() = %v, want postgres listed", c.Failing())
	}
	dbDown.Store(false)
	c.Probe(ctx)
	if got := status(""); got != grpchealth.StatusServing {
		t.Errorf("after recovery: %v, want SERVING", got)
	}
	c.Shutdown()
	if got := status(""); got != grpchealth.StatusNotServing {
		t.Errorf("after Shutdown: %v, want NOT_SERVING", got)
	}
	if _, err := c.Check(ctx, &grpchealth.CheckRequest{Service: "no.such.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("unknown service: %v, want NotFound", err)
	}
}
