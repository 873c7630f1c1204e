package service_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// envoyShape says how a Check request carries its headers.
type envoyShape int

const (
	shapeHeaders   envoyShape = iota // the headers map
	shapeHeaderMap                   // header_map with raw values (encode_raw_headers)
)

// checkRequest builds a Check request as Envoy sends it.
func checkRequest(shape envoyShape, headers map[string]string, ext map[string]string) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/orders/7?expand=lines", Host: "orders.example.com", Protocol: "HTTP/1.1"}
	switch shape {
	case shapeHeaders:
		h.Headers = headers
	case shapeHeaderMap:
		h.HeaderMap = &corev3.HeaderMap{}
		for k, v := range headers {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.50", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}},
		}}},
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: ext,
	}}
}

// checkResult is what a test reads of a Check response.
type checkResult struct {
	status  int    // HTTP status of a denial, 200 when allowed
	reason  string // x-authsvc-refusal-reason
	body    string
	set     map[string]string
	removed []string
}

func (r *edgeRig) check(t *testing.T, shape envoyShape, headers, ext map[string]string) checkResult {
	t.Helper()
	res, err := r.envoy.Check(t.Context(), checkRequest(shape, headers, ext))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	out := checkResult{set: map[string]string{}}
	if ok := res.GetOkResponse(); ok != nil {
		if res.GetStatus().GetCode() != int32(codes.OK) {
			t.Fatalf("ok response with status %v", res.GetStatus())
		}
		out.status = 200
		for _, h := range ok.GetHeaders() {
			out.set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		out.removed = ok.GetHeadersToRemove()
		return out
	}
	d := res.GetDeniedResponse()
	out.status = int(d.GetStatus().GetCode())
	out.body = d.GetBody()
	for _, h := range d.GetHeaders() {
		out.set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	out.reason = out.set["x-authsvc-refusal-reason"]
	return out
}

// credentials of the demo, ready for headers.
type edgeCreds struct {
	token, expiredToken, cookie, devSession, key, readOnlyKey string
}

func (r *edgeRig) creds(t *testing.T) edgeCreds {
	t.Helper()
	return demoCreds(t, r.fake, r.demo)
}

// demoCreds mints a token good for an hour and one expired a minute after
// it was issued an hour ago, and gathers the demo's other credentials.
func demoCreds(t *testing.T, fake *wachtfake.Server, demo wachtfake.Demo) edgeCreds {
	t.Helper()
	claims := demo.TokenClaims
	claims.Lifetime = time.Hour
	tok, err := fake.MintToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	claims.IssuedAt, claims.Lifetime = time.Now().Add(-time.Hour), time.Minute
	expired, err := fake.MintToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	return edgeCreds{
		token: tok, expiredToken: expired,
		cookie: demo.SessionCookies[0].Value, devSession: demo.DevSession,
		key: demo.Keys[0].Secret, readOnlyKey: demo.Keys[1].Secret,
	}
}

func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	r := newEdgeRig(t, edgeRigConfig{})
	c := r.creds(t)
	ada := r.demo.Users[0].ID
	key := r.demo.Keys[0].Key
	tests := []struct {
		name    string
		headers map[string]string
		ext     map[string]string
		status  int
		reason  string            // refusal header, when denied
		want    map[string]string // some headers set upstream, when allowed
	}{
		{
			name:    "bearer token",
			headers: map[string]string{"authorization": "Bearer " + c.token, "x-authsvc-api-key-id": "spoofed"},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "bearer", "x-authsvc-user-id": ada},
		},
		{
			name:    "token cookie",
			headers: map[string]string{"cookie": "theme=dark; " + tokenCookie + "=" + c.token},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "token_cookie", "x-authsvc-user-id": ada},
		},
		{
			name:    "session cookie",
			headers: map[string]string{"cookie": "__session=" + c.cookie},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "session_cookie", "x-authsvc-user-id": ada, "x-authsvc-session-id": r.demo.TokenClaims.SessionID},
		},
		{
			name:    "development session header",
			headers: map[string]string{"x-development-session": c.devSession},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "session_cookie", "x-authsvc-user-id": ada},
		},
		{
			name:    "api key as bearer",
			headers: map[string]string{"authorization": "Bearer " + c.key, "x-authsvc-user-id": "spoofed"},
			status:  200,
			want: map[string]string{
				"x-authsvc-credential": "api_key", "x-authsvc-api-key-id": key.ID, "x-authsvc-api-key-app": "orders-api",
				"x-authsvc-api-key-permissions": "orders:read,orders:write",
			},
		},
		{
			name:    "api key header",
			headers: map[string]string{"x-api-key": c.key},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "api_key", "x-authsvc-api-key-id": key.ID},
		},
		{name: "nothing", headers: map[string]string{"cookie": "theme=dark"}, status: 401, reason: "missing"},
		{
			name:    "a refused bearer token is final",
			headers: map[string]string{"authorization": "Bearer " + c.expiredToken, "cookie": "__session=" + c.cookie},
			status:  401, reason: "expired; credential=bearer",
		},
		{
			name:    "an expired token cookie gives way to the session cookie",
			headers: map[string]string{"cookie": tokenCookie + "=" + c.expiredToken + "; __session=" + c.cookie},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "session_cookie"},
		},
		{
			name:    "an expired token cookie alone",
			headers: map[string]string{"cookie": tokenCookie + "=" + c.expiredToken},
			status:  401, reason: "expired; credential=token_cookie",
		},
		{
			name:    "bearer before cookies",
			headers: map[string]string{"authorization": "Bearer " + c.token, "cookie": "__session=sess_unknown"},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "bearer"},
		},
		{
			name:    "unknown session cookie",
			headers: map[string]string{"cookie": "__session=sess_unknown"},
			status:  401, reason: "revoked; credential=session_cookie",
		},
		{
			name:    "unknown api key",
			headers: map[string]string{"x-api-key": "sk_orders_" + strings.Repeat("A", 43)},
			status:  401, reason: "invalid_api_key; credential=api_key",
		},
		{
			name:    "route permissions, session",
			headers: map[string]string{"cookie": "__session=" + c.cookie},
			ext:     map[string]string{"authsvc_required_permissions": "orders:write,admin:all"},
			status:  403, reason: "permission_denied; credential=session_cookie",
		},
		{
			name:    "route permissions, api key",
			headers: map[string]string{"x-api-key": c.readOnlyKey},
			ext:     map[string]string{"authsvc_required_permissions": "orders:write"},
			status:  403, reason: "permission_denied; credential=api_key",
		},
		{
			name:    "route accepts api keys only",
			headers: map[string]string{"authorization": "Bearer " + c.token, "cookie": "__session=" + c.cookie},
			ext:     map[string]string{"authsvc_credentials": "api_key"},
			status:  401, reason: "missing",
		},
		{
			name:    "route accepts cookies only",
			headers: map[string]string{"authorization": "Bearer " + c.token, "cookie": "__session=" + c.cookie},
			ext:     map[string]string{"authsvc_credentials": "token_cookie, session_cookie"},
			status:  200,
			want:    map[string]string{"x-authsvc-credential": "session_cookie"},
		},
	}
	for _, shape := range []envoyShape{shapeHeaders, shapeHeaderMap} {
		for _, tt := range tests {
			got := r.check(t, shape, tt.headers, tt.ext)
			if got.status != tt.status || got.reason != tt.reason {
				t.Errorf("shape %d, %s: status %d reason %q, want %d %q (body %s)", shape, tt.name, got.status, got.reason, tt.status, tt.reason, got.body)
				continue
			}
			if tt.status != 200 {
				if !strings.Contains(got.body, `"error":"`+strings.Split(tt.reason, ";")[0]+`"`) {
					t.Errorf("shape %d, %s: body %s", shape, tt.name, got.body)
				}
				if tt.status == 401 && got.set["www-authenticate"] == "" {
					t.Errorf("shape %d, %s: no WWW-Authenticate", shape, tt.name)
				}
				continue
			}
			for k, v := range tt.want {
				if got.set[k] != v {
					t.Errorf("shape %d, %s: upstream %s = %q, want %q", shape, tt.name, k, got.set[k], v)
				}
			}
			// Every identity header is set or removed.
			for _, h := range []string{"x-authsvc-user-id", "x-authsvc-session-id", "x-authsvc-organization-id", "x-authsvc-workspace-id",
				"x-authsvc-organization-permissions", "x-authsvc-workspace-permissions", "x-authsvc-credential",
				"x-authsvc-api-key-id", "x-authsvc-api-key-app", "x-authsvc-api-key-owner-id", "x-authsvc-api-key-permissions",
				"x-authsvc-refusal-reason"} {
				_, set := got.set[h]
				removed := false
				for _, rm := range got.removed {
					removed = removed || rm == h
				}
				if set == removed {
					t.Errorf("shape %d, %s: header %s set %t, removed %t", shape, tt.name, h, set, removed)
				}
			}
		}
	}
	// One each for the cookie, the development session and the unknown
	// cookie, whose refusal is remembered: 34 requests carried them.
	if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 3 {
		t.Errorf("%d session token exchanges for three sessions, want 3", n)
	}
}

