package jsoncodec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/internal/jsoncodec"
)

// TestMarshalRoundTrip: whatever path a message takes, protojson reads
// the codec's output back as the same message.
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	ts := timestamppb.New(time.Date(2026, 12, 2, 18, 42, 57, 0, time.UTC))
	meta, err := structpb.NewStruct(map[string]any{"plan": "pro"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  proto.Message
	}{
		{"empty", &authsvcv1.VerifySessionResponse{}},
		{"typical", &authsvcv1.VerifySessionResponse{
			UserId: "3000000001", SessionId: "7000000001", OrganizationId: "31",
			OrganizationPermissions: []string{"org:read", "org:write"}, IssuedAt: ts, ExpiresAt: ts,
		}},
		{"quote_and_unicode", &authsvcv1.VerifySessionResponse{UserId: `a"b\c`, SessionId: "é\u2028\x01"}},
		{"nanos", &authsvcv1.VerifySessionResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: 1, Nanos: 5}}},
		{"year_zero", &authsvcv1.VerifySessionResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: -62135596801}}},
		{"metadata", &authsvcv1.VerifySessionResponse{UserId: "1", Metadata: meta}},
		{"user", &authsvcv1.VerifySessionResponse{UserId: "1", User: &authsvcv1.User{Id: "1"}}},
		{"request", &authsvcv1.VerifySessionRequest{Token: "a.b.c", RequiredPermissions: []string{"x"}, CheckRevocation: true}},
	}
	c := jsoncodec.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := c.Marshal(tt.msg)
			want, wantErr := protojson.Marshal(tt.msg)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("Marshal error = %v, protojson's = %v", err, wantErr)
			}
			if err != nil {
				return
			}
			got := tt.msg.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(out, got); err != nil {
				t.Fatalf("protojson cannot read %s: %v", out, err)
			}
			if diff := cmp.Diff(tt.msg, got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip through %s (-sent +read):\n%s\nprotojson wrote %s", out, diff, want)
			}
		})
	}
}

func TestMarshalFastPathShape(t *testing.T) {
	t.Parallel()
	ts := timestamppb.New(time.Date(2026, 12, 2, 18, 42, 57, 0, time.UTC))
	out, err := jsoncodec.New().Marshal(&authsvcv1.VerifySessionResponse{
		UserId: "1", OrganizationPermissions: []string{"a", "b"}, ExpiresAt: ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"userId":"1","organizationPermissions":["a","b"],"expiresAt":"2026-12-02T18:42:57Z"}`
	if string(out) != want {
		t.Errorf("Marshal = %s, want %s", out, want)
	}
}

// checkUnmarshal checks that the codec reads data into the message
// protojson (with Connect's options) reads, or fails when it fails.
func checkUnmarshal(t *testing.T, data []byte) {
	t.Helper()
	got := &authsvcv1.VerifySessionRequest{Token: "left over"}
	err := jsoncodec.New().Unmarshal(data, got)
	want := &authsvcv1.VerifySessionRequest{}
	wantErr := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, want)
	if len(data) == 0 {
		wantErr = errEmpty
	}
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Unmarshal(%q) error = %v, protojson's = %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Unmarshal(%q) (-protojson +codec):\n%s", data, diff)
	}
}

var errEmpty = protojson.Unmarshal(nil, &authsvcv1.VerifySessionRequest{})

var unmarshalSeeds = []string{
	`{"token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"}`,
	` { "token" : "a.b.c" , "requiredPermissions" : [ "x" , "y" ] , "check_revocation" : true , "includeUser":false } `,
	`{"token":"a","token":"b"}`,
	`{"token":"a","unknown":{"x":[1,2]}}`,
	`{"token":null}`,
	`{"token":"a\"b"}`,
	`{"token":"\u00e9"}`,
	`{"token":"é"}`,
	`{"checkRevocation":truex}`,
	`{"checkRevocation":"true"}`,
	`{"requiredPermissions":[]}`,
	`{"requiredPermissions":["a",]}`,
	`{"token":"a"} x`,
	`{"token":"a"`,
	`{}`,
	`[]`,
	``,
	`{"token":"a","required_permissions":["b"],"requiredPermissions":["c"]}`,
	`{"[authsvc.x]":1}`,
}

func TestUnmarshalMatchesProtojson(t *testing.T) {
	t.Parallel()
	for _, s := range unmarshalSeeds {
		checkUnmarshal(t, []byte(s))
	}
	long := `{"token":"` + strings.Repeat("A", 4000) + `"}`
	checkUnmarshal(t, []byte(long))
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range unmarshalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkUnmarshal(t, data)
	})
}
