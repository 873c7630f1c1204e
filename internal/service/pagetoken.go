package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// page is where a listing continues. Scope ties a token to the listing
// that issued it.
type page struct {
	Scope  string `json:"s"`
	Offset int    `json:"o"`
}

// pageTokens makes opaque, tamper-evident page tokens: the page, then an
// HMAC of it. Any replica with the same key can read any replica's token.
type pageTokens struct {
	key []byte
}

var errBadPageToken = errors.New("bad page token")

func (p pageTokens) encode(pg page) string {
	body, _ := json.Marshal(pg)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(p.mac(body))
}

func (p pageTokens) decode(tok string) (page, error) {
	if len(tok) > 1024 {
		return page{}, errBadPageToken
	}
	b64body, b64mac, ok := strings.Cut(tok, ".")
	if !ok {
		return page{}, errBadPageToken
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	mac, err2 := base64.RawURLEncoding.DecodeString(b64mac)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, p.mac(body)) {
		return page{}, errBadPageToken
	}
	var pg page
	if err := json.Unmarshal(body, &pg); err != nil || pg.Offset < 0 {
		return page{}, errBadPageToken
	}
	return pg, nil
}

func (p pageTokens) mac(body []byte) []byte {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("authsvc page token v1\x00"))
	m.Write(body)
	return m.Sum(nil)[:16]
}

// pageSize turns a request's page_size into the number of items to
// return: defaultPageSize for zero, at most maxPageSize.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, invalidArgument("page_size must not be negative")
	case n == 0:
		return defaultPageSize, nil
	default:
		return min(int(n), maxPageSize), nil
	}
}
