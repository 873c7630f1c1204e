package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/sessionexchange"
	"github.com/authsvc/authsvc/internal/sessiontoken"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Credentials is a set of kinds of Wacht credentials.
type Credentials uint8

// The kinds of credentials, in the order they are tried.
const (
	// CredentialsBearer is a session token in Authorization: Bearer.
	CredentialsBearer Credentials = 1 << iota
	// CredentialsTokenCookie is a session token in a configured cookie.
	CredentialsTokenCookie
	// CredentialsSessionCookie is Wacht's __session cookie (or a
	// development session), exchanged at the Frontend API.
	CredentialsSessionCookie
	// CredentialsAPIKey is a Wacht API-auth key, checked at the gateway.
	CredentialsAPIKey

	// AllCredentials is every kind.
	AllCredentials = CredentialsBearer | CredentialsTokenCookie | CredentialsSessionCookie | CredentialsAPIKey
)

// credentialKinds names each kind, as AUTHSVC_EXTAUTHZ_CREDENTIALS and
// the authsvc_credentials context extension spell it, with its API value.
var credentialKinds = [...]struct {
	set  Credentials
	name string
	api  authsvcv1.Credential
}{
	{CredentialsBearer, "bearer", authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN},
	{CredentialsTokenCookie, "token_cookie", authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN_COOKIE},
	{CredentialsSessionCookie, "session_cookie", authsvcv1.Credential_CREDENTIAL_SESSION_COOKIE},
	{CredentialsAPIKey, "api_key", authsvcv1.Credential_CREDENTIAL_API_KEY},
}

// ParseCredentials parses a comma-separated list of kinds: bearer,
// token_cookie, session_cookie, api_key. It does not allocate.
func ParseCredentials(list string) (Credentials, error) {
	var set Credentials
	for rest := list; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ",")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, k := range credentialKinds {
			if k.name == name {
				set |= k.set
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown credential kind %q: want bearer, token_cookie, session_cookie or api_key", name)
		}
	}
	return set, nil
}

// String lists the kinds of the set, comma-separated.
func (c Credentials) String() string {
	var names []string
	for _, k := range credentialKinds {
		if c&k.set != 0 {
			names = append(names, k.name)
		}
	}
	return strings.Join(names, ",")
}

// credentialName is the name of an API credential kind, for headers and
// bodies; "" for none.
func credentialName(c authsvcv1.Credential) string {
	for _, k := range credentialKinds {
		if k.api == c {
			return k.name
		}
	}
	return ""
}

// SessionExchanger turns a Wacht session cookie into a verified session
// token.
type SessionExchanger interface {
	Token(ctx context.Context, s sessionexchange.Session) (string, error)
}

// AuthenticateConfig configures the credentials Authenticate and Check
// accept.
type AuthenticateConfig struct {
	// Credentials are the kinds accepted; zero means all of them.
	Credentials Credentials
	// TokenCookies name cookies holding a session token, such as the
	// Next.js SDK's __auth_<scope>.
	TokenCookies []string
	// APIKeyHeader names a header holding an API-auth key, besides
	// Authorization: Bearer; lower case, such as "x-api-key".
	APIKeyHeader string
	// Exchange exchanges session cookies; nil turns them off.
	Exchange SessionExchanger
}

// AuthRequest is a request to authenticate, as Envoy's Check or the
// Authenticate RPC sees it.
type AuthRequest struct {
	// Headers have lower-case names.
	Headers map[string]string
	// Method and Path are the request's, for API-auth keys; a query in
	// Path is ignored.
	Method, Path        string
	RequiredPermissions []string
	CheckRevocation     bool
	// Credentials narrows the configured kinds; zero means no narrowing.
	Credentials Credentials
	// ClientAddress is the end user's IP address, for the Frontend API.
	ClientAddress string

	// encoded holds the headers of a Check request still in its
	// encoding (its headers map, then its header_map), found after
	// Headers (which Check leaves empty).
	encoded encodedHeaders
}

// encodedHeaders finds headers in an encoded request:
// [checkcodec.Request].
type encodedHeaders interface {
	// Header is the headers map's value of a name.
	Header(name string) (string, bool)
	// HeaderMapValues yields the header_map's values of a name in order.
	HeaderMapValues(name string, yield func(string) bool)
}

// header returns the first value of a header, by lower-case name.
func (r *AuthRequest) header(name string) string {
	if v, ok := r.Headers[name]; ok {
		return v
	}
	if r.encoded != nil {
		if v, ok := r.encoded.Header(name); ok {
			return v
		}
	}
	var first string
	if r.encoded != nil {
		r.encoded.HeaderMapValues(name, func(v string) bool {
			first = v
			return false
		})
	}
	return first
}

