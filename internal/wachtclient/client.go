// Package wachtclient is a typed client for Wacht's Backend API, Gateway and Frontend API key set.
package wachtclient

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultGatewayURL is Wacht's public gateway.
	DefaultGatewayURL = "https://gateway.wacht.dev"
	// DefaultRequestsPerMinute is Wacht's Backend API budget per deployment.
	DefaultRequestsPerMinute = 1000
	// DefaultMaxRetries is how often an idempotent call is retried.
	DefaultMaxRetries = 3
	// DefaultMaxResponseBytes bounds a response body (4 MiB).
	DefaultMaxResponseBytes = 4 << 20
	// DefaultRetryBaseDelay is the first backoff delay.
	DefaultRetryBaseDelay = 250 * time.Millisecond
	// DefaultRetryMaxDelay caps a backoff delay and a Retry-After.
	DefaultRetryMaxDelay = 10 * time.Second

	defaultVersion        = "dev"
	defaultRequestTimeout = 15 * time.Second
)

// Config configures a Client. Only APIURL is required.
type Config struct {
	// APIURL is the Backend API base, e.g. https://api.wacht.dev.
	APIURL string
	// GatewayURL is the Gateway base; default DefaultGatewayURL.
	GatewayURL string
	// FrontendURL is the Frontend API origin serving /.well-known/jwks.json.
	// It may be empty when FetchJWKS is not used.
	FrontendURL string
	// APIKey is the Backend API key. It is needed by Backend API calls only
	// (not by Health, CheckAuthz or FetchJWKS). It is secret: formatting or
	// logging a Config prints [REDACTED] instead.
	APIKey string `json:"-"`
	// HTTPClient sends the requests. Nil means a client with a 15 s
	// per-attempt timeout that does not follow redirects.
	HTTPClient *http.Client
	// UserAgent is sent on every request; default "authsvc/<Version>".
	UserAgent string
	// Version names the authsvc build in the default UserAgent; default "dev".
	Version string
	// Limiter admits every Backend API request, retries included. Calls
	// to /health, the Gateway and the Frontend API are not counted by
	// Wacht against its budget and are not admitted. Nil means a token
	// bucket for this process alone, of RequestsPerMinute and Burst.
	Limiter Limiter `json:"-"`
	// RequestsPerMinute is the budget of the token bucket used without a
	// Limiter; default 1000, Wacht's per-deployment budget.
	RequestsPerMinute int
	// Burst is how many requests the token bucket used without a Limiter
	// lets go out at once before the steady rate
	// applies; default RequestsPerMinute/20 (at least 1). The steady rate is
	// lowered by Burst so that no minute sees more than RequestsPerMinute.
	Burst int
	// MaxRetries is how many times an idempotent call is retried after a
	// 429, 502, 503, 504 or connection failure; default 3, negative means
	// never. Calls that change state are never retried.
	MaxRetries int
	// RetryBaseDelay is the first backoff delay; default 250 ms, at most
	// RetryMaxDelay. Delays double at each retry, randomised by ±50%.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps a backoff delay and any Retry-After; default 10 s.
	RetryMaxDelay time.Duration
	// MaxResponseBytes bounds a response body; default 4 MiB. Larger bodies
	// fail with ErrInvalidResponse.
	MaxResponseBytes int64
	// Logger receives debug logs about retries; nil discards them.
	Logger *slog.Logger
	// Observer is told of every attempt, for metrics; nil means none.
	Observer Observer `json:"-"`
}

// Client calls Wacht. It is safe for concurrent use. Formatting or logging a
// Client never prints the API key.
type Client struct {
	apiURL      string
	gatewayURL  string
	frontendURL string
	// apiKey returns the Backend API key, or is nil without one. A func
	// prints as an address, so not even reflection-based printing of a
	// Client shows the key.
	apiKey     func() string
	hc         *http.Client
	userAgent  string
	limiter    Limiter
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	maxBody    int64
	log        *slog.Logger
	observer   Observer
}

