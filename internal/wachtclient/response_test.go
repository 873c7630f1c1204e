package wachtclient

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// bigJSON is a valid JSON object of exactly n bytes.
func bigJSON(n int) []byte {
	const head, tail = `{"status":"healthy","pad":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	for _, tc := range []struct {
		name          string
		size          int
		contentLength bool
		wantErr       bool
	}{
		{"at_limit", limit, true, false},
		{"over_limit_declared", limit + 1, true, true},
		{"over_limit_chunked", 4 * limit, false, true},
		{"at_limit_chunked", limit, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := bigJSON(tc.size)
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.Header().Set("Content-Type", "application/json")
				// Writing in two parts without a length forces chunking.
				w.Write(body[:len(body)/2])
				if f, ok := w.(http.Flusher); ok && !tc.contentLength {
					f.Flush()
				}
				w.Write(body[len(body)/2:])
			})
			c, _ := newTestClient(t, h, func(cfg *Config) { cfg.MaxResponseBytes = limit })
			_, err := c.CheckHealth(t.Context())
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("CheckHealth: %v", err)
				}
				return
			}
			checkSentinels(t, err, ErrInvalidResponse)
		})
	}
}

func TestOversizedResponseToMutationIsOutcomeUnknown(t *testing.T) {
	t.Parallel()
	h, hits := counting(replyJSON(http.StatusOK, bigJSON(4096)))
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.MaxResponseBytes = 1024 })
	_, err := c.RotateAPIKey(t.Context(), "app", "9")
	checkSentinels(t, err, ErrInvalidResponse, ErrOutcomeUnknown)
	if n := hits.Load(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

func TestHugeErrorBodyStillMapsStatus(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(strings.Repeat("<p>bad gateway</p>", 1<<16)))
	})
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.MaxRetries = -1 })
	_, err := c.GetUser(t.Context(), "1")
	checkSentinels(t, err, ErrUnavailable)
	if apiErr, ok := AsAPIError(err); !ok || apiErr.StatusCode != http.StatusBadGateway {
		t.Errorf("error = %v, want an *APIError with status 502", err)
	}
}

func TestBodyReadFailureIsRetriedForReads(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) == 1 {
			// Promise more than is sent, then drop the connection.
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(`{"status":`))
			rc := http.NewResponseController(w)
			rc.Flush()
			conn, _, err := rc.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		replyJSON(http.StatusOK, fixture(t, "health.json"))(w, nil)
	})
	c, _ := newTestClient(t, h, nil)
	if err := c.Health(t.Context()); err != nil {
		t.Fatalf("Health after a truncated answer: %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("attempts = %d, want 2", n)
	}
}
