package e2e_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// refusal returns the TokenRefusal detail of a Connect error.
func refusal(t *testing.T, err error) authsvcv1.TokenRefusalReason {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a Connect error", err)
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("decode detail: %v", derr)
		}
		if r, ok := v.(*authsvcv1.TokenRefusal); ok {
			return r.GetReason()
		}
	}
	t.Fatalf("error %v has no TokenRefusal detail", err)
	return 0
}

func TestAuthServiceEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	inst := w.serve(t, pgtest.NewURL(t), nil)
	client := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, inst.URL)
	grpcClient := authsvcv1connect.NewAuthServiceClient(h2cClient(), inst.URL, connect.WithGRPC())
	conn := grpcConn(t, inst)
	ada := w.demo.Users[0]

	t.Run("verify_session_over_every_client", func(t *testing.T) {
		tok := w.token(t)
		req := &authsvcv1.VerifySessionRequest{Token: tok, IncludeUser: true, CheckRevocation: true}
		for name, c := range map[string]authsvcv1connect.AuthServiceClient{"connect": client, "grpc": grpcClient} {
			res, err := c.VerifySession(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatalf("%s VerifySession: %v", name, err)
			}
			got := res.Msg
			if got.GetUserId() != ada.ID || got.GetSessionId() != w.demo.TokenClaims.SessionID ||
				got.GetOrganizationId() != w.demo.OrganizationID || got.GetUser().GetId() != ada.ID {
				t.Errorf("%s VerifySession = %v", name, got)
			}
			if got.GetUser().GetPrimaryEmailAddress() == "" {
				t.Errorf("%s: included user has no primary email: %v", name, got.GetUser())
			}
		}
		var res authsvcv1.VerifySessionResponse
		if err := conn.Invoke(ctx, "/authsvc.v1.AuthService/VerifySession", req, &res); err != nil {
			t.Fatalf("grpc-go VerifySession: %v", err)
		}
		if res.GetUserId() != ada.ID {
			t.Errorf("grpc-go VerifySession user = %q, want %q", res.GetUserId(), ada.ID)
		}
	})

	t.Run("refusals_carry_a_reason", func(t *testing.T) {
		expiredClaims := w.demo.TokenClaims
		expiredClaims.IssuedAt = time.Now().Add(-10 * time.Minute)
		expired, err := w.fake.MintToken(expiredClaims)
		if err != nil {
			t.Fatal(err)
		}
		other, err := w.fake.SignClaims(map[string]any{
			"iss": "https://elsewhere.example", "sub": ada.ID, "sid": w.demo.TokenClaims.SessionID,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			token  string
			reason authsvcv1.TokenRefusalReason
		}{
			{"expired", expired, authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_EXPIRED},
			{"wrong_issuer", other, authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_WRONG_ISSUER},
			{"garbage", "not.a.token", authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MALFORMED},
			{"alg_none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSUPPORTED_ALGORITHM},
		}
		for _, tt := range tests {
			for name, c := range map[string]authsvcv1connect.AuthServiceClient{"connect": client, "grpc": grpcClient} {
				_, err := c.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: tt.token}))
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("%s %s: %v, want Unauthenticated", name, tt.name, err)
					continue
				}
				if got := refusal(t, err); got != tt.reason {
					t.Errorf("%s %s: reason %v, want %v", name, tt.name, got, tt.reason)
				}
			}
		}
		// grpc-go sees the same detail.
		err = conn.Invoke(ctx, "/authsvc.v1.AuthService/VerifySession",
			&authsvcv1.VerifySessionRequest{Token: expired}, &authsvcv1.VerifySessionResponse{})
		st := status.Convert(err)
		if st.Code() != codes.Unauthenticated || len(st.Details()) != 1 {
			t.Fatalf("grpc-go: %v with details %v", st, st.Details())
		}
		if r, ok := st.Details()[0].(*authsvcv1.TokenRefusal); !ok || r.GetReason() != authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_EXPIRED {
			t.Errorf("grpc-go detail = %v", st.Details()[0])
		}
	})

	t.Run("bad_input_gets_the_right_code", func(t *testing.T) {
		tok := w.token(t)
		tests := []struct {
			name string
			call func() error
			want connect.Code
		}{
			{"missing_permission", func() error {
				_, err := client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: tok, RequiredPermissions: []string{"no:such:permission"}}))
				return err
			}, connect.CodePermissionDenied},
			{"huge_token", func() error {
				_, err := client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: strings.Repeat("a", 20<<10)}))
				return err
			}, connect.CodeInvalidArgument},
			{"empty_token", func() error {
				_, err := client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{}))
				return err
			}, connect.CodeInvalidArgument},
			{"user_id_not_decimal", func() error {
				_, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: "../admin"}))
				return err
			}, connect.CodeInvalidArgument},
			{"unknown_user", func() error {
				_, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: "42"}))
				return err
			}, connect.CodeNotFound},
			{"batch_too_big", func() error {
				ids := make([]string, 101)
				for i := range ids {
					ids[i] = "1"
				}
				_, err := client.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: ids}))
				return err
			}, connect.CodeInvalidArgument},
			{"tampered_page_token", func() error {
				_, err := client.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: ada.ID, PageToken: "eyJzIjoieCIsIm8iOjF9.AAAA"}))
				return err
			}, connect.CodeInvalidArgument},
			{"revoke_without_target", func() error {
				_, err := client.RevokeSession(ctx, connect.NewRequest(&authsvcv1.RevokeSessionRequest{UserId: ada.ID}))
				return err
			}, connect.CodeInvalidArgument},
			{"api_key_bad_method", func() error {
				_, err := client.VerifyAPIKey(ctx, connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{Key: "sk_x", Method: "BREW", Resource: "/"}))
				return err
			}, connect.CodeInvalidArgument},
		}
		for _, tt := range tests {
			if got := connect.CodeOf(tt.call()); got != tt.want {
				t.Errorf("%s: code %v, want %v", tt.name, got, tt.want)
			}
		}
	})

	t.Run("users", func(t *testing.T) {
		res, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID}))
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		u := res.Msg.GetUser()
		if u.GetFirstName() != ada.FirstName || len(u.GetEmailAddresses()) != len(ada.Emails) {
			t.Errorf("GetUser = %v", u)
		}
		if got := u.GetPublicMetadata().AsMap()["plan"]; got != "pro" {
			t.Errorf("public metadata plan = %v, want pro", got)
		}
		batch, err := client.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{
			UserIds: []string{w.demo.Users[1].ID, ada.ID, "7", ada.ID},
		}))
		if err != nil {
			t.Fatalf("BatchGetUsers: %v", err)
		}
		var ids []string
		for _, u := range batch.Msg.GetUsers() {
			ids = append(ids, u.GetId())
		}
		if diff := cmp.Diff([]string{w.demo.Users[1].ID, ada.ID}, ids); diff != "" {
			t.Errorf("BatchGetUsers users (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"7"}, batch.Msg.GetNotFoundIds()); diff != "" {
			t.Errorf("BatchGetUsers not found (-want +got):\n%s", diff)
		}
	})

	t.Run("list_sessions_pages", func(t *testing.T) {
		all, err := w.fake.SignIns(ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, si := range all {
			if si.ExpiresAt.After(time.Now()) {
				active++
			}
		}
		var seen []string
		req := &authsvcv1.ListSessionsRequest{UserId: ada.ID, PageSize: 1}
		for range 10 {
			res, err := client.ListSessions(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			for _, s := range res.Msg.GetSessions() {
				seen = append(seen, s.GetId())
			}
			if res.Msg.GetNextPageToken() == "" {
				break
			}
			req = &authsvcv1.ListSessionsRequest{UserId: ada.ID, PageSize: 1, PageToken: res.Msg.GetNextPageToken()}
		}
		if len(seen) != active || active < 2 {
			t.Errorf("paged through %d sessions, Wacht lists %d active", len(seen), active)
		}
		withExpired, err := client.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: ada.ID, IncludeExpired: true}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(withExpired.Msg.GetSessions()); n != len(all) || n == active {
			t.Errorf("include_expired lists %d, want %d (%d active)", n, len(all), active)
		}
	})

	t.Run("revoke_session_then_check_revocation_refuses", func(t *testing.T) {
		tok := w.token(t)
		req := connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: tok, CheckRevocation: true})
		if _, err := client.VerifySession(ctx, req); err != nil {
			t.Fatalf("before revoking: %v", err)
		}
		res, err := client.RevokeSession(ctx, connect.NewRequest(&authsvcv1.RevokeSessionRequest{
			UserId: ada.ID, Target: &authsvcv1.RevokeSessionRequest_SessionId{SessionId: w.demo.TokenClaims.SessionID},
		}))
		if err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		if len(res.Msg.GetRevokedSignInIds()) == 0 {
			t.Fatal("RevokeSession revoked nothing")
		}
		_, err = client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: tok, CheckRevocation: true}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated || refusal(t, err) != authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_REVOKED {
			t.Fatalf("after revoking: %v, want Unauthenticated/REVOKED", err)
		}
		// Without the check the token itself is still good until it expires.
		if _, err := client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: tok})); err != nil {
			t.Errorf("without check_revocation: %v", err)
		}
	})

	t.Run("verify_api_key", func(t *testing.T) {
		key := w.demo.Keys[0]
		res, err := client.VerifyAPIKey(ctx, connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{
			Key: key.Secret, Method: "GET", Resource: "/orders",
		}))
		if err != nil {
			t.Fatalf("VerifyAPIKey: %v", err)
		}
		if !res.Msg.GetAllowed() || res.Msg.GetKeyId() != key.Key.ID || res.Msg.GetAppSlug() != w.demo.AppSlug {
			t.Errorf("VerifyAPIKey = %v", res.Msg)
		}
		calls := w.fake.Calls(wachtfake.RouteAuthzCheck)
		if _, err := client.VerifyAPIKey(ctx, connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{
			Key: key.Secret, Method: "GET", Resource: "/orders",
		})); err != nil {
			t.Fatal(err)
		}
		// Wacht's Gateway counts every check against the key's rate limits
		// (1000 a minute by default), so an answer that carries them is
		// never reused: each check is the Gateway's to count.
		if got := w.fake.Calls(wachtfake.RouteAuthzCheck); got != calls+1 {
			t.Errorf("a repeated rate-limited check made %d gateway calls, want 1", got-calls)
		}
		bad, err := client.VerifyAPIKey(ctx, connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{
			Key: "sk_" + strings.Repeat("A", 43), Method: "GET", Resource: "/orders",
		}))
		if err != nil {
			t.Fatalf("VerifyAPIKey(unknown key): %v", err)
		}
		if bad.Msg.GetAllowed() || bad.Msg.GetReason() != authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_INVALID_KEY {
			t.Errorf("VerifyAPIKey(unknown key) = %v", bad.Msg)
		}
	})

	t.Run("envoy_check_with_a_grpc_client", func(t *testing.T) {
		envoy := authv3.NewAuthorizationClient(conn)
		check := func(headers map[string]string) *authv3.CheckResponse {
			t.Helper()
			res, err := envoy.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Path: "/orders/1", Host: "orders.internal", Headers: headers,
				}},
			}})
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			return res
		}
		// A fresh session: the revocation test above revoked the demo one.
		signIns, err := w.fake.SignIns(w.demo.Users[1].ID)
		if err != nil || len(signIns) == 0 {
			t.Fatalf("sign-ins of the second user: %v", err)
		}
		tok, err := w.fake.MintToken(wachtfake.TokenClaims{UserID: w.demo.Users[1].ID, SessionID: signIns[0].SessionID})
		if err != nil {
			t.Fatal(err)
		}
		ok := check(map[string]string{"authorization": "Bearer " + tok, "x-authsvc-user-id": "spoofed"})
		if ok.GetStatus().GetCode() != int32(codes.OK) || ok.GetOkResponse() == nil {
			t.Fatalf("Check(valid) = %v", ok)
		}
		got := map[string]string{}
		for _, h := range ok.GetOkResponse().GetHeaders() {
			got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if got["x-authsvc-user-id"] != w.demo.Users[1].ID || got["x-authsvc-session-id"] != signIns[0].SessionID {
			t.Errorf("upstream headers = %v", got)
		}
		denied := check(map[string]string{"authorization": "Bearer not-a-token"})
		d := denied.GetDeniedResponse()
		if denied.GetStatus().GetCode() == int32(codes.OK) || d.GetStatus().GetCode() != 401 {
			t.Fatalf("Check(bad token) = %v", denied)
		}
		var challenge string
		for _, h := range d.GetHeaders() {
			if h.GetHeader().GetKey() == "www-authenticate" {
				challenge = h.GetHeader().GetValue()
			}
		}
		if challenge != `Bearer error="invalid_token"` {
			t.Errorf("WWW-Authenticate = %q", challenge)
		}
		missing := check(map[string]string{})
		if missing.GetDeniedResponse().GetStatus().GetCode() != 401 {
			t.Errorf("Check(no token) = %v", missing)
		}
	})
}

