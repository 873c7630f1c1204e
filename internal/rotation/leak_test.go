package rotation_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authsvc/authsvc/internal/pgtest"
	"github.com/authsvc/authsvc/internal/rotation"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pool := pgtest.NewPool(t)
	r := e.rotator(t, rotation.NewPostgresStore(pool))
	var (
		secrets []string
		texts   []string // errors and formatted results
	)
	rotate := func(keyID string, grace time.Duration) {
		t.Helper()
		res, err := r.Rotate(t.Context(), rotation.Request{Caller: "ops", AppSlug: appOrders, KeyID: keyID, Grace: grace, Reason: "routine"})
		if err != nil {
			texts = append(texts, err.Error())
			return
		}
		if res.Secret == "" {
			t.Fatal("no secret")
		}
		secrets = append(secrets, res.Secret)
		j, _ := json.Marshal(res)
		texts = append(texts, fmt.Sprint(res), fmt.Sprintf("%v %+v %#v %s %q", res, res, res, res, res),
			fmt.Sprintf("%v %+v %#v", *res, *res, *res), res.String(), string(j))
		e.logger.Info("result", "result", res, "value", *res)
	}

	a := e.addKey(t, appOrders, "a")
	rotate(a.ID, 0)
	b := e.addKey(t, appOrders, "b")
	rotate(b.ID, time.Hour)
	c := e.addKey(t, appOrders, "c")
	rotate(c.ID, 2*time.Hour)
	// Unknown outcomes of a create and of a rotate.
	d := e.addKey(t, appOrders, "d")
	e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteCreateAPIKey, Mode: wachtfake.FaultDown, Times: 1})
	rotate(d.ID, time.Hour)
	f := e.addKey(t, appOrders, "f")
	e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRotateAPIKey, Mode: wachtfake.Fault5xx, Times: 1})
	rotate(f.ID, 0)
	// Revocations: one transient failure first, then success.
	e.clock.Advance(time.Hour)
	e.fake.SetFault(wachtfake.Fault{Route: wachtfake.RouteRevokeAPIKey, Mode: wachtfake.Fault5xx, Times: 1})
	if _, err := r.RevokeDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	revokeDue(t, r, 2)

	if len(secrets) < 3 {
		t.Fatalf("only %d rotations succeeded", len(secrets))
	}
	logs := e.logs.String()
	for _, want := range []string{"api key rotated", "old api key revoked", "revoke old api key: will retry", "api key rotation unknown", "[REDACTED]"} {
		if !strings.Contains(logs+strings.Join(texts, "\n"), want) {
			t.Errorf("logs and texts lack %q: the check would be vacuous", want)
		}
	}
	dump := dumpTables(t, pool)
	if !strings.Contains(dump, "pending_revocation") && !strings.Contains(dump, "rotated") {
		t.Fatalf("table dump looks empty: %q", dump)
	}
	for _, s := range secrets {
		// The suffix is Wacht's public key_suffix; the rest must never show.
		body := s[:len(s)-8]
		for where, text := range map[string]string{"logs": logs, "database": dump, "errors and formatted results": strings.Join(texts, "\n")} {
			if strings.Contains(text, s) || strings.Contains(text, body) {
				t.Errorf("a secret appears in the %s", where)
			}
		}
	}
}

// dumpTables renders every row of the rotation tables as text, every
// column included.
func dumpTables(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		select t::text from api_key_rotations t
		union all
		select t::text from scheduled_revocations t`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
