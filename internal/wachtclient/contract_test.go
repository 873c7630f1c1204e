package wachtclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// The contract tests run the client against the emulator: both are
// written from Wacht's server code independently, so each holds the other
// to it.

type contract struct {
	fake   *wachtfake.Server
	client *wachtclient.Client
	demo   wachtfake.Demo
}

func newContract(t *testing.T, mod func(*wachtclient.Config)) *contract {
	t.Helper()
	fake, err := wachtfake.New(wachtfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	fake.SetIssuer(srv.URL)
	demo, err := fake.SeedDemo()
	if err != nil {
		t.Fatal(err)
	}
	cfg := wachtclient.Config{
		APIURL: srv.URL, GatewayURL: srv.URL, FrontendURL: srv.URL, APIKey: fake.APIKey(),
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	client, err := wachtclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{fake: fake, client: client, demo: demo}
}

func TestContractUsers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	want := c.demo.Users[0]

	got, err := c.client.GetUser(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if string(got.ID) != want.ID || got.FirstName != want.FirstName || got.Username == nil || *got.Username != want.Username {
		t.Errorf("GetUser = %+v, want %+v", got, want)
	}
	if len(got.EmailAddresses) != len(want.Emails) || len(got.SocialConnections) != len(want.SocialConnections) {
		t.Errorf("GetUser emails %d, social %d; emulator has %d, %d",
			len(got.EmailAddresses), len(got.SocialConnections), len(want.Emails), len(want.SocialConnections))
	}
	var meta map[string]any
	if err := json.Unmarshal(got.PublicMetadata, &meta); err != nil || meta["plan"] != want.PublicMetadata["plan"] {
		t.Errorf("public metadata = %s, want %v", got.PublicMetadata, want.PublicMetadata)
	}

	if _, err := c.client.GetUser(ctx, "42"); !errors.Is(err, wachtclient.ErrNotFound) {
		t.Errorf("GetUser(unknown) = %v, want ErrNotFound", err)
	}

	var ids []string
	params := wachtclient.ListUsersParams{Limit: 2, SortKey: wachtclient.SortKeyCreatedAt, SortOrder: wachtclient.SortOrderAsc}
	for range 5 {
		page, err := c.client.ListUsers(ctx, params)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		for _, u := range page.Data {
			ids = append(ids, string(u.ID))
		}
		if !page.HasMore {
			break
		}
		params.Offset += params.Limit
	}
	var wantIDs []string
	for _, u := range c.demo.Users {
		wantIDs = append(wantIDs, u.ID)
	}
	slices.Sort(ids)
	slices.Sort(wantIDs)
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("ListUsers pages (-want +got):\n%s", diff)
	}
}

func TestContractSessions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	user := c.demo.Users[0].ID

	active, err := c.client.ListUserSessions(ctx, user, false)
	if err != nil {
		t.Fatalf("ListUserSessions: %v", err)
	}
	all, err := c.client.ListUserSessions(ctx, user, true)
	if err != nil {
		t.Fatalf("ListUserSessions(include_expired): %v", err)
	}
	if len(active) == 0 || len(all) != len(active)+1 {
		t.Fatalf("active %d, with expired %d: want one expired sign-in more", len(active), len(all))
	}
	for i := 1; i < len(active); i++ {
		if active[i].LastActiveAt.After(active[i-1].LastActiveAt) {
			t.Errorf("sign-ins are not ordered by last_active_at desc")
		}
	}

	if err := c.client.RevokeSignIn(ctx, user, string(active[0].ID)); err != nil {
		t.Fatalf("RevokeSignIn: %v", err)
	}
	if err := c.client.RevokeSignIn(ctx, user, string(active[0].ID)); !errors.Is(err, wachtclient.ErrNotFound) {
		t.Errorf("RevokeSignIn twice = %v, want ErrNotFound", err)
	}
	after, err := c.client.ListUserSessions(ctx, user, false)
	if err != nil || len(after) != len(active)-1 {
		t.Fatalf("after revoking one: %d sign-ins, %v; want %d", len(after), err, len(active)-1)
	}
	n, err := c.client.RevokeAllSessions(ctx, user)
	if err != nil || n < int64(len(after)) {
		t.Errorf("RevokeAllSessions = %d, %v; want at least %d", n, err, len(after))
	}
}

