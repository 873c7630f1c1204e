package service

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// UserFromWacht converts Wacht's user details into the API's User, for
// the loader and for webhooks alike. Social connections are left out
// altogether: Wacht sends their OAuth tokens in clear, and no caller of
// authsvc needs them.
func UserFromWacht(u *wachtclient.UserDetails) *authsvcv1.User {
	out := &authsvcv1.User{
		Id:                  string(u.ID),
		FirstName:           u.FirstName,
		LastName:            u.LastName,
		Username:            deref(u.Username),
		PrimaryEmailAddress: deref(u.PrimaryEmailAddress),
		PrimaryPhoneNumber:  deref(u.PrimaryPhoneNumber),
		ProfilePictureUrl:   u.ProfilePictureURL,
		PublicMetadata:      structFromJSON(u.PublicMetadata),
		PrivateMetadata:     structFromJSON(u.PrivateMetadata),
		Disabled:            u.Disabled,
		CreatedAt:           timestamp(u.CreatedAt),
		UpdatedAt:           timestamp(u.UpdatedAt),
	}
	for _, e := range u.EmailAddresses {
		out.EmailAddresses = append(out.EmailAddresses, &authsvcv1.EmailAddress{
			Id:       string(e.ID),
			Email:    e.Email,
			Verified: e.Verified,
			Primary:  e.IsPrimary || (u.PrimaryEmailAddressID != "" && e.ID == u.PrimaryEmailAddressID),
		})
	}
	for _, p := range u.PhoneNumbers {
		out.PhoneNumbers = append(out.PhoneNumbers, &authsvcv1.PhoneNumber{
			Id:          string(p.ID),
			PhoneNumber: p.PhoneNumber,
			CountryCode: p.CountryCode,
			Verified:    p.Verified,
			Primary:     u.PrimaryPhoneNumberID != "" && p.ID == u.PrimaryPhoneNumberID,
		})
	}
	return out
}

// SessionFromWacht converts one of Wacht's sign-ins into the API's
// Session, for the loader and for webhooks alike.
func SessionFromWacht(s *wachtclient.SignIn) *authsvcv1.Session {
	return &authsvcv1.Session{
		Id:           string(s.ID),
		SessionId:    string(s.SessionID),
		UserId:       string(s.UserID),
		CreatedAt:    timestamp(s.CreatedAt),
		UpdatedAt:    timestamp(s.UpdatedAt),
		ExpiresAt:    timestamp(s.ExpiresAt),
		LastActiveAt: timestamp(s.LastActiveAt),
		IpAddress:    s.IPAddress,
		Browser:      s.Browser,
		Device:       s.Device,
		City:         s.City,
		Country:      s.Country,
		Region:       s.Region,
		CountryCode:  s.CountryCode,
	}
}

// UserVersion is the version of a cached user: the Unix microseconds of
// its updated_at (0 if it has none), the order that webhooks about it are
// applied in.
func UserVersion(u *authsvcv1.User) int64 {
	if u.GetUpdatedAt() == nil {
		return 0
	}
	return u.GetUpdatedAt().AsTime().UnixMicro()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// structFromJSON turns a JSON object into a Struct; anything else (null,
// an array, a scalar, invalid JSON) becomes nil.
func structFromJSON(raw json.RawMessage) *structpb.Struct {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil
	}
	return s
}

// structFromMap turns a decoded JSON object into a Struct, or nil.
func structFromMap(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil
	}
	return s
}
