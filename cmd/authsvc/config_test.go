package main

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/service"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("sk_from_file_0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pk := "pk_live_" + base64.StdEncoding.EncodeToString([]byte("https://frontend.example.com"))

	c, err := loadConfig(modeServe, mapEnv(map[string]string{
		"WACHT_API_KEY_FILE":    keyFile,
		"WACHT_PUBLISHABLE_KEY": pk,
		"DATABASE_URL":          "postgres://u:p@db/authsvc",
		"AUTHSVC_INSECURE_OPEN": "true",
		"AUTHSVC_USER_TTL":      "2m",
	}))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	got := map[string]any{
		"key": string(c.WachtAPIKey), "frontend": c.WachtFrontendURL, "api": c.WachtAPIURL,
		"gateway": c.WachtGatewayURL, "addr": c.Addr, "userTTL": c.UserTTL, "sessionsTTL": c.SessionsTTL,
		"userMaxAge": c.UserMaxAge, "sessionsMaxAge": c.SessionsMaxAge, "maxStale": c.MaxStale, "migrate": c.Migrate,
		"budget": c.WachtRequestsPerMin, "budgetWait": c.BudgetWait,
	}
	// Without a webhook secret, the defaults of a cache that only
	// reloading keeps current.
	want := map[string]any{
		"key": "sk_from_file_0123456789", "frontend": "https://frontend.example.com", "api": "https://api.wacht.dev",
		"gateway": "https://gateway.wacht.dev", "addr": "127.0.0.1:8080", "userTTL": 2 * time.Minute,
		"sessionsTTL": 30 * time.Second, "userMaxAge": 10 * time.Minute, "sessionsMaxAge": 2 * time.Minute,
		"maxStale": 24 * time.Hour, "migrate": true, "budget": 1000, "budgetWait": 100 * time.Millisecond,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "sk_from_file") || strings.Contains(s, "u:p@") {
			t.Errorf("formatted config leaks a secret: %s", s)
		}
	}
}

func TestLoadConfigProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode mode
		env  map[string]string
		want []string // substrings of the error
	}{
		{"serve_needs_key_issuer_db_callers", modeServe, nil,
			[]string{"WACHT_API_KEY", "WACHT_PUBLISHABLE_KEY", "DATABASE_URL", "AUTHSVC_CALLERS_FILE"}},
		{"both_value_and_file", modeDev, map[string]string{"WACHT_API_KEY": "a", "WACHT_API_KEY_FILE": "/x"},
			[]string{"WACHT_API_KEY or WACHT_API_KEY_FILE, not both"}},
		{"unreadable_file", modeDev, map[string]string{"WACHT_API_KEY_FILE": "/nonexistent/key"},
			[]string{"WACHT_API_KEY_FILE: cannot read"}},
		{"bad_duration", modeDev, map[string]string{"AUTHSVC_MAX_STALE": "-1s"}, []string{"AUTHSVC_MAX_STALE"}},
		{"max_age_below_ttl", modeDev, map[string]string{"AUTHSVC_SESSIONS_TTL": "5m", "AUTHSVC_SESSIONS_MAX_AGE": "1m"}, []string{"AUTHSVC_SESSIONS_MAX_AGE", "AUTHSVC_SESSIONS_TTL"}},
		{"bad_url", modeDev, map[string]string{"WACHT_API_URL": "api.wacht.dev"}, []string{"WACHT_API_URL"}},
		{"url_with_credentials", modeDev, map[string]string{"WACHT_GATEWAY_URL": "https://u:p@gw"}, []string{"WACHT_GATEWAY_URL"}},
		{"webhook_secret_format", modeDev, map[string]string{"WACHT_WEBHOOK_SECRET": "hunter2"}, []string{"whsec_"}},
		{"tls_half", modeDev, map[string]string{"AUTHSVC_TLS_CERT": "/c"}, []string{"AUTHSVC_TLS_KEY"}},
		{"budget", modeDev, map[string]string{"AUTHSVC_WACHT_REQUESTS_PER_MINUTE": "0"}, []string{"AUTHSVC_WACHT_REQUESTS_PER_MINUTE"}},
		{"budget_wait_zero", modeDev, map[string]string{"AUTHSVC_BUDGET_WAIT": "0s"}, []string{"AUTHSVC_BUDGET_WAIT"}},
		{"budget_wait_long", modeDev, map[string]string{"AUTHSVC_BUDGET_WAIT": "30s"}, []string{"AUTHSVC_BUDGET_WAIT"}},
		{"dev_on_a_database", modeDev, map[string]string{"DATABASE_URL": "postgres://db/authsvc"}, []string{"DATABASE_URL", "AUTHSVC_DEV_DATABASE=true"}},
		{"dev_on_a_shared_database", modeDev, map[string]string{"DATABASE_URL": "postgres://db/authsvc", "AUTHSVC_DEV_DATABASE": "false"}, []string{"AUTHSVC_DEV_DATABASE"}},
		{"apikey_reuse_too_long", modeDev, map[string]string{"AUTHSVC_APIKEY_CACHE_TTL": "1m"}, []string{"AUTHSVC_APIKEY_CACHE_TTL"}},
		{"log_level", modeDev, map[string]string{"AUTHSVC_LOG_LEVEL": "loud"}, []string{"AUTHSVC_LOG_LEVEL"}},
		{"credential_kind", modeDev, map[string]string{"AUTHSVC_EXTAUTHZ_CREDENTIALS": "bearer,passkey"}, []string{"AUTHSVC_EXTAUTHZ_CREDENTIALS", "passkey"}},
		{"no_credential_kind", modeDev, map[string]string{"AUTHSVC_EXTAUTHZ_CREDENTIALS": ","}, []string{"AUTHSVC_EXTAUTHZ_CREDENTIALS"}},
		{"cookie_name", modeDev, map[string]string{"AUTHSVC_EXTAUTHZ_TOKEN_COOKIES": "__auth_a, bad name"}, []string{"AUTHSVC_EXTAUTHZ_TOKEN_COOKIES", "bad name"}},
		{"api_key_header", modeDev, map[string]string{"AUTHSVC_EXTAUTHZ_API_KEY_HEADER": "Cookie"}, []string{"AUTHSVC_EXTAUTHZ_API_KEY_HEADER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(tt.mode, mapEnv(tt.env))
			if err == nil {
				t.Fatal("loadConfig succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "u:p@") {
				t.Errorf("error leaks the webhook secret: %v", err)
			}
		})
	}
}

