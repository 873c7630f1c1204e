package wachtclient

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

var formatVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"}

// assertNoSecret fails if out contains secret, raw or hex-encoded.
func assertNoSecret(t *testing.T, what, out, secret string) {
	t.Helper()
	for _, form := range []string{secret, hex.EncodeToString([]byte(secret)), strings.ToUpper(hex.EncodeToString([]byte(secret)))} {
		if strings.Contains(out, form) {
			t.Errorf("%s leaks the secret: %s", what, out)
			return
		}
	}
}

// formatAll renders v with every verb, plain and nested in a struct.
func formatAll(v any) map[string]string {
	out := map[string]string{}
	nested := struct{ Inner any }{v}
	for _, verb := range formatVerbs {
		out[verb] = fmt.Sprintf(verb, v)
		out["nested "+verb] = fmt.Sprintf(verb, nested)
	}
	return out
}

func TestConfigAndClientNeverPrintTheKey(t *testing.T) {
	t.Parallel()
	cfg := testConfig("https://api.example.test")
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	values := map[string]any{"Config": cfg, "*Config": &cfg, "*Client": c, "Client": *c}
	for name, v := range values {
		for verb, out := range formatAll(v) {
			assertNoSecret(t, name+" "+verb, out, testAPIKey)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", cfg), "APIKey:"+redactedText) {
		t.Errorf("Config %%+v does not show the key as redacted: %+v", cfg)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "cfg", cfg, "client", c, "ptr", &cfg)
	logger.Info("text", slog.Any("cfg", cfg))
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", cfg, "client", c)
	assertNoSecret(t, "slog output", buf.String(), testAPIKey)
	encoded, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("marshal config: %v", err)
	}
	assertNoSecret(t, "Config JSON", string(encoded), testAPIKey)
}

func TestAPIKeyWithSecretNeverPrintsTheSecret(t *testing.T) {
	t.Parallel()
	k := APIKeyWithSecret{APIKey: APIKey{ID: "9", Name: "ci", KeySuffix: "AZsAL_MQ"}, Secret: fxSecret}
	for verb, out := range formatAll(k) {
		assertNoSecret(t, "APIKeyWithSecret "+verb, out, fxSecret)
	}
	for verb, out := range formatAll(&k) {
		assertNoSecret(t, "*APIKeyWithSecret "+verb, out, fxSecret)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("rotated", "key", k, "ptr", &k)
	assertNoSecret(t, "slog output", buf.String(), fxSecret)
	encoded, err := json.Marshal(k)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	assertNoSecret(t, "JSON", string(encoded), fxSecret)
	if k.Secret != fxSecret {
		t.Errorf("Secret field = %q, want the secret itself", k.Secret)
	}
}

func TestPrincipalNeverPrintsTheValue(t *testing.T) {
	t.Parallel()
	req := testAuthzRequest()
	for verb, out := range formatAll(req) {
		assertNoSecret(t, "AuthzCheckRequest "+verb, out, fxSecret)
	}
	for verb, out := range formatAll(req.Principal) {
		assertNoSecret(t, "Principal "+verb, out, fxSecret)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("check", "req", req, "principal", req.Principal)
	assertNoSecret(t, "slog output", buf.String(), fxSecret)
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	t.Parallel()
	// A hostile or buggy server echoes everything it got into its errors.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		msg := r.Header.Get("Authorization") + " " + body.String()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(msg))
	})
	var logs bytes.Buffer
	c, _ := newTestClient(t, echo, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := t.Context()
	var errs []error
	_, err := c.GetUser(ctx, "1")
	errs = append(errs, err)
	_, err = c.CheckAuthz(ctx, testAuthzRequest())
	errs = append(errs, err)
	_, err = c.CreateAPIKey(ctx, "app", CreateAPIKeyRequest{Name: "n"})
	errs = append(errs, err)

	// Retries log at debug level; they must not leak either.
	flaky, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("down, you sent " + r.Header.Get("Authorization")))
	}), func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, err = flaky.GetUser(ctx, "1")
	errs = append(errs, err)

	// Unreachable servers: the error names the URL, never the key.
	unreachable, err := New(testConfig(closedServerURL(t)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = unreachable.GetUser(ctx, "1")
	errs = append(errs, err)
	_, err = unreachable.RotateAPIKey(ctx, "app", "9")
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d succeeded, want error", i)
		}
		for verb, out := range formatAll(err) {
			assertNoSecret(t, fmt.Sprintf("error %d %s", i, verb), out, testAPIKey)
			assertNoSecret(t, fmt.Sprintf("error %d %s", i, verb), out, fxSecret)
		}
	}
	if !strings.Contains(logs.String(), "retrying wacht request") {
		t.Errorf("no retry was logged; the log check proves nothing: %s", logs.String())
	}
	assertNoSecret(t, "logs", logs.String(), testAPIKey)
}

func TestNewErrorsNeverContainTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"key_with_newline", Config{APIURL: "https://api.wacht.dev", APIKey: testAPIKey + "\r\nX: y"}},
		{"missing_api_url", Config{APIKey: testAPIKey}},
		{"relative_url", Config{APIURL: "/users", APIKey: testAPIKey}},
		{"ftp_url", Config{APIURL: "ftp://api.wacht.dev", APIKey: testAPIKey}},
		{"user_info", Config{APIURL: "https://u:" + testAPIKey + "@api.wacht.dev", APIKey: testAPIKey}},
		{"query", Config{APIURL: "https://api.wacht.dev?key=x", APIKey: testAPIKey}},
		{"bad_gateway_url", Config{APIURL: "https://api.wacht.dev", GatewayURL: "gateway", APIKey: testAPIKey}},
		{"bad_frontend_url", Config{APIURL: "https://api.wacht.dev", FrontendURL: "https://", APIKey: testAPIKey}},
		{"unparsable", Config{APIURL: "https://api.wacht.dev/%zz", APIKey: testAPIKey}},
		{"unparsable_with_key", Config{APIURL: "https://api.wacht.dev/" + testAPIKey + "/%zz", APIKey: testAPIKey}},
		{"control_char_with_key", Config{APIURL: "https://api.wacht.dev/" + testAPIKey + "\n", APIKey: testAPIKey}},
		{"negative_body_limit", Config{APIURL: "https://api.wacht.dev", MaxResponseBytes: -1, APIKey: testAPIKey}},
		{"negative_delay", Config{APIURL: "https://api.wacht.dev", RetryBaseDelay: -1, APIKey: testAPIKey}},
		{"bad_user_agent", Config{APIURL: "https://api.wacht.dev", UserAgent: "a\nb", APIKey: testAPIKey}},
	} {
		_, err := New(tc.cfg)
		if err == nil {
			t.Errorf("%s: New succeeded, want error", tc.name)
			continue
		}
		assertNoSecret(t, tc.name, fmt.Sprintf("%+v", err), testAPIKey)
	}
}

func TestStringMethodsRedact(t *testing.T) {
	t.Parallel()
	cfg := testConfig("https://api.example.test")
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	k := APIKeyWithSecret{APIKey: APIKey{ID: "9"}, Secret: fxSecret}
	p := Principal{Type: PrincipalAPIKey, Value: fxSecret}
	for name, out := range map[string]string{
		"Config.String": cfg.String(), "Config.GoString": cfg.GoString(),
		"APIKeyWithSecret.String": k.String(), "APIKeyWithSecret.GoString": k.GoString(),
		"Principal.String": p.String(), "Principal.GoString": p.GoString(),
	} {
		assertNoSecret(t, name, out, testAPIKey)
		assertNoSecret(t, name, out, fxSecret)
		if !strings.Contains(out, redactedText) {
			t.Errorf("%s = %s, want the secret shown as %s", name, out, redactedText)
		}
	}
	for name, out := range map[string]string{"Client.String": c.String(), "Client.GoString": c.GoString()} {
		assertNoSecret(t, name, out, testAPIKey)
		if !strings.Contains(out, "api key set: true") {
			t.Errorf("%s = %s, want it to say a key is set", name, out)
		}
	}
}
