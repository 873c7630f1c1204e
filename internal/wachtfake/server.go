// Package wachtfake emulates Wacht's Backend API, Gateway and Frontend API (key set and token exchange) in memory, for tests and the dev server.
package wachtfake

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults that mirror Wacht.
const (
	// DefaultTokenLifetime is the lifetime of a session token minted by the
	// default JWT template: 30 s plus 5 s of allowed clock skew.
	DefaultTokenLifetime = 35 * time.Second
	// DefaultRequestsPerMinute is the Backend API budget of a deployment,
	// the Gateway's default rule of 1000 requests a minute per app.
	DefaultRequestsPerMinute = 1000
	// DefaultSignInLifetime is the lifetime given to a seeded sign-in
	// that has no ExpiresAt.
	DefaultSignInLifetime = 7 * 24 * time.Hour
)

// firstID is where the snowflake-like id counter starts; Wacht's ids are
// 17-digit Sonyflake values such as 24239923154394947.
const firstID int64 = 24_380_000_000_000_000

// ErrNotFound is wrapped by seeding and inspection methods when a user,
// sign-in, app or key does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by seeding methods when their input is unusable.
var ErrInvalid = errors.New("invalid input")

// Options configures a [Server].
type Options struct {
	// Issuer is the Frontend API origin, e.g. "http://127.0.0.1:4567". It
	// becomes the `iss` claim of minted tokens and may be set later with
	// [Server.SetIssuer].
	Issuer string
	// APIKey is the Backend API key that Bearer authentication must match.
	// It must have Wacht's format: at least 46 characters, the last 43 of
	// them URL-safe base64 (as "sk_" + 43 characters). Empty means a key in Wacht's format ("sk_" + 43 characters) is
	// generated; read it with [Server.APIKey].
	APIKey string
	// TokenLifetime is the default lifetime of minted session tokens;
	// zero means [DefaultTokenLifetime].
	TokenLifetime time.Duration
	// Now is the clock used for timestamps, token times, expiry checks and
	// rate limits; nil means time.Now. Injected latency uses real time.
	Now func() time.Time
	// RequestsPerMinute is the Backend API budget shared by every request
	// of the deployment; zero means [DefaultRequestsPerMinute]. Over it the
	// Backend API answers 429 without a Retry-After header.
	RequestsPerMinute int
	// BackendLatency is added to every Backend API request before it is
	// answered, as the network and Wacht would; it may be changed with
	// [Server.SetBackendLatency]. Injected latency uses real time.
	BackendLatency time.Duration
	// WebhookClient sends webhooks in [Server.SendWebhook]; nil means a
	// client with a 10 s timeout.
	WebhookClient *http.Client
}

// Server is an in-memory Wacht deployment served over HTTP. One handler
// serves the Backend API, the Gateway's /v1/authz/check and the Frontend
// API's /.well-known/jwks.json and /session/token, whose paths do not
// collide. It is safe for
// concurrent use.
type Server struct {
	now           func() time.Time
	tokenLifetime time.Duration
	apiKeyHash    [sha256.Size]byte
	apiKey        string
	deploymentID  string
	webhookClient *http.Client
	routes        []route

	mu       sync.Mutex
	nextID   int64
	issuer   string
	key      *signingKey
	users    map[string]*User
	signIns  map[string]*SignIn
	apps     map[string]*APIAuthApp
	keys     map[string]*apiKeyRecord
	keyHash  map[string]string // sha256 hex of secret -> key id
	limiters map[string]*windowLimiter
	// frontendSessions are the sessions the Frontend API knows, by the
	// sha256 of their cookie or development session value.
	frontendSessions map[[sha256.Size]byte]*frontendSession
	exchangeLimiters map[string]*windowLimiter
	calls            map[string]int
	faults           map[string]*Fault

	// The Backend API's budget and latency, guarded by mu.
	backendLimit   *slidingWindow
	backendLatency time.Duration
	rateLimited    int

	// Webhook deliveries, guarded by mu.
	endpoint     webhookEndpoint
	pending      []pendingEvent
	webhookStats WebhookStats
}

