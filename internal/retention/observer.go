package retention

// Observer is told what each run deleted, for metrics. Its method must be
// quick.
type Observer interface {
	// ObserveDeleted reports the rows of table (one of the Table
	// constants) that one run deleted.
	ObserveDeleted(table string, deleted int64)
}

// nopObserver is the Observer of jobs configured without one.
type nopObserver struct{}

func (nopObserver) ObserveDeleted(string, int64) {}
