package wachtfake

// userDetailsJSON is Wacht's UserDetails.
type userDetailsJSON struct {
	ID                             string                 `json:"id"`
	CreatedAt                      wireTime               `json:"created_at"`
	UpdatedAt                      wireTime               `json:"updated_at"`
	FirstName                      string                 `json:"first_name"`
	LastName                       string                 `json:"last_name"`
	Username                       *string                `json:"username"`
	ProfilePictureURL              string                 `json:"profile_picture_url"`
	SchemaVersion                  string                 `json:"schema_version"`
	Disabled                       bool                   `json:"disabled"`
	SecondFactorPolicy             string                 `json:"second_factor_policy"`
	Availability                   string                 `json:"availability"`
	LastPasswordResetAt            *wireTime              `json:"last_password_reset_at"`
	ActiveOrganizationMembershipID *string                `json:"active_organization_membership_id"`
	ActiveWorkspaceMembershipID    *string                `json:"active_workspace_membership_id"`
	DeploymentID                   string                 `json:"deployment_id"`
	PublicMetadata                 map[string]any         `json:"public_metadata"`
	PrivateMetadata                map[string]any         `json:"private_metadata"`
	PrimaryEmailAddressID          *string                `json:"primary_email_address_id"`
	PrimaryEmailAddress            *string                `json:"primary_email_address"`
	PrimaryPhoneNumberID           *string                `json:"primary_phone_number_id"`
	PrimaryPhoneNumber             *string                `json:"primary_phone_number"`
	EmailAddresses                 []emailJSON            `json:"email_addresses"`
	PhoneNumbers                   []phoneJSON            `json:"phone_numbers"`
	SocialConnections              []socialConnectionJSON `json:"social_connections"`
	Segments                       []segmentJSON          `json:"segments"`
	HasPassword                    bool                   `json:"has_password"`
	HasBackupCodes                 bool                   `json:"has_backup_codes"`
}

type emailJSON struct {
	ID                   string   `json:"id"`
	CreatedAt            wireTime `json:"created_at"`
	UpdatedAt            wireTime `json:"updated_at"`
	DeploymentID         string   `json:"deployment_id"`
	UserID               string   `json:"user_id"`
	Email                string   `json:"email"`
	IsPrimary            bool     `json:"is_primary"`
	Verified             bool     `json:"verified"`
	VerifiedAt           wireTime `json:"verified_at"`
	VerificationStrategy string   `json:"verification_strategy"`
}

type phoneJSON struct {
	ID          string   `json:"id"`
	CreatedAt   wireTime `json:"created_at"`
	UpdatedAt   wireTime `json:"updated_at"`
	UserID      string   `json:"user_id"`
	PhoneNumber string   `json:"phone_number"`
	CountryCode string   `json:"country_code"`
	Verified    bool     `json:"verified"`
	VerifiedAt  wireTime `json:"verified_at"`
}

type socialConnectionJSON struct {
	ID                 string   `json:"id"`
	CreatedAt          wireTime `json:"created_at"`
	UpdatedAt          wireTime `json:"updated_at"`
	UserID             string   `json:"user_id"`
	UserEmailAddressID string   `json:"user_email_address_id"`
	Provider           string   `json:"provider"`
	EmailAddress       string   `json:"email_address"`
	AccessToken        string   `json:"access_token"`
	RefreshToken       string   `json:"refresh_token"`
}

