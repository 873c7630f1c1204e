package wachtfake

import (
	"cmp"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request, _ params) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "healthy", "timestamp": wireTime(s.now())})
}

func (s *Server) handleUserDetails(w http.ResponseWriter, _ *http.Request, p params) {
	id, ok := canonicalID(p["user_id"])
	if !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u, ok := s.users[id]
	var body userDetailsJSON
	if ok {
		body = s.userDetailsLocked(u)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Resource not found")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, _ *http.Request, p params) {
	id, ok := canonicalID(p["user_id"])
	if !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	deleted := s.deleteUserLocked(id)
	s.mu.Unlock()
	s.deliverPending()
	if !deleted {
		writeError(w, http.StatusNotFound, "Resource not found")
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// listUsersQuery is Wacht's ActiveUserListQueryParams.
type listUsersQuery struct {
	limit, offset int
	sortKey       string
	desc          bool
	search        string
}

func parseListUsersQuery(q url.Values) (listUsersQuery, bool) {
	out := listUsersQuery{limit: 10, sortKey: "created_at", desc: true}
	if v, ok := lastValue(q, "limit"); ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > math.MaxInt32-1 {
			return out, false
		}
		out.limit = int(n)
	}
	if v, ok := lastValue(q, "offset"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return out, false
		}
		out.offset = int(n)
	}
	if v, ok := lastValue(q, "sort_key"); ok {
		switch v {
		case "created_at", "username", "email", "phone_number":
			out.sortKey = v
		default:
			return out, false
		}
	}
	if v, ok := lastValue(q, "sort_order"); ok {
		switch v {
		case "asc":
			out.desc = false
		case "desc":
			out.desc = true
		default:
			return out, false
		}
	}
	out.search, _ = lastValue(q, "search")
	out.search = strings.TrimSpace(out.search)
	return out, true
}

// lastValue returns the last value of a query key, as serde_urlencoded
// keeps the last of repeated keys.
func lastValue(q url.Values, key string) (string, bool) {
	vs, ok := q[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, _ params) {
	q, ok := parseListUsersQuery(r.URL.Query())
	if !ok {
		writeRejection(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	out := s.listUsersLocked(q)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listUsersLocked(q listUsersQuery) paginatedJSON[userWithIdentifiersJSON] {
	users := make([]*User, 0, len(s.users))
	needle := strings.ToLower(q.search)
	for _, u := range s.users {
		if needle == "" || strings.Contains(searchText(u), needle) {
			users = append(users, u)
		}
	}
	slices.SortFunc(users, func(a, b *User) int {
		c := compareUsers(a, b, q.sortKey)
		if q.desc {
			c = -c
		}
		return c
	})
	page := users[min(q.offset, len(users)):]
	page = page[:min(q.limit+1, len(page))]
	out := paginatedJSON[userWithIdentifiersJSON]{
		Data:   []userWithIdentifiersJSON{},
		Limit:  &q.limit,
		Offset: &q.offset,
	}
	for i, u := range page {
		if i == q.limit {
			out.HasMore = true
			break
		}
		out.Data = append(out.Data, userWithIdentifiers(u))
	}
	return out
}

// compareUsers orders users ascending by key, with nulls last as Postgres
// sorts them, and by id to break ties.
func compareUsers(a, b *User, key string) int {
	var c int
	switch key {
	case "username":
		c = compareNullable(a.Username, b.Username)
	case "email":
		c = compareNullable(primaryEmail(a).Email, primaryEmail(b).Email)
	case "phone_number":
		c = compareNullable(primaryPhone(a).PhoneNumber, primaryPhone(b).PhoneNumber)
	default:
		c = a.CreatedAt.Compare(b.CreatedAt)
	}
	if c != 0 {
		return c
	}
	ai, _ := strconv.ParseInt(a.ID, 10, 64)
	bi, _ := strconv.ParseInt(b.ID, 10, 64)
	return cmp.Compare(ai, bi)
}

func compareNullable(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	default:
		return strings.Compare(a, b)
	}
}

// searchText is what the search parameter matches, case-insensitively.
func searchText(u *User) string {
	parts := []string{u.FirstName, u.LastName, u.FirstName + " " + u.LastName, u.Username}
	for _, e := range u.Emails {
		parts = append(parts, e.Email)
	}
	for _, p := range u.Phones {
		parts = append(parts, p.CountryCode+p.PhoneNumber)
	}
	return strings.ToLower(strings.Join(parts, "\n"))
}
