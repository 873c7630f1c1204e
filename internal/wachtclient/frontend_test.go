package wachtclient_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authsvc/authsvc/internal/wachtclient"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

func TestContractExchangeSessionToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	cookie := c.demo.SessionCookies[0]

	tok, err := c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{
		Session: cookie.Value, ForwardedFor: netip.MustParseAddr("203.0.113.9"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || time.Until(tok.Expires) <= 0 || time.Until(tok.Expires) > wachtfake.DefaultTokenLifetime {
		t.Errorf("token %d bytes, expires in %s", len(tok.Token), time.Until(tok.Expires))
	}
	if _, err := c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{Session: c.demo.DevSession, Development: true}); err != nil {
		t.Errorf("development session: %v", err)
	}

	_, err = c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{Session: "sess_unknown"})
	if !errors.Is(err, wachtclient.ErrUnauthorized) || strings.Contains(err.Error(), "sess_unknown") {
		t.Errorf("unknown session = %v, want ErrUnauthorized without the value", err)
	}
	for _, bad := range []string{"", "a;b=c", "a b", "x\n"} {
		if _, err := c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{Session: bad}); !errors.Is(err, wachtclient.ErrBadRequest) {
			t.Errorf("session %q = %v, want ErrBadRequest", bad, err)
		}
	}
}

func TestExchangeSessionTokenIsNeverRetried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newContract(t, nil)
	cookie := c.demo.SessionCookies[1].Value
	addr := netip.MustParseAddr("198.51.100.4")
	for i := range wachtfake.ExchangesPerAddressPair {
		if _, err := c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{Session: cookie, ForwardedFor: addr}); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	c.fake.ResetCalls()
	_, err := c.client.ExchangeSessionToken(ctx, wachtclient.SessionTokenRequest{Session: cookie, ForwardedFor: addr})
	if !errors.Is(err, wachtclient.ErrRateLimited) {
		t.Fatalf("over the limit = %v, want ErrRateLimited", err)
	}
	if n := c.fake.Calls(wachtfake.RouteSessionToken); n != 1 {
		t.Errorf("a 429 was sent %d times, want once", n)
	}
}

func TestSessionTokenRequestRedacted(t *testing.T) {
	t.Parallel()
	const secret = "sess_do-not-print"
	req := wachtclient.SessionTokenRequest{Session: secret, ForwardedFor: netip.MustParseAddr("192.0.2.1")}
	var b strings.Builder
	logger := slog.New(slog.NewJSONHandler(&b, nil))
	logger.Info("x", "req", req)
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req), fmt.Sprintf("%s", req), b.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("printed the session: %s", s)
		}
	}
}
