package service_test

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// refreshes records the outcomes of a cache's background refreshes and
// the budget's refusals by class.
type refreshes struct {
	mu       sync.Mutex
	outcomes map[cache.RefreshOutcome]int
	refused  map[budget.Class]int
}

func (r *refreshes) ObserveRead(string, cache.Source, cache.Outcome) {}
func (r *refreshes) ObserveLoad(string, time.Duration, error)        {}
func (r *refreshes) ObservePostgresError(string, string, error)      {}
func (r *refreshes) ObserveServed(string, time.Duration)             {}
func (r *refreshes) ObserveRefreshQueue(string, int)                 {}
func (r *refreshes) ObserveRefresh(_ string, o cache.RefreshOutcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[o]++
}
func (r *refreshes) ObserveBudgetAdmitted(budget.Class, time.Duration) {}
func (r *refreshes) ObserveBudgetLease(int, int, error)                {}
func (r *refreshes) ObserveBudgetRefused(c budget.Class, _ string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused[c]++
}

func (r *refreshes) counts() (map[cache.RefreshOutcome]int, map[budget.Class]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, ref := map[cache.RefreshOutcome]int{}, map[budget.Class]int{}
	for k, v := range r.outcomes {
		out[k] = v
	}
	for k, v := range r.refused {
		ref[k] = v
	}
	return out, ref
}

func TestRefreshRefusedByTheBudgetKeepsTheEntryServed(t *testing.T) {
	t.Parallel()
	const ttl = 100 * time.Millisecond
	fake, err := wachtfake.New(wachtfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	rec := &refreshes{outcomes: map[cache.RefreshOutcome]int{}, refused: map[budget.Class]int{}}
	b, err := budget.New(budget.Config{RequestsPerMinute: 2, Pool: pgtest.NewPool(t), Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	client, err := wachtclient.New(wachtclient.Config{APIURL: srv.URL, APIKey: fake.APIKey(), Limiter: b})
	if err != nil {
		t.Fatal(err)
	}
	users, err := cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", Load: service.LoadUser(client), TTL: ttl, MaxAge: time.Hour,
		RefreshRetry: ttl, IsTransient: wachtclient.IsTransient, Observer: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(users.Close)
	u, err := fake.AddUser(wachtfake.User{FirstName: "Refresh", LastName: "Refused",
		Emails: []wachtfake.Email{{Email: "refresh@example.com", Primary: true, Verified: true}}})
	if err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	if _, err := users.Get(ctx, u.ID); err != nil {
		t.Fatalf("first Get: %v", err)
	}
	// Spend the rest of the minute's budget elsewhere.
	done, err := b.Admit(ctx)
	if err != nil {
		t.Fatalf("Admit the budget's last request: %v", err)
	}
	done(200, time.Millisecond)
	calls := fake.Calls(wachtfake.RouteUserDetails)

	time.Sleep(ttl)
	// Past its TTL the entry is served and queued for a refresh, which
	// the budget refuses; the entry is still served, and not as stale.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := users.Get(ctx, u.ID)
		if err != nil || r.Value.GetId() != u.ID || r.Stale {
			t.Fatalf("Get while its refresh is refused = (%s, stale %t), %v; want the cached user", r.Value.GetId(), r.Stale, err)
		}
		outcomes, refused := rec.counts()
		if outcomes[cache.RefreshRefused] > 0 {
			if refused[budget.Refresh] == 0 || refused[budget.Foreground] != 0 {
				t.Errorf("budget refusals by class = %v, want refreshes only", refused)
			}
			if outcomes[cache.RefreshFailed] != 0 {
				t.Errorf("refresh outcomes = %v: a refusal is no failure", outcomes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh refused within 5 s; outcomes %v", outcomes)
		}
		time.Sleep(ttl / 2)
	}
	if n := fake.Calls(wachtfake.RouteUserDetails); n != calls {
		t.Errorf("Wacht saw %d refreshes the budget refused", n-calls)
	}
}