func TestCheckGlobalSwitchAndRouteSettings(t *testing.T) {
	t.Parallel()
	r := newEdgeRig(t, edgeRigConfig{credentials: service.CredentialsBearer | service.CredentialsAPIKey})
	c := r.creds(t)
	if got := r.check(t, shapeHeaders, map[string]string{"cookie": "__session=" + c.cookie + "; " + tokenCookie + "=" + c.token}, nil); got.status != 401 || got.reason != "missing" {
		t.Errorf("cookies switched off: %d %q", got.status, got.reason)
	}
	// A route cannot turn on what is off globally.
	if got := r.check(t, shapeHeaders, map[string]string{"cookie": "__session=" + c.cookie}, map[string]string{"authsvc_credentials": "session_cookie"}); got.status != 401 {
		t.Errorf("route turning on a kind that is off: %d %q", got.status, got.reason)
	}
	if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 0 {
		t.Errorf("%d exchanges with session cookies off", n)
	}
	for _, ext := range []map[string]string{
		{"authsvc_credentials": "bearer,passkey"},
		{"authsvc_credentials": " , "},
		{"authsvc_check_revocation": "sometimes"},
	} {
		_, err := r.envoy.Check(t.Context(), checkRequest(shapeHeaders, map[string]string{"authorization": "Bearer " + c.token}, ext))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("context extensions %v: %v, want InvalidArgument", ext, err)
		}
	}
}

