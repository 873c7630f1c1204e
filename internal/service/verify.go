package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/budget"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// maxRequiredPermissions bounds required_permissions.
const maxRequiredPermissions = 64

// VerifySession implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) VerifySession(ctx context.Context, req *connect.Request[authsvcv1.VerifySessionRequest]) (*connect.Response[authsvcv1.VerifySessionResponse], error) {
	msg := req.Msg
	claims, err := s.Verify(ctx, msg.GetToken(), msg.GetRequiredPermissions(), msg.GetCheckRevocation())
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	out := sessionResponse(claims)
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

// sessionResponse describes verified claims.
func sessionResponse(claims *sessiontoken.Claims) *authsvcv1.VerifySessionResponse {
	return &authsvcv1.VerifySessionResponse{
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
// unexpired sign-in of its user.
//
// A sid that the list holds only as ended (a sign-out written through from
// a webhook) is refused at once. A sid missing from the cached list is
// looked up in Wacht again only when
// the token was issued after the list was fetched (less the clock
// leeway): only then can the list predate the session. Otherwise the
// session was in Wacht when the list was fetched, or has ended since, and
// the token is refused without a Wacht call. Either way a refused sid is
// remembered until its token would expire, so that replaying a revoked
// token costs no Wacht call at all, on any path, however long it lasts.
func (s *AuthServer) checkActive(ctx context.Context, claims *sessiontoken.Claims) error {
	if s.revoked.has(claims, s.now()) {
		return errRevoked
	}
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
	case endedSession(r.Value, claims.SessionID) || !s.mayPredate(r, claims):
		s.revoked.add(claims, s.now())
		return errRevoked
	}
	r, err = s.sessions.Reload(budget.WithClass(ctx, budget.Revocation), claims.Subject)
	switch {
	case isNotFound(err):
		return errRevoked
	case err != nil:
		return err
	case s.hasActiveSignIn(r.Value, claims.SessionID):
		return nil
	default:
		// The list was fetched just now, after the token was issued.
		s.revoked.add(claims, s.now())
		return errRevoked
	}
}

// mayPredate reports whether the session list r may have been fetched
// before the token's session began, so that a sid missing from it proves
// nothing. A list loaded by this very call was fetched after the token
// existed. A token without iat is given the benefit of the doubt once.
func (s *AuthServer) mayPredate(r cache.Result[[]*authsvcv1.Session], claims *sessiontoken.Claims) bool {
	if r.Source == cache.SourceLoad {
		return false
	}
	if claims.IssuedAt.IsZero() {
		return true
	}
	return claims.IssuedAt.After(r.FetchedAt.Add(-s.leeway))
}

// endedSession reports whether list holds a sign-in of sid that a
// webhook reported ended: a list that knows the end cannot predate the
// session.
func endedSession(list []*authsvcv1.Session, sid string) bool {
	return slices.ContainsFunc(list, func(si *authsvcv1.Session) bool {
		return si.GetSessionId() == sid && si.GetEndedAt() != nil
	})
}

func (s *AuthServer) hasActiveSignIn(list []*authsvcv1.Session, sid string) bool {
	now := s.now()
	for _, si := range list {
		if si.GetSessionId() == sid && si.GetEndedAt() == nil && (si.GetExpiresAt() == nil || si.GetExpiresAt().AsTime().After(now)) {
			return true
		}
	}
	return false
}
