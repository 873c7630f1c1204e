package checkcodec

import (
	"google.golang.org/protobuf/encoding/protowire"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Request is Envoy's CheckRequest as Check reads it: the request's
// headers, method and path, the client's address and the route's context
// extensions. The Proto codec keeps the encoding and finds headers in it
// when asked, without decoding the rest; the JSON codec reads the
// headers, method, path and extensions of a request of the usual shape,
// and has protojson decode any other. The zero Request is an empty
// CheckRequest.
type Request struct {
	msg *authv3.CheckRequest

	// headers, when not nil, is the headers map read from JSON.
	headers map[string]string
	// b is the encoding, whose HttpRequests hold the headers: a message
	// field given more than once is the merge of every occurrence, in
	// order.
	b []byte
	// hasHeaders and hasHeaderMap say whether any HttpRequest holds a
	// headers entry or a header_map, so that a lookup of a name the
	// request lacks walks the encoding only where it may be found.
	hasHeaders, hasHeaderMap bool
	method                   string
	path                     string
	address                  string
	extensions               map[string]string
}

// Field numbers of what Check reads of a CheckRequest.
const (
	checkRequestAttributes = 1  // CheckRequest.attributes
	attributesSource       = 1  // AttributeContext.source
	attributesRequest      = 4  // AttributeContext.request
	attributesExtensions   = 10 // AttributeContext.context_extensions
	peerAddress            = 1  // AttributeContext.Peer.address
	addressSocketAddress   = 1  // config.core.v3.Address.socket_address, in the oneof address
	socketAddressAddress   = 2  // config.core.v3.SocketAddress.address
	requestHTTP            = 2  // AttributeContext.Request.http
	httpMethod             = 2  // AttributeContext.HttpRequest.method
	httpHeaders            = 3  // AttributeContext.HttpRequest.headers
	httpPath               = 4  // AttributeContext.HttpRequest.path
	httpHeaderMap          = 13 // AttributeContext.HttpRequest.header_map
	headerMapHeaders       = 1  // config.core.v3.HeaderMap.headers
	headerValueRawValue    = 3  // config.core.v3.HeaderValue.raw_value
	addressPipe            = 2  // config.core.v3.Address.pipe, in the oneof address
	addressInternal        = 3  // config.core.v3.Address.envoy_internal_address, in the oneof address
	mapKey, mapValue       = 1, 2
)

// decode reads an encoding proto.Unmarshal has been shown to accept; the
// Request keeps b.
func (r *Request) decode(b []byte) {
	*r = Request{b: b}
	eachBytes(b, func(num protowire.Number, attrs []byte) {
		if num != checkRequestAttributes {
			return
		}
		eachBytes(attrs, func(num protowire.Number, v []byte) {
			switch num {
			case attributesSource:
				eachField(v, peerAddress, r.readAddress)
			case attributesRequest:
				eachField(v, requestHTTP, r.readHTTP)
			case attributesExtensions:
				k, val := entry(v)
				if r.extensions == nil {
					r.extensions = map[string]string{}
				}
				r.extensions[string(k)] = string(val)
			}
		})
	})
}

// readAddress reads an Address: the last socket_address's address, unless
// another member of the oneof came after it.
func (r *Request) readAddress(addr []byte) {
	eachBytes(addr, func(num protowire.Number, v []byte) {
		switch {
		case num == addressSocketAddress:
			eachField(v, socketAddressAddress, func(a []byte) { r.address = string(a) })
		case num == addressPipe || num == addressInternal:
			r.address = ""
		}
	})
}

// readHTTP reads an HttpRequest: its method and path now, its headers
// when asked.
func (r *Request) readHTTP(h []byte) {
	eachBytes(h, func(num protowire.Number, v []byte) {
		switch num {
		case httpMethod:
			r.method = string(v)
		case httpPath:
			r.path = string(v)
		case httpHeaders:
			r.hasHeaders = true
		case httpHeaderMap:
			r.hasHeaderMap = true
		}
	})
}

// Header returns the value of the headers map for a name, and whether the
// map has it.
func (r *Request) Header(name string) (string, bool) {
	if r.msg != nil {
		v, ok := r.msg.GetAttributes().GetRequest().GetHttp().GetHeaders()[name]
		return v, ok
	}
	if r.headers != nil {
		v, ok := r.headers[name]
		return v, ok
	}
	if !r.hasHeaders {
		return "", false
	}
	var (
		value []byte
		found bool
	)
	r.eachHTTP(func(h []byte) {
		eachField(h, httpHeaders, func(e []byte) {
			if k, v := entry(e); string(k) == name {
				value, found = v, true
			}
		})
	})
	return string(value), found
}

// HeaderMapValues calls yield with the value of every header of a name in
// header_map (its raw_value, unless empty), in order, until yield returns
// false.
func (r *Request) HeaderMapValues(name string, yield func(string) bool) {
	if r.msg != nil {
		for _, h := range r.msg.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
			if h.GetKey() != name {
				continue
			}
			v := h.GetValue()
			if raw := h.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			if !yield(v) {
				return
			}
		}
		return
	}
	if !r.hasHeaderMap {
		return
	}
	more := true
	r.eachHTTP(func(h []byte) {
		if !more {
			return
		}
		eachField(h, httpHeaderMap, func(m []byte) {
			eachField(m, headerMapHeaders, func(hv []byte) {
				if !more {
					return
				}
				var key, value, raw []byte
				eachBytes(hv, func(num protowire.Number, v []byte) {
					switch num {
					case mapKey:
						key = v
					case mapValue:
						value = v
					case headerValueRawValue:
						raw = v
					}
				})
				if string(key) != name {
					return
				}
				if len(raw) > 0 {
					value = raw
				}
				more = yield(string(value))
			})
		})
	})
}

