package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/sessiontoken"
)

const (
	// ExtAuthzServiceName is Envoy's external authorization service.
	ExtAuthzServiceName = "envoy.service.auth.v3.Authorization"
	// ExtAuthzCheckProcedure is its one RPC.
	ExtAuthzCheckProcedure = "/envoy.service.auth.v3.Authorization/Check"
	// RequiredPermissionsExtension is the context extension (set per route
	// in Envoy) listing, comma-separated, the permissions a route needs.
	RequiredPermissionsExtension = "authsvc_required_permissions"
)

// SessionDecider decides whether a session token may pass.
type SessionDecider interface {
	Verify(ctx context.Context, token string, required []string, checkRevocation bool) (*sessiontoken.Claims, error)
}

// ExtAuthzConfig configures Envoy's Check.
type ExtAuthzConfig struct {
	Logger  *slog.Logger
	Decider SessionDecider
	// HeaderPrefix starts the names of the identity headers sent upstream;
	// default "x-authsvc-".
	HeaderPrefix string
	// StripAuthorization removes the caller's Authorization header from
	// the request sent upstream once it has been verified.
	StripAuthorization bool
	// CheckRevocation also checks that the session is still active.
	CheckRevocation bool
}

// ExtAuthz serves envoy.service.auth.v3.Authorization/Check, so that
// Envoy, Istio and Envoy Gateway can use authsvc as their external
// authorizer.
type ExtAuthz struct {
	cfg     ExtAuthzConfig
	headers extAuthzHeaders
}

// extAuthzHeaders are the names of the upstream identity headers.
type extAuthzHeaders struct {
	user, session, org, workspace, orgPerms, workspacePerms, reason string
}

// NewExtAuthz returns Envoy's Check service.
func NewExtAuthz(cfg ExtAuthzConfig) (*ExtAuthz, error) {
	if cfg.Decider == nil {
		return nil, errors.New("new ext_authz: a decider is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := strings.ToLower(cfg.HeaderPrefix)
	if p == "" {
		p = "x-authsvc-"
	}
	return &ExtAuthz{cfg: cfg, headers: extAuthzHeaders{
		user:           p + "user-id",
		session:        p + "session-id",
		org:            p + "organization-id",
		workspace:      p + "workspace-id",
		orgPerms:       p + "organization-permissions",
		workspacePerms: p + "workspace-permissions",
		reason:         p + "refusal-reason",
	}}, nil
}

// Handler returns the path and handler to mount.
func (e *ExtAuthz) Handler(opts ...connect.HandlerOption) (string, *connect.Handler) {
	return ExtAuthzCheckProcedure, connect.NewUnaryHandler(ExtAuthzCheckProcedure, e.Check, opts...)
}

// Check implements Envoy's Authorization.Check. Refusals are answers
// (a denied response), not errors; only failures to decide at all, such
// as Wacht being unreachable for a revocation check, are errors, so that
// Envoy's failure_mode_allow and status_on_error apply to them alone.
func (e *ExtAuthz) Check(ctx context.Context, req *connect.Request[authv3.CheckRequest]) (*connect.Response[authv3.CheckResponse], error) {
	httpReq := req.Msg.GetAttributes().GetRequest().GetHttp()
	token, ok := bearerToken(httpReq.GetHeaders())
	if !ok {
		return connect.NewResponse(e.denied(typev3.StatusCode_Unauthorized, code.Code_UNAUTHENTICATED,
			"missing_token", `Bearer realm="authsvc"`)), nil
	}
	var required []string
	if ext := req.Msg.GetAttributes().GetContextExtensions()[RequiredPermissionsExtension]; ext != "" {
		for _, p := range strings.Split(ext, ",") {
			if p = strings.TrimSpace(p); p != "" {
				required = append(required, p)
			}
		}
	}
	claims, err := e.cfg.Decider.Verify(ctx, token, required, e.cfg.CheckRevocation)
	if err != nil {
		var perm *permissionError
		var invalid *invalidArgumentError
		switch reason, refused := RefusalReason(err); {
		case refused:
			return connect.NewResponse(e.denied(typev3.StatusCode_Unauthorized, code.Code_UNAUTHENTICATED,
				refusalName(reason), `Bearer error="invalid_token"`)), nil
		case errors.Is(err, sessiontoken.ErrTokenTooLarge), errors.As(err, &invalid):
			return connect.NewResponse(e.denied(typev3.StatusCode_Unauthorized, code.Code_UNAUTHENTICATED,
				"malformed", `Bearer error="invalid_token"`)), nil
		case errors.As(err, &perm):
			return connect.NewResponse(e.denied(typev3.StatusCode_Forbidden, code.Code_PERMISSION_DENIED,
				"permission_denied", `Bearer error="insufficient_scope"`)), nil
		}
		return nil, errorMapper{logger: e.cfg.Logger}.toConnect(ctx, err)
	}
	return connect.NewResponse(e.allowed(claims)), nil
}

func (e *ExtAuthz) allowed(c *sessiontoken.Claims) *authv3.CheckResponse {
	h := e.headers
	ok := &authv3.OkHttpResponse{}
	// Every identity header is either set by us or removed, so that a
	// client can never smuggle one in.
	for _, kv := range [][2]string{
		{h.user, c.Subject},
		{h.session, c.SessionID},
		{h.org, c.Organization},
		{h.workspace, c.Workspace},
		{h.orgPerms, strings.Join(c.OrganizationPermissions, ",")},
		{h.workspacePerms, strings.Join(c.WorkspacePermissions, ",")},
	} {
		if kv[1] == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, kv[0])
			continue
		}
		ok.Headers = append(ok.Headers, header(kv[0], kv[1]))
	}
	ok.HeadersToRemove = append(ok.HeadersToRemove, h.reason)
	if e.cfg.StripAuthorization {
		ok.HeadersToRemove = append(ok.HeadersToRemove, "authorization")
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func (e *ExtAuthz) denied(status typev3.StatusCode, c code.Code, reason, challenge string) *authv3.CheckResponse {
	body, _ := json.Marshal(map[string]string{"error": reason})
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(c), Message: reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: status},
			Headers: []*corev3.HeaderValueOption{
				header("www-authenticate", challenge),
				header("content-type", "application/json"),
				header(e.headers.reason, reason),
			},
			Body: string(body),
		}},
	}
}

func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// bearerToken reads "Authorization: Bearer <token>" from Envoy's header
// map, whose keys are lower case.
func bearerToken(headers map[string]string) (string, bool) {
	v := headers["authorization"]
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// refusalName is the lower-case name of a refusal reason, such as
// "expired", for headers and bodies.
func refusalName(r authsvcv1.TokenRefusalReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "TOKEN_REFUSAL_REASON_"))
}
