package wachtclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// observed is one call of [wachtclient.Observer.ObserveWachtRequest].
type observed struct {
	Route  string
	Status int
	Err    bool
}

// observations is a [wachtclient.Observer] that collects its calls.
type observations struct {
	mu   sync.Mutex
	list []observed
	// unanswered holds the errors of the attempts with status 0.
	unanswered []error
}

func (o *observations) ObserveWachtRequest(route string, status int, took time.Duration, err error) {
	if took < 0 {
		panic("negative duration")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, observed{Route: route, Status: status, Err: err != nil})
	if status == 0 {
		o.unanswered = append(o.unanswered, err)
	}
}

// take returns the calls so far and forgets them.
func (o *observations) take() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.list
	o.list = nil
	return l
}

// routeTemplate is what every route must look like: a method, then a path
// whose segments are words or named variables, never an id.
var routeTemplate = regexp.MustCompile(`^(GET|POST) (/[a-z.][a-z0-9.-]*|/\{[a-z_]+\})+$`)

func TestObserverRoutes(t *testing.T) {
	t.Parallel()
	obs := &observations{}
	c := newContract(t, func(cfg *wachtclient.Config) { cfg.Observer = obs })
	user, signIn, key, other := c.demo.Users[0], c.demo.SignIns[0], c.demo.Keys[0], c.demo.Keys[1]
	if signIn.UserID != user.ID {
		t.Fatalf("demo sign-in %s belongs to %s, not to %s", signIn.ID, signIn.UserID, user.ID)
	}
	for _, tc := range []struct {
		name  string
		call  func(context.Context, *wachtclient.Client) error
		route string
		want  []observed
	}{
		{
			name:  "health",
			call:  func(ctx context.Context, c *wachtclient.Client) error { return c.Health(ctx) },
			route: wachtfake.RouteHealth, want: []observed{{Route: "GET /health", Status: 200}},
		},
		{
			name:  "jwks",
			call:  func(ctx context.Context, c *wachtclient.Client) error { _, err := c.FetchJWKS(ctx); return err },
			route: wachtfake.RouteJWKS, want: []observed{{Route: "GET /.well-known/jwks.json", Status: 200}},
		},
		{
			name: "list_users",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.ListUsers(ctx, wachtclient.ListUsersParams{Limit: 2, Search: "ada"})
				return err
			},
			route: wachtfake.RouteListUsers, want: []observed{{Route: "GET /users", Status: 200}},
		},
		{
			name:  "get_user",
			call:  func(ctx context.Context, c *wachtclient.Client) error { _, err := c.GetUser(ctx, user.ID); return err },
			route: wachtfake.RouteUserDetails, want: []observed{{Route: "GET /users/{user_id}/details", Status: 200}},
		},
		{
			name: "get_unknown_user",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				if _, err := c.GetUser(ctx, "1234567890"); !errors.Is(err, wachtclient.ErrNotFound) {
					return errors.Join(errors.New("want ErrNotFound"), err)
				}
				return nil
			},
			route: wachtfake.RouteUserDetails, want: []observed{{Route: "GET /users/{user_id}/details", Status: 404, Err: true}},
		},
		{
			name: "list_sessions",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.ListUserSessions(ctx, user.ID, true)
				return err
			},
			route: wachtfake.RouteListSessions, want: []observed{{Route: "GET /users/{user_id}/sessions", Status: 200}},
		},
		{
			name: "revoke_sign_in",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				return c.RevokeSignIn(ctx, user.ID, signIn.ID)
			},
			route: wachtfake.RouteRevokeSession,
			want:  []observed{{Route: "POST /users/{user_id}/sessions/{signin_id}/revoke", Status: 200}},
		},
		{
			name: "revoke_all",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.RevokeAllSessions(ctx, user.ID)
				return err
			},
			route: wachtfake.RouteRevokeAll, want: []observed{{Route: "POST /users/{user_id}/sessions/revoke-all", Status: 200}},
		},
		{
			name: "list_api_keys",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.ListAPIKeys(ctx, key.Key.AppSlug, false)
				return err
			},
			route: wachtfake.RouteListAPIKeys, want: []observed{{Route: "GET /api-auth/apps/{app_slug}/keys", Status: 200}},
		},
		{
			name: "check_authz",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.CheckAuthz(ctx, wachtclient.AuthzCheckRequest{
					Principal: wachtclient.Principal{Type: wachtclient.PrincipalAPIKey, Value: key.Secret},
					Resource:  "/orders/1234567", Method: http.MethodGet,
				})
				return err
			},
			route: wachtfake.RouteAuthzCheck, want: []observed{{Route: "POST /v1/authz/check", Status: 200}},
		},
		{
			name: "create_api_key",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.CreateAPIKey(ctx, key.Key.AppSlug, wachtclient.CreateAPIKeyRequest{Name: "observer-test"})
				return err
			},
			route: wachtfake.RouteCreateAPIKey, want: []observed{{Route: "POST /api-auth/apps/{app_slug}/keys", Status: 200}},
		},
		{
			name: "rotate_api_key",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				_, err := c.RotateAPIKey(ctx, key.Key.AppSlug, key.Key.ID)
				return err
			},
			route: wachtfake.RouteRotateAPIKey,
			want:  []observed{{Route: "POST /api-auth/apps/{app_slug}/keys/{key_id}/rotate", Status: 200}},
		},
		{
			name: "revoke_api_key",
			call: func(ctx context.Context, c *wachtclient.Client) error {
				return c.RevokeAPIKey(ctx, other.Key.AppSlug, other.Key.ID, "test")
			},
			route: wachtfake.RouteRevokeAPIKey,
			want:  []observed{{Route: "POST /api-auth/apps/{app_slug}/keys/{key_id}/revoke", Status: 200}},
		},
	} {
		// Sequential: each case reads the observations of its own calls.
		before := c.fake.Calls(tc.route)
		if err := tc.call(t.Context(), c.client); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		got := obs.take()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: observations (-want +got):\n%s", tc.name, diff)
		}
		if n := c.fake.Calls(tc.route) - before; n != len(tc.want) {
			t.Errorf("%s: the emulator counted %d calls of %q, the observer %d", tc.name, n, tc.route, len(tc.want))
		}
		for _, o := range got {
			if !routeTemplate.MatchString(o.Route) {
				t.Errorf("%s: route %q is not a template", tc.name, o.Route)
			}
			for _, concrete := range []string{user.ID, signIn.ID, key.Key.ID, key.Key.AppSlug} {
				if strings.Contains(o.Route, concrete) {
					t.Errorf("%s: route %q holds %q", tc.name, o.Route, concrete)
				}
			}
		}
	}
}