func TestLoadConfigCredentials(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(modeDev, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExtAuthzCredentials != service.AllCredentials || c.ExtAuthzTokenCookies != nil || c.ExtAuthzAPIKeyHeader != "" {
		t.Errorf("defaults: %v %q %q", c.ExtAuthzCredentials, c.ExtAuthzTokenCookies, c.ExtAuthzAPIKeyHeader)
	}
	c, err = loadConfig(modeDev, mapEnv(map[string]string{
		"AUTHSVC_EXTAUTHZ_CREDENTIALS":    " bearer , api_key",
		"AUTHSVC_EXTAUTHZ_TOKEN_COOKIES":  "__auth_app_example_com,,__auth_b",
		"AUTHSVC_EXTAUTHZ_API_KEY_HEADER": "X-API-Key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.ExtAuthzCredentials, c.ExtAuthzTokenCookies, c.ExtAuthzAPIKeyHeader}
	want := []any{service.CredentialsBearer | service.CredentialsAPIKey, []string{"__auth_app_example_com", "__auth_b"}, "x-api-key"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestDevNeedsNothing(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(modeDev, mapEnv(nil))
	if err != nil {
		t.Fatalf("dev with an empty environment: %v", err)
	}
	if !c.NoRotationWorker {
		t.Error("dev would run the rotation worker against its emulator")
	}
}

func TestDevDatabase(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(modeDev, mapEnv(map[string]string{"DATABASE_URL": "postgres://db/authsvc_dev", "AUTHSVC_DEV_DATABASE": "true"}))
	if err != nil {
		t.Fatalf("dev on a database of its own: %v", err)
	}
	if !c.NoRotationWorker {
		t.Error("dev on a database would run the rotation worker against its emulator")
	}
}

// TestFreshnessDefaults: a cache that webhooks keep current holds entries
// longer; without a webhook secret it reloads them sooner; a TTL set
// above the default maximum age raises that maximum with it.
func TestFreshnessDefaults(t *testing.T) {
	t.Parallel()
	base := map[string]string{"WACHT_API_KEY": "sk_x", "WACHT_FRONTEND_API_URL": "https://fapi.example.com", "DATABASE_URL": "postgres://db/a", "AUTHSVC_INSECURE_OPEN": "true"}
	tests := []struct {
		name string
		mode mode
		env  map[string]string
		want freshness
	}{
		{"serve_without_webhooks", modeServe, nil, freshness{time.Minute, 10 * time.Minute, 30 * time.Second, 2 * time.Minute}},
		{"serve_with_webhooks", modeServe, map[string]string{"WACHT_WEBHOOK_SECRET": "whsec_AAAA"}, freshness{5 * time.Minute, time.Hour, 2 * time.Minute, 15 * time.Minute}},
		{"dev_feeds_its_own_webhooks", modeDev, nil, freshness{5 * time.Minute, time.Hour, 2 * time.Minute, 15 * time.Minute}},
		{"ttl_above_default_max_age", modeServe, map[string]string{"AUTHSVC_USER_TTL": "20m", "AUTHSVC_SESSIONS_MAX_AGE": "3m"}, freshness{20 * time.Minute, 20 * time.Minute, 30 * time.Second, 3 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if tt.mode == modeServe {
				maps.Copy(env, base)
			}
			maps.Copy(env, tt.env)
			c, err := loadConfig(tt.mode, mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			got := freshness{c.UserTTL, c.UserMaxAge, c.SessionsTTL, c.SessionsMaxAge}
			if got != tt.want {
				t.Errorf("freshness = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAPIKeyCacheTTL(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]time.Duration{"": 5 * time.Second, "0": 0, "0s": 0, "2s": 2 * time.Second} {
		c, err := loadConfig(modeDev, mapEnv(map[string]string{"AUTHSVC_APIKEY_CACHE_TTL": env}))
		if err != nil {
			t.Fatalf("AUTHSVC_APIKEY_CACHE_TTL=%q: %v", env, err)
		}
		if c.APIKeyCacheTTL != want {
			t.Errorf("AUTHSVC_APIKEY_CACHE_TTL=%q: %v, want %v", env, c.APIKeyCacheTTL, want)
		}
	}
}

func TestFrontendURLFromPublishableKey(t *testing.T) {
	t.Parallel()
	enc := func(e *base64.Encoding, s string) string { return e.EncodeToString([]byte(s)) }
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"pk_test_" + enc(base64.StdEncoding, "https://abc.fapi.trywacht.xyz"), "https://abc.fapi.trywacht.xyz", false},
		{"pk_live_" + enc(base64.StdEncoding, "https://frontend.example.com/"), "https://frontend.example.com", false},
		{"pk_live_" + enc(base64.RawURLEncoding, "https://frontend.example.com"), "https://frontend.example.com", false},
		{"pk_live_" + enc(base64.StdEncoding, "frontend.example.com"), "https://frontend.example.com", false},
		{"pk_live_" + enc(base64.StdEncoding, "ftp://frontend.example.com"), "", true},
		{"sk_live_abc", "", true},
		{"pk_live_%%%", "", true},
		{"pk_test_", "", true},
	}
	for _, tt := range tests {
		got, err := frontendURLFromPublishableKey(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("frontendURLFromPublishableKey(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
