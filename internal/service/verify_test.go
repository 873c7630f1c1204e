package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

type fixedVerifier struct{ claims *sessiontoken.Claims }

func (v fixedVerifier) Verify(context.Context, string) (*sessiontoken.Claims, error) {
	return v.claims, nil
}

// fakeSessions answers Get from cached and Reload from fresh, counting
// reloads.
type fakeSessions struct {
	cached, fresh cache.Result[[]*authsvcv1.Session]
	reloads       int
	reloadClass   budget.Class // of the latest reload
}

func (f *fakeSessions) Get(context.Context, string) (cache.Result[[]*authsvcv1.Session], error) {
	if f.cached.Value == nil {
		return f.cached, cache.ErrNotFound
	}
	return f.cached, nil
}

func (f *fakeSessions) Reload(ctx context.Context, _ string) (cache.Result[[]*authsvcv1.Session], error) {
	f.reloads++
	f.reloadClass = budget.ClassFrom(ctx)
	return f.fresh, nil
}

func (f *fakeSessions) Invalidate(context.Context, string) error { return nil }

type noUsers struct{}

func (noUsers) Get(context.Context, string) (cache.Result[*authsvcv1.User], error) {
	return cache.Result[*authsvcv1.User]{}, cache.ErrNotFound
}

type noWacht struct{}

// revokingWacht revokes every sign-in and records the class each
// revocation spent the budget as.
type revokingWacht struct {
	noWacht
	classes []budget.Class
}

func (w *revokingWacht) RevokeSignIn(ctx context.Context, _, _ string) error {
	w.classes = append(w.classes, budget.ClassFrom(ctx))
	return nil
}

func TestRevokeSessionSpendsAsWrite(t *testing.T) {
	t.Parallel()
	sessions := &fakeSessions{fresh: cache.Result[[]*authsvcv1.Session]{Value: []*authsvcv1.Session{{Id: "91", SessionId: "100"}}}}
	wacht := &revokingWacht{}
	s, err := NewAuthServer(AuthConfig{
		Verifier: fixedVerifier{}, Users: noUsers{}, Sessions: sessions, Wacht: wacht,
		PageTokenKey: []byte("0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.RevokeSession(t.Context(), connect.NewRequest(&authsvcv1.RevokeSessionRequest{
		UserId: "7", Target: &authsvcv1.RevokeSessionRequest_SessionId{SessionId: "100"}}))
	if err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if len(wacht.classes) != 1 || wacht.classes[0] != budget.Write || sessions.reloadClass != budget.Write {
		t.Errorf("revocation spent as %v and its lookup as %v, want write for both", wacht.classes, sessions.reloadClass)
	}
}

func (noWacht) RevokeSignIn(context.Context, string, string) error { return errors.New("unused") }
func (noWacht) CheckAuthz(context.Context, wachtclient.AuthzCheckRequest) (*wachtclient.AuthzCheckResponse, error) {
	return nil, errors.New("unused")
}

