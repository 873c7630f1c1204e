package checkcodec

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// answers are allowed answers of every shape Check gives and a few it
// does not.
func answers() map[string]*Answer {
	build := func(set [][2]string, remove ...string) *Answer {
		a := &Answer{}
		for _, h := range set {
			a.Set(h[0], h[1])
		}
		for _, r := range remove {
			a.Remove(r)
		}
		return a
	}
	return map[string]*Answer{
		"empty": build(nil),
		"session": build([][2]string{
			{"x-authsvc-credential", "bearer"}, {"x-authsvc-user-id", "3000000001"}, {"x-authsvc-session-id", "7000000001"},
			{"x-authsvc-organization-id", "31"}, {"x-authsvc-organization-permissions", "org:read,org:write"},
		}, "x-authsvc-workspace-id", "x-authsvc-workspace-permissions", "x-authsvc-api-key-id", "x-authsvc-api-key-app",
			"x-authsvc-api-key-owner-id", "x-authsvc-api-key-permissions", "x-authsvc-refusal-reason", "authorization"),
		"only_removed":   build(nil, "a", "b"),
		"only_set":       build([][2]string{{"a", "1"}}),
		"empty_key":      build([][2]string{{"", "1"}}),
		"empty_value":    build([][2]string{{"a", ""}}),
		"empty_removed":  build(nil, ""),
		"long":           build([][2]string{{"x-long", string(make([]byte, 300))}}),
		"quote":          build([][2]string{{"a", `say "hi"\`}}, `b"`),
		"unicode":        build([][2]string{{"a", "é\u2028"}}, "ü"),
		"control":        build([][2]string{{"a", "\x01\x7f"}}),
		"invalid_utf8":   build([][2]string{{"a", "\xff"}}),
		"invalid_remove": build(nil, "\xc3"),
		"full": build([][2]string{{"1", "1"}, {"2", "2"}, {"3", "3"}, {"4", "4"}, {"5", "5"}, {"6", "6"},
			{"7", "7"}, {"8", "8"}, {"9", "9"}, {"10", "10"}, {"11", "11"}, {"12", "12"}},
			"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"),
	}
}

// TestProtoMarshal: the codec writes the bytes proto.Marshal writes for
// the answer's message, and fails where proto.Marshal fails.
func TestProtoMarshal(t *testing.T) {
	t.Parallel()
	denied := &Answer{Message: &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{
		DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}, Body: "{}"},
	}}}
	all := answers()
	all["denied"] = denied
	for name, a := range all {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Proto{}.MarshalAppend([]byte("prefix"), a)
			want, wantErr := proto.MarshalOptions{}.MarshalAppend([]byte("prefix"), a.Proto())
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error = %v, proto.Marshal's = %v", err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bytes differ from proto.Marshal's (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJSONMarshal: protojson reads what the codec writes as the answer's
// message, and the codec fails where protojson fails.
func TestJSONMarshal(t *testing.T) {
	t.Parallel()
	for name, a := range answers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := JSON{}.Marshal(a)
			_, wantErr := protojson.Marshal(a.Proto())
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error = %v, protojson's = %v", err, wantErr)
			}
			if err != nil {
				return
			}
			got := &authv3.CheckResponse{}
			if err := protojson.Unmarshal(out, got); err != nil {
				t.Fatalf("protojson cannot read %s: %v", out, err)
			}
			if diff := cmp.Diff(a.Proto(), got, protocmp.Transform()); diff != "" {
				t.Errorf("protojson reads %s as another message (-want +got):\n%s", out, diff)
			}
		})
	}
}

// TestUnmarshal: a request decodes as with Connect's codecs.
func TestUnmarshal(t *testing.T) {
	t.Parallel()
	want := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"authorization": "Bearer a.b.c"}},
	}}}
	bin, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got := &authv3.CheckRequest{}
	if err := (Proto{}).Unmarshal(bin, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("proto (-want +got):\n%s", diff)
	}
	got = &authv3.CheckRequest{}
	if err := (JSON{}).Unmarshal([]byte(`{"attributes":{"request":{"http":{"headers":{"authorization":"Bearer a.b.c"}}}}}`), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	if err := (Proto{}).Unmarshal([]byte{0xff}, &authv3.CheckRequest{}); err == nil {
		t.Error("proto: malformed input accepted")
	}
}
