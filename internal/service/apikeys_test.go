package service

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// gateway answers every check as allowed, with the given rate limits,
// and counts the checks.
type gateway struct {
	noWacht
	limits []wachtclient.AuthzRateLimit
	checks atomic.Int32
}

func (g *gateway) CheckAuthz(context.Context, wachtclient.AuthzCheckRequest) (*wachtclient.AuthzCheckResponse, error) {
	g.checks.Add(1)
	return &wachtclient.AuthzCheckResponse{
		Allowed:    true,
		Identity:   &wachtclient.AuthzIdentity{KeyID: "501", AppSlug: "orders"},
		RateLimits: g.limits,
	}, nil
}

// TestVerifyAPIKeyReuse checks when an allowed answer is reused: never
// when it carries rate limits (each call must reach the gateway, which
// counts it) and never with reuse turned off.
func TestVerifyAPIKeyReuse(t *testing.T) {
	t.Parallel()
	limited := []wachtclient.AuthzRateLimit{{Rule: "10/1m", Remaining: 9, Limit: 10}}
	tests := []struct {
		name       string
		ttl        time.Duration
		limits     []wachtclient.AuthzRateLimit
		wantChecks int32
	}{
		{"unlimited_key_reused", DefaultAPIKeyCacheTTL, nil, 1},
		{"rate_limited_key_not_reused", DefaultAPIKeyCacheTTL, limited, 5},
		{"reuse_off", 0, nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gw := &gateway{limits: tt.limits}
			s, err := NewAuthServer(AuthConfig{
				Verifier: fixedVerifier{}, Users: noUsers{}, Sessions: &fakeSessions{}, Wacht: gw,
				PageTokenKey: []byte("0123456789abcdef"), APIKeyCacheTTL: tt.ttl,
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				res, err := s.VerifyAPIKey(t.Context(), connect.NewRequest(&authsvcv1.VerifyAPIKeyRequest{
					Key: "orders_k3y", Method: "GET", Resource: "/orders",
				}))
				if err != nil || !res.Msg.GetAllowed() || res.Msg.GetKeyId() != "501" {
					t.Fatalf("call %d: VerifyAPIKey = %v, %v; want allowed key 501", i, res, err)
				}
			}
			if got := gw.checks.Load(); got != tt.wantChecks {
				t.Errorf("gateway checks for 5 calls = %d, want %d", got, tt.wantChecks)
			}
		})
	}
}
