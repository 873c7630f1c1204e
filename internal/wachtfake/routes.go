package wachtfake

import (
	"net/http"
	"strings"
	"time"
)

// Route names, as counted by [Server.Calls] and matched by [Fault.Route].
// A request to a known path with a method the path does not serve is
// counted as METHOD plus the path's pattern.
const (
	RouteHealth        = "GET /health"
	RouteListUsers     = "GET /users"
	RouteUserDetails   = "GET /users/{user_id}/details"
	RouteDeleteUser    = "DELETE /users/{user_id}"
	RouteListSessions  = "GET /users/{user_id}/sessions"
	RouteRevokeSession = "POST /users/{user_id}/sessions/{signin_id}/revoke"
	RouteRevokeAll     = "POST /users/{user_id}/sessions/revoke-all"
	RouteListAPIKeys   = "GET /api-auth/apps/{app_slug}/keys"
	RouteCreateAPIKey  = "POST /api-auth/apps/{app_slug}/keys"
	RouteRevokeAPIKey  = "POST /api-auth/apps/{app_slug}/keys/{key_id}/revoke"
	RouteRotateAPIKey  = "POST /api-auth/apps/{app_slug}/keys/{key_id}/rotate"
	RouteAuthzCheck    = "POST /v1/authz/check"
	RouteJWKS          = "GET /.well-known/jwks.json"
	RouteSessionToken  = "GET /session/token"
	RouteUnknown       = "unknown" // requests to paths no route serves
)

// routeKind says which Wacht service a route belongs to, which decides
// authentication and error formatting.
type routeKind int

const (
	kindPublic  routeKind = iota // no auth, Backend API error shape
	kindBackend                  // Bearer auth and budget, Backend API error shape
	kindGateway                  // no auth, axum's plain rejections
)

type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, p params)

type route struct {
	name    string
	method  string
	pattern string
	segs    []string
	kind    routeKind
	handle  handlerFunc
}

// params holds the path wildcards of a matched route.
type params map[string]string

// newRoutes returns the route table of a Server.
func newRoutes() []route {
	return buildRoutes([]route{
		{name: RouteHealth, kind: kindPublic, handle: (*Server).handleHealth},
		{name: RouteListUsers, kind: kindBackend, handle: (*Server).handleListUsers},
		{name: RouteUserDetails, kind: kindBackend, handle: (*Server).handleUserDetails},
		{name: RouteDeleteUser, kind: kindBackend, handle: (*Server).handleDeleteUser},
		{name: RouteListSessions, kind: kindBackend, handle: (*Server).handleListSessions},
		{name: RouteRevokeSession, kind: kindBackend, handle: (*Server).handleRevokeSession},
		{name: RouteRevokeAll, kind: kindBackend, handle: (*Server).handleRevokeAll},
		{name: RouteListAPIKeys, kind: kindBackend, handle: (*Server).handleListAPIKeys},
		{name: RouteCreateAPIKey, kind: kindBackend, handle: (*Server).handleCreateAPIKey},
		{name: RouteRevokeAPIKey, kind: kindBackend, handle: (*Server).handleRevokeAPIKey},
		{name: RouteRotateAPIKey, kind: kindBackend, handle: (*Server).handleRotateAPIKey},
		{name: RouteAuthzCheck, kind: kindGateway, handle: (*Server).handleAuthzCheck},
		{name: RouteJWKS, kind: kindPublic, handle: (*Server).handleJWKS},
		{name: RouteSessionToken, kind: kindPublic, handle: (*Server).handleSessionToken},
	})
}

func buildRoutes(rs []route) []route {
	for i := range rs {
		method, pattern, _ := strings.Cut(rs[i].name, " ")
		rs[i].method = method
		rs[i].pattern = pattern
		rs[i].segs = strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	}
	return rs
}

// match finds the route for r. It returns the route serving r's method, or
// nil with the path's pattern when only the method differs, or nil and ""
// when no route has that path.
func (s *Server) match(r *http.Request) (*route, string, routeKind, params) {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var (
		pathPattern string
		pathKind    routeKind
	)
	for i := range s.routes {
		rt := &s.routes[i]
		p, ok := matchSegments(rt.segs, segs)
		if !ok {
			continue
		}
		// axum's get() also answers HEAD.
		if rt.method == r.Method || (r.Method == http.MethodHead && rt.method == http.MethodGet) {
			return rt, rt.pattern, rt.kind, p
		}
		pathPattern, pathKind = rt.pattern, rt.kind
	}
	return nil, pathPattern, pathKind, nil
}

func matchSegments(pattern, path []string) (params, bool) {
	if len(pattern) != len(path) {
		return nil, false
	}
	var p params
	for i, seg := range pattern {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			if path[i] == "" {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			p[strings.TrimSuffix(name, "}")] = path[i]
			continue
		}
		if seg != path[i] {
			return nil, false
		}
	}
	return p, true
}

// ServeHTTP serves every emulated route on one handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, pattern, kind, p := s.match(r)
	name := RouteUnknown
	switch {
	case rt != nil:
		name = rt.name
	case pattern != "":
		name = r.Method + " " + pattern
	}
	s.countCall(name)
	if !s.applyFault(w, r, name) {
		return
	}
	if pattern == "" {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	if kind == kindBackend && !s.delayBackend(r) {
		return
	}
	if kind == kindBackend && !s.authorizeBackend(w, r) {
		return
	}
	if rt == nil {
		if kind == kindGateway {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	rt.handle(s, w, r, p)
}

// delayBackend waits the Backend API latency and reports whether the
// client is still there.
func (s *Server) delayBackend(r *http.Request) bool {
	s.mu.Lock()
	d := s.backendLatency
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) countCall(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
}

// Calls returns how many requests reached route name (one of the Route
// constants, METHOD plus pattern, or [RouteUnknown]) since the last
// [Server.ResetCalls], faulted ones included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// ResetCalls sets every call counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}
