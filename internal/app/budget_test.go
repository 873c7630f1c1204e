package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// callerDeadline is the deadline of the callers in these tests: an
// answer that depends on waiting for budget would come close to it.
const callerDeadline = 2 * time.Second

// addUsers adds n users to the emulator and returns their ids.
func addUsers(t *testing.T, fake *wachtfake.Server, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		u, err := fake.AddUser(wachtfake.User{FirstName: "Budget", LastName: "Test",
			Emails: []wachtfake.Email{{Email: "budget@example.com", Primary: true, Verified: true}}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID
	}
	return ids
}

// getUser calls GetUser with the callers' deadline and returns the
// response, the error's code (0 for none) and how long the call took.
func getUser(t *testing.T, client interface {
	GetUser(context.Context, *connect.Request[authsvcv1.GetUserRequest]) (*connect.Response[authsvcv1.GetUserResponse], error)
}, id string, deadline time.Duration) (*connect.Response[authsvcv1.GetUserResponse], connect.Code, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	start := time.Now()
	res, err := client.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: id}))
	took := time.Since(start)
	var code connect.Code
	if err != nil {
		code = connect.CodeOf(err)
		if ce := new(connect.Error); !errors.As(err, &ce) {
			t.Fatalf("GetUser(%s): %v is no Connect error", id, err)
		}
	}
	return res, code, took
}

func TestForegroundOverBudgetIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	const budget, ttl = 4, 300 * time.Millisecond
	h := apptest.New(t, apptest.Options{Postgres: true, Config: func(c *app.Config) {
		c.WachtRequestsPerMin = budget
		c.UserTTL = ttl
	}})
	client := h.AuthClient()
	ids := addUsers(t, h.Fake, budget+1)
	for _, id := range ids[:budget] {
		if _, code, _ := getUser(t, client, id, callerDeadline); code != 0 {
			t.Fatalf("GetUser within the budget: %v", code)
		}
	}
	calls := h.Fake.Calls(wachtfake.RouteUserDetails)

	// Not cached at all: refused at once, never left to the deadline.
	_, code, took := getUser(t, client, ids[budget], callerDeadline)
	if code != connect.CodeResourceExhausted {
		t.Errorf("GetUser of an uncached user over the budget: code %v, want %v", code, connect.CodeResourceExhausted)
	}
	if took > callerDeadline/2 {
		t.Errorf("GetUser over the budget answered after %v of its %v deadline, want at once", took, callerDeadline)
	}

	// Cached but past its TTL: the value at hand is served, marked stale.
	time.Sleep(ttl)
	res, code, took := getUser(t, client, ids[0], callerDeadline)
	if code != 0 {
		t.Fatalf("GetUser of a user cached before the budget ran out: code %v, want its stale value", code)
	}
	if res.Header().Get("Authsvc-Stale") == "" || res.Msg.GetUser().GetId() != ids[0] {
		t.Errorf("GetUser past the TTL over the budget: stale header %q, user %q; want a stale %s",
			res.Header().Get("Authsvc-Stale"), res.Msg.GetUser().GetId(), ids[0])
	}
	if took > callerDeadline/2 {
		t.Errorf("stale GetUser answered after %v of its %v deadline, want at once", took, callerDeadline)
	}
	if n := h.Fake.Calls(wachtfake.RouteUserDetails); n != calls {
		t.Errorf("Wacht saw %d user calls over the budget, want none", n-calls)
	}
}

func TestNoLoadIsSentThatCannotFinishInTime(t *testing.T) {
	t.Parallel()
	const latency = 400 * time.Millisecond
	h := apptest.New(t, apptest.Options{})
	h.Fake.SetBackendLatency(latency)
	client := h.AuthClient()
	ids := addUsers(t, h.Fake, 2)
	// One load teaches the budget how long Wacht takes.
	if _, code, _ := getUser(t, client, ids[0], 5*time.Second); code != 0 {
		t.Fatalf("GetUser with time enough: %v", code)
	}
	calls := h.Fake.Calls(wachtfake.RouteUserDetails)

	// A caller with less time left than Wacht takes is refused before
	// anything is sent, rather than waiting out its deadline.
	_, code, _ := getUser(t, client, ids[1], latency*3/4)
	if code != connect.CodeResourceExhausted {
		t.Errorf("GetUser with %v left for a %v call: code %v, want %v", latency*3/4, latency, code, connect.CodeResourceExhausted)
	}
	if n := h.Fake.Calls(wachtfake.RouteUserDetails); n != calls {
		t.Errorf("Wacht saw %d calls that could not finish in time, want none", n-calls)
	}
}

func TestBudgetHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	const budget, replicas, perReplica = 30, 3, 25
	cfg := func(c *app.Config) { c.WachtRequestsPerMin = budget }
	first := apptest.New(t, apptest.Options{Postgres: true, Config: cfg})
	// The emulator enforces the same budget over an exact sliding minute:
	// one request over it is answered 429.
	first.Fake.SetRequestsPerMinute(budget)
	harnesses := []*apptest.Harness{first}
	for range replicas - 1 {
		harnesses = append(harnesses, apptest.New(t, apptest.Options{Replicate: first, Config: cfg}))
	}
	ids := addUsers(t, first.Fake, replicas*perReplica)

	var (
		mu    sync.Mutex
		codes = map[connect.Code]int{}
		wg    sync.WaitGroup
	)
	for r, h := range harnesses {
		client := h.AuthClient()
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perReplica; i += 4 {
					_, code, _ := getUser(t, client, ids[r*perReplica+i], callerDeadline)
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()

	calls := first.Fake.Calls(wachtfake.RouteUserDetails)
	t.Logf("answers by code: %v; Wacht saw %d calls", codes, calls)
	// Every call fell within one minute: all of them count in one window.
	if calls > budget {
		t.Errorf("%d replicas sent %d calls within a minute, over the budget of %d", replicas, calls, budget)
	}
	if n := first.Fake.RateLimited(); n != 0 {
		t.Errorf("Wacht answered %d calls 429", n)
	}
	if codes[0] != calls {
		t.Errorf("%d answers served, %d calls sent: every call sent should have served its caller", codes[0], calls)
	}
	if codes[0] < budget/2 {
		t.Errorf("only %d of the budget of %d spent on answers", codes[0], budget)
	}
	for code, n := range codes {
		if code != 0 && code != connect.CodeResourceExhausted {
			t.Errorf("%d answers with code %v, want only OK and %v", n, code, connect.CodeResourceExhausted)
		}
	}
}
