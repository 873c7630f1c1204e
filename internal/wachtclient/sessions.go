package wachtclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// SignIn is what the Backend API calls a user's session: one signed-in
// account inside a browser session. SessionID is the `sid` of the session
// tokens; ID is the sign-in's own id, used to revoke it. Nullable ids are ""
// when null; location and device fields are "" when unknown.
type SignIn struct {
	ID                             ID        `json:"id"`
	SessionID                      ID        `json:"session_id"`
	UserID                         ID        `json:"user_id"`
	ActiveOrganizationMembershipID ID        `json:"active_organization_membership_id"`
	ActiveWorkspaceMembershipID    ID        `json:"active_workspace_membership_id"`
	CreatedAt                      time.Time `json:"created_at"`
	UpdatedAt                      time.Time `json:"updated_at"`
	ExpiresAt                      time.Time `json:"expires_at"`
	LastActiveAt                   time.Time `json:"last_active_at"`
	IPAddress                      string    `json:"ip_address"`
	Browser                        string    `json:"browser"`
	Device                         string    `json:"device"`
	City                           string    `json:"city"`
	Region                         string    `json:"region"`
	RegionCode                     string    `json:"region_code"`
	Country                        string    `json:"country"`
	CountryCode                    string    `json:"country_code"`
}

// signInList is GET /users/{id}/sessions: every row, never paginated.
type signInList struct {
	Data    []SignIn `json:"data"`
	HasMore bool     `json:"has_more"`
}

// revokeAllResponse is POST /users/{id}/sessions/revoke-all.
type revokeAllResponse struct {
	Revoked *int64 `json:"revoked"`
}

// ListUserSessions returns the user's unrevoked sign-ins, most recently
// active first; expired ones only when includeExpired is set.
func (c *Client) ListUserSessions(ctx context.Context, userID string, includeExpired bool) ([]SignIn, error) {
	seg, err := idSegment("user id", userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %q: %w", userID, err)
	}
	r := request{target: backendAPI, method: http.MethodGet, route: "GET /users/{user_id}/sessions", path: "/users/" + seg + "/sessions", idempotent: true}
	if includeExpired {
		r.query = url.Values{"include_expired": {"true"}}
	}
	var list signInList
	err = c.do(ctx, r, &list)
	if err == nil && list.Data == nil {
		err = fmt.Errorf("%w: list without data", ErrInvalidResponse)
	}
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %s: %w", seg, err)
	}
	return list.Data, nil
}

// RevokeSignIn revokes one sign-in (SignIn.ID, not the token's sid). An
// unknown or already revoked sign-in wraps ErrNotFound. It is never retried;
// a failure after the request may have reached Wacht wraps ErrOutcomeUnknown.
func (c *Client) RevokeSignIn(ctx context.Context, userID, signInID string) error {
	userSeg, err := idSegment("user id", userID)
	if err != nil {
		return fmt.Errorf("revoke sign-in %q of user %q: %w", signInID, userID, err)
	}
	signInSeg, err := idSegment("sign-in id", signInID)
	if err != nil {
		return fmt.Errorf("revoke sign-in %q of user %q: %w", signInID, userID, err)
	}
	path := "/users/" + userSeg + "/sessions/" + signInSeg + "/revoke"
	if err := c.do(ctx, request{target: backendAPI, method: http.MethodPost, route: "POST /users/{user_id}/sessions/{signin_id}/revoke", path: path}, nil); err != nil {
		return fmt.Errorf("revoke sign-in %s of user %s: %w", signInSeg, userSeg, err)
	}
	return nil
}

// RevokeAllSessions revokes every sign-in of the user and returns how many
// Wacht revoked. It is never retried; a failure after the request may have
// reached Wacht wraps ErrOutcomeUnknown.
func (c *Client) RevokeAllSessions(ctx context.Context, userID string) (int64, error) {
	seg, err := idSegment("user id", userID)
	if err != nil {
		return 0, fmt.Errorf("revoke all sessions of user %q: %w", userID, err)
	}
	var resp revokeAllResponse
	err = c.do(ctx, request{target: backendAPI, method: http.MethodPost, route: "POST /users/{user_id}/sessions/revoke-all", path: "/users/" + seg + "/sessions/revoke-all"}, &resp)
	if err == nil && resp.Revoked == nil {
		err = &outcomeUnknownError{err: fmt.Errorf("%w: no revoked count", ErrInvalidResponse)}
	}
	if err != nil {
		return 0, fmt.Errorf("revoke all sessions of user %s: %w", seg, err)
	}
	return *resp.Revoked, nil
}
