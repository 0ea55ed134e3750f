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