type segmentJSON struct {
	ID           string   `json:"id"`
	CreatedAt    wireTime `json:"created_at"`
	UpdatedAt    wireTime `json:"updated_at"`
	DeploymentID string   `json:"deployment_id"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
}

// userWithIdentifiersJSON is Wacht's UserWithIdentifiers.
type userWithIdentifiersJSON struct {
	ID                  string   `json:"id"`
	CreatedAt           wireTime `json:"created_at"`
	UpdatedAt           wireTime `json:"updated_at"`
	FirstName           string   `json:"first_name"`
	LastName            string   `json:"last_name"`
	Username            *string  `json:"username"`
	ProfilePictureURL   string   `json:"profile_picture_url"`
	PrimaryEmailAddress *string  `json:"primary_email_address"`
	PrimaryPhoneNumber  *string  `json:"primary_phone_number"`
}

// paginatedJSON is Wacht's PaginatedResponse; limit and offset are left
// out of unpaginated lists.
type paginatedJSON[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
	Limit   *int `json:"limit,omitempty"`
	Offset  *int `json:"offset,omitempty"`
}

func (s *Server) userDetailsLocked(u *User) userDetailsJSON {
	pe, pp := primaryEmail(u), primaryPhone(u)
	d := userDetailsJSON{
		ID:                             u.ID,
		CreatedAt:                      wireTime(u.CreatedAt),
		UpdatedAt:                      wireTime(u.UpdatedAt),
		FirstName:                      u.FirstName,
		LastName:                       u.LastName,
		Username:                       optString(u.Username),
		ProfilePictureURL:              u.ProfilePictureURL,
		SchemaVersion:                  u.SchemaVersion,
		Disabled:                       u.Disabled,
		SecondFactorPolicy:             u.SecondFactorPolicy,
		Availability:                   u.Availability,
		LastPasswordResetAt:            optTime(u.LastPasswordResetAt),
		ActiveOrganizationMembershipID: optString(u.ActiveOrganizationMembershipID),
		ActiveWorkspaceMembershipID:    optString(u.ActiveWorkspaceMembershipID),
		DeploymentID:                   s.deploymentID,
		PublicMetadata:                 nonNilMap(u.PublicMetadata),
		PrivateMetadata:                nonNilMap(u.PrivateMetadata),
		PrimaryEmailAddressID:          optString(pe.ID),
		PrimaryEmailAddress:            optString(pe.Email),
		PrimaryPhoneNumberID:           optString(pp.ID),
		PrimaryPhoneNumber:             optString(pp.PhoneNumber),
		EmailAddresses:                 []emailJSON{},
		PhoneNumbers:                   []phoneJSON{},
		SocialConnections:              []socialConnectionJSON{},
		Segments:                       []segmentJSON{},
		HasPassword:                    u.HasPassword,
		HasBackupCodes:                 u.HasBackupCodes,
	}
	for _, e := range u.Emails {
		d.EmailAddresses = append(d.EmailAddresses, emailJSON{
			ID: e.ID, CreatedAt: wireTime(e.CreatedAt), UpdatedAt: wireTime(e.UpdatedAt),
			DeploymentID: s.deploymentID, UserID: u.ID, Email: e.Email,
			IsPrimary: e.ID == pe.ID, Verified: e.Verified, VerifiedAt: wireTime(e.VerifiedAt),
			VerificationStrategy: e.VerificationStrategy,
		})
	}
	for _, p := range u.Phones {
		d.PhoneNumbers = append(d.PhoneNumbers, phoneJSON{
			ID: p.ID, CreatedAt: wireTime(p.CreatedAt), UpdatedAt: wireTime(p.UpdatedAt),
			UserID: u.ID, PhoneNumber: p.PhoneNumber, CountryCode: p.CountryCode,
			Verified: p.Verified, VerifiedAt: wireTime(p.VerifiedAt),
		})
	}
	for _, c := range u.SocialConnections {
		d.SocialConnections = append(d.SocialConnections, socialConnectionJSON{
			ID: c.ID, CreatedAt: wireTime(c.CreatedAt), UpdatedAt: wireTime(c.UpdatedAt),
			UserID: u.ID, UserEmailAddressID: c.UserEmailAddressID, Provider: c.Provider,
			EmailAddress: c.EmailAddress, AccessToken: c.AccessToken, RefreshToken: c.RefreshToken,
		})
	}
	for _, g := range u.Segments {
		d.Segments = append(d.Segments, segmentJSON{
			ID: g.ID, CreatedAt: wireTime(g.CreatedAt), UpdatedAt: wireTime(g.UpdatedAt),
			DeploymentID: s.deploymentID, Name: g.Name, Type: g.Type,
		})
	}
	return d
}

func userWithIdentifiers(u *User) userWithIdentifiersJSON {
	pe, pp := primaryEmail(u), primaryPhone(u)
	out := userWithIdentifiersJSON{
		ID:                  u.ID,
		CreatedAt:           wireTime(u.CreatedAt),
		UpdatedAt:           wireTime(u.UpdatedAt),
		FirstName:           u.FirstName,
		LastName:            u.LastName,
		Username:            optString(u.Username),
		ProfilePictureURL:   u.ProfilePictureURL,
		PrimaryEmailAddress: optString(pe.Email),
	}
	if pp.ID != "" {
		// The list query selects country_code || phone_number.
		out.PrimaryPhoneNumber = optString(pp.CountryCode + pp.PhoneNumber)
	}
	return out
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