func TestMetricsAreServed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	inst := w.serve(t, pgtest.NewURL(t), nil)
	client := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, inst.URL)
	ada := w.demo.Users[0]
	if _, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID})); err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: w.token(t)})); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(inst.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", res.StatusCode, err)
	}
	for _, want := range []string{
		`authsvc_rpc_requests_total{code="ok",procedure="/authsvc.v1.AuthService/GetUser"} 1`,
		`authsvc_wacht_requests_total{route="GET /users/{user_id}/details",status="200"} 1`,
		`authsvc_cache_reads_total{kind="user",level="load",outcome="fresh"} 1`,
		`authsvc_jwks_refreshes_total{result="ok"}`,
		`authsvc_build_info{version=`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), ada.ID) {
		t.Error("/metrics contains a user id")
	}
}

// TestReplicasShareInvalidations runs two replicas on one database: a
// webhook delivered to one is seen by the other within a second.
func TestReplicasShareInvalidations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	dbURL := pgtest.NewURL(t)
	a := w.serve(t, dbURL, nil)
	b := w.serve(t, dbURL, nil)
	clientA := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, a.URL)
	clientB := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, b.URL)
	grace := w.demo.Users[1]

	first := func(c authsvcv1connect.AuthServiceClient) string {
		t.Helper()
		res, err := c.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: grace.ID}))
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		return res.Msg.GetUser().GetFirstName()
	}
	if got := first(clientA); got != grace.FirstName {
		t.Fatalf("replica A: first name %q", got)
	}
	calls := w.fake.Calls(wachtfake.RouteUserDetails)
	if got := first(clientB); got != grace.FirstName {
		t.Fatalf("replica B: first name %q", got)
	}
	if got := w.fake.Calls(wachtfake.RouteUserDetails); got != calls {
		t.Errorf("replica B called Wacht (%d calls, want %d): it should read replica A's entry from Postgres", got, calls)
	}

	if err := w.fake.UpdateUser(grace.ID, func(u *wachtfake.User) { u.FirstName = "Admiral" }); err != nil {
		t.Fatal(err)
	}
	data, err := w.fake.UserEventData(grace.ID)
	if err != nil {
		t.Fatal(err)
	}
	status, err := w.fake.SendWebhook(ctx, a.URL+"/webhooks/wacht", w.secret, "user.updated", data)
	if err != nil || status != http.StatusOK {
		t.Fatalf("webhook to replica A: status %d, %v", status, err)
	}
	// The target is well under a second; the deadline leaves room for a
	// loaded machine, and the time taken is logged.
	sent := time.Now()
	deadline := sent.Add(10 * time.Second)
	for first(clientB) != "Admiral" {
		if time.Now().After(deadline) {
			t.Fatal("replica B still serves the old name 10s after the webhook reached replica A")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("replica B served the change %v after the webhook reached replica A", time.Since(sent))

	// A forged webhook changes nothing.
	status, err = w.fake.SendWebhook(ctx, b.URL+"/webhooks/wacht", "whsec_"+strings.Repeat("A", 44), "user.deleted", data)
	if err != nil || status != http.StatusUnauthorized {
		t.Errorf("forged webhook: status %d, %v; want 401", status, err)
	}
	if got := first(clientB); got != "Admiral" {
		t.Errorf("after a forged webhook: %q", got)
	}
}

// TestRestartWithWachtDown serves cached users from Postgres when Wacht
// is unreachable after a restart.
func TestRestartWithWachtDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	dbURL := pgtest.NewURL(t)
	ada := w.demo.Users[0]

	// Past its maximum age a read must load: with Wacht failing, the
	// cached user is served marked stale.
	short := map[string]string{"AUTHSVC_USER_TTL": "1s", "AUTHSVC_USER_MAX_AGE": "1s"}
	first := w.serve(t, dbURL, short)
	c := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, first.URL)
	if _, err := c.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID})); err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if err := first.Stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}

	second := w.serve(t, dbURL, short)
	time.Sleep(1100 * time.Millisecond) // the entry is now stale
	w.fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Route: wachtfake.RouteUserDetails})
	c = authsvcv1connect.NewAuthServiceClient(http.DefaultClient, second.URL)
	res, err := c.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID}))
	if err != nil {
		t.Fatalf("GetUser with Wacht failing: %v", err)
	}
	if res.Msg.GetUser().GetId() != ada.ID || res.Header().Get("Authsvc-Stale") != "true" {
		t.Errorf("GetUser = %v, stale header %q; want the cached user marked stale", res.Msg.GetUser(), res.Header().Get("Authsvc-Stale"))
	}
}
