package rotation_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/rotation"
)

func TestList(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, newStore func(*testing.T) rotation.Store) {
		e := newEnv(t)
		r := e.rotator(t, newStore(t))
		// Seven rotations, a minute apart, alternating between apps; the
		// fourth fails.
		var all, orders []string // audit ids, newest first
		for i := range 7 {
			app := []string{appOrders, appBilling}[i%2]
			k := e.addKey(t, app, "k")
			keyID := k.ID
			if i == 3 {
				keyID = "42"
			}
			res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: app, KeyID: keyID, Grace: time.Duration(i) * time.Hour})
			id := ""
			if i == 3 {
				recs, _, lerr := r.List(t.Context(), rotation.ListQuery{Limit: 1})
				if err == nil || lerr != nil {
					t.Fatalf("failing rotation: %v, list: %v", err, lerr)
				}
				id = recs[0].ID
			} else if err != nil {
				t.Fatalf("Rotate() error: %v", err)
			} else {
				id = res.AuditID
			}
			all = append([]string{id}, all...)
			if app == appOrders {
				orders = append([]string{id}, orders...)
			}
			e.clock.Advance(time.Minute)
		}

		pages := func(q rotation.ListQuery) [][]string {
			t.Helper()
			var out [][]string
			for range 10 {
				recs, next, err := r.List(t.Context(), q)
				if err != nil {
					t.Fatalf("List(%+v) error: %v", q, err)
				}
				var ids []string
				for i, rec := range recs {
					ids = append(ids, rec.ID)
					if i > 0 && !rec.RequestedAt.Before(recs[i-1].RequestedAt) {
						t.Errorf("record %s is not older than the one before it", rec.ID)
					}
					if q.AppSlug != "" && rec.AppSlug != q.AppSlug {
						t.Errorf("record %s of app %s in a listing of %s", rec.ID, rec.AppSlug, q.AppSlug)
					}
				}
				out = append(out, ids)
				if next == "" {
					return out
				}
				q.After = next
			}
			t.Fatal("List never ended")
			return nil
		}
		for _, tc := range []struct {
			name string
			q    rotation.ListQuery
			want [][]string
		}{
			{"all at once", rotation.ListQuery{}, [][]string{all}},
			{"pages of 3", rotation.ListQuery{Limit: 3}, [][]string{all[:3], all[3:6], all[6:]}},
			{"pages of 7", rotation.ListQuery{Limit: 7}, [][]string{all}},
			{"one app in pages of 2", rotation.ListQuery{AppSlug: appOrders, Limit: 2}, [][]string{orders[:2], orders[2:]}},
			{"unknown app", rotation.ListQuery{AppSlug: "nothing-here"}, [][]string{nil}},
			{"limit above max", rotation.ListQuery{Limit: rotation.MaxListLimit + 1}, [][]string{all}},
		} {
			if diff := cmp.Diff(tc.want, pages(tc.q)); diff != "" {
				t.Errorf("%s: pages of ids (-want +got):\n%s", tc.name, diff)
			}
		}

		for _, q := range []rotation.ListQuery{
			{After: "abc"}, {After: "0"}, {After: "-3"}, {After: "+3"}, {After: "1.5"},
			{After: "99999999999999999999"}, {Limit: -1}, {AppSlug: "Orders"},
		} {
			if recs, next, err := r.List(t.Context(), q); !errors.Is(err, rotation.ErrInvalidArgument) || recs != nil || next != "" {
				t.Errorf("List(%+v) = %d records, %q, %v; want invalid argument", q, len(recs), next, err)
			}
		}
	})
}
