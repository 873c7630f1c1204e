package wachtfake

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"
)

// maxBodyBytes is axum's default request body limit.
const maxBodyBytes = 2 << 20

// apiError is one element of the Backend API's error envelope.
type apiError struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// errorBody is the Backend API's error envelope.
type errorBody struct {
	Errors []apiError `json:"errors"`
}

// writeJSON writes v compactly, as axum's Json does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"Something went wrong","code":500}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes the Backend API error envelope.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, errorBody{Errors: []apiError{{Message: message, Code: status}}})
}

// writeRejection writes a Backend API error with the message Wacht's
// normalize_error_responses gives to a non-JSON error of that status.
func writeRejection(w http.ResponseWriter, status int) {
	writeError(w, status, defaultMessage(status))
}

func defaultMessage(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return "Bad request"
	case status == http.StatusUnauthorized:
		return "Unauthorized"
	case status == http.StatusForbidden:
		return "Forbidden"
	case status == http.StatusNotFound:
		return "Not found"
	case status == http.StatusMethodNotAllowed:
		return "Method not allowed"
	case status == http.StatusUnprocessableEntity:
		return "Invalid request payload"
	case status == http.StatusTooManyRequests:
		return "Rate limit exceeded"
	case status >= 500:
		return "Something went wrong"
	default:
		return "Request failed"
	}
}

// writeText writes a plain-text body, as axum does for &str responses and
// for extractor rejections outside the Backend API.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// bodyRejection is why a JSON body was refused, with axum's status.
type bodyRejection struct {
	status int
	text   string
}

// decodeBody decodes a JSON request body into v with the checks of
// axum's Json extractor: a JSON content type (415), a size limit (413),
// valid JSON (400) and a value that fits v (422). With strict, unknown
// fields are refused as serde's deny_unknown_fields does.
func decodeBody(r *http.Request, v any, strict bool) *bodyRejection {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return &bodyRejection{http.StatusUnsupportedMediaType, "Expected request with `Content-Type: application/json`"}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return &bodyRejection{http.StatusBadRequest, "Failed to buffer the request body"}
	}
	if len(b) > maxBodyBytes {
		return &bodyRejection{http.StatusRequestEntityTooLarge, "Failed to buffer the request body: length limit exceeded"}
	}
	if !json.Valid(b) {
		return &bodyRejection{http.StatusBadRequest, "Failed to parse the request body as JSON"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil || (strict && !onlyKnownMembers(b, reflect.TypeOf(v))) {
		return &bodyRejection{http.StatusUnprocessableEntity, "Failed to deserialize the JSON body into the target type"}
	}
	return nil
}

// onlyKnownMembers reports whether every member of the JSON object data,
// and of objects nested in struct fields, names a json field of t exactly.
// encoding/json matches names case-insensitively; serde does not.
func onlyKnownMembers(data []byte, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return true
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return true // null, or not an object: Decode already judged it
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields[name] = f.Type
	}
	for name, raw := range members {
		ft, ok := fields[name]
		if !ok || !onlyKnownMembers(raw, ft) {
			return false
		}
	}
	return true
}

func isJSONContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && typ == "application" && (sub == "json" || strings.HasSuffix(sub, "+json"))
}

// wireTime is a timestamp serialised as chrono serialises DateTime<Utc>:
// RFC 3339 in UTC with a Z and 0, 3, 6 or 9 fractional digits.
type wireTime time.Time

// MarshalJSON implements json.Marshaler.
func (t wireTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + formatTime(time.Time(t)) + `"`), nil
}

func formatTime(t time.Time) string {
	t = t.UTC()
	ns := t.Nanosecond()
	layout := "2006-01-02T15:04:05"
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		layout += ".000"
	case ns%1_000 == 0:
		layout += ".000000"
	default:
		layout += ".000000000"
	}
	return t.Format(layout) + "Z"
}

// optTime renders a zero time as JSON null.
func optTime(t time.Time) *wireTime {
	if t.IsZero() {
		return nil
	}
	w := wireTime(t)
	return &w
}

// optString renders an empty string as JSON null.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nonNil renders a nil slice as an empty JSON array.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
