package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// staleHeader marks an answer served from a stale cache entry.
const staleHeader = "Authsvc-Stale"

// scaleRPC is one of the RPCs of the scale scenario's mix.
type scaleRPC int

const (
	rpcVerifySession scaleRPC = iota // with check_revocation and include_user
	rpcGetUser
	rpcListSessions
	numScaleRPCs
)

func (r scaleRPC) String() string {
	return [...]string{"VerifySession", "GetUser", "ListSessions"}[r]
}

// mix is the share of calls of each RPC, in order of scaleRPC.
var mix = [numScaleRPCs]float64{0.4, 0.4, 0.2}

// pickRPC maps a uniform number in [0, 1) to an RPC of the mix.
func pickRPC(u float64) scaleRPC {
	for r := range numScaleRPCs {
		if u < mix[r] {
			return r
		}
		u -= mix[r]
	}
	return numScaleRPCs - 1
}

// scaleUser is a seeded user, its current sign-in and the session token
// its browser holds.
type scaleUser struct {
	id string

	mu        sync.Mutex
	signInID  string
	sessionID string
	token     string
	minted    time.Time

	// read is set once a GetUser or VerifySession of the user succeeded,
	// sessionsRead once a ListSessions or VerifySession did: from then on
	// the user, or its session list, is in the cache.
	read, sessionsRead atomic.Bool
}

// currentToken returns the user's token and its session, minting a new
// one when the last is older than every, as a browser refreshes it.
func (u *scaleUser) currentToken(fake *wachtfake.Server, every time.Duration) (string, string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.token == "" || time.Since(u.minted) >= every {
		tok, err := fake.MintToken(wachtfake.TokenClaims{UserID: u.id, SessionID: u.sessionID})
		if err != nil {
			return "", "", err
		}
		u.token, u.minted = tok, time.Now()
	}
	return u.token, u.sessionID, nil
}

// session returns the user's current session.
func (u *scaleUser) session() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sessionID
}

// picker draws users from a Zipf distribution; user 0 is the hottest. It
// is safe for concurrent use.
type picker struct {
	mu   sync.Mutex
	rng  *rand.Rand
	zipf *rand.Zipf
}

func newPicker(seed uint64, s float64, n int) *picker {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &picker{rng: rng, zipf: rand.NewZipf(rng, s, 1, uint64(n-1))}
}

func (p *picker) user() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int(p.zipf.Uint64())
}

// float returns a uniform number in [0, 1).
func (p *picker) float() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

// gap returns an exponential gap between arrivals at rate a second.
func (p *picker) gap(rate float64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Duration(p.rng.ExpFloat64() / rate * float64(time.Second))
}

// rpcTally is what the calls of one RPC measured.
type rpcTally struct {
	took  []time.Duration // every call's, failed ones included
	ok    int
	stale int // of ok
	codes map[connect.Code]int
	// signedOut counts VerifySession calls refused because the token's
	// session had been signed out while the call was on its way: right
	// answers, not errors.
	signedOut int
}

// callTallies are the tallies of every RPC, safe for concurrent use.
type callTallies struct {
	mu sync.Mutex
	by [numScaleRPCs]rpcTally
}

func (t *callTallies) add(r scaleRPC, took time.Duration, err error, stale, signedOut bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rt := &t.by[r]
	rt.took = append(rt.took, took)
	switch {
	case signedOut:
		rt.signedOut++
	case err != nil:
		if rt.codes == nil {
			rt.codes = map[connect.Code]int{}
		}
		rt.codes[connect.CodeOf(err)]++
	default:
		rt.ok++
		if stale {
			rt.stale++
		}
	}
}

// snapshot returns the tallies with their latencies sorted.
func (t *callTallies) snapshot() [numScaleRPCs]rpcTally {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.by
	for i := range out {
		out[i].took = slices.Clone(out[i].took)
		slices.Sort(out[i].took)
	}
	return out
}

// isStale reports whether an answer was marked stale, in a header or a
// trailer.
func isStale(h interface{ Get(string) string }, t interface{ Get(string) string }) bool {
	return h.Get(staleHeader) != "" || t.Get(staleHeader) != ""
}

// call makes one call of the mix for user u on replica replica.
// For VerifySession it also returns the session of the token it sent.
func (l *scaleLoad) call(ctx context.Context, replica int, r scaleRPC, u *scaleUser) (stale bool, sid string, err error) {
	a, _ := l.clients[replica].pick(int(l.seq.Add(1)))
	switch r {
	case rpcVerifySession:
		tok, sid, err := u.currentToken(l.fake, l.so.tokenEvery)
		if err != nil {
			return false, "", err
		}
		res, err := a.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{
			Token: tok, IncludeUser: true, CheckRevocation: true,
		}))
		if err != nil {
			return false, sid, err
		}
		u.read.Store(true)
		u.sessionsRead.Store(true)
		return isStale(res.Header(), res.Trailer()), sid, nil
	case rpcGetUser:
		res, err := a.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: u.id}))
		if err != nil {
			return false, "", err
		}
		u.read.Store(true)
		return isStale(res.Header(), res.Trailer()), "", nil
	default:
		res, err := a.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: u.id}))
		if err != nil {
			return false, "", err
		}
		u.sessionsRead.Store(true)
		return isStale(res.Header(), res.Trailer()), "", nil
	}
}

// arrive drives the open-loop arrivals from start until end; calls that
// start at or after measureFrom are tallied. It returns once every call
// has ended.
func (l *scaleLoad) arrive(ctx context.Context, start, measureFrom, end time.Time) {
	var wg sync.WaitGroup
	p := newPicker(1, l.so.zipfS, len(l.users))
	next := start
	for i := 0; ctx.Err() == nil; i++ {
		next = next.Add(p.gap(l.so.rate))
		if !next.Before(end) {
			break
		}
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		u := l.users[p.user()]
		r := pickRPC(p.float())
		measured := !next.Before(measureFrom)
		replica := i % len(l.clients)
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, l.so.deadline)
			defer cancel()
			t0 := time.Now()
			stale, sid, err := l.call(cctx, replica, r, u)
			took := time.Since(t0)
			if !measured || ctx.Err() != nil {
				return
			}
			// A token of a session signed out meanwhile is rightly refused.
			signedOut := err != nil && r == rpcVerifySession && connect.CodeOf(err) == connect.CodeUnauthenticated && u.session() != sid
			l.tallies.add(r, took, err, stale, signedOut)
		})
	}
	wg.Wait()
}
