package checkcodec

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyRequest is a CheckRequest as Envoy sends it for a browser's
// request through an HTTP filter with a per-route context extension.
func envoyRequest() *authv3.CheckRequest {
	meta, _ := structpb.NewStruct(map[string]any{"tenant": "acme", "n": 3.0, "list": []any{"a", true}})
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.50", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}},
		}}},
		Destination: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "10.0.0.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8443}},
		}}},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Date(2026, 12, 7, 22, 0, 0, 123, time.UTC)),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "1234567890", Method: "GET", Path: "/orders/7?expand=lines", Host: "orders.example.com",
				Scheme: "https", Protocol: "HTTP/1.1", Size: -1,
				Headers: map[string]string{
					":authority": "orders.example.com", ":method": "GET", ":path": "/orders/7?expand=lines", ":scheme": "https",
					"accept": "application/json", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
					"x-forwarded-proto": "https", "x-request-id": "4b7c3f1e-9a2d-4e8b-b1c6-2f0d8e7a5c34",
					"cookie": "_ga=GA1.2.3; __session=abc", "authorization": "Bearer a.b.c",
				},
			},
		},
		ContextExtensions: map[string]string{"authsvc_required_permissions": "org:read"},
		MetadataContext:   &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt": meta}},
	}}
}

// headerMapRequest is one with header_map and raw values, as Envoy sends
// with encode_raw_headers.
func headerMapRequest() *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "POST", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/x")},
			{Key: "cookie", RawValue: []byte("a=1")},
			{Key: "cookie", Value: "__session=s"},
			{Key: "authorization", Value: "ignored", RawValue: []byte("Bearer \xff")},
			{Key: "x-empty"},
		}}},
	}}}
}

func seeds(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range []*authv3.CheckRequest{
		{},
		envoyRequest(),
		headerMapRequest(),
		{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Headers: map[string]string{"authorization": "Bearer a.b.c"},
		}}}},
		{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{
			Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/sock"}},
		}}}},
	} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	// A message given twice is the merge of both, with the oneof switched
	// by the later one.
	out = append(out, slices.Concat(out[1], out[4]), slices.Concat(out[4], out[1]), slices.Concat(out[1], out[2], out[3]))
	return out
}

// readRequest is what Check reads of a Request, through its methods.
type readRequest struct {
	Headers    map[string]string
	Present    map[string]bool
	HeaderMap  map[string][]string
	Method     string
	Path       string
	Address    string
	Extensions map[string]string
}

func read(r *Request, names []string) readRequest {
	out := readRequest{
		Headers: map[string]string{}, Present: map[string]bool{}, HeaderMap: map[string][]string{},
		Method: r.Method(), Path: r.Path(), Address: r.ClientAddress(), Extensions: r.ContextExtensions(),
	}
	for _, n := range names {
		out.Headers[n], out.Present[n] = r.Header(n)
		r.HeaderMapValues(n, func(v string) bool {
			out.HeaderMap[n] = append(out.HeaderMap[n], v)
			return true
		})
		// Stopping early yields the first only.
		var first []string
		r.HeaderMapValues(n, func(v string) bool {
			first = append(first, v)
			return false
		})
		if len(first) > 1 || (len(first) == 1 && first[0] != out.HeaderMap[n][0]) {
			out.HeaderMap[n] = append(out.HeaderMap[n], "stopping early yielded "+strings.Join(first, ","))
		}
	}
	return out
}

// checkSame fails unless the Proto codec accepts data exactly when
// proto.Unmarshal accepts it as a CheckRequest, and reads from it what
// Check reads from proto.Unmarshal's message.
func checkSame(t *testing.T, c Proto, data []byte) {
	want := &authv3.CheckRequest{}
	wantErr := proto.Unmarshal(data, want)
	var got Request
	err := c.Unmarshal(data, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Unmarshal error = %v, proto.Unmarshal's = %v (input %q)", err, wantErr, data)
	}
	if err != nil {
		return
	}
	names := []string{"", "authorization", "cookie", "x-missing"}
	http := want.GetAttributes().GetRequest().GetHttp()
	for k := range http.GetHeaders() {
		names = append(names, k)
	}
	for _, h := range http.GetHeaderMap().GetHeaders() {
		names = append(names, h.GetKey())
	}
	if diff := cmp.Diff(read(&Request{msg: want}, names), read(&got, names), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("read differently from proto.Unmarshal's message (-want +got):\n%s\ninput %q", diff, data)
	}
}

