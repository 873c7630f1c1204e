package sessiontoken

import (
	"bytes"
	"strings"

	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authsvc/authsvc/internal/plainjson"
)

// decodeClaims decodes the token payload into raw, which must be zero: a
// plain payload with [decodePlainClaims], any other with go-jose's
// decoder, which matches member names case-sensitively, as the JOSE
// specifications require. Both give the same rawClaims for a plain
// payload.
func decodeClaims(payload []byte, raw *rawClaims) error {
	if decodePlainClaims(payload, raw) {
		return nil
	}
	return josejson.Unmarshal(payload, raw)
}

// decodePlainClaims decodes payload into raw and reports true when the
// payload is plain; otherwise it leaves raw as it was and reports false.
//
// A plain payload is one JSON object, with optional JSON whitespace
// (space, tab, newline, carriage return) before, after and inside it and
// nothing else after it. Its members are each at most once, with names
// written exactly (no escapes, same case) among:
//   - iss, sub, sid, session_id, organization, workspace: a plain string;
//   - exp, iat, nbf: a plain number;
//   - permissions: an object whose members are each at most once and
//     among organization and workspace, each an array of plain strings.
//
// A plain string holds only printable ASCII (0x20 to 0x7E) and no
// backslash, so it has no escape and decodes to its bytes. A plain number
// is 0, or 1 to 15 digits without a leading zero: no sign, fraction or
// exponent. go-jose reads a NumericDate with strconv.ParseFloat, refuses
// it from 2^62 on and converts the rest to int64, so such a number comes
// out exactly as its digits say. Anything else, null included, and the
// members aud, jti and metadata are not plain.
//
// For a plain payload go-jose gives the same rawClaims: an absent member
// leaves its field zero (a nil pointer or slice), an empty array gives an
// empty, non-nil slice, and permissions a non-nil *rawPerms.
func decodePlainClaims(payload []byte, raw *rawClaims) bool {
	s := plainScanner{Scanner: plainjson.New(payload), b: payload}
	if !s.claims() {
		return false
	}
	s.fill(raw)
	return true
}

// The members of a plain payload. The string members come first, in the
// order plainScanner.fill lays out their text.
const (
	memberIss = iota
	memberSub
	memberSID
	memberSessionID
	memberOrganization
	memberWorkspace
	memberExp
	memberIat
	memberNbf
	memberPermissions
)

// numStringMembers is the number of string members: iss to workspace.
const numStringMembers = memberWorkspace + 1

// stringMembers has the bits of the string members in plainScanner.seen.
const stringMembers = 1<<numStringMembers - 1

// numDates is the number of NumericDate members: exp, iat and nbf.
const numDates = 3

// The members of the permissions object.
const (
	permOrganization = iota
	permWorkspace
	numPermLists
)

// maxPlainDigits is the most digits of a plain number. 10^15 is below
// 2^53, so every such integer is exact as a float64.
const maxPlainDigits = 15

// plainScanner checks that a payload is plain and records where its
// values are, for fill to build the rawClaims from. It allocates nothing.
type plainScanner struct {
	plainjson.Scanner
	b []byte

	seen     uint16
	strs     [numStringMembers][]byte
	strBytes int
	dates    [numDates]jwt.NumericDate

	permsSeen uint8
	// lists are where the permission arrays start in b.
	lists     [numPermLists]int
	counts    [numPermLists]int
	permBytes int
}

// claims scans the whole payload: one object and trailing whitespace.
func (s *plainScanner) claims() bool {
	return s.Object(s.claim) && s.End()
}

// claim scans the value of the top-level member named name.
func (s *plainScanner) claim(name []byte) bool {
	m := claimMember(name)
	if m < 0 || s.seen&(1<<m) != 0 {
		return false
	}
	s.seen |= 1 << m
	switch {
	case m < numStringMembers:
		v, ok := s.Str()
		s.strs[m], s.strBytes = v, s.strBytes+len(v)
		return ok
	case m == memberPermissions:
		return s.Object(s.permList)
	default:
		var ok bool
		s.dates[m-memberExp], ok = s.number()
		return ok
	}
}