func TestContractAPIKeysAndGateway(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	app := c.demo.AppSlug
	old := c.demo.Keys[0]

	keys, err := c.client.ListAPIKeys(ctx, app, false)
	if err != nil || len(keys) != len(c.demo.Keys) {
		t.Fatalf("ListAPIKeys = %d keys, %v; want %d", len(keys), err, len(c.demo.Keys))
	}

	allowed, err := c.client.CheckAuthz(ctx, wachtclient.AuthzCheckRequest{
		Principal: wachtclient.Principal{Type: wachtclient.PrincipalAPIKey, Value: old.Secret},
		Resource:  "/orders", Method: "GET",
	})
	if err != nil || !allowed.Allowed || string(allowed.Identity.KeyID) != old.Key.ID {
		t.Fatalf("CheckAuthz(valid) = %+v, %v", allowed, err)
	}
	denied, err := c.client.CheckAuthz(ctx, wachtclient.AuthzCheckRequest{
		Principal: wachtclient.Principal{Type: wachtclient.PrincipalAPIKey, Value: old.Secret},
		Resource:  "/orders", Method: "GET", RequiredPermissions: []string{"no:such:permission"},
	})
	if err != nil || denied.Allowed || denied.Reason != wachtclient.ReasonPermissionDenied {
		t.Errorf("CheckAuthz(missing permission) = %+v, %v", denied, err)
	}

	created, err := c.client.CreateAPIKey(ctx, app, wachtclient.CreateAPIKeyRequest{
		Name: "contract", Permissions: []string{"orders:read"}, Metadata: json.RawMessage(`{"by":"contract"}`),
	})
	if err != nil || created.Secret == "" || created.KeySuffix != created.Secret[len(created.Secret)-8:] {
		t.Fatalf("CreateAPIKey = %v, %v", created, err)
	}
	rotated, err := c.client.RotateAPIKey(ctx, app, string(created.ID))
	if err != nil || rotated.ID == created.ID || rotated.Name != "contract" || rotated.Secret == created.Secret {
		t.Fatalf("RotateAPIKey = %v, %v", rotated, err)
	}
	if err := c.client.RevokeAPIKey(ctx, app, string(rotated.ID), "contract test"); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if err := c.client.RevokeAPIKey(ctx, app, string(rotated.ID), ""); !errors.Is(err, wachtclient.ErrNotFound) {
		t.Errorf("RevokeAPIKey twice = %v, want ErrNotFound", err)
	}
	_, err = c.client.CheckAuthz(ctx, wachtclient.AuthzCheckRequest{
		Principal: wachtclient.Principal{Type: wachtclient.PrincipalAPIKey, Value: rotated.Secret},
		Resource:  "/orders", Method: "GET",
	})
	if !errors.Is(err, wachtclient.ErrUnauthorized) {
		t.Errorf("CheckAuthz(revoked key) = %v, want ErrUnauthorized", err)
	}
	all, err := c.client.ListAPIKeys(ctx, app, true)
	if err != nil || len(all) != len(c.demo.Keys)+2 {
		t.Errorf("ListAPIKeys(include_inactive) = %d keys, %v; want %d", len(all), err, len(c.demo.Keys)+2)
	}
}