// cookie returns the value of the first cookie with one of the names, in
// every cookie header of the request.
func (r *AuthRequest) cookie(names ...string) (string, bool) {
	if v, ok := r.Headers["cookie"]; ok {
		if c, ok := findCookie(v, names); ok {
			return c, true
		}
	}
	if r.encoded != nil {
		if v, ok := r.encoded.Header("cookie"); ok {
			if c, ok := findCookie(v, names); ok {
				return c, true
			}
		}
	}
	var found string
	if r.encoded != nil {
		r.encoded.HeaderMapValues("cookie", func(v string) bool {
			c, ok := findCookie(v, names)
			if ok {
				found = c
			}
			return !ok
		})
	}
	return found, found != ""
}

// findCookie finds a cookie in a Cookie header value ("a=1; b=2").
func findCookie(header string, names []string) (string, bool) {
	for rest := header; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		for _, n := range names {
			if name == n {
				value = strings.Trim(strings.TrimSpace(value), `"`)
				return value, value != ""
			}
		}
	}
	return "", false
}

// Decision is who a request is from.
type Decision struct {
	Credential authsvcv1.Credential
	// Claims are set for the three session credentials.
	Claims *sessiontoken.Claims
	// APIKey is set for an API-auth key.
	APIKey *authsvcv1.VerifyAPIKeyResponse
}

// credentialError is the refusal of one credential, or of the request
// when it carries none (credential unspecified).
type credentialError struct {
	credential authsvcv1.Credential
	err        error
}

func (e *credentialError) Error() string {
	if name := credentialName(e.credential); name != "" {
		return name + ": " + e.err.Error()
	}
	return e.err.Error()
}

func (e *credentialError) Unwrap() error { return e.err }

func refused(c authsvcv1.Credential, err error) error {
	return &credentialError{credential: c, err: err}
}

// errNoCredential is a request that carries no accepted credential.
var errNoCredential = errors.New("the request carries no accepted credential")

// apiKeyRefusal is an API-auth key the gateway did not let through.
type apiKeyRefusal struct {
	verdict *authsvcv1.VerifyAPIKeyResponse
}

func (e *apiKeyRefusal) Error() string {
	return "the API key was refused: " + strings.ToLower(strings.TrimPrefix(e.verdict.GetReason().String(), "API_KEY_REFUSAL_REASON_"))
}

// Decide tries every accepted credential the request carries, in order:
// Authorization: Bearer <session token>; a session token in a configured
// cookie; Wacht's session cookie, exchanged; an API-auth key. It is the
// one decision of Envoy's Check and the Authenticate RPC. A refusal
// wraps a *credentialError; refusalOf classifies it.
func (s *AuthServer) Decide(ctx context.Context, r AuthRequest) (Decision, error) {
	if len(r.RequiredPermissions) > maxRequiredPermissions {
		return Decision{}, invalidArgument("at most %d required_permissions", maxRequiredPermissions)
	}
	creds := s.authn.Credentials
	if r.Credentials != 0 {
		creds &= r.Credentials
	}
	var apiKey string
	if creds&(CredentialsBearer|CredentialsAPIKey) != 0 {
		if bearer, ok := bearerToken(r.header("authorization")); ok {
			switch {
			case !looksLikeJWS(bearer):
				apiKey = bearer
			case creds&CredentialsBearer != 0:
				return s.decideToken(ctx, authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN, bearer, &r)
			}
		}
	}
	// A token cookie's refusal (it expired, most often) lets a session
	// cookie answer instead, as Wacht's Next.js middleware does.
	var cookieRefusal error
	if creds&CredentialsTokenCookie != 0 && len(s.authn.TokenCookies) > 0 {
		if tok, ok := r.cookie(s.authn.TokenCookies...); ok {
			d, err := s.decideToken(ctx, authsvcv1.Credential_CREDENTIAL_SESSION_TOKEN_COOKIE, tok, &r)
			if err == nil {
				return d, nil
			}
			if ref, ok := refusalOf(err); !ok || ref.reason == authsvcv1.TokenRefusalReason_TOKEN_REFUSAL_REASON_PERMISSION_DENIED {
				return Decision{}, err
			}
			cookieRefusal = err
		}
	}
	if creds&CredentialsSessionCookie != 0 && s.authn.Exchange != nil {
		if sess, ok := r.session(); ok {
			return s.decideSessionCookie(ctx, sess, &r)
		}
	}
	if creds&CredentialsAPIKey != 0 {
		if apiKey == "" && s.authn.APIKeyHeader != "" {
			apiKey = strings.TrimSpace(r.header(s.authn.APIKeyHeader))
		}
		if apiKey != "" {
			return s.decideAPIKey(ctx, apiKey, &r)
		}
	}
	if cookieRefusal != nil {
		return Decision{}, cookieRefusal
	}
	return Decision{}, refused(authsvcv1.Credential_CREDENTIAL_UNSPECIFIED, errNoCredential)
}

func (s *AuthServer) decideToken(ctx context.Context, c authsvcv1.Credential, token string, r *AuthRequest) (Decision, error) {
	claims, err := s.Verify(ctx, token, r.RequiredPermissions, r.CheckRevocation)
	if err != nil {
		return Decision{}, refused(c, err)
	}
	return Decision{Credential: c, Claims: claims}, nil
}

