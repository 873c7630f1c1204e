package app

import (
	"context"

	"connectrpc.com/connect"

	"github.com/authsvc/authsvc/internal/budget"
)

// callerDeadline hands each RPC's deadline to the Wacht request budget,
// so that a cache load, which the callers that missed together share and
// which outlives them, is not sent when the caller it was started for
// could no longer get its answer: that caller is answered at once instead.
func callerDeadline() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if dl, ok := ctx.Deadline(); ok {
				ctx = budget.WithCallerDeadline(ctx, dl)
			}
			return next(ctx, req)
		}
	})
}
