package rpclog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// flood sends n calls refused as Unauthenticated through interceptor.
func flood(t *testing.T, interceptor connect.UnaryInterceptorFunc, n int) {
	t.Helper()
	refuse := func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("the token's signature is not valid"))
	}
	call := interceptor(refuse)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				_, _ = call(t.Context(), connect.NewRequest(&emptypb.Empty{}))
			}
		})
	}
	wg.Wait()
}

// TestRefusalFloodLogsBoundedLines sends 10,000 refused calls: the log
// gets the first DefaultBurst of them, not 10,000 lines.
func TestRefusalFloodLogsBoundedLines(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	flood(t, NewInterceptor(logger), 10_000)
	if n := len(buf.lines()); n > DefaultBurst {
		t.Errorf("%d log lines for 10,000 refusals, want at most %d (and a summary later)", n, DefaultBurst)
	}
}

// TestRefusalSummaryCountsEveryOne checks that the refusals not logged
// are all counted in the summary that ends the window.
func TestRefusalSummaryCountsEveryOne(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	const burst, n = 5, 2_000
	limit := newRefusalLimiter(logger, burst, 200*time.Millisecond)
	flood(t, newInterceptor(logger, limit, nil), n)

	deadline := time.Now().Add(10 * time.Second)
	var logged, counted int
	for {
		logged, counted = 0, 0
		for _, line := range buf.lines() {
			var rec struct {
				Msg   string         `json:"msg"`
				Count int            `json:"count"`
				By    map[string]int `json:"by"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			switch rec.Msg {
			case "rpc":
				logged++
			case "rpc refusals not logged":
				counted += rec.Count
				sum := 0
				for _, c := range rec.By {
					sum += c
				}
				if sum != rec.Count {
					t.Errorf("summary counts %v add up to %d, not %d", rec.By, sum, rec.Count)
				}
			}
		}
		if logged+counted == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logged+counted != n {
		t.Errorf("%d logged + %d counted in summaries, want %d", logged, counted, n)
	}
	// The flood may span a few windows on a slow machine, never many.
	if lines := len(buf.lines()); lines > 10*(burst+1) {
		t.Errorf("%d log lines for %d refusals", lines, n)
	}
}
