package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/pgtest"
)

func writeCallers(t *testing.T, path string, entries ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"callers": entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func bearer(token string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	})
}

func TestCallersAreAuthenticated(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	file := filepath.Join(t.TempDir(), "callers.json")
	const readerToken, adminToken, lateToken = "reader-token-1f0e9c", "admin-token-77ab21", "late-token-c0ffee"
	writeCallers(t, file,
		map[string]any{"name": "orders", "token_sha256": hashToken(readerToken), "roles": []string{"reader"}},
		map[string]any{"name": "ops", "token_sha256": hashToken(adminToken), "roles": []string{"admin"}},
	)
	inst := w.serve(t, pgtest.NewURL(t), map[string]string{"AUTHSVC_CALLERS_FILE": file, "AUTHSVC_INSECURE_OPEN": ""})
	ada := w.demo.Users[0]
	getUser := func(opts ...connect.ClientOption) error {
		c := authsvcv1connect.NewAuthServiceClient(h2cClient(), inst.URL, opts...)
		_, err := c.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID}))
		return err
	}
	listRotations := func(opts ...connect.ClientOption) error {
		c := authsvcv1connect.NewAdminServiceClient(h2cClient(), inst.URL, opts...)
		_, err := c.ListRotations(ctx, connect.NewRequest(&authsvcv1.ListRotationsRequest{}))
		return err
	}
	for _, proto := range []struct {
		name string
		opt  connect.ClientOption
	}{{"connect", connect.WithProtoJSON()}, {"grpc", connect.WithGRPC()}, {"grpcweb", connect.WithGRPCWeb()}} {
		tests := []struct {
			name string
			call func(...connect.ClientOption) error
			opts []connect.ClientOption
			want connect.Code
		}{
			{"no_credential", getUser, nil, connect.CodeUnauthenticated},
			{"wrong_token", getUser, []connect.ClientOption{connect.WithInterceptors(bearer("nope"))}, connect.CodeUnauthenticated},
			{"reader_reads", getUser, []connect.ClientOption{connect.WithInterceptors(bearer(readerToken))}, 0},
			{"reader_not_admin", listRotations, []connect.ClientOption{connect.WithInterceptors(bearer(readerToken))}, connect.CodePermissionDenied},
			{"admin_reads", getUser, []connect.ClientOption{connect.WithInterceptors(bearer(adminToken))}, 0},
		}
		for _, tt := range tests {
			err := tt.call(append(tt.opts, proto.opt)...)
			if got := connect.CodeOf(err); (err == nil) != (tt.want == 0) || (err != nil && got != tt.want) {
				t.Errorf("%s %s: %v, want code %v", proto.name, tt.name, err, tt.want)
			}
		}
	}

	// Health stays open.
	conn := grpcConn(t, inst)
	if _, err := healthv1.NewHealthClient(conn).Check(ctx, &healthv1.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a credential: %v", err)
	}
	// grpc-go with metadata works too.
	md := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+readerToken)
	if err := conn.Invoke(md, "/authsvc.v1.AuthService/GetUser", &authsvcv1.GetUserRequest{UserId: ada.ID}, &authsvcv1.GetUserResponse{}); err != nil {
		t.Errorf("grpc-go reader GetUser: %v", err)
	}

	// SIGHUP re-reads the file without dropping the server.
	writeCallers(t, file,
		map[string]any{"name": "orders", "token_sha256": hashToken(readerToken), "roles": []string{"reader"}},
		map[string]any{"name": "late", "token_sha256": hashToken(lateToken), "roles": []string{"reader"}},
	)
	if err := inst.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for getUser(connect.WithInterceptors(bearer(lateToken))) != nil {
		if time.Now().After(deadline) {
			t.Fatal("a caller added to the file is still refused 5s after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := getUser(connect.WithInterceptors(bearer(adminToken))); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("a caller removed from the file: %v, want Unauthenticated", err)
	}

	logs := inst.Stderr()
	if !strings.Contains(logs, `"caller":"orders"`) {
		t.Errorf("request logs do not name the caller")
	}
	for _, secret := range []string{readerToken, adminToken, lateToken, w.fake.APIKey()} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret")
		}
	}
}

// hashToken returns the hex SHA-256 of a caller token, the form
// token_sha256 takes in a callers file.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
