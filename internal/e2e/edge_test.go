package e2e_test

import (
	"net/http"
	"testing"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// TestEdgeCredentials runs the binary with the edge variables set and
// authenticates with a session cookie and an API key in its header.
func TestEdgeCredentials(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	inst := w.serve(t, pgtest.NewURL(t), map[string]string{
		"AUTHSVC_EXTAUTHZ_CREDENTIALS":    "session_cookie,api_key",
		"AUTHSVC_EXTAUTHZ_API_KEY_HEADER": "X-API-Key",
	})
	client := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, inst.URL)
	cookie := w.demo.SessionCookies[0]
	res, err := client.Authenticate(ctx, connect.NewRequest(&authsvcv1.AuthenticateRequest{
		Headers: map[string]string{"cookie": "__session=" + cookie.Value}, ClientAddress: "192.0.2.1",
	}))
	if err != nil {
		t.Fatalf("Authenticate(session cookie): %v", err)
	}
	if res.Msg.GetCredential() != authsvcv1.Credential_CREDENTIAL_SESSION_COOKIE || res.Msg.GetSession().GetUserId() != cookie.UserID {
		t.Errorf("Authenticate(session cookie) = %v", res.Msg)
	}
	// Bearer tokens are switched off.
	tok := w.token(t)
	_, err = client.Authenticate(ctx, connect.NewRequest(&authsvcv1.AuthenticateRequest{
		Headers: map[string]string{"authorization": "Bearer " + tok},
	}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Authenticate(bearer, switched off) = %v, want Unauthenticated", err)
	}

	envoy := authv3.NewAuthorizationClient(grpcConn(t, inst))
	check, err := envoy.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/orders", Headers: map[string]string{"x-api-key": w.demo.Keys[0].Secret},
		}},
	}})
	if err != nil {
		t.Fatalf("Check(api key): %v", err)
	}
	got := map[string]string{}
	for _, h := range check.GetOkResponse().GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if got["x-authsvc-credential"] != "api_key" || got["x-authsvc-api-key-id"] != w.demo.Keys[0].Key.ID {
		t.Errorf("Check(api key) = %v", check)
	}
	if n := w.fake.Calls(wachtfake.RouteSessionToken); n != 1 {
		t.Errorf("%d session token exchanges, want 1", n)
	}
}
