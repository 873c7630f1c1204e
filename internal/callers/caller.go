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
	// RoleReader may call AuthService, but RevokeSession, and the Envoy
	// Check.
	RoleReader Role = "reader"
	// RoleRevoker may call everything RoleReader may, and RevokeSession.
	RoleRevoker Role = "revoker"
	// RoleAdmin may call everything, AdminService included.
	RoleAdmin Role = "admin"
)

// roleTable is every role, weakest first, with the roles it implies. It
// is the one place that says which role holds which.
var roleTable = []struct {
	role    Role
	implies []Role
}{
	{RoleReader, nil},
	{RoleRevoker, []Role{RoleReader}},
	{RoleAdmin, []Role{RoleReader, RoleRevoker}},
}

// Roles returns every role, weakest first.
func Roles() []Role {
	out := make([]Role, len(roleTable))
	for i, r := range roleTable {
		out[i] = r.role
	}
	return out
}

// knownRole reports whether r is a role of the table.
func knownRole(r Role) bool {
	return slices.Contains(Roles(), r)
}

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
	// Roles are the caller's roles, weakest first, with the roles they
	// imply: admin comes with revoker and reader, revoker with reader.
	Roles []Role
	// Limits bound the Wacht calls the caller's requests may cause; nil
	// means the defaults (see [Limits]).
	Limits *Limits
	// Method is how the caller was authenticated.
	Method Method
}

// Defaults of [Limits], for callers whose entry sets none.
const (
	DefaultWachtCallsPerMinute = 200
	DefaultConcurrentLoads     = 8
)

// Limits bound the Wacht calls a caller's requests may cause on one
// replica: every cache miss that calls Wacht counts (each id of a
// BatchGetUsers that misses); cache hits never do. A zero field takes
// its default.
type Limits struct {
	// WachtCallsPerMinute is how many Wacht calls a minute the caller may
	// cause; default [DefaultWachtCallsPerMinute].
	WachtCallsPerMinute int
	// ConcurrentLoads is how many of them may run at once; default
	// [DefaultConcurrentLoads].
	ConcurrentLoads int
}

// Effective returns l (which may be nil) with its defaults filled in.
func (l *Limits) Effective() Limits {
	var out Limits
	if l != nil {
		out = *l
	}
	if out.WachtCallsPerMinute <= 0 {
		out.WachtCallsPerMinute = DefaultWachtCallsPerMinute
	}
	if out.ConcurrentLoads <= 0 {
		out.ConcurrentLoads = DefaultConcurrentLoads
	}
	return out
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
	if c.Limits != nil {
		l := *c.Limits
		out.Limits = &l
	}
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

// normalizeRoles returns the roles held, in the table's order, with the
// roles they imply.
func normalizeRoles(held ...Role) []Role {
	has := map[Role]bool{}
	for _, r := range roleTable {
		if slices.Contains(held, r.role) {
			has[r.role] = true
			for _, i := range r.implies {
				has[i] = true
			}
		}
	}
	var out []Role
	for _, r := range roleTable {
		if has[r.role] {
			out = append(out, r.role)
		}
	}
	return out
}
