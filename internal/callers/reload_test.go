package callers_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/callers"
)

const newToken = "new_P4oI7uY0tR3eW6qA9sD2fG5h"

func TestReload(t *testing.T) {
	t.Parallel()
	path := tempCallers(t, baseCallers())
	a := newAuthenticator(t, callers.Config{Path: path})
	srv := startServer(t, a, nil, tls.NoClientCert, nil)
	hc := srv.httpClient(t, nil)
	p := protocols[1] // gRPC: connections are kept across reloads

	check := func(t *testing.T, step string, token string, want callResult) {
		t.Helper()
		got, err := srv.callEmpty(t, hc, p, procGetUser, "Bearer "+token)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s\nerr: %v", step, diff, err)
		}
	}
	unauthenticated := callResult{Code: connect.CodeUnauthenticated}

	check(t, "before reload, orders", readerToken, callResult{Caller: "orders/token", Reached: true})
	check(t, "before reload, newsvc", newToken, unauthenticated)

	// orders leaves, newsvc arrives.
	next := baseCallers()[1:]
	next = append(next, fileEntry{Name: "newsvc", TokenSHA256: hashToken(newToken), Roles: []string{"reader"}})
	writeCallers(t, path, next)
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	check(t, "after reload, orders", readerToken, unauthenticated)
	check(t, "after reload, newsvc", newToken, callResult{Caller: "newsvc/token", Reached: true})

	// A broken file keeps what was loaded.
	writeRaw(t, path, []byte(`{"callers": [{"name": "newsvc", "roles": ["reader"]}]}`))
	if err := a.Reload(); err == nil {
		t.Error("Reload of a broken file: got nil error")
	}
	check(t, "after failed reload, newsvc", newToken, callResult{Caller: "newsvc/token", Reached: true})
	check(t, "after failed reload, orders", readerToken, unauthenticated)

	// So does a missing one.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload of a missing file: got nil error")
	}
	check(t, "after missing file, newsvc", newToken, callResult{Caller: "newsvc/token", Reached: true})
}

// Reloads race with requests: a caller present in every version of the
// file is never refused, one present in some versions is either let in or
// refused with Unauthenticated, never anything else.
func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "callers.json")
	withNew := append(baseCallers(), fileEntry{Name: "newsvc", TokenSHA256: hashToken(newToken), Roles: []string{"admin"}})
	versions := [][]fileEntry{baseCallers(), withNew}
	writeCallers(t, path, versions[0])
	a := newAuthenticator(t, callers.Config{Path: path})
	mux, _ := newMux(nil)
	h := a.Wrap(mux)

	const workers, requests, reloads = 4, 200, 101
	var (
		wg               sync.WaitGroup
		newIn, newOut    atomic.Int64
		unexpected       atomic.Int64
		reloadErrs       atomic.Int64
		firstUnexpected  sync.Once
		unexpectedReport string
	)
	call := func(token string) int {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, procRotate, http.NoBody)
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for range workers {
		wg.Go(func() {
			for range requests {
				if code := call(adminToken); code != http.StatusOK {
					unexpected.Add(1)
					firstUnexpected.Do(func() { unexpectedReport = "admin got " + http.StatusText(code) })
				}
				switch code := call(newToken); code {
				case http.StatusOK:
					newIn.Add(1)
				case http.StatusUnauthorized:
					newOut.Add(1)
				default:
					unexpected.Add(1)
					firstUnexpected.Do(func() { unexpectedReport = "newsvc got " + http.StatusText(code) })
				}
			}
		})
	}
	wg.Go(func() {
		for i := range reloads {
			if i%10 == 5 {
				// A broken file: refused, and the callers in force stay.
				writeRaw(t, path, []byte(`{"callers": [{"name": "ops"}]}`))
				if err := a.Reload(); err == nil {
					reloadErrs.Add(1)
				}
				continue
			}
			writeCallers(t, path, versions[(i+1)%2])
			if err := a.Reload(); err != nil {
				reloadErrs.Add(1)
			}
		}
	})
	wg.Wait()
	if n := unexpected.Load(); n != 0 {
		t.Errorf("%d unexpected answers, first: %s", n, unexpectedReport)
	}
	if n := reloadErrs.Load(); n != 0 {
		t.Errorf("%d reloads did not do as expected", n)
	}
	if newIn.Load()+newOut.Load() != workers*requests {
		t.Errorf("newsvc answers: %d in + %d out, want %d", newIn.Load(), newOut.Load(), workers*requests)
	}
	// The last version written, versions[reloads%2], has newsvc.
	if code := call(newToken); code != http.StatusOK {
		t.Errorf("after the last reload newsvc got %d, want 200", code)
	}
}
