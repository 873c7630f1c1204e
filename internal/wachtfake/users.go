package wachtfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"
)

// User is a seeded Wacht user. Empty ids and zero times are filled in by
// [Server.AddUser]; empty strings that Wacht sends as null (Username,
// active membership ids) are sent as null.
type User struct {
	ID                             string
	CreatedAt                      time.Time
	UpdatedAt                      time.Time
	FirstName                      string
	LastName                       string
	Username                       string
	ProfilePictureURL              string
	SchemaVersion                  string // "v1" or "v2"; default "v2"
	Disabled                       bool
	SecondFactorPolicy             string // "none", "optional" or "enforced"; default "none"
	Availability                   string // default "available"
	LastPasswordResetAt            time.Time
	ActiveOrganizationMembershipID string
	ActiveWorkspaceMembershipID    string
	PublicMetadata                 map[string]any
	PrivateMetadata                map[string]any
	Emails                         []Email
	Phones                         []Phone
	SocialConnections              []SocialConnection
	Segments                       []Segment
	HasPassword                    bool
	HasBackupCodes                 bool
}

// Email is an email address of a [User]. The first one marked Primary (or
// else the first one) is the user's primary address.
type Email struct {
	ID                   string
	CreatedAt            time.Time
	UpdatedAt            time.Time
	Email                string
	Primary              bool
	Verified             bool
	VerifiedAt           time.Time // default CreatedAt
	VerificationStrategy string    // "otp", "oauth_google", ...; default "otp"
}

// Phone is a phone number of a [User]. The first one marked Primary (or
// else the first one) is the user's primary number.
type Phone struct {
	ID          string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PhoneNumber string // national part, e.g. "4155550123"
	CountryCode string // e.g. "+1"
	Primary     bool
	Verified    bool
	VerifiedAt  time.Time // default CreatedAt
}

// SocialConnection is an OAuth connection of a [User]. Wacht's Backend API
// returns its tokens decrypted, and so does the emulator.
type SocialConnection struct {
	ID        string
	CreatedAt time.Time
	UpdatedAt time.Time
	// UserEmailAddressID defaults to the id of the user's email equal to
	// EmailAddress, or else the primary email's id.
	UserEmailAddressID string
	Provider           string // "google_oauth", "github_oauth", ...
	EmailAddress       string
	AccessToken        string
	RefreshToken       string
}

// Segment is a user segment of a [User].
type Segment struct {
	ID        string
	CreatedAt time.Time
	UpdatedAt time.Time
	Name      string
	Type      string
}

// AddUser stores a copy of u with its ids, timestamps and defaults filled
// in, and returns that copy. A given ID must be a decimal int64 not used
// yet.
func (s *Server) AddUser(u User) (User, error) {
	u, err := cloneUser(u)
	if err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	defer s.deliverPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID != "" {
		id, ok := canonicalID(u.ID)
		if !ok {
			return User{}, fmt.Errorf("add user %q: id is not a decimal int64: %w", u.ID, ErrInvalid)
		}
		if _, dup := s.users[id]; dup {
			return User{}, fmt.Errorf("add user %s: id in use: %w", id, ErrInvalid)
		}
		u.ID = id
	} else {
		u.ID = s.newIDLocked()
	}
	if err := s.normalizeUserLocked(&u); err != nil {
		return User{}, fmt.Errorf("add user %s: %w", u.ID, err)
	}
	stored, err := cloneUser(u)
	if err != nil {
		return User{}, fmt.Errorf("add user %s: %w", u.ID, err)
	}
	s.users[u.ID] = &stored
	s.raiseUserLocked("user.created", &stored)
	return u, nil
}

// UpdateUser applies fn to the stored user and refreshes UpdatedAt; new
// emails, phones and connections get ids. It raises user.updated. fn runs under the Server's lock
// and must not call the Server.
func (s *Server) UpdateUser(id string, fn func(*User)) error {
	defer s.deliverPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.users[id]
	if !ok {
		return fmt.Errorf("update user %s: %w", id, ErrNotFound)
	}
	u, err := cloneUser(*cur)
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	fn(&u)
	if u.ID != id {
		return fmt.Errorf("update user %s: id changed: %w", id, ErrInvalid)
	}
	u.UpdatedAt = s.stamp()
	if err := s.normalizeUserLocked(&u); err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	stored, err := cloneUser(u)
	if err != nil {
		return fmt.Errorf("update user %s: %w", id, err)
	}
	*cur = stored
	s.raiseUserLocked("user.updated", cur)
	return nil
}

