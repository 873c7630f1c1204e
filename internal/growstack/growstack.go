// Package growstack gives the goroutine of each HTTP/2 call the stack
// its handler needs in one growth at the top, instead of several deep in
// the call.
package growstack

import "net/http"

// frameBytes is the frame of grow. A goroutine starts with a 2 KiB stack
// and, each time a call goes past its end, the runtime doubles it and
// copies it, walking every frame on it. The deepest calls of authsvc (a
// new session token's signature check under Connect's gRPC handler) grow
// a new goroutine's stack two or three times that way; a frame of 12 KiB
// on top of the few frames above the handler makes the runtime give the
// goroutine 16 KiB at once, when there is little to copy, and, in CPU
// profiles under load, no call grows it again.
const frameBytes = 12 << 10

// Handler returns next, whose HTTP/2 calls first grow their goroutine's
// stack. net/http runs each HTTP/2 call on a new goroutine; an HTTP/1.1
// call runs on its connection's goroutine, whose stack has grown already,
// and is passed on as it is.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			_ = grow(len(r.URL.Path))
		}
		next.ServeHTTP(w, r)
	})
}

// grow takes a frame of frameBytes, which the runtime makes room for
// before grow runs. It reads one byte of the frame, always zero, so that
// the compiler keeps the frame whole.
//
//go:noinline
func grow(i int) byte {
	var frame [frameBytes]byte
	return frame[i%frameBytes]
}
