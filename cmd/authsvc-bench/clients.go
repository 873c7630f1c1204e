package main

import (
	"net/http"

	"connectrpc.com/connect"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/authsvc/authsvc/gen/authsvc/v1/authsvcv1connect"
)

// healthClient calls grpc.health.v1.Health/Check.
type healthClient = connect.Client[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse]

// clients are gRPC clients of one replica (Connect's gRPC protocol over
// cleartext HTTP/2), each pair on its own HTTP/2 connection, which
// carries many calls at once.
type clients struct {
	auth       []authsvcv1connect.AuthServiceClient
	health     []*healthClient
	transports []*http.Transport
}

func newClients(baseURL string, conns int) *clients {
	c := &clients{}
	for range conns {
		var h2c http.Protocols
		h2c.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &h2c}
		hc := &http.Client{Transport: tr}
		c.transports = append(c.transports, tr)
		c.auth = append(c.auth, authsvcv1connect.NewAuthServiceClient(hc, baseURL, connect.WithGRPC()))
		c.health = append(c.health, connect.NewClient[healthv1.HealthCheckRequest, healthv1.HealthCheckResponse](
			hc, baseURL+"/grpc.health.v1.Health/Check", connect.WithGRPC()))
	}
	return c
}

// pick returns the clients that worker w uses.
func (c *clients) pick(w int) (authsvcv1connect.AuthServiceClient, *healthClient) {
	i := w % len(c.auth)
	return c.auth[i], c.health[i]
}

func (c *clients) close() {
	for _, tr := range c.transports {
		tr.CloseIdleConnections()
	}
}
