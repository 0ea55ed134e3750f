package outagelog

import (
	"context"
	"testing"
	"time"
)

// clock is a Log's clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newLog(every time.Duration) (*Log, *clock) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &Log{Every: every, Now: c.now}, c
}

// recorder counts a Log's lines, and the unsaid count of the last.
type recorder struct{ warned, recovered, unsaid int }

func (r *recorder) warn(n int) { r.warned++; r.unsaid = n }
func (r *recorder) up(n int)   { r.recovered++; r.unsaid = n }

// An outage is said when it starts, again after Every while it lasts, and
// when it ends.
func TestLog(t *testing.T) {
	l, c := newLog(time.Minute)
	var r recorder
	l.Up(l.Start(), r.up)
	if r.recovered != 0 {
		t.Fatalf("a recovery without an outage was said")
	}
	for range 3 {
		l.Down(l.Start(), r.warn)
		c.add(time.Second)
	}
	if r.warned != 1 {
		t.Fatalf("%d warnings for one outage within Every, want 1", r.warned)
	}
	l.Up(l.Start(), r.up)
	l.Up(l.Start(), r.up)
	if r.recovered != 1 {
		t.Fatalf("%d recoveries, want 1", r.recovered)
	}
	c.add(time.Minute)
	l.Down(l.Start(), r.warn)
	if r.warned != 2 {
		t.Fatalf("a new outage Every after the last warning was not said (%d warnings)", r.warned)
	}
	c.add(time.Minute)
	l.Down(l.Start(), r.warn)
	if r.warned != 3 || r.unsaid != 0 {
		t.Fatalf("an outage lasting past Every was not said again, or said with %d unsaid (%d warnings)", r.unsaid, r.warned)
	}
}

// A frontend that flaps (down, up, down, … every second) was said as a
// warning and a recovery at each alternation. An outage that starts
// within Every of the last warning is counted, not said; the count goes
// with the next line said: a recovery once Every has passed, or the
// next warning.
func TestLogOfAFlappingDependency(t *testing.T) {
	l, c := newLog(time.Minute)
	var r recorder
	for range 10 { // 20 s of flapping
		l.Down(l.Start(), r.warn)
		c.add(time.Second)
		l.Up(l.Start(), r.up)
		c.add(time.Second)
	}
	if r.warned != 1 || r.recovered != 1 {
		t.Fatalf("10 outages within a minute: %d warnings and %d recoveries said, want 1 and 1", r.warned, r.recovered)
	}
	c.add(40 * time.Second) // a minute since the warning; the frontend answers
	l.Up(l.Start(), r.up)
	if r.recovered != 2 || r.unsaid != 9 {
		t.Fatalf("a minute after the warning: %d recoveries, the last with %d unsaid outages; want 2, with 9", r.recovered, r.unsaid)
	}
	l.Up(l.Start(), r.up)
	if r.recovered != 2 {
		t.Fatalf("the unsaid outages said twice")
	}
	// Flapping again: the next outage is warned of at once, the one
	// after counted and given to the warning of an outage that lasts.
	l.Down(l.Start(), r.warn)
	l.Up(l.Start(), r.up)
	c.add(time.Second)
	l.Down(l.Start(), r.warn)
	l.Up(l.Start(), r.up)
	c.add(time.Second)
	l.Down(l.Start(), r.warn)
	if r.warned != 2 || r.recovered != 3 {
		t.Fatalf("%d warnings and %d recoveries, want 2 and 3", r.warned, r.recovered)
	}
	c.add(time.Minute)
	l.Down(l.Start(), r.warn) // still down a minute on
	if r.warned != 3 || r.unsaid != 1 {
		t.Fatalf("an outage lasting past Every: %d warnings, the last with %d unsaid; want 3, with 1 (the one before it)", r.warned, r.unsaid)
	}
}

// A probe's check and Watch's can overlap: a slow failed check that
// ends after a newer check's success said an outage that was over. A
// result older than the last recorded is ignored.
func TestLogIgnoresAnOlderResult(t *testing.T) {
	l, c := newLog(time.Minute)
	var r recorder
	slow := l.Start() // a check that waits out its timeout
	c.add(time.Second)
	l.Up(l.Start(), r.up) // a newer check, answered at once
	c.add(4 * time.Second)
	l.Down(slow, r.warn)
	if r.warned != 0 {
		t.Fatalf("a failed check older than the last success said an outage")
	}
	l.Down(l.Start(), r.warn)
	slow = l.Start()
	c.add(time.Second)
	l.Down(l.Start(), r.warn)
	l.Up(slow, r.up) // older than the last failure
	if r.warned != 1 || r.recovered != 0 {
		t.Fatalf("%d warnings and %d recoveries, want 1 and 0: a success older than the last failure ended the outage", r.warned, r.recovered)
	}
}

// Watch checks at once, then again every interval without anything else
// asking, and stops when its context ends.
func TestWatchChecksWithoutAProbe(t *testing.T) {
	var l Log
	checks := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Watch(ctx, time.Millisecond, time.Second, func(ctx context.Context) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("a check without a deadline")
			}
			l.Down(l.Start(), func(int) {})
			select {
			case checks <- struct{}{}:
			default:
			}
		})
	}()
	for range 3 {
		<-checks // a test's own deadline bounds the wait
	}
	cancel()
	<-done
}

// A check reported (a probe's Down or Up) stands for the watch's own for
// an interval: probes that ask often leave the watch nothing to do.
func TestWatchWaitsOutAReportedCheck(t *testing.T) {
	var l Log
	if d := l.due(time.Hour); d > 0 {
		t.Errorf("never checked: due in %v, want now", d)
	}
	l.Up(l.Start(), func(int) {})
	if d := l.due(time.Hour); d < 59*time.Minute {
		t.Errorf("just checked (Up): due in %v, want about an hour", d)
	}
	var m Log
	m.Down(m.Start(), func(int) {})
	if d := m.due(time.Hour); d < 59*time.Minute {
		t.Errorf("just checked (Down): due in %v, want about an hour", d)
	}
}
