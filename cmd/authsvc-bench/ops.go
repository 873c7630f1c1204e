package main

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
)

func (s *scenarios) noop(ctx context.Context, w, _ int) error {
	_, h := s.cl.pick(w)
	_, err := h.CallUnary(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
	return err
}

func (s *scenarios) verify(token func(i int) string) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token(i)}))
		return err
	}
}

func (s *scenarios) getUser(users []seeded) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: users[i%len(users)].userID}))
		return err
	}
}

func (s *scenarios) listSessionsOp(users []seeded) op {
	return func(ctx context.Context, w, i int) error {
		a, _ := s.cl.pick(w)
		_, err := a.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: users[i%len(users)].userID}))
		return err
	}
}

// once calls o for every index below n, o.concurrency at a time.
func (s *scenarios) once(ctx context.Context, what string, o op, n int) error {
	st := load{workers: s.b.o.concurrency, duration: 10 * time.Minute, limit: n, op: o}.run(ctx)
	if st.errors > 0 {
		return fmt.Errorf("%s on %s: %d of %d calls failed, first: %v", what, s.rep.name, st.errors, n, st.firstErr)
	}
	if st.requests < n {
		return fmt.Errorf("%s on %s: only %d of %d calls made", what, s.rep.name, st.requests, n)
	}
	return ctx.Err()
}
