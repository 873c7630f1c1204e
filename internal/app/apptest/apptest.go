// Package apptest runs the whole authsvc graph in process for tests and
// benchmarks: app.New in front of the Wacht emulator, served by an
// httptest server that speaks HTTP/1.1 and cleartext HTTP/2, optionally
// on a database of its own from pgtest.
package apptest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/service"
	"github.com/authsvc/authsvc/internal/telemetry"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// Options shapes a Harness. The zero Options is the in-memory store, no
// tracing, an empty emulator and no background work.
type Options struct {
	// Postgres gives the service a freshly migrated database of its own.
	Postgres bool
	// Pool is the database to use instead; it wins over Postgres.
	Pool *pgxpool.Pool
	// Config adjusts the configuration after the harness has pointed it
	// at the emulator.
	Config func(*app.Config)
	// Fake shapes the emulator. Its WebhookClient defaults to one that
	// reaches the harness.
	Fake wachtfake.Options
	// SeedDemo fills the emulator with its demo data (Harness.Demo).
	SeedDemo bool
	// TracerProvider receives the service's spans.
	TracerProvider trace.TracerProvider
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Version is the build version the service reports.
	Version string
	// Now is the service's wall clock; nil means time.Now. The
	// emulator's clock is set apart, in Fake.
	Now func() time.Time
	// Replicate runs the service as another replica of that harness's
	// deployment: on its emulator, with its webhook secret and its
	// database (unless Pool is set). Fake and SeedDemo are then ignored.
	Replicate *Harness
	// Background runs the service's background work (app.Run) until the
	// test ends. Without it, the key set is loaded once before New
	// returns and nothing else runs.
	Background bool
	// Webhooks makes the emulator deliver the events of its users and
	// sessions to this service's /webhooks/wacht, as Wacht does.
	Webhooks bool
}

// Harness is a running authsvc and the emulator behind it.
type Harness struct {
	App  *app.App
	Fake *wachtfake.Server
	// Demo is the emulator's demo data, when Options.SeedDemo is set.
	Demo wachtfake.Demo
	// Config is the configuration the service was built with.
	Config app.Config
	// Pool is the service's database, or nil.
	Pool *pgxpool.Pool
	// Registry holds the service's metrics.
	Registry *prometheus.Registry
	// URL serves every RPC, /webhooks/wacht and /metrics.
	URL string
	// HTTPClient reaches URL over cleartext HTTP/2 (h2c), as gRPC needs.
	HTTPClient *http.Client
	// WebhookSecret signs the emulator's webhooks to the service.
	WebhookSecret string
}

// New starts a Harness that stops when tb ends.
func New(tb testing.TB, opts Options) *Harness {
	tb.Helper()
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: &h2c}
	tb.Cleanup(transport.CloseIdleConnections)
	h := &Harness{HTTPClient: &http.Client{Transport: transport}, Registry: telemetry.NewRegistry()}

	var (
		wachtURL string
		err      error
	)
	if r := opts.Replicate; r != nil {
		h.Fake, h.Demo, h.WebhookSecret, h.Pool = r.Fake, r.Demo, r.WebhookSecret, r.Pool
		wachtURL = r.Fake.Issuer()
	} else {
		h.Fake, h.Demo, h.WebhookSecret, wachtURL = newEmulator(tb, opts, h.HTTPClient)
	}

	h.Config = app.Config{
		WachtAPIKey:        app.Secret(h.Fake.APIKey()),
		WachtAPIURL:        wachtURL,
		WachtGatewayURL:    wachtURL,
		WachtFrontendURL:   wachtURL,
		WachtWebhookSecret: app.Secret(h.WebhookSecret),
	}
	if opts.Config != nil {
		opts.Config(&h.Config)
	}
	if opts.Pool != nil {
		h.Pool = opts.Pool
	} else if h.Pool == nil && opts.Postgres {
		h.Pool = pgtest.NewPool(tb)
	}
	h.App, err = app.New(h.Config, app.Deps{
		Pool:           h.Pool,
		Logger:         opts.Logger,
		TracerProvider: opts.TracerProvider,
		Registry:       h.Registry,
		Version:        opts.Version,
		Now:            opts.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Cleanups run last first: the server stops, then the background
	// work, then the app closes, and the database goes last.
	tb.Cleanup(h.App.Close)
	if opts.Background {
		ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			h.App.Run(ctx)
		}()
		tb.Cleanup(func() {
			cancel()
			<-ran
		})
	} else if err := h.App.Verifier().Refresh(tb.Context()); err != nil {
		tb.Fatal(err)
	}

	srv := httptest.NewUnstartedServer(h.App.Handler())
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	h.URL = srv.URL
	if opts.Webhooks {
		if err := h.Fake.SetWebhookEndpoint(h.URL+"/webhooks/wacht", h.WebhookSecret); err != nil {
			tb.Fatal(err)
		}
		// Cleanups run last first: deliveries stop before the server.
		tb.Cleanup(func() { _ = h.Fake.SetWebhookEndpoint("", "") })
	}
	return h
}

// newEmulator starts the Wacht emulator that opts shape, serving until
// tb ends, and returns it with its demo data (if seeded), a webhook
// secret and its URL.
func newEmulator(tb testing.TB, opts Options, hc *http.Client) (*wachtfake.Server, wachtfake.Demo, string, string) {
	tb.Helper()
	fakeOpts := opts.Fake
	if fakeOpts.WebhookClient == nil {
		fakeOpts.WebhookClient = hc
	}
	fake, err := wachtfake.New(fakeOpts)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(fake)
	tb.Cleanup(srv.Close)
	fake.SetIssuer(srv.URL)
	var demo wachtfake.Demo
	if opts.SeedDemo {
		if demo, err = fake.SeedDemo(); err != nil {
			tb.Fatal(err)
		}
	}
	secret, err := wachtfake.NewWebhookSecret()
	if err != nil {
		tb.Fatal(err)
	}
	return fake, demo, secret, srv.URL
}

// AuthClient returns an AuthService client on h; pass connect.WithGRPC()
// or connect.WithGRPCWeb() for those protocols.
func (h *Harness) AuthClient(opts ...connect.ClientOption) authsvcv1connect.AuthServiceClient {
	return authsvcv1connect.NewAuthServiceClient(h.HTTPClient, h.URL, opts...)
}

// AdminClient returns an AdminService client on h.
func (h *Harness) AdminClient(opts ...connect.ClientOption) authsvcv1connect.AdminServiceClient {
	return authsvcv1connect.NewAdminServiceClient(h.HTTPClient, h.URL, opts...)
}

// CheckClient returns a client of Envoy's Check on h.
func (h *Harness) CheckClient(opts ...connect.ClientOption) *connect.Client[authv3.CheckRequest, authv3.CheckResponse] {
	return connect.NewClient[authv3.CheckRequest, authv3.CheckResponse](h.HTTPClient, h.URL+service.ExtAuthzCheckProcedure, opts...)
}
