package wachtfake

import (
	"errors"
	"testing"
)

func TestSeedDemo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	d, err := e.s.SeedDemo()
	if err != nil {
		t.Fatalf("SeedDemo: %v", err)
	}
	if len(d.Users) != 3 || len(d.SignIns) != 7 || d.ExpiredSignIn.ID == "" || len(d.Keys) != 2 || d.AppSlug != "orders-api" {
		t.Fatalf("demo = %d users, %d sign-ins, %d keys", len(d.Users), len(d.SignIns), len(d.Keys))
	}
	social := 0
	for _, u := range d.Users {
		if len(u.Emails) == 0 || len(u.Phones) == 0 || len(u.PublicMetadata) == 0 {
			t.Errorf("user %s lacks an email, phone or metadata", u.ID)
		}
		social += len(u.SocialConnections)
		got := e.backend(t, "GET", "/users/"+u.ID+"/sessions", "")
		if n := len(sessionIDs(t, got)); n < 2 || n > 3 {
			t.Errorf("user %s has %d active sign-ins, want 2 or 3", u.ID, n)
		}
	}
	if social != 1 {
		t.Errorf("%d social connections, want 1", social)
	}
	first := "/users/" + d.Users[0].ID + "/sessions"
	if a, b := len(sessionIDs(t, e.backend(t, "GET", first, ""))), len(sessionIDs(t, e.backend(t, "GET", first+"?include_expired=true", ""))); b != a+1 {
		t.Errorf("include_expired lists %d, want %d", b, a+1)
	}

	tok, err := e.s.MintToken(d.TokenClaims)
	if err != nil {
		t.Fatal(err)
	}
	_, claims, err := e.verify(t, tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != d.Users[0].ID || claims["sid"] != d.SignIns[0].SessionID ||
		claims["organization"] != d.OrganizationID || claims["workspace"] != d.WorkspaceID {
		t.Errorf("demo token claims = %v", claims)
	}
	for _, k := range d.Keys {
		r := e.check(t, checkBody(k.Secret, `,"required_permissions":["orders:read"]`))
		if r.status != 200 || r.object(t)["allowed"] != true {
			t.Errorf("key %s: %d %s", k.Key.Name, r.status, r.body)
		}
	}
	if _, err := e.s.SeedDemo(); !errors.Is(err, ErrInvalid) {
		t.Errorf("second SeedDemo = %v, want ErrInvalid", err)
	}
}
