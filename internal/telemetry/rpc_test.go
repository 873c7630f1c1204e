package telemetry_test

import (
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/trace/noop"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
)

func TestInterceptorCountsAndTimesCalls(t *testing.T) {
	t.Parallel()
	s := newStack(t, noop.NewTracerProvider())
	ctx := t.Context()
	ada := s.demo.Users[0].ID

	for range 2 {
		if _, err := s.client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada})); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
	}
	for _, tc := range []struct {
		id   string
		want connect.Code
	}{
		{id: "24380000000999999", want: connect.CodeNotFound},
		{id: "not-a-number", want: connect.CodeInvalidArgument},
	} {
		_, err := s.client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: tc.id}))
		if connect.CodeOf(err) != tc.want {
			t.Fatalf("GetUser(%q) = %v, want %v", tc.id, err, tc.want)
		}
	}
	_, err := s.client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: "garbage"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("VerifySession(garbage) = %v, want Unauthenticated", err)
	}
	// A path no handler serves never reaches an interceptor.
	resp, err := s.hc.Post(s.url+"/authsvc.v1.AuthService/NoSuchMethod", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown procedure answered %d, want 404", resp.StatusCode)
	}
	// A bidirectional stream, answered and closed by the client.
	stream := grpcreflect.NewClient(s.hc, s.url).NewStream(ctx)
	if _, err := stream.ListServices(); err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	if _, err := stream.Close(); err != nil {
		t.Fatalf("close reflection stream: %v", err)
	}

	const (
		getUser = `procedure="/authsvc.v1.AuthService/GetUser"`
		verify  = `procedure="/authsvc.v1.AuthService/VerifySession"`
		reflect = `procedure="/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"`
	)
	want := map[string]float64{
		`authsvc_rpc_requests_total{code="ok",` + getUser + `}`:                       2,
		`authsvc_rpc_requests_total{code="not_found",` + getUser + `}`:                1,
		`authsvc_rpc_requests_total{code="invalid_argument",` + getUser + `}`:         1,
		`authsvc_rpc_requests_total{code="unauthenticated",` + verify + `}`:           1,
		`authsvc_rpc_requests_total{code="ok",` + reflect + `}`:                       1,
		`authsvc_rpc_duration_seconds_count{code="ok",` + getUser + `}`:               2,
		`authsvc_rpc_duration_seconds_count{code="not_found",` + getUser + `}`:        1,
		`authsvc_rpc_duration_seconds_count{code="invalid_argument",` + getUser + `}`: 1,
		`authsvc_rpc_duration_seconds_count{code="unauthenticated",` + verify + `}`:   1,
		`authsvc_rpc_duration_seconds_count{code="ok",` + reflect + `}`:               1,
	}
	if diff := cmp.Diff(want, only(series(t, s.reg), "authsvc_rpc_")); diff != "" {
		t.Errorf("rpc series (-want +got):\n%s", diff)
	}
}
