package callers

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"strings"

	"connectrpc.com/authn"
)

// Registry is a parsed callers file. It is immutable and safe for
// concurrent use.
//
// Tokens are found by their SHA-256 in a map. The map's key comparison may
// return early, but what it compares is a hash the caller cannot steer:
// learning how many leading bytes of a stored hash a guess shares does not
// help to find a token (SHA-256 is preimage resistant), so this is as
// timing-safe as comparing against every hash with
// crypto/subtle.ConstantTimeCompare, and it stays O(1) however many
// callers there are.
type Registry struct {
	byToken  map[[sha256.Size]byte]*entry
	certOnly []*entry
	n        int
}

// entry is one caller of the file.
type entry struct {
	index    int
	name     string
	roles    []Role
	limits   *Limits // nil: the defaults
	token    [sha256.Size]byte
	hasToken bool
	cert     *certIdentity

	// viaToken and viaCert are what goes on the context, built once.
	viaToken *Caller
	viaCert  *Caller
}

// certIdentity is what a verified leaf certificate must show; empty
// fields are not checked.
type certIdentity struct {
	commonName string
	uriSAN     string
	dnsSAN     string
}

func newRegistry(n int) *Registry {
	return &Registry{byToken: make(map[[sha256.Size]byte]*entry, n)}
}

func (r *Registry) add(e *entry) {
	e.viaToken = &Caller{Name: e.name, Roles: e.roles, Limits: e.limits, Method: MethodToken}
	e.viaCert = &Caller{Name: e.name, Roles: e.roles, Limits: e.limits, Method: MethodCert}
	switch {
	case e.hasToken:
		r.byToken[e.token] = e
	case e.cert != nil:
		r.certOnly = append(r.certOnly, e)
	}
	r.n++
}

// Len returns the number of callers.
func (r *Registry) Len() int { return r.n }

// refusal says why a request was not authenticated. Its text is for the
// server's log only; callers get fixed messages that never say which
// callers exist.
type refusal string

const (
	refusedNone         refusal = ""
	refusedMissing      refusal = "no credential"
	refusedEmptyToken   refusal = "empty bearer token"
	refusedUnknownToken refusal = "unknown token"
	refusedCertMismatch refusal = "token needs a client certificate it was not presented with"
	refusedUnknownCert  refusal = "unknown client certificate"
	refusedAmbiguous    refusal = "client certificate matches several callers"
	refusedByPolicy     refusal = "procedure denied by policy"
	refusedLacksRole    refusal = "caller lacks the role"
)

// identify finds the caller of req. A bearer token, when sent, decides: a
// bad one is refused even if a good certificate came with it. Without a
// bearer token, a verified client certificate is used.
func (r *Registry) identify(req *http.Request) (*Caller, refusal, []string) {
	leaf := verifiedLeaf(req)
	if token, ok := authn.BearerToken(req); ok {
		if token == "" {
			return nil, refusedEmptyToken, nil
		}
		e := r.byToken[sha256.Sum256([]byte(token))]
		if e == nil {
			return nil, refusedUnknownToken, nil
		}
		if e.cert != nil && (leaf == nil || !e.cert.matches(leaf)) {
			return nil, refusedCertMismatch, []string{e.name}
		}
		return e.viaToken, refusedNone, nil
	}
	if leaf == nil {
		return nil, refusedMissing, nil
	}
	var found *entry
	var names []string
	for _, e := range r.certOnly {
		if e.cert.matches(leaf) {
			found = e
			names = append(names, e.name)
		}
	}
	switch len(names) {
	case 0:
		return nil, refusedUnknownCert, nil
	case 1:
		return found.viaCert, refusedNone, nil
	default:
		return nil, refusedAmbiguous, names
	}
}

// verifiedLeaf returns the client's leaf certificate if the TLS handshake
// verified it against the configured client CA, else nil.
func verifiedLeaf(req *http.Request) *x509.Certificate {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return req.TLS.VerifiedChains[0][0]
}

func (id *certIdentity) matches(leaf *x509.Certificate) bool {
	if id.commonName != "" && leaf.Subject.CommonName != id.commonName {
		return false
	}
	if id.uriSAN != "" && !containsURI(leaf, id.uriSAN) {
		return false
	}
	if id.dnsSAN != "" && !containsDNS(leaf, id.dnsSAN) {
		return false
	}
	return true
}

func containsURI(leaf *x509.Certificate, want string) bool {
	for _, u := range leaf.URIs {
		if u.String() == want {
			return true
		}
	}
	return false
}

func containsDNS(leaf *x509.Certificate, want string) bool {
	for _, d := range leaf.DNSNames {
		if strings.EqualFold(d, want) {
			return true
		}
	}
	return false
}
