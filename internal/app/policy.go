package app

import (
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/service"
)

// CallerPolicy is which role each service on the mux needs: AuthService
// and the Envoy Authorization service need reader, but RevokeSession,
// which signs users out, needs revoker; AdminService needs admin; gRPC
// health and server reflection are open.
//
// Paths it does not name are passed on untouched (Unmatched is AccessOpen),
// so that an unknown procedure gets the mux's usual 404 (which Connect and
// gRPC clients see as Unimplemented), and non-RPC routes on the same mux,
// such as /metrics and /webhooks/wacht, keep their own checks. This is safe
// because a generated Connect handler serves only its own service's paths,
// and every protected service is covered by a "/pkg.Service/*" entry. A
// service added to the mux must be added here; set Unmatched to AccessDeny
// to fail closed instead.
func CallerPolicy() callers.Policy {
	all := func(service string) string { return "/" + service + "/*" }
	return callers.Policy{
		Procedures: map[string]callers.Access{
			all(authsvcv1connect.AuthServiceName):              callers.AccessReader,
			authsvcv1connect.AuthServiceRevokeSessionProcedure: callers.AccessRevoker,
			all(authsvcv1connect.AdminServiceName):             callers.AccessAdmin,
			all(service.ExtAuthzServiceName):                   callers.AccessReader,
			all(grpchealth.HealthV1ServiceName):                callers.AccessOpen,
			all(grpcreflect.ReflectV1ServiceName):              callers.AccessOpen,
			all(grpcreflect.ReflectV1AlphaServiceName):         callers.AccessOpen,
		},
		Unmatched: callers.AccessOpen,
	}
}
