// Package plainjson scans plain JSON, whose strings are printable ASCII
// without escapes, for decoders that read that shape directly and leave
// any other document to a full JSON decoder.
package plainjson

// Plain reports whether s is plain: printable ASCII without a quote or a
// backslash, written in JSON as its own bytes between quotes.
func Plain(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Scanner reads JSON tokens from a document. Each method skips the white
// space before its token; a method that reports false has found
// something it does not read, and the document is then not plain.
type Scanner struct {
	data []byte
	i    int
}

// New returns a Scanner at the start of data.
func New(data []byte) Scanner { return Scanner{data: data} }

// Pos is the offset of the next byte to read.
func (s *Scanner) Pos() int { return s.i }

func (s *Scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Consume reads c if it is the next token.
func (s *Scanner) Consume(c byte) bool {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (s *Scanner) End() bool {
	s.space()
	return s.i == len(s.data)
}

// Str reads a string of printable ASCII (0x20 to 0x7E) without a
// backslash, which therefore decodes to its own bytes, and returns them:
// a slice of the document.
func (s *Scanner) Str() ([]byte, bool) {
	if !s.Consume('"') {
		return nil, false
	}
	for start := s.i; s.i < len(s.data); s.i++ {
		switch c := s.data[s.i]; {
		case c == '"':
			s.i++
			return s.data[start : s.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// Digits reads a run of decimal digits, possibly empty, and returns it.
// Signs, fractions and exponents are left unread.
func (s *Scanner) Digits() []byte {
	s.space()
	start := s.i
	for s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9' {
		s.i++
	}
	return s.data[start:s.i]
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	s.space()
	rest := s.data[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		return true, s.delimited()
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		return false, s.delimited()
	}
	return false, false
}

// delimited reports whether a literal just read ends there, as in
// "true," and not "truex".
func (s *Scanner) delimited() bool {
	if s.i == len(s.data) {
		return true
	}
	switch s.data[s.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

// Object reads an object, calling member with each member's name (a
// plain string, a slice of the document) to read its value.
func (s *Scanner) Object(member func(name []byte) bool) bool {
	if !s.Consume('{') {
		return false
	}
	if s.Consume('}') {
		return true
	}
	for {
		name, ok := s.Str()
		if !ok || !s.Consume(':') || !member(name) {
			return false
		}
		if !s.Consume(',') {
			return s.Consume('}')
		}
	}
}

// Array reads an array, calling elem to read each element.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Consume('[') {
		return false
	}
	if s.Consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.Consume(',') {
			return s.Consume(']')
		}
	}
}
