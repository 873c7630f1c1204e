package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a parenthesis, as the kernel allows.
	stat := "4242 (authsvc (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 9 0 1000 0 0"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %v, want %v (utime 250 + stime 75 ticks)", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded, want an error", bad)
		}
	}
}

// TestFloorAnswersBothProtocols drives the no-op servers with the load
// generator's own callers: each call must come back allowed, and a
// signature check that fails must fail the call.
func TestFloorAnswersBothProtocols(t *testing.T) {
	t.Parallel()
	check, err := newSignatureCheck()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		handler http.Handler
		want    outcome
	}{
		{"no-op", http.HandlerFunc(floorHandler), outcomeAllowed},
		{"with a signature check", signatureFloor(check), outcomeAllowed},
		{"with a failing signature check", signatureFloor(func() bool { return false }), outcomeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.EnableHTTP2 = false
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			srv.Config.Protocols = &p
			srv.Start()
			t.Cleanup(srv.Close)
			for _, c := range []caller{newJSONCaller(srv.URL, 4), newGRPCCaller(srv.URL, 2)} {
				for _, r := range []rpc{rpcVerify, rpcCheck} {
					tl, _ := drive(context.Background(), c, r, 50, 4, 10*time.Second, func(int) string { return "tok" })
					if err := tl.check(tc.want, 50); err != nil {
						t.Errorf("%T rpc %d: %v", c, r, err)
					}
				}
				c.close()
			}
		})
	}
}

func TestForgeTokens(t *testing.T) {
	t.Parallel()
	bases := []string{"aGVhZA.Y2xhaW1z.c2ln", "aGVhZA.b3RoZXI.c2ln"}
	toks := forgeTokens(bases, 100)
	seen := map[string]bool{}
	for i, tok := range toks {
		if seen[tok] {
			t.Fatalf("token %d repeats", i)
		}
		seen[tok] = true
		base := bases[i%len(bases)]
		prefix := base[:strings.LastIndexByte(base, '.')+1]
		if !strings.HasPrefix(tok, prefix) || len(tok) != len(prefix)+86 {
			t.Fatalf("token %d = %q, want %q and a 64-byte signature", i, tok, prefix)
		}
	}
}
