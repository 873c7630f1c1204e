package wachtclient

import "time"

// Observer is told of every attempt to call Wacht, for metrics. Its method
// is called on the request path, concurrently, and must be quick.
type Observer interface {
	// ObserveWachtRequest reports one attempt: the call's route (the
	// method and the path with its variable segments named, e.g.
	// "GET /users/{user_id}/details", never a concrete path), the HTTP
	// status, how long the attempt took and its error, nil on success.
	// status is 0 when no answer was received: err is then a transport
	// failure, or wraps [ErrRateLimited] when the request budget refused
	// to send the attempt.
	ObserveWachtRequest(route string, status int, took time.Duration, err error)
}

// nopObserver is the Observer of clients configured without one.
type nopObserver struct{}

func (nopObserver) ObserveWachtRequest(string, int, time.Duration, error) {}
