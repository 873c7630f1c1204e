package budget

import "time"

// Observer is told of the budget's events, for metrics. Its methods are
// called on the request path, concurrently, and must be quick.
type Observer interface {
	// ObserveBudgetAdmitted reports a token spent by class after waiting.
	ObserveBudgetAdmitted(class Class, waited time.Duration)
	// ObserveBudgetRefused reports a call refused for reason after
	// waiting.
	ObserveBudgetRefused(class Class, reason string, waited time.Duration)
	// ObserveBudgetLease reports a lease request: tokens asked for and
	// granted, err if the ledger failed.
	ObserveBudgetLease(requested, granted int, err error)
}

// nopObserver is the Observer of budgets configured without one.
type nopObserver struct{}

func (nopObserver) ObserveBudgetAdmitted(Class, time.Duration)        {}
func (nopObserver) ObserveBudgetRefused(Class, string, time.Duration) {}
func (nopObserver) ObserveBudgetLease(int, int, error)                {}
