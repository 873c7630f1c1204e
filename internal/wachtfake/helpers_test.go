package wachtfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// epoch is the fake clock's start: 2026-03-04T10:00:00Z.
var epoch = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a Server behind an httptest listener with a fake clock.
type env struct {
	s     *Server
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clock := newClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.SetIssuer(srv.URL)
	return &env{s: s, srv: srv, clock: clock}
}

// response is a captured HTTP response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

// object decodes the body as a JSON object.
func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body %q is not an object", r.body)
	}
	return m
}

// request sends a request; headers alternate name and value.
func (e *env) request(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// backend sends an authenticated Backend API request, with a JSON content
// type when there is a body.
func (e *env) backend(t *testing.T, method, path, body string) response {
	t.Helper()
	h := []string{"Authorization", "Bearer " + e.s.APIKey()}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.request(t, method, path, body, h...)
}

// errorJSON is the Backend API error body for status and message.
func errorJSON(status int, message string) string {
	b, _ := json.Marshal(errorBody{Errors: []apiError{{Message: message, Code: status}}})
	return string(b)
}

// compact re-encodes JSON without insignificant space.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.String()
}

func mustAddUser(t *testing.T, s *Server, u User) User {
	t.Helper()
	out, err := s.AddUser(u)
	if err != nil {
		t.Fatalf("AddUser: %v", err)
	}
	return out
}

func mustAddSignIn(t *testing.T, s *Server, userID string, si SignIn) SignIn {
	t.Helper()
	out, err := s.AddSignIn(userID, si)
	if err != nil {
		t.Fatalf("AddSignIn: %v", err)
	}
	return out
}
