package callers

import (
	"context"
	"log/slog"
	"slices"

	"connectrpc.com/authn"
)

// Role is a permission a caller holds.
type Role string

const (
	// RoleReader may call AuthService and the Envoy Check.
	RoleReader Role = "reader"
	// RoleAdmin may call everything RoleReader may, and AdminService.
	RoleAdmin Role = "admin"
)

// Method says how a caller was authenticated.
type Method string

const (
	// MethodToken is a bearer token whose SHA-256 is in the callers file.
	MethodToken Method = "token"
	// MethodCert is a client certificate verified under mTLS.
	MethodCert Method = "cert"
	// MethodOpen is open mode: nobody was authenticated.
	MethodOpen Method = "open"
)

// AnonymousName is the caller's name in open mode. A callers file may not
// use it.
const AnonymousName = "anonymous"

// Caller is an authenticated caller of authsvc.
type Caller struct {
	// Name is the caller's name from the callers file, or AnonymousName.
	Name string
	// Roles are the caller's roles, in the order reader, admin; admin
	// always comes with reader.
	Roles []Role
	// Method is how the caller was authenticated.
	Method Method
}

// Has reports whether the caller holds role r.
func (c Caller) Has(r Role) bool {
	return slices.Contains(c.Roles, r)
}

// FromContext returns the caller that [Authenticator.Wrap] put on ctx. It
// reports false on open procedures called without a known credential, and
// outside the middleware.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := authn.GetInfo(ctx).(*Caller)
	if !ok || c == nil {
		return Caller{}, false
	}
	out := *c
	out.Roles = slices.Clone(c.Roles)
	return out, true
}

// LogAttrs returns the caller's name as the "caller" attribute, or nil when
// there is no caller on ctx. It fits rpclog.Attrs.
func LogAttrs(ctx context.Context) []slog.Attr {
	c, ok := authn.GetInfo(ctx).(*Caller)
	if !ok || c == nil {
		return nil
	}
	return []slog.Attr{slog.String("caller", c.Name)}
}

// normalizeRoles returns roles in canonical order with admin implying
// reader.
func normalizeRoles(admin bool) []Role {
	if admin {
		return []Role{RoleReader, RoleAdmin}
	}
	return []Role{RoleReader}
}
