package sessiontoken_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authsvc/authsvc/internal/sessiontoken"
)

// wachtPayload is a payload as Wacht's default template makes it.
const wachtPayload = `{"iss":"https://x.wacht.dev","sub":"123","sid":"456","iat":1765000000,"exp":1765000035,` +
	`"organization":"31","workspace":"7","permissions":{"organization":["org:read","org:write"],"workspace":[]}}`

// claimsDecodeCases are payloads and whether the plain-payload decoder
// handles them.
var claimsDecodeCases = []struct {
	name    string
	payload string
	handled bool
}{
	{"wacht", wachtPayload, true},
	{"wacht no memberships", `{"iss":"https://x.wacht.dev","sub":"123","sid":"456","iat":1765000000,"exp":1765000035,"permissions":{}}`, true},
	{"wacht legacy session_id", `{"iss":"https://x.wacht.dev","sub":"123","sid":"456","session_id":"456","iat":1765000000,"exp":1765000035,"permissions":{}}`, true},
	{"wacht organization only", `{"exp":1765000035,"permissions":{"organization":["a:b"]},"organization":"31","sub":"123","iss":"https://x.wacht.dev","sid":"456","iat":1765000000}`, true},
	{"workspace list only", `{"sub":"1","permissions":{"workspace":["w"]}}`, true},
	{"both lists empty", `{"permissions":{"organization":[],"workspace":[]}}`, true},
	{"lists reordered", `{"permissions":{"workspace":["w1","w2"],"organization":["o1"]}}`, true},
	{"nbf", `{"sub":"1","nbf":1765000000,"exp":1765000035}`, true},
	{"empty object", `{}`, true},
	{"empty strings", `{"iss":"","sub":"","sid":"","session_id":"","organization":"","workspace":"","permissions":{"organization":[""]}}`, true},
	{"printable ascii", `{"sub":" !#$%&'()*+,-./0123456789:;<=>?@AZ[]^_` + "`" + `az{|}~"}`, true},
	{"whitespace", " \t\r\n{ \"sub\" :\n\"1\" ,\r\"exp\"\t:\t1 , \"permissions\" : { \"organization\" : [ \"a\" , \"b\" ] , \"workspace\" : [ ] } } \n\t\r", true},
	{"zero", `{"exp":0,"iat":0,"nbf":0}`, true},
	{"15 digits", `{"exp":999999999999999}`, true},

	{"16 digits", `{"exp":1000000000000000}`, false},
	{"huge", `{"exp":99999999999999999999999999999}`, false},
	{"beyond 2^62", `{"exp":4611686018427387904}`, false},
	{"float", `{"exp":1765000035.0}`, false},
	{"fraction", `{"exp":1765000035.5}`, false},
	{"exponent", `{"exp":1.765e9}`, false},
	{"exponent upper", `{"exp":1E9}`, false},
	{"exponent huge", `{"exp":1e400}`, false},
	{"negative", `{"exp":-1}`, false},
	{"negative zero", `{"exp":-0}`, false},
	{"leading zero", `{"exp":01765000035}`, false},
	{"plus", `{"exp":+1}`, false},
	{"exp string", `{"exp":"1765000035"}`, false},
	{"exp true", `{"exp":true}`, false},
	{"exp null", `{"exp":null}`, false},
	{"iss null", `{"iss":null}`, false},
	{"permissions null", `{"permissions":null}`, false},
	{"list null", `{"permissions":{"organization":null}}`, false},
	{"null element", `{"permissions":{"organization":[null]}}`, false},
	{"number element", `{"permissions":{"organization":[1]}}`, false},
	{"nested element", `{"permissions":{"organization":[["a"]]}}`, false},
	{"permissions array", `{"permissions":["a"]}`, false},
	{"permissions unknown list", `{"permissions":{"admin":["a"]}}`, false},
	{"permissions list case", `{"permissions":{"Organization":["a"]}}`, false},
	{"duplicate list", `{"permissions":{"organization":["a"],"organization":["b"]}}`, false},
	{"sub number", `{"sub":123}`, false},
	{"sub object", `{"sub":{"a":"b"}}`, false},
	{"sub array", `{"sub":["1"]}`, false},
	{"escape slash", `{"iss":"https:\/\/x.wacht.dev"}`, false},
	{"escape unicode", `{"sub":"\u0031"}`, false},
	{"escape quote", `{"sub":"a\"b"}`, false},
	{"escaped name", `{"i\u0073s":"x"}`, false},
	{"escaped name duplicate", `{"iss":"x","i\u0073s":"y"}`, false},
	{"escape in permission", `{"permissions":{"organization":["a\nb"]}}`, false},
	{"unicode", `{"sub":"é"}`, false},
	{"invalid utf-8", "{\"sub\":\"\xff\"}", false},
	{"control character", "{\"sub\":\"a\x01b\"}", false},
	{"tab in string", "{\"sub\":\"a\tb\"}", false},
	{"del", "{\"sub\":\"a\x7fb\"}", false},
	{"upper case name", `{"ISS":"https://x.wacht.dev"}`, false},
	{"mixed case name", `{"Sub":"1"}`, false},
	{"duplicate iss", `{"iss":"a","iss":"b"}`, false},
	{"duplicate exp", `{"exp":1,"exp":2}`, false},
	{"duplicate permissions", `{"permissions":{},"permissions":{}}`, false},
	{"aud", `{"sub":"1","aud":"x"}`, false},
	{"aud list", `{"sub":"1","aud":["x"]}`, false},
	{"jti", `{"sub":"1","jti":"x"}`, false},
	{"metadata", `{"sub":"1","metadata":{"a":1}}`, false},
	{"unknown member", `{"sub":"1","email":"a@b"}`, false},
	{"trailing garbage", `{"sub":"1"}x`, false},
	{"trailing object", `{"sub":"1"} {}`, false},
	{"trailing comma after object", `{"sub":"1"},`, false},
	{"trailing nul", "{\"sub\":\"1\"}\x00", false},
	{"trailing comma", `{"sub":"1",}`, false},
	{"trailing comma in list", `{"permissions":{"organization":["a",]}}`, false},
	{"leading comma", `{,"sub":"1"}`, false},
	{"missing comma", `{"sub":"1" "sid":"2"}`, false},
	{"missing colon", `{"sub" "1"}`, false},
	{"missing value", `{"sub":}`, false},
	{"truncated", `{"sub":"1"`, false},
	{"truncated string", `{"sub":"1`, false},
	{"unclosed list", `{"permissions":{"organization":["a"}}`, false},
	{"single quotes", `{'sub':'1'}`, false},
	{"form feed", "{\f\"sub\":\"1\"}", false},
	{"byte order mark", "\ufeff{\"sub\":\"1\"}", false},
	{"top-level array", `[]`, false},
	{"top-level null", `null`, false},
	{"top-level string", `"sub"`, false},
	{"top-level number", `1`, false},
	{"empty", ``, false},
	{"only space", ` `, false},
}

