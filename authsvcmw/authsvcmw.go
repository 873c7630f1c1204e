// Package authsvcmw protects a net/http handler or a Connect service with
// authsvc: it asks authsvc who sent each request and puts the answer in
// the request's context.
//
// Three lines protect a service:
//
//	mw := authsvcmw.New("http://authsvc.auth:8080", authsvcmw.CallerToken(os.Getenv("AUTHSVC_TOKEN")))
//	mux.Handle(greetv1connect.NewGreetServiceHandler(greeter{}))
//	http.ListenAndServe(":8080", mw.Wrap(mux))
//
// and a handler reads the identity with [FromContext]. The middleware
// forwards the request's Authorization and Cookie headers to authsvc's
// Authenticate RPC, which accepts every Wacht credential authsvc is
// configured for: a session token as a bearer token or in a cookie,
// Wacht's session cookie, an API-auth key. A request with none is refused
// without a call.
//
// A refused request gets 401 (no or a bad credential) or 403 (a missing
// permission) with a WWW-Authenticate challenge, as authsvc's Envoy
// Check answers: RPCs in their own protocol's error format, other
// requests with a JSON body such as {"error":"expired"}. When authsvc
// cannot be reached the request is refused with 503.
//
// Verified sessions are kept in a small per-process cache until their
// token expires (at most a minute by default), keyed by a SHA-256 of the
// credential headers, never by the credential itself.
package authsvcmw

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/authn"
	"connectrpc.com/connect"
	"github.com/maypok86/otter/v2"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
)

// Identity is who sent a request, as authsvc's Authenticate answered.
// Its messages are shared between requests: read them, never change them.
type Identity struct {
	// Credential is the kind of credential that was accepted.
	Credential authsvcv1.Credential
	// Session is the verified session, for the session credentials.
	Session *authsvcv1.VerifySessionResponse
	// APIKey is the checked key, for CREDENTIAL_API_KEY.
	APIKey *authsvcv1.VerifyAPIKeyResponse
}

// UserID is the session's user, or the API-auth key's owner.
func (id *Identity) UserID() string {
	if id.Session != nil {
		return id.Session.GetUserId()
	}
	return id.APIKey.GetOwnerUserId()
}

type contextKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the identity the middleware put in ctx.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(*Identity)
	return id, ok && id != nil
}

// Option configures a Middleware.
type Option func(*config)

type config struct {
	httpClient    connect.HTTPClient
	clientOptions []connect.ClientOption
	callerToken   string
	permissions   []string
	revocation    bool
	cacheSize     int
	cacheTTL      time.Duration
	timeout       time.Duration
	headers       []string
	logger        *slog.Logger
	now           func() time.Time
}

// CallerToken is this service's own credential with authsvc: the token
// whose SHA-256 its callers file lists. It is sent as a bearer token on
// every call to authsvc.
func CallerToken(token string) Option { return func(c *config) { c.callerToken = token } }

// HTTPClient sets the client that reaches authsvc (default: one with
// HTTP/1.1 keep-alive connections and no overall timeout).
func HTTPClient(client connect.HTTPClient) Option {
	return func(c *config) { c.httpClient = client }
}

// ClientOptions adds options to the Connect client, such as
// connect.WithGRPC() or interceptors.
func ClientOptions(opts ...connect.ClientOption) Option {
	return func(c *config) { c.clientOptions = append(c.clientOptions, opts...) }
}

// RequirePermissions refuses, with 403, a credential that lacks any of
// these permissions (held in either the organization's or the
// workspace's list, or by the key).
func RequirePermissions(perms ...string) Option {
	return func(c *config) { c.permissions = append(c.permissions, perms...) }
}

// CheckRevocation also asks authsvc whether a session is still active.
// A cached answer is reused for at most the cache TTL, so keep that short
// (see CacheTTL) when a revoked session must be refused at once.
func CheckRevocation() Option { return func(c *config) { c.revocation = true } }

