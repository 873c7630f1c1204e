package wachtfake

import (
	"fmt"
	"time"
)

// Demo is what [Server.SeedDemo] stored, for the dev server to print.
type Demo struct {
	Users []User
	// SignIns are the active sign-ins, grouped by user in Users order.
	SignIns []SignIn
	// ExpiredSignIn belongs to Users[0]; it is listed only with
	// include_expired=true.
	ExpiredSignIn  SignIn
	OrganizationID string
	WorkspaceID    string
	// TokenClaims are the claims of a session token for Users[0]'s first
	// sign-in in the demo organisation and workspace; mint it with
	// [Server.MintToken], setting Lifetime for a long-lived demo token.
	TokenClaims TokenClaims
	AppSlug     string
	Keys        []DemoKey
	// SessionCookies are __session cookie values, one per user for the
	// user's most recent sign-in (Users[0]'s with TokenClaims), for
	// GET /session/token.
	SessionCookies []DemoSessionCookie
	// DevSession is a development session of Users[0] with TokenClaims.
	DevSession string
}

// DemoSessionCookie is a seeded __session cookie value and whose it is.
type DemoSessionCookie struct {
	UserID    string
	SessionID string
	Value     string
}

// DemoKey is a seeded API key with its secret.
type DemoKey struct {
	Key    APIKey
	Secret string
}

type demoSignIn struct {
	age, idle                      time.Duration
	ip, browser, device            string
	city, region, regionCode       string
	country, countryCode           string
	activeOrgContext, expiredInSet bool
}

