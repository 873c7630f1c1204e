package webhook

// Observer is told of every request the handler answers, for metrics. Its
// method is called on the request path, concurrently, and must be quick.
type Observer interface {
	// ObserveWebhook reports one request by event type (a type the
	// handler acts on, or [EventTypeOther]) and outcome (one of the
	// Outcome constants).
	ObserveWebhook(eventType, outcome string)
}

// nopObserver is the Observer of handlers configured without one.
type nopObserver struct{}

func (nopObserver) ObserveWebhook(string, string) {}
