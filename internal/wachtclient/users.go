package wachtclient

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// UserDetails is a user as GET /users/{id}/details returns it. Nullable ids
// are "" when null.
type UserDetails struct {
	ID                             ID                 `json:"id"`
	DeploymentID                   ID                 `json:"deployment_id"`
	CreatedAt                      time.Time          `json:"created_at"`
	UpdatedAt                      time.Time          `json:"updated_at"`
	FirstName                      string             `json:"first_name"`
	LastName                       string             `json:"last_name"`
	Username                       *string            `json:"username"`
	ProfilePictureURL              string             `json:"profile_picture_url"`
	SchemaVersion                  string             `json:"schema_version"`
	Disabled                       bool               `json:"disabled"`
	SecondFactorPolicy             string             `json:"second_factor_policy"`
	Availability                   string             `json:"availability"`
	LastPasswordResetAt            *time.Time         `json:"last_password_reset_at"`
	ActiveOrganizationMembershipID ID                 `json:"active_organization_membership_id"`
	ActiveWorkspaceMembershipID    ID                 `json:"active_workspace_membership_id"`
	PublicMetadata                 json.RawMessage    `json:"public_metadata"`
	PrivateMetadata                json.RawMessage    `json:"private_metadata"`
	PrimaryEmailAddressID          ID                 `json:"primary_email_address_id"`
	PrimaryEmailAddress            *string            `json:"primary_email_address"`
	PrimaryPhoneNumberID           ID                 `json:"primary_phone_number_id"`
	PrimaryPhoneNumber             *string            `json:"primary_phone_number"`
	EmailAddresses                 []UserEmailAddress `json:"email_addresses"`
	PhoneNumbers                   []UserPhoneNumber  `json:"phone_numbers"`
	SocialConnections              []SocialConnection `json:"social_connections"`
	Segments                       []Segment          `json:"segments"`
	HasPassword                    bool               `json:"has_password"`
	HasBackupCodes                 bool               `json:"has_backup_codes"`
}

// UserEmailAddress is one of a user's email addresses.
type UserEmailAddress struct {
	ID                   ID        `json:"id"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	DeploymentID         ID        `json:"deployment_id"`
	UserID               ID        `json:"user_id"`
	Email                string    `json:"email"`
	IsPrimary            bool      `json:"is_primary"`
	Verified             bool      `json:"verified"`
	VerifiedAt           time.Time `json:"verified_at"`
	VerificationStrategy string    `json:"verification_strategy"`
}

// UserPhoneNumber is one of a user's phone numbers.
type UserPhoneNumber struct {
	ID          ID        `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UserID      ID        `json:"user_id"`
	PhoneNumber string    `json:"phone_number"`
	CountryCode string    `json:"country_code"`
	Verified    bool      `json:"verified"`
	VerifiedAt  time.Time `json:"verified_at"`
}

// SocialConnection is a user's link to an OAuth provider. Wacht also sends
// the provider's access and refresh tokens, decrypted; this type has no
// field for them, so decoding drops them and they are never held.
type SocialConnection struct {
	ID                 ID        `json:"id"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	UserID             ID        `json:"user_id"`
	UserEmailAddressID ID        `json:"user_email_address_id"`
	Provider           string    `json:"provider"`
	EmailAddress       string    `json:"email_address"`
}

// Segment is a user segment the user belongs to.
type Segment struct {
	ID           ID         `json:"id"`
	CreatedAt    *time.Time `json:"created_at"`
	UpdatedAt    *time.Time `json:"updated_at"`
	DeletedAt    *time.Time `json:"deleted_at,omitempty"`
	DeploymentID ID         `json:"deployment_id"`
	Name         string     `json:"name"`
	Type         string     `json:"type"`
}

// UserWithIdentifiers is a user as GET /users lists it.
type UserWithIdentifiers struct {
	ID                  ID        `json:"id"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
	FirstName           string    `json:"first_name"`
	LastName            string    `json:"last_name"`
	Username            *string   `json:"username"`
	ProfilePictureURL   string    `json:"profile_picture_url"`
	PrimaryEmailAddress *string   `json:"primary_email_address"`
	PrimaryPhoneNumber  *string   `json:"primary_phone_number"`
}

// Sort keys and orders accepted by ListUsers.
const (
	SortKeyCreatedAt   = "created_at"
	SortKeyUsername    = "username"
	SortKeyEmail       = "email"
	SortKeyPhoneNumber = "phone_number"
	SortOrderAsc       = "asc"
	SortOrderDesc      = "desc"
)

// ListUsersParams filters and pages GET /users. Zero fields are left out,
// so Wacht's defaults apply (limit 10, offset 0, created_at desc).
type ListUsersParams struct {
	Limit     int
	Offset    int
	SortKey   string
	SortOrder string
	// Search is a substring matched against names, username, emails and
	// phone numbers.
	Search string
}

// UserPage is one page of GET /users. Wacht reports no total.
type UserPage struct {
	Data    []UserWithIdentifiers `json:"data"`
	HasMore bool                  `json:"has_more"`
	Limit   int                   `json:"limit"`
	Offset  int                   `json:"offset"`
}

// GetUser returns the user with the given decimal id. A missing user wraps
// ErrNotFound; a non-decimal id wraps ErrBadRequest without a request.
func (c *Client) GetUser(ctx context.Context, userID string) (*UserDetails, error) {
	seg, err := idSegment("user id", userID)
	if err != nil {
		return nil, fmt.Errorf("get user %q: %w", userID, err)
	}
	var u UserDetails
	err = c.do(ctx, request{target: backendAPI, method: http.MethodGet, route: "GET /users/{user_id}/details", path: "/users/" + seg + "/details", idempotent: true}, &u)
	if err == nil && u.ID == "" {
		err = fmt.Errorf("%w: user without id", ErrInvalidResponse)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", seg, err)
	}
	return &u, nil
}

// ListUsers returns one page of the deployment's users.
func (c *Client) ListUsers(ctx context.Context, p ListUsersParams) (*UserPage, error) {
	q, err := p.query()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	var page UserPage
	err = c.do(ctx, request{target: backendAPI, method: http.MethodGet, route: "GET /users", path: "/users", query: q, idempotent: true}, &page)
	if err == nil && page.Data == nil {
		err = fmt.Errorf("%w: list without data", ErrInvalidResponse)
	}
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return &page, nil
}

func (p ListUsersParams) query() (url.Values, error) {
	q := url.Values{}
	if p.Limit < 0 || p.Limit > math.MaxInt32 || p.Offset < 0 || p.Offset > math.MaxInt32 {
		return nil, invalidInput("limit and offset must be between 0 and %d", math.MaxInt32)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	switch p.SortKey {
	case "":
	case SortKeyCreatedAt, SortKeyUsername, SortKeyEmail, SortKeyPhoneNumber:
		q.Set("sort_key", p.SortKey)
	default:
		return nil, invalidInput("unknown sort key %q", p.SortKey)
	}
	switch p.SortOrder {
	case "":
	case SortOrderAsc, SortOrderDesc:
		q.Set("sort_order", p.SortOrder)
	default:
		return nil, invalidInput("unknown sort order %q", p.SortOrder)
	}
	if p.Search != "" {
		q.Set("search", p.Search)
	}
	return q, nil
}