// DeleteUser hard-deletes a user and its sign-ins, as Wacht's DELETE
// /users/{id} does, and raises user.deleted.
func (s *Server) DeleteUser(id string) error {
	defer s.deliverPending()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deleteUserLocked(id) {
		return fmt.Errorf("delete user %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *Server) deleteUserLocked(id string) bool {
	if _, ok := s.users[id]; !ok {
		return false
	}
	delete(s.users, id)
	for sid, si := range s.signIns {
		if si.UserID == id {
			delete(s.signIns, sid)
		}
	}
	s.raiseUserDeletedLocked(id)
	return true
}

// User returns a copy of a stored user.
func (s *Server) User(id string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, fmt.Errorf("get user %s: %w", id, ErrNotFound)
	}
	return cloneUser(*u)
}

// normalizeUserLocked fills ids, times and defaults, and checks that the
// metadata is JSON.
func (s *Server) normalizeUserLocked(u *User) error {
	now := s.stamp()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt, u.UpdatedAt = dbTime(u.CreatedAt), dbTime(u.UpdatedAt)
	if !u.LastPasswordResetAt.IsZero() {
		u.LastPasswordResetAt = dbTime(u.LastPasswordResetAt)
	}
	u.SchemaVersion = cmp.Or(u.SchemaVersion, "v2")
	u.SecondFactorPolicy = cmp.Or(u.SecondFactorPolicy, "none")
	u.Availability = cmp.Or(u.Availability, "available")
	for _, m := range []map[string]any{u.PublicMetadata, u.PrivateMetadata} {
		if _, err := json.Marshal(m); err != nil {
			return fmt.Errorf("metadata is not JSON: %w", ErrInvalid)
		}
	}
	for i := range u.Emails {
		e := &u.Emails[i]
		s.fillIDLocked(&e.ID)
		e.CreatedAt, e.UpdatedAt = s.times(e.CreatedAt, e.UpdatedAt, u.CreatedAt)
		if e.VerifiedAt.IsZero() {
			e.VerifiedAt = e.CreatedAt
		}
		e.VerificationStrategy = cmp.Or(e.VerificationStrategy, "otp")
	}
	for i := range u.Phones {
		p := &u.Phones[i]
		s.fillIDLocked(&p.ID)
		p.CreatedAt, p.UpdatedAt = s.times(p.CreatedAt, p.UpdatedAt, u.CreatedAt)
		if p.VerifiedAt.IsZero() {
			p.VerifiedAt = p.CreatedAt
		}
	}
	primaryEmail := primaryEmail(u)
	for i := range u.SocialConnections {
		c := &u.SocialConnections[i]
		s.fillIDLocked(&c.ID)
		c.CreatedAt, c.UpdatedAt = s.times(c.CreatedAt, c.UpdatedAt, u.CreatedAt)
		if c.UserEmailAddressID == "" {
			c.UserEmailAddressID = primaryEmail.ID
			for _, e := range u.Emails {
				if e.Email == c.EmailAddress {
					c.UserEmailAddressID = e.ID
				}
			}
		}
	}
	for i := range u.Segments {
		g := &u.Segments[i]
		s.fillIDLocked(&g.ID)
		g.CreatedAt, g.UpdatedAt = s.times(g.CreatedAt, g.UpdatedAt, u.CreatedAt)
	}
	return nil
}

// times defaults created and updated to def and rounds them as Postgres.
func (s *Server) times(created, updated, def time.Time) (time.Time, time.Time) {
	if created.IsZero() {
		created = def
	}
	if updated.IsZero() {
		updated = created
	}
	return dbTime(created), dbTime(updated)
}

func primaryEmail(u *User) Email {
	for _, e := range u.Emails {
		if e.Primary {
			return e
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0]
	}
	return Email{}
}

func primaryPhone(u *User) Phone {
	for _, p := range u.Phones {
		if p.Primary {
			return p
		}
	}
	if len(u.Phones) > 0 {
		return u.Phones[0]
	}
	return Phone{}
}

// cloneUser deep-copies u, metadata included.
func cloneUser(u User) (User, error) {
	var err error
	if u.PublicMetadata, err = cloneMap(u.PublicMetadata); err != nil {
		return User{}, err
	}
	if u.PrivateMetadata, err = cloneMap(u.PrivateMetadata); err != nil {
		return User{}, err
	}
	u.Emails = append([]Email(nil), u.Emails...)
	u.Phones = append([]Phone(nil), u.Phones...)
	u.SocialConnections = append([]SocialConnection(nil), u.SocialConnections...)
	u.Segments = append([]Segment(nil), u.Segments...)
	return u, nil
}

// cloneMap deep-copies a JSON object through its encoding.
func cloneMap(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("metadata is not JSON: %w", ErrInvalid)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("metadata is not JSON: %w", ErrInvalid)
	}
	return out, nil
}

// fillIDLocked gives *id a new id when it is empty.
func (s *Server) fillIDLocked(id *string) {
	if *id == "" {
		*id = s.newIDLocked()
	}
}
