package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
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
}

func (f *fakeSessions) Get(context.Context, string) (cache.Result[[]*authsvcv1.Session], error) {
	if f.cached.Value == nil {
		return f.cached, cache.ErrNotFound
	}
	return f.cached, nil
}

func (f *fakeSessions) Reload(context.Context, string) (cache.Result[[]*authsvcv1.Session], error) {
	f.reloads++
	return f.fresh, nil
}

func (f *fakeSessions) Invalidate(context.Context, string) error { return nil }

type noUsers struct{}

func (noUsers) Get(context.Context, string) (cache.Result[*authsvcv1.User], error) {
	return cache.Result[*authsvcv1.User]{}, cache.ErrNotFound
}

type noWacht struct{}

func (noWacht) RevokeSignIn(context.Context, string, string) error { return errors.New("unused") }
func (noWacht) CheckAuthz(context.Context, wachtclient.AuthzCheckRequest) (*wachtclient.AuthzCheckResponse, error) {
	return nil, errors.New("unused")
}

func TestCheckRevocation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	claims := &sessiontoken.Claims{Subject: "7", SessionID: "100", OrganizationPermissions: []string{"orders:read"}}
	signIn := func(sid string, expires time.Time) *authsvcv1.Session {
		return &authsvcv1.Session{Id: "9" + sid, SessionId: sid, ExpiresAt: timestamppb.New(expires)}
	}
	active := []*authsvcv1.Session{signIn("100", now.Add(time.Hour))}
	other := []*authsvcv1.Session{signIn("200", now.Add(time.Hour))}
	expired := []*authsvcv1.Session{signIn("100", now.Add(-time.Second))}
	result := func(list []*authsvcv1.Session, src cache.Source, age time.Duration) cache.Result[[]*authsvcv1.Session] {
		return cache.Result[[]*authsvcv1.Session]{Value: list, Source: src, FetchedAt: now.Add(-age)}
	}
	tests := []struct {
		name        string
		cached      cache.Result[[]*authsvcv1.Session]
		fresh       cache.Result[[]*authsvcv1.Session]
		wantRevoked bool
		wantReloads int
	}{
		{"active_in_cache", result(active, cache.SourceMemory, 10*time.Second), result(nil, cache.SourceLoad, 0), false, 0},
		{"new_session_found_on_reload", result(other, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), false, 1},
		{"absent_after_reload", result(other, cache.SourcePostgres, 10*time.Second), result(other, cache.SourceLoad, 0), true, 1},
		{"absent_from_a_list_just_loaded", result(other, cache.SourceLoad, 0), result(active, cache.SourceLoad, 0), true, 0},
		{"absent_from_a_list_under_a_second_old", result(other, cache.SourceMemory, 500*time.Millisecond), result(active, cache.SourceLoad, 0), true, 0},
		{"user_not_found_is_not_asked_again", result(nil, cache.SourceMemory, 10*time.Second), result(active, cache.SourceLoad, 0), true, 0},
		{"expired_sign_in", result(expired, cache.SourceMemory, 10*time.Second), result(expired, cache.SourceLoad, 0), true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sessions := &fakeSessions{cached: tt.cached, fresh: tt.fresh}
			s, err := NewAuthServer(AuthConfig{
				Verifier: fixedVerifier{claims}, Users: noUsers{}, Sessions: sessions, Wacht: noWacht{},
				PageTokenKey: []byte("0123456789abcdef"), Now: func() time.Time { return now },
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
		})
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
