package service

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// UserSource reads users from Wacht.
type UserSource interface {
	GetUser(ctx context.Context, userID string) (*wachtclient.UserDetails, error)
}

// SignInSource reads a user's sign-ins from Wacht.
type SignInSource interface {
	ListUserSessions(ctx context.Context, userID string, includeExpired bool) ([]wachtclient.SignIn, error)
}

// LoadUser returns the users cache's loader: Wacht's user details,
// converted once, at load time, to the API's User.
func LoadUser(src UserSource) cache.Loader[*authsvcv1.User] {
	return func(ctx context.Context, id string) (*authsvcv1.User, error) {
		u, err := src.GetUser(loadContext(ctx), id)
		if err != nil {
			return nil, loadError(ctx, err)
		}
		return UserFromWacht(u), nil
	}
}

// LoadSessions returns the session lists cache's loader: every sign-in of
// the user that is not revoked, expired ones included, so that one cached
// list answers both kinds of ListSessions.
func LoadSessions(src SignInSource) cache.Loader[[]*authsvcv1.Session] {
	return func(ctx context.Context, userID string) ([]*authsvcv1.Session, error) {
		list, err := src.ListUserSessions(loadContext(ctx), userID, true)
		if err != nil {
			return nil, loadError(ctx, err)
		}
		out := make([]*authsvcv1.Session, 0, len(list))
		for i := range list {
			out = append(out, SessionFromWacht(&list[i]))
		}
		return out, nil
	}
}

// loadContext returns the context of a load's Wacht call, with the class
// of budget it spends: a background refresh spends what the callers' loads
// leave. A load for a caller keeps the class the caller gave
// ([budget.Foreground] unless it said otherwise, as a revocation check
// does).
func loadContext(ctx context.Context) context.Context {
	if cache.IsRefresh(ctx) {
		return budget.WithClass(ctx, budget.Refresh)
	}
	return ctx
}

// loadError marks Wacht's "not found" as the cache's authoritative kind,
// and a background refresh the budget did not admit (or that Wacht
// rate-limited) as deferred, so that the entry is served meanwhile.
func loadError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, wachtclient.ErrNotFound):
		return fmt.Errorf("%w: %w", cache.ErrNotFound, err)
	case cache.IsRefresh(ctx) && errors.Is(err, wachtclient.ErrRateLimited):
		return fmt.Errorf("%w: %w", cache.ErrDeferred, err)
	}
	return err
}

// UserCodec stores users in Postgres as protobuf.
type UserCodec struct{}

// Marshal implements [cache.Codec].
func (UserCodec) Marshal(u *authsvcv1.User) ([]byte, error) { return proto.Marshal(u) }

// Unmarshal implements [cache.Codec].
func (UserCodec) Unmarshal(b []byte) (*authsvcv1.User, error) {
	u := &authsvcv1.User{}
	return u, proto.Unmarshal(b, u)
}

// SessionsCodec stores session lists in Postgres as protobuf.
type SessionsCodec struct{}

// Marshal implements [cache.Codec].
func (SessionsCodec) Marshal(s []*authsvcv1.Session) ([]byte, error) {
	return proto.Marshal(&authsvcv1.ListSessionsResponse{Sessions: s})
}

// Unmarshal implements [cache.Codec].
func (SessionsCodec) Unmarshal(b []byte) ([]*authsvcv1.Session, error) {
	var m authsvcv1.ListSessionsResponse
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m.Sessions, nil
}
