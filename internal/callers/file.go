package callers

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxFileSize bounds a callers file; real ones are a few KB.
const maxFileSize = 1 << 20

// ParseError is a problem with a callers file: with one entry, or with the
// file as a whole when Index is -1. It never holds a token or a full hash.
type ParseError struct {
	// Index is the entry's position in "callers", or -1.
	Index int
	// Name is the entry's name, when it has a usable one.
	Name string
	// Field is the JSON field at fault, such as "token_sha256", or empty.
	Field string
	// Err says what is wrong.
	Err error
}

// Error returns, for example,
// `callers[2] "ops": token_sha256: want 64 hex digits`.
func (e *ParseError) Error() string {
	var b bytes.Buffer
	if e.Index < 0 {
		b.WriteString("callers file")
	} else {
		b.WriteString("callers[" + strconv.Itoa(e.Index) + "]")
		if e.Name != "" {
			b.WriteString(" " + strconv.Quote(e.Name))
		}
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

type fileJSON struct {
	Callers []json.RawMessage `json:"callers"`
}

type entryJSON struct {
	Name        string      `json:"name"`
	TokenSHA256 *string     `json:"token_sha256"`
	Cert        *certJSON   `json:"cert"`
	Roles       []string    `json:"roles"`
	Limits      *limitsJSON `json:"limits"`
}

type limitsJSON struct {
	WachtCallsPerMinute *int `json:"wacht_calls_per_minute"`
	ConcurrentLoads     *int `json:"concurrent_loads"`
}

type certJSON struct {
	CommonName string `json:"common_name"`
	URISAN     string `json:"uri_san"`
	DNSSAN     string `json:"dns_san"`
}

// Load reads and parses the callers file at path.
func Load(path string) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read callers file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read callers file %s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("read callers file %s: larger than %d bytes", path, maxFileSize)
	}
	r, err := ParseFile(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return r, nil
}

// ParseFile parses a callers file. Unknown fields, trailing data, bad
// hashes, unknown roles and duplicate names, hashes or cert identities are
// errors of type *ParseError.
func ParseFile(b []byte) (*Registry, error) {
	var f fileJSON
	if err := decodeStrict(b, &f); err != nil {
		return nil, &ParseError{Index: -1, Err: err}
	}
	if len(f.Callers) == 0 {
		return nil, &ParseError{Index: -1, Field: "callers", Err: errors.New("no callers listed")}
	}
	reg := newRegistry(len(f.Callers))
	names := make(map[string]int, len(f.Callers))
	certs := make(map[certIdentity]int)
	for i, raw := range f.Callers {
		e, err := parseEntry(i, raw)
		if err != nil {
			return nil, err
		}
		if j, dup := names[e.name]; dup {
			return nil, &ParseError{Index: i, Name: e.name, Field: "name", Err: fmt.Errorf("duplicates callers[%d]", j)}
		}
		names[e.name] = i
		if e.hasToken {
			if other, dup := reg.byToken[e.token]; dup {
				return nil, &ParseError{Index: i, Name: e.name, Field: "token_sha256", Err: fmt.Errorf("duplicates callers[%d]", other.index)}
			}
		}
		if e.cert != nil && !e.hasToken {
			if j, dup := certs[*e.cert]; dup {
				return nil, &ParseError{Index: i, Name: e.name, Field: "cert", Err: fmt.Errorf("duplicates callers[%d]", j)}
			}
			certs[*e.cert] = i
		}
		reg.add(e)
	}
	return reg, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func parseEntry(i int, raw json.RawMessage) (*entry, error) {
	var ej entryJSON
	if err := decodeStrict(raw, &ej); err != nil {
		// Name the entry if a lenient decode can find its name.
		var named struct{ Name string }
		_ = json.Unmarshal(raw, &named)
		return nil, &ParseError{Index: i, Name: usableName(named.Name), Err: err}
	}
	fail := func(field string, err error) error {
		return &ParseError{Index: i, Name: usableName(ej.Name), Field: field, Err: err}
	}
	if err := checkName(ej.Name); err != nil {
		return nil, fail("name", err)
	}
	e := &entry{index: i, name: ej.Name}
	if ej.TokenSHA256 != nil {
		sum, err := parseHash(*ej.TokenSHA256)
		if err != nil {
			return nil, fail("token_sha256", err)
		}
		e.token, e.hasToken = sum, true
	}
	if ej.Cert != nil {
		id, field, err := parseCert(*ej.Cert)
		if err != nil {
			return nil, fail(field, err)
		}
		e.cert = &id
	}
	if !e.hasToken && e.cert == nil {
		return nil, fail("", errors.New("needs token_sha256, cert or both"))
	}
	if len(ej.Roles) == 0 {
		return nil, fail("roles", fmt.Errorf("needs at least one of %s", roleList()))
	}
	held := make([]Role, 0, len(ej.Roles))
	for _, r := range ej.Roles {
		role := Role(r)
		if !knownRole(role) {
			return nil, fail("roles", fmt.Errorf("unknown role %q (want %s)", short(r), roleList()))
		}
		if slices.Contains(held, role) {
			return nil, fail("roles", fmt.Errorf("role %q listed twice", r))
		}
		held = append(held, role)
	}
	e.roles = normalizeRoles(held...)
	if ej.Limits != nil {
		l, field, err := parseLimits(*ej.Limits)
		if err != nil {
			return nil, fail(field, err)
		}
		e.limits = &l
	}
	return e, nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("missing")
	}
	if usableName(name) == "" {
		return errors.New("use only a-z, 0-9, '.', '_' and '-'")
	}
	if name == AnonymousName {
		return fmt.Errorf("%q is reserved for open mode", AnonymousName)
	}
	return nil
}

// usableName returns name if it is a valid caller name, else "".
func usableName(name string) string {
	if name == "" || len(name) > 128 {
		return ""
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return ""
		}
	}
	return name
}

