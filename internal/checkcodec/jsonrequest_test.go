package checkcodec

import (
	"math/rand/v2"
	"slices"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protojson"
)

var jsonSeeds = []string{
	`{"attributes":{"request":{"http":{"headers":{"authorization":"Bearer a.b.c"}}}}}`,
	` { "attributes" : { "request" : { "http" : { "method" : "GET" , "path" : "/x?y=1" , "headers" : { "a" : "1" , "cookie" : "__session=s" } } } , "contextExtensions" : { "authsvc_credentials" : "bearer" } } } `,
	`{"attributes":{"context_extensions":{"k":"v"},"request":{"http":{}}}}`,
	`{"attributes":{"request":{}}}`,
	`{"attributes":{}}`,
	`{}`,
	`{"attributes":{"request":{"http":{"headers":{}}}}}`,
	// protojson reads these, readJSON leaves them to it.
	`{"attributes":{"source":{"address":{"socketAddress":{"address":"203.0.113.50","portValue":41000}}},"request":{"http":{"headers":{"authorization":"Bearer x"}}}}}`,
	`{"attributes":{"request":{"http":{"headers":{"a":"\u00e9"}}}}}`,
	`{"attributes":{"request":{"http":{"headerMap":{"headers":[{"key":"cookie","rawValue":"YT0x"}]}}}}}`,
	`{"attributes":null}`,
	// Neither reads these.
	`{"attributes":{"request":{"http":{"headers":{"a":"1","a":"2"}}}}}`,
	`{"attributes":{"contextExtensions":{},"context_extensions":{}}}`,
	`{"attributes":{}}x`,
	`{"attributes":{"request":{"http":{"method":1}}}}`,
	`{"attributes":{},"attributes":{}}`,
}

// checkSameJSON fails if readJSON reads a document protojson refuses, or
// reads it differently.
func checkSameJSON(t *testing.T, data []byte) {
	want := &authv3.CheckRequest{}
	wantErr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, want)
	var got Request
	if got.readJSON(data) {
		if wantErr != nil {
			t.Fatalf("readJSON reads %q, which protojson refuses: %v", data, wantErr)
		}
		names := []string{"", "authorization", "cookie", "a", "x-missing"}
		for k := range want.GetAttributes().GetRequest().GetHttp().GetHeaders() {
			names = append(names, k)
		}
		if diff := cmp.Diff(read(&Request{msg: want}, names), read(&got, names), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q read differently from protojson's message (-want +got):\n%s", data, diff)
		}
	}
	var viaCodec Request
	if err := (JSON{}).Unmarshal(data, &viaCodec); (err != nil) != (wantErr != nil) {
		t.Errorf("JSON.Unmarshal(%q) error = %v, protojson's = %v", data, err, wantErr)
	}
}

// TestJSONRequest: the documents readJSON reads are read as protojson
// reads them, the usual ones take its path, and the codec fails where
// protojson fails.
func TestJSONRequest(t *testing.T) {
	t.Parallel()
	for _, s := range jsonSeeds {
		checkSameJSON(t, []byte(s))
	}
	for _, s := range jsonSeeds[:7] {
		var r Request
		if !r.readJSON([]byte(s)) {
			t.Errorf("readJSON leaves %s to protojson", s)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		s := []byte(jsonSeeds[r.IntN(len(jsonSeeds))])
		for range 1 + r.IntN(3) {
			j := r.IntN(len(s))
			switch r.IntN(3) {
			case 0:
				s[j] = `{}[]":, a\`[r.IntN(10)]
			case 1:
				s = slices.Delete(s, j, j+1)
			case 2:
				s = slices.Insert(s, j, `{}":,`[r.IntN(5)])
			}
			if len(s) == 0 {
				s = []byte("{")
			}
		}
		checkSameJSON(t, s)
	}
}

// FuzzJSONRequest holds readJSON to protojson.
func FuzzJSONRequest(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkSameJSON)
}
