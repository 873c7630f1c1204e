// Package rpclog logs one line per RPC: procedure, protocol, code and
// duration, and never a request or response body.
package rpclog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	"github.com/authsvc/authsvc/internal/lograte"
)

// Attrs returns extra attributes to log for a call, such as the caller's
// name; it may return nil.
type Attrs func(ctx context.Context) []slog.Attr

// NewInterceptor returns a unary interceptor that logs each call once it
// ends: at debug level when it succeeds (metrics count those), at info
// level when it fails on the caller's account, at warn level when a
// dependency is unavailable, and at error level for server-side failures.
//
// Failures on the caller's account (refused tokens above all) are logged
// with a limit, since anyone can send them by the thousand: the first
// [DefaultBurst] of every [DefaultWindow], then one summary line with
// their counts by procedure and code. Metrics count every one.
func NewInterceptor(logger *slog.Logger, extra ...Attrs) connect.UnaryInterceptorFunc {
	return newInterceptor(logger, newRefusalLimiter(logger, DefaultBurst, DefaultWindow), extra)
}

func newInterceptor(logger *slog.Logger, limit *lograte.Limiter, extra []Attrs) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			res, err := next(ctx, req)
			code := "ok"
			level := slog.LevelDebug
			if err != nil {
				level = slog.LevelInfo
				c := connect.CodeOf(err)
				code = c.String()
				switch c {
				case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss, connect.CodeUnimplemented:
					level = slog.LevelError
				case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
					level = slog.LevelWarn
				}
			}
			if !logger.Enabled(ctx, level) {
				return res, err
			}
			if level == slog.LevelInfo && !limit.Allow(req.Spec().Procedure+" "+code) {
				return res, err
			}
			attrs := []slog.Attr{
				slog.String("procedure", req.Spec().Procedure),
				slog.String("protocol", req.Peer().Protocol),
				slog.String("code", code),
				slog.Duration("duration", time.Since(start)),
			}
			for _, f := range extra {
				attrs = append(attrs, f(ctx)...)
			}
			if err != nil {
				msg := err.Error()
				if ce := new(connect.Error); errors.As(err, &ce) {
					msg = ce.Message()
				}
				attrs = append(attrs, slog.String("error", msg))
			}
			logger.LogAttrs(ctx, level, "rpc", attrs...)
			return res, err
		}
	}
}
