package checkcodec

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
	j := jsonReader{data: data}
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
	if !ok || !j.end() {
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

// jsonReader scans the JSON tokens readJSON accepts.
type jsonReader struct {
	data []byte
	i    int
}

func (j *jsonReader) space() {
	for j.i < len(j.data) {
		switch j.data[j.i] {
		case ' ', '\t', '\n', '\r':
			j.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (j *jsonReader) consume(c byte) bool {
	j.space()
	if j.i < len(j.data) && j.data[j.i] == c {
		j.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (j *jsonReader) end() bool {
	j.space()
	return j.i == len(j.data)
}

// str reads a string of printable ASCII without a backslash into s.
func (j *jsonReader) str(s *string) bool {
	if !j.consume('"') {
		return false
	}
	for start := j.i; j.i < len(j.data); j.i++ {
		switch c := j.data[j.i]; {
		case c == '"':
			*s = string(j.data[start:j.i])
			j.i++
			return true
		case c < 0x20 || c > 0x7e || c == '\\':
			return false
		}
	}
	return false
}

// object reads an object, calling member with each member's name to read
// its value; seen is the object's own set of members read.
func (j *jsonReader) object(member func(name string, seen *uint8) bool) bool {
	if !j.consume('{') {
		return false
	}
	if j.consume('}') {
		return true
	}
	var seen uint8
	for {
		var name string
		if !j.str(&name) || !j.consume(':') || !member(name, &seen) {
			return false
		}
		if j.consume(',') {
			continue
		}
		return j.consume('}')
	}
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
