package service_test

import (
	"errors"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// handlerProtocols are the protocols every handler test runs over.
var handlerProtocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
}

// seedUser adds a user with n sign-ins to the emulator.
func seedUser(t *testing.T, fake *wachtfake.Server, n int) string {
	t.Helper()
	u, err := fake.AddUser(wachtfake.User{FirstName: "Test", LastName: "User",
		Emails: []wachtfake.Email{{Email: "test@example.com", Primary: true, Verified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := fake.AddSignIn(u.ID, wachtfake.SignIn{IPAddress: "192.0.2.10", Browser: "Firefox"}); err != nil {
			t.Fatal(err)
		}
	}
	return u.ID
}

func code(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	if err == nil {
		return 0
	}
	return connect.CodeUnknown
}

func TestBatchGetUsersHandler(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.Options{})
	a, b := seedUser(t, h.Fake, 0), seedUser(t, h.Fake, 0)
	const missing = "24380000000999999"
	tests := []struct {
		name         string
		ids          []string
		wantUsers    []string
		wantNotFound []string
		wantCode     connect.Code
	}{
		{name: "duplicates_answered_once", ids: []string{a, b, a, a}, wantUsers: []string{a, b}},
		{name: "unknown_id_listed_not_found", ids: []string{a, missing}, wantUsers: []string{a}, wantNotFound: []string{missing}},
		{name: "only_unknown", ids: []string{missing, missing}, wantNotFound: []string{missing}},
		{name: "malformed_id", ids: []string{a, "not-an-id"}, wantCode: connect.CodeInvalidArgument},
	}
	for _, p := range handlerProtocols {
		client := h.AuthClient(p.opts...)
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				res, err := client.BatchGetUsers(t.Context(), connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: tt.ids}))
				if got := code(err); got != tt.wantCode {
					t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
				}
				if err != nil {
					return
				}
				var got []string
				for _, u := range res.Msg.GetUsers() {
					got = append(got, u.GetId())
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(tt.wantUsers))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("users (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantNotFound, res.Msg.GetNotFoundIds()); diff != "" {
					t.Errorf("not_found_ids (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestListSessionsPagingHandler(t *testing.T) {
	t.Parallel()
	h := apptest.New(t, apptest.Options{})
	user := seedUser(t, h.Fake, 3)
	none := seedUser(t, h.Fake, 0)
	for _, p := range handlerProtocols {
		client := h.AuthClient(p.opts...)
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			list := func(req *authsvcv1.ListSessionsRequest) (*authsvcv1.ListSessionsResponse, error) {
				res, err := client.ListSessions(ctx, connect.NewRequest(req))
				if err != nil {
					return nil, err
				}
				return res.Msg, nil
			}
			all, err := list(&authsvcv1.ListSessionsRequest{UserId: user})
			if err != nil {
				t.Fatal(err)
			}
			if len(all.GetSessions()) != 3 || all.GetNextPageToken() != "" {
				t.Fatalf("default page: %d sessions, token %q; want 3 and none", len(all.GetSessions()), all.GetNextPageToken())
			}
			// Pages of 2 walk the same list in the same order.
			first, err := list(&authsvcv1.ListSessionsRequest{UserId: user, PageSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(first.GetSessions()) != 2 || first.GetNextPageToken() == "" {
				t.Fatalf("first page: %d sessions, token %q; want 2 and a token", len(first.GetSessions()), first.GetNextPageToken())
			}
			second, err := list(&authsvcv1.ListSessionsRequest{UserId: user, PageSize: 2, PageToken: first.GetNextPageToken()})
			if err != nil {
				t.Fatal(err)
			}
			if len(second.GetSessions()) != 1 || second.GetNextPageToken() != "" {
				t.Fatalf("last page: %d sessions, token %q; want 1 and none", len(second.GetSessions()), second.GetNextPageToken())
			}
			paged := append(first.GetSessions(), second.GetSessions()...)
			if diff := cmp.Diff(all.GetSessions(), paged, protocmp.Transform()); diff != "" {
				t.Errorf("paged list differs from the whole (-whole +paged):\n%s", diff)
			}
			// An exact fit leaves no token.
			exact, err := list(&authsvcv1.ListSessionsRequest{UserId: user, PageSize: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(exact.GetSessions()) != 3 || exact.GetNextPageToken() != "" {
				t.Errorf("exact page: %d sessions, token %q; want 3 and none", len(exact.GetSessions()), exact.GetNextPageToken())
			}
			empty, err := list(&authsvcv1.ListSessionsRequest{UserId: none, PageSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(empty.GetSessions()) != 0 || empty.GetNextPageToken() != "" {
				t.Errorf("no sessions: %d sessions, token %q", len(empty.GetSessions()), empty.GetNextPageToken())
			}

			refused := []struct {
				name string
				req  *authsvcv1.ListSessionsRequest
			}{
				{"forged_token", &authsvcv1.ListSessionsRequest{UserId: user, PageSize: 2, PageToken: "AAAA"}},
				{"token_of_another_user", &authsvcv1.ListSessionsRequest{UserId: none, PageSize: 2, PageToken: first.GetNextPageToken()}},
				{"negative_page_size", &authsvcv1.ListSessionsRequest{UserId: user, PageSize: -1}},
				{"malformed_user_id", &authsvcv1.ListSessionsRequest{UserId: "u-1", PageSize: 2}},
			}
			for _, tt := range refused {
				if _, err := list(tt.req); code(err) != connect.CodeInvalidArgument {
					t.Errorf("%s: %v, want InvalidArgument", tt.name, err)
				}
			}
		})
	}
}

// TestRevokeSessionPartialFailure revokes a session of two sign-ins while
// Wacht fails after the first: the caller learns that the outcome is
// unknown, what was revoked stops being served at once, and a retry
// revokes the rest.
func TestRevokeSessionPartialFailure(t *testing.T) {
	t.Parallel()
	for _, p := range handlerProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			h := apptest.New(t, apptest.Options{})
			client := h.AuthClient(p.opts...)
			userID := seedUser(t, h.Fake, 1)
			first, err := h.Fake.SignIns(userID)
			if err != nil || len(first) != 1 {
				t.Fatalf("sign-ins: %v, %v", first, err)
			}
			session := first[0].SessionID
			if _, err := h.Fake.AddSignIn(userID, wachtfake.SignIn{SessionID: session, Browser: "Safari"}); err != nil {
				t.Fatal(err)
			}
			active := func() []string {
				t.Helper()
				res, err := client.ListSessions(t.Context(), connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: userID}))
				if err != nil {
					t.Fatalf("ListSessions: %v", err)
				}
				var ids []string
				for _, s := range res.Msg.GetSessions() {
					ids = append(ids, s.GetId())
				}
				return ids
			}
			if n := len(active()); n != 2 {
				t.Fatalf("%d sign-ins cached before revoking, want 2", n)
			}

			h.Fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeSession, Mode: wachtfake.Fault5xx, After: 1})
			req := &authsvcv1.RevokeSessionRequest{UserId: userID, Target: &authsvcv1.RevokeSessionRequest_SessionId{SessionId: session}}
			_, err = client.RevokeSession(t.Context(), connect.NewRequest(req))
			if code(err) != connect.CodeUnknown {
				t.Fatalf("RevokeSession with Wacht failing after one sign-in: %v, want Unknown", err)
			}
			if got := active(); len(got) != 1 {
				t.Fatalf("after the partial failure ListSessions serves %v, want the one sign-in Wacht still has", got)
			}

			h.Fake.ClearFaults()
			res, err := client.RevokeSession(t.Context(), connect.NewRequest(req))
			if err != nil {
				t.Fatalf("retrying RevokeSession: %v", err)
			}
			if n := len(res.Msg.GetRevokedSignInIds()); n != 1 {
				t.Errorf("the retry revoked %d sign-ins, want the 1 left", n)
			}
			if got := active(); len(got) != 0 {
				t.Errorf("after the retry ListSessions serves %v, want none", got)
			}
		})
	}
}
