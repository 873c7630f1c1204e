package wachtclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

// target says which Wacht service a request goes to.
type target int

const (
	backendAPI  target = iota // Backend API, authenticated, budgeted
	backendOpen               // Backend API without auth (health)
	gateway                   // Gateway, no auth
	frontendAPI               // Frontend API, no auth
)

// maxErrorBodyBytes bounds how much of an error response is read.
const maxErrorBodyBytes = 64 << 10

// request describes one logical call; do may send it several times.
type request struct {
	target target
	method string
	// route names the call in metrics and traces: the method and the path
	// with its variable segments named, e.g. "GET /users/{user_id}/details".
	// It never holds an id.
	route string
	// path is already escaped and starts with "/".
	path  string
	query url.Values
	// body, when non-nil, is sent as JSON.
	body any
	// idempotent calls are retried; the others never are and report
	// ErrOutcomeUnknown when they fail after possibly reaching Wacht.
	idempotent bool
	// once sends an idempotent call a single time: a caller that must
	// never add to a 429 (the Frontend API's token exchange) decides
	// itself when to ask again.
	once bool
	// header holds extra request headers. Their values may be secrets
	// (a session cookie) and are never logged.
	header http.Header
	// secrets are removed from any message taken from the response, in
	// addition to the API key.
	secrets []string
}

// do sends r, retrying idempotent calls, and decodes a 2xx JSON answer into
// out. out may be nil (body discarded) or *[]byte (raw body, checked to be
// JSON). It is the only place that talks HTTP.
func (c *Client) do(ctx context.Context, r request, out any) error {
	if ctx == nil {
		return invalidInput("nil context")
	}
	if r.target == backendAPI && c.apiKey == nil {
		return fmt.Errorf("%w: no backend api key", ErrNotConfigured)
	}
	if r.target == frontendAPI && c.frontendURL == "" {
		return fmt.Errorf("%w: no frontend api url", ErrNotConfigured)
	}
	ctx = context.WithValue(ctx, routeKey{}, r.route)
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return invalidInput("encode request body: %v", err)
		}
	}
	body, err := c.send(ctx, r, payload)
	if err != nil {
		return err
	}
	defer clear(body) // responses may hold secrets or OAuth tokens we drop
	if err := decodeInto(body, out); err != nil {
		if !r.idempotent {
			return &outcomeUnknownError{err: err}
		}
		return err
	}
	return nil
}

func decodeInto(body []byte, out any) error {
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		if !json.Valid(body) {
			return fmt.Errorf("%w: not JSON", ErrInvalidResponse)
		}
		*o = bytes.Clone(body)
		return nil
	default:
		return decodeJSON(body, out)
	}
}

// attempt sends r once. took is how long the exchange with Wacht took,
// from sending to the answer's end, zero if nothing was sent. stopped
// reports a failure that happened before anything was sent because the
// context or the budget ran out.
func (c *Client) attempt(ctx context.Context, r request, payload []byte) (body []byte, took time.Duration, stopped bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, true, context.Cause(ctx)
	}
	done := func(int, time.Duration) {}
	if r.target == backendAPI {
		d, err := c.limiter.Admit(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, true, context.Cause(ctx)
			}
			err = &budgetError{err: err}
			c.observer.ObserveWachtRequest(r.route, 0, 0, err)
			return nil, 0, true, err
		}
		done = d
	}
	req, err := c.newRequest(ctx, r, payload)
	if err != nil {
		done(-1, 0)
		return nil, 0, false, err
	}
	var gotConn atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))

	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		took, sent := time.Since(start), gotConn.Load()
		if sent {
			done(0, took)
		} else {
			done(-1, took)
		}
		if ctx.Err() != nil {
			// The caller's context ended, not Wacht: the request is
			// abandoned, which says nothing about Wacht.
			err = &abandonedError{err: context.Cause(ctx), took: took, sent: sent}
		} else {
			err = &transportError{err: err, sent: sent}
		}
		c.observer.ObserveWachtRequest(r.route, 0, took, err)
		return nil, took, false, c.failed(r, err)
	}
	done(resp.StatusCode, time.Since(start))
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Only the message matters: read a bounded prefix of the body.
		prefix, _ := io.ReadAll(io.LimitReader(resp.Body, min(c.maxBody, maxErrorBodyBytes)))
		apiErr := newAPIError(resp, prefix, c.secrets(r), c.maxDelay)
		clear(prefix)
		took = time.Since(start)
		c.observer.ObserveWachtRequest(r.route, resp.StatusCode, took, apiErr)
		return nil, took, false, c.failed(r, apiErr)
	}
	body, err = readBody(resp, c.maxBody)
	took = time.Since(start)
	c.observer.ObserveWachtRequest(r.route, resp.StatusCode, took, err)
	if err != nil {
		return nil, took, false, c.failed(r, err)
	}
	return body, took, false, nil
}

// routeKey is the context key of the route of a request being sent.
type routeKey struct{}

// RouteFromContext returns the route of the Wacht request being sent with
// ctx, such as "GET /users/{user_id}/details", for an http.RoundTripper
// that names requests (in traces, say) without their ids. It is "" for a
// context that is not a Wacht request's.
func RouteFromContext(ctx context.Context) string {
	route, _ := ctx.Value(routeKey{}).(string)
	return route
}

// failed marks the failure of a state-changing call whose outcome is unknown:
// a 5xx answer, a transport failure after a connection was obtained, or a
// 2xx answer too large to read.
func (c *Client) failed(r request, err error) error {
	if r.idempotent {
		return err
	}
	var (
		te *transportError
		ae *abandonedError
	)
	if apiErr, ok := AsAPIError(err); ok && apiErr.StatusCode >= 500 ||
		errors.As(err, &te) && te.sent ||
		errors.As(err, &ae) && ae.sent ||
		errors.Is(err, ErrInvalidResponse) {
		return &outcomeUnknownError{err: err}
	}
	return err
}

func (c *Client) newRequest(ctx context.Context, r request, payload []byte) (*http.Request, error) {
	base := c.apiURL
	switch r.target {
	case gateway:
		base = c.gatewayURL
	case frontendAPI:
		base = c.frontendURL
	}
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, invalidInput("build request: %v", err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.target == backendAPI {
		req.Header.Set("Authorization", "Bearer "+c.apiKey())
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	return req, nil
}

func (c *Client) secrets(r request) []string {
	if c.apiKey == nil {
		return r.secrets
	}
	return append([]string{c.apiKey()}, r.secrets...)
}
