package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// changePrefix starts the first name a change gives a user; the change's
// number follows.
const changePrefix = "Changed "

// webhookAttempts bounds the deliveries of one event, as Wacht retries
// one answered 5xx, 408 or 429.
const webhookAttempts = 5

// lag is how long one change or sign-out took to show.
type lag struct {
	took time.Duration
	seen bool
	// cached reports that the user (for a change) or its session list (for
	// a sign-out) had been read before the event, so was in the cache.
	cached bool
}

// lagTally collects the lags of one kind of event.
type lagTally struct {
	mu   sync.Mutex
	lags []lag
}

func (t *lagTally) add(l lag) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lags = append(t.lags, l)
}

func (t *lagTally) snapshot() []lag {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lags)
}

// webhookTally counts deliveries.
type webhookTally struct {
	delivered atomic.Int64 // events answered 2xx
	retried   atomic.Int64 // attempts answered 5xx, 408, 429 or not at all
	failed    atomic.Int64 // events given up on, or refused with another 4xx
}

// events makes a change every changeEvery and a sign-out every
// revokeEvery from start until end, each followed by its webhook and
// watched until it shows; it returns once every watch has ended.
func (l *scaleLoad) events(ctx context.Context, start, end time.Time) {
	var wg sync.WaitGroup
	p := newPicker(2, l.so.zipfS, len(l.users))
	every := func(d time.Duration, do func(u *scaleUser)) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if !now.Before(end) {
					return
				}
				u := l.users[p.user()]
				wg.Go(func() { do(u) })
			}
		}
	}
	if d := time.Until(start); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	var gens sync.WaitGroup
	gens.Go(func() { every(l.so.changeEvery, func(u *scaleUser) { l.change(ctx, u) }) })
	gens.Go(func() { every(l.so.revokeEvery, func(u *scaleUser) { l.signOut(ctx, u) }) })
	gens.Wait()
	wg.Wait()
}

// change gives the user a new first name in the emulator, delivers
// user.updated, and watches GetUser until it shows the name.
func (l *scaleLoad) change(ctx context.Context, u *scaleUser) {
	n := l.changeSeq.Add(1)
	name := changePrefix + strconv.FormatInt(n, 10)
	cached := u.read.Load()
	if err := l.fake.UpdateUser(u.id, func(x *wachtfake.User) { x.FirstName = name }); err != nil {
		l.eventErr(err)
		return
	}
	t0 := time.Now()
	data, err := l.fake.UserEventData(u.id)
	if err != nil {
		l.eventErr(err)
		return
	}
	l.deliver(ctx, "user.updated", data)
	took, seen := l.watch(ctx, t0, func(ctx context.Context, a int) bool {
		res, err := l.probeClient(a).GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: u.id}))
		return err == nil && changeNumber(res.Msg.GetUser().GetFirstName()) >= n
	})
	l.changeLags.add(lag{took: took, seen: seen, cached: cached})
}

// changeNumber returns the number of the change a first name shows, or
// 0.
func changeNumber(firstName string) int64 {
	n, err := strconv.ParseInt(strings.TrimPrefix(firstName, changePrefix), 10, 64)
	if err != nil || !strings.HasPrefix(firstName, changePrefix) {
		return 0
	}
	return n
}

// signOut signs the user in anew (session.created), moves its browser to
// the new session, signs the old one out in the emulator (session.deleted)
// and watches VerifySession with check_revocation until it refuses a
// token of the old session.
func (l *scaleLoad) signOut(ctx context.Context, u *scaleUser) {
	cached := u.sessionsRead.Load()
	si, err := l.fake.AddSignIn(u.id, wachtfake.SignIn{IPAddress: "192.0.2.11", Browser: "Firefox 133", Device: "Linux",
		City: "Berlin", Country: "Germany", CountryCode: "DE"})
	if err != nil {
		l.eventErr(err)
		return
	}
	data, err := l.fake.SessionEventData(si.SessionID)
	if err != nil {
		l.eventErr(err)
		return
	}
	l.deliver(ctx, "session.created", data)

	u.mu.Lock()
	oldSignIn, oldSession := u.signInID, u.sessionID
	u.signInID, u.sessionID, u.token = si.ID, si.SessionID, ""
	u.mu.Unlock()
	tok, err := l.fake.MintToken(wachtfake.TokenClaims{UserID: u.id, SessionID: oldSession})
	if err != nil {
		l.eventErr(err)
		return
	}
	if _, err := l.fake.SignOut(u.id, oldSignIn); err != nil {
		l.eventErr(err)
		return
	}
	t0 := time.Now()
	if data, err = l.fake.SessionEventData(oldSession); err != nil {
		l.eventErr(err)
		return
	}
	l.deliver(ctx, "session.deleted", data)
	took, seen := l.watch(ctx, t0, func(ctx context.Context, a int) bool {
		_, err := l.probeClient(a).VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{
			Token: tok, CheckRevocation: true,
		}))
		return connect.CodeOf(err) == connect.CodeUnauthenticated
	})
	l.revokeLags.add(lag{took: took, seen: seen, cached: cached})
}

// watch calls shows, on the replicas in turn, until it reports true or
// the probe limit passes: every 10 ms for the first second, every 100 ms
// to 10 s, then every 500 ms. It returns the time from t0 to the answer
// that showed it.
func (l *scaleLoad) watch(ctx context.Context, t0 time.Time, shows func(ctx context.Context, replica int) bool) (time.Duration, bool) {
	for i := 0; ctx.Err() == nil; i++ {
		cctx, cancel := context.WithTimeout(ctx, l.so.deadline)
		ok := shows(cctx, i%len(l.clients))
		cancel()
		since := time.Since(t0)
		if ok {
			return since, true
		}
		if since >= l.so.probeLimit {
			break
		}
		pause := 10 * time.Millisecond
		switch {
		case since >= 10*time.Second:
			pause = 500 * time.Millisecond
		case since >= time.Second:
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return 0, false
}

// deliver posts an event to the replicas' webhook endpoint in turn, as a
// load balancer in front of them would, retrying as Wacht does.
func (l *scaleLoad) deliver(ctx context.Context, eventType string, data map[string]any) {
	for attempt := range webhookAttempts {
		url := l.replicas[int(l.hookSeq.Add(1))%len(l.replicas)].url + "/webhooks/wacht"
		status, err := l.fake.SendWebhook(ctx, url, l.secret, eventType, data)
		switch {
		case err == nil && status >= 200 && status < 300:
			l.hooks.delivered.Add(1)
			return
		case err == nil && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			l.hooks.failed.Add(1)
			l.eventErr(fmt.Errorf("webhook %s answered %d", eventType, status))
			return
		case attempt < webhookAttempts-1:
			l.hooks.retried.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	l.hooks.failed.Add(1)
}

// probeClient returns the AuthService client of replica a used to watch
// for events.
func (l *scaleLoad) probeClient(a int) authClient {
	c, _ := l.clients[a].pick(int(l.seq.Add(1)))
	return c
}

// eventErr records the first failure to make an event in the emulator.
func (l *scaleLoad) eventErr(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.firstEventErr == nil {
		l.firstEventErr = err
	}
}
