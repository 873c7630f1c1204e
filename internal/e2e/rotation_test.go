package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/pgtest"
)

func TestRotateAPIKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := startWacht(t)
	dbURL := pgtest.NewURL(t)
	fast := map[string]string{"AUTHSVC_ROTATION_POLL_INTERVAL": "100ms"}
	// The first replica never gets to revoke: the second one must.
	first := w.serve(t, dbURL, map[string]string{"AUTHSVC_ROTATION_POLL_INTERVAL": "1h"})
	admin := authsvcv1connect.NewAdminServiceClient(http.DefaultClient, first.URL)
	app := w.demo.AppSlug
	keyActive := func(id string) bool {
		t.Helper()
		keys, err := w.fake.APIKeys(app)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k.ID == id {
				return k.IsActive
			}
		}
		t.Fatalf("key %s not found", id)
		return false
	}
	var secrets []string

	t.Run("at_once", func(t *testing.T) {
		old := w.demo.Keys[0].Key
		res, err := admin.RotateAPIKey(ctx, connect.NewRequest(&authsvcv1.RotateAPIKeyRequest{
			AppSlug: app, KeyId: old.ID, Reason: "leaked in a log",
		}))
		if err != nil {
			t.Fatalf("RotateAPIKey: %v", err)
		}
		m := res.Msg
		secrets = append(secrets, m.GetSecret())
		if m.GetSecret() == "" || m.GetApiKey().GetName() != old.Name || m.GetPreviousKeyId() != old.ID ||
			!strings.HasSuffix(m.GetSecret(), m.GetApiKey().GetKeySuffix()) {
			t.Errorf("RotateAPIKey = %v", m)
		}
		if keyActive(old.ID) {
			t.Error("the old key is still active after a rotation without grace")
		}
		if !keyActive(m.GetApiKey().GetId()) {
			t.Error("the new key is not active")
		}
	})

	t.Run("with_a_grace_period_that_survives_a_restart", func(t *testing.T) {
		old := w.demo.Keys[1].Key
		res, err := admin.RotateAPIKey(ctx, connect.NewRequest(&authsvcv1.RotateAPIKeyRequest{
			AppSlug: app, KeyId: old.ID, GracePeriod: durationpb.New(5 * time.Second), Reason: "scheduled",
		}))
		if err != nil {
			t.Fatalf("RotateAPIKey: %v", err)
		}
		secrets = append(secrets, res.Msg.GetSecret())
		revokesAt := res.Msg.GetPreviousKeyRevokesAt().AsTime()
		if d := time.Until(revokesAt); d <= 0 || d > 5*time.Second {
			t.Errorf("previous_key_revokes_at is %v from now, want up to 5s", d)
		}
		if !keyActive(old.ID) || !keyActive(res.Msg.GetApiKey().GetId()) {
			t.Fatal("both keys should work during the grace period")
		}
		// The replica that scheduled the revocation goes away; another
		// one on the same database carries it out.
		if err := first.Stop(t); err != nil {
			t.Fatal(err)
		}
		second := w.serve(t, dbURL, fast)
		deadline := time.Now().Add(30 * time.Second)
		for keyActive(old.ID) {
			if time.Now().After(deadline) {
				t.Fatal("the old key was not revoked after its grace period")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if time.Now().Before(revokesAt) {
			t.Error("the old key was revoked before its grace period ended")
		}

		// The worker revokes the key at Wacht first and records the
		// outcome after, so the record may lag the revocation a little.
		var list *connect.Response[authsvcv1.ListRotationsResponse]
		for {
			list, err = authsvcv1connect.NewAdminServiceClient(http.DefaultClient, second.URL).ListRotations(ctx,
				connect.NewRequest(&authsvcv1.ListRotationsRequest{AppSlug: app, PageSize: 1}))
			if err != nil {
				t.Fatalf("ListRotations: %v", err)
			}
			if len(list.Msg.GetRotations()) != 1 || list.Msg.GetNextPageToken() == "" {
				t.Fatalf("ListRotations page of 1 = %v", list.Msg)
			}
			if list.Msg.GetRotations()[0].GetOutcome() != authsvcv1.RotationOutcome_ROTATION_OUTCOME_PENDING_REVOCATION || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		newest := list.Msg.GetRotations()[0]
		if newest.GetPreviousKeyId() != old.ID || newest.GetOutcome() != authsvcv1.RotationOutcome_ROTATION_OUTCOME_ROTATED ||
			newest.GetPreviousKeyRevokedAt() == nil || newest.GetCaller() == "" {
			t.Errorf("newest audit record = %v", newest)
		}
		next, err := authsvcv1connect.NewAdminServiceClient(http.DefaultClient, second.URL).ListRotations(ctx,
			connect.NewRequest(&authsvcv1.ListRotationsRequest{AppSlug: app, PageToken: list.Msg.GetNextPageToken()}))
		if err != nil || len(next.Msg.GetRotations()) != 1 || next.Msg.GetRotations()[0].GetPreviousKeyId() != w.demo.Keys[0].Key.ID {
			t.Errorf("second page = %v, %v", next.Msg, err)
		}
		for _, s := range secrets {
			if strings.Contains(second.Stderr(), s) {
				t.Error("a new key's secret reached the logs")
			}
		}
	})

	for _, s := range secrets {
		if strings.Contains(first.Stderr(), s) {
			t.Error("a new key's secret reached the logs")
		}
	}

	t.Run("bad_requests", func(t *testing.T) {
		c := authsvcv1connect.NewAdminServiceClient(http.DefaultClient, w.serve(t, dbURL, nil).URL)
		tests := []struct {
			name string
			req  *authsvcv1.RotateAPIKeyRequest
			want connect.Code
		}{
			{"unknown_key", &authsvcv1.RotateAPIKeyRequest{AppSlug: app, KeyId: "123"}, connect.CodeNotFound},
			{"bad_key_id", &authsvcv1.RotateAPIKeyRequest{AppSlug: app, KeyId: "abc"}, connect.CodeInvalidArgument},
			{"grace_too_long", &authsvcv1.RotateAPIKeyRequest{AppSlug: app, KeyId: w.demo.Keys[0].Key.ID, GracePeriod: durationpb.New(31 * 24 * time.Hour)}, connect.CodeInvalidArgument},
			{"negative_grace", &authsvcv1.RotateAPIKeyRequest{AppSlug: app, KeyId: w.demo.Keys[0].Key.ID, GracePeriod: durationpb.New(-time.Second)}, connect.CodeInvalidArgument},
		}
		for _, tt := range tests {
			if _, err := c.RotateAPIKey(ctx, connect.NewRequest(tt.req)); connect.CodeOf(err) != tt.want {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
	})
}
