// Package service implements authsvc's Connect services over the token
// verifier, the caches and the Wacht client, which it reaches through
// small interfaces of its own.
package service

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Verifier verifies session tokens without a network call.
type Verifier interface {
	Verify(ctx context.Context, token string) (*sessiontoken.Claims, error)
}

// UserCache serves users by id, read through to Wacht.
type UserCache interface {
	Get(ctx context.Context, userID string) (cache.Result[*authsvcv1.User], error)
}

// SessionCache serves each user's sign-ins (expired ones included, revoked
// ones not), read through to Wacht.
type SessionCache interface {
	Get(ctx context.Context, userID string) (cache.Result[[]*authsvcv1.Session], error)
	Reload(ctx context.Context, userID string) (cache.Result[[]*authsvcv1.Session], error)
	Invalidate(ctx context.Context, userID string) error
}

// Wacht is the part of Wacht's API that AuthService calls directly.
type Wacht interface {
	RevokeSignIn(ctx context.Context, userID, signInID string) error
	CheckAuthz(ctx context.Context, req wachtclient.AuthzCheckRequest) (*wachtclient.AuthzCheckResponse, error)
}

// Bounds of AuthConfig.APIKeyCacheTTL.
const (
	// DefaultAPIKeyCacheTTL is the reuse of allowed VerifyAPIKey answers
	// that the command sets unless told otherwise.
	DefaultAPIKeyCacheTTL = 5 * time.Second
	// MaxAPIKeyCacheTTL caps it: a revoked key must stop working soon.
	MaxAPIKeyCacheTTL = 10 * time.Second
)

// AuthConfig holds what AuthServer needs.
type AuthConfig struct {
	Logger   *slog.Logger
	Verifier Verifier
	Users    UserCache
	Sessions SessionCache
	Wacht    Wacht
	// PageTokenKey signs page tokens; every replica must use the same key.
	PageTokenKey []byte
	// APIKeyCacheTTL is how long an allowed VerifyAPIKey answer is reused,
	// at most 10s; 0 turns reuse off. An answer that carries rate limits
	// is never reused: each call must reach the gateway to count.
	APIKeyCacheTTL time.Duration
	// ClockLeeway is the clock skew allowed between Wacht and this
	// service, as the token verifier allows it; 0 means 5s.
	ClockLeeway time.Duration
	// Authenticate configures the credentials Authenticate and Envoy's
	// Check accept.
	Authenticate AuthenticateConfig
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AuthServer implements [authsvcv1connect.AuthServiceHandler].
type AuthServer struct {
	authsvcv1connect.UnimplementedAuthServiceHandler

	logger   *slog.Logger
	errs     errorMapper
	verifier Verifier
	users    UserCache
	sessions SessionCache
	wacht    Wacht
	pages    pageTokens
	now      func() time.Time

	leeway  time.Duration
	revoked *revokedSessions

	apiKeys *otter.Cache[[sha256.Size]byte, *authsvcv1.VerifyAPIKeyResponse]

	authn AuthenticateConfig
}

// NewAuthServer returns the AuthService implementation.
func NewAuthServer(cfg AuthConfig) (*AuthServer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Verifier == nil || cfg.Users == nil || cfg.Sessions == nil || cfg.Wacht == nil {
		return nil, errors.New("new auth server: verifier, users, sessions and wacht are required")
	}
	if len(cfg.PageTokenKey) < 16 {
		return nil, errors.New("new auth server: a page token key of at least 16 bytes is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockLeeway <= 0 {
		cfg.ClockLeeway = 5 * time.Second
	}
	revoked, err := newRevokedSessions(cfg.ClockLeeway, cfg.Now)
	if err != nil {
		return nil, err
	}
	if cfg.Authenticate.Credentials == 0 {
		cfg.Authenticate.Credentials = AllCredentials
	}
	cfg.Authenticate.APIKeyHeader = strings.ToLower(strings.TrimSpace(cfg.Authenticate.APIKeyHeader))
	ttl := min(cfg.APIKeyCacheTTL, MaxAPIKeyCacheTTL)
	var apiKeys *otter.Cache[[sha256.Size]byte, *authsvcv1.VerifyAPIKeyResponse]
	if ttl > 0 {
		apiKeys, err = otter.New(&otter.Options[[sha256.Size]byte, *authsvcv1.VerifyAPIKeyResponse]{
			MaximumSize:      10_000,
			ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, *authsvcv1.VerifyAPIKeyResponse](ttl),
		})
		if err != nil {
			return nil, err
		}
	}
	return &AuthServer{
		logger:   cfg.Logger,
		errs:     errorMapper{logger: cfg.Logger},
		verifier: cfg.Verifier,
		users:    cfg.Users,
		sessions: cfg.Sessions,
		wacht:    cfg.Wacht,
		pages:    pageTokens{key: cfg.PageTokenKey},
		now:      cfg.Now,
		leeway:   cfg.ClockLeeway,
		revoked:  revoked,
		apiKeys:  apiKeys,
		authn:    cfg.Authenticate,
	}, nil
}
