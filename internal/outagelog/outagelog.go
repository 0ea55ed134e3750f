// Package outagelog says when something a process depends on stops
// answering and when it answers again, without a line for every probe
// that asks meanwhile, and watches it in the background so that both are
// said when they happen, whether or not anything probes.
package outagelog

import (
	"context"
	"sync"
	"time"
)

// Log follows one dependency's outages. Its zero value repeats a warning
// once a minute; Every sets another interval. It is safe for concurrent
// use.
type Log struct {
	Every time.Duration

	mu      sync.Mutex
	down    bool
	last    time.Time // the last warning
	checked time.Time // the last check reported (Down, Up) or made by Watch
}

// Down reports a check that failed: warn runs when it starts an outage,
// then at most once every Every while the outage lasts.
func (l *Log) Down(warn func()) {
	every := l.Every
	if every <= 0 {
		every = time.Minute
	}
	l.mu.Lock()
	now := time.Now()
	say := !l.down || now.Sub(l.last) >= every
	l.down = true
	l.checked = now
	if say {
		l.last = now
	}
	l.mu.Unlock()
	if say {
		warn()
	}
}

// Up reports a check that passed: recovered runs when it ends an outage.
func (l *Log) Up(recovered func()) {
	l.mu.Lock()
	was := l.down
	l.down = false
	l.checked = time.Now()
	l.mu.Unlock()
	if was {
		recovered()
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
			l.checked = time.Now()
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
	return interval - time.Since(l.checked)
}
