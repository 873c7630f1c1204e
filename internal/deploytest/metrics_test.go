package deploytest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/durationpb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/app/apptest"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// metricName matches the names of the metrics authsvc and its Go and
// process collectors export, as they appear in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:authsvc|go|process)_[a-z0-9_]+\b`)

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// panel is one panel of a dashboard, rows included.
type panel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Targets     []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("decode %s: %v", dashboardFile, err)
	}
	return d
}

// queries returns every PromQL expression of the dashboard, its
// variables' included, by where it is used.
func (d dashboard) queries() map[string]string {
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				out[fmt.Sprintf("panel %q query %d", p.Title, i+1)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := strings.CutPrefix(v.Definition, "label_values("); ok {
			// label_values(expr, label) is Grafana's, not PromQL: its
			// selector is what Prometheus is asked.
			out["variable "+v.Name] = strings.TrimSpace(q[:strings.LastIndex(q, ",")])
		}
	}
	return out
}

// grafanaVars stands in for the variables of the dashboard's queries, so
// that Prometheus can parse them.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")

// targetLabels are the labels that scraping adds to every series, which
// authsvc does not export itself.
var targetLabels = map[string]bool{"job": true, "instance": true, "namespace": true, "pod": true}

var (
	// selector matches a metric name and its label matchers.
	selector = regexp.MustCompile(`\b((?:authsvc|go|process)_[a-z0-9_]+)\{([^}]*)\}`)
	// matcherLabel matches the label name of one matcher.
	matcherLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	// groupBy matches an aggregation's "by (labels) (" up to its body.
	groupBy = regexp.MustCompile(`\bby\s*\(([^)]*)\)\s*\(`)
)

// labelUses returns, for each metric of expr, the labels expr selects or
// groups it by, but the scrape's own. A by clause applies to every
// metric in the body of its aggregation.
func labelUses(expr string) map[string][]string {
	uses := map[string][]string{}
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcherLabel.FindAllStringSubmatch(m[2], -1) {
			uses[m[1]] = append(uses[m[1]], l[1])
		}
	}
	for _, loc := range groupBy.FindAllStringSubmatchIndex(expr, -1) {
		labels := strings.Split(expr[loc[2]:loc[3]], ",")
		body, depth := expr[loc[1]:], 1
		for i, r := range body {
			if r == '(' {
				depth++
			} else if r == ')' {
				if depth--; depth == 0 {
					body = body[:i]
					break
				}
			}
		}
		for _, name := range metricName.FindAllString(body, -1) {
			for _, l := range labels {
				uses[name] = append(uses[name], strings.TrimSpace(l))
			}
		}
	}
	for name, ls := range uses {
		ls = slices.DeleteFunc(ls, func(l string) bool { return targetLabels[l] || l == "" })
		slices.Sort(ls)
		uses[name] = slices.Compact(ls)
	}
	return uses
}

// reference is one use of a metric by the dashboard or an alert.
type reference struct {
	where  string
	labels []string
}

// referencedMetrics returns the metrics that the dashboard's queries and
// the alert rules use, with where and by which labels.
func referencedMetrics(t *testing.T) map[string][]reference {
	t.Helper()
	refs := map[string][]reference{}
	add := func(where, expr string) {
		uses := labelUses(expr)
		names := metricName.FindAllString(expr, -1)
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			refs[name] = append(refs[name], reference{where: where, labels: uses[name]})
		}
	}
	for where, q := range readDashboard(t).queries() {
		add(dashboardFile+": "+where, q)
	}
	_, rf := readAlerts(t)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			add(alertsFile+": "+r.Alert+r.Record, r.Expr)
		}
	}
	return refs
}

func TestLabelUses(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]map[string][]string{
		`sum by (namespace, job, kind) (rate(authsvc_cache_reads_total{outcome="stale", job=~"$job"}[5m]))`: {
			"authsvc_cache_reads_total": {"kind", "outcome"},
		},
		`histogram_quantile(0.99, sum by (le, route) (rate(authsvc_wacht_request_duration_seconds_bucket[5m]))) > max(authsvc_ready)`: {
			"authsvc_wacht_request_duration_seconds_bucket": {"le", "route"},
		},
		`max by (instance) (go_goroutines)`: {"go_goroutines": nil},
	} {
		got := labelUses(expr)
		for name, ls := range got {
			if len(ls) == 0 {
				delete(got, name)
			}
		}
		for name, ls := range want {
			if len(ls) == 0 {
				delete(want, name)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("labelUses(%s) (-want +got):\n%s", expr, diff)
		}
	}
}

