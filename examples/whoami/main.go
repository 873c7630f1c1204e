// Command whoami is a service protected by authsvc through authsvcmw: it
// answers GET /whoami with the caller's user and session, and refuses
// requests without a valid Wacht credential.
//
//	AUTHSVC_URL=http://127.0.0.1:8080 go run ./examples/whoami
//	curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8090/whoami
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/authsvc/authsvc/authsvcmw"
)

func main() {
	addr := envOr("WHOAMI_ADDR", "127.0.0.1:8090")
	mw := authsvcmw.New(envOr("AUTHSVC_URL", "http://127.0.0.1:8080"), authsvcmw.CallerToken(os.Getenv("AUTHSVC_TOKEN")))
	srv := &http.Server{Addr: addr, Handler: mw.Wrap(newMux()), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("whoami on http://%s/whoami", addr)
	log.Fatal(srv.ListenAndServe())
}

// newMux serves the service's own routes; authsvcmw has already
// authenticated every request that reaches them.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		id, _ := authsvcmw.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"user_id":    id.UserID(),
			"session_id": id.Session.GetSessionId(),
			"credential": id.Credential.String(),
		})
	})
	return mux
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