// TestRequestSeeds: realistic requests, merged ones, and every prefix of
// them (mostly malformed) decode as with proto.Unmarshal.
func TestRequestSeeds(t *testing.T) {
	t.Parallel()
	c := NewProto()
	for _, s := range seeds(t) {
		for i := range len(s) + 1 {
			checkSame(t, c, s[:i])
		}
		// Every single-byte change at the start and end.
		for i := range min(len(s), 24) {
			for _, b := range []byte{0x00, 0x07, 0x80, 0xff} {
				m := slices.Clone(s)
				m[i] = b
				checkSame(t, c, m)
				m = slices.Clone(s)
				m[len(m)-1-i] = b
				checkSame(t, c, m)
			}
		}
	}
}

// TestRequestDepth: proto.Unmarshal's recursion limit holds (4996
// nested lists in a Struct are within it, 4997 are not).
func TestRequestDepth(t *testing.T) {
	t.Parallel()
	c := NewProto()
	for _, depth := range []int{10, 4995, 4996, 4997, 4998} {
		// The innermost Value is a string, or a Struct whose fields
		// (a map) are of the varint wire type: proto.Unmarshal counts
		// the map before it sees the wire type.
		for _, inner := range []*structpb.Value{structpb.NewStringValue("x"), mapOfVarint()} {
			checkSame(t, c, deepRequest(t, depth, inner))
		}
	}
}

// mapOfVarint is a Value of a Struct whose fields field is of the varint
// wire type, an unknown field to proto.Unmarshal.
func mapOfVarint() *structpb.Value {
	s := &structpb.Struct{}
	s.ProtoReflect().SetUnknown(varint(1, 1))
	return structpb.NewStructValue(s)
}

// deepRequest is a CheckRequest whose metadata holds v in depth nested
// lists.
func deepRequest(t *testing.T, depth int, v *structpb.Value) []byte {
	t.Helper()
	{
		for range depth {
			v = structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{v}})
		}
		s := &structpb.Struct{Fields: map[string]*structpb.Value{"deep": v}}
		m := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": s}},
		}}
		b, err := proto.MarshalOptions{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestRequestMutations: seeds changed at random, a few bytes at a time,
// as FuzzRequest does but the same on every run, decode as with
// proto.Unmarshal.
func TestRequestMutations(t *testing.T) {
	t.Parallel()
	c := NewProto()
	ss := seeds(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		s := slices.Clone(ss[r.IntN(len(ss))])
		for range 1 + r.IntN(4) {
			if len(s) == 0 {
				s = append(s, byte(r.IntN(256)))
				continue
			}
			switch r.IntN(5) {
			case 0:
				s[r.IntN(len(s))] = byte(r.IntN(256))
			case 1:
				j := r.IntN(len(s))
				s = slices.Insert(s, j, byte(r.IntN(256)))
			case 2:
				j := r.IntN(len(s))
				s = slices.Delete(s, j, j+1)
			case 3:
				o := ss[r.IntN(len(ss))]
				if len(o) > 0 {
					a := r.IntN(len(o))
					b := a + r.IntN(len(o)-a+1)
					j := r.IntN(len(s) + 1)
					s = slices.Insert(s, j, o[a:b]...)
				}
			case 4:
				s[r.IntN(len(s))] ^= 1 << r.IntN(8)
			}
		}
		checkSame(t, c, s)
		if t.Failed() {
			t.Fatalf("iteration %d", i)
		}
	}
}

// FuzzRequest holds the Proto codec's reading of a CheckRequest to
// proto.Unmarshal's.
func FuzzRequest(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	c := NewProto()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSame(t, c, data)
	})
}

// Builders of hand-made encodings: a length-delimited field, a varint
// field, and a map entry of a key and a value.
func ld(num protowire.Number, parts ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), slices.Concat(parts...))
}

