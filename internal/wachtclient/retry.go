package wachtclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// send runs the attempts and returns the body of the 2xx answer.
func (c *Client) send(ctx context.Context, r request, payload []byte) ([]byte, error) {
	if !r.idempotent || r.once {
		body, _, _, err := c.attempt(ctx, r, payload)
		return body, err
	}
	bo := newRetryBackOff(c.baseDelay, c.maxDelay)
	var (
		lastErr  error
		attempts int
		took     time.Duration // the latest attempt's exchange with Wacht
	)
	if dl, ok := ctx.Deadline(); ok {
		// A retry that could not be answered before the deadline is not
		// made: the call ends now with the failure it has, rather than
		// at the deadline with nothing more.
		bo.fits = func(delay time.Duration) bool { return time.Until(dl) > delay+took }
	}
	op := func() ([]byte, error) {
		attempts++
		var (
			body    []byte
			stopped bool
			err     error
		)
		body, took, stopped, err = c.attempt(ctx, r, payload)
		if err == nil {
			return body, nil
		}
		if stopped && lastErr != nil {
			return nil, backoff.Permanent(&stoppedError{stop: err, last: lastErr, attempts: attempts - 1})
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			return nil, backoff.Permanent(err)
		}
		if apiErr, ok := AsAPIError(err); ok {
			bo.floor = apiErr.RetryAfter
		}
		return nil, err
	}
	notify := func(err error, delay time.Duration) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "retrying wacht request",
			slog.String("method", r.method), slog.String("path", r.path),
			slog.Int("attempt", attempts), slog.Duration("delay", delay), slog.String("error", err.Error()))
	}
	body, err := backoff.Retry(ctx, op, backoff.WithBackOff(bo), backoff.WithMaxTries(uint(c.maxRetries)+1),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(notify))
	if perm, ok := err.(*backoff.PermanentError); ok {
		err = perm.Err
	}
	if err != nil && lastErr != nil && !errors.Is(err, lastErr) {
		// The context ended while waiting between attempts.
		err = &stoppedError{stop: err, last: lastErr, attempts: attempts}
	}
	return body, err
}

// retryable reports whether an idempotent call may be retried after err:
// 429, 502, 503, 504 and transport failures other than cancellation.
func retryable(err error) bool {
	if apiErr, ok := AsAPIError(err); ok {
		switch apiErr.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var te *transportError
	return errors.As(err, &te) && errors.Is(err, ErrUnavailable)
}

// retryBackOff is exponential backoff with jitter whose next delay is never
// shorter than a Retry-After the server asked for. It stops when fits, if
// set, says that an attempt after the delay could not finish in time.
type retryBackOff struct {
	exp   *backoff.ExponentialBackOff
	floor time.Duration
	fits  func(delay time.Duration) bool
}

// newRetryBackOff doubles the delay from base up to maxDelay, each delay
// randomised by ±50%.
func newRetryBackOff(base, maxDelay time.Duration) *retryBackOff {
	return &retryBackOff{exp: &backoff.ExponentialBackOff{
		InitialInterval:     base,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         maxDelay,
	}}
}

func (b *retryBackOff) Reset() {
	b.exp.Reset()
	b.floor = 0
}

func (b *retryBackOff) NextBackOff() time.Duration {
	d := max(b.exp.NextBackOff(), b.floor)
	b.floor = 0
	if b.fits != nil && !b.fits(d) {
		return backoff.Stop
	}
	return d
}
