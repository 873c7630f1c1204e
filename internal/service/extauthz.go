package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/checkcodec"
)

const (
	// ExtAuthzServiceName is Envoy's external authorization service.
	ExtAuthzServiceName = "envoy.service.auth.v3.Authorization"
	// ExtAuthzCheckProcedure is its one RPC.
	ExtAuthzCheckProcedure = "/envoy.service.auth.v3.Authorization/Check"
	// RequiredPermissionsExtension is the context extension (set per route
	// in Envoy) listing, comma-separated, the permissions a route needs.
	RequiredPermissionsExtension = "authsvc_required_permissions"
	// CredentialsExtension is the context extension listing,
	// comma-separated, the credential kinds a route accepts (bearer,
	// token_cookie, session_cookie, api_key), within those configured.
	CredentialsExtension = "authsvc_credentials"
	// CheckRevocationExtension is the context extension ("true" or
	// "false") that turns the revocation check on or off for a route.
	CheckRevocationExtension = "authsvc_check_revocation"
)

// Decider decides who a request is from; [AuthServer.Decide] is the one
// implementation.
type Decider interface {
	Decide(ctx context.Context, r AuthRequest) (Decision, error)
}

// ExtAuthzConfig configures Envoy's Check.
type ExtAuthzConfig struct {
	Logger  *slog.Logger
	Decider Decider
	// HeaderPrefix starts the names of the identity headers sent upstream;
	// default "x-authsvc-".
	HeaderPrefix string
	// StripAuthorization removes the caller's Authorization header from
	// the request sent upstream once it has been verified.
	StripAuthorization bool
	// CheckRevocation also checks that the session is still active,
	// unless a route's authsvc_check_revocation says otherwise.
	CheckRevocation bool
}

// ExtAuthz serves envoy.service.auth.v3.Authorization/Check, so that
// Envoy, Istio and Envoy Gateway can use authsvc as their external
// authorizer.
type ExtAuthz struct {
	cfg     ExtAuthzConfig
	headers extAuthzHeaders
	proto   checkcodec.Proto
}

// extAuthzHeaders are the names of the upstream identity headers.
type extAuthzHeaders struct {
	user, session, org, workspace, orgPerms, workspacePerms string
	credential, keyID, keyApp, keyOwner, keyPerms           string
	reason                                                  string
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
	return &ExtAuthz{cfg: cfg, proto: checkcodec.NewProto(), headers: extAuthzHeaders{
		user:           p + "user-id",
		session:        p + "session-id",
		org:            p + "organization-id",
		workspace:      p + "workspace-id",
		orgPerms:       p + "organization-permissions",
		workspacePerms: p + "workspace-permissions",
		credential:     p + "credential",
		keyID:          p + "api-key-id",
		keyApp:         p + "api-key-app",
		keyOwner:       p + "api-key-owner-id",
		keyPerms:       p + "api-key-permissions",
		reason:         p + "refusal-reason",
	}}, nil
}

// Handler returns the path and handler to mount. Its codecs, which
// replace any in opts, write an allowed answer without building Envoy's
// CheckResponse.
func (e *ExtAuthz) Handler(opts ...connect.HandlerOption) (string, *connect.Handler) {
	opts = append(opts[:len(opts):len(opts)], connect.WithCodec(e.proto),
		connect.WithCodec(checkcodec.JSON{}), connect.WithCodec(checkcodec.JSONCharsetUTF8{}))
	return ExtAuthzCheckProcedure, connect.NewUnaryHandler(ExtAuthzCheckProcedure, e.Check, opts...)
}

// Check implements Envoy's Authorization.Check. Refusals are answers
// (a denied response), not errors; only failures to decide at all, such
// as Wacht being unreachable for a revocation check, are errors, so that
// Envoy's failure_mode_allow and status_on_error apply to them alone.
func (e *ExtAuthz) Check(ctx context.Context, req *connect.Request[checkcodec.Request]) (*connect.Response[checkcodec.Answer], error) {
	msg := req.Msg
	r := AuthRequest{
		encoded:         msg,
		Method:          msg.Method(),
		Path:            msg.Path(),
		CheckRevocation: e.cfg.CheckRevocation,
		ClientAddress:   msg.ClientAddress(),
	}
	if ext := msg.ContextExtensions(); len(ext) > 0 {
		if err := routeSettings(ext, &r); err != nil {
			return nil, errorMapper{logger: e.cfg.Logger}.toConnect(ctx, invalidArgument("%v", err))
		}
	}
	d, err := e.cfg.Decider.Decide(ctx, r)
	if err != nil {
		if ref, ok := refusalOf(err); ok {
			return connect.NewResponse(&checkcodec.Answer{Message: e.denied(ref)}), nil
		}
		return nil, errorMapper{logger: e.cfg.Logger}.toConnect(ctx, err)
	}
	return connect.NewResponse(e.allowed(d)), nil
}

