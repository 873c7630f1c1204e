package app_test

import (
	"testing"

	"github.com/authsvc/authsvc/internal/app"
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
