package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/callers"
)

func TestCallerPolicy(t *testing.T) {
	t.Parallel()
	p := app.CallerPolicy()
	p.Procedures["/authsvc.v1.AuthService/Ping"] = callers.AccessOpen
	tests := []struct {
		path string
		want callers.Access
	}{
		{"/authsvc.v1.AuthService/GetUser", callers.AccessReader},
		{"/authsvc.v1.AuthService/RevokeSession", callers.AccessRevoker},
		{"/authsvc.v1.AuthService/../authsvc.v1.AuthService/RevokeSession", callers.AccessRevoker},
		{"/authsvc.v1.AuthService/Ping", callers.AccessOpen},
		{"/authsvc.v1.AdminService/RotateAPIKey", callers.AccessAdmin},
		{"/authsvc.v1.AdminService/", callers.AccessAdmin},
		{"/authsvc.v1.AdminService", callers.AccessAdmin},
		{"/authsvc.v1.AdminService/a/b", callers.AccessAdmin},
		{"/envoy.service.auth.v3.Authorization/Check", callers.AccessReader},
		{"/grpc.health.v1.Health/Check", callers.AccessOpen},
		{"/grpc.health.v1.Health/Watch", callers.AccessOpen},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", callers.AccessOpen},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", callers.AccessOpen},
		{"/grpc.health.v1.Health/../authsvc.v1.AdminService/RotateAPIKey", callers.AccessAdmin},
		{"/x/grpc.health.v1.Health/Check", callers.AccessOpen}, // unmatched, passed on: the mux 404s it
		{"/x/authsvc.v1.AdminService/RotateAPIKey", callers.AccessOpen},
		{"//authsvc.v1.AdminService/RotateAPIKey", callers.AccessAdmin},
		{"authsvc.v1.AdminService/RotateAPIKey", callers.AccessAdmin},
		{"", callers.AccessOpen},
		{"/", callers.AccessOpen},
		{"/metrics", callers.AccessOpen},
		{"/webhooks/wacht", callers.AccessOpen},
	}
	for _, tt := range tests {
		if got := p.Access(tt.path); got != tt.want {
			t.Errorf("Access(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	p.Unmatched = callers.AccessDeny
	if got := p.Access("/authsvc.v2.AuthService/GetUser"); got != callers.AccessDeny {
		t.Errorf("access with Unmatched deny = %v, want deny", got)
	}
}

// TestCallerRefusals checks the refusals of the caller policy on the
// whole service, whose messages the service's mapper writes.
func TestCallerRefusals(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "callers.json")
	hash := sha256.Sum256([]byte("orders-token"))
	body := fmt.Sprintf(`{"callers": [{"name": "orders", "token_sha256": %q, "roles": ["reader"]}]}`, hex.EncodeToString(hash[:]))
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	h := apptest.New(t, apptest.Options{Config: func(c *app.Config) { c.CallersFile = file }})
	type refusal struct {
		Code    connect.Code
		Message string
	}
	tests := []struct {
		name  string
		token string
		admin bool
		want  refusal
	}{
		{"no credential", "", false, refusal{connect.CodeUnauthenticated,
			"missing caller credential: send Authorization: Bearer <token> or a client certificate"}},
		{"unknown token", "someone-else", false, refusal{connect.CodeUnauthenticated, "invalid caller credential"}},
		{"reader on AdminService", "orders-token", true, refusal{connect.CodePermissionDenied, "procedure needs the admin role"}},
	}
	for _, p := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}} {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				opts := p.opts
				if tt.token != "" {
					opts = append(slices.Clone(opts), bearer(tt.token))
				}
				var err error
				if tt.admin {
					_, err = h.AdminClient(opts...).ListRotations(t.Context(), connect.NewRequest(&authsvcv1.ListRotationsRequest{AppSlug: "orders-api"}))
				} else {
					_, err = h.AuthClient(opts...).GetUser(t.Context(), connect.NewRequest(&authsvcv1.GetUserRequest{UserId: "1"}))
				}
				var ce *connect.Error
				if !errors.As(err, &ce) {
					t.Fatalf("%v, want a refusal", err)
				}
				if diff := cmp.Diff(tt.want, refusal{ce.Code(), ce.Message()}); diff != "" {
					t.Errorf("refusal (-want +got):\n%s", diff)
				}
			})
		}
	}
}
