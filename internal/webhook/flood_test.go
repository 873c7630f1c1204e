package webhook_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/webhook"
)

// lockedBuffer collects log output from concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestForgedFloodLogsBoundedLines sends 2,000 forged deliveries: the log
// gets the first RefusalLogBurst of them and a summary counting the rest,
// not 2,000 warnings; the observer still sees every one, and an authentic
// delivery in the middle of the flood is still logged.
func TestForgedFloodLogsBoundedLines(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	obs := &observations{}
	h, err := webhook.NewHandler(webhook.Config{
		Secret:   testSecret,
		Applier:  &recorder{},
		Deduper:  webhook.NewMemoryDeduper(100, time.Hour),
		Now:      func() time.Time { return testNow },
		Logger:   slog.New(slog.NewJSONHandler(&buf, nil)),
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range n / 4 {
				d := signed(fmt.Sprintf("msg_forged_%d_%d", w, i), []byte(`{"type":"user.updated","data":{"id":"1"}}`))
				d.signature = "v1,AAAA" + d.signature[7:]
				if code := serve(h, d).Code; code != http.StatusUnauthorized {
					t.Errorf("forged delivery: %d, want 401", code)
					return
				}
			}
		})
	}
	wg.Wait()
	authentic := signed("msg_authentic", []byte(`{"type":"user.updated","data":{"id":"42"}}`))
	if code := serve(h, authentic).Code; code != http.StatusOK {
		t.Fatalf("authentic delivery: %d", code)
	}

	deadline := time.Now().Add(2 * webhook.RefusalLogWindow)
	for {
		warned, summarized, handled := 0, 0, 0
		for _, rec := range buf.records(t) {
			switch {
			case rec["msg"] == "wacht webhook" && rec["outcome"] == webhook.OutcomeBadSignature:
				warned++
			case rec["msg"] == "wacht webhook refusals not logged":
				summarized += int(rec["count"].(float64))
			case rec["msg"] == "wacht webhook" && rec["outcome"] == webhook.OutcomeHandled:
				handled++
			}
		}
		if warned > webhook.RefusalLogBurst*2 {
			t.Fatalf("%d warnings for %d forged deliveries, want at most %d per %v", warned, n, webhook.RefusalLogBurst, webhook.RefusalLogWindow)
		}
		if warned+summarized == n {
			if handled != 1 {
				t.Errorf("the authentic delivery was logged %d times, want once", handled)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d warned + %d in summaries, want %d", warned, summarized, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if got := len(obs.all); got != n+1 {
		t.Errorf("observer saw %d requests, want %d", got, n+1)
	}
}
