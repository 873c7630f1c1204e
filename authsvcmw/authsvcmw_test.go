package authsvcmw_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/authsvc/authsvc/authsvcmw"
)

// Other modules can import only what is outside internal/.
func TestImportsNothingInternal(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/authsvc/authsvc/internal/") {
			t.Errorf("authsvcmw depends on %s, which other modules cannot import", pkg)
		}
	}
}

// A refused RPC gets its answer in its own protocol: a Connect client
// sees Unauthenticated, with the challenge in the headers.
func TestRefusesRPCsInTheirProtocol(t *testing.T) {
	t.Parallel()
	mw := authsvcmw.New("http://127.0.0.1:1")
	mux := http.NewServeMux()
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker()))
	srv := httptest.NewServer(mw.Wrap(mux))
	t.Cleanup(srv.Close)

	for _, opt := range []connect.ClientOption{connect.WithProtoJSON(), connect.WithGRPCWeb()} {
		client := grpchealth.NewClient(srv.Client(), srv.URL, opt)
		_, err := client.Check(context.Background(), &grpchealth.CheckRequest{})
		var cerr *connect.Error
		if !errors.As(err, &cerr) || cerr.Code() != connect.CodeUnauthenticated {
			t.Fatalf("Check without a credential: %v, want Unauthenticated", err)
		}
		if got := cerr.Meta().Get("WWW-Authenticate"); got != `Bearer realm="authsvc"` {
			t.Errorf("WWW-Authenticate %q", got)
		}
	}
}
