package sessiontoken

import (
	"errors"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims is the verified content of a Wacht session token.
//
// A *Claims returned by [Verifier.Verify] may be shared with other callers
// (it is served from the verified-token cache), so it must be treated as
// read-only: never modify it, its slices or its Metadata map.
type Claims struct {
	// Issuer is the iss claim: the Frontend API origin.
	Issuer string
	// Subject is the sub claim: the Wacht user id (a decimal string).
	Subject string
	// SessionID is the sid claim, or session_id in older tokens.
	SessionID string
	// Organization is the active organization id, empty if none.
	Organization string
	// Workspace is the active workspace id, empty if none.
	Workspace string
	// OrganizationPermissions are the permissions of the active
	// organization membership.
	OrganizationPermissions []string
	// WorkspacePermissions are the permissions of the active workspace
	// membership.
	WorkspacePermissions []string
	// IssuedAt is the iat claim, zero if absent.
	IssuedAt time.Time
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// NotBefore is the nbf claim, zero if absent.
	NotBefore time.Time
	// Metadata is the metadata claim rendered by the JWT template, nil if
	// absent.
	Metadata map[string]any
}

// HasPermission reports whether p is in either the organization or the
// workspace permission list.
func (c *Claims) HasPermission(p string) bool {
	return slices.Contains(c.OrganizationPermissions, p) || slices.Contains(c.WorkspacePermissions, p)
}

// rawClaims is the JSON shape of the token payload, as go-jose's JSON
// decoder fills it; decodePlainClaims fills it the same way for a plain
// payload.
type rawClaims struct {
	jwt.Claims

	SessionID       string         `json:"sid"`
	LegacySessionID string         `json:"session_id"`
	Organization    string         `json:"organization"`
	Workspace       string         `json:"workspace"`
	Permissions     *rawPerms      `json:"permissions"`
	Metadata        map[string]any `json:"metadata"`
}

type rawPerms struct {
	Organization []string `json:"organization"`
	Workspace    []string `json:"workspace"`
}

// checkClaims validates verified claims against the issuer and the clock
// and returns the session id (sid, or session_id in older tokens). It must
// only run on a payload whose signature verified.
func checkClaims(raw *rawClaims, issuer string, now time.Time, leeway time.Duration) (string, error) {
	if raw.Issuer != issuer {
		return "", errWrongIssuer
	}
	sid := raw.SessionID
	if sid == "" {
		sid = raw.LegacySessionID
	}
	switch {
	case raw.Subject == "":
		return "", errMissingSub
	case sid == "":
		return "", errMissingSID
	case raw.Expiry == nil:
		return "", errMissingExp
	}
	if err := checkTimes(raw.Claims, now, leeway); err != nil {
		return "", err
	}
	return sid, nil
}

// checkTimes applies the exp, nbf and iat checks with leeway.
func checkTimes(c jwt.Claims, now time.Time, leeway time.Duration) error {
	err := c.ValidateWithLeeway(jwt.Expected{Time: now}, leeway)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrExpired):
		return newError(ReasonExpired, "", err)
	case errors.Is(err, jwt.ErrNotValidYet):
		return newError(ReasonNotYetValid, "nbf in the future", err)
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return newError(ReasonNotYetValid, "iat in the future", err)
	default:
		return newError(ReasonMalformed, "invalid time claims", err)
	}
}
