package e2e_test

import (
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/e2e"
	"github.com/authsvc/authsvc/internal/pgtest"
)

// grpcConn dials inst with grpc-go over cleartext HTTP/2.
func grpcConn(t *testing.T, inst *e2e.Instance) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(inst.URL, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// h2cClient speaks cleartext HTTP/2, as gRPC needs.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

func TestDevServesReflectionAndHealth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	inst := e2e.Start(t, bin, nil, "dev")
	inst.WaitServing(t, ctx)
	conn := grpcConn(t, inst)

	t.Run("reflection_lists_every_service", func(t *testing.T) {
		for _, version := range []string{"v1", "v1alpha"} {
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if version == "v1alpha" {
				// grpc-go has no v1alpha client type; the wire messages are
				// identical, so call the v1alpha method name directly.
				desc := &grpc.StreamDesc{StreamName: "ServerReflectionInfo", ServerStreams: true, ClientStreams: true}
				var cs grpc.ClientStream
				cs, err = conn.NewStream(ctx, desc, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
				if err == nil {
					stream = &grpc.GenericClientStream[reflectionpb.ServerReflectionRequest, reflectionpb.ServerReflectionResponse]{ClientStream: cs}
				}
			}
			if err != nil {
				t.Fatalf("%s reflection stream: %v", version, err)
			}
			if err := stream.Send(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
			}); err != nil {
				t.Fatalf("%s send: %v", version, err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s recv: %v", version, err)
			}
			var got []string
			for _, s := range res.GetListServicesResponse().GetService() {
				got = append(got, s.GetName())
			}
			slices.Sort(got)
			for _, want := range []string{
				"authsvc.v1.AdminService",
				"authsvc.v1.AuthService",
				"envoy.service.auth.v3.Authorization",
				"grpc.health.v1.Health",
				"grpc.reflection.v1.ServerReflection",
			} {
				if !slices.Contains(got, want) {
					t.Errorf("%s reflection lists %v, missing %s", version, got, want)
				}
			}
			_ = stream.CloseSend()
		}
	})

	t.Run("health_grpc", func(t *testing.T) {
		for _, svc := range []string{"", authsvcv1connect.AuthServiceName, authsvcv1connect.AdminServiceName} {
			res, err := healthv1.NewHealthClient(conn).Check(ctx, &healthv1.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("Check(%q): %v", svc, err)
			}
			if res.GetStatus() != healthv1.HealthCheckResponse_SERVING {
				t.Errorf("Check(%q) = %v, want SERVING", svc, res.GetStatus())
			}
		}
	})

	t.Run("health_connect", func(t *testing.T) {
		client := connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
			http.DefaultClient, inst.URL+"/grpc.health.v1.Health/Check")
		res, err := client.CallUnary(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if res.Msg.GetStatus() != healthv1.HealthCheckResponse_SERVING {
			t.Errorf("Check = %v, want SERVING", res.Msg.GetStatus())
		}
	})

	t.Run("the_banner_says_how_to_call_it", func(t *testing.T) {
		out := inst.Stdout()
		for _, want := range []string{"buf curl", inst.URL} {
			if !strings.Contains(out, want) {
				t.Errorf("dev banner does not mention %q:\n%s", want, out)
			}
		}
	})
}

func TestServeRefusesIncompleteConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "nothing_set",
			env:  nil,
			want: []string{"WACHT_API_KEY", "WACHT_PUBLISHABLE_KEY", "DATABASE_URL", "AUTHSVC_CALLERS_FILE"},
		},
		{
			name: "bad_values",
			env: map[string]string{
				"WACHT_API_KEY": "sk_test", "WACHT_FRONTEND_API_URL": "ftp://x", "DATABASE_URL": "postgres://x",
				"AUTHSVC_INSECURE_OPEN": "yes please", "AUTHSVC_USER_TTL": "forever",
			},
			want: []string{"WACHT_FRONTEND_API_URL", "AUTHSVC_INSECURE_OPEN", "AUTHSVC_USER_TTL"},
		},
		{
			name: "bad_publishable_key",
			env: map[string]string{
				"WACHT_API_KEY": "sk_test", "WACHT_PUBLISHABLE_KEY": "pk_live_!!!", "DATABASE_URL": "postgres://x",
				"AUTHSVC_INSECURE_OPEN": "true",
			},
			want: []string{"WACHT_PUBLISHABLE_KEY"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, err := e2e.RunOnce(bin, tt.env, "serve")
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("serve exited with %v, want a non-zero exit", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %s:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "sk_test") {
				t.Errorf("stderr contains the API key:\n%s", stderr)
			}
		})
	}
}

func TestServeWithPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := pgtest.NewURL(t)

	stdout, stderr, err := e2e.RunOnce(bin, map[string]string{"DATABASE_URL": dbURL}, "migrate")
	if err != nil || !strings.Contains(stdout, "schema version") {
		t.Fatalf("migrate: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}

	w := startWacht(t)
	env := w.env(dbURL)
	env["WACHT_API_KEY"] = w.fake.APIKey()
	inst := e2e.Start(t, bin, env, "serve")
	inst.WaitServing(t, ctx)

	conn := grpcConn(t, inst)

	t.Run("bad_input_is_invalid_argument_in_every_protocol", func(t *testing.T) {
		req := &authsvcv1.RotateAPIKeyRequest{AppSlug: "Not A Slug!", KeyId: "1"}
		err := conn.Invoke(ctx, "/authsvc.v1.AdminService/RotateAPIKey", req, &authsvcv1.RotateAPIKeyResponse{})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("grpc-go RotateAPIKey: %v, want InvalidArgument", err)
		}
		admin := authsvcv1connect.NewAdminServiceClient(http.DefaultClient, inst.URL)
		_, err = admin.RotateAPIKey(ctx, connect.NewRequest(req))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("connect RotateAPIKey: %v, want InvalidArgument", err)
		}
	})

	if err := inst.Stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v, want a clean exit", err)
	}
	logs := inst.Stderr()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"stopped"`, `"store":"postgres"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs, w.fake.APIKey()) {
		t.Errorf("logs contain the Wacht API key")
	}
}
