package service_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"

	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// checkUpstream is what an allowed Check does to the request Envoy sends
// upstream.
type checkUpstream struct {
	Set     map[string]string
	Removed []string
}

// checkDenial is what a denied Check answers the client with.
type checkDenial struct {
	GRPCCode rpccode.Code
	Message  string
	Status   int
	Headers  map[string]string
	Body     string
}

// checkOutcome is one Check answer: an error code, or an allowed or a
// denied response.
type checkOutcome struct {
	Code    connect.Code
	Allowed *checkUpstream
	Denied  *checkDenial
}

// outcomeOf reads a Check answer. Every header Check sets overwrites the
// client's: one appended would leave a forged value beside authsvc's.
func outcomeOf(t *testing.T, res *connect.Response[authv3.CheckResponse], err error) checkOutcome {
	t.Helper()
	if err != nil {
		return checkOutcome{Code: connect.CodeOf(err)}
	}
	headers := func(hs []*corev3.HeaderValueOption) map[string]string {
		out := map[string]string{}
		for _, h := range hs {
			if a := h.GetAppendAction(); a != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Errorf("header %s is written with %v, want OVERWRITE_IF_EXISTS_OR_ADD", h.GetHeader().GetKey(), a)
			}
			out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		return out
	}
	msg := res.Msg
	if ok := msg.GetOkResponse(); ok != nil {
		if c := rpccode.Code(msg.GetStatus().GetCode()); c != rpccode.Code_OK {
			t.Errorf("an allowed request has status %v", c)
		}
		// Nothing but the identity headers and Authorization is touched:
		// no response headers, no query parameters.
		rest := proto.Clone(ok).(*authv3.OkHttpResponse)
		rest.Headers, rest.HeadersToRemove = nil, nil
		if !proto.Equal(rest, &authv3.OkHttpResponse{}) {
			t.Errorf("an allowed request is changed beyond its headers: %v", rest)
		}
		return checkOutcome{Allowed: &checkUpstream{Set: headers(ok.GetHeaders()), Removed: ok.GetHeadersToRemove()}}
	}
	d := msg.GetDeniedResponse()
	return checkOutcome{Denied: &checkDenial{
		GRPCCode: rpccode.Code(msg.GetStatus().GetCode()),
		Message:  msg.GetStatus().GetMessage(),
		Status:   int(d.GetStatus().GetCode()),
		Headers:  headers(d.GetHeaders()),
		Body:     d.GetBody(),
	}}
}

