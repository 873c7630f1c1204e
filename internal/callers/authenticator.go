package callers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"connectrpc.com/authn"
	"connectrpc.com/connect"
)

// Config configures an Authenticator.
type Config struct {
	// Path is the callers file. It is required unless Open is set, and
	// must be empty when it is.
	Path string
	// Open lets every call in as the caller AnonymousName with every role
	// and MethodOpen, whatever it presents. It is for `authsvc dev` and
	// AUTHSVC_INSECURE_OPEN=true.
	Open bool
	// Policy says which procedures need which role. Required: the
	// application that owns the mux knows its procedures.
	Policy Policy
	// Logger receives one line per refused call (never a credential) and
	// one per reload. Nil discards.
	Logger *slog.Logger
	// HandlerOptions are the options the wrapped Connect handlers were
	// built with, so that refusals are written the way those handlers
	// would write errors (codecs, protocol header requirements).
	HandlerOptions []connect.HandlerOption
	// MapError turns a refusal ([ErrMissingCredential],
	// [ErrInvalidCredential], [ErrProcedureDenied] or a *[RoleError]) into
	// the *connect.Error written to the caller, as the wrapped handlers'
	// errors are. Required unless Open is set.
	MapError func(context.Context, error) error
}

// Authenticator is HTTP middleware that authenticates and authorizes
// authsvc's callers. It is safe for concurrent use, including Reload
// during requests.
type Authenticator struct {
	path      string
	open      bool
	policy    Policy
	logger    *slog.Logger
	mapError  func(context.Context, error) error
	anonymous *Caller
	mw        *authn.Middleware

	reloadMu sync.Mutex
	registry atomic.Pointer[Registry]
}

// New returns an Authenticator. Unless cfg.Open is set, it loads the
// callers file at cfg.Path and fails if the file is missing or invalid.
func New(cfg Config) (*Authenticator, error) {
	switch {
	case cfg.Open && cfg.Path != "":
		return nil, errors.New("callers: set either a callers file or open mode, not both")
	case !cfg.Open && cfg.Path == "":
		return nil, errors.New("callers: no callers file and open mode is off")
	}
	if !cfg.Open && cfg.MapError == nil {
		return nil, errors.New("callers: a MapError is required")
	}
	policy := cfg.Policy
	if policy.isZero() {
		return nil, errors.New("callers: a Policy is required")
	}
	if err := policy.validate(); err != nil {
		return nil, fmt.Errorf("callers: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		path:      cfg.Path,
		open:      cfg.Open,
		policy:    policy,
		logger:    logger,
		mapError:  cfg.MapError,
		anonymous: &Caller{Name: AnonymousName, Roles: normalizeRoles(RoleAdmin), Method: MethodOpen},
	}
	if !cfg.Open {
		reg, err := Load(cfg.Path)
		if err != nil {
			return nil, err
		}
		a.registry.Store(reg)
	}
	a.mw = authn.NewMiddleware(func(ctx context.Context, req *http.Request) (any, error) {
		c, err := a.authenticate(ctx, req)
		switch {
		case err != nil:
			return nil, a.mapError(ctx, err)
		case c == nil:
			return nil, nil
		}
		return c, nil
	}, cfg.HandlerOptions...)
	return a, nil
}

// Wrap returns h behind the middleware: a refused call is answered in the
// caller's protocol before h, or Connect, reads a byte of its body; an
// allowed one reaches h with its Caller on the context.
//
// The policy matches request paths as h routes them, so wrap the mux that
// mounts the Connect handlers at their procedure paths, inside any
// http.StripPrefix, not outside it.
func (a *Authenticator) Wrap(h http.Handler) http.Handler {
	return a.mw.Wrap(h)
}

// Reload re-reads the callers file and swaps it in for the calls that
// start afterwards. If the file is missing or invalid, the callers loaded
// before stay in force and the error is returned.
func (a *Authenticator) Reload() error {
	if a.open {
		return errors.New("reload callers: open mode has no callers file")
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	reg, err := Load(a.path)
	if err != nil {
		return fmt.Errorf("reload callers: %w", err)
	}
	a.registry.Store(reg)
	a.logger.Info("callers reloaded", "path", a.path, "callers", reg.Len())
	return nil
}

// Refusals of a call. Their messages are fixed, so that a refusal never
// reveals which callers exist.
var (
	// ErrMissingCredential is a call without a caller credential.
	ErrMissingCredential = errors.New("missing caller credential: send Authorization: Bearer <token> or a client certificate")
	// ErrInvalidCredential is a credential that names no one caller: an
	// unknown token or certificate, a token without the certificate its
	// caller needs, a certificate several callers match.
	ErrInvalidCredential = errors.New("invalid caller credential")
	// ErrProcedureDenied is a procedure the policy denies to every caller.
	ErrProcedureDenied = errors.New("procedure not allowed")
)

// RoleError is a known caller without the role a procedure needs.
type RoleError struct {
	// Role is the role the procedure needs.
	Role Role
}

// Error implements error.
func (e *RoleError) Error() string { return fmt.Sprintf("procedure needs the %s role", e.Role) }

// authenticate returns the caller of req (nil on an open procedure called
// without a known credential), or the refusal of the call.
func (a *Authenticator) authenticate(ctx context.Context, req *http.Request) (*Caller, error) {
	if a.open {
		return a.anonymous, nil
	}
	access := a.policy.Access(req.URL.Path)
	switch access {
	case AccessDeny:
		a.refused(ctx, req, access, refusedByPolicy, nil)
		return nil, ErrProcedureDenied
	case AccessOpen:
		if c, why, _ := a.registry.Load().identify(req); why == refusedNone {
			return c, nil
		}
		return nil, nil
	}
	c, why, names := a.registry.Load().identify(req)
	switch why {
	case refusedNone:
	case refusedMissing:
		a.refused(ctx, req, access, why, nil)
		return nil, ErrMissingCredential
	default:
		a.refused(ctx, req, access, why, names)
		return nil, ErrInvalidCredential
	}
	role := access.role()
	if !c.Has(role) {
		a.refused(ctx, req, access, refusedLacksRole, []string{c.Name})
		return nil, &RoleError{Role: role}
	}
	return c, nil
}

// refused logs one refused call. names are the callers involved, if any;
// names are not secrets, and the credential is never logged.
func (a *Authenticator) refused(ctx context.Context, req *http.Request, access Access, why refusal, names []string) {
	level := slog.LevelInfo
	if why == refusedAmbiguous {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("path", req.URL.Path),
		slog.String("needs", access.String()),
		slog.String("reason", string(why)),
		slog.String("remote", req.RemoteAddr),
	}
	switch len(names) {
	case 0:
	case 1:
		attrs = append(attrs, slog.String("caller", names[0]))
	default:
		attrs = append(attrs, slog.Any("callers", names))
	}
	a.logger.LogAttrs(ctx, level, "caller refused", attrs...)
}
