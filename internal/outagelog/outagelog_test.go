package outagelog

import (
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
