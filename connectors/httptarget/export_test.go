package httptarget

import "time"

// SetConflictWaits replaces the waits after a 409 and returns the old ones.
func SetConflictWaits(w []time.Duration) []time.Duration {
	old := conflictWaits
	conflictWaits = w
	return old
}
