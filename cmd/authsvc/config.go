package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/retention"
	"github.com/authsvc/authsvc/internal/service"
)

// maxBudgetWait bounds AUTHSVC_BUDGET_WAIT: past it a caller is better
// answered (stale, or ResourceExhausted) than kept waiting.
const maxBudgetWait = 5 * time.Second

// headerPrefix is what AUTHSVC_EXTAUTHZ_HEADER_PREFIX must look like.
var headerPrefix = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,40}$`)

// cookieName is what a cookie or header name must look like (an RFC 7230
// token).
var cookieName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

type mode int

const (
	modeServe mode = iota
	modeDev
)

// secret is a configuration value that must never be printed.
type secret = app.Secret

// config is everything authsvc reads from its environment.
type config struct {
	app.Config

	mode mode

	Addr            string
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	ShutdownDelay   time.Duration

	DatabaseURL secret
	Migrate     bool
	// DevDatabase says that DATABASE_URL names a database of dev's own.
	DevDatabase bool

	TLSCert     string
	TLSKey      string
	TLSClientCA string
}

// env reads variables, collecting every problem so that one start reports
// all of them.
type env struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	problems []string
}

func (e *env) problem(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

func (e *env) str(name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// secret reads NAME, or the file named by NAME_FILE.
func (e *env) secret(name string) secret {
	v, file := e.getenv(name), e.getenv(name+"_FILE")
	switch {
	case v != "" && file != "":
		e.problem("set %s or %s_FILE, not both", name, name)
		return ""
	case file != "":
		b, err := e.readFile(file)
		if err != nil {
			e.problem("%s_FILE: cannot read %s: %v", name, file, errors.Unwrap(err))
			return ""
		}
		return secret(strings.TrimSpace(string(b)))
	default:
		return secret(strings.TrimSpace(v))
	}
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.problem("%s: %q is not a duration such as 30s or 5m", name, v)
		return def
	}
	return d
}

// notBelow reports a hard maximum age d (of variable name) below its
// soft TTL.
func (e *env) notBelow(name string, d time.Duration, ttlName string, ttl time.Duration) {
	if d < ttl {
		e.problem("%s: %v is below %s (%v): an entry must be kept at least as long as it is fresh", name, d, ttlName, ttl)
	}
}

// freshness is how long cached users and session lists are fresh (the
// soft TTLs, past which they are refreshed in the background) and how old
// they may be served (the hard maximum ages, past which a read loads).
type freshness struct {
	userTTL, userMaxAge, sessionsTTL, sessionsMaxAge time.Duration
}

// freshnessDefaults returns the defaults of a cache that webhooks keep
// current, when webhookFed, and else of one that only reloading keeps
// current: its entries must not outlive the changes Wacht makes for long.
func freshnessDefaults(webhookFed bool) freshness {
	if webhookFed {
		return freshness{userTTL: 5 * time.Minute, userMaxAge: time.Hour, sessionsTTL: 2 * time.Minute, sessionsMaxAge: 15 * time.Minute}
	}
	return freshness{userTTL: 60 * time.Second, userMaxAge: 10 * time.Minute, sessionsTTL: 30 * time.Second, sessionsMaxAge: 2 * time.Minute}
}

func (e *env) boolean(name string, def bool) bool {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.problem("%s: %q is not true or false", name, v)
		return def
	}
	return b
}

func (e *env) integer(name string, def, min int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		e.problem("%s: %q is not a whole number of at least %d", name, v, min)
		return def
	}
	return n
}

func (e *env) baseURL(name, def string) string {
	v := e.str(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		shown := v
		if err == nil {
			shown = u.Redacted()
		} else if strings.Contains(v, "@") {
			shown = "[a URL with credentials]"
		}
		e.problem("%s: %q is not an http(s) URL without credentials, such as https://api.wacht.dev", name, shown)
		return ""
	}
	return strings.TrimRight(v, "/")
}

// loadConfig reads and checks the configuration for m.
func loadConfig(m mode, getenv func(string) string) (*config, error) {
	e := &env{getenv: getenv, readFile: os.ReadFile}
	c := &config{mode: m}
	c.Addr = e.str("AUTHSVC_ADDR", "127.0.0.1:8080")
	switch lvl := strings.ToLower(e.str("AUTHSVC_LOG_LEVEL", "info")); lvl {
	case "debug", "info", "warn", "error":
		_ = c.LogLevel.UnmarshalText([]byte(lvl))
	default:
		e.problem("AUTHSVC_LOG_LEVEL: %q is not debug, info, warn or error", lvl)
	}
	c.ShutdownTimeout = e.duration("AUTHSVC_SHUTDOWN_TIMEOUT", 20*time.Second)
	c.ShutdownDelay = e.duration("AUTHSVC_SHUTDOWN_DELAY", 0)

	c.WachtAPIKey = e.secret("WACHT_API_KEY")
	c.WachtAPIURL = e.baseURL("WACHT_API_URL", "https://api.wacht.dev")
	c.WachtGatewayURL = e.baseURL("WACHT_GATEWAY_URL", "https://gateway.wacht.dev")
	c.WachtFrontendURL = e.baseURL("WACHT_FRONTEND_API_URL", "")
	if pk := e.str("WACHT_PUBLISHABLE_KEY", ""); pk != "" && c.WachtFrontendURL == "" {
		origin, err := frontendURLFromPublishableKey(pk)
		if err != nil {
			e.problem("WACHT_PUBLISHABLE_KEY: %v", err)
		}
		c.WachtFrontendURL = origin
	}
	c.WachtWebhookSecret = e.secret("WACHT_WEBHOOK_SECRET")
	if s := string(c.WachtWebhookSecret); s != "" && !strings.HasPrefix(s, "whsec_") {
		e.problem("WACHT_WEBHOOK_SECRET: a Wacht signing secret starts with whsec_")
	}
	c.WachtRequestsPerMin = e.integer("AUTHSVC_WACHT_REQUESTS_PER_MINUTE", budget.DefaultRequestsPerMinute, 1)
	c.BudgetWait = e.duration("AUTHSVC_BUDGET_WAIT", budget.DefaultWait)
	if c.BudgetWait <= 0 || c.BudgetWait > maxBudgetWait {
		e.problem("AUTHSVC_BUDGET_WAIT: %v is not between 0 and %v: a caller's request must not queue for budget longer", c.BudgetWait, maxBudgetWait)
	}

	c.DatabaseURL = e.secret("DATABASE_URL")
	c.Migrate = e.boolean("AUTHSVC_MIGRATE", true)

	c.CallersFile = e.str("AUTHSVC_CALLERS_FILE", "")
	c.InsecureOpen = e.boolean("AUTHSVC_INSECURE_OPEN", false)
	c.TLSCert = e.str("AUTHSVC_TLS_CERT", "")
	c.TLSKey = e.str("AUTHSVC_TLS_KEY", "")
	c.TLSClientCA = e.str("AUTHSVC_TLS_CLIENT_CA", "")
	if (c.TLSCert == "") != (c.TLSKey == "") {
		e.problem("AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY: set both to serve TLS, or neither")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		e.problem("AUTHSVC_TLS_CLIENT_CA: mTLS needs AUTHSVC_TLS_CERT and AUTHSVC_TLS_KEY too")
	}

	c.ExtAuthzHeaderPrefix = e.str("AUTHSVC_EXTAUTHZ_HEADER_PREFIX", "x-authsvc-")
	if !headerPrefix.MatchString(c.ExtAuthzHeaderPrefix) {
		e.problem("AUTHSVC_EXTAUTHZ_HEADER_PREFIX: %q is not a header name prefix such as x-authsvc-", c.ExtAuthzHeaderPrefix)
	}
	c.ExtAuthzStripAuthorization = e.boolean("AUTHSVC_EXTAUTHZ_STRIP_AUTHORIZATION", false)
	c.ExtAuthzCheckRevocation = e.boolean("AUTHSVC_EXTAUTHZ_CHECK_REVOCATION", false)
	creds, err := service.ParseCredentials(e.str("AUTHSVC_EXTAUTHZ_CREDENTIALS", "bearer,token_cookie,session_cookie,api_key"))
	switch {
	case err != nil:
		e.problem("AUTHSVC_EXTAUTHZ_CREDENTIALS: %v", err)
	case creds == 0:
		e.problem("AUTHSVC_EXTAUTHZ_CREDENTIALS lists no credential kind: list some of bearer, token_cookie, session_cookie, api_key")
	}
	c.ExtAuthzCredentials = creds
	for name := range strings.SplitSeq(e.str("AUTHSVC_EXTAUTHZ_TOKEN_COOKIES", ""), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !cookieName.MatchString(name) {
			e.problem("AUTHSVC_EXTAUTHZ_TOKEN_COOKIES: %q is not a cookie name", name)
		}
		c.ExtAuthzTokenCookies = append(c.ExtAuthzTokenCookies, name)
	}
	c.ExtAuthzAPIKeyHeader = strings.ToLower(e.str("AUTHSVC_EXTAUTHZ_API_KEY_HEADER", ""))
	if h := c.ExtAuthzAPIKeyHeader; h != "" && (!cookieName.MatchString(h) || h == "authorization" || h == "cookie") {
		e.problem("AUTHSVC_EXTAUTHZ_API_KEY_HEADER: %q is not a header name other than authorization and cookie, such as x-api-key", h)
	}

	c.RotationPollInterval = e.duration("AUTHSVC_ROTATION_POLL_INTERVAL", 5*time.Second)
	c.MaxGracePeriod = e.duration("AUTHSVC_MAX_GRACE_PERIOD", 30*24*time.Hour)

	c.RetentionInterval = e.duration("AUTHSVC_RETENTION_INTERVAL", retention.DefaultInterval)
	c.RevocationRetention = e.duration("AUTHSVC_REVOCATION_RETENTION", retention.DefaultRevocationRetention)
	c.AuditRetention = e.duration("AUTHSVC_AUDIT_RETENTION", 0)
	if c.RetentionInterval == 0 {
		e.problem("AUTHSVC_RETENTION_INTERVAL: 0 is not an interval")
	}

	c.CacheMaxEntries = e.integer("AUTHSVC_CACHE_MAX_ENTRIES", 25_000, 1)

	fresh := freshnessDefaults(c.WachtWebhookSecret != "" || m == modeDev)
	c.UserTTL = e.duration("AUTHSVC_USER_TTL", fresh.userTTL)
	c.SessionsTTL = e.duration("AUTHSVC_SESSIONS_TTL", fresh.sessionsTTL)
	// A maximum age defaults to the TTL when that is longer.
	c.UserMaxAge = e.duration("AUTHSVC_USER_MAX_AGE", max(fresh.userMaxAge, c.UserTTL))
	c.SessionsMaxAge = e.duration("AUTHSVC_SESSIONS_MAX_AGE", max(fresh.sessionsMaxAge, c.SessionsTTL))
	e.notBelow("AUTHSVC_USER_MAX_AGE", c.UserMaxAge, "AUTHSVC_USER_TTL", c.UserTTL)
	e.notBelow("AUTHSVC_SESSIONS_MAX_AGE", c.SessionsMaxAge, "AUTHSVC_SESSIONS_TTL", c.SessionsTTL)
	c.MaxStale = e.duration("AUTHSVC_MAX_STALE", 24*time.Hour)
	c.TokenLeeway = e.duration("AUTHSVC_TOKEN_LEEWAY", 5*time.Second)
	c.APIKeyCacheTTL = e.duration("AUTHSVC_APIKEY_CACHE_TTL", service.DefaultAPIKeyCacheTTL)
	if c.APIKeyCacheTTL > service.MaxAPIKeyCacheTTL {
		e.problem("AUTHSVC_APIKEY_CACHE_TTL: %v is over %v: a revoked key must stop working soon", c.APIKeyCacheTTL, service.MaxAPIKeyCacheTTL)
	}
	c.DevDatabase = e.boolean("AUTHSVC_DEV_DATABASE", false)

	if m == modeDev {
		// The emulator answers for users, sessions and keys that do not
		// exist in the real Wacht: what dev writes must never reach a
		// database production replicas read, and it never revokes keys.
		c.NoRotationWorker = true
		if c.DatabaseURL != "" && !c.DevDatabase {
			e.problem("DATABASE_URL is set: dev writes what its emulator answers into the database, " +
				"so it uses a database only when AUTHSVC_DEV_DATABASE=true says that one is dev's own (never a shared one)")
		}
	}

	if m == modeServe {
		if c.WachtAPIKey == "" {
			e.problem("WACHT_API_KEY is not set: set it (or WACHT_API_KEY_FILE) to your Wacht Backend API key")
		}
		if c.WachtFrontendURL == "" {
			e.problem("WACHT_PUBLISHABLE_KEY is not set: set it (or WACHT_FRONTEND_API_URL) so that session tokens can be verified")
		}
		if c.DatabaseURL == "" {
			e.problem("DATABASE_URL is not set: serve needs Postgres (the in-memory store is for `authsvc dev` only)")
		}
		if c.CallersFile == "" && !c.InsecureOpen {
			e.problem("AUTHSVC_CALLERS_FILE is not set: set it to say which callers may call what, " +
				"or set AUTHSVC_INSECURE_OPEN=true to let anyone who can reach the port call every RPC")
		}
	}
	if len(e.problems) > 0 {
		return nil, fmt.Errorf("configuration:\n  - %s", strings.Join(e.problems, "\n  - "))
	}
	return c, nil
}

// frontendURLFromPublishableKey decodes the Frontend API origin from a
// Wacht publishable key: pk_test_ or pk_live_ and the base64 of the origin.
func frontendURLFromPublishableKey(pk string) (string, error) {
	var rest string
	switch {
	case strings.HasPrefix(pk, "pk_test_"):
		rest = pk[len("pk_test_"):]
	case strings.HasPrefix(pk, "pk_live_"):
		rest = pk[len("pk_live_"):]
	default:
		return "", errors.New("a publishable key starts with pk_test_ or pk_live_")
	}
	rest = strings.TrimRight(rest, "$")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(rest)
		if err != nil {
			continue
		}
		origin := strings.TrimRight(string(b), "/")
		if !strings.Contains(origin, "://") {
			origin = "https://" + origin
		}
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			break
		}
		return origin, nil
	}
	return "", errors.New("it does not decode to a Frontend API origin")
}
