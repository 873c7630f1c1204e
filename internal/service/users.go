package service

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"golang.org/x/sync/errgroup"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/cache"
	"github.com/authsvc/authsvc/internal/wachtclient"
)

const (
	// maxBatchUsers bounds BatchGetUsers.
	maxBatchUsers = 100
	// batchConcurrency bounds the loads one BatchGetUsers runs at once.
	batchConcurrency = 8
	// staleHeader tells callers that an answer came from a stale cache
	// entry because Wacht could not be reached.
	staleHeader = "Authsvc-Stale"
)

// GetUser implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) GetUser(ctx context.Context, req *connect.Request[authsvcv1.GetUserRequest]) (*connect.Response[authsvcv1.GetUserResponse], error) {
	id := req.Msg.GetUserId()
	if err := checkID("user_id", id); err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	r, err := s.users.Get(ctx, id)
	if isNotFound(err) {
		return nil, s.errs.toConnect(ctx, notFound("user %s not found in Wacht", id))
	}
	if err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	res := connect.NewResponse(&authsvcv1.GetUserResponse{User: r.Value})
	markStale(res.Header(), r.Stale)
	return res, nil
}

// BatchGetUsers implements [authsvcv1connect.AuthServiceHandler].
func (s *AuthServer) BatchGetUsers(ctx context.Context, req *connect.Request[authsvcv1.BatchGetUsersRequest]) (*connect.Response[authsvcv1.BatchGetUsersResponse], error) {
	ids := req.Msg.GetUserIds()
	if len(ids) > maxBatchUsers {
		return nil, s.errs.toConnect(ctx, invalidArgument("at most %d user_ids, got %d", maxBatchUsers, len(ids)))
	}
	seen := make(map[string]bool, len(ids))
	var unique []string
	for _, id := range ids {
		if err := checkID("user_ids", id); err != nil {
			return nil, s.errs.toConnect(ctx, err)
		}
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}

	users := make([]*authsvcv1.User, len(unique))
	found := make([]bool, len(unique))
	var (
		mu    sync.Mutex
		stale bool
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchConcurrency)
	for i, id := range unique {
		g.Go(func() error {
			r, err := s.users.Get(gctx, id)
			switch {
			case isNotFound(err):
				return nil
			case err != nil:
				return err
			}
			users[i], found[i] = r.Value, true
			if r.Stale {
				mu.Lock()
				stale = true
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, s.errs.toConnect(ctx, err)
	}
	out := &authsvcv1.BatchGetUsersResponse{}
	for i, id := range unique {
		if found[i] {
			out.Users = append(out.Users, users[i])
		} else {
			out.NotFoundIds = append(out.NotFoundIds, id)
		}
	}
	res := connect.NewResponse(out)
	markStale(res.Header(), stale)
	return res, nil
}

// checkID refuses anything but a Wacht id in its canonical spelling before
// it reaches a cache key or a Wacht URL.
func checkID(field, id string) error {
	if id == "" {
		return invalidArgument("%s is required", field)
	}
	if canonical, ok := wachtclient.ParseID(id); !ok || canonical != id {
		if len(id) > 32 {
			id = id[:32] + "…"
		}
		return invalidArgument("%s must be a Wacht id (a positive decimal number), got %q", field, id)
	}
	return nil
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, cache.ErrNotFound) || errors.Is(err, wachtclient.ErrNotFound))
}

func markStale(h http.Header, stale bool) {
	if stale {
		h.Set(staleHeader, "true")
	}
}