// CacheSize bounds how many verified sessions are kept (default 10000).
func CacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// CacheTTL is the longest a verified session is reused without asking
// authsvc again, within its token's lifetime (default 1m; 0 turns the
// cache off).
func CacheTTL(d time.Duration) Option { return func(c *config) { c.cacheTTL = d } }

// Timeout bounds each call to authsvc (default 5s), within the request's
// own deadline.
func Timeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// ForwardHeaders forwards more request headers to Authenticate, such as
// the header authsvc reads API-auth keys from
// (AUTHSVC_EXTAUTHZ_API_KEY_HEADER). Authorization, Cookie and
// X-Forwarded-For are always forwarded.
func ForwardHeaders(names ...string) Option {
	return func(c *config) { c.headers = append(c.headers, names...) }
}

// Logger receives a line when authsvc cannot be reached (default
// slog.Default()). Credentials are never logged.
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Middleware authenticates requests with authsvc. It is safe for
// concurrent use.
type Middleware struct {
	client    authsvcv1connect.AuthServiceClient
	cfg       config
	cache     *otter.Cache[[sha256.Size]byte, *cached]
	errWriter *connect.ErrorWriter
}

type cached struct {
	id      *Identity
	expires time.Time
}

// New returns a Middleware that asks the authsvc at baseURL, such as
// "http://authsvc.auth:8080".
func New(baseURL string, opts ...Option) *Middleware {
	cfg := config{
		cacheSize: 10000,
		cacheTTL:  time.Minute,
		timeout:   5 * time.Second,
		logger:    slog.Default(),
		now:       time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	clientOpts := cfg.clientOptions
	if cfg.callerToken != "" {
		clientOpts = append([]connect.ClientOption{connect.WithInterceptors(bearer(cfg.callerToken))}, clientOpts...)
	}
	m := &Middleware{
		client:    authsvcv1connect.NewAuthServiceClient(cfg.httpClient, strings.TrimRight(baseURL, "/"), clientOpts...),
		cfg:       cfg,
		errWriter: connect.NewErrorWriter(),
	}
	if cfg.cacheTTL > 0 && cfg.cacheSize > 0 {
		m.cache = otter.Must(&otter.Options[[sha256.Size]byte, *cached]{
			MaximumSize: cfg.cacheSize,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[[sha256.Size]byte, *cached]) time.Duration {
				return time.Until(e.Value.expires)
			}),
		})
	}
	return m
}