// session finds Wacht's session cookie, or a development session.
func (r *AuthRequest) session() (sessionexchange.Session, bool) {
	if v, ok := r.cookie(wachtclient.SessionCookie); ok {
		return sessionexchange.Session{Value: v}, true
	}
	if v := strings.TrimSpace(r.header("x-development-session")); v != "" {
		return sessionexchange.Session{Value: v, Development: true}, true
	}
	if v, ok := r.cookie(wachtclient.DevSessionCookie); ok {
		return sessionexchange.Session{Value: v, Development: true}, true
	}
	return sessionexchange.Session{}, false
}

func (s *AuthServer) decideSessionCookie(ctx context.Context, sess sessionexchange.Session, r *AuthRequest) (Decision, error) {
	const c = authsvcv1.Credential_CREDENTIAL_SESSION_COOKIE
	if addr, err := netip.ParseAddr(r.ClientAddress); err == nil {
		sess.ClientAddr = addr.Unmap()
	}
	tok, err := s.authn.Exchange.Token(ctx, sess)
	if err != nil {
		return Decision{}, refused(c, err)
	}
	return s.decideToken(ctx, c, tok, r)
}

func (s *AuthServer) decideAPIKey(ctx context.Context, key string, r *AuthRequest) (Decision, error) {
	const c = authsvcv1.Credential_CREDENTIAL_API_KEY
	path, _, _ := strings.Cut(r.Path, "?")
	path, _, _ = strings.Cut(path, "#")
	switch {
	case len(key) > maxAPIKeyBytes:
		return Decision{}, refused(c, &apiKeyRefusal{verdict: &authsvcv1.VerifyAPIKeyResponse{
			Reason: authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_INVALID_KEY,
		}})
	case path == "" || len(path) > maxResourceBytes:
		return Decision{}, refused(c, invalidArgument("the request path must be 1 to %d bytes to check an API key", maxResourceBytes))
	}
	method := strings.ToUpper(r.Method)
	if !wachtclient.IsGatewayMethod(method) {
		// The gateway checks only these methods: a key cannot make the
		// request.
		return Decision{}, refused(c, &apiKeyRefusal{verdict: &authsvcv1.VerifyAPIKeyResponse{
			Reason: authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_PERMISSION_DENIED,
		}})
	}
	verdict, err := s.checkAPIKey(ctx, key, method, path, r.RequiredPermissions)
	switch {
	case err != nil:
		return Decision{}, refused(c, err)
	case !verdict.GetAllowed():
		return Decision{}, refused(c, &apiKeyRefusal{verdict: verdict})
	}
	return Decision{Credential: c, APIKey: verdict}, nil
}

// looksLikeJWS reports whether a bearer value has the shape of a compact
// JWS (three dot-separated parts), which API-auth keys never have.
func looksLikeJWS(v string) bool {
	return strings.Count(v, ".") == 2
}

// maxAuthenticateHeaders bounds the headers of an Authenticate request.
const maxAuthenticateHeaders = 256

// Authenticate implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) Authenticate(ctx context.Context, req *connect.Request[authsvcv1.AuthenticateRequest]) (*connect.Response[authsvcv1.AuthenticateResponse], error) {
	msg := req.Msg
	if len(msg.GetHeaders()) > maxAuthenticateHeaders {
		return nil, s.errs.toConnect(ctx, invalidArgument("at most %d headers", maxAuthenticateHeaders))
	}
	headers := msg.GetHeaders()
	for k := range headers {
		if k != strings.ToLower(k) {
			headers = lowerKeys(headers)
			break
		}
	}
	addr := msg.GetClientAddress()
	if addr == "" {
		first, _, _ := strings.Cut(headers["x-forwarded-for"], ",")
		addr = strings.TrimSpace(first)
	}
	d, err := s.Decide(ctx, AuthRequest{
		Headers:             headers,
		Method:              msg.GetMethod(),
		Path:                msg.GetPath(),
		RequiredPermissions: msg.GetRequiredPermissions(),
		CheckRevocation:     msg.GetCheckRevocation(),
		ClientAddress:       addr,
	})
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	out := &authsvcv1.AuthenticateResponse{Credential: d.Credential}
	if d.APIKey != nil {
		out.Identity = &authsvcv1.AuthenticateResponse_ApiKey{ApiKey: d.APIKey}
	} else {
		out.Identity = &authsvcv1.AuthenticateResponse_Session{Session: sessionResponse(d.Claims)}
	}
	return connect.NewResponse(out), nil
}

// lowerKeys returns the headers with lower-case names; values of names
// that differ only in case are joined.
func lowerKeys(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		k = strings.ToLower(k)
		if prev, ok := out[k]; ok {
			sep := ", "
			if k == "cookie" {
				sep = "; "
			}
			v = prev + sep + v
		}
		out[k] = v
	}
	return out
}
