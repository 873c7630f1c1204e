package telemetry_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/telemetry"
)

// The costs added to every cache read and every RPC.

func BenchmarkObserveRead(b *testing.B) {
	m := telemetry.NewMetrics(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRead("user", cache.SourceMemory, cache.OutcomeFresh)
		}
	})
}

func BenchmarkInterceptor(b *testing.B) {
	m := telemetry.NewMetrics(nil)
	call := m.Interceptor().WrapUnary(func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		return connect.NewResponse(&authsvcv1.GetUserResponse{}), nil
	})
	req := connect.NewRequest(&authsvcv1.GetUserRequest{UserId: "1"})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := call(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