// TestDecodePlainClaims checks which payloads the plain-payload decoder
// handles, that it decodes them exactly as go-jose does, and that it
// leaves the claims untouched when it does not.
func TestDecodePlainClaims(t *testing.T) {
	t.Parallel()
	zero, _ := sessiontoken.DecodeJoseClaims([]byte(`{}`))
	for _, tc := range claimsDecodeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, handled := sessiontoken.DecodePlainClaims([]byte(tc.payload))
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			if !handled {
				if diff := cmp.Diff(zero, got); diff != "" {
					t.Fatalf("claims changed by a payload not handled (-zero +got):\n%s", diff)
				}
				return
			}
			checkSameClaims(t, []byte(tc.payload), got)
		})
	}
}

// checkSameClaims fails unless go-jose decodes payload without error into
// got.
func checkSameClaims(t *testing.T, payload []byte, got any) {
	t.Helper()
	want, err := sessiontoken.DecodeJoseClaims(payload)
	if err != nil {
		t.Fatalf("plain decoder handled %q, which go-jose refuses: %v", payload, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plain decoder differs from go-jose on %q (-go-jose +plain):\n%s", payload, diff)
	}
}

// TestVerifyPayloadForms verifies tokens whose payloads carry the same
// claims plain and not plain, and payloads that go-jose refuses or whose
// claims are incomplete: the claims do not depend on the decoder, and the
// refusals are for a malformed token.
func TestVerifyPayloadForms(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	key := newTestKey(t, "1")
	v := newVerifier(t, newFakeFetcher(jwksOf(t, key)), newFakeClock(now), nil)
	iat, exp := strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.Unix()+35, 10)
	want := &sessiontoken.Claims{
		Issuer: testIssuer, Subject: "123", SessionID: "456", Organization: "31",
		OrganizationPermissions: []string{"org:read", "org:write"},
		IssuedAt:                time.Unix(now.Unix(), 0), ExpiresAt: time.Unix(now.Unix()+35, 0),
	}
	tail := `,"sub":"123","sid":"456","iat":` + iat + `,"exp":` + exp + `,"organization":"31",` +
		`"permissions":{"organization":["org:read","org:write"],"workspace":[]}}`
	for _, tc := range []struct {
		name, payload string
		metadata      map[string]any
		wantReason    sessiontoken.Reason
	}{
		{"plain", `{"iss":"` + testIssuer + `"` + tail, nil, 0},
		{"escaped issuer", `{"iss":"` + strings.ReplaceAll(testIssuer, "/", `\/`) + `"` + tail, nil, 0},
		{"metadata", `{"metadata":{},"iss":"` + testIssuer + `"` + tail, map[string]any{}, 0},
		{"exp as float", `{"iss":"` + testIssuer + `"` + strings.Replace(tail, exp, exp+".0", 1), nil, 0},
		{"duplicate sid", `{"sid":"1","iss":"` + testIssuer + `"` + tail, nil, sessiontoken.ReasonMalformed},
		{"trailing data", `{"iss":"` + testIssuer + `"` + tail + `x`, nil, sessiontoken.ReasonMalformed},
		{"exp null", `{"iss":"` + testIssuer + `"` + strings.Replace(tail, exp, "null", 1), nil, sessiontoken.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := signPayload(t, key, tc.payload)
			got, err := v.Verify(context.Background(), tok)
			checkVerifyErr(t, err, tok, tc.wantReason, nil)
			if err != nil {
				return
			}
			want := *want
			want.Metadata = tc.metadata
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Fatalf("claims (-want +got):\n%s", diff)
			}
		})
	}
}