// TestCheckHeaderRules checks, over Connect and gRPC on the whole
// service, which headers Check sets, removes and answers with: every
// identity header is set or removed on an allowed request, whatever the
// client forged; a denied request is answered without any; Authorization
// is removed only when configured; the header prefix is configurable.
func TestCheckHeaderRules(t *testing.T) {
	t.Parallel()
	withCredentials := func(c *app.Config) {
		c.ExtAuthzTokenCookies = []string{tokenCookie}
		c.ExtAuthzAPIKeyHeader = "x-api-key"
	}
	deployments := map[string]func(*app.Config){
		"default": withCredentials,
		"strip": func(c *app.Config) {
			withCredentials(c)
			c.ExtAuthzStripAuthorization = true
		},
		"prefix": func(c *app.Config) {
			withCredentials(c)
			c.ExtAuthzHeaderPrefix = "X-Identity-"
		},
		"exchange_rate_limited": withCredentials,
	}
	harnesses := map[string]*apptest.Harness{}
	for name, cfg := range deployments {
		opts := apptest.Options{SeedDemo: true, Config: cfg}
		if name == "exchange_rate_limited" {
			// A stopped clock: the cooldown after Wacht's 429 is whole.
			at := time.Now()
			opts.Now = func() time.Time { return at }
		}
		harnesses[name] = apptest.New(t, opts)
	}
	harnesses["exchange_rate_limited"].Fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteSessionToken, Mode: wachtfake.Fault429})

	// Every harness has the same demo: its ids and permissions are the
	// same, its tokens and keys are not.
	demo := harnesses["default"].Demo
	claims := demo.TokenClaims
	key := demo.Keys[0].Key
	session := func(p, credential string) *checkUpstream {
		return &checkUpstream{
			Set: map[string]string{
				p + "credential":               credential,
				p + "user-id":                  claims.UserID,
				p + "session-id":               claims.SessionID,
				p + "organization-id":          claims.Organization,
				p + "workspace-id":             claims.Workspace,
				p + "organization-permissions": "org:billing:manage,org:members:read",
				p + "workspace-permissions":    "orders:read,orders:write",
			},
			Removed: []string{p + "api-key-id", p + "api-key-app", p + "api-key-owner-id", p + "api-key-permissions", p + "refusal-reason"},
		}
	}
	apiKey := &checkUpstream{
		Set: map[string]string{
			"x-authsvc-credential":          "api_key",
			"x-authsvc-api-key-id":          key.ID,
			"x-authsvc-api-key-app":         demo.AppSlug,
			"x-authsvc-api-key-permissions": "orders:read,orders:write",
		},
		Removed: []string{
			"x-authsvc-user-id", "x-authsvc-session-id", "x-authsvc-organization-id", "x-authsvc-workspace-id",
			"x-authsvc-organization-permissions", "x-authsvc-workspace-permissions", "x-authsvc-api-key-owner-id",
			"x-authsvc-refusal-reason",
		},
	}
	stripped := func(u *checkUpstream) *checkUpstream {
		return &checkUpstream{Set: u.Set, Removed: append(append([]string(nil), u.Removed...), "authorization")}
	}
	denied := func(status int, grpcCode rpccode.Code, reason, challenge, body string) *checkDenial {
		d := &checkDenial{
			GRPCCode: grpcCode, Message: reason, Status: status, Body: body,
			Headers: map[string]string{"content-type": "application/json", "x-authsvc-refusal-reason": reason},
		}
		if challenge != "" {
			d.Headers["www-authenticate"] = challenge
		}
		return d
	}
	forged := func(h map[string]string, prefix string) map[string]string {
		out := map[string]string{}
		for _, name := range []string{"user-id", "session-id", "organization-id", "workspace-permissions", "api-key-id", "api-key-permissions", "refusal-reason", "credential"} {
			out[prefix+name] = "forged"
		}
		for k, v := range h {
			out[k] = v
		}
		return out
	}

	// creds are a harness's credentials, ready for headers.
	type creds = edgeCreds
	credsOf := func(h *apptest.Harness) creds {
		t.Helper()
		return demoCreds(t, h.Fake, h.Demo)
	}

	tests := []struct {
		name       string
		deployment string
		// headers returns the request's headers.
		headers func(c creds) map[string]string
		// raw sends them in header_map, as encode_raw_headers does.
		raw  bool
		ext  map[string]string
		want checkOutcome
	}{
		{
			name: "bearer_overwrites_forged_identity", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"authorization": "Bearer " + c.token}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: session("x-authsvc-", "bearer")},
		},
		{
			name: "bearer_in_header_map", deployment: "default", raw: true,
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"authorization": "Bearer " + c.token}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: session("x-authsvc-", "bearer")},
		},
		{
			name: "token_cookie", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"cookie": "theme=dark; " + tokenCookie + "=" + c.token}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: session("x-authsvc-", "token_cookie")},
		},
		{
			name: "session_cookie", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"cookie": "__session=" + c.cookie}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: session("x-authsvc-", "session_cookie")},
		},
		{
			name: "api_key_removes_forged_session_headers", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"authorization": "Bearer " + c.key}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: apiKey},
		},
		{
			name: "missing_credential_denied", deployment: "default",
			headers: func(creds) map[string]string { return forged(map[string]string{"cookie": "theme=dark"}, "x-authsvc-") },
			want:    checkOutcome{Denied: denied(401, rpccode.Code_UNAUTHENTICATED, "missing", `Bearer realm="authsvc"`, `{"error":"missing"}`)},
		},
		{
			name: "expired_token_denied", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"authorization": "Bearer " + c.expiredToken}, "x-authsvc-")
			},
			want: checkOutcome{Denied: denied(401, rpccode.Code_UNAUTHENTICATED, "expired; credential=bearer",
				`Bearer error="invalid_token"`, `{"error":"expired","credential":"bearer"}`)},
		},
		{
			name: "route_permissions_denied", deployment: "default",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"cookie": tokenCookie + "=" + c.token}, "x-authsvc-")
			},
			ext: map[string]string{"authsvc_required_permissions": "admin:all"},
			want: checkOutcome{Denied: denied(403, rpccode.Code_PERMISSION_DENIED, "permission_denied; credential=token_cookie",
				`Bearer error="insufficient_scope"`, `{"error":"permission_denied","credential":"token_cookie"}`)},
		},
		{
			name: "malformed_route_setting_is_an_error", deployment: "default",
			headers: func(c creds) map[string]string { return map[string]string{"authorization": "Bearer " + c.token} },
			ext:     map[string]string{"authsvc_check_revocation": "sometimes"},
			want:    checkOutcome{Code: connect.CodeInvalidArgument},
		},
		{
			name: "strip_bearer", deployment: "strip",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"authorization": "Bearer " + c.token}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: stripped(session("x-authsvc-", "bearer"))},
		},
		{
			name: "strip_with_a_cookie_credential", deployment: "strip",
			headers: func(c creds) map[string]string {
				return map[string]string{"cookie": "__session=" + c.cookie}
			},
			want: checkOutcome{Allowed: stripped(session("x-authsvc-", "session_cookie"))},
		},
		{
			name: "strip_keeps_the_api_key_header", deployment: "strip",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"x-api-key": c.key}, "x-authsvc-")
			},
			want: checkOutcome{Allowed: stripped(apiKey)},
		},
		{
			name: "strip_denied", deployment: "strip",
			headers: func(c creds) map[string]string {
				return map[string]string{"authorization": "Bearer " + c.expiredToken}
			},
			want: checkOutcome{Denied: denied(401, rpccode.Code_UNAUTHENTICATED, "expired; credential=bearer",
				`Bearer error="invalid_token"`, `{"error":"expired","credential":"bearer"}`)},
		},
		{
			// Under another prefix, x-authsvc- headers are the upstream's
			// business and pass untouched.
			name: "prefix_bearer", deployment: "prefix",
			headers: func(c creds) map[string]string {
				return forged(forged(map[string]string{"authorization": "Bearer " + c.token}, "x-authsvc-"), "x-identity-")
			},
			want: checkOutcome{Allowed: session("x-identity-", "bearer")},
		},
		{
			name: "prefix_denied", deployment: "prefix",
			headers: func(creds) map[string]string { return forged(nil, "x-identity-") },
			want: checkOutcome{Denied: &checkDenial{
				GRPCCode: rpccode.Code_UNAUTHENTICATED, Message: "missing", Status: 401, Body: `{"error":"missing"}`,
				Headers: map[string]string{"content-type": "application/json", "x-identity-refusal-reason": "missing", "www-authenticate": `Bearer realm="authsvc"`},
			}},
		},
		{
			name: "exchange_rate_limited", deployment: "exchange_rate_limited",
			headers: func(c creds) map[string]string {
				return forged(map[string]string{"cookie": "__session=" + c.cookie}, "x-authsvc-")
			},
			want: checkOutcome{Denied: &checkDenial{
				GRPCCode: rpccode.Code_RESOURCE_EXHAUSTED, Message: "rate_limited; credential=session_cookie", Status: 429,
				Body: `{"error":"rate_limited","credential":"session_cookie"}`,
				Headers: map[string]string{
					"content-type": "application/json", "x-authsvc-refusal-reason": "rate_limited; credential=session_cookie",
					"retry-after": strconv.Itoa(int(sessionexchange.DefaultCooldown / time.Second)),
				},
			}},
		},
	}
	sets := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	for _, p := range handlerProtocols {
		for _, tt := range tests {
			h := harnesses[tt.deployment]
			client := h.CheckClient(p.opts...)
			headers := tt.headers(credsOf(h))
			shape := shapeHeaders
			if tt.raw {
				shape = shapeHeaderMap
			}
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				res, err := client.CallUnary(t.Context(), connect.NewRequest(checkRequest(shape, headers, tt.ext)))
				if diff := cmp.Diff(tt.want, outcomeOf(t, res, err), sets); diff != "" {
					t.Errorf("Check (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestCheckJSONContentTypes: Connect JSON clients may send either JSON
// content type; Check answers both alike, allowed and denied.
func TestCheckJSONContentTypes(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.Options{SeedDemo: true})
	claims := h.Demo.TokenClaims
	claims.Lifetime = time.Hour
	token, err := h.Fake.MintToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, authorization, want string
	}{
		{"allowed", "Bearer " + token, `"okResponse"`},
		{"denied", "Bearer not-a-token", `"deniedResponse"`},
	} {
		body := `{"attributes":{"request":{"http":{"method":"GET","path":"/","headers":{"authorization":"` + tc.authorization + `"}}}}}`
		answers := map[string]string{}
		for _, contentType := range []string{"application/json", "application/json; charset=utf-8"} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
				h.URL+"/envoy.service.auth.v3.Authorization/Check", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", contentType)
			res, err := h.HTTPClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK || !strings.Contains(string(got), tc.want) {
				t.Errorf("%s, %s: %d %s; want 200 with %s", tc.name, contentType, res.StatusCode, got, tc.want)
			}
			answers[contentType] = string(got)
		}
		if diff := cmp.Diff(answers["application/json"], answers["application/json; charset=utf-8"]); diff != "" {
			t.Errorf("%s: the answers differ by content type (-json +charset):\n%s", tc.name, diff)
		}
	}
}
