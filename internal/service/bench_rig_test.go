package service_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

const (
	// benchConcurrency is how many calls are in flight at once, in
	// RunParallel benchmarks and in BenchmarkRatios.
	benchConcurrency = 32
	// benchPostgresUsers is how many users the Postgres-hit cases cycle
	// through, far more than benchTinyMemory.
	benchPostgresUsers = 2000
	// benchTinyMemory bounds the in-memory level in the Postgres-hit
	// cases, so that a user is evicted long before it is read again.
	benchTinyMemory = 16
	// benchMemoryUsers is how many users the memory-hit cases cycle through.
	benchMemoryUsers = 16
	// benchTokenLifetime outlives any benchmark, so the verified-token
	// cache never expires an entry mid-run.
	benchTokenLifetime = 2 * time.Hour
)

// benchHealthClient calls grpc.health.v1.Health/Check.
type benchHealthClient = connect.Client[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse]

// benchRig is the whole service (apptest), with gRPC clients of its
// AuthService and of its health service, the no-op the ratios divide by.
type benchRig struct {
	fake    *wachtfake.Server
	auth    authsvcv1connect.AuthServiceClient
	health  *benchHealthClient
	users   []string // seeded user ids
	session []string // each user's session id (a token's sid)
	reads   *benchReadCounter
}

// benchRigConfig shapes a benchRig.
type benchRigConfig struct {
	users      int
	pool       *pgxpool.Pool // nil: memory-only caches
	maxEntries int           // in-memory level bound; 0 means the cache's default
}

func newBenchRig(b *testing.B, cfg benchRigConfig) *benchRig {
	b.Helper()
	h := apptest.New(b, apptest.Options{
		Pool: cfg.pool,
		Fake: wachtfake.Options{RequestsPerMinute: 1 << 30},
		Config: func(c *app.Config) {
			c.WachtRequestsPerMin = 1 << 30
			c.UserTTL, c.SessionsTTL = time.Hour, time.Hour
			c.CacheMaxEntries = cfg.maxEntries
		},
	})
	rig := &benchRig{fake: h.Fake, reads: &benchReadCounter{reg: h.Registry}}
	for i := range cfg.users {
		uid, sid := benchSeedUser(b, h.Fake, i)
		rig.users = append(rig.users, uid)
		rig.session = append(rig.session, sid)
	}
	rig.auth = h.AuthClient(connect.WithGRPC())
	rig.health = connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
		h.HTTPClient, h.URL+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	return rig
}

// benchSeedUser adds a user shaped like a typical Wacht user, with one
// sign-in, and returns the user id and the sign-in's session id.
func benchSeedUser(b *testing.B, fake *wachtfake.Server, i int) (userID, sessionID string) {
	b.Helper()
	n := strconv.Itoa(i)
	u, err := fake.AddUser(wachtfake.User{
		FirstName: "Bench", LastName: "User " + n, Username: "bench" + n,
		PublicMetadata: map[string]any{"plan": "team", "seat": i},
		Emails:         []wachtfake.Email{{Email: "bench" + n + "@example.com", Primary: true, Verified: true}},
		Phones:         []wachtfake.Phone{{PhoneNumber: "2025550143", CountryCode: "+1", Primary: true, Verified: true}},
		HasPassword:    true,
	})
	if err != nil {
		b.Fatal(err)
	}
	si, err := fake.AddSignIn(u.ID, wachtfake.SignIn{IPAddress: "192.0.2.10", Browser: "Firefox 133", Device: "Linux",
		City: "Berlin", Country: "Germany", CountryCode: "DE"})
	if err != nil {
		b.Fatal(err)
	}
	return u.ID, si.SessionID
}

// token mints a session token for user i that outlives the benchmark.
func (r *benchRig) token(b *testing.B, i int) string {
	b.Helper()
	tok, err := r.fake.MintToken(wachtfake.TokenClaims{
		UserID: r.users[i%len(r.users)], SessionID: r.session[i%len(r.session)], Lifetime: benchTokenLifetime,
	})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// uniqueTokens mints n distinct tokens, each with a session id of its
// own, on every core.
func (r *benchRig) uniqueTokens(b *testing.B, n int) []string {
	b.Helper()
	toks := make([]string, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mintErr atomic.Value
	)
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				tok, err := r.fake.MintToken(wachtfake.TokenClaims{
					UserID: r.users[i%len(r.users)], SessionID: strconv.Itoa(1_000_000 + i), Lifetime: benchTokenLifetime,
				})
				if err != nil {
					mintErr.Store(err)
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	if err, ok := mintErr.Load().(error); ok {
		b.Fatal(err)
	}
	return toks
}

// load reads every user once through the cache, so the next reads hit.
func (r *benchRig) load(b *testing.B) {
	b.Helper()
	for _, id := range r.users {
		if _, err := r.auth.GetUser(context.Background(), connect.NewRequest(&authsvcv1.GetUserRequest{UserId: id})); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOp is one RPC; i numbers the calls of a run from 0.
type benchOp func(ctx context.Context, i int) error

func (r *benchRig) noop(ctx context.Context, _ int) error {
	_, err := r.health.CallUnary(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{}))
	return err
}

func (r *benchRig) verify(token func(i int) string) benchOp {
	return func(ctx context.Context, i int) error {
		_, err := r.auth.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token(i)}))
		return err
	}
}

func (r *benchRig) getUser(ctx context.Context, i int) error {
	_, err := r.auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: r.users[i%len(r.users)]}))
	return err
}

// benchReadCounter counts the user cache's reads by the level that
// answered, from the service's metrics, to show what a benchmark really
// measured.
type benchReadCounter struct {
	reg  prometheus.Gatherer
	base map[string]float64
}

// levels returns the user cache's reads so far by level.
func (c *benchReadCounter) levels() (map[string]float64, error) {
	families, err := c.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "authsvc_cache_reads_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var kind, level string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "kind":
					kind = l.GetValue()
				case "level":
					level = l.GetValue()
				}
			}
			if kind == "user" {
				out[level] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

func (c *benchReadCounter) reset() { c.base, _ = c.levels() }

// report adds the share of reads each level answered since reset.
func (c *benchReadCounter) report(b *testing.B) {
	now, err := c.levels()
	if err != nil {
		b.Fatal(err)
	}
	memory := now["memory"] - c.base["memory"]
	postgres := now["postgres"] - c.base["postgres"]
	load := now["load"] - c.base["load"]
	total := memory + postgres + load
	if total == 0 {
		return
	}
	b.ReportMetric(memory/total, "memory-share")
	b.ReportMetric(postgres/total, "postgres-share")
	b.ReportMetric(load/total, "load-share")
}
