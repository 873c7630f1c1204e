package growstack

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandlerPassesEveryCallOn: over HTTP/1.1 and HTTP/2 alike, the call
// reaches next with its method, path and body, and next's answer reaches
// the client.
func TestHandlerPassesEveryCallOn(t *testing.T) {
	t.Parallel()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	})
	for _, tc := range []struct {
		name      string
		http2     bool
		wantProto string
	}{
		{"HTTP/1.1", false, "HTTP/1.1"},
		{"HTTP/2", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(Handler(next))
			srv.EnableHTTP2 = tc.http2
			srv.StartTLS()
			defer srv.Close()
			res, err := srv.Client().Post(srv.URL+"/authsvc.v1.AuthService/VerifySession", "text/plain", strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if want := "POST /authsvc.v1.AuthService/VerifySession payload"; string(got) != want {
				t.Errorf("body %q, want %q", got, want)
			}
			if p := res.Header.Get("X-Proto"); p != tc.wantProto {
				t.Errorf("next saw %s, want %s", p, tc.wantProto)
			}
		})
	}
}

// deep uses about n KiB of stack.
//
//go:noinline
func deep(n int) byte {
	var frame [1 << 10]byte
	frame[n%len(frame)] = byte(n)
	if n == 0 {
		return frame[0]
	}
	return deep(n-1) + frame[n%len(frame)]
}

// BenchmarkNewGoroutineDeepCall is a call that needs 12 KiB of stack on
// a new goroutine, as net/http runs each HTTP/2 call: growing the stack
// by doubling as the call goes deeper, and growing it once at the top.
func BenchmarkNewGoroutineDeepCall(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func() byte
	}{
		{"grown by doubling", func() byte { return deep(12) }},
		{"grown once first", func() byte { _ = grow(0); return deep(12) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			done := make(chan byte)
			for b.Loop() {
				go func() { done <- bc.run() }()
				<-done
			}
		})
	}
}
