// Package outagelog says when something a process depends on stops
// answering and when it answers again, without a line for every probe
// that asks meanwhile.
package outagelog

import (
	"sync"
	"time"
)

// Log follows one dependency's outages. Its zero value repeats a warning
// once a minute; Every sets another interval. It is safe for concurrent
// use.
type Log struct {
	Every time.Duration

	mu   sync.Mutex
	down bool
	last time.Time
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
	l.mu.Unlock()
	if was {
		recovered()
	}
}
