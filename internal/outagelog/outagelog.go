// Package outagelog says when something a process depends on stops
// answering and when it answers again, without a line for every probe
// that asks meanwhile, nor a pair of lines for every alternation of a
// dependency that flaps, and watches it in the background so that both
// are said when they happen, whether or not anything probes.
package outagelog

import (
	"context"
	"sync"
	"time"
)

// NotReady and Ready are the lines of the Temporal frontend's outages,
// the intake's and the worker's (Down's warning, Up's recovery).
const (
	NotReady = "not ready: the Temporal frontend does not answer (said when it starts, then once a minute while it lasts; " +
		"an outage that starts within a minute of this line is counted, not said)"
	Ready = "ready: the Temporal frontend answers again"
)

// NamespaceNotReady and NamespaceReady are the lines of the intake's
// namespace problems, met while the frontend answers: it does not exist
// (deleted, or temporal.namespace misspelt), or the frontend refuses the
// credentials for it.
const (
	NamespaceNotReady = "not ready: the Temporal namespace cannot be used (said when it starts, then once a minute while it lasts; " +
		"a problem that starts within a minute of this line is counted, not said)"
	NamespaceReady = "ready: the Temporal namespace can be used again"
)

// StoreNotReady and StoreReady are the lines of the intake's outages of
// Temporal's database (PostgreSQL, MySQL, Cassandra) or history service,
// met while the frontend and the namespace answer: the frontend's health
// check and the namespace's read (which Temporal answers from its cache)
// pass, but no run can be started. A cluster node that dies makes one for
// a few seconds, while its history shards move to the other nodes.
const (
	StoreNotReady = "not ready: the Temporal frontend answers, but Temporal cannot read runs (its database, or its history service, is down, " +
		"or the history shards are moving to other hosts): runs cannot be started, webhooks are answered 503 " +
		"(said when it starts, then once a minute while it lasts; an outage that starts within a minute of this line is counted, not said)"
	StoreReady = "ready: Temporal reads runs again"
)

// Attrs is a line's attributes: attrs, then unsaid (Down's and Up's
// count of outages not said) as brief_outages_not_logged when not 0.
func Attrs(unsaid int, attrs ...any) []any {
	if unsaid > 0 {
		attrs = append(attrs, "brief_outages_not_logged", unsaid)
	}
	return attrs
}

// Log follows one dependency's outages. Its zero value says at most one
// warning a minute; Every sets another interval. Now is its clock
// (time.Now when nil), for tests. It is safe for concurrent use.
//
// Each check reports its result with the time it started (Start): checks
// may overlap (a probe's and Watch's), and a result that started before
// the last one recorded is ignored, so that a slow failed check ending
// after a newer success does not say an outage that is over.
type Log struct {
	Every time.Duration
	Now   func() time.Time

	mu      sync.Mutex
	down    bool
	said    bool      // the current or last outage was warned of
	last    time.Time // the last warning
	latest  time.Time // the start of the newest check recorded
	checked time.Time // the last check reported (Down, Up) or made by Watch
	// unsaid counts the outages not warned of since the last warning:
	// begun within Every of it (a dependency that flaps).
	unsaid int
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Log) every() time.Duration {
	if l.Every <= 0 {
		return time.Minute
	}
	return l.Every
}

// Start is the time a check starts, to report with its result (Down, Up).
func (l *Log) Start() time.Time { return l.now() }

// record notes a check started at started, and says whether it is to be
// counted: not when a check that started later has been recorded. l.mu
// is held.
func (l *Log) record(started time.Time) bool {
	if started.Before(l.latest) {
		return false
	}
	l.latest = started
	l.checked = l.now()
	return true
}

// Down reports a check started at started (Start) that failed. warn runs
// when it starts an outage, then at most once every Every while the
// outage lasts; an outage that starts within Every of the last warning
// (a dependency that flaps) is not warned of, but counted, and the count
// (unsaid, 0 for none) is given to the next warning or recovery said.
func (l *Log) Down(started time.Time, warn func(unsaid int)) {
	l.mu.Lock()
	if !l.record(started) {
		l.mu.Unlock()
		return
	}
	now := l.now()
	due := l.last.IsZero() || now.Sub(l.last) >= l.every()
	say, unsaid := false, 0
	switch {
	case due:
		if l.down && !l.said {
			l.unsaid-- // the outage under way, counted when it began, is said now
		}
		say, unsaid = true, l.unsaid
		l.last, l.said, l.unsaid = now, true, 0
	case !l.down:
		l.said = false
		l.unsaid++
	}
	l.down = true
	l.mu.Unlock()
	if say {
		warn(unsaid)
	}
}

// Up reports a check started at started (Start) that passed. recovered
// runs when it ends an outage that was warned of, or, once Every has
// passed since the last warning, for the outages that were not (unsaid,
// their count: 0 for none).
func (l *Log) Up(started time.Time, recovered func(unsaid int)) {
	l.mu.Lock()
	if !l.record(started) {
		l.mu.Unlock()
		return
	}
	say, unsaid := false, 0
	switch {
	case l.down && l.said:
		say = true
		l.said = false
	case l.unsaid > 0 && l.now().Sub(l.last) >= l.every():
		// The next outage is warned of at once: a dependency that flaps
		// on and on is warned of once every Every.
		say, unsaid = true, l.unsaid
		l.unsaid = 0
	}
	l.down = false
	l.mu.Unlock()
	if say {
		recovered(unsaid)
	}
}

// Watch calls check (which reports to l with Down or Up) every interval
// until ctx ends, so that an outage is said when it starts and when it
// ends, within an interval, whether or not anything else checks: a
// process that nobody probes, or probes rarely, logged its outages late
// or never. A check reported meanwhile (a probe's) stands for the
// watch's own: probes that ask at least every interval leave the watch
// nothing to do. One check at a time, each given at most timeout; a check
// under way when ctx ends finishes (its context is not cut short, so a
// stop does not read as an outage), and Watch then returns.
func (l *Log) Watch(ctx context.Context, interval, timeout time.Duration, check func(context.Context)) {
	for {
		wait := l.due(interval)
		if wait <= 0 {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			check(cctx)
			cancel()
			l.mu.Lock()
			l.checked = l.now()
			l.mu.Unlock()
			wait = interval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// due is how long the next check of a Watch every interval may wait: the
// interval less the time since the last check (none: 0, now).
func (l *Log) due(interval time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked.IsZero() {
		return 0
	}
	return interval - l.now().Sub(l.checked)
}
