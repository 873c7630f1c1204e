package wachtfake

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// SignIn is what Wacht's Backend API calls a session: one account signed
// in within a browser session. The session token's `sid` claim is
// SessionID, not ID.
type SignIn struct {
	ID                             string
	SessionID                      string
	UserID                         string
	ActiveOrganizationMembershipID string
	ActiveWorkspaceMembershipID    string
	CreatedAt                      time.Time
	UpdatedAt                      time.Time
	ExpiresAt                      time.Time // default CreatedAt + DefaultSignInLifetime
	LastActiveAt                   time.Time // default CreatedAt
	IPAddress                      string
	Browser                        string
	Device                         string
	City                           string
	Region                         string
	RegionCode                     string
	Country                        string
	CountryCode                    string
	// RevokedAt is when the sign-in was revoked (Wacht's deleted_at);
	// revoked sign-ins are never listed.
	RevokedAt time.Time
}

// signInJSON is Wacht's SignIn.
type signInJSON struct {
	ID                             string   `json:"id"`
	CreatedAt                      wireTime `json:"created_at"`
	UpdatedAt                      wireTime `json:"updated_at"`
	SessionID                      string   `json:"session_id"`
	UserID                         *string  `json:"user_id"`
	ActiveOrganizationMembershipID *string  `json:"active_organization_membership_id"`
	ActiveWorkspaceMembershipID    *string  `json:"active_workspace_membership_id"`
	ExpiresAt                      wireTime `json:"expires_at"`
	LastActiveAt                   wireTime `json:"last_active_at"`
	IPAddress                      string   `json:"ip_address"`
	Browser                        string   `json:"browser"`
	Device                         string   `json:"device"`
	City                           string   `json:"city"`
	Region                         string   `json:"region"`
	RegionCode                     string   `json:"region_code"`
	Country                        string   `json:"country"`
	CountryCode                    string   `json:"country_code"`
}

// AddSignIn stores a sign-in of an existing user with its ids, times and
// defaults filled in, raises session.created for one not revoked, and
// returns it. A given ID must be a decimal int64 not used yet; SessionID
// defaults to a new id.
func (s *Server) AddSignIn(userID string, si SignIn) (SignIn, error) {
	defer s.deliverPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return SignIn{}, fmt.Errorf("add sign-in for user %s: %w", userID, ErrNotFound)
	}
	if si.ID != "" {
		id, ok := canonicalID(si.ID)
		if !ok {
			return SignIn{}, fmt.Errorf("add sign-in %q: id is not a decimal int64: %w", si.ID, ErrInvalid)
		}
		if _, dup := s.signIns[id]; dup {
			return SignIn{}, fmt.Errorf("add sign-in %s: id in use: %w", id, ErrInvalid)
		}
		si.ID = id
	}
	s.fillIDLocked(&si.ID)
	s.fillIDLocked(&si.SessionID)
	si.UserID = userID
	si.CreatedAt, si.UpdatedAt = s.times(si.CreatedAt, si.UpdatedAt, s.now())
	if si.ExpiresAt.IsZero() {
		si.ExpiresAt = si.CreatedAt.Add(DefaultSignInLifetime)
	}
	if si.LastActiveAt.IsZero() {
		si.LastActiveAt = si.CreatedAt
	}
	si.ExpiresAt, si.LastActiveAt = dbTime(si.ExpiresAt), dbTime(si.LastActiveAt)
	if !si.RevokedAt.IsZero() {
		si.RevokedAt = dbTime(si.RevokedAt)
	}
	stored := si
	s.signIns[si.ID] = &stored
	if stored.RevokedAt.IsZero() {
		s.raiseSessionLocked("session.created", stored.SessionID)
	}
	return si, nil
}

// SignOut revokes a sign-in as the Frontend API's sign-out does, raises
// session.deleted with its session, and returns it. Unlike the Backend
// API's revoke it is not a Backend API request: it is not counted, delayed
// or limited.
func (s *Server) SignOut(userID, signInID string) (SignIn, error) {
	defer s.deliverPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	si, ok := s.signIns[signInID]
	if !ok || si.UserID != userID {
		return SignIn{}, fmt.Errorf("sign out %s of user %s: %w", signInID, userID, ErrNotFound)
	}
	if si.RevokedAt.IsZero() {
		si.RevokedAt = s.stamp()
		si.UpdatedAt = si.RevokedAt
		s.raiseSessionLocked("session.deleted", si.SessionID)
	}
	return *si, nil
}