// SeedDemo stores demo data: three users (the first with a Google
// connection and an organisation and workspace context), two or three
// active sign-ins each plus one expired sign-in, a session cookie per user
// and a development session, and the API-auth app "orders-api" with two
// keys. It fails if called twice.
func (s *Server) SeedDemo() (Demo, error) {
	now := s.now()
	d := Demo{AppSlug: "orders-api"}
	s.mu.Lock()
	if _, seeded := s.apps[d.AppSlug]; seeded {
		s.mu.Unlock()
		return Demo{}, fmt.Errorf("seed demo: app %s exists: %w", d.AppSlug, ErrInvalid)
	}
	d.OrganizationID = s.newIDLocked()
	d.WorkspaceID = s.newIDLocked()
	orgMembership, wsMembership := s.newIDLocked(), s.newIDLocked()
	s.mu.Unlock()

	accessToken, err := randomSecret("ya29")
	if err != nil {
		return Demo{}, fmt.Errorf("seed demo: %w", err)
	}
	refreshToken, err := randomSecret("1//0g")
	if err != nil {
		return Demo{}, fmt.Errorf("seed demo: %w", err)
	}
	day := 24 * time.Hour
	users := []User{{
		CreatedAt: now.Add(-90 * day), FirstName: "Ada", LastName: "Lovelace", Username: "ada",
		ProfilePictureURL:              "https://img.example.com/avatars/ada.png",
		SecondFactorPolicy:             "optional",
		ActiveOrganizationMembershipID: orgMembership, ActiveWorkspaceMembershipID: wsMembership,
		PublicMetadata:  map[string]any{"plan": "pro", "locale": "en-GB"},
		PrivateMetadata: map[string]any{"stripe_customer_id": "cus_demo_ada"},
		Emails: []Email{
			{Email: "ada@example.com", Primary: true, Verified: true, VerificationStrategy: "oauth_google"},
			{Email: "ada.lovelace@analytical.example", Verified: true},
		},
		Phones: []Phone{{PhoneNumber: "2079460958", CountryCode: "+44", Primary: true, Verified: true}},
		SocialConnections: []SocialConnection{{
			Provider: "google_oauth", EmailAddress: "ada@example.com",
			AccessToken: accessToken, RefreshToken: refreshToken,
		}},
		HasPassword: true,
	}, {
		CreatedAt: now.Add(-60 * day), FirstName: "Grace", LastName: "Hopper", Username: "grace",
		PublicMetadata: map[string]any{"plan": "team"},
		Emails:         []Email{{Email: "grace@example.com", Primary: true, Verified: true}},
		Phones:         []Phone{{PhoneNumber: "2025550143", CountryCode: "+1", Primary: true, Verified: true}},
		HasPassword:    true, HasBackupCodes: true, SecondFactorPolicy: "enforced",
	}, {
		CreatedAt: now.Add(-30 * day), FirstName: "Alan", LastName: "Turing",
		PublicMetadata: map[string]any{"plan": "free"},
		Emails:         []Email{{Email: "alan@example.org", Primary: true, Verified: true}},
		Phones:         []Phone{{PhoneNumber: "1614960000", CountryCode: "+44", Primary: true, Verified: true}},
	}}
	signIns := [][]demoSignIn{{
		{age: 3 * day, idle: 2 * time.Minute, ip: "81.2.69.160", browser: "Chrome 131", device: "macOS",
			city: "London", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB", activeOrgContext: true},
		{age: 10 * day, idle: 5 * time.Hour, ip: "81.2.69.161", browser: "Safari 18", device: "iPhone",
			city: "London", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB"},
		{age: 20 * day, idle: 2 * day, ip: "2.125.160.216", browser: "Firefox 133", device: "Windows",
			city: "Manchester", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB"},
		{age: 40 * day, idle: 33 * day, ip: "2.125.160.217", browser: "Edge 130", device: "Windows",
			city: "Bristol", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB", expiredInSet: true},
	}, {
		{age: 1 * day, idle: 10 * time.Minute, ip: "216.160.83.56", browser: "Chrome 131", device: "Linux",
			city: "Arlington", region: "Virginia", regionCode: "VA", country: "United States", countryCode: "US"},
		{age: 6 * day, idle: 20 * time.Hour, ip: "216.160.83.57", browser: "Safari 18", device: "iPad",
			city: "Washington", region: "District of Columbia", regionCode: "DC", country: "United States", countryCode: "US"},
	}, {
		{age: 2 * day, idle: 30 * time.Minute, ip: "89.160.20.112", browser: "Firefox 133", device: "Linux",
			city: "Manchester", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB"},
		{age: 4 * day, idle: 3 * time.Hour, ip: "89.160.20.113", browser: "Chrome 131", device: "Android",
			city: "Wilmslow", region: "England", regionCode: "ENG", country: "United Kingdom", countryCode: "GB"},
	}}

	for i, u := range users {
		added, err := s.AddUser(u)
		if err != nil {
			return Demo{}, fmt.Errorf("seed demo: %w", err)
		}
		d.Users = append(d.Users, added)
		for _, ds := range signIns[i] {
			si := SignIn{
				CreatedAt: now.Add(-ds.age), LastActiveAt: now.Add(-ds.idle),
				ExpiresAt: now.Add(-ds.age).Add(DefaultSignInLifetime * 4),
				IPAddress: ds.ip, Browser: ds.browser, Device: ds.device, City: ds.city,
				Region: ds.region, RegionCode: ds.regionCode, Country: ds.country, CountryCode: ds.countryCode,
			}
			if ds.expiredInSet {
				si.ExpiresAt = now.Add(-ds.idle).Add(day)
			}
			if ds.activeOrgContext {
				si.ActiveOrganizationMembershipID, si.ActiveWorkspaceMembershipID = orgMembership, wsMembership
			}
			stored, err := s.AddSignIn(added.ID, si)
			if err != nil {
				return Demo{}, fmt.Errorf("seed demo: %w", err)
			}
			if ds.expiredInSet {
				d.ExpiredSignIn = stored
			} else {
				d.SignIns = append(d.SignIns, stored)
			}
		}
	}
	d.TokenClaims = TokenClaims{
		UserID:                  d.Users[0].ID,
		SessionID:               d.SignIns[0].SessionID,
		Organization:            d.OrganizationID,
		Workspace:               d.WorkspaceID,
		OrganizationPermissions: []string{"org:billing:manage", "org:members:read"},
		WorkspacePermissions:    []string{"orders:read", "orders:write"},
	}

	for _, u := range d.Users {
		claims := TokenClaims{UserID: u.ID}
		for _, si := range d.SignIns {
			if si.UserID == u.ID {
				claims.SessionID = si.SessionID
				break
			}
		}
		if u.ID == d.TokenClaims.UserID {
			claims = d.TokenClaims
		}
		value, err := s.IssueSessionCookie(claims)
		if err != nil {
			return Demo{}, fmt.Errorf("seed demo: %w", err)
		}
		d.SessionCookies = append(d.SessionCookies, DemoSessionCookie{UserID: u.ID, SessionID: claims.SessionID, Value: value})
	}
	if d.DevSession, err = s.IssueDevSession(d.TokenClaims); err != nil {
		return Demo{}, fmt.Errorf("seed demo: %w", err)
	}

	if err := s.AddAPIAuthApp(APIAuthApp{
		Slug: d.AppSlug, Name: "Orders API", KeyPrefix: "sk_orders",
		Description: "Demo API protected by Wacht API keys",
	}); err != nil {
		return Demo{}, fmt.Errorf("seed demo: %w", err)
	}
	for _, k := range []APIKey{
		{Name: "checkout-service", Permissions: []string{"orders:read", "orders:write"}, Metadata: map[string]any{"team": "checkout"}},
		{Name: "reporting-job", Permissions: []string{"orders:read"}, Metadata: map[string]any{"team": "analytics"}},
	} {
		key, secret, err := s.AddAPIKey(d.AppSlug, k)
		if err != nil {
			return Demo{}, fmt.Errorf("seed demo: %w", err)
		}
		d.Keys = append(d.Keys, DemoKey{Key: key, Secret: secret})
	}
	return d, nil
}
