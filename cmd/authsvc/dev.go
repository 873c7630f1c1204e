package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

// devTokenLifetime is how long the tokens that dev prints stay valid:
// long enough to paste, unlike Wacht's 35 seconds.
const devTokenLifetime = time.Hour

// emulator is the Wacht emulator that `authsvc dev` runs on a loopback
// port and points authsvc at.
type emulator struct {
	fake          *wachtfake.Server
	url           string
	srv           *http.Server
	demo          wachtfake.Demo
	webhookSecret string
	logger        *slog.Logger
	// tokenCookie is a cookie authsvc reads session tokens from.
	tokenCookie string
}

// devTokenCookie is the token cookie dev reads when none is configured,
// named as Wacht's Next.js SDK names it: __auth_<scope>.
const devTokenCookie = "__auth_dev"

func startEmulator(logger *slog.Logger) (*emulator, error) {
	fake, err := wachtfake.New(wachtfake.Options{})
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start wacht emulator: %w", err)
	}
	url := "http://" + ln.Addr().String()
	fake.SetIssuer(url)
	demo, err := fake.SeedDemo()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("seed wacht emulator: %w", err)
	}
	secret, err := wachtfake.NewWebhookSecret()
	if err != nil {
		ln.Close()
		return nil, err
	}
	e := &emulator{
		fake: fake, url: url, demo: demo, webhookSecret: secret, logger: logger,
		srv: &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second},
	}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("wacht emulator stopped", "error", err)
		}
	}()
	logger.Info("wacht emulator listening", "addr", ln.Addr().String())
	return e, nil
}

// configure points cfg at the emulator.
func (e *emulator) configure(cfg *config) {
	cfg.WachtAPIURL = e.url
	cfg.WachtGatewayURL = e.url
	cfg.WachtFrontendURL = e.url
	cfg.WachtAPIKey = secret(e.fake.APIKey())
	if cfg.WachtWebhookSecret == "" {
		cfg.WachtWebhookSecret = secret(e.webhookSecret)
	}
	e.webhookSecret = string(cfg.WachtWebhookSecret)
	if len(cfg.ExtAuthzTokenCookies) == 0 {
		cfg.ExtAuthzTokenCookies = []string{devTokenCookie}
	}
	e.tokenCookie = cfg.ExtAuthzTokenCookies[0]
}

func (e *emulator) close() { _ = e.srv.Close() }

// deliverWebhooks makes the emulator deliver the events of its users and
// sessions, signed as Wacht signs them, to the webhook endpoint of the
// service listening on addr, so that a change made in the emulator reaches
// the caches without a Backend API call. Over TLS, whose certificate the
// emulator cannot be told to trust, it delivers nothing.
func (e *emulator) deliverWebhooks(addr string, tls bool) error {
	if tls {
		e.logger.Warn("the wacht emulator delivers no webhooks to a TLS listener: changes in it reach authsvc when entries are refreshed")
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("wacht emulator webhooks: %w", err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return e.fake.SetWebhookEndpoint("http://"+net.JoinHostPort(host, port)+"/webhooks/wacht", e.webhookSecret)
}

// wrap adds GET /dev/token, which mints session tokens for the demo.
func (e *emulator) wrap(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /dev/token", e.mintToken)
	return mux
}

// mintToken answers GET /dev/token?user_id=&session_id=&ttl= with a fresh
// session token. Without a session_id it uses the user's first active
// sign-in; without a user_id, the first demo user's organization context.
func (e *emulator) mintToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	claims := e.demo.TokenClaims
	if uid := q.Get("user_id"); uid != "" && uid != claims.UserID {
		claims = wachtfake.TokenClaims{UserID: uid, SessionID: q.Get("session_id")}
		if claims.SessionID == "" {
			signIns, err := e.fake.SignIns(uid)
			if err != nil || len(signIns) == 0 {
				http.Error(w, "no such user, or the user has no active sign-in: pass session_id", http.StatusNotFound)
				return
			}
			claims.SessionID = signIns[0].SessionID
		}
	} else if sid := q.Get("session_id"); sid != "" {
		claims.SessionID = sid
	}
	claims.Lifetime = devTokenLifetime
	if ttl := q.Get("ttl"); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 || d > 24*time.Hour {
			http.Error(w, "ttl must be a duration between 1s and 24h", http.StatusBadRequest)
			return
		}
		claims.Lifetime = d
	}
	tok, err := e.fake.MintToken(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "user_id": claims.UserID, "session_id": claims.SessionID,
		"expires_at": time.Now().Add(claims.Lifetime).UTC().Format(time.RFC3339),
	})
}

