package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// bearer sends token as the caller's credential.
func bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}))
}

func TestPerCallerWachtLimits(t *testing.T) {
	t.Parallel()
	const perMinute = 40
	dir := t.TempDir()
	file := filepath.Join(dir, "callers.json")
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	body := fmt.Sprintf(`{"callers": [
		{"name": "reports", "token_sha256": %q, "roles": ["reader"], "limits": {"wacht_calls_per_minute": %d, "concurrent_loads": 2}},
		{"name": "orders", "token_sha256": %q, "roles": ["reader"]}
	]}`, hash("reports-token"), perMinute, hash("orders-token"))
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	h := apptest.New(t, apptest.Options{SeedDemo: true, Config: func(c *app.Config) { c.CallersFile = file }})
	reports := h.AuthClient(bearer("reports-token"))
	orders := h.AuthClient(bearer("orders-token"))
	ctx := t.Context()

	// reports warms one user into the cache, then hammers BatchGetUsers
	// with random ids until it is refused.
	known := h.Demo.Users[0].ID
	if _, err := reports.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: known})); err != nil {
		t.Fatalf("reports' first GetUser: %v", err)
	}
	var refusal error
	batches := 0
	for batches < 10 && refusal == nil {
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = fmt.Sprint(rand.Int64N(1<<62) + 1_000_000)
		}
		_, refusal = reports.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: ids}))
		batches++
	}
	if connect.CodeOf(refusal) != connect.CodeResourceExhausted {
		t.Fatalf("after %d batches of 20 random ids, reports got %v; want ResourceExhausted", batches, refusal)
	}
	if !strings.Contains(refusal.Error(), "limit") {
		t.Errorf("refusal %q does not say which limit", refusal)
	}
	calls := h.Fake.Calls(wachtfake.RouteUserDetails)
	// The rate refills as the test runs: a call or two more may pass.
	if calls > perMinute+2 {
		t.Errorf("Wacht got %d user reads; reports may cause %d a minute", calls, perMinute)
	}

	// Cached data is still served to reports.
	if _, err := reports.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: known})); err != nil {
		t.Errorf("reports' GetUser of a cached user, over its limit: %v", err)
	}
	if _, err := reports.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: []string{known}})); err != nil {
		t.Errorf("reports' BatchGetUsers of a cached user, over its limit: %v", err)
	}
	// But a miss is refused.
	_, err := reports.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: h.Demo.Users[1].ID}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("reports' GetUser of an uncached user, over its limit: %v, want ResourceExhausted", err)
	}

	// orders' misses still load.
	for _, u := range h.Demo.Users[1:] {
		res, err := orders.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: u.ID}))
		if err != nil {
			t.Fatalf("orders' GetUser(%s) while reports is over its limit: %v", u.ID, err)
		}
		if res.Msg.GetUser().GetId() != u.ID {
			t.Errorf("orders' GetUser(%s) gave user %q", u.ID, res.Msg.GetUser().GetId())
		}
	}
	res, err := orders.BatchGetUsers(ctx, connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: []string{"987654321987", known}}))
	if err != nil {
		t.Fatalf("orders' BatchGetUsers with a miss: %v", err)
	}
	if got := res.Msg.GetNotFoundIds(); len(got) != 1 || got[0] != "987654321987" {
		t.Errorf("orders' BatchGetUsers not_found_ids = %v", got)
	}

	admitted, refused := 0.0, 0.0
	for _, c := range []struct {
		caller, outcome string
		into            *float64
	}{
		{"reports", "admitted", &admitted},
		{"reports", "refused_rate", &refused},
		{"reports", "refused_concurrency", &refused},
	} {
		*c.into += counterValue(t, h, c.caller, c.outcome)
	}
	if admitted < perMinute || admitted > perMinute+2 || refused < 1 {
		t.Errorf("metrics for reports: admitted %v (want %d), refused %v (want >= 1)", admitted, perMinute, refused)
	}
	if got := counterValue(t, h, "orders", "admitted"); got < float64(len(h.Demo.Users)) {
		t.Errorf("metrics for orders: admitted %v, want >= %d", got, len(h.Demo.Users))
	}
}

// counterValue reads authsvc_caller_wacht_loads_total{caller, outcome}.
func counterValue(t *testing.T, h *apptest.Harness, caller, outcome string) float64 {
	t.Helper()
	mfs, err := h.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authsvc_caller_wacht_loads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["caller"] == caller && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