// routeSettings applies a route's context extensions. A malformed one is
// a configuration error: Check fails, and Envoy's status_on_error answers.
func routeSettings(ext map[string]string, r *AuthRequest) error {
	if v := ext[RequiredPermissionsExtension]; v != "" {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				r.RequiredPermissions = append(r.RequiredPermissions, p)
			}
		}
	}
	if v, ok := ext[CredentialsExtension]; ok {
		set, err := ParseCredentials(v)
		if err != nil {
			return fmt.Errorf("context extension %s: %w", CredentialsExtension, err)
		}
		if set == 0 {
			return fmt.Errorf("context extension %s lists no credential kind", CredentialsExtension)
		}
		r.Credentials = set
	}
	if v, ok := ext[CheckRevocationExtension]; ok {
		on, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("context extension %s must be true or false", CheckRevocationExtension)
		}
		r.CheckRevocation = on
	}
	return nil
}

// allowed is the answer that lets a request through with the identity
// headers of d. Every identity header is either set or removed, so that a
// client can never smuggle one in.
func (e *ExtAuthz) allowed(d Decision) *checkcodec.Answer {
	h := e.headers
	a := &checkcodec.Answer{}
	set := func(name, value string) {
		if value == "" {
			a.Remove(name)
			return
		}
		a.Set(name, value)
	}
	set(h.credential, credentialName(d.Credential))
	if c := d.Claims; c != nil {
		set(h.user, c.Subject)
		set(h.session, c.SessionID)
		set(h.org, c.Organization)
		set(h.workspace, c.Workspace)
		set(h.orgPerms, strings.Join(c.OrganizationPermissions, ","))
		set(h.workspacePerms, strings.Join(c.WorkspacePermissions, ","))
		a.Remove(h.keyID)
		a.Remove(h.keyApp)
		a.Remove(h.keyOwner)
		a.Remove(h.keyPerms)
	} else {
		k := d.APIKey
		a.Remove(h.user)
		a.Remove(h.session)
		set(h.org, k.GetOrganizationId())
		set(h.workspace, k.GetWorkspaceId())
		a.Remove(h.orgPerms)
		a.Remove(h.workspacePerms)
		set(h.keyID, k.GetKeyId())
		set(h.keyApp, k.GetAppSlug())
		set(h.keyOwner, k.GetOwnerUserId())
		set(h.keyPerms, strings.Join(k.GetPermissions(), ","))
	}
	a.Remove(h.reason)
	if e.cfg.StripAuthorization {
		a.Remove("authorization")
	}
	return a
}

// refusalBody is the JSON body of a denied response.
type refusalBody struct {
	Error      string `json:"error"`
	Credential string `json:"credential,omitempty"`
}

func (e *ExtAuthz) denied(r refusal) *authv3.CheckResponse {
	reason, cred := refusalName(r.reason), credentialName(r.credential)
	headerValue := reason
	if cred != "" {
		headerValue += "; credential=" + cred
	}
	status, grpcCode, challenge := typev3.StatusCode_Unauthorized, code.Code_UNAUTHENTICATED, `Bearer error="invalid_token"`
	switch r.code {
	case connect.CodePermissionDenied:
		status, grpcCode, challenge = typev3.StatusCode_Forbidden, code.Code_PERMISSION_DENIED, `Bearer error="insufficient_scope"`
	case connect.CodeResourceExhausted:
		status, grpcCode, challenge = typev3.StatusCode_TooManyRequests, code.Code_RESOURCE_EXHAUSTED, ""
	}
	if r.reason == authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MISSING {
		challenge = `Bearer realm="authsvc"`
	}
	body, _ := json.Marshal(refusalBody{Error: reason, Credential: cred})
	headers := []*corev3.HeaderValueOption{
		checkcodec.Header("content-type", "application/json"),
		checkcodec.Header(e.headers.reason, headerValue),
	}
	if challenge != "" {
		headers = append(headers, checkcodec.Header("www-authenticate", challenge))
	}
	if r.code == connect.CodeResourceExhausted {
		secs := max(int64((r.retryAfter+time.Second-1)/time.Second), 1)
		headers = append(headers, checkcodec.Header("retry-after", strconv.FormatInt(secs, 10)))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode), Message: headerValue},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: status},
			Headers: headers,
			Body:    string(body),
		}},
	}
}

// bearerToken reads the token of an "Authorization: Bearer <token>"
// header value.
func bearerToken(v string) (string, bool) {
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
