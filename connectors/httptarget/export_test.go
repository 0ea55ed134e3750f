package httptarget

import "time"

// SetConflictWaits replaces the waits after a 409 and returns the old ones.
func SetConflictWaits(w []time.Duration) []time.Duration {
	old := conflictWaits
	conflictWaits = w
	return old
}

// LinkNext is linkNext: the rel="next" target of the Link headers of h.
var LinkNext = linkNext

// KeepsCredential is keepsCredential: whether a redirect from first to to
// may carry the auth header.
var KeepsCredential = keepsCredential

// SetAfter replaces the timer of the waits after a 409 and returns a
// function that restores it.
func SetAfter(f func(time.Duration) <-chan time.Time) (restore func()) {
	old := after
	after = f
	return func() { after = old }
}
