package service

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/budget"
)

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// ListSessions implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) ListSessions(ctx context.Context, req *connect.Request[authsvcv1.ListSessionsRequest]) (*connect.Response[authsvcv1.ListSessionsResponse], error) {
	msg := req.Msg
	userID := msg.GetUserId()
	if err := checkID("user_id", userID); err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	size, err := pageSize(msg.GetPageSize())
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	offset := 0
	if tok := msg.GetPageToken(); tok != "" {
		p, err := s.pages.decode(tok)
		if err != nil || p.Scope != sessionsScope(userID, msg.GetIncludeExpired()) {
			return nil, s.errs.toConnect(ctx, invalidArgument("page_token is not one this listing returned"))
		}
		offset = p.Offset
	}

	r, err := s.sessions.Get(ctx, userID)
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	now := s.now()
	var visible []*authsvcv1.Session
	for _, si := range r.Value {
		if msg.GetIncludeExpired() || si.GetEndedAt() == nil && (si.GetExpiresAt() == nil || si.GetExpiresAt().AsTime().After(now)) {
			visible = append(visible, si)
		}
	}
	out := &authsvcv1.ListSessionsResponse{}
	if offset < len(visible) {
		end := min(offset+size, len(visible))
		out.Sessions = visible[offset:end]
		if end < len(visible) {
			out.NextPageToken = s.pages.encode(page{Scope: sessionsScope(userID, msg.GetIncludeExpired()), Offset: end})
		}
	}
	res := connect.NewResponse(out)
	markStale(res.Header(), r.Stale)
	return res, nil
}

func sessionsScope(userID string, includeExpired bool) string {
	return fmt.Sprintf("sessions/%s/%t", userID, includeExpired)
}

// RevokeSession implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) RevokeSession(ctx context.Context, req *connect.Request[authsvcv1.RevokeSessionRequest]) (*connect.Response[authsvcv1.RevokeSessionResponse], error) {
	msg := req.Msg
	userID := msg.GetUserId()
	if err := checkID("user_id", userID); err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	// A revocation, and the lookup that finds what to revoke, spend the
	// Wacht budget as a write, ahead of loads.
	ctx = budget.WithClass(ctx, budget.Write)
	var targets []string
	switch t := msg.GetTarget().(type) {
	case *authsvcv1.RevokeSessionRequest_SignInId:
		if err := checkID("sign_in_id", t.SignInId); err != nil {
			return nil, s.errs.toConnect(ctx, err)
		}
		targets = []string{t.SignInId}
	case *authsvcv1.RevokeSessionRequest_SessionId:
		if err := checkID("session_id", t.SessionId); err != nil {
			return nil, s.errs.toConnect(ctx, err)
		}
		// Ask Wacht rather than the cache: a sign-in the cache has not
		// seen yet must not survive.
		r, err := s.sessions.Reload(ctx, userID)
		if err != nil {
			return nil, s.errs.toConnect(ctx, err)
		}
		for _, si := range r.Value {
			if si.GetSessionId() == t.SessionId {
				targets = append(targets, si.GetId())
			}
		}
		if len(targets) == 0 {
			return nil, s.errs.toConnect(ctx, notFound("user %s has no sign-in in session %s", userID, t.SessionId))
		}
	default:
		return nil, s.errs.toConnect(ctx, invalidArgument("one of session_id or sign_in_id is required"))
	}

	out := &authsvcv1.RevokeSessionResponse{}
	var revokeErr error
	for _, id := range targets {
		if err := s.wacht.RevokeSignIn(ctx, userID, id); err != nil {
			revokeErr = fmt.Errorf("revoke sign-in %s of user %s: %w", id, userID, err)
			break
		}
		out.RevokedSignInIds = append(out.RevokedSignInIds, id)
	}
	// Invalidate even after a partial failure: whatever was revoked must
	// stop being served at once.
	if err := s.sessions.Invalidate(context.WithoutCancel(ctx), userID); err != nil {
		s.logger.ErrorContext(ctx, "revoked in Wacht but could not invalidate every replica's cache",
			"user_id", userID, "error", err)
		if revokeErr == nil {
			return nil, s.errs.toConnect(ctx, unavailable("revoked in Wacht, but other replicas may serve the old session list until it expires"))
		}
	}
	if revokeErr != nil {
		return nil, s.errs.toConnect(ctx, revokeErr)
	}
	return connect.NewResponse(out), nil
}
