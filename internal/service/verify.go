package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// maxRequiredPermissions bounds required_permissions.
const maxRequiredPermissions = 64

// minReloadAge is how old a cached session list must be before a sid
// missing from it makes checkActive ask Wacht again. It keeps a stream of
// revoked tokens from spending the Wacht request budget.
const minReloadAge = time.Second

// VerifySession implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) VerifySession(ctx context.Context, req *connect.Request[authsvcv1.VerifySessionRequest]) (*connect.Response[authsvcv1.VerifySessionResponse], error) {
	msg := req.Msg
	claims, err := s.Verify(ctx, msg.GetToken(), msg.GetRequiredPermissions(), msg.GetCheckRevocation())
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	out := &authsvcv1.VerifySessionResponse{
		UserId:                  claims.Subject,
		SessionId:               claims.SessionID,
		OrganizationId:          claims.Organization,
		WorkspaceId:             claims.Workspace,
		OrganizationPermissions: claims.OrganizationPermissions,
		WorkspacePermissions:    claims.WorkspacePermissions,
		IssuedAt:                timestamp(claims.IssuedAt),
		ExpiresAt:               timestamp(claims.ExpiresAt),
		Metadata:                structFromMap(claims.Metadata),
	}
	res := connect.NewResponse(out)
	if msg.GetIncludeUser() {
		r, err := s.users.Get(ctx, claims.Subject)
		switch {
		case isNotFound(err):
			return nil, s.errs.toConnect(ctx, fmt.Errorf("user %s: %w", claims.Subject, errRevoked))
		case err != nil:
			return nil, s.errs.toConnect(ctx, err)
		}
		out.User = r.Value
		markStale(res.Header(), r.Stale)
	}
	return res, nil
}

// Verify checks a session token, its permissions and, when asked, that
// its session is still active. It is the whole decision shared by
// VerifySession and Envoy's Check.
func (s *AuthServer) Verify(ctx context.Context, token string, required []string, checkRevocation bool) (*sessiontoken.Claims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, invalidArgument("token is required")
	}
	if len(required) > maxRequiredPermissions {
		return nil, invalidArgument("at most %d required_permissions", maxRequiredPermissions)
	}
	claims, err := s.verifier.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, p := range required {
		if !claims.HasPermission(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, &permissionError{missing: missing}
	}
	if checkRevocation {
		if err := s.checkActive(ctx, claims); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// checkActive reports errRevoked unless the token's sid belongs to an
// unexpired sign-in of its user. A sid missing from a cached list is
// looked up once more in Wacht, since a brand-new session is not cached
// yet.
func (s *AuthServer) checkActive(ctx context.Context, claims *sessiontoken.Claims) error {
	r, err := s.sessions.Get(ctx, claims.Subject)
	switch {
	case isNotFound(err):
		// Wacht said the user does not exist; that is remembered
		// briefly, and asking again on every request would spend the
		// request budget.
		return errRevoked
	case err != nil:
		return err
	case s.hasActiveSignIn(r.Value, claims.SessionID):
		return nil
	case r.Source == cache.SourceLoad || s.now().Sub(r.FetchedAt) < minReloadAge:
		return errRevoked
	}
	r, err = s.sessions.Reload(ctx, claims.Subject)
	switch {
	case isNotFound(err):
		return errRevoked
	case err != nil:
		return err
	case s.hasActiveSignIn(r.Value, claims.SessionID):
		return nil
	default:
		return errRevoked
	}
}

func (s *AuthServer) hasActiveSignIn(list []*authsvcv1.Session, sid string) bool {
	now := s.now()
	for _, si := range list {
		if si.GetSessionId() == sid && (si.GetExpiresAt() == nil || si.GetExpiresAt().AsTime().After(now)) {
			return true
		}
	}
	return false
}
