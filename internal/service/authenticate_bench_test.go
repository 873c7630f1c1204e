package service_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/authsvc/authsvc/internal/benchratio"
)

// checkCase is a Check request carrying one kind of credential.
type checkCase struct {
	name string
	req  func(c edgeCreds) *authv3.CheckRequest
}

var checkCases = []checkCase{
	{"bearer", func(c edgeCreds) *authv3.CheckRequest {
		return checkRequest(shapeHeaders, envoyHeaders("authorization", "Bearer "+c.token), nil)
	}},
	{"token_cookie", func(c edgeCreds) *authv3.CheckRequest {
		return checkRequest(shapeHeaders, envoyHeaders("cookie", "_ga=GA1.2.3; theme=dark; "+tokenCookie+"="+c.token), nil)
	}},
	{"session_cookie_cached", func(c edgeCreds) *authv3.CheckRequest {
		return checkRequest(shapeHeaders, envoyHeaders("cookie", "_ga=GA1.2.3; theme=dark; __session="+c.cookie), nil)
	}},
}

// envoyHeaders is a header map as Envoy sends it for a browser request,
// with the credential header added.
func envoyHeaders(name, value string) map[string]string {
	return map[string]string{
		":authority": "orders.example.com", ":method": "GET", ":path": "/orders/7", ":scheme": "https",
		"accept": "application/json", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
		"x-forwarded-proto": "https", "x-request-id": "4b7c3f1e-9a2d-4e8b-b1c6-2f0d8e7a5c34",
		name: value,
	}
}

// edgeBench is an edgeRig with its demo credentials, warmed up so that
// every cached case is a cache hit.
func newEdgeBench(b *testing.B) (*edgeRig, edgeCreds) {
	b.Helper()
	r := newEdgeRig(b, edgeRigConfig{})
	c := benchCreds(b, r)
	for _, cc := range checkCases {
		res, err := r.envoy.Check(b.Context(), cc.req(c))
		if err != nil || res.GetOkResponse() == nil {
			b.Fatalf("%s: %v %v", cc.name, res, err)
		}
	}
	return r, c
}

// benchCreds is edgeRig.creds for benchmarks: a token that outlives the
// run.
func benchCreds(b *testing.B, r *edgeRig) edgeCreds {
	b.Helper()
	claims := r.demo.TokenClaims
	claims.Lifetime = benchTokenLifetime
	tok, err := r.fake.MintToken(claims)
	if err != nil {
		b.Fatal(err)
	}
	return edgeCreds{token: tok, cookie: r.demo.SessionCookies[0].Value}
}

// BenchmarkCheck is Envoy's Check through grpc-go for each credential
// kind, every cache warm, benchConcurrency calls in flight.
func BenchmarkCheck(b *testing.B) {
	r, c := newEdgeBench(b)
	for _, cc := range checkCases {
		b.Run(cc.name, func(b *testing.B) {
			req := cc.req(c)
			b.ReportAllocs()
			b.SetParallelism(benchConcurrency)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := r.envoy.Check(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Fixed work of BenchmarkCheckRatios: checkRounds rounds of a batch of
// checkBatch calls per case, benchConcurrency in flight.
const (
	checkRounds = 7
	checkBatch  = 4000
)

// BenchmarkCheckRatios measures Check with each credential kind against
// Check with a bearer token on the same server, in rounds that alternate
// which goes first, and reports ratio_vs_bearer: the median over the
// rounds of the case's throughput divided by the bearer's (1 means as
// fast). The target for a cached session cookie exchange is >= 0.9. It
// does a fixed amount of work whatever b.N is.
func BenchmarkCheckRatios(b *testing.B) {
	r, c := newEdgeBench(b)
	bearer := checkCases[0].req(c)
	for _, cc := range checkCases[1:] {
		b.Run(cc.name, func(b *testing.B) {
			req := cc.req(c)
			c := benchratio.Comparison{Rounds: checkRounds, Order: benchratio.Alternate,
				Baseline: r.checkSide(b, bearer), Case: r.checkSide(b, req)}
			var ratios benchratio.Ratios
			for range b.N {
				var err error
				if ratios, err = c.Run(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(ratios.Median(), "ratio_vs_bearer")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// checkSide is a side of BenchmarkCheckRatios: a batch of Checks with
// req, whose throughput it returns.
func (r *edgeRig) checkSide(b *testing.B, req *authv3.CheckRequest) benchratio.Side {
	return func(context.Context, int) (float64, error) {
		return checkBatch / r.checkBatch(b, req).Seconds(), nil
	}
}

// checkBatch sends checkBatch Checks, benchConcurrency at a time, and
// returns how long they took.
func (r *edgeRig) checkBatch(b *testing.B, req *authv3.CheckRequest) time.Duration {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for next.Add(1) <= checkBatch {
				res, err := r.envoy.Check(b.Context(), req)
				if err != nil || res.GetOkResponse() == nil {
					b.Errorf("Check: %v %v", res.GetDeniedResponse(), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
