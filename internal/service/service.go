// Package service implements authsvc's Connect services over the token
// verifier, the caches and the Wacht client, which it reaches through
// small interfaces of its own.
package service

import (
	"log/slog"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
)

// AuthServer implements [authsvcv1connect.AuthServiceHandler].
type AuthServer struct {
	authsvcv1connect.UnimplementedAuthServiceHandler

	logger *slog.Logger
}

// NewAuthServer returns the AuthService implementation.
func NewAuthServer(logger *slog.Logger) *AuthServer {
	return &AuthServer{logger: logger}
}

// AdminServer implements [authsvcv1connect.AdminServiceHandler].
type AdminServer struct {
	authsvcv1connect.UnimplementedAdminServiceHandler

	logger *slog.Logger
}

// NewAdminServer returns the AdminService implementation.
func NewAdminServer(logger *slog.Logger) *AdminServer {
	return &AdminServer{logger: logger}
}
