// Package callers authenticates and authorizes the internal services that
// call authsvc, in HTTP middleware that runs before Connect reads a request.
//
// A caller proves who it is with "Authorization: Bearer <token>" or with a
// client certificate verified under mTLS. The callers file
// (AUTHSVC_CALLERS_FILE) lists each caller with its roles:
//
//	{"callers": [
//	  {"name": "orders", "token_sha256": "<64 hex digits>", "roles": ["reader"]},
//	  {"name": "envoy", "cert": {"uri_san": "spiffe://cluster.local/ns/gw/sa/envoy"}, "roles": ["reader"]},
//	  {"name": "ops", "token_sha256": "<64 hex digits>", "roles": ["admin"]}
//	]}
//
// The file holds only the SHA-256 of each token, never the token. Compute
// it with
//
//	printf %s "$TOKEN" | sha256sum
//
// (printf, not echo, so that no newline is hashed).
//
// A cert identity names any of common_name, uri_san and dns_san; all that
// are given must match the verified leaf certificate. A caller with both a
// token_sha256 and a cert must present both: the token names the caller and
// the certificate must match it. The role admin implies reader.
//
// Which role a procedure needs comes from a [Policy], given by the
// application that owns the mux.
//
// A refused call is answered in the caller's protocol (Connect, gRPC or
// gRPC-Web) with what [Config].MapError makes of the refusal:
// [ErrMissingCredential] or [ErrInvalidCredential] for a missing or unknown
// credential, a *[RoleError] for a known caller without the role,
// [ErrProcedureDenied] for a procedure the policy denies. authsvc maps them
// to Unauthenticated and PermissionDenied, with their fixed messages.
//
// The caller that was let in is on the request context: see [FromContext]
// and [LogAttrs].
package callers
