package callers

import (
	"testing"
)

func TestPolicyAccess(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	p.Procedures["/authsvc.v1.AuthService/Ping"] = AccessOpen
	tests := []struct {
		path string
		want Access
	}{
		{"/authsvc.v1.AuthService/GetUser", AccessReader},
		{"/authsvc.v1.AuthService/RevokeSession", AccessRevoker},
		{"/authsvc.v1.AuthService/../authsvc.v1.AuthService/RevokeSession", AccessRevoker},
		{"/authsvc.v1.AuthService/Ping", AccessOpen},
		{"/authsvc.v1.AdminService/RotateAPIKey", AccessAdmin},
		{"/authsvc.v1.AdminService/", AccessAdmin},
		{"/authsvc.v1.AdminService", AccessAdmin},
		{"/authsvc.v1.AdminService/a/b", AccessAdmin},
		{"/envoy.service.auth.v3.Authorization/Check", AccessReader},
		{"/grpc.health.v1.Health/Check", AccessOpen},
		{"/grpc.health.v1.Health/Watch", AccessOpen},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", AccessOpen},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", AccessOpen},
		{"/grpc.health.v1.Health/../authsvc.v1.AdminService/RotateAPIKey", AccessAdmin},
		{"/x/grpc.health.v1.Health/Check", AccessOpen}, // unmatched, passed on: the mux 404s it
		{"/x/authsvc.v1.AdminService/RotateAPIKey", AccessOpen},
		{"//authsvc.v1.AdminService/RotateAPIKey", AccessAdmin},
		{"authsvc.v1.AdminService/RotateAPIKey", AccessAdmin},
		{"", AccessOpen},
		{"/", AccessOpen},
		{"/metrics", AccessOpen},
		{"/webhooks/wacht", AccessOpen},
	}
	for _, tt := range tests {
		if got := p.access(tt.path); got != tt.want {
			t.Errorf("access(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	p.Unmatched = AccessDeny
	if got := p.access("/authsvc.v2.AuthService/GetUser"); got != AccessDeny {
		t.Errorf("access with Unmatched deny = %v, want deny", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{"default", DefaultPolicy(), false},
		{"procedure", Policy{Procedures: map[string]Access{"/a.B/C": AccessAdmin}}, false},
		{"no leading slash", Policy{Procedures: map[string]Access{"a.B/C": AccessAdmin}}, true},
		{"service only", Policy{Procedures: map[string]Access{"/a.B": AccessAdmin}}, true},
		{"empty method", Policy{Procedures: map[string]Access{"/a.B/": AccessAdmin}}, true},
		{"empty service", Policy{Procedures: map[string]Access{"//C": AccessAdmin}}, true},
		{"three segments", Policy{Procedures: map[string]Access{"/a/B/C": AccessAdmin}}, true},
		{"partial wildcard", Policy{Procedures: map[string]Access{"/a.B/Get*": AccessAdmin}}, true},
		{"unknown access", Policy{Procedures: map[string]Access{"/a.B/C": Access(9)}}, true},
		{"unknown unmatched", Policy{Unmatched: Access(-1)}, true},
	}
	for _, tt := range tests {
		err := tt.policy.validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: validate() = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New with neither path nor open: got nil error")
	}
	if _, err := New(Config{Path: "callers.json", Open: true}); err == nil {
		t.Error("New with both path and open: got nil error")
	}
	if _, err := New(Config{Open: true, Policy: Policy{Procedures: map[string]Access{"bad": AccessOpen}}}); err == nil {
		t.Error("New with a bad policy: got nil error")
	}
	a, err := New(Config{Open: true})
	if err != nil {
		t.Fatalf("New(open): %v", err)
	}
	if a.policy.Unmatched != AccessOpen || len(a.policy.Procedures) != len(DefaultPolicy().Procedures) {
		t.Errorf("zero Policy did not become DefaultPolicy: %+v", a.policy)
	}
}