// New returns a Server with one signing key and no data.
func New(opts Options) (*Server, error) {
	if opts.TokenLifetime < 0 {
		return nil, fmt.Errorf("new server: negative token lifetime: %w", ErrInvalid)
	}
	if opts.RequestsPerMinute < 0 || opts.BackendLatency < 0 {
		return nil, fmt.Errorf("new server: negative requests per minute or latency: %w", ErrInvalid)
	}
	s := &Server{
		now:              opts.Now,
		tokenLifetime:    opts.TokenLifetime,
		webhookClient:    opts.WebhookClient,
		routes:           newRoutes(),
		nextID:           firstID,
		issuer:           opts.Issuer,
		users:            map[string]*User{},
		signIns:          map[string]*SignIn{},
		apps:             map[string]*APIAuthApp{},
		keys:             map[string]*apiKeyRecord{},
		keyHash:          map[string]string{},
		limiters:         map[string]*windowLimiter{},
		frontendSessions: map[[sha256.Size]byte]*frontendSession{},
		exchangeLimiters: map[string]*windowLimiter{},
		calls:            map[string]int{},
		faults:           map[string]*Fault{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tokenLifetime == 0 {
		s.tokenLifetime = DefaultTokenLifetime
	}
	if s.webhookClient == nil {
		s.webhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	rpm := opts.RequestsPerMinute
	if rpm == 0 {
		rpm = DefaultRequestsPerMinute
	}
	s.backendLimit = newSlidingWindow(rpm, time.Minute)
	s.backendLatency = opts.BackendLatency

	s.apiKey = opts.APIKey
	if s.apiKey != "" && !validKeyFormat(s.apiKey) {
		return nil, fmt.Errorf("new server: api key is not in Wacht's format: %w", ErrInvalid)
	}
	if s.apiKey == "" {
		secret, err := randomSecret("sk")
		if err != nil {
			return nil, fmt.Errorf("new server: %w", err)
		}
		s.apiKey = secret
	}
	s.apiKeyHash = sha256.Sum256([]byte(s.apiKey))
	s.deploymentID = s.newIDLocked()

	key, err := s.newSigningKeyLocked()
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s.key = key
	return s, nil
}

// SetRequestsPerMinute replaces the Backend API budget with a new one of
// rpm requests a minute, none of them spent yet.
func (s *Server) SetRequestsPerMinute(rpm int) {
	if rpm <= 0 {
		rpm = DefaultRequestsPerMinute
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backendLimit = newSlidingWindow(rpm, time.Minute)
}

// SetBackendLatency sets the latency added to every Backend API request.
func (s *Server) SetBackendLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backendLatency = max(d, 0)
}

// RateLimited returns how many Backend API requests were answered 429
// because the deployment's budget was spent.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}

// SetIssuer sets the Frontend API origin used as the `iss` claim.
func (s *Server) SetIssuer(origin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuer = origin
}

// Issuer returns the Frontend API origin used as the `iss` claim.
func (s *Server) Issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer
}

// APIKey returns the Backend API key that Bearer authentication accepts.
func (s *Server) APIKey() string { return s.apiKey }

// DeploymentID returns the id of the emulated deployment.
func (s *Server) DeploymentID() string { return s.deploymentID }

// newIDLocked returns the next snowflake-like id; s.mu must be held or s
// not yet shared.
func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatInt(s.nextID, 10)
}

// stamp returns the clock's time as Postgres would store it: UTC with
// microsecond precision.
func (s *Server) stamp() time.Time { return dbTime(s.now()) }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// randomSecret returns prefix + "_" + 43 URL-safe base64 characters, the
// format Wacht uses for API keys.
func randomSecret(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return prefix + "_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// canonicalID parses a decimal i64 id the way Wacht's path extractor does
// and returns its canonical form.
func canonicalID(raw string) (string, bool) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}