func parseHash(s string) ([32]byte, error) {
	var sum [32]byte
	if len(s) != hex.EncodedLen(len(sum)) {
		return sum, fmt.Errorf("want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, errors.New("want 64 hex digits, found a non-hex character")
	}
	return sum, nil
}

func parseCert(c certJSON) (certIdentity, string, error) {
	if c.CommonName == "" && c.URISAN == "" && c.DNSSAN == "" {
		return certIdentity{}, "cert", errors.New("needs common_name, uri_san or dns_san")
	}
	id := certIdentity{commonName: c.CommonName, dnsSAN: strings.ToLower(c.DNSSAN)}
	if c.URISAN != "" {
		u, err := url.Parse(c.URISAN)
		if err != nil || u.Scheme == "" || u.Opaque != "" {
			return certIdentity{}, "cert.uri_san", errors.New("want an absolute URI such as spiffe://trust.domain/path")
		}
		id.uriSAN = u.String()
	}
	return id, "", nil
}

// roleList names the roles for error messages: "reader, revoker or admin".
func roleList() string {
	names := make([]string, 0, len(roleTable))
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Bounds of a caller's limits: above them a limit limits nothing, since
// the whole deployment may make 1000 Wacht calls a minute.
const (
	maxCallsPerMinute  = 100_000
	maxConcurrentLoads = 1_000
)

// parseLimits checks a caller's limits; a limit left out takes the
// default of [Limits].
func parseLimits(l limitsJSON) (Limits, string, error) {
	var out Limits
	if l.WachtCallsPerMinute != nil {
		n := *l.WachtCallsPerMinute
		if n < 1 || n > maxCallsPerMinute {
			return out, "limits.wacht_calls_per_minute", fmt.Errorf("want 1 to %d, got %d", maxCallsPerMinute, n)
		}
		out.WachtCallsPerMinute = n
	}
	if l.ConcurrentLoads != nil {
		n := *l.ConcurrentLoads
		if n < 1 || n > maxConcurrentLoads {
			return out, "limits.concurrent_loads", fmt.Errorf("want 1 to %d, got %d", maxConcurrentLoads, n)
		}
		out.ConcurrentLoads = n
	}
	return out, "", nil
}

// short keeps error messages short when echoing a value from the file.
func short(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
