package sessiontoken

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// flight is one key set fetch that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error
}

// Refresh fetches and installs the key set now, ignoring the refetch rate
// limit but joining a fetch already under way. It returns an error when the
// fetch fails or the document holds no usable key; the keys already known
// are then kept.
func (v *Verifier) Refresh(ctx context.Context) error {
	f, _ := v.startFetch(ctx, true)
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run refreshes the key set every [Config.RefreshInterval] until ctx is done.
// The schedule is fixed: using a key never postpones a refresh. After a
// failed refresh it retries sooner, starting at [Config.MinRefetchInterval]
// and doubling up to RefreshInterval, so a service that started without keys
// gets them as soon as the key set is reachable.
func (v *Verifier) Run(ctx context.Context) {
	retry := v.minRefetch
	next := v.refreshEvery
	if !v.Ready() {
		next = retry
	}
	timer := time.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := v.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			v.logger.Warn("session token key set refresh failed",
				slog.Any("error", err), slog.Duration("retry_in", retry), slog.Bool("ready", v.Ready()))
			next = retry
			retry = min(retry*2, v.refreshEvery)
		} else {
			next = v.refreshEvery
			retry = v.minRefetch
		}
		timer.Reset(next)
	}
}

// refetch is the on-demand fetch used when a token names an unknown kid or
// fails the signature check. Concurrent callers share one fetch, and a new
// fetch starts at most once per MinRefetchInterval. It returns once the
// shared fetch is done, at once when the rate limit forbids a fetch, or
// with ctx's error when ctx ends first.
func (v *Verifier) refetch(ctx context.Context) error {
	f, ok := v.startFetch(ctx, false)
	if !ok {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetch joins the fetch under way or starts one. Unless force is set, a
// new fetch is refused (ok false) within MinRefetchInterval of the last one.
func (v *Verifier) startFetch(ctx context.Context, force bool) (f *flight, ok bool) {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if v.inflight != nil {
		return v.inflight, true
	}
	now := v.now()
	if !force && !v.lastFetch.IsZero() && now.Sub(v.lastFetch) < v.minRefetch && now.Sub(v.lastFetch) >= 0 {
		return nil, false
	}
	v.lastFetch = now
	f = &flight{done: make(chan struct{})}
	v.inflight = f
	// The fetch outlives any one waiter: it runs detached from ctx's
	// cancellation (keeping its values) under its own timeout.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.fetchTimeout)
	go func() {
		defer cancel()
		err := v.load(fctx)
		v.fetchMu.Lock()
		v.inflight = nil
		v.fetchMu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f, true
}

// load fetches and parses the key set and installs it if it has usable
// keys. When keys disappear, the verified-token cache is cleared.
func (v *Verifier) load(ctx context.Context) (err error) {
	defer func() { v.observer.ObserveJWKSRefresh(err == nil) }()
	raw, err := v.fetcher.FetchJWKS(ctx)
	if err != nil {
		return fmt.Errorf("fetch key set: %w", err)
	}
	old := v.keys.Load()
	set, err := parseKeySet(raw, old, v.logger)
	if err != nil {
		return err
	}
	if old != nil && sameKeys(old, set) {
		return nil
	}
	v.keys.Store(set)
	removed := set.removedFrom(old)
	if removed {
		v.cache.InvalidateAll()
	}
	v.logger.Info("session token key set updated",
		slog.Any("kids", set.kids()), slog.Bool("keys_removed", removed))
	return nil
}

// sameKeys reports whether a and b hold the same keys in the same order.
func sameKeys(a, b *keySet) bool {
	return slices.Equal(a.keys, b.keys)
}
