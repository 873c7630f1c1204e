package rpclog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/authsvc/authsvc/internal/rpclog"
)

func TestInterceptorLogsOneLinePerCall(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	callerAttr := func(context.Context) []slog.Attr { return []slog.Attr{slog.String("caller", "orders")} }
	handler := func(_ context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[emptypb.Empty], error) {
		switch req.Msg.GetValue() {
		case "bad":
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("value is bad"))
		case "boom":
			return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	mux := http.NewServeMux()
	mux.Handle("/test.v1.Test/Call", connect.NewUnaryHandler("/test.v1.Test/Call", handler,
		connect.WithInterceptors(rpclog.NewInterceptor(logger, callerAttr))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := connect.NewClient[wrapperspb.StringValue, emptypb.Empty](srv.Client(), srv.URL+"/test.v1.Test/Call")

	tests := []struct {
		value, code, level, errMsg string
	}{
		{"secret-request-value-ok", "ok", "DEBUG", ""},
		{"bad", "invalid_argument", "INFO", "value is bad"},
		{"boom", "internal", "ERROR", "internal error"},
	}
	for _, tt := range tests {
		buf.Reset()
		_, _ = client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String(tt.value)))
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("%s: %d log lines, want 1:\n%s", tt.value, len(lines), buf.String())
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["procedure"] != "/test.v1.Test/Call" || rec["code"] != tt.code || rec["level"] != tt.level ||
			rec["caller"] != "orders" || rec["protocol"] != "connect" {
			t.Errorf("%s: log line %v", tt.value, rec)
		}
		if got, _ := rec["error"].(string); got != tt.errMsg {
			t.Errorf("%s: error field %q, want %q", tt.value, got, tt.errMsg)
		}
		if strings.Contains(lines[0], "secret-request-value") {
			t.Errorf("the request body reached the log: %s", lines[0])
		}
	}
}
