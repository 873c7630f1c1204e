package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	authsvcv1 "github.com/authsvc/authsvc/gen/authsvc/v1"
	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
	"github.com/authsvc/authsvc/internal/app"
	"github.com/authsvc/authsvc/internal/wachtfake"
)

// TestDevChangeReachesGetUserWithoutWacht wires dev as serve does: a user
// changed in the emulator is read through GetUser from the webhook the
// emulator delivered, without a Backend API call.
func TestDevChangeReachesGetUserWithoutWacht(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.DiscardHandler)
	emu, err := startEmulator(logger)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.close()
	cfg, err := loadConfig(modeDev, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	emu.configure(cfg)
	a, err := app.New(cfg.Config, app.Deps{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: emu.wrap(a.Handler()), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	if err := emu.deliverWebhooks(ln.Addr().String(), false); err != nil {
		t.Fatal(err)
	}

	client := authsvcv1connect.NewAuthServiceClient(http.DefaultClient, "http://"+ln.Addr().String())
	ada := emu.demo.Users[0]
	firstName := func() string {
		t.Helper()
		res, err := client.GetUser(t.Context(), connect.NewRequest(&authsvcv1.GetUserRequest{UserId: ada.ID}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetUser().GetFirstName()
	}
	if got := firstName(); got != ada.FirstName {
		t.Fatalf("GetUser: %q, want %q", got, ada.FirstName)
	}
	calls := emu.fake.Calls(wachtfake.RouteUserDetails)
	if err := emu.fake.UpdateUser(ada.ID, func(u *wachtfake.User) { u.FirstName = "Augusta" }); err != nil {
		t.Fatal(err)
	}
	if got := firstName(); got != "Augusta" {
		t.Errorf("GetUser after the change: %q, want Augusta", got)
	}
	if got := emu.fake.Calls(wachtfake.RouteUserDetails); got != calls {
		t.Errorf("Backend API user reads went from %d to %d: the change should have come by webhook", calls, got)
	}
	if st := emu.fake.WebhookStats(); st.Delivered != 1 || st.Failed != 0 {
		t.Errorf("webhook deliveries %+v, want the one user.updated accepted", st)
	}
}
