package checkcodec

import "github.com/authsvc/authsvc/internal/plainjson"

// readJSON reads data as a CheckRequest in Connect's JSON if it has the
// shape of one with only what Check reads:
//
//	{"attributes":{"request":{"http":{"headers":{...},"method":"...","path":"..."}},
//	  "contextExtensions":{...}}}
//
// with each member at most once (contextExtensions also spelled
// context_extensions), and strings of printable ASCII without escapes.
// Such a document protojson reads as the same message. ok is false, with
// r unchanged, for anything else, which protojson reads instead.
func (r *Request) readJSON(data []byte) bool {
	var out Request
	j := jsonReader{plainjson.New(data)}
	ok := j.object(func(name string, seen *uint8) bool {
		if name != "attributes" || !once(seen, 1) {
			return false
		}
		return j.object(func(name string, seen *uint8) bool {
			switch name {
			case "request":
				return once(seen, 1) && j.object(func(name string, seen *uint8) bool {
					return name == "http" && once(seen, 1) && j.object(func(name string, seen *uint8) bool {
						switch name {
						case "headers":
							out.headers = map[string]string{}
							return once(seen, 1) && j.stringMap(out.headers)
						case "method":
							return once(seen, 2) && j.str(&out.method)
						case "path":
							return once(seen, 4) && j.str(&out.path)
						}
						return false
					})
				})
			case "contextExtensions", "context_extensions":
				out.extensions = map[string]string{}
				return once(seen, 2) && j.stringMap(out.extensions)
			}
			return false
		})
	})
	if !ok || !j.End() {
		return false
	}
	*r = out
	return true
}

// once marks bit in seen, reporting false if it was already set.
func once(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// jsonReader reads the objects and strings readJSON accepts.
type jsonReader struct {
	plainjson.Scanner
}

// str reads a plain string into s.
func (j *jsonReader) str(s *string) bool {
	b, ok := j.Str()
	*s = string(b)
	return ok
}

// object reads an object, calling member with each member's name to read
// its value; seen is the object's own set of members read.
func (j *jsonReader) object(member func(name string, seen *uint8) bool) bool {
	var seen uint8
	return j.Object(func(name []byte) bool { return member(string(name), &seen) })
}

// stringMap reads an object of string members into m, each name once.
func (j *jsonReader) stringMap(m map[string]string) bool {
	return j.object(func(name string, _ *uint8) bool {
		if _, dup := m[name]; dup {
			return false
		}
		var v string
		if !j.str(&v) {
			return false
		}
		m[name] = v
		return true
	})
}
