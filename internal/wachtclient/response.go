package wachtclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// errorBody is Wacht's error shape: {"errors":[{"message":..., "code":<status>}]}.
type errorBody struct {
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// readBody reads at most limit bytes of body; a longer body is an error that
// wraps ErrInvalidResponse. A failure while reading is a transport error.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds the %d byte limit", ErrInvalidResponse, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &transportError{err: fmt.Errorf("read response: %w", err), sent: true}
	}
	if int64(len(body)) > limit {
		clear(body)
		return nil, fmt.Errorf("%w: body exceeds the %d byte limit", ErrInvalidResponse, limit)
	}
	return body, nil
}

// newAPIError builds the error for a non-2xx response. The message comes
// from Wacht's JSON error body, or from a short plain-text body (the gateway
// answers 401 "Invalid API key" that way), or else from the status text.
func newAPIError(resp *http.Response, body []byte, secrets []string, maxDelay time.Duration) *APIError {
	return &APIError{
		StatusCode: resp.StatusCode,
		Message:    sanitizeMessage(errorMessage(resp, body), secrets),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now(), maxDelay), //nolint:forbidigo // an HTTP-date Retry-After is relative to the real clock
	}
}

func errorMessage(resp *http.Response, body []byte) string {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		msgs := make([]string, 0, len(eb.Errors))
		for _, e := range eb.Errors {
			if m := strings.TrimSpace(e.Message); m != "" {
				msgs = append(msgs, m)
			}
		}
		if len(msgs) > 0 {
			return strings.Join(msgs, "; ")
		}
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if text := strings.TrimSpace(string(body)); mediaType == "text/plain" && text != "" {
		return text
	}
	if text := http.StatusText(resp.StatusCode); text != "" {
		return text
	}
	return "Request failed"
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), capped
// at maxDelay. It returns zero when the header is absent or unusable.
func retryAfter(header string, now time.Time, maxDelay time.Duration) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(header, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxDelay/time.Second) {
			return maxDelay
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(header); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxDelay)
}

// decodeJSON decodes body into out; a failure wraps ErrInvalidResponse.
func decodeJSON(body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return fmt.Errorf("%w: not JSON at byte %d", ErrInvalidResponse, syntaxErr.Offset)
		}
		return fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	return nil
}
