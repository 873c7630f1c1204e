package callerlimit

// Observer is told of each load a caller asked for, by caller name, and of
// the caller's loads in flight, for metrics. Its methods are called on the
// request path, concurrently, and must be quick.
type Observer interface {
	// ObserveCallerLoad reports one load the caller asked for and
	// whether it was admitted.
	ObserveCallerLoad(caller string, outcome Outcome)
	// ObserveCallerLoadsInFlight reports a change, by delta, of the
	// caller's loads running.
	ObserveCallerLoadsInFlight(caller string, delta int)
}

// nopObserver is the Observer of limiters configured without one.
type nopObserver struct{}

func (nopObserver) ObserveCallerLoad(string, Outcome)      {}
func (nopObserver) ObserveCallerLoadsInFlight(string, int) {}
