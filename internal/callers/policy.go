package callers

import (
	"fmt"
	"path"
	"strings"
)

// Access is what a procedure asks of its caller.
type Access int

const (
	// AccessDeny refuses every call with PermissionDenied, whoever makes
	// it. It is the zero Access.
	AccessDeny Access = iota
	// AccessOpen lets anyone call, with or without a credential. A known
	// credential still names the caller on the context; a bad one is
	// ignored.
	AccessOpen
	// AccessReader needs a caller with RoleReader.
	AccessReader
	// AccessAdmin needs a caller with RoleAdmin.
	AccessAdmin
	// AccessRevoker needs a caller with RoleRevoker.
	AccessRevoker
)

// String returns "deny", "open", "reader", "admin" or "revoker".
func (a Access) String() string {
	switch a {
	case AccessDeny:
		return "deny"
	case AccessOpen:
		return "open"
	case AccessReader:
		return "reader"
	case AccessAdmin:
		return "admin"
	case AccessRevoker:
		return "revoker"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

func (a Access) role() Role {
	switch a {
	case AccessAdmin:
		return RoleAdmin
	case AccessRevoker:
		return RoleRevoker
	}
	return RoleReader
}

// Policy says which procedures need which role.
//
// Procedures are matched on the request's cleaned URL path, the whole
// path and not only its last two segments (as authn.InferProcedure would),
// so that "/x/grpc.health.v1.Health/Check" is not taken for an open
// health check.
type Policy struct {
	// Procedures maps a procedure ("/pkg.Service/Method") or all of a
	// service's procedures ("/pkg.Service/*") to the access they need. A
	// procedure's own entry wins over its service's.
	Procedures map[string]Access
	// Unmatched is the access for paths no entry names.
	Unmatched Access
}

// isZero reports whether p is the zero Policy, which names nothing.
func (p Policy) isZero() bool {
	return p.Procedures == nil && p.Unmatched == AccessDeny
}

// validate checks that every entry is a procedure or a service wildcard
// and every Access is known.
func (p Policy) validate() error {
	if !p.Unmatched.valid() {
		return fmt.Errorf("policy: unmatched: unknown access %d", int(p.Unmatched))
	}
	for pattern, a := range p.Procedures {
		if !a.valid() {
			return fmt.Errorf("policy: %q: unknown access %d", pattern, int(a))
		}
		service, method, ok := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
		if !strings.HasPrefix(pattern, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") ||
			(strings.Contains(method, "*") && method != "*") {
			return fmt.Errorf("policy: %q: want /pkg.Service/Method or /pkg.Service/*", pattern)
		}
	}
	return nil
}

func (a Access) valid() bool {
	return a >= AccessDeny && a <= AccessRevoker
}

// Access returns what the request path urlPath needs. p is cleaned first, so
// that dot segments cannot move a path from a protected service into an
// open one: the access is that of the path a mux would route it to.
func (p Policy) Access(urlPath string) Access {
	if !strings.HasPrefix(urlPath, "/") {
		urlPath = "/" + urlPath
	}
	clean := path.Clean(urlPath) // no allocation when already clean
	if a, ok := p.Procedures[clean]; ok {
		return a
	}
	service := clean
	if i := strings.IndexByte(clean[1:], '/'); i >= 0 {
		service = clean[:i+1]
	}
	// Built on the stack: a map lookup by string(bytes) does not allocate.
	var buf [128]byte
	if a, ok := p.Procedures[string(append(append(buf[:0], service...), "/*"...))]; ok {
		return a
	}
	return p.Unmatched
}