// printBanner tells a person at a terminal how to talk to the dev server,
// with commands that work as printed.
func (e *emulator) printBanner(w io.Writer, addr, store string) error {
	d := e.demo
	tok, err := e.fake.MintToken(withLifetime(d.TokenClaims, devTokenLifetime))
	if err != nil {
		return fmt.Errorf("mint demo token: %w", err)
	}
	base := "http://" + addr
	ada, grace := d.Users[0], d.Users[1]
	var adaSignIn string
	for _, si := range d.SignIns {
		if si.UserID == ada.ID {
			adaSignIn = si.ID
			break
		}
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\nauthsvc dev: serving on %s (open to every caller, %s store)\n", base, store)
	p("Wacht emulator on %s with demo users:\n", e.url)
	for _, u := range d.Users {
		p("  %s  %s %s <%s>\n", u.ID, u.FirstName, u.LastName, primaryEmail(u))
	}
	p("\nA session token for %s %s, valid for %s:\n\n  TOKEN=%s\n", ada.FirstName, ada.LastName, devTokenLifetime, tok)
	p("\nMint more: curl -s '%s/dev/token?user_id=%s&ttl=1h'\n", base, grace.ID)
	p("\nCall it with buf curl (from this repository; reflection, no .proto files needed):\n\n")
	bc := "go tool -modfile=tools/go.mod buf curl --protocol grpc --http2-prior-knowledge"
	p("  %s --list-methods %s\n", bc, base)
	p("  %s %s/grpc.health.v1.Health/Check\n", bc, base)
	rpc := func(method, body string) { p("  %s -d '%s' %s/%s\n", bc, body, base, method) }
	rpc("authsvc.v1.AuthService/VerifySession", `{"token":"'"$TOKEN"'","includeUser":true,"checkRevocation":true}`)
	rpc("authsvc.v1.AuthService/GetUser", fmt.Sprintf(`{"userId":"%s"}`, ada.ID))
	rpc("authsvc.v1.AuthService/BatchGetUsers", fmt.Sprintf(`{"userIds":["%s","%s","1"]}`, ada.ID, grace.ID))
	rpc("authsvc.v1.AuthService/ListSessions", fmt.Sprintf(`{"userId":"%s","includeExpired":true,"pageSize":2}`, ada.ID))
	rpc("authsvc.v1.AuthService/RevokeSession", fmt.Sprintf(`{"userId":"%s","signInId":"%s"}`, ada.ID, adaSignIn))
	if len(d.Keys) > 0 {
		rpc("authsvc.v1.AuthService/VerifyAPIKey", fmt.Sprintf(`{"key":"%s","method":"GET","resource":"/orders"}`, d.Keys[0].Secret))
		rpc("authsvc.v1.AdminService/RotateAPIKey", fmt.Sprintf(`{"appSlug":"%s","keyId":"%s","gracePeriod":"3600s","reason":"demo"}`, d.AppSlug, d.Keys[0].Key.ID))
		rpc("authsvc.v1.AdminService/ListRotations", fmt.Sprintf(`{"appSlug":"%s"}`, d.AppSlug))
	}
	rpc("envoy.service.auth.v3.Authorization/Check", `{"attributes":{"request":{"http":{"headers":{"authorization":"Bearer '"$TOKEN"'"}}}}}`)
	p("\nAuthenticate, one line per credential kind (Envoy's Check takes the same headers):\n\n")
	for _, c := range e.credentialExamples() {
		p("  # %s\n", c.kind)
		rpc("authsvc.v1.AuthService/Authenticate", c.body)
	}
	p("\nOr with plain curl (Connect protocol, JSON):\n\n")
	p("  curl -s -H 'Content-Type: application/json' -d '{\"userId\":\"%s\"}' %s/authsvc.v1.AuthService/GetUser\n", ada.ID, base)
	for _, c := range e.credentialExamples() {
		p("  curl -s -H 'Content-Type: application/json' -d '%s' %s/authsvc.v1.AuthService/Authenticate\n", c.body, base)
	}
	p("\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// credentialExample is an Authenticate request body for one kind of
// credential, for a shell (it may expand $TOKEN).
type credentialExample struct{ kind, body string }

// credentialExamples are Authenticate bodies for each credential kind the
// demo has: a session token as bearer and as cookie, the demo user's
// __session cookie and development session, and an API-auth key.
func (e *emulator) credentialExamples() []credentialExample {
	d := e.demo
	out := []credentialExample{
		{"session token (Authorization: Bearer)", `{"headers":{"authorization":"Bearer '"$TOKEN"'"},"method":"GET","path":"/orders"}`},
		{"session token in the " + e.tokenCookie + " cookie", `{"headers":{"cookie":"` + e.tokenCookie + `='"$TOKEN"'"},"method":"GET","path":"/orders"}`},
	}
	if len(d.SessionCookies) > 0 {
		out = append(out, credentialExample{"Wacht session cookie, exchanged at the Frontend API",
			fmt.Sprintf(`{"headers":{"cookie":"__session=%s"},"method":"GET","path":"/orders","clientAddress":"192.0.2.10"}`, d.SessionCookies[0].Value)})
	}
	if d.DevSession != "" {
		out = append(out, credentialExample{"development session",
			fmt.Sprintf(`{"headers":{"x-development-session":"%s"},"method":"GET","path":"/orders","clientAddress":"192.0.2.11"}`, d.DevSession)})
	}
	if len(d.Keys) > 0 {
		out = append(out, credentialExample{"API-auth key",
			fmt.Sprintf(`{"headers":{"authorization":"Bearer %s"},"method":"GET","path":"/orders","requiredPermissions":["orders:read"]}`, d.Keys[0].Secret)})
	}
	return out
}

func withLifetime(c wachtfake.TokenClaims, d time.Duration) wachtfake.TokenClaims {
	c.Lifetime = d
	return c
}

func primaryEmail(u wachtfake.User) string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Email
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Email
	}
	return "no email"
}
