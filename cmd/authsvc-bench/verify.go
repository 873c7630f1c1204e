package main

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

func (s *scenarios) verifyRepeated(ctx context.Context) ([]result, error) {
	u := s.b.pools.hot[0]
	tok, err := s.b.emu.fake.MintToken(wachtfake.TokenClaims{UserID: u.userID, SessionID: u.sessionID, Lifetime: tokenLifetime})
	if err != nil {
		return nil, err
	}
	o := s.verify(func(int) string { return tok })
	return s.pair(ctx, "VerifySession, one repeated token", side{op: o, target: &target{minRatio: 0.9}}, side{op: o})
}

// verifyUnique gives every call a token never seen before: the pools are
// sized from the no-op RPC's throughput, an upper bound on verification's.
func (s *scenarios) verifyUnique(ctx context.Context) ([]result, error) {
	o := s.b.o
	under := poolSize(s.baseC.rps(), o.warmup+o.duration) + o.concurrency
	alone := poolSize(s.baseS.rps(), probeWarmup+o.latencyDuration) + 1
	start := time.Now()
	toks, err := s.mintUnique(ctx, under+alone)
	if err != nil {
		return nil, err
	}
	s.b.logger.Info("tokens minted", "count", len(toks), "took", time.Since(start).Round(time.Millisecond))
	underToks, aloneToks := toks[:under], toks[under:]
	return s.pair(ctx, "VerifySession, unique tokens",
		side{op: s.verify(func(i int) string { return underToks[i] }), pool: len(underToks), target: &target{minRatio: 0.6}},
		side{op: s.verify(func(i int) string { return aloneToks[i] }), pool: len(aloneToks)})
}

func poolSize(rps float64, d time.Duration) int {
	return min(maxUniqueTokens, int(math.Ceil(rps*d.Seconds()*1.25)))
}

// mintUnique mints n distinct tokens of the hot users on every core.
func (s *scenarios) mintUnique(ctx context.Context, n int) ([]string, error) {
	toks := make([]string, n)
	hot := s.b.pools.hot
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		mintErr error
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				u := hot[i%len(hot)]
				tok, err := s.b.emu.fake.MintToken(wachtfake.TokenClaims{UserID: u.userID, SessionID: u.sessionID, Lifetime: tokenLifetime})
				if err != nil {
					mu.Lock()
					mintErr = err
					mu.Unlock()
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	if mintErr != nil {
		return nil, mintErr
	}
	return toks, ctx.Err()
}
