package main

import (
	"fmt"
	"io"
)

// printDevBanner tells a person at a terminal how to talk to the dev server.
func printDevBanner(w io.Writer, addr string) {
	base := "http://" + addr
	fmt.Fprintf(w, `
authsvc dev is serving on %[1]s (open to every caller, in-memory store).

Try it with buf curl (reflection, no .proto files needed):

  go tool -modfile=tools/go.mod buf curl --protocol grpc --http2-prior-knowledge --list-methods %[1]s
  go tool -modfile=tools/go.mod buf curl --protocol grpc --http2-prior-knowledge %[1]s/grpc.health.v1.Health/Check

`, base)
}
