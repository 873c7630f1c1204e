package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/postgres"
)

// user is the value cached in tests.
type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// errUnavailable is a transient loader failure.
var errUnavailable = errors.New("source unavailable")

// fakeClock is a clock that moves only when told. It starts on a whole
// second, and tests move it by whole microseconds or more, so that times
// survive a round trip through Postgres.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// source is a loader whose answers tests set. Each call may be held at a
// gate until the test releases it.
type source struct {
	mu     sync.Mutex
	names  map[string]string // key -> name; absent: not found
	err    error             // when set, every call fails with it
	gates  []chan struct{}   // gates[i] holds call i+1 until closed
	calls  atomic.Int64
	inside chan int // receives the call number once each call has its answer, if set
}

func newSource() *source { return &source{names: map[string]string{}} }

func (s *source) set(key, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[key] = name
}

func (s *source) remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, key)
}

func (s *source) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// hold makes call n (1-based) wait until the returned function is called.
func (s *source) hold(n int) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.gates) < n {
		s.gates = append(s.gates, nil)
	}
	ch := make(chan struct{})
	s.gates[n-1] = ch
	return sync.OnceFunc(func() { close(ch) })
}

func (s *source) load(ctx context.Context, key string) (user, error) {
	n := int(s.calls.Add(1))
	// The answer is read when the call starts, as a request to the real
	// source would be; a held call returns it late.
	s.mu.Lock()
	var gate chan struct{}
	if n <= len(s.gates) {
		gate = s.gates[n-1]
	}
	err := s.err
	name, ok := s.names[key]
	s.mu.Unlock()
	if s.inside != nil {
		s.inside <- n
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return user{}, ctx.Err()
		}
	}
	if err != nil {
		return user{}, err
	}
	if !ok {
		return user{}, fmt.Errorf("get user %s: %w", key, ErrNotFound)
	}
	return user{ID: key, Name: name}, nil
}

// testConfig returns a memory-only configuration on src and clock.
func testConfig(src *source, clock *fakeClock) Config[user] {
	return Config[user]{
		Kind:        "user",
		Load:        src.load,
		TTL:         time.Minute,
		MaxStale:    time.Hour,
		NegativeTTL: 30 * time.Second,
		StaleRetry:  time.Second,
		Now:         clock.Now,
	}
}

// withPostgres adds pool, a running notifier on it, and a codec to cfg.
func withPostgres(t testing.TB, cfg Config[user], pool *pgxpool.Pool) Config[user] {
	t.Helper()
	cfg.Pool = pool
	cfg.Notifier = startNotifier(t, pool)
	cfg.Codec = JSONCodec[user]{}
	return cfg
}

// newCache builds a cache from cfg, closed when the test ends.
func newCache(t testing.TB, cfg Config[user]) *Cache[user] {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// openPool opens a second pool ("another replica") on the database at url.
func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// startNotifier runs a notifier on pool until the test ends and waits
// until it listens.
func startNotifier(t testing.TB, pool *pgxpool.Pool) *Notifier {
	t.Helper()
	n := NewNotifier(pool, nil)
	n.minBackoff, n.maxBackoff = 20*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, 5*time.Second, "notifier listening", n.Ready)
	return n
}

// concurrently runs call from n goroutines while the loader is held,
// releases it once they have had time to join the flight, and fails the
// test on the first error any of them returned.
func concurrently(t testing.TB, n int, release func(), call func() error) {
	t.Helper()
	var started, done sync.WaitGroup
	errs := make(chan error, n)
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			started.Done()
			errs <- call()
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the callers reach the flight
	release()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// eventually fails the test unless cond holds within d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inMemory reports whether c holds key in memory.
func inMemory(c *Cache[user], key string) bool {
	_, ok := c.mem.GetIfPresent(key)
	return ok
}

// get calls c.Get and fails the test on an error.
func get(t testing.TB, c *Cache[user], key string) Result[user] {
	t.Helper()
	r, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return r
}

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu     sync.Mutex
	reads  map[string]int // "source/outcome" -> count
	loads  int
	pgErrs map[string]int // op -> count
}

func newRecorder() *recorder {
	return &recorder{reads: map[string]int{}, pgErrs: map[string]int{}}
}

func (r *recorder) ObserveRead(kind string, source Source, outcome Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads[source.String()+"/"+outcome.String()]++
}

func (r *recorder) ObserveLoad(kind string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads++
}

func (r *recorder) ObservePostgresError(kind, op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pgErrs[op]++
}

func (r *recorder) snapshot() (reads map[string]int, loads int, pgErrs map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reads, pgErrs = map[string]int{}, map[string]int{}
	for k, v := range r.reads {
		reads[k] = v
	}
	for k, v := range r.pgErrs {
		pgErrs[k] = v
	}
	return reads, r.loads, pgErrs
}

func (r *recorder) ObserveServed(kind string, age time.Duration) {}

func (r *recorder) ObserveRefresh(kind string, outcome RefreshOutcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads["refresh/"+outcome.String()]++
}

func (r *recorder) ObserveRefreshQueue(kind string, depth int) {}