// New validates cfg, applies defaults and returns a Client. URLs must be
// absolute http or https URLs without user info, query or fragment.
func New(cfg Config) (*Client, error) {
	apiURL, err := baseURL("api url", cfg.APIURL, true)
	if err != nil {
		return nil, err
	}
	gatewayURL, err := baseURL("gateway url", cmp.Or(cfg.GatewayURL, DefaultGatewayURL), true)
	if err != nil {
		return nil, err
	}
	frontendURL, err := baseURL("frontend url", cfg.FrontendURL, false)
	if err != nil {
		return nil, err
	}
	if !validHeaderValue(cfg.APIKey) {
		return nil, errors.New("wachtclient: api key contains characters not allowed in a header")
	}
	rpm := cmp.Or(cfg.RequestsPerMinute, DefaultRequestsPerMinute)
	if rpm < 0 {
		return nil, fmt.Errorf("wachtclient: requests per minute %d is negative", rpm)
	}
	burst := cmp.Or(cfg.Burst, max(1, rpm/20))
	if burst < 0 || burst > rpm {
		return nil, fmt.Errorf("wachtclient: burst %d must be between 1 and requests per minute %d", burst, rpm)
	}
	perSecond := float64(rpm-burst) / 60
	if rpm == burst {
		perSecond = float64(rpm) / 60
	}
	var limiter Limiter = localLimiter{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
	if cfg.Limiter != nil {
		limiter = cfg.Limiter
	}
	maxRetries := cmp.Or(cfg.MaxRetries, DefaultMaxRetries)
	if maxRetries < 0 {
		maxRetries = 0
	}
	baseDelay := cmp.Or(cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	maxDelay := cmp.Or(cfg.RetryMaxDelay, DefaultRetryMaxDelay)
	if baseDelay < 0 || maxDelay < 0 {
		return nil, fmt.Errorf("wachtclient: retry delays %s and %s must not be negative", baseDelay, maxDelay)
	}
	baseDelay = min(baseDelay, maxDelay)
	maxBody := cmp.Or(cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	if maxBody < 0 {
		return nil, fmt.Errorf("wachtclient: max response bytes %d is negative", maxBody)
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "authsvc/" + cmp.Or(cfg.Version, defaultVersion)
	}
	if !validHeaderValue(ua) {
		return nil, errors.New("wachtclient: user agent contains characters not allowed in a header")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	observer := cfg.Observer
	if observer == nil {
		observer = nopObserver{}
	}
	var apiKey func() string
	if key := cfg.APIKey; key != "" {
		apiKey = func() string { return key }
	}
	return &Client{
		apiURL:      apiURL,
		gatewayURL:  gatewayURL,
		frontendURL: frontendURL,
		apiKey:      apiKey,
		hc:          hc,
		userAgent:   ua,
		limiter:     limiter,
		maxRetries:  maxRetries,
		baseDelay:   baseDelay,
		maxDelay:    maxDelay,
		maxBody:     maxBody,
		log:         logger,
		observer:    observer,
	}, nil
}

// baseURL validates a base URL and returns it without a trailing slash.
func baseURL(name, raw string, required bool) (string, error) {
	if raw == "" {
		if required {
			return "", fmt.Errorf("wachtclient: %s is required", name)
		}
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The inner error leaves out the raw URL, which may hold a secret
		// put there by mistake.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return "", fmt.Errorf("wachtclient: parse %s: %w", name, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("wachtclient: %s must be an absolute http or https url", name)
	case u.Host == "":
		return "", fmt.Errorf("wachtclient: %s has no host", name)
	case u.User != nil:
		return "", fmt.Errorf("wachtclient: %s must not contain user info", name)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("wachtclient: %s must not contain a query or fragment", name)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// defaultHTTPClient bounds each attempt and does not follow redirects, so
// that the Authorization header is never sent to another origin.
func defaultHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 5 * time.Second
	tr.ResponseHeaderTimeout = 10 * time.Second
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport: tr,
		Timeout:   defaultRequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// validHeaderValue reports whether s holds only visible ASCII and spaces.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
