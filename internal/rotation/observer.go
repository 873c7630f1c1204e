package rotation

// Observer is told how each revocation attempt of the worker ended, for
// metrics. Its method must be quick.
type Observer interface {
	// ObserveRevocation reports one attempt: [WorkerRevoked],
	// [WorkerRetry] or [WorkerFailed].
	ObserveRevocation(outcome string)
}

// nopObserver is the Observer of rotators configured without one.
type nopObserver struct{}

func (nopObserver) ObserveRevocation(string) {}
