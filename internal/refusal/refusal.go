// Package refusal tells the SDK's logger adapter (package app) which
// "Workflow panic" lines are a connection guard's refusal of a run
// (package worker), not a crash: the guard fails a workflow task with a
// panic so that another worker takes the run, and the SDK logs each such
// panic at error with its stack trace, hiding the panic's value from its
// logger. The guard notes each refusal here, by run, with its message.
package refusal

import "sync"

// maxKept bounds the runs noted: past it the notes start again (a run
// refused then is told at error once more).
const maxKept = 10000

var (
	mu   sync.Mutex
	runs map[string]string // run id → the guard's message
)

// Note records that a guard refused run with msg, the value it panics
// with.
func Note(run, msg string) {
	mu.Lock()
	defer mu.Unlock()
	if runs == nil || len(runs) >= maxKept {
		runs = map[string]string{}
	}
	runs[run] = msg
}

// Is says whether err, the error of the SDK's "Workflow panic" line for
// run, is a guard's refusal of run (Note): its text is the guard's
// message.
func Is(run string, err error) bool {
	if err == nil {
		return false
	}
	mu.Lock()
	defer mu.Unlock()
	msg, ok := runs[run]
	return ok && err.Error() == msg
}
