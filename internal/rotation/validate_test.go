package rotation_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

func TestRotateMaxGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rotator(t, rotation.NewMemoryStore(), func(c *rotation.Config) { c.MaxGrace = time.Hour })
	k := e.addKey(t, appOrders, "k")
	for _, tc := range []struct {
		grace   time.Duration
		wantErr bool
	}{
		{time.Hour + time.Microsecond, true},
		{time.Hour, false},
	} {
		_, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: k.ID, Grace: tc.grace})
		if got := errors.Is(err, rotation.ErrInvalidArgument); got != tc.wantErr {
			t.Errorf("Rotate(grace %s) error %v; want invalid argument %t", tc.grace, err, tc.wantErr)
		}
	}
}

func TestRotateInvalidArgument(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rotator(t, rotation.NewMemoryStore())
	valid := rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: "24380000000000001", Reason: "r", Grace: time.Hour}
	for _, tc := range []struct {
		name  string
		edit  func(*rotation.Request)
		field string
	}{
		{"no caller", func(q *rotation.Request) { q.Caller = "" }, "caller"},
		{"caller with newline", func(q *rotation.Request) { q.Caller = "ops\nadmin" }, "caller"},
		{"caller too long", func(q *rotation.Request) { q.Caller = strings.Repeat("c", 201) }, "caller"},
		{"no app", func(q *rotation.Request) { q.AppSlug = "" }, "app_slug"},
		{"upper-case app", func(q *rotation.Request) { q.AppSlug = "Orders" }, "app_slug"},
		{"app with slash", func(q *rotation.Request) { q.AppSlug = "orders/../x" }, "app_slug"},
		{"app with space", func(q *rotation.Request) { q.AppSlug = "orders api" }, "app_slug"},
		{"app too long", func(q *rotation.Request) { q.AppSlug = strings.Repeat("a", 65) }, "app_slug"},
		{"no key", func(q *rotation.Request) { q.KeyID = "" }, "key_id"},
		{"zero key", func(q *rotation.Request) { q.KeyID = "0" }, "key_id"},
		{"negative key", func(q *rotation.Request) { q.KeyID = "-5" }, "key_id"},
		{"signed key", func(q *rotation.Request) { q.KeyID = "+5" }, "key_id"},
		{"key with letters", func(q *rotation.Request) { q.KeyID = "12ab" }, "key_id"},
		{"key beyond int64", func(q *rotation.Request) { q.KeyID = "9223372036854775808" }, "key_id"},
		{"negative grace", func(q *rotation.Request) { q.Grace = -time.Second }, "grace_period"},
		{"grace beyond max", func(q *rotation.Request) { q.Grace = 31 * 24 * time.Hour }, "grace_period"},
		{"reason too long", func(q *rotation.Request) { q.Reason = strings.Repeat("é", 501) }, "reason"},
		{"reason not UTF-8", func(q *rotation.Request) { q.Reason = "bad \xff" }, "reason"},
		{"reason with NUL", func(q *rotation.Request) { q.Reason = "a\x00b" }, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := valid
			tc.edit(&req)
			res, err := r.Rotate(t.Context(), req)
			var invalid *rotation.InvalidArgumentError
			if res != nil || !errors.Is(err, rotation.ErrInvalidArgument) || !errors.As(err, &invalid) || invalid.Field != tc.field {
				t.Fatalf("Rotate() = %v, %v; want an invalid %s", res, err, tc.field)
			}
		})
	}
	// Nothing reached Wacht or the audit log.
	for _, route := range []string{wachtfake.RouteListAPIKeys, wachtfake.RouteCreateAPIKey, wachtfake.RouteRotateAPIKey} {
		if n := e.fake.Calls(route); n != 0 {
			t.Errorf("%s called %d times", route, n)
		}
	}
	if recs, _, err := r.List(t.Context(), rotation.ListQuery{}); err != nil || len(recs) != 0 {
		t.Errorf("List() = %d records, %v; want none", len(recs), err)
	}
}

func TestRotateValidEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.rotator(t, rotation.NewMemoryStore())
	k := e.addKey(t, appOrders, "k")
	req := rotation.Request{
		Caller: "ops", AppSlug: appOrders, KeyID: k.ID, Grace: rotation.DefaultMaxGrace,
		Reason: strings.Repeat("é", 499) + "\n",
	}
	if _, err := r.Rotate(t.Context(), req); err != nil {
		t.Fatalf("Rotate() with a 500-character reason and the longest grace: %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		cfg  rotation.Config
	}{
		{"no store", rotation.Config{Wacht: e.client}},
		{"no wacht", rotation.Config{Store: rotation.NewMemoryStore()}},
		{"negative max grace", rotation.Config{Store: rotation.NewMemoryStore(), Wacht: e.client, MaxGrace: -time.Hour}},
		{"negative poll interval", rotation.Config{Store: rotation.NewMemoryStore(), Wacht: e.client, PollInterval: -time.Second}},
	} {
		if r, err := rotation.New(tc.cfg); r != nil || err == nil {
			t.Errorf("%s: New() = %v, %v; want an error", tc.name, r, err)
		}
	}
	if _, err := rotation.New(rotation.Config{Store: rotation.NewMemoryStore(), Wacht: e.client}); err != nil {
		t.Errorf("New() with defaults: %v", err)
	}
}
