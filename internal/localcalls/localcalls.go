// Package localcalls tells the SDK's "[TMPRL1104] … Workflow task
// duration exceeded 5 seconds" warning of a run whose local calls
// (workflow.external_calls: local) are being retried from one that may
// be stuck. A local call runs inside the run's workflow task, and so do
// the back-offs of its retries: while an ERP or CRM is down, each task
// lasts until the SDK heartbeats it (8 s with the default 10 s task
// timeout), and the SDK warned once per run on every outage. The
// activities note each local call that failed or took long (Ran); the
// worker's logger asks, for a long task, whether one of its run ran
// during it (HeldTask).
package localcalls

import (
	"sync"
	"time"
)

var (
	mu sync.Mutex
	// last is when a local call of each run last failed or took long;
	// told, the runs whose long task was told at info already.
	last = map[string]time.Time{}
	told = map[string]bool{}
	// pruned is when the runs not noted for forget were last dropped.
	pruned time.Time
)

// Past keep runs remembered, those not noted for forget are dropped, at
// most once every pruneEvery: an outage that holds more runs than keep
// (all noted within forget, none to drop) does not have every local
// call's failure walk all of them under the lock. The runs remembered
// are those noted in the last forget and pruneEvery.
const (
	keep       = 4096
	forget     = 10 * time.Minute
	pruneEvery = time.Minute
)

// Ran notes that a local call of run ended at at, failed or after a long
// call: its run's workflow task is held by it.
func Ran(run string, at time.Time) {
	mu.Lock()
	defer mu.Unlock()
	last[run] = at
	if len(last) > keep && at.Sub(pruned) >= pruneEvery {
		prune(at)
	}
}

// prune drops the runs not noted for forget before now (mu held).
func prune(now time.Time) {
	pruned = now
	for r, t := range last {
		if now.Sub(t) > forget {
			delete(last, r)
			delete(told, r)
		}
	}
}

// HeldTask says whether a workflow task of run that took d and ended at
// now was held by its local calls (one was noted during it), and, if so,
// whether it is the first such task of the run asked about (first: tell
// it; later ones are the same outage).
func HeldTask(run string, d time.Duration, now time.Time) (held, first bool) {
	mu.Lock()
	defer mu.Unlock()
	t, ok := last[run]
	if !ok || t.Before(now.Add(-d)) || t.After(now) {
		return false, false
	}
	first = !told[run]
	told[run] = true
	return true, first
}
