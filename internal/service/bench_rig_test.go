package service_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/jackc/pgx/v5/pgxpool"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
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

// benchRig is an AuthService and a no-op health service on one server,
// with gRPC clients of both.
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
	ctx := context.Background()
	fake, err := wachtfake.New(wachtfake.Options{RequestsPerMinute: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	wachtSrv := httptest.NewServer(fake)
	b.Cleanup(wachtSrv.Close)
	fake.SetIssuer(wachtSrv.URL)
	rig := &benchRig{fake: fake, reads: &benchReadCounter{}}
	for i := range cfg.users {
		uid, sid := benchSeedUser(b, fake, i)
		rig.users = append(rig.users, uid)
		rig.session = append(rig.session, sid)
	}

	discard := slog.New(slog.DiscardHandler)
	wacht, err := wachtclient.New(wachtclient.Config{
		APIURL:            wachtSrv.URL,
		GatewayURL:        wachtSrv.URL,
		FrontendURL:       wachtSrv.URL,
		APIKey:            fake.APIKey(),
		RequestsPerMinute: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := sessiontoken.New(sessiontoken.Config{Issuer: wachtSrv.URL, Fetcher: wacht, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := verifier.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	var notifier *cache.Notifier
	if cfg.pool != nil {
		notifier = cache.NewNotifier(cfg.pool, discard)
	}
	users, err := cache.New(cache.Config[*authsvcv1.User]{
		Kind: "user", Pool: cfg.pool, Notifier: notifier,
		Load: service.LoadUser(wacht), Codec: service.UserCodec{},
		TTL: time.Hour, MaxEntries: cfg.maxEntries,
		IsTransient: wachtclient.IsTransient, Observer: rig.reads,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(users.Close)
	sessions, err := cache.New(cache.Config[[]*authsvcv1.Session]{
		Kind: "sessions", Pool: cfg.pool, Notifier: notifier,
		Load: service.LoadSessions(wacht), Codec: service.SessionsCodec{},
		TTL: time.Hour, IsTransient: wachtclient.IsTransient,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sessions.Close)
	auth, err := service.NewAuthServer(service.AuthConfig{
		Logger: discard, Verifier: verifier, Users: users, Sessions: sessions, Wacht: wacht,
		PageTokenKey: []byte("benchmark page token key, 32 by"),
	})
	if err != nil {
		b.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle(authsvcv1connect.NewAuthServiceHandler(auth))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker()))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	b.Cleanup(srv.Close)

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: &h2c}
	b.Cleanup(transport.CloseIdleConnections)
	hc := &http.Client{Transport: transport}
	rig.auth = authsvcv1connect.NewAuthServiceClient(hc, srv.URL, connect.WithGRPC())
	rig.health = connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
		hc, srv.URL+"/grpc.health.v1.Health/Check", connect.WithGRPC())
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
// answered, to show what a benchmark really measured.
type benchReadCounter struct {
	memory, postgres, load atomic.Int64
}

func (c *benchReadCounter) ObserveRead(_ string, source cache.Source, _ cache.Outcome) {
	switch source {
	case cache.SourceMemory:
		c.memory.Add(1)
	case cache.SourcePostgres:
		c.postgres.Add(1)
	case cache.SourceLoad:
		c.load.Add(1)
	}
}

func (*benchReadCounter) ObserveLoad(string, time.Duration, error)    {}
func (*benchReadCounter) ObservePostgresError(string, string, error)  {}
func (*benchReadCounter) ObserveServed(string, time.Duration)         {}
func (*benchReadCounter) ObserveRefresh(string, cache.RefreshOutcome) {}
func (*benchReadCounter) ObserveRefreshQueue(string, int)             {}

func (c *benchReadCounter) reset() {
	c.memory.Store(0)
	c.postgres.Store(0)
	c.load.Store(0)
}

// report adds the share of reads each level answered.
func (c *benchReadCounter) report(b *testing.B) {
	total := float64(c.memory.Load() + c.postgres.Load() + c.load.Load())
	if total == 0 {
		return
	}
	b.ReportMetric(float64(c.memory.Load())/total, "memory-share")
	b.ReportMetric(float64(c.postgres.Load())/total, "postgres-share")
	b.ReportMetric(float64(c.load.Load())/total, "load-share")
}
