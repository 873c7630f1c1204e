package wachtclient

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// Limiter admits Backend API requests to a request budget. Every attempt,
// retries included, is admitted before it is sent.
type Limiter interface {
	// Admit returns once one request may be sent with ctx, or an error
	// when it may not; the request is then not sent and the error is
	// wrapped so that it matches ErrRateLimited (unless ctx ended). done
	// is called once per admitted request: status is the HTTP status of
	// the answer, 0 if no answer came (the request may have reached
	// Wacht), or -1 if the request was not sent after all; took is how
	// long the attempt took.
	Admit(ctx context.Context) (done func(status int, took time.Duration), err error)
}

// localLimiter is the Limiter of a Client configured without one: a token
// bucket for this process alone.
type localLimiter struct{ lim *rate.Limiter }

func (l localLimiter) Admit(ctx context.Context) (func(int, time.Duration), error) {
	if err := l.lim.Wait(ctx); err != nil {
		return nil, err
	}
	return func(int, time.Duration) {}, nil
}
