package main

import (
	"context"
	"fmt"
	"time"

	"github.com/authsvc/authsvc/internal/wachtfake"
)

// memoryHit reads a few users over and over, each in memory after its
// first read.
func (s *scenarios) memoryHit(ctx context.Context) ([]result, error) {
	hot := s.b.pools.hot
	o := s.getUser(hot)
	if err := s.once(ctx, "load the hot users", o, len(hot)); err != nil {
		return nil, err
	}
	return s.pair(ctx, fmt.Sprintf("GetUser, memory hit (%d users)", len(hot)),
		side{op: o, target: &target{minRatio: 0.9}}, side{op: o})
}

// listSessions lists the sessions of the same few users, each list in
// memory after its first read.
func (s *scenarios) listSessions(ctx context.Context) ([]result, error) {
	hot := s.b.pools.hot
	o := s.listSessionsOp(hot)
	if err := s.once(ctx, "load the hot users' sessions", o, len(hot)); err != nil {
		return nil, err
	}
	return s.pair(ctx, fmt.Sprintf("ListSessions, memory hit (%d users)", len(hot)), side{op: o}, side{op: o})
}

// miss reads users no replica has read, so each call loads from the
// emulator, whose user details route is slowed by o.missLatency.
func (s *scenarios) miss(ctx context.Context) ([]result, error) {
	p := s.b.pools
	s.b.emu.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteUserDetails, Latency: s.b.o.missLatency})
	defer s.b.emu.fake.ClearFaults()
	name := fmt.Sprintf("GetUser, miss (Wacht +%s)", s.b.o.missLatency)
	return s.pair(ctx, name,
		side{op: s.getUser(p.miss), pool: len(p.miss), split: true},
		side{op: s.getUser(p.missSerial), pool: len(p.missSerial), split: true})
}

// preloadPostgres reads the users of the Postgres-hit scenario once here,
// which stores them in Postgres for the next replica.
func (s *scenarios) preloadPostgres(ctx context.Context) ([]result, error) {
	p := s.b.pools
	users := append(append([]seeded(nil), p.pg...), p.pgSerial...)
	return nil, s.once(ctx, "load the Postgres-hit users into Postgres", s.getUser(users), len(users))
}

// postgresHit reads, on a replica that has never read them, users that
// another replica stored in Postgres: each read once, so each is a
// Postgres hit.
func (s *scenarios) postgresHit(ctx context.Context) ([]result, error) {
	p := s.b.pools
	rs, err := s.pair(ctx, "GetUser, Postgres hit (each user once)",
		side{op: s.getUser(p.pg), pool: len(p.pg), split: true},
		side{op: s.getUser(p.pgSerial), pool: len(p.pgSerial), split: true, target: &target{maxP50: time.Millisecond}})
	if err != nil {
		return nil, err
	}
	for i := range rs {
		if rs[i].wachtCalls > 0 {
			rs[i].notes = append(rs[i].notes, fmt.Sprintf("%d calls reached Wacht: not every read was a Postgres hit", rs[i].wachtCalls))
		}
	}
	return rs, nil
}

// coalescing sends many concurrent GetUser calls for one user nothing has
// read, while the emulator holds the first user details call for 200ms so
// that every caller arrives during the load.
func (s *scenarios) coalescing(ctx context.Context) ([]result, error) {
	const hold = 200 * time.Millisecond
	n := s.b.o.coalesceCallers
	s.b.emu.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteUserDetails, Latency: hold, Times: 1})
	defer s.b.emu.fake.ClearFaults()
	before, beforeAll := s.b.emu.fake.Calls(wachtfake.RouteUserDetails), s.b.emu.calls(everyRoute)
	o := s.getUser([]seeded{s.b.pools.coalesce})
	st := load{workers: n, duration: time.Minute, limit: n, timeout: 30 * time.Second, op: o}.run(ctx)
	details := s.b.emu.fake.Calls(wachtfake.RouteUserDetails) - before
	r := result{name: fmt.Sprintf("GetUser, %d concurrent cold calls for one user", n), replica: s.rep.name,
		inFlight: n, stats: st, wachtCalls: s.b.emu.calls(everyRoute) - beforeAll,
		target: &target{maxWachtCalls: 1, wachtCallsOf: details}}
	r.notes = append(r.notes, fmt.Sprintf("%d call(s) to Wacht's user details for %d callers (expected 1); the emulator held the first for %s",
		details, n, hold))
	s.b.logger.Info("measured", "scenario", r.name, "requests", st.requests, "errors", st.errors, "user_details_calls", details)
	return []result{r}, ctx.Err()
}
