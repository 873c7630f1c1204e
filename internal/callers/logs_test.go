package callers_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/callers"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No token, and no token hash, ever reaches a log line or an error, while
// the log does name callers: on refusals and, through LogAttrs, on every
// rpclog line.
func TestNoTokenInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := tempCallers(t, baseCallers())
	a := newAuthenticator(t, callers.Config{Path: path, Logger: logger})
	srv := startServer(t, a, logger, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)

	secrets := []string{readerToken, adminToken, boundToken, wrongToken}
	var errs []string
	for _, p := range protocols {
		for _, c := range []struct{ proc, authorization string }{
			{procGetUser, "Bearer " + readerToken},
			{procRotate, "Bearer " + readerToken},
			{procRotate, "Bearer " + adminToken},
			{procGetUser, "Bearer " + wrongToken},
			{procGetUser, "Bearer " + boundToken},
			{procGetUser, "Basic " + readerToken},
			{procGetUser, readerToken},
			{procGetUser, ""},
		} {
			if _, err := srv.callEmpty(t, hc, p, c.proc, c.authorization); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}

	// Operators paste the token instead of its hash.
	for _, pasted := range []string{readerToken, strings.Repeat(readerToken, 3)[:64]} {
		bad := filepath.Join(t.TempDir(), "callers.json")
		b, _ := json.Marshal(map[string]any{"callers": []fileEntry{{Name: "orders", TokenSHA256: pasted, Roles: []string{"reader"}}}})
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := callers.Load(bad); err == nil {
			t.Errorf("Load with a pasted token: got nil error")
		} else {
			errs = append(errs, err.Error())
		}
	}
	// A duplicate hash names the entries, not the hash.
	dup := baseCallers()
	dup = append(dup, fileEntry{Name: "twin", TokenSHA256: hashToken(readerToken), Roles: []string{"reader"}})
	writeCallers(t, path, dup)
	if err := a.Reload(); err == nil {
		t.Error("Reload with a duplicate hash: got nil error")
	} else {
		errs = append(errs, err.Error())
	}

	logText := logs.String()
	for _, s := range secrets {
		for _, where := range append([]string{logText}, errs...) {
			if strings.Contains(where, s) {
				t.Errorf("token %s… leaked into %q", s[:4], where)
			}
			if strings.Contains(where, hashToken(s)) {
				t.Errorf("hash of token %s… leaked into %q", s[:4], where)
			}
		}
	}

	// The log is still useful: refusals and successful calls name callers.
	type line struct {
		Msg    string `json:"msg"`
		Caller string `json:"caller"`
		Code   string `json:"code"`
		Reason string `json:"reason"`
	}
	counts := map[line]int{}
	for _, raw := range strings.Split(strings.TrimSpace(logText), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("log line %q: %v", raw, err)
		}
		counts[l]++
	}
	want := map[line]int{
		{Msg: "rpc", Caller: "orders", Code: "ok"}:                                                                     3,
		{Msg: "rpc", Caller: "ops", Code: "ok"}:                                                                        3,
		{Msg: "caller refused", Caller: "orders", Reason: "caller lacks the role"}:                                     3,
		{Msg: "caller refused", Reason: "unknown token"}:                                                               3,
		{Msg: "caller refused", Caller: "bound", Reason: "token needs a client certificate it was not presented with"}: 3,
		{Msg: "caller refused", Reason: "no credential"}:                                                               9,
	}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("log lines (-want +got):\n%s\nlog:\n%s", diff, logText)
	}
}
