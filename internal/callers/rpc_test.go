package callers_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/google/go-cmp/cmp"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/callers"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)

	ok := func(caller string) callResult { return callResult{Caller: caller, Reached: true} }
	refused := func(code connect.Code) callResult { return callResult{Code: code} }
	tests := []struct {
		name          string
		proc          string
		authorization string
		want          callResult
	}{
		{"no credential reader proc", procGetUser, "", refused(connect.CodeUnauthenticated)},
		{"no credential admin proc", procRotate, "", refused(connect.CodeUnauthenticated)},
		{"no credential check", procCheck, "", refused(connect.CodeUnauthenticated)},
		{"wrong token", procGetUser, "Bearer " + wrongToken, refused(connect.CodeUnauthenticated)},
		{"wrong token admin proc", procRotate, "Bearer " + wrongToken, refused(connect.CodeUnauthenticated)},
		{"reader on AuthService", procGetUser, "Bearer " + readerToken, ok("orders/token")},
		{"reader on Check", procCheck, "Bearer " + readerToken, ok("orders/token")},
		{"reader on AdminService", procRotate, "Bearer " + readerToken, refused(connect.CodePermissionDenied)},
		{"admin on AuthService", procGetUser, "Bearer " + adminToken, ok("ops/token")},
		{"admin on AdminService", procRotate, "Bearer " + adminToken, ok("ops/token")},
		{"reader on RevokeSession", procRevoke, "Bearer " + readerToken, refused(connect.CodePermissionDenied)},
		{"revoker on RevokeSession", procRevoke, "Bearer " + revokeToken, ok("signout/token")},
		{"revoker on AuthService", procGetUser, "Bearer " + revokeToken, ok("signout/token")},
		{"revoker on AdminService", procRotate, "Bearer " + revokeToken, refused(connect.CodePermissionDenied)},
		{"admin on RevokeSession", procRevoke, "Bearer " + adminToken, ok("ops/token")},
		{"bearer with empty token", procGetUser, "Bearer ", refused(connect.CodeUnauthenticated)},
		{"bearer without space", procGetUser, "Bearer", refused(connect.CodeUnauthenticated)},
		{"lowercase bearer scheme", procGetUser, "bearer " + readerToken, ok("orders/token")},
		{"uppercase bearer scheme", procGetUser, "BEARER " + adminToken, ok("ops/token")},
		{"token with trailing space", procGetUser, "Bearer " + readerToken + " ", refused(connect.CodeUnauthenticated)},
		{"token hash is no token", procGetUser, "Bearer " + hashToken(readerToken), refused(connect.CodeUnauthenticated)},
		{"basic auth", procGetUser, "Basic " + base64.StdEncoding.EncodeToString([]byte("orders:"+readerToken)), refused(connect.CodeUnauthenticated)},
		{"token alone without scheme", procGetUser, readerToken, refused(connect.CodeUnauthenticated)},
		{"bound caller without its cert", procGetUser, "Bearer " + boundToken, refused(connect.CodeUnauthenticated)},
		// Unknown procedures pass through to the mux, whose 404 clients
		// read as Unimplemented, with or without a credential.
		{"unknown procedure", procUnknown, "", refused(connect.CodeUnimplemented)},
		{"unknown procedure with token", procUnknown, "Bearer " + adminToken, refused(connect.CodeUnimplemented)},
	}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := srv.callEmpty(t, hc, p, tt.proc, tt.authorization)
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("call %s (-want +got):\n%s\nerr: %v", tt.proc, diff, err)
					}
				})
			}
		})
	}
}

func TestOpenProcedures(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)

	for _, p := range protocols {
		for _, authorization := range []string{"", "Bearer " + wrongToken, "Bearer ", "Basic eDp5", "Bearer " + readerToken} {
			t.Run(p.name+"/health/"+authorization, func(t *testing.T) {
				t.Parallel()
				client := grpchealth.NewClient(hc, srv.URL, p.opts...)
				// The health client has no header option; use a transport
				// that sets the header.
				if authorization != "" {
					client = grpchealth.NewClient(withHeader(hc, "Authorization", authorization), srv.URL, p.opts...)
				}
				res, err := client.Check(t.Context(), &grpchealth.CheckRequest{Service: healthedName})
				if err != nil {
					t.Fatalf("health check: %v", err)
				}
				if res.Status != grpchealth.StatusServing {
					t.Errorf("health status = %v, want serving", res.Status)
				}
			})
		}
	}

	// Reflection is a bidirectional stream, so it needs gRPC over HTTP/2.
	grpc := connect.WithGRPC()
	t.Run("reflection v1", func(t *testing.T) {
		t.Parallel()
		client := connect.NewClient[reflectionv1.ServerReflectionRequest, reflectionv1.ServerReflectionResponse](
			withHeader(hc, "Authorization", "Bearer "+wrongToken), srv.URL+"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", grpc)
		stream := client.CallBidiStream(t.Context())
		if err := stream.Send(&reflectionv1.ServerReflectionRequest{
			MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{ListServices: "*"},
		}); err != nil {
			t.Fatalf("send: %v", err)
		}
		res, err := stream.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		_ = stream.CloseRequest()
		_ = stream.CloseResponse()
		var names []string
		for _, s := range res.GetListServicesResponse().GetService() {
			names = append(names, s.GetName())
		}
		if diff := cmp.Diff([]string{healthedName}, names); diff != "" {
			t.Errorf("services (-want +got):\n%s", diff)
		}
	})
	t.Run("reflection v1alpha", func(t *testing.T) {
		t.Parallel()
		client := connect.NewClient[reflectionv1alpha.ServerReflectionRequest, reflectionv1alpha.ServerReflectionResponse](
			hc, srv.URL+"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc)
		stream := client.CallBidiStream(t.Context())
		if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{
			MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{ListServices: "*"},
		}); err != nil {
			t.Fatalf("send: %v", err)
		}
		res, err := stream.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		_ = stream.CloseRequest()
		_ = stream.CloseResponse()
		if n := len(res.GetListServicesResponse().GetService()); n != 1 {
			t.Errorf("got %d services, want 1", n)
		}
	})
	t.Run("plain route passes through", func(t *testing.T) {
		t.Parallel()
		res, err := hc.Get(srv.URL + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 418 {
			t.Errorf("GET /plain: status %d, want 418", res.StatusCode)
		}
	})
}

