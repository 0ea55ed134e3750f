package activities

import (
	"sync"
	"time"
)

// attemptLog throttles a worker's `step attempt failed` lines of each
// run's step: a worker whose retry policy has short back-offs
// (workflow.retry.initial_interval of milliseconds, a coefficient of 1)
// wrote thousands a minute while an ERP was down. The first
// attemptBurst failed attempts of a step are each logged; past them, at
// most one line of each failure type every attemptEvery (a type not
// logged for as long, a new one say, is logged at once), which counts
// the attempts not logged since the line before (the metrics count each
// one). A step whose failures alternate between two types (a 502, then
// a timeout) is thus throttled too: two lines a minute, not every one.
// A line that ends the run (`step failed: the run ends`) is never held
// back (observe).
//
// Activities only: it reads the clock and holds state across attempts,
// which workflow code must not.
type attemptLog struct {
	mu sync.Mutex
	m  map[string]*attemptRecord // by run and step (stepKey)
}

// attemptRecord is what attemptLog knows of one run's step.
type attemptRecord struct {
	logged    int                  // lines written
	lastSeen  time.Time            // when the last failed attempt was
	lineOf    map[string]time.Time // when the last line of each failure type was
	notLogged int                  // failed attempts since the last line, not logged
}

const (
	// attemptBurst failed attempts of a step are each logged.
	attemptBurst = 5
	// attemptEvery is, past them, the least time between two lines of
	// one failure type.
	attemptEvery = time.Minute
	// maxAttemptRecords bounds attemptLog: past it, the steps quiet for
	// attemptEvery are forgotten, and if none is, all are (a step
	// forgotten is logged again as from its first failure).
	maxAttemptRecords = 10000
)

// failed notes a failed attempt of key, of failure type errType, at now.
// log says whether to log it; notLogged is then how many failed attempts
// of key since its line before were not logged, and throttleNext that
// later ones will be throttled (this is the last line of the burst).
func (l *attemptLog) failed(key, errType string, now time.Time) (log bool, notLogged int, throttleNext bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.m[key]
	if !ok {
		l.room(now)
		rec = &attemptRecord{lineOf: map[string]time.Time{}}
		l.m[key] = rec
	}
	rec.lastSeen = now
	// (A type never logged: the zero time, long before now.)
	if rec.logged < attemptBurst || now.Sub(rec.lineOf[errType]) >= attemptEvery {
		notLogged = rec.notLogged
		rec.logged++
		rec.lineOf[errType], rec.notLogged = now, 0
		return true, notLogged, rec.logged == attemptBurst
	}
	rec.notLogged++
	return false, 0, false
}

// ended forgets key: its step succeeded, or the run ends. It returns the
// failed attempts of key not logged since its last line.
func (l *attemptLog) ended(key string) (notLogged int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rec, ok := l.m[key]; ok {
		notLogged = rec.notLogged
		delete(l.m, key)
	}
	return notLogged
}

// room makes the map, or room in it when it is full (mu held).
func (l *attemptLog) room(now time.Time) {
	if l.m == nil {
		l.m = map[string]*attemptRecord{}
	}
	if len(l.m) < maxAttemptRecords {
		return
	}
	for k, rec := range l.m {
		if now.Sub(rec.lastSeen) >= attemptEvery {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxAttemptRecords {
		l.m = map[string]*attemptRecord{}
	}
}

// size is how many steps attemptLog remembers.
func (l *attemptLog) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