// claimMember returns the member of a plain payload named name, or -1.
func claimMember(name []byte) int {
	switch string(name) {
	case "iss":
		return memberIss
	case "sub":
		return memberSub
	case "sid":
		return memberSID
	case "session_id":
		return memberSessionID
	case "organization":
		return memberOrganization
	case "workspace":
		return memberWorkspace
	case "exp":
		return memberExp
	case "iat":
		return memberIat
	case "nbf":
		return memberNbf
	case "permissions":
		return memberPermissions
	}
	return -1
}

// permList scans the array of the permissions member named name.
func (s *plainScanner) permList(name []byte) bool {
	var l int
	switch string(name) {
	case "organization":
		l = permOrganization
	case "workspace":
		l = permWorkspace
	default:
		return false
	}
	if s.permsSeen&(1<<l) != 0 {
		return false
	}
	s.permsSeen |= 1 << l
	return s.strArray(l)
}

// strArray scans an array of plain strings into permission list l.
func (s *plainScanner) strArray(l int) bool {
	s.lists[l] = s.Pos()
	return s.Array(func() bool {
		v, ok := s.Str()
		s.counts[l]++
		s.permBytes += len(v)
		return ok
	})
}

// number scans a plain number.
func (s *plainScanner) number() (jwt.NumericDate, bool) {
	digits := s.Digits()
	if len(digits) == 0 || len(digits) > maxPlainDigits || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	var n int64
	for _, d := range digits {
		n = n*10 + int64(d-'0')
	}
	return jwt.NumericDate(n), true
}

// plainExtras holds what a plain payload's rawClaims points to, in one
// allocation.
type plainExtras struct {
	dates [numDates]jwt.NumericDate
	perms rawPerms
}

// fill sets raw from a scanned plain payload. The string members share
// one allocation, and so do the permission strings.
func (s *plainScanner) fill(raw *rawClaims) {
	s.fillStrings(raw)
	var ex *plainExtras
	if s.seen&^stringMembers != 0 {
		ex = &plainExtras{dates: s.dates}
	}
	dates := [numDates]**jwt.NumericDate{&raw.Expiry, &raw.IssuedAt, &raw.NotBefore}
	for i, d := range dates {
		if s.seen&(1<<(memberExp+i)) != 0 {
			*d = &ex.dates[i]
		}
	}
	if s.seen&(1<<memberPermissions) != 0 {
		s.fillPerms(&ex.perms)
		raw.Permissions = &ex.perms
	}
}

// fillStrings sets raw's string members.
func (s *plainScanner) fillStrings(raw *rawClaims) {
	if s.strBytes == 0 {
		return
	}
	var b strings.Builder
	b.Grow(s.strBytes)
	for _, v := range s.strs {
		b.Write(v)
	}
	text := b.String()
	fields := [numStringMembers]*string{
		&raw.Issuer, &raw.Subject, &raw.SessionID, &raw.LegacySessionID, &raw.Organization, &raw.Workspace,
	}
	off := 0
	for m, p := range s.strs {
		*fields[m] = text[off : off+len(p)]
		off += len(p)
	}
}

// fillPerms sets the permission lists present in the payload, each a
// non-nil slice, empty for an empty array.
func (s *plainScanner) fillPerms(perms *rawPerms) {
	var b strings.Builder
	b.Grow(s.permBytes)
	for l, p := range s.lists {
		for i, k := p, 0; k < s.counts[l]; k++ {
			open, closing := nextString(s.b, i)
			b.Write(s.b[open:closing])
			i = closing + 1
		}
	}
	text := b.String()
	all := make([]string, s.counts[permOrganization]+s.counts[permWorkspace])
	lists := [numPermLists]*[]string{&perms.Organization, &perms.Workspace}
	off, n := 0, 0
	for l, p := range s.lists {
		if s.permsSeen&(1<<l) == 0 {
			continue
		}
		list := all[n : n+s.counts[l] : n+s.counts[l]]
		for i, k := p, 0; k < len(list); k++ {
			open, closing := nextString(s.b, i)
			list[k] = text[off : off+closing-open]
			off += closing - open
			i = closing + 1
		}
		*lists[l] = list
		n += len(list)
	}
}

// nextString returns where the content of the first string at or after
// b[i] begins and ends, in a scanned array of plain strings.
func nextString(b []byte, i int) (open, closing int) {
	open = i + bytes.IndexByte(b[i:], '"') + 1
	return open, open + bytes.IndexByte(b[open:], '"')
}