func TestOpenMode(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Open: true})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)
	anonymous := callResult{Caller: "anonymous/open", Reached: true}
	for _, p := range protocols {
		for _, tt := range []struct {
			name, proc, authorization string
		}{
			{"no credential reader proc", procGetUser, ""},
			{"no credential admin proc", procRotate, ""},
			{"wrong token admin proc", procRotate, "Bearer " + wrongToken},
			{"reader token admin proc", procRotate, "Bearer " + readerToken},
			{"basic check", procCheck, "Basic eDp5"},
		} {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := srv.callEmpty(t, hc, p, tt.proc, tt.authorization)
				if diff := cmp.Diff(anonymous, got); diff != "" {
					t.Errorf("call %s (-want +got):\n%s\nerr: %v", tt.proc, diff, err)
				}
			})
		}
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload in open mode: got nil error, want one")
	}
}

func TestDenyUnmatched(t *testing.T) {
	t.Parallel()
	policy := app.CallerPolicy()
	policy.Unmatched = callers.AccessDeny
	policy.Procedures[procCheck] = callers.AccessDeny
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers()), Policy: policy})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)
	tests := []struct {
		name, proc, authorization string
		want                      callResult
	}{
		{"unknown procedure", procUnknown, "Bearer " + adminToken, callResult{Code: connect.CodePermissionDenied}},
		{"procedure entry wins over service", procCheck, "Bearer " + adminToken, callResult{Code: connect.CodePermissionDenied}},
		{"listed procedure", procRotate, "Bearer " + adminToken, callResult{Caller: "ops/token", Reached: true}},
	}
	for _, p := range protocols {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := srv.callEmpty(t, hc, p, tt.proc, tt.authorization)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("call %s (-want +got):\n%s\nerr: %v", tt.proc, diff, err)
				}
			})
		}
	}
}

// TestRefusalMessages pins what a refused caller reads, in every protocol:
// fixed messages that never say which callers exist.
func TestRefusalMessages(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	policy := app.CallerPolicy()
	policy.Unmatched = callers.AccessDeny
	deny := startServer(t, newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers()), Policy: policy}), nil, tls.NoClientCert, nil)
	clients := map[*testServer]*http.Client{srv: srv.httpClient(t, nil), deny: deny.httpClient(t, nil)}
	type refusal struct {
		Code    connect.Code
		Message string
	}
	tests := []struct {
		name          string
		srv           *testServer
		proc          string
		authorization string
		want          refusal
	}{
		{"no credential", srv, procGetUser, "", refusal{connect.CodeUnauthenticated,
			"missing caller credential: send Authorization: Bearer <token> or a client certificate"}},
		{"basic auth", srv, procGetUser, "Basic eDp5", refusal{connect.CodeUnauthenticated,
			"missing caller credential: send Authorization: Bearer <token> or a client certificate"}},
		{"unknown token", srv, procGetUser, "Bearer " + wrongToken, refusal{connect.CodeUnauthenticated, "invalid caller credential"}},
		{"bound caller without its cert", srv, procGetUser, "Bearer " + boundToken, refusal{connect.CodeUnauthenticated, "invalid caller credential"}},
		{"reader on AdminService", srv, procRotate, "Bearer " + readerToken, refusal{connect.CodePermissionDenied, "procedure needs the admin role"}},
		{"reader on RevokeSession", srv, procRevoke, "Bearer " + readerToken, refusal{connect.CodePermissionDenied, "procedure needs the revoker role"}},
		{"denied procedure", deny, procUnknown, "Bearer " + adminToken, refusal{connect.CodePermissionDenied, "procedure not allowed"}},
	}
	for _, p := range protocols {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := tt.srv.callEmpty(t, clients[tt.srv], p, tt.proc, tt.authorization)
				var ce *connect.Error
				if !errors.As(err, &ce) {
					t.Fatalf("call %s: %v, want a refusal", tt.proc, err)
				}
				if diff := cmp.Diff(tt.want, refusal{ce.Code(), ce.Message()}); diff != "" {
					t.Errorf("call %s (-want +got):\n%s", tt.proc, diff)
				}
			})
		}
	}
}
