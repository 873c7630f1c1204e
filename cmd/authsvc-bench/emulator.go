package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

// everyRoute lists the emulator's routes, to total its calls.
var everyRoute = []string{
	wachtfake.RouteHealth, wachtfake.RouteListUsers, wachtfake.RouteUserDetails, wachtfake.RouteDeleteUser,
	wachtfake.RouteListSessions, wachtfake.RouteRevokeSession, wachtfake.RouteRevokeAll,
	wachtfake.RouteListAPIKeys, wachtfake.RouteCreateAPIKey, wachtfake.RouteRevokeAPIKey, wachtfake.RouteRotateAPIKey,
	wachtfake.RouteAuthzCheck, wachtfake.RouteJWKS, wachtfake.RouteUnknown,
}

// backendRoutes are the routes that count against a deployment's Backend
// API budget.
var backendRoutes = []string{
	wachtfake.RouteListUsers, wachtfake.RouteUserDetails, wachtfake.RouteDeleteUser,
	wachtfake.RouteListSessions, wachtfake.RouteRevokeSession, wachtfake.RouteRevokeAll,
	wachtfake.RouteListAPIKeys, wachtfake.RouteCreateAPIKey, wachtfake.RouteRevokeAPIKey, wachtfake.RouteRotateAPIKey,
}

// emulator is a Wacht emulator served on loopback.
type emulator struct {
	fake *wachtfake.Server
	url  string
	srv  *http.Server
}

// seeded is one seeded user and the ids of its sign-in.
type seeded struct {
	userID    string
	signInID  string
	sessionID string
}

// emulatorRPM is the emulator's own Backend API budget.
const emulatorRPM = 1_000_000

// startEmulator serves a Wacht emulator on a loopback port. Its own
// Backend API budget is out of the way: each replica's is what is
// measured. The emulator's window keeps one slot per request of the
// budget, so the budget is large (no run comes near a million Backend API
// calls a minute) but not unbounded.
func startEmulator(logger *slog.Logger) (*emulator, error) {
	return serveEmulator(logger, wachtfake.Options{RequestsPerMinute: emulatorRPM}, nil)
}

// serveEmulator serves an emulator made with opts on a loopback port,
// its handler wrapped by wrap unless wrap is nil.
func serveEmulator(logger *slog.Logger, opts wachtfake.Options, wrap func(http.Handler) http.Handler) (*emulator, error) {
	fake, err := wachtfake.New(opts)
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	var h http.Handler = fake
	if wrap != nil {
		h = wrap(fake)
	}
	e := &emulator{
		fake: fake,
		url:  "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
	}
	fake.SetIssuer(e.url)
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("wacht emulator stopped", "error", err)
		}
	}()
	return e, nil
}

func (e *emulator) close() { _ = e.srv.Close() }

// seed adds n users shaped like typical Wacht users, each with one
// sign-in when withSignIn.
func (e *emulator) seed(n int, withSignIn bool) ([]seeded, error) {
	out := make([]seeded, 0, n)
	for i := range n {
		num := strconv.Itoa(i)
		u, err := e.fake.AddUser(wachtfake.User{
			FirstName: "Load", LastName: "User " + num, Username: "load" + num,
			PublicMetadata: map[string]any{"plan": "team", "seat": i},
			Emails:         []wachtfake.Email{{Email: "load" + num + "@example.com", Primary: true, Verified: true}},
			Phones:         []wachtfake.Phone{{PhoneNumber: "2025550143", CountryCode: "+1", Primary: true, Verified: true}},
			HasPassword:    true,
		})
		if err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
		s := seeded{userID: u.ID}
		if withSignIn {
			si, err := e.fake.AddSignIn(u.ID, wachtfake.SignIn{IPAddress: "192.0.2.10", Browser: "Firefox 133",
				Device: "Linux", City: "Berlin", Country: "Germany", CountryCode: "DE"})
			if err != nil {
				return nil, fmt.Errorf("seed sign-ins: %w", err)
			}
			s.signInID, s.sessionID = si.ID, si.SessionID
		}
		out = append(out, s)
	}
	return out, nil
}

// calls totals the emulator's calls on routes.
func (e *emulator) calls(routes []string) int {
	n := 0
	for _, r := range routes {
		n += e.fake.Calls(r)
	}
	return n
}

// replicaEnv is the environment of a replica pointed at the emulator and
// the database at dbURL: open to any caller on loopback, logging at
// logLevel, with a short shutdown. Everything else is authsvc's default.
func replicaEnv(e *emulator, dbURL, logLevel string) map[string]string {
	env := e.env()
	env["DATABASE_URL"] = dbURL
	env["AUTHSVC_INSECURE_OPEN"] = "true"
	env["AUTHSVC_LOG_LEVEL"] = logLevel
	env["AUTHSVC_SHUTDOWN_TIMEOUT"] = "5s"
	return env
}

// env is the environment that points a replica at the emulator.
func (e *emulator) env() map[string]string {
	return map[string]string{
		"WACHT_API_KEY":          e.fake.APIKey(),
		"WACHT_API_URL":          e.url,
		"WACHT_GATEWAY_URL":      e.url,
		"WACHT_FRONTEND_API_URL": e.url,
	}
}
