package service

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

const (
	maxAPIKeyBytes   = 512
	maxResourceBytes = 2048
)

// VerifyAPIKey implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) VerifyAPIKey(ctx context.Context, req *connect.Request[authsvcv1.VerifyAPIKeyRequest]) (*connect.Response[authsvcv1.VerifyAPIKeyResponse], error) {
	msg := req.Msg
	method := strings.ToUpper(msg.GetMethod())
	switch {
	case msg.GetKey() == "":
		return nil, s.errs.toConnect(ctx, invalidArgument("key is required"))
	case len(msg.GetKey()) > maxAPIKeyBytes:
		return nil, s.errs.toConnect(ctx, invalidArgument("key is longer than %d bytes", maxAPIKeyBytes))
	case !wachtclient.IsGatewayMethod(method):
		return nil, s.errs.toConnect(ctx, invalidArgument("method must be one of %s", strings.Join(wachtclient.GatewayMethods, ", ")))
	case msg.GetResource() == "" || len(msg.GetResource()) > maxResourceBytes:
		return nil, s.errs.toConnect(ctx, invalidArgument("resource must be a path of 1 to %d bytes", maxResourceBytes))
	case len(msg.GetRequiredPermissions()) > maxRequiredPermissions:
		return nil, s.errs.toConnect(ctx, invalidArgument("at most %d required_permissions", maxRequiredPermissions))
	}
	out, err := s.checkAPIKey(ctx, msg.GetKey(), method, msg.GetResource(), msg.GetRequiredPermissions())
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	return connect.NewResponse(out), nil
}

// checkAPIKey asks the gateway, or the cache of its allowed answers,
// whether key may call method on resource. A refusal is a verdict with
// Allowed false, not an error. It is shared by VerifyAPIKey and Decide.
func (s *AuthServer) checkAPIKey(ctx context.Context, key, method, resource string, required []string) (*authsvcv1.VerifyAPIKeyResponse, error) {
	perms := slices.Clone(required)
	slices.Sort(perms)
	cacheKey := apiKeyCacheKey(key, method, resource, perms)
	if s.apiKeys != nil {
		if cached, ok := s.apiKeys.GetIfPresent(cacheKey); ok {
			return proto.CloneOf(cached), nil
		}
	}

	check, err := s.wacht.CheckAuthz(ctx, wachtclient.AuthzCheckRequest{
		Principal:           wachtclient.Principal{Type: "api_key", Value: key},
		Resource:            resource,
		Method:              method,
		RequiredPermissions: perms,
	})
	switch {
	case errors.Is(err, wachtclient.ErrUnauthorized):
		// The gateway answers 401 for unknown, revoked, expired and
		// malformed keys: a verdict about the key, not a failure.
		return &authsvcv1.VerifyAPIKeyResponse{
			Reason: authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_INVALID_KEY,
		}, nil
	case err != nil:
		return nil, err
	}
	out := apiKeyVerdict(check)
	// An answer under rate limits is not reused: the gateway counts each
	// call against the key's limits, and a reused answer would let the
	// key make calls the gateway never saw.
	if out.Allowed && s.apiKeys != nil && len(check.RateLimits) == 0 && check.RetryAfter == 0 {
		s.apiKeys.Set(cacheKey, proto.CloneOf(out))
	}
	return out, nil
}

// apiKeyCacheKey identifies one question about one key without holding
// the key itself. Every part is length-prefixed, so no two different
// questions share a key.
func apiKeyCacheKey(key, method, resource string, sortedPerms []string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range append([]string{key, method, resource}, sortedPerms...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write([]byte(part))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func apiKeyVerdict(c *wachtclient.AuthzCheckResponse) *authsvcv1.VerifyAPIKeyResponse {
	out := &authsvcv1.VerifyAPIKeyResponse{
		Allowed:     c.Allowed,
		Permissions: c.Permissions,
	}
	if !c.Allowed {
		switch c.Reason {
		case "rate_limited":
			out.Reason = authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_RATE_LIMITED
			if c.RetryAfter > 0 {
				out.RetryAfter = durationpb.New(time.Duration(c.RetryAfter) * time.Millisecond)
			}
		default:
			out.Reason = authsvcv1.APIKeyRefusalReason_API_KEY_REFUSAL_REASON_PERMISSION_DENIED
		}
	}
	if id := c.Identity; id != nil {
		out.KeyId = string(id.KeyID)
		out.OwnerUserId = string(id.OwnerUserID)
		out.OrganizationId = string(id.OrganizationID)
		out.WorkspaceId = string(id.WorkspaceID)
		out.AppSlug = id.AppSlug
		out.KeyName = id.KeyName
	}
	if len(c.Metadata) > 0 {
		var m map[string]any
		if json.Unmarshal(c.Metadata, &m) == nil {
			out.Metadata = structFromMap(m)
		}
	}
	return out
}
