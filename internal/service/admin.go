package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/callers"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

// Rotator rotates API keys and reads the rotation audit log.
type Rotator interface {
	Rotate(ctx context.Context, req rotation.Request) (*rotation.Result, error)
	List(ctx context.Context, q rotation.ListQuery) ([]rotation.Record, string, error)
}

// AdminConfig holds what AdminServer needs.
type AdminConfig struct {
	Logger  *slog.Logger
	Rotator Rotator
	// PageTokenKey signs page tokens; every replica must use the same key.
	PageTokenKey []byte
}

// AdminServer implements [authsvcv1connect.AdminServiceHandler].
type AdminServer struct {
	authsvcv1connect.UnimplementedAdminServiceHandler

	logger  *slog.Logger
	errs    errorMapper
	rotator Rotator
	pages   pageTokens
}

// NewAdminServer returns the AdminService implementation.
func NewAdminServer(cfg AdminConfig) (*AdminServer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Rotator == nil {
		return nil, errors.New("new admin server: a rotator is required")
	}
	if len(cfg.PageTokenKey) < 16 {
		return nil, errors.New("new admin server: a page token key of at least 16 bytes is required")
	}
	return &AdminServer{logger: cfg.Logger, errs: errorMapper{logger: cfg.Logger}, rotator: cfg.Rotator, pages: pageTokens{key: cfg.PageTokenKey}}, nil
}

// RotateAPIKey implements [authsvcv1connect.AdminServiceHandler].
func (s *AdminServer) RotateAPIKey(ctx context.Context, req *connect.Request[authsvcv1.RotateAPIKeyRequest]) (*connect.Response[authsvcv1.RotateAPIKeyResponse], error) {
	msg := req.Msg
	grace := msg.GetGracePeriod()
	if grace != nil {
		if err := grace.CheckValid(); err != nil {
			return nil, s.errs.toConnect(ctx, invalidArgument("grace_period is not a valid duration"))
		}
	}
	caller := callers.AnonymousName
	if c, ok := callers.FromContext(ctx); ok {
		caller = c.Name
	}
	res, err := s.rotator.Rotate(ctx, rotation.Request{
		Caller:  caller,
		AppSlug: msg.GetAppSlug(),
		KeyID:   msg.GetKeyId(),
		Reason:  msg.GetReason(),
		Grace:   grace.AsDuration(),
	})
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	s.logger.InfoContext(ctx, "api key rotated", "caller", caller, "app_slug", msg.GetAppSlug(),
		"previous_key_id", res.PreviousKeyID, "new_key_id", string(res.Key.ID), "audit_id", res.AuditID,
		"previous_key_revokes_at", res.PreviousKeyRevokesAt)
	return connect.NewResponse(&authsvcv1.RotateAPIKeyResponse{
		ApiKey:               apiKeyFromWacht(&res.Key),
		Secret:               res.Secret,
		PreviousKeyId:        res.PreviousKeyID,
		PreviousKeyRevokesAt: timestamp(res.PreviousKeyRevokesAt),
	}), nil
}

// ListRotations implements [authsvcv1connect.AdminServiceHandler].
func (s *AdminServer) ListRotations(ctx context.Context, req *connect.Request[authsvcv1.ListRotationsRequest]) (*connect.Response[authsvcv1.ListRotationsResponse], error) {
	msg := req.Msg
	size, err := pageSize(msg.GetPageSize())
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	scope := "rotations/" + msg.GetAppSlug()
	var after string
	if tok := msg.GetPageToken(); tok != "" {
		p, err := s.pages.decode(tok)
		if err != nil || p.Scope != scope {
			return nil, s.errs.toConnect(ctx, invalidArgument("page_token is not one this listing returned"))
		}
		after = strconv.Itoa(p.Offset)
	}
	records, next, err := s.rotator.List(ctx, rotation.ListQuery{AppSlug: msg.GetAppSlug(), Limit: size, After: after})
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	out := &authsvcv1.ListRotationsResponse{}
	for i := range records {
		out.Rotations = append(out.Rotations, rotationFromRecord(&records[i]))
	}
	if next != "" {
		n, err := strconv.Atoi(next)
		if err != nil {
			return nil, s.errs.toConnect(ctx, fmt.Errorf("rotation cursor %q is not a number: %w", next, err))
		}
		out.NextPageToken = s.pages.encode(page{Scope: scope, Offset: n})
	}
	return connect.NewResponse(out), nil
}

func apiKeyFromWacht(k *wachtclient.APIKey) *authsvcv1.APIKey {
	out := &authsvcv1.APIKey{
		Id:          string(k.ID),
		AppSlug:     k.AppSlug,
		Name:        k.Name,
		KeyPrefix:   k.KeyPrefix,
		KeySuffix:   k.KeySuffix,
		Permissions: k.Permissions,
		CreatedAt:   timestamp(k.CreatedAt),
	}
	if k.ExpiresAt != nil {
		out.ExpiresAt = timestamp(*k.ExpiresAt)
	}
	return out
}

var rotationOutcomes = map[rotation.Outcome]authsvcv1.RotationOutcome{
	rotation.OutcomeRotated:           authsvcv1.RotationOutcome_ROTATION_OUTCOME_ROTATED,
	rotation.OutcomePendingRevocation: authsvcv1.RotationOutcome_ROTATION_OUTCOME_PENDING_REVOCATION,
	rotation.OutcomeFailed:            authsvcv1.RotationOutcome_ROTATION_OUTCOME_FAILED,
	rotation.OutcomeUnknown:           authsvcv1.RotationOutcome_ROTATION_OUTCOME_UNKNOWN,
}

func rotationFromRecord(r *rotation.Record) *authsvcv1.Rotation {
	out := &authsvcv1.Rotation{
		Id:                   r.ID,
		Caller:               r.Caller,
		RequestedAt:          timestamp(r.RequestedAt),
		AppSlug:              r.AppSlug,
		PreviousKeyId:        r.PreviousKeyID,
		NewKeyId:             r.NewKeyID,
		NewKeySuffix:         r.NewKeySuffix,
		Reason:               r.Reason,
		GracePeriod:          durationpb.New(r.Grace),
		Outcome:              rotationOutcomes[r.Outcome],
		PreviousKeyRevokesAt: timestamp(r.PreviousKeyRevokesAt),
		PreviousKeyRevokedAt: timestamp(r.PreviousKeyRevokedAt),
		Error:                r.Error,
	}
	if out.Error == "" && r.RevokeError != "" {
		out.Error = fmt.Sprintf("revoking the previous key failed %d times: %s", r.RevokeAttempts, r.RevokeError)
	}
	return out
}