// TestDashboardAnswersQuestions checks that every panel says which
// on-call question it answers and has a query.
func TestDashboardAnswersQuestions(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("the dashboard has uid %q and title %q", d.UID, d.Title)
	}
	panels := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			panels++
			if !strings.HasSuffix(strings.TrimSpace(p.Description), "?") && !strings.Contains(p.Description, "? (") {
				t.Errorf("panel %q: its description should be the question it answers, got %q", p.Title, p.Description)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
		}
	}
	walk(d.Panels)
	if panels == 0 {
		t.Fatal("the dashboard has no panels")
	}
}

// TestDashboardQueriesParse has promtool parse every query of the
// dashboard, as the expressions of recording rules.
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	queries := readDashboard(t).queries()
	var rf ruleFileFormat
	g := ruleGroup{Name: "dashboard"}
	for i, where := range slices.Sorted(maps.Keys(queries)) {
		g.Rules = append(g.Rules, rule{Record: "dashboard:query" + strconv.Itoa(i), Expr: grafanaVars.Replace(queries[where])})
	}
	rf.Groups = append(rf.Groups, g)
	raw, err := json.Marshal(rf) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard.rules.yaml")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), bin, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules of the dashboard's queries: %v\n%s", err, out)
	}
}

// TestMetricsOfDashboardAndAlertsAreExported runs authsvc in process,
// takes it down each path that the dashboard and the alerts watch, and
// checks that /metrics then exports every metric they name.
func TestMetricsOfDashboardAndAlertsAreExported(t *testing.T) {
	t.Parallel()
	refs := referencedMetrics(t)
	if len(refs) == 0 {
		t.Fatal("the dashboard and the alerts name no metric")
	}
	exported := exerciseEveryPath(t)
	for name, labels := range exerciseBudgetRefusal(t) {
		if exported[name] == nil {
			exported[name] = map[string]bool{}
		}
		maps.Copy(exported[name], labels)
	}
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		labels, ok := exported[name]
		if !ok {
			var where []string
			for _, r := range refs[name] {
				where = append(where, r.where)
			}
			t.Errorf("%s is not exported by a running authsvc; used by:\n  %s", name, strings.Join(where, "\n  "))
			continue
		}
		for _, r := range refs[name] {
			for _, l := range r.labels {
				if !labels[l] {
					t.Errorf("%s: %s has no label %q (its labels: %v)", r.where, name, l, slices.Sorted(maps.Keys(labels)))
				}
			}
		}
	}
}

