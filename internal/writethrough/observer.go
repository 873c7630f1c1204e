package writethrough

// Observer is told of every cache entry an event was applied to, for
// metrics. Its method is called on the webhook's request path,
// concurrently, and must be quick.
type Observer interface {
	// ObserveWriteThrough reports one entry by the event's type and the
	// result, one of the Result constants.
	ObserveWriteThrough(eventType, result string)
}

// nopObserver is the Observer of appliers configured without one.
type nopObserver struct{}

func (nopObserver) ObserveWriteThrough(string, string) {}
