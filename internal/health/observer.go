package health

// Observer is told of each change of readiness, for metrics. Its method is
// called one call at a time, in order, and must be quick.
type Observer interface {
	// ObserveReadiness reports the new value of [Checker.Serving] each
	// time it changes, by a probe or by [Checker.Shutdown]; the first
	// report is the first SERVING.
	ObserveReadiness(serving bool)
}

// nopObserver is the Observer of checkers configured without one.
type nopObserver struct{}

func (nopObserver) ObserveReadiness(bool) {}