func TestContractKeySetAndHealth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	raw, err := c.client.FetchJWKS(ctx)
	if err != nil {
		t.Fatalf("FetchJWKS: %v", err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("key set %s: %v", raw, err)
	}
	if k := set.Keys[0]; k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["kid"] != c.fake.KeyID() {
		t.Errorf("key = %v", k)
	}
	if err := c.client.Health(ctx); err != nil {
		t.Errorf("Health: %v", err)
	}

	wrong, err := wachtclient.New(wachtclient.Config{APIURL: c.fake.Issuer(), APIKey: "sk_wrongwrongwrongwrongwrongwrongwrongwrongwrongw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.GetUser(ctx, c.demo.Users[0].ID); !errors.Is(err, wachtclient.ErrUnauthorized) {
		t.Errorf("GetUser with a wrong key = %v, want ErrUnauthorized", err)
	}
}

func TestContractFaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tests := []struct {
		name      string
		fault     wachtfake.Fault
		call      func(*contract) error
		route     string
		wantCalls int
		wantErr   error
	}{
		{
			name:  "read_retried_after_429s",
			fault: wachtfake.Fault{Mode: wachtfake.Fault429, Route: wachtfake.RouteUserDetails, Times: 2},
			call: func(c *contract) error {
				_, err := c.client.GetUser(ctx, c.demo.Users[0].ID)
				return err
			},
			route: wachtfake.RouteUserDetails, wantCalls: 3,
		},
		{
			name:  "read_retried_after_503",
			fault: wachtfake.Fault{Mode: wachtfake.Fault5xx, Status: 503, Route: wachtfake.RouteListSessions, Times: 1},
			call: func(c *contract) error {
				_, err := c.client.ListUserSessions(ctx, c.demo.Users[0].ID, false)
				return err
			},
			route: wachtfake.RouteListSessions, wantCalls: 2,
		},
		{
			name:  "read_retried_after_a_dropped_connection",
			fault: wachtfake.Fault{Mode: wachtfake.FaultDown, Route: wachtfake.RouteUserDetails, Times: 1},
			call: func(c *contract) error {
				_, err := c.client.GetUser(ctx, c.demo.Users[0].ID)
				return err
			},
			route: wachtfake.RouteUserDetails, wantCalls: 2,
		},
		{
			name:  "read_gives_up_after_max_retries",
			fault: wachtfake.Fault{Mode: wachtfake.Fault5xx, Status: 502, Route: wachtfake.RouteUserDetails},
			call: func(c *contract) error {
				_, err := c.client.GetUser(ctx, c.demo.Users[0].ID)
				return err
			},
			route: wachtfake.RouteUserDetails, wantCalls: 1 + wachtclient.DefaultMaxRetries, wantErr: wachtclient.ErrUnavailable,
		},
		{
			name:  "rotate_never_retried_and_outcome_unknown",
			fault: wachtfake.Fault{Mode: wachtfake.Fault5xx, Status: 503, Route: wachtfake.RouteRotateAPIKey, Times: 1},
			call: func(c *contract) error {
				_, err := c.client.RotateAPIKey(ctx, c.demo.AppSlug, c.demo.Keys[0].Key.ID)
				return err
			},
			route: wachtfake.RouteRotateAPIKey, wantCalls: 1, wantErr: wachtclient.ErrOutcomeUnknown,
		},
		{
			name:  "revoke_never_retried_after_429",
			fault: wachtfake.Fault{Mode: wachtfake.Fault429, Route: wachtfake.RouteRevokeSession, Times: 1},
			call: func(c *contract) error {
				signIns, _ := c.fake.SignIns(c.demo.Users[0].ID)
				return c.client.RevokeSignIn(ctx, c.demo.Users[0].ID, signIns[0].ID)
			},
			route: wachtfake.RouteRevokeSession, wantCalls: 1, wantErr: wachtclient.ErrRateLimited,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newContract(t, nil)
			c.fake.SetFault(tt.fault)
			err := tt.call(c)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("call = %v, want %v", err, tt.wantErr)
			}
			if got := c.fake.Calls(tt.route); got != tt.wantCalls {
				t.Errorf("%s called %d times, want %d", tt.route, got, tt.wantCalls)
			}
		})
	}
}

func TestContractBudget(t *testing.T) {
	t.Parallel()
	// A budget of 60 a minute with a burst of 5: the client may send the
	// burst at once and then 55 a minute.
	c := newContract(t, func(cfg *wachtclient.Config) {
		cfg.RequestsPerMinute = 60
		cfg.Burst = 5
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	var refused int
	for range 20 {
		if _, err := c.client.GetUser(ctx, c.demo.Users[0].ID); errors.Is(err, wachtclient.ErrRateLimited) {
			refused++
		}
	}
	elapsed := time.Since(start)
	calls := c.fake.Calls(wachtfake.RouteUserDetails)
	most := 5 + int(math.Ceil(elapsed.Seconds()*55/60))
	if calls < 5 || calls > most {
		t.Errorf("Wacht saw %d calls in %v, want the burst of 5 and at most %d", calls, elapsed, most)
	}
	if refused == 0 {
		t.Error("no call was refused for lack of budget")
	}
}