// eachHTTP calls f with the encoding of every HttpRequest, in order. It
// walks the encoding anew rather than keep where they are: a client can
// give a message field as many times as it has pairs of bytes.
func (r *Request) eachHTTP(f func(h []byte)) {
	eachField(r.b, checkRequestAttributes, func(attrs []byte) {
		eachField(attrs, attributesRequest, func(req []byte) {
			eachField(req, requestHTTP, f)
		})
	})
}

// Method is the request's method.
func (r *Request) Method() string {
	if r.msg != nil {
		return r.msg.GetAttributes().GetRequest().GetHttp().GetMethod()
	}
	return r.method
}

// Path is the request's path, with its query.
func (r *Request) Path() string {
	if r.msg != nil {
		return r.msg.GetAttributes().GetRequest().GetHttp().GetPath()
	}
	return r.path
}

// ClientAddress is the address of the request's source socket.
func (r *Request) ClientAddress() string {
	if r.msg != nil {
		return r.msg.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress()
	}
	return r.address
}

// ContextExtensions are the route's context extensions; nil for none.
func (r *Request) ContextExtensions() map[string]string {
	if r.msg != nil {
		return r.msg.GetAttributes().GetContextExtensions()
	}
	return r.extensions
}

// eachBytes calls f with every length-delimited field of a valid
// encoding, in order; fields of other wire types are skipped, as
// proto.Unmarshal keeps them as unknown fields.
func eachBytes(b []byte, f func(num protowire.Number, v []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return
			}
			f(num, v)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return
		}
		b = b[n:]
	}
}

// eachField calls f with every length-delimited value of field num.
func eachField(b []byte, num protowire.Number, f func(v []byte)) {
	eachBytes(b, func(n protowire.Number, v []byte) {
		if n == num {
			f(v)
		}
	})
}

// entry reads a map entry: the last key and value of the length-delimited
// wire type, empty when absent.
func entry(e []byte) (key, value []byte) {
	eachBytes(e, func(num protowire.Number, v []byte) {
		switch num {
		case mapKey:
			key = v
		case mapValue:
			value = v
		}
	})
	return key, value
}
