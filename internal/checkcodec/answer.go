package checkcodec

import (
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/authsvc/authsvc/internal/plainjson"
)

// MaxSet and MaxRemove bound the header changes of an allowed answer.
const (
	MaxSet    = 12
	MaxRemove = 16
)

// Answer is Check's answer: either a whole CheckResponse, or an allowed
// one given as the headers it sets and removes, which the codecs write
// straight from these lists.
type Answer struct {
	// Message, when set, is the answer, written as it is.
	Message *authv3.CheckResponse

	set     [MaxSet][2]string
	nset    int
	remove  [MaxRemove]string
	nremove int
}

// Set adds a header to set, overwriting the request's, to an allowed
// answer. It panics past MaxSet headers.
func (a *Answer) Set(name, value string) {
	a.set[a.nset] = [2]string{name, value}
	a.nset++
}

// Remove adds a header to remove from the request to an allowed answer.
// It panics past MaxRemove headers.
func (a *Answer) Remove(name string) {
	a.remove[a.nremove] = name
	a.nremove++
}

// Proto is the answer as Envoy's message: Message, or the allowed
// CheckResponse that Set and Remove describe.
func (a *Answer) Proto() *authv3.CheckResponse {
	if a.Message != nil {
		return a.Message
	}
	ok := &authv3.OkHttpResponse{}
	for _, h := range a.set[:a.nset] {
		ok.Headers = append(ok.Headers, Header(h[0], h[1]))
	}
	ok.HeadersToRemove = append(ok.HeadersToRemove, a.remove[:a.nremove]...)
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// Header is the header option Check answers with: key set to value,
// replacing any value the request had.
func Header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// Field numbers of the allowed CheckResponse.
const (
	checkResponseStatus       = 1 // CheckResponse.status
	checkResponseOK           = 3 // CheckResponse.ok_response
	okHeaders                 = 2 // OkHttpResponse.headers
	okHeadersToRemove         = 5 // OkHttpResponse.headers_to_remove
	headerValueOptionHeader   = 1 // HeaderValueOption.header
	headerValueOptionAction   = 3 // HeaderValueOption.append_action
	headerValueKey            = 1 // HeaderValue.key
	headerValueValue          = 2 // HeaderValue.value
	overwriteIfExistsOrAddTag = uint64(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
)

// appendProto appends the protobuf encoding of an allowed answer, the
// bytes proto.Marshal writes for Proto(). ok is false, with dst
// unchanged, when a string is not valid UTF-8, which proto.Marshal
// refuses.
func (a *Answer) appendProto(dst []byte) (out []byte, ok bool) {
	okSize := 0
	for _, h := range a.set[:a.nset] {
		if !utf8.ValidString(h[0]) || !utf8.ValidString(h[1]) {
			return dst, false
		}
		n := headerOptionSize(h)
		okSize += protowire.SizeTag(okHeaders) + protowire.SizeBytes(n)
	}
	for _, r := range a.remove[:a.nremove] {
		if !utf8.ValidString(r) {
			return dst, false
		}
		okSize += protowire.SizeTag(okHeadersToRemove) + protowire.SizeBytes(len(r))
	}
	out = protowire.AppendTag(dst, checkResponseStatus, protowire.BytesType)
	out = protowire.AppendVarint(out, 0) // Status{code: OK}: every field zero
	out = protowire.AppendTag(out, checkResponseOK, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(okSize))
	for _, h := range a.set[:a.nset] {
		out = protowire.AppendTag(out, okHeaders, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(headerOptionSize(h)))
		out = protowire.AppendTag(out, headerValueOptionHeader, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(headerValueSize(h)))
		out = appendNonEmpty(out, headerValueKey, h[0])
		out = appendNonEmpty(out, headerValueValue, h[1])
		out = protowire.AppendTag(out, headerValueOptionAction, protowire.VarintType)
		out = protowire.AppendVarint(out, overwriteIfExistsOrAddTag)
	}
	for _, r := range a.remove[:a.nremove] {
		out = protowire.AppendTag(out, okHeadersToRemove, protowire.BytesType)
		out = protowire.AppendString(out, r)
	}
	return out, true
}

// headerValueSize is the size of HeaderValue{key, value}.
func headerValueSize(h [2]string) int {
	n := 0
	if h[0] != "" {
		n += protowire.SizeTag(headerValueKey) + protowire.SizeBytes(len(h[0]))
	}
	if h[1] != "" {
		n += protowire.SizeTag(headerValueValue) + protowire.SizeBytes(len(h[1]))
	}
	return n
}

// headerOptionSize is the size of HeaderValueOption{header, append_action}.
func headerOptionSize(h [2]string) int {
	return protowire.SizeTag(headerValueOptionHeader) + protowire.SizeBytes(headerValueSize(h)) +
		protowire.SizeTag(headerValueOptionAction) + protowire.SizeVarint(overwriteIfExistsOrAddTag)
}

// appendNonEmpty appends a string field unless it is empty, which proto3
// leaves out.
func appendNonEmpty(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendJSON appends an allowed answer as JSON that protojson reads as
// Proto(), with the field names protojson writes. ok is false, with dst
// unchanged, unless every string is printable ASCII without a quote or
// backslash, so that none needs escaping.
func (a *Answer) appendJSON(dst []byte) (out []byte, ok bool) {
	for _, h := range a.set[:a.nset] {
		if !plainjson.Plain(h[0]) || !plainjson.Plain(h[1]) {
			return dst, false
		}
	}
	for _, r := range a.remove[:a.nremove] {
		if !plainjson.Plain(r) {
			return dst, false
		}
	}
	out = append(dst, `{"status":{},"okResponse":{`...)
	if a.nset > 0 {
		out = append(out, `"headers":[`...)
		for i, h := range a.set[:a.nset] {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"header":{`...)
			switch {
			case h[0] != "" && h[1] != "":
				out = append(append(append(append(append(out, `"key":"`...), h[0]...), `","value":"`...), h[1]...), '"')
			case h[0] != "":
				out = append(append(append(out, `"key":"`...), h[0]...), '"')
			case h[1] != "":
				out = append(append(append(out, `"value":"`...), h[1]...), '"')
			}
			out = append(out, `},"appendAction":"OVERWRITE_IF_EXISTS_OR_ADD"}`...)
		}
		out = append(out, ']')
	}
	if a.nremove > 0 {
		if a.nset > 0 {
			out = append(out, ',')
		}
		out = append(out, `"headersToRemove":[`...)
		for i, r := range a.remove[:a.nremove] {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(append(append(out, '"'), r...), '"')
		}
		out = append(out, ']')
	}
	return append(out, "}}"...), true
}
