package rotation_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/postgres"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// testStart is where every test clock starts.
var testStart = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// Apps seeded in every emulator.
const (
	appOrders  = "orders-api"
	appBilling = "aa_24239923154394947"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// outcomes is a [rotation.Observer] that records what the worker reports.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) ObserveRevocation(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, s)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.got)
}

// env is a Wacht emulator served over HTTP, a real client for it, a test
// clock and captured logs.
type env struct {
	fake     *wachtfake.Server
	url      string
	client   *wachtclient.Client
	clock    *clock
	logs     *syncBuffer
	logger   *slog.Logger
	observed *outcomes
	classes  *classes
}

// classes records the budget class of every Backend API request.
type classes struct {
	mu  sync.Mutex
	got []budget.Class
}

func (c *classes) Admit(ctx context.Context) (func(int, time.Duration), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, budget.ClassFrom(ctx))
	return func(int, time.Duration) {}, nil
}

// all reports whether at least one request was made and all as class.
func (c *classes) all(class budget.Class) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.got {
		if g != class {
			return false
		}
	}
	return len(c.got) > 0
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake, err := wachtfake.New(wachtfake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{appOrders, appBilling} {
		if err := fake.AddAPIAuthApp(wachtfake.APIAuthApp{Slug: slug, KeyPrefix: "sk_" + slug[:2]}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{fake: fake, url: srv.URL, clock: &clock{t: testStart}, logs: logs, logger: logger, observed: &outcomes{}, classes: &classes{}}
	e.client = e.newClient(t, fake.APIKey())
	return e
}

// newClient returns a client of the emulator that authenticates with
// apiKey.
func (e *env) newClient(t *testing.T, apiKey string) *wachtclient.Client {
	t.Helper()
	c, err := wachtclient.New(wachtclient.Config{
		APIURL:         e.url,
		APIKey:         apiKey,
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
		Logger:         e.logger,
		Limiter:        e.classes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rotator returns a Rotator on store and the emulator, with the env's
// clock, logger and observer; edit adjusts its Config.
func (e *env) rotator(t *testing.T, store rotation.Store, edit ...func(*rotation.Config)) *rotation.Rotator {
	t.Helper()
	cfg := rotation.Config{
		Store:    store,
		Wacht:    e.client,
		Now:      e.clock.Now,
		Logger:   e.logger,
		Observer: e.observed,
	}
	for _, f := range edit {
		f(&cfg)
	}
	r, err := rotation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// addKey seeds an active key with permissions, metadata and an expiry.
func (e *env) addKey(t *testing.T, app, name string) wachtfake.APIKey {
	t.Helper()
	k, _, err := e.fake.AddAPIKey(app, wachtfake.APIKey{
		Name:        name,
		Permissions: []string{"orders:read", "orders:write"},
		Metadata:    map[string]any{"team": "checkout", "tier": float64(2)},
		ExpiresAt:   time.Now().AddDate(1, 0, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// key returns a key of app as the emulator holds it.
func (e *env) key(t *testing.T, app, id string) wachtfake.APIKey {
	t.Helper()
	keys, err := e.fake.APIKeys(app)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("no key %s in app %s", id, app)
	return wachtfake.APIKey{}
}

// keyIDs returns the ids of app's keys, active or not.
func (e *env) keyIDs(t *testing.T, app string) []string {
	t.Helper()
	keys, err := e.fake.APIKeys(app)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

// storeKind makes a Store for a test.
type storeKind struct {
	name string
	new  func(t *testing.T) rotation.Store
}

var storeKinds = []storeKind{
	{"postgres", func(t *testing.T) rotation.Store { return rotation.NewPostgresStore(pgtest.NewPool(t)) }},
	{"memory", func(*testing.T) rotation.Store { return rotation.NewMemoryStore() }},
}

// forEachStore runs test once per store kind, in parallel.
func forEachStore(t *testing.T, test func(t *testing.T, newStore func(*testing.T) rotation.Store)) {
	t.Helper()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			test(t, k.new)
		})
	}
}

// openPool opens another pool on the database at url, closed when the
// test ends.
func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// record returns the audit record with id.
func record(t *testing.T, r *rotation.Rotator, id string) rotation.Record {
	t.Helper()
	recs, _, err := r.List(t.Context(), rotation.ListQuery{Limit: rotation.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.ID == id {
			return rec
		}
	}
	t.Fatalf("no audit record %s", id)
	return rotation.Record{}
}

// onlyRecord returns the one audit record there is.
func onlyRecord(t *testing.T, r *rotation.Rotator) rotation.Record {
	t.Helper()
	recs, _, err := r.List(t.Context(), rotation.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("List() returned %d records, want 1: %+v", len(recs), recs)
	}
	return recs[0]
}

// revokeDue runs one worker pass and checks how many keys it revoked.
func revokeDue(t *testing.T, r *rotation.Rotator, want int) {
	t.Helper()
	n, err := r.RevokeDue(t.Context())
	if err != nil || n != want {
		t.Fatalf("RevokeDue() = %d, %v; want %d, nil", n, err, want)
	}
}