func TestCheckRevokedSessionCookie(t *testing.T) {
	t.Parallel()
	clock := &edgeClock{t: time.Now().Truncate(time.Second)}
	r := newEdgeRig(t, edgeRigConfig{clock: clock})
	cookie := r.demo.SessionCookies[1]
	h := map[string]string{"cookie": "__session=" + cookie.Value}
	if got := r.check(t, shapeHeaders, h, nil); got.status != 200 || got.set["x-authsvc-user-id"] != cookie.UserID {
		t.Fatalf("before revocation: %d %q", got.status, got.reason)
	}
	signIns, err := r.fake.SignIns(cookie.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range signIns {
		if si.SessionID == cookie.SessionID {
			if err := r.wacht.RevokeSignIn(t.Context(), cookie.UserID, si.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	// With the route's revocation check, at once.
	if got := r.check(t, shapeHeaders, h, map[string]string{"authsvc_check_revocation": "true"}); got.status != 401 || got.reason != "revoked; credential=session_cookie" {
		t.Errorf("revocation checked: %d %q", got.status, got.reason)
	}
	// Without it, once the cached token is due and the exchange refused.
	clock.Advance(wachtfake.DefaultTokenLifetime)
	for range 3 {
		if got := r.check(t, shapeHeaders, h, nil); got.status != 401 || got.reason != "revoked; credential=session_cookie" {
			t.Errorf("after the exchange was refused: %d %q", got.status, got.reason)
		}
	}
	if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 2 {
		t.Errorf("%d exchanges, want 2", n)
	}
}

func TestCheckExchangeRateLimited(t *testing.T) {
	t.Parallel()
	r := newEdgeRig(t, edgeRigConfig{})
	r.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteSessionToken, Mode: wachtfake.Fault429})
	h := map[string]string{"cookie": "__session=" + r.demo.SessionCookies[2].Value}
	for range 20 {
		got := r.check(t, shapeHeaders, h, nil)
		if got.status != 429 || got.reason != "rate_limited; credential=session_cookie" || got.set["retry-after"] == "" {
			t.Fatalf("over Wacht's limit: %d %q %v", got.status, got.reason, got.set)
		}
	}
	if n := r.fake.Calls(wachtfake.RouteSessionToken); n != 1 {
		t.Errorf("%d exchanges after a 429, want 1", n)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	r := newEdgeRig(t, edgeRigConfig{})
	c := r.creds(t)
	for _, grpcProtocol := range []bool{false, true} {
		client := r.connectClient(grpcProtocol)
		call := func(req *authsvcv1.AuthenticateRequest) (*authsvcv1.AuthenticateResponse, error) {
			res, err := client.Authenticate(t.Context(), connect.NewRequest(req))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		res, err := call(&authsvcv1.AuthenticateRequest{Headers: map[string]string{"Cookie": "__session=" + c.cookie}, Method: "GET", Path: "/orders"})
		if err != nil {
			t.Fatalf("grpc %t, session cookie: %v", grpcProtocol, err)
		}
		if res.GetCredential() != authsvcv1.Credential_CREDENTIAL_SESSION_COOKIE || res.GetSession().GetUserId() != r.demo.Users[0].ID ||
			!cmp.Equal(res.GetSession().GetWorkspacePermissions(), r.demo.TokenClaims.WorkspacePermissions) {
			t.Errorf("grpc %t, session cookie: %v", grpcProtocol, res)
		}
		res, err = call(&authsvcv1.AuthenticateRequest{Headers: map[string]string{"authorization": "Bearer " + c.key}, Method: "post", Path: "/orders",
			RequiredPermissions: []string{"orders:write"}})
		if err != nil {
			t.Fatalf("grpc %t, api key: %v", grpcProtocol, err)
		}
		if res.GetCredential() != authsvcv1.Credential_CREDENTIAL_API_KEY || res.GetApiKey().GetKeyId() != r.demo.Keys[0].Key.ID || !res.GetApiKey().GetAllowed() {
			t.Errorf("grpc %t, api key: %v", grpcProtocol, res)
		}
		res, err = call(&authsvcv1.AuthenticateRequest{Headers: map[string]string{"authorization": "Bearer " + c.token}, CheckRevocation: true})
		if err != nil || res.GetCredential() != authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN || res.GetSession().GetSessionId() != r.demo.TokenClaims.SessionID {
			t.Errorf("grpc %t, bearer: %v, %v", grpcProtocol, res, err)
		}

		for _, tt := range []struct {
			name       string
			req        *authsvcv1.AuthenticateRequest
			code       connect.Code
			reason     authsvcv1.TokenRefusalReason
			credential authsvcv1.Credential
		}{
			{"nothing", &authsvcv1.AuthenticateRequest{}, connect.CodeUnauthenticated,
				authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MISSING, authsvcv1.Credential_CREDENTIAL_UNSPECIFIED},
			{"expired token", &authsvcv1.AuthenticateRequest{Headers: map[string]string{"authorization": "Bearer " + c.expiredToken}}, connect.CodeUnauthenticated,
				authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_EXPIRED, authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN},
			{"missing permission", &authsvcv1.AuthenticateRequest{Headers: map[string]string{"cookie": tokenCookie + "=" + c.token}, RequiredPermissions: []string{"admin:all"}},
				connect.CodePermissionDenied, authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_PERMISSION_DENIED, authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN_COOKIE},
			{"read-only key writing", &authsvcv1.AuthenticateRequest{Headers: map[string]string{"x-api-key": c.readOnlyKey}, Method: "POST", Path: "/orders",
				RequiredPermissions: []string{"orders:write"}}, connect.CodePermissionDenied,
				authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_PERMISSION_DENIED, authsvcv1.Credential_CREDENTIAL_API_KEY},
		} {
			_, err := call(tt.req)
			if connect.CodeOf(err) != tt.code {
				t.Errorf("grpc %t, %s: %v, want %v", grpcProtocol, tt.name, err, tt.code)
				continue
			}
			var ce *connect.Error
			if !errors.As(err, &ce) || len(ce.Details()) != 1 {
				t.Errorf("grpc %t, %s: no refusal detail: %v", grpcProtocol, tt.name, err)
				continue
			}
			v, derr := ce.Details()[0].Value()
			ref, ok := v.(*authsvcv1.TokenRefusal)
			if derr != nil || !ok || ref.GetReason() != tt.reason || ref.GetCredential() != tt.credential {
				t.Errorf("grpc %t, %s: detail %v (%v), want %v %v", grpcProtocol, tt.name, v, derr, tt.reason, tt.credential)
			}
		}
	}
}

func TestNoCredentialInLogs(t *testing.T) {
	t.Parallel()
	clock := &edgeClock{t: time.Now().Truncate(time.Second)}
	r := newEdgeRig(t, edgeRigConfig{clock: clock})
	c := r.creds(t)
	secrets := []string{c.token, c.cookie, c.devSession, c.key, c.readOnlyKey, "sess_unknown-secret-cookie", "sk_orders_" + strings.Repeat("Z", 43)}
	// Failures are what get logged: make Wacht fail in every way.
	for _, f := range []wachtfake.Fault{{Mode: wachtfake.Fault5xx}, {Mode: wachtfake.Fault429}, {Mode: wachtfake.FaultDown}, {}} {
		r.fake.ClearFaults()
		if f.Mode != wachtfake.FaultNone {
			r.fake.SetFault(f)
		}
		for _, h := range []map[string]string{
			{"cookie": "__session=" + c.cookie},
			{"cookie": "__session=sess_unknown-secret-cookie"},
			{"x-development-session": c.devSession},
			{"authorization": "Bearer " + c.key},
			{"x-api-key": c.readOnlyKey},
			{"x-api-key": "sk_orders_" + strings.Repeat("Z", 43)},
			{"authorization": "Bearer " + c.token},
		} {
			_, _ = r.envoy.Check(t.Context(), checkRequest(shapeHeaders, h, map[string]string{"authsvc_check_revocation": "true"}))
			_, _ = r.connectClient(false).Authenticate(t.Context(), connect.NewRequest(&authsvcv1.AuthenticateRequest{Headers: h, Method: "GET", Path: "/x"}))
		}
		clock.Advance(time.Minute)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "level=") {
		t.Fatal("nothing was logged; the test proves nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a credential reached the logs:\n%s", logs)
			break
		}
	}
}
