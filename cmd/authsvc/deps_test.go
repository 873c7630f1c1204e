package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the layering: the binary and the composition
// root carry no test code, the Wacht client and the cache know nothing of
// Connect or of each other, the handlers never reach the emulator, the
// token verifier keeps off the cache, and caller authentication knows no
// API of its own (the policy naming the services lives in internal/app).
func TestDependencies(t *testing.T) {
	t.Parallel()
	const mod = "github.com/authsvc/authsvc/"
	tests := []struct {
		pkg string
		bad []string
	}{
		{mod + "cmd/authsvc", []string{"testing", mod + "internal/pgtest", mod + "internal/e2e"}},
		{mod + "internal/wachtclient", []string{"connectrpc.com/connect", mod + "internal/cache", mod + "gen/authsvc/v1"}},
		{mod + "internal/cache", []string{"connectrpc.com/connect", mod + "internal/wachtclient", mod + "gen/authsvc/v1"}},
		{mod + "internal/app", []string{"testing", mod + "internal/pgtest", mod + "internal/wachtfake"}},
		{mod + "internal/service", []string{mod + "internal/wachtfake"}},
		{mod + "internal/sessiontoken", []string{mod + "internal/cache"}},
		{mod + "internal/callers", []string{mod + "gen/authsvc/v1", mod + "gen/authsvc/v1/authsvcv1connect"}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, bad := range tt.bad {
			if slices.Contains(deps, bad) {
				t.Errorf("%s depends on %s", tt.pkg, bad)
			}
		}
	}
}