// SignIns returns every stored sign-in of a user, revoked and expired ones
// included, newest activity first.
func (s *Server) SignIns(userID string) ([]SignIn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return nil, fmt.Errorf("list sign-ins of user %s: %w", userID, ErrNotFound)
	}
	var out []SignIn
	for _, si := range s.userSignInsLocked(userID, true, true) {
		out = append(out, *si)
	}
	return out, nil
}

// userSignInsLocked returns a user's sign-ins by last_active_at DESC.
func (s *Server) userSignInsLocked(userID string, includeExpired, includeRevoked bool) []*SignIn {
	now := s.now()
	var out []*SignIn
	for _, si := range s.signIns {
		switch {
		case si.UserID != userID:
		case !includeRevoked && !si.RevokedAt.IsZero():
		case !includeExpired && !si.ExpiresAt.After(now):
		default:
			out = append(out, si)
		}
	}
	slices.SortFunc(out, func(a, b *SignIn) int {
		if c := b.LastActiveAt.Compare(a.LastActiveAt); c != 0 {
			return c
		}
		return compareIDs(b.ID, a.ID)
	})
	return out
}

// compareIDs orders two decimal ids as the numbers they are.
func compareIDs(a, b string) int {
	ai, _ := strconv.ParseInt(a, 10, 64)
	bi, _ := strconv.ParseInt(b, 10, 64)
	return cmp.Compare(ai, bi)
}

func signInToJSON(si *SignIn) signInJSON {
	return signInJSON{
		ID:                             si.ID,
		CreatedAt:                      wireTime(si.CreatedAt),
		UpdatedAt:                      wireTime(si.UpdatedAt),
		SessionID:                      si.SessionID,
		UserID:                         optString(si.UserID),
		ActiveOrganizationMembershipID: optString(si.ActiveOrganizationMembershipID),
		ActiveWorkspaceMembershipID:    optString(si.ActiveWorkspaceMembershipID),
		ExpiresAt:                      wireTime(si.ExpiresAt),
		LastActiveAt:                   wireTime(si.LastActiveAt),
		IPAddress:                      si.IPAddress,
		Browser:                        si.Browser,
		Device:                         si.Device,
		City:                           si.City,
		Region:                         si.Region,
		RegionCode:                     si.RegionCode,
		Country:                        si.Country,
		CountryCode:                    si.CountryCode,
	}
}

// parseBoolQuery parses an optional boolean query parameter as serde does:
// only "true" and "false".
func parseBoolQuery(q url.Values, key string) (bool, bool) {
	v, ok := lastValue(q, key)
	switch {
	case !ok:
		return false, true
	case v == "true":
		return true, true
	case v == "false":
		return false, true
	default:
		return false, false
	}
}

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request, p params) {
	userID, ok := canonicalID(p["user_id"])
	includeExpired, qok := parseBoolQuery(r.URL.Query(), "include_expired")
	if !ok || !qok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	out := paginatedJSON[signInJSON]{Data: []signInJSON{}}
	for _, si := range s.userSignInsLocked(userID, includeExpired, false) {
		out.Data = append(out.Data, signInToJSON(si))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, _ *http.Request, p params) {
	userID, ok := canonicalID(p["user_id"])
	signInID, sok := canonicalID(p["signin_id"])
	if !ok || !sok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	si, found := s.signIns[signInID]
	found = found && si.UserID == userID && si.RevokedAt.IsZero()
	if found {
		si.RevokedAt = s.stamp()
		si.UpdatedAt = si.RevokedAt
	}
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "signin not found")
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) handleRevokeAll(w http.ResponseWriter, _ *http.Request, p params) {
	userID, ok := canonicalID(p["user_id"])
	if !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	now := s.stamp()
	revoked := 0
	for _, si := range s.userSignInsLocked(userID, true, false) {
		si.RevokedAt, si.UpdatedAt = now, now
		revoked++
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]int{"revoked": revoked})
}
