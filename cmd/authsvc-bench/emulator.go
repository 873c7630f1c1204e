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

// seeded is one seeded user and the session id of its sign-in.
type seeded struct {
	userID    string
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
	fake, err := wachtfake.New(wachtfake.Options{RequestsPerMinute: emulatorRPM})
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	e := &emulator{
		fake: fake,
		url:  "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
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
			s.sessionID = si.SessionID
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

// env is the environment that points a replica at the emulator.
func (e *emulator) env() map[string]string {
	return map[string]string{
		"WACHT_API_KEY":          e.fake.APIKey(),
		"WACHT_API_URL":          e.url,
		"WACHT_GATEWAY_URL":      e.url,
		"WACHT_FRONTEND_API_URL": e.url,
	}
}