// exerciseEveryPath runs authsvc on Postgres with its background work and
// takes it down every path but a budget refusal: RPCs that succeed and
// fail, cache hits and misses, a value served stale, one refreshed in the
// background, a cache Postgres error, a webhook written through, key set
// refreshes that succeed and fail, and a key rotation that the worker
// completes. It returns the scraped families.
func exerciseEveryPath(t *testing.T) map[string]map[string]bool {
	t.Helper()
	const ttl = 500 * time.Millisecond
	h := apptest.New(t, apptest.Options{
		Postgres:   true,
		SeedDemo:   true,
		Background: true,
		Version:    "deploytest",
		Config: func(c *app.Config) {
			c.UserTTL, c.SessionsTTL = ttl, ttl
			// Users past their TTL load (and are served stale when that
			// fails); session lists are served and refreshed behind.
			c.UserMaxAge, c.SessionsMaxAge = ttl, time.Hour
			c.RotationPollInterval = 50 * time.Millisecond
			c.WachtRetryBaseDelay, c.WachtRetryMaxDelay = time.Millisecond, 5*time.Millisecond
		},
	})
	ctx := t.Context()
	auth, admin := h.AuthClient(), h.AdminClient()
	ada, grace := h.Demo.Users[0].ID, h.Demo.Users[1].ID
	token, err := h.Fake.MintToken(h.Demo.TokenClaims)
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	mustFail := func(what string, err error, want connect.Code) {
		t.Helper()
		if connect.CodeOf(err) != want {
			t.Fatalf("%s = %v, want %v", what, err, want)
		}
	}

	// RPCs: a token verified twice (a miss, then a hit of the verified-
	// token cache) with its user and sessions (cache misses, then hits),
	// a refused token, an unknown user, a session list.
	for range 2 {
		_, err := auth.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{
			Token: token, IncludeUser: true, CheckRevocation: true,
		}))
		must("VerifySession", err)
	}
	_, err = auth.VerifySession(ctx, connect.NewRequest(&authsvcv1.VerifySessionRequest{Token: token + "x"}))
	mustFail("VerifySession(tampered)", err, connect.CodeUnauthenticated)
	_, err = auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: "24380000000999999"}))
	mustFail("GetUser(unknown)", err, connect.CodeNotFound)
	_, err = auth.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: ada}))
	must("ListSessions", err)

	// A webhook from Wacht, written through into the cache.
	data, err := h.Fake.UserEventData(ada)
	must("UserEventData", err)
	status, err := h.Fake.SendWebhook(ctx, h.URL+"/webhooks/wacht", h.WebhookSecret, "user.updated", data)
	if err != nil || status != http.StatusOK {
		t.Fatalf("SendWebhook = %d, %v", status, err)
	}

	// A value past its TTL, served stale while Wacht is down.
	_, err = auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: grace}))
	must("GetUser", err)
	time.Sleep(ttl + 100*time.Millisecond)
	h.Fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Route: wachtfake.RouteUserDetails})
	res, err := auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: grace}))
	must("GetUser(Wacht down)", err)
	if res.Header().Get("Authsvc-Stale") == "" {
		t.Fatal("GetUser with Wacht down was not served stale")
	}
	h.Fake.ClearFaults()

	// A session list past its TTL, served and refreshed in the background.
	_, err = auth.ListSessions(ctx, connect.NewRequest(&authsvcv1.ListSessionsRequest{UserId: ada}))
	must("ListSessions(past its TTL)", err)

	// The cache's Postgres level failing: a read that cannot get at the
	// table within the cache's Postgres timeout.
	tx, err := h.Pool.Begin(ctx)
	must("begin", err)
	_, err = tx.Exec(ctx, "lock table cache_entries in access exclusive mode")
	must("lock cache_entries", err)
	_, err = auth.GetUser(ctx, connect.NewRequest(&authsvcv1.GetUserRequest{UserId: h.Demo.Users[2].ID}))
	must("GetUser(Postgres locked)", err)
	must("rollback", tx.Rollback(ctx))

	// The key set: loaded by Run, then a refresh that fails.
	h.Fake.SetFault(wachtfake.Fault{Mode: wachtfake.Fault5xx, Route: wachtfake.RouteJWKS})
	if err := h.App.Verifier().Refresh(ctx); err == nil {
		t.Fatal("a key set refresh with Wacht failing succeeded")
	}
	h.Fake.ClearFaults()

	// A rotation with a grace period, completed by the rotation worker.
	old := h.Demo.Keys[0].Key
	_, err = admin.RotateAPIKey(ctx, connect.NewRequest(&authsvcv1.RotateAPIKeyRequest{
		AppSlug: h.Demo.AppSlug, KeyId: old.ID, GracePeriod: durationpb.New(time.Second), Reason: "deploytest",
	}))
	must("RotateAPIKey", err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		families := scrape(t, h)
		_, revoked := families["authsvc_rotation_revocations_total"]
		_, refreshed := families["authsvc_cache_refreshes_total"]
		if revoked && refreshed {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 30s: the rotation worker revoked the old key: %t; a session list was refreshed in the background: %t", revoked, refreshed)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exerciseBudgetRefusal runs authsvc with a Wacht request budget of a few
// requests a minute, so that a BatchGetUsers of more users than that
// cannot be loaded. It returns the scraped families.
func exerciseBudgetRefusal(t *testing.T) map[string]map[string]bool {
	t.Helper()
	const budget = 6
	h := apptest.New(t, apptest.Options{
		Config: func(c *app.Config) { c.WachtRequestsPerMin = budget },
	})
	ids := make([]string, 0, 4*budget)
	for i := range cap(ids) {
		ids = append(ids, strconv.Itoa(1_000_000+i))
	}
	_, err := h.AuthClient().BatchGetUsers(t.Context(), connect.NewRequest(&authsvcv1.BatchGetUsersRequest{UserIds: ids}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("BatchGetUsers of %d users with a budget of %d a minute = %v, want ResourceExhausted", len(ids), budget, err)
	}
	return scrape(t, h)
}

// scrape returns the metric families that h's /metrics serves, each with
// the names of the labels of its series; histograms also as their
// _bucket (with le), _sum and _count series.
func scrape(t *testing.T, h *apptest.Harness) map[string]map[string]bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := h.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names[name] = labels
		if f.GetType() == dto.MetricType_HISTOGRAM {
			names[name+"_sum"], names[name+"_count"] = labels, labels
			bucket := maps.Clone(labels)
			bucket["le"] = true
			names[name+"_bucket"] = bucket
		}
	}
	return names
}
