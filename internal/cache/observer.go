package cache

import "time"

// Source is the level of the cache that answered a read.
type Source uint8

// The levels of the cache.
const (
	// SourceMemory is the in-process level.
	SourceMemory Source = iota + 1
	// SourcePostgres is the level shared by every replica.
	SourcePostgres
	// SourceLoad is the loader, called because no level had a fresh entry.
	SourceLoad
)

// String returns "memory", "postgres" or "load".
func (s Source) String() string {
	switch s {
	case SourceMemory:
		return "memory"
	case SourcePostgres:
		return "postgres"
	case SourceLoad:
		return "load"
	default:
		return "unknown"
	}
}

// Outcome is how a read ended.
type Outcome uint8

// The outcomes of a read.
const (
	// OutcomeFresh is a value within its TTL.
	OutcomeFresh Outcome = iota + 1
	// OutcomeStale is a value past its TTL, served because a load failed.
	OutcomeStale
	// OutcomeRefreshing is a value past its TTL but within MaxAge, served
	// while it is refreshed in the background.
	OutcomeRefreshing
	// OutcomeNotFound is an authoritative "not found", loaded or remembered.
	OutcomeNotFound
	// OutcomeError is a failed read.
	OutcomeError
)

// String returns "fresh", "stale", "refreshing", "not_found" or "error".
func (o Outcome) String() string {
	switch o {
	case OutcomeFresh:
		return "fresh"
	case OutcomeStale:
		return "stale"
	case OutcomeRefreshing:
		return "refreshing"
	case OutcomeNotFound:
		return "not_found"
	case OutcomeError:
		return "error"
	default:
		return "unknown"
	}
}

// Observer is told what a cache does, for metrics. Its methods are called
// on the read path, concurrently, and must be quick.
type Observer interface {
	// ObserveRead reports one Get or Reload of a cache of the given kind:
	// the level that answered and how.
	ObserveRead(kind string, source Source, outcome Outcome)
	// ObserveLoad reports one call of the loader (coalesced callers count
	// once), how long it took and its error: nil, one wrapping
	// ErrNotFound, or a failure.
	ObserveLoad(kind string, took time.Duration, err error)
	// ObservePostgresError reports a failed Postgres operation: "read",
	// "write" (a write-back after a load), "put", "invalidate", "claim"
	// (of a background refresh) or "update".
	ObservePostgresError(kind, op string, err error)
	// ObserveServed reports the age of a value served by a read: how long
	// ago it was fetched from the source of truth.
	ObserveServed(kind string, age time.Duration)
	// ObserveRefresh reports how one background refresh ended.
	ObserveRefresh(kind string, outcome RefreshOutcome)
	// ObserveRefreshQueue reports the number of keys waiting for a
	// background refresh, whenever it changes.
	ObserveRefreshQueue(kind string, depth int)
}

// nopObserver is the Observer of caches configured without one.
type nopObserver struct{}

func (nopObserver) ObserveRead(string, Source, Outcome)        {}
func (nopObserver) ObserveLoad(string, time.Duration, error)   {}
func (nopObserver) ObservePostgresError(string, string, error) {}
func (nopObserver) ObserveServed(string, time.Duration)        {}
func (nopObserver) ObserveRefresh(string, RefreshOutcome)      {}
func (nopObserver) ObserveRefreshQueue(string, int)            {}