func varint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func kv(k, v string) []byte { return slices.Concat(ld(mapKey, []byte(k)), ld(mapValue, []byte(v))) }

// inHTTP is a CheckRequest of one HttpRequest of the fields given.
func inHTTP(fields ...[]byte) []byte {
	return ld(checkRequestAttributes, ld(attributesRequest, ld(requestHTTP, fields...)))
}

// TestRequestCases: encodings Envoy does not write but a client can, and
// which random changes rarely reach, read as proto.Unmarshal reads them.
func TestRequestCases(t *testing.T) {
	t.Parallel()
	hdr := func(e ...[]byte) []byte { return ld(httpHeaders, e...) }
	hv := func(fields ...[]byte) []byte { return ld(httpHeaderMap, ld(headerMapHeaders, fields...)) }
	startGroup := func(num protowire.Number) []byte { return protowire.AppendTag(nil, num, protowire.StartGroupType) }
	endGroup := func(num protowire.Number) []byte { return protowire.AppendTag(nil, num, protowire.EndGroupType) }
	cases := []struct {
		name string
		data []byte
	}{
		{"duplicate key, last wins", inHTTP(hdr(kv("authorization", "Bearer a")), hdr(kv("authorization", "Bearer b")))},
		{"entry without key", inHTTP(hdr(ld(mapValue, []byte("Bearer a"))))},
		{"entry without value", inHTTP(hdr(ld(mapKey, []byte("authorization"))))},
		{"empty entry", inHTTP(hdr())},
		{"key and value given twice in an entry", inHTTP(hdr(kv("authorization", "Bearer a"), kv("cookie", "__session=s")))},
		{"value before key", inHTTP(hdr(ld(mapValue, []byte("Bearer a")), ld(mapKey, []byte("authorization"))))},
		{"key of the varint wire type", inHTTP(hdr(varint(mapKey, 1), ld(mapValue, []byte("Bearer a"))))},
		{"value of the varint wire type", inHTTP(hdr(ld(mapKey, []byte("authorization")), varint(mapValue, 7)))},
		{"unknown fields in an entry", inHTTP(hdr(ld(3, []byte("x")), kv("authorization", "Bearer a"), varint(4, 1), startGroup(5), ld(mapKey, []byte("cookie")), endGroup(5)))},
		{"headers of the varint wire type", inHTTP(varint(httpHeaders, 1), hdr(kv("cookie", "a=1")))},
		{"headers in an unknown group", inHTTP(startGroup(99), hdr(kv("authorization", "Bearer a")), endGroup(99))},
		{"headers in a group of the headers' number", inHTTP(startGroup(httpHeaders), ld(mapKey, []byte("authorization")), endGroup(httpHeaders))},
		{"name in another case", inHTTP(hdr(kv("Authorization", "Bearer a")), hdr(kv("COOKIE", "__session=s")))},
		{"invalid UTF-8 in a key", inHTTP(hdr(kv("authorization\xff", "Bearer a")))},
		{"invalid UTF-8 in a value", inHTTP(hdr(kv("authorization", "Bearer \xff")))},
		{"zero-length messages", slices.Concat(ld(checkRequestAttributes), ld(checkRequestAttributes, ld(attributesRequest)), inHTTP())},
		{"headers across HttpRequests", slices.Concat(
			inHTTP(hdr(kv("authorization", "Bearer a")), hdr(kv("cookie", "a=1"))),
			inHTTP(hdr(kv("authorization", "Bearer b"))),
		)},
		{"headers across Requests in one AttributeContext", ld(checkRequestAttributes,
			ld(attributesRequest, ld(requestHTTP, hdr(kv("authorization", "Bearer a")))),
			ld(attributesSource, ld(peerAddress, ld(addressSocketAddress, ld(socketAddressAddress, []byte("192.0.2.1"))))),
			ld(attributesRequest, ld(requestHTTP, hdr(kv("cookie", "a=1"))), ld(requestHTTP, hdr(kv("authorization", "Bearer b")))),
		)},
		{"http of the varint wire type does not merge", slices.Concat(inHTTP(hdr(kv("authorization", "Bearer a"))),
			ld(checkRequestAttributes, ld(attributesRequest, varint(requestHTTP, 0))))},
		{"header_map value and raw_value", inHTTP(
			hv(ld(mapKey, []byte("authorization")), ld(headerValueRawValue, []byte("Bearer raw")), ld(mapValue, []byte("Bearer value")))),
		},
		{"header_map empty raw_value", inHTTP(
			hv(ld(mapKey, []byte("authorization")), ld(mapValue, []byte("Bearer value")), ld(headerValueRawValue))),
		},
		{"header_map raw_value given twice", inHTTP(
			hv(ld(mapKey, []byte("cookie")), ld(headerValueRawValue, []byte("a=1")), ld(headerValueRawValue))),
		},
		{"header_map key given twice", inHTTP(
			hv(ld(mapKey, []byte("authorization")), ld(mapValue, []byte("Bearer a")), ld(mapKey, []byte("cookie")))),
		},
		{"header_map without key", inHTTP(hv(ld(mapValue, []byte("Bearer a"))))},
		{"header_map raw_value not UTF-8", inHTTP(hv(ld(mapKey, []byte("authorization")), ld(headerValueRawValue, []byte("Bearer \xff"))))},
		{"header_map value not UTF-8", inHTTP(hv(ld(mapKey, []byte("authorization")), ld(mapValue, []byte("Bearer \xff"))))},
		{"header_map across HttpRequests and HeaderMaps", slices.Concat(
			inHTTP(hv(ld(mapKey, []byte("cookie")), ld(mapValue, []byte("a=1"))), hv(ld(mapKey, []byte("cookie")), ld(mapValue, []byte("b=2")))),
			inHTTP(hv(ld(mapKey, []byte("cookie")), ld(headerValueRawValue, []byte("c=3")))),
		)},
		{"headers and header_map", inHTTP(
			hv(ld(mapKey, []byte("authorization")), ld(mapValue, []byte("Bearer map"))),
			hdr(kv("authorization", "Bearer headers")),
			hv(ld(mapKey, []byte("cookie")), ld(mapValue, []byte("a=1"))),
		)},
		{"socket address, then pipe, then socket address without address", ld(checkRequestAttributes,
			ld(attributesSource, ld(peerAddress, ld(addressSocketAddress, ld(socketAddressAddress, []byte("192.0.2.1"))))),
			ld(attributesSource, ld(peerAddress, ld(addressPipe))),
			ld(attributesSource, ld(peerAddress, ld(addressSocketAddress, varint(3, 443)))),
		)},
		{"pipe of the varint wire type keeps the socket address", ld(checkRequestAttributes,
			ld(attributesSource, ld(peerAddress, ld(addressSocketAddress, ld(socketAddressAddress, []byte("192.0.2.1"))), varint(addressPipe, 0))),
		)},
		{"context extensions merged", slices.Concat(
			ld(checkRequestAttributes, ld(attributesExtensions, kv("a", "1")), ld(attributesExtensions, kv("b", "2"))),
			ld(checkRequestAttributes, ld(attributesExtensions, kv("a", "3")), ld(attributesExtensions, ld(mapValue, []byte("4")))),
		)},
		{"method and path last wins across HttpRequests", slices.Concat(
			inHTTP(ld(httpMethod, []byte("GET")), ld(httpPath, []byte("/a"))),
			inHTTP(ld(httpMethod, []byte("POST"))),
		)},
	}
	c := NewProto()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkSame(t, c, tc.data)
		})
	}
}

// TestRequestAllocations: what decoding and looking up headers allocates
// does not grow with the times a client gives the same message field,
// which proto.Unmarshal merges at no cost.
func TestRequestAllocations(t *testing.T) {
	c := NewProto()
	allocs := func(times int) float64 {
		data := ld(checkRequestAttributes, ld(attributesRequest, bytesRepeat(ld(requestHTTP), times)...))
		return testing.AllocsPerRun(20, func() {
			var r Request
			if err := c.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			r.Header("authorization")
			r.HeaderMapValues("authorization", func(string) bool { return true })
		})
	}
	if one, many := allocs(1), allocs(50000); many != one {
		t.Errorf("allocations: %v for an HttpRequest given once, %v for one given 50,000 times", one, many)
	}
}

func bytesRepeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