func TestObserverRetriesAndFailures(t *testing.T) {
	t.Parallel()
	t.Run("retry", func(t *testing.T) {
		t.Parallel()
		obs := &observations{}
		c := newContract(t, func(cfg *wachtclient.Config) { cfg.Observer = obs })
		c.fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Status: 503, Route: wachtfake.RouteUserDetails, Times: 1})
		if _, err := c.client.GetUser(t.Context(), c.demo.Users[1].ID); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		want := []observed{
			{Route: "GET /users/{user_id}/details", Status: 503, Err: true},
			{Route: "GET /users/{user_id}/details", Status: 200},
		}
		if diff := cmp.Diff(want, obs.take()); diff != "" {
			t.Errorf("observations (-want +got):\n%s", diff)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		obs := &observations{}
		client, err := wachtclient.New(wachtclient.Config{
			APIURL: srv.URL, APIKey: "sk_test", MaxRetries: -1, Observer: obs,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.GetUser(t.Context(), "24380000000000001"); !errors.Is(err, wachtclient.ErrUnavailable) {
			t.Errorf("GetUser = %v, want ErrUnavailable", err)
		}
		want := []observed{{Route: "GET /users/{user_id}/details", Status: 0, Err: true}}
		if diff := cmp.Diff(want, obs.take()); diff != "" {
			t.Errorf("observations (-want +got):\n%s", diff)
		}
	})
	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		obs := &observations{}
		c := newContract(t, func(cfg *wachtclient.Config) {
			cfg.Observer = obs
			cfg.RequestsPerMinute, cfg.Burst = 1, 1
		})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		for range 2 {
			_, _ = c.client.GetUser(ctx, c.demo.Users[0].ID)
		}
		obs.mu.Lock()
		defer obs.mu.Unlock()
		errs := obs.unanswered
		if len(errs) != 1 || !errors.Is(errs[0], wachtclient.ErrRateLimited) {
			t.Errorf("status-0 observations = %v, want one wrapping ErrRateLimited", errs)
		}
	})
}

// routeRecorder records the route each request's context carries.
type routeRecorder struct {
	mu     sync.Mutex
	routes []string
	next   http.RoundTripper
}

func (r *routeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.routes = append(r.routes, wachtclient.RouteFromContext(req.Context()))
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func TestRouteFromContext(t *testing.T) {
	t.Parallel()
	rec := &routeRecorder{next: http.DefaultTransport}
	c := newContract(t, func(cfg *wachtclient.Config) { cfg.HTTPClient = &http.Client{Transport: rec} })
	if _, err := c.client.GetUser(t.Context(), c.demo.Users[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.ListUserSessions(t.Context(), c.demo.Users[0].ID, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /users/{user_id}/details", "GET /users/{user_id}/sessions"}
	if diff := cmp.Diff(want, rec.routes); diff != "" {
		t.Errorf("routes seen by the transport (-want +got):\n%s", diff)
	}
	if got := wachtclient.RouteFromContext(t.Context()); got != "" {
		t.Errorf("RouteFromContext(unrelated context) = %q, want empty", got)
	}
}
