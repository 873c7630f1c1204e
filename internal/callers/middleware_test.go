package callers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/authsvc/authsvc/internal/callers"
)

// countingBody records how often the server reads a request body.
type countingBody struct {
	r     io.Reader
	reads atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	return b.r.Read(p)
}

func (b *countingBody) Close() error { return nil }

// A refused call never reaches the handler and its body is never read; an
// allowed one reaches a real Connect handler, which reads it.
func TestRefusedBeforeBody(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	var handled atomic.Int64
	unary := func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		handled.Add(1)
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	mux := http.NewServeMux()
	mux.Handle(procGetUser, connect.NewUnaryHandler(procGetUser, unary))
	mux.Handle(procRotate, connect.NewUnaryHandler(procRotate, unary))
	h := a.Wrap(mux)

	// An empty message, framed for each protocol.
	grpcFrame := []byte{0, 0, 0, 0, 0}
	type outcome struct {
		Handled bool
		Read    bool
		Status  int
		Header  string // grpc-status in headers or trailers (gRPC-Web puts a success's in the body)
	}
	tests := []struct {
		name, contentType, proc, authorization string
		body                                   []byte
		want                                   outcome
	}{
		{"connect no credential", "application/proto", procGetUser, "", nil, outcome{Status: 401}},
		{"connect wrong token", "application/proto", procGetUser, "Bearer " + wrongToken, nil, outcome{Status: 401}},
		{"connect reader on admin", "application/proto", procRotate, "Bearer " + readerToken, nil, outcome{Status: 403}},
		{"connect allowed", "application/proto", procGetUser, "Bearer " + readerToken, nil, outcome{Handled: true, Read: true, Status: 200}},
		{"grpc no credential", "application/grpc", procGetUser, "", grpcFrame, outcome{Status: 200, Header: "16"}},
		{"grpc reader on admin", "application/grpc", procRotate, "Bearer " + readerToken, grpcFrame, outcome{Status: 200, Header: "7"}},
		{"grpc-web wrong token", "application/grpc-web", procGetUser, "Bearer " + wrongToken, grpcFrame, outcome{Status: 200, Header: "16"}},
		{"grpc-web allowed", "application/grpc-web", procRotate, "Bearer " + adminToken, grpcFrame, outcome{Handled: true, Read: true, Status: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &countingBody{r: bytes.NewReader(tt.body)}
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, tt.proc, body)
			req.Header.Set("Content-Type", tt.contentType)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			if tt.contentType != "application/proto" {
				req.ProtoMajor, req.ProtoMinor = 2, 0
			}
			before := handled.Load()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			got := outcome{
				Handled: handled.Load() > before,
				Read:    body.reads.Load() > 0,
				Status:  res.StatusCode,
				Header:  res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status"),
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Dot segments and doubled slashes cannot move a protected procedure under
// an open service: the policy applies to the cleaned path.
func TestPathTricks(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	var handled atomic.Int64
	// The protected handler is wrapped on its own, with no mux to clean or
	// redirect the path first.
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
	}))
	for _, p := range []string{
		"/grpc.health.v1.Health/../authsvc.v1.AdminService/RotateAPIKey",
		"/grpc.health.v1.Health/./../authsvc.v1.AuthService/GetUser",
		"//authsvc.v1.AdminService/RotateAPIKey",
		"/authsvc.v1.AdminService//RotateAPIKey",
		"/authsvc.v1.AdminService/RotateAPIKey/",
		"/authsvc.v1.AdminService/x/y/z",
		"/authsvc.v1.AdminService",
	} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", http.NoBody)
		req.URL.Path = p
		req.Header.Set("Content-Type", "application/proto")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("POST %s without credential: status %d, want 401", p, rec.Code)
		}
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("handler ran %d times, want 0", n)
	}

	// An open path stays open however it is spelled.
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/x/../grpc.health.v1.Health/Check", http.NoBody)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if handled.Load() != 1 {
		t.Errorf("open path: handler ran %d times, want 1", handled.Load())
	}
}

func TestFromContext(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(t, callers.Config{Path: tempCallers(t, baseCallers())})
	type seen struct {
		Caller callers.Caller
		OK     bool
		Attrs  string
		Reader bool
		Admin  bool
	}
	var got seen
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := callers.FromContext(r.Context())
		got = seen{Caller: c, OK: ok, Attrs: attrsString(callers.LogAttrs(r.Context())), Reader: c.Has(callers.RoleReader), Admin: c.Has(callers.RoleAdmin)}
		if other, ok := callers.FromContext(r.Context()); ok {
			other.Roles[0] = "mutated" // must reach neither c nor the registry
		}
	}))
	tests := []struct {
		name, proc, authorization string
		want                      seen
	}{
		{"admin", procRotate, "Bearer " + adminToken, seen{
			Caller: callers.Caller{Name: "ops", Roles: []callers.Role{callers.RoleReader, callers.RoleRevoker, callers.RoleAdmin}, Method: callers.MethodToken},
			OK:     true, Attrs: "caller=ops", Reader: true, Admin: true,
		}},
		{"admin again, after mutation", procRotate, "Bearer " + adminToken, seen{
			Caller: callers.Caller{Name: "ops", Roles: []callers.Role{callers.RoleReader, callers.RoleRevoker, callers.RoleAdmin}, Method: callers.MethodToken},
			OK:     true, Attrs: "caller=ops", Reader: true, Admin: true,
		}},
		{"reader", procGetUser, "Bearer " + readerToken, seen{
			Caller: callers.Caller{Name: "orders", Roles: []callers.Role{callers.RoleReader}, Method: callers.MethodToken},
			OK:     true, Attrs: "caller=orders", Reader: true,
		}},
		{"open path with known token", "/grpc.health.v1.Health/Check", "Bearer " + readerToken, seen{
			Caller: callers.Caller{Name: "orders", Roles: []callers.Role{callers.RoleReader}, Method: callers.MethodToken},
			OK:     true, Attrs: "caller=orders", Reader: true,
		}},
		{"open path with bad token", "/grpc.health.v1.Health/Check", "Bearer " + wrongToken, seen{}},
		{"open path without token", "/grpc.health.v1.Health/Check", "", seen{}},
	}
	for _, tt := range tests {
		got = seen{}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, tt.proc, http.NoBody)
		req.Header.Set("Content-Type", "application/proto")
		if tt.authorization != "" {
			req.Header.Set("Authorization", tt.authorization)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	if _, ok := callers.FromContext(context.Background()); ok {
		t.Error("FromContext(background) reported a caller")
	}
	if attrs := callers.LogAttrs(context.Background()); attrs != nil {
		t.Errorf("LogAttrs(background) = %v, want nil", attrs)
	}
}

func attrsString(attrs []slog.Attr) string {
	var b strings.Builder
	for i, a := range attrs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

func BenchmarkWrap(b *testing.B) {
	a := newAuthenticator(b, callers.Config{Path: tempCallers(b, baseCallers())})
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, bb := range []struct{ name, proc, authorization string }{
		{"token allowed", procGetUser, "Bearer " + readerToken},
		{"token refused", procGetUser, "Bearer " + wrongToken},
		{"open", "/grpc.health.v1.Health/Check", ""},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, bb.proc, http.NoBody)
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Authorization", bb.authorization)
			w := discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