func TestCheckRevocation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	signIn := func(sid string, expires time.Time) *authsvcv1.Session {
		return &authsvcv1.Session{Id: "9" + sid, SessionId: sid, ExpiresAt: timestamppb.New(expires)}
	}
	active := []*authsvcv1.Session{signIn("100", now.Add(time.Hour))}
	other := []*authsvcv1.Session{signIn("200", now.Add(time.Hour))}
	expired := []*authsvcv1.Session{signIn("100", now.Add(-time.Second))}
	ended := []*authsvcv1.Session{signIn("100", now.Add(time.Hour))}
	ended[0].EndedAt = timestamppb.New(now.Add(-time.Second))
	result := func(list []*authsvcv1.Session, src cache.Source, age time.Duration) cache.Result[[]*authsvcv1.Session] {
		return cache.Result[[]*authsvcv1.Session]{Value: list, Source: src, FetchedAt: now.Add(-age)}
	}
	const leeway = 5 * time.Second
	tests := []struct {
		name        string
		issuedAgo   time.Duration // the token's iat, before now
		cached      cache.Result[[]*authsvcv1.Session]
		fresh       cache.Result[[]*authsvcv1.Session]
		wantRevoked bool
		wantReloads int
	}{
		{"active_in_cache", 20 * time.Second, result(active, cache.SourceMemory, 10*time.Second), result(nil, cache.SourceLoad, 0), false, 0},
		{"new_session_found_on_reload", time.Second, result(other, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), false, 1},
		{"signed_in_just_after_the_list", 200 * time.Millisecond, result(other, cache.SourceMemory, 500*time.Millisecond), result(active, cache.SourceLoad, 0), false, 1},
		{"issued_within_the_leeway_before_the_list", 12 * time.Second, result(other, cache.SourcePostgres, 10*time.Second), result(active, cache.SourceLoad, 0), false, 1},
		{"absent_after_reload", time.Second, result(other, cache.SourcePostgres, 10*time.Second), result(other, cache.SourceLoad, 0), true, 1},
		{"absent_from_a_list_fetched_after_iat", 30 * time.Second, result(other, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), true, 0},
		{"absent_from_a_list_just_loaded", time.Second, result(other, cache.SourceLoad, 0), result(active, cache.SourceLoad, 0), true, 0},
		{"user_not_found_is_not_asked_again", time.Second, result(nil, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), true, 0},
		{"expired_sign_in_in_a_list_fetched_after_iat", 30 * time.Second, result(expired, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), true, 0},
		{"expired_sign_in_in_an_older_list", time.Second, result(expired, cache.SourceMemory, 10*time.Second), result(expired, cache.SourceLoad, 0), true, 1},
		{"ended_by_a_webhook_in_an_older_list", time.Second, result(ended, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			claims := &sessiontoken.Claims{Subject: "7", SessionID: "100", OrganizationPermissions: []string{"orders:read"},
				IssuedAt: now.Add(-tt.issuedAgo), ExpiresAt: now.Add(-tt.issuedAgo + 35*time.Second)}
			sessions := &fakeSessions{cached: tt.cached, fresh: tt.fresh}
			s, err := NewAuthServer(AuthConfig{
				Verifier: fixedVerifier{claims}, Users: noUsers{}, Sessions: sessions, Wacht: noWacht{},
				PageTokenKey: []byte("0123456789abcdef"), ClockLeeway: leeway, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Verify(t.Context(), "token", []string{"orders:read"}, true)
			if revoked := errors.Is(err, errRevoked); revoked != tt.wantRevoked || (err != nil && !revoked) {
				t.Errorf("Verify = %v, want revoked %v", err, tt.wantRevoked)
			}
			if sessions.reloads != tt.wantReloads {
				t.Errorf("reloads = %d, want %d", sessions.reloads, tt.wantReloads)
			}
			if sessions.reloads > 0 && sessions.reloadClass != budget.Revocation {
				t.Errorf("reload spent the Wacht budget as %v, want revocation", sessions.reloadClass)
			}
		})
	}
}

// TestRevokedTokenReplay replays a token whose session has ended, while
// the cached list ages and is replaced: the first check may ask Wacht,
// every later one is refused from memory, until the token expires.
func TestRevokedTokenReplay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	other := []*authsvcv1.Session{{Id: "9200", SessionId: "200", ExpiresAt: timestamppb.New(now.Add(time.Hour))}}
	claims := &sessiontoken.Claims{Subject: "7", SessionID: "100", IssuedAt: now, ExpiresAt: now.Add(35 * time.Second)}
	clock := now
	sessions := &fakeSessions{
		// Cached before the token was issued: the first check must ask.
		cached: cache.Result[[]*authsvcv1.Session]{Value: other, Source: cache.SourceMemory, FetchedAt: now.Add(-time.Minute)},
		fresh:  cache.Result[[]*authsvcv1.Session]{Value: other, Source: cache.SourceLoad, FetchedAt: now},
	}
	s, err := NewAuthServer(AuthConfig{
		Verifier: fixedVerifier{claims}, Users: noUsers{}, Sessions: sessions, Wacht: noWacht{},
		PageTokenKey: []byte("0123456789abcdef"), ClockLeeway: time.Second, Now: func() time.Time { return clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 35 {
		clock = now.Add(time.Duration(i) * time.Second)
		if _, err := s.Verify(t.Context(), "token", nil, true); !errors.Is(err, errRevoked) {
			t.Fatalf("check %d: Verify = %v, want revoked", i, err)
		}
	}
	if sessions.reloads != 1 {
		t.Errorf("reloads over the token's life = %d, want 1", sessions.reloads)
	}
	// Past the token's expiry (and leeway) it is forgotten.
	clock = now.Add(40 * time.Second)
	if s.revoked.has(claims, clock) {
		t.Error("a revoked session is remembered past its token's expiry")
	}
}

func TestRequiredPermissions(t *testing.T) {
	t.Parallel()
	claims := &sessiontoken.Claims{Subject: "7", SessionID: "1",
		OrganizationPermissions: []string{"org:read"}, WorkspacePermissions: []string{"ws:write"}}
	s, err := NewAuthServer(AuthConfig{
		Verifier: fixedVerifier{claims}, Users: noUsers{}, Sessions: &fakeSessions{}, Wacht: noWacht{},
		PageTokenKey: []byte("0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		required []string
		wantErr  bool
	}{
		{nil, false},
		{[]string{"org:read"}, false},
		{[]string{"org:read", "ws:write"}, false},
		{[]string{"ws:write", "org:admin"}, true},
		{[]string{"ws:read"}, true},
	}
	for _, tt := range tests {
		_, err := s.Verify(t.Context(), "token", tt.required, false)
		var perm *permissionError
		if (err != nil) != tt.wantErr || (err != nil && !errors.As(err, &perm)) {
			t.Errorf("Verify(required %v) = %v, want permission error %v", tt.required, err, tt.wantErr)
		}
	}
}
