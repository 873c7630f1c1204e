package callers_test

import (
	"crypto/tls"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/callers"
)

func TestClientCertificates(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "authsvc test client CA")
	rogue := newPKI(t, "rogue CA")
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	srv := startServer(t, a, nil, tls.VerifyClientCertIfGiven, ca.pool)

	envoyURI := []string{"spiffe://cluster.local/ns/gw/sa/envoy"}
	certs := map[string]*tls.Certificate{
		"envoy":         ca.issue(t, "envoy.mesh", envoyURI, nil),
		"envoy-bad-uri": ca.issue(t, "envoy.mesh", []string{"spiffe://cluster.local/ns/gw/sa/other"}, nil),
		"envoy-no-cn":   ca.issue(t, "someone.else", envoyURI, nil),
		"batch":         ca.issue(t, "batch.internal", nil, nil),
		"mesh-admin":    ca.issue(t, "", []string{"spiffe://cluster.local/ns/ops/sa/admin"}, nil),
		"jobs":          ca.issue(t, "anything", nil, []string{"other.svc", "JOBS.svc"}),
		"stranger":      ca.issue(t, "stranger.internal", []string{"spiffe://cluster.local/ns/x/sa/y"}, []string{"x.svc"}),
		"bound":         ca.issue(t, "bound.internal", nil, nil),
		"shared-a":      ca.issue(t, "shared.internal", nil, nil),
		"shared-both":   ca.issue(t, "shared.internal", nil, []string{"shared.svc"}),
	}
	clients := map[string]*http.Client{"none": srv.httpClient(t, nil)}
	for name, c := range certs {
		clients[name] = srv.httpClient(t, c)
	}

	ok := func(caller string) callResult { return callResult{Caller: caller, Reached: true} }
	unauthenticated := callResult{Code: connect.CodeUnauthenticated}
	tests := []struct {
		name, cert, proc, authorization string
		want                            callResult
	}{
		{"cn and uri san", "envoy", procCheck, "", ok("envoy/cert")},
		{"cn and uri san on AuthService", "envoy", procGetUser, "", ok("envoy/cert")},
		{"reader cert on AdminService", "envoy", procRotate, "", callResult{Code: connect.CodePermissionDenied}},
		{"right cn wrong uri san", "envoy-bad-uri", procCheck, "", unauthenticated},
		{"right uri san wrong cn", "envoy-no-cn", procCheck, "", unauthenticated},
		{"cn only", "batch", procGetUser, "", ok("batch/cert")},
		{"uri san only admin", "mesh-admin", procRotate, "", ok("mesh-admin/cert")},
		{"dns san any case", "jobs", procGetUser, "", ok("jobs/cert")},
		{"verified but unknown", "stranger", procGetUser, "", unauthenticated},
		{"no certificate", "none", procGetUser, "", unauthenticated},
		{"token decides over cert", "envoy", procRotate, "Bearer " + adminToken, ok("ops/token")},
		{"bad token with good cert", "envoy", procGetUser, "Bearer " + wrongToken, unauthenticated},
		{"empty bearer with good cert", "envoy", procGetUser, "Bearer ", unauthenticated},
		{"basic auth header with good cert", "batch", procGetUser, "Basic eDp5", ok("batch/cert")},
		{"bound token with its cert", "bound", procRotate, "Bearer " + boundToken, ok("bound/token")},
		{"bound token with another cert", "batch", procRotate, "Bearer " + boundToken, unauthenticated},
		{"bound cert without its token", "bound", procGetUser, "", unauthenticated},
		{"overlapping identities, one match", "shared-a", procGetUser, "", ok("amb-a/cert")},
		{"overlapping identities, two matches", "shared-both", procGetUser, "", unauthenticated},
	}
	for _, p := range protocols {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := srv.callEmpty(t, clients[tt.cert], p, tt.proc, tt.authorization)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("call %s with cert %s (-want +got):\n%s\nerr: %v", tt.proc, tt.cert, diff, err)
				}
			})
		}
	}

	// A certificate from another CA fails the handshake: the server never
	// sees the request.
	t.Run("unverified certificate", func(t *testing.T) {
		t.Parallel()
		hc := srv.httpClient(t, rogue.issue(t, "envoy.mesh", envoyURI, nil))
		for _, p := range protocols {
			got, err := srv.callEmpty(t, hc, p, procCheck, "")
			if err == nil || got.Reached {
				t.Errorf("%s: call with a rogue certificate: %+v, err %v; want a failed handshake", p.name, got, err)
			}
		}
	})
}

// A server that asks for a certificate but does not verify it leaves
// VerifiedChains empty; such a certificate must not name a caller.
func TestUnverifiedPeerCertificate(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "authsvc test client CA")
	rogue := newPKI(t, "rogue CA")
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	srv := startServer(t, a, nil, tls.RequireAnyClientCert, nil)
	for _, issuer := range []*testPKI{ca, rogue} {
		hc := srv.httpClient(t, issuer.issue(t, "envoy.mesh", []string{"spiffe://cluster.local/ns/gw/sa/envoy"}, nil))
		for _, p := range protocols {
			got, err := srv.callEmpty(t, hc, p, procCheck, "")
			if diff := cmp.Diff(callResult{Code: connect.CodeUnauthenticated}, got); diff != "" {
				t.Errorf("%s: unverified certificate (-want +got):\n%s\nerr: %v", p.name, diff, err)
			}
		}
	}
}
