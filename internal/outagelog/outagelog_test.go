package outagelog

import (
	"context"
	"testing"
	"time"
)

// An outage is said when it starts, again after Every while it lasts, and
// when it ends; a new outage is said at once, however soon after the last.
func TestLog(t *testing.T) {
	var l Log
	l.Every = time.Hour
	warned, recovered := 0, 0
	warn, up := func() { warned++ }, func() { recovered++ }
	l.Up(up)
	if recovered != 0 {
		t.Fatalf("a recovery without an outage was said")
	}
	for range 3 {
		l.Down(warn)
	}
	if warned != 1 {
		t.Fatalf("%d warnings for one outage within Every, want 1", warned)
	}
	l.Up(up)
	l.Up(up)
	if recovered != 1 {
		t.Fatalf("%d recoveries, want 1", recovered)
	}
	l.Down(warn)
	if warned != 2 {
		t.Fatalf("a new outage soon after the last was not said (%d warnings)", warned)
	}
	l.Every = time.Nanosecond
	time.Sleep(time.Millisecond)
	l.Down(warn)
	if warned != 3 {
		t.Fatalf("an outage lasting past Every was not said again (%d warnings)", warned)
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
			l.Down(func() {})
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
	l.Up(func() {})
	if d := l.due(time.Hour); d < 59*time.Minute {
		t.Errorf("just checked (Up): due in %v, want about an hour", d)
	}
	var m Log
	m.Down(func() {})
	if d := m.due(time.Hour); d < 59*time.Minute {
		t.Errorf("just checked (Down): due in %v, want about an hour", d)
	}
}