// Wrap returns a handler that serves authenticated requests with next,
// their identity in the context, and refuses the rest.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := m.Authenticate(r)
		if err != nil {
			m.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Authenticate asks authsvc (or the cache) who sent r. Its errors are
// Connect errors: Unauthenticated, PermissionDenied, ResourceExhausted,
// or Unavailable when authsvc could not answer.
func (m *Middleware) Authenticate(r *http.Request) (*Identity, error) {
	headers := m.headers(r)
	if headers["authorization"] == "" && headers["cookie"] == "" && !m.anyForwarded(headers) {
		return nil, refusal(connect.CodeUnauthenticated, authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MISSING)
	}
	var key [sha256.Size]byte
	if m.cache != nil {
		key = cacheKey(headers)
		if c, ok := m.cache.GetIfPresent(key); ok && m.cfg.now().Before(c.expires) {
			return c.id, nil
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), m.cfg.timeout)
	defer cancel()
	res, err := m.client.Authenticate(ctx, connect.NewRequest(&authsvcv1.AuthenticateRequest{
		Headers:             headers,
		Method:              r.Method,
		Path:                r.URL.Path,
		RequiredPermissions: m.cfg.permissions,
		CheckRevocation:     m.cfg.revocation,
	}))
	if err != nil {
		return nil, err
	}
	id := &Identity{Credential: res.Msg.GetCredential(), Session: res.Msg.GetSession(), APIKey: res.Msg.GetApiKey()}
	// Sessions only: an API-auth key's answer depends on the method and
	// path, and authsvc keeps those itself.
	if m.cache != nil && id.Session != nil {
		expires := id.Session.GetExpiresAt().AsTime()
		now := m.cfg.now()
		if limit := now.Add(m.cfg.cacheTTL); limit.Before(expires) {
			expires = limit
		}
		if expires.After(now) {
			m.cache.Set(key, &cached{id: id, expires: expires})
		}
	}
	return id, nil
}

// headers are the request headers Authenticate needs, names in lower
// case, repeated headers joined.
func (m *Middleware) headers(r *http.Request) map[string]string {
	out := make(map[string]string, 3+len(m.cfg.headers))
	put := func(name, sep string) {
		if v := r.Header.Values(name); len(v) > 0 {
			out[strings.ToLower(name)] = strings.Join(v, sep)
		}
	}
	put("Authorization", ", ")
	put("Cookie", "; ")
	put("X-Forwarded-For", ", ")
	for _, h := range m.cfg.headers {
		put(h, ", ")
	}
	return out
}

func (m *Middleware) anyForwarded(headers map[string]string) bool {
	for _, h := range m.cfg.headers {
		if headers[strings.ToLower(h)] != "" {
			return true
		}
	}
	return false
}

// cacheKey hashes the headers a session credential can come from. Given
// the same ones, Authenticate picks the same session credential.
func cacheKey(headers map[string]string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(headers["authorization"]))
	h.Write([]byte{0})
	h.Write([]byte(headers["cookie"]))
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

func refusal(code connect.Code, reason authsvcv1.TokenRefusalReason) *connect.Error {
	err := connect.NewError(code, errors.New(reasonName(reason)))
	if d, derr := connect.NewErrorDetail(&authsvcv1.TokenRefusal{Reason: reason}); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// refuse answers a refused request: in the RPC's own protocol, or as
// plain HTTP with a JSON body.
func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, err error) {
	code := connect.CodeOf(err)
	reason := refusalReason(err)
	var status int
	var challenge string
	switch code {
	case connect.CodeUnauthenticated:
		status = http.StatusUnauthorized
		if reason == authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_MISSING {
			challenge = `Bearer realm="authsvc"`
		} else {
			challenge = `Bearer error="invalid_token"`
		}
	case connect.CodePermissionDenied:
		status = http.StatusForbidden
		challenge = `Bearer error="insufficient_scope"`
	case connect.CodeResourceExhausted:
		status = http.StatusTooManyRequests
	default:
		m.cfg.logger.WarnContext(r.Context(), "authsvc could not authenticate a request",
			"code", code.String(), "error", err)
		status = http.StatusServiceUnavailable
		code = connect.CodeUnavailable
		reason = authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSPECIFIED
	}
	name := reasonName(reason)
	if name == "" {
		name = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if _, rpc := authn.InferProtocol(r); rpc {
		cerr := connect.NewError(code, errors.New(name))
		if reason != authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSPECIFIED {
			if d, derr := connect.NewErrorDetail(&authsvcv1.TokenRefusal{Reason: reason}); derr == nil {
				cerr.AddDetail(d)
			}
		}
		_ = m.errWriter.Write(w, r, cerr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":` + strconv.Quote(name) + "}\n"))
}

// refusalReason is the TokenRefusal detail's reason, if err carries one.
func refusalReason(err error) authsvcv1.TokenRefusalReason {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSPECIFIED
	}
	for _, d := range cerr.Details() {
		if v, derr := d.Value(); derr == nil {
			if tr, ok := v.(*authsvcv1.TokenRefusal); ok {
				return tr.GetReason()
			}
		}
	}
	return authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSPECIFIED
}

// reasonName is a refusal reason in lower case, such as "expired", as
// authsvc's Envoy Check writes it; empty for none.
func reasonName(r authsvcv1.TokenRefusalReason) string {
	if r == authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "TOKEN_REFUSAL_REASON_"))
}

// bearer sends the caller token on every call to authsvc.
func bearer(token string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	})
}
