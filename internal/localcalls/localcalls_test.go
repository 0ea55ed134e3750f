package localcalls

import (
	"fmt"
	"testing"
	"time"
)

// Journey: with the ERP down and more runs retrying their local calls
// than keep, every failed call walked all the runs remembered, under the
// lock every activity's end takes: none was old enough to drop, so each
// call walked them again. The runs not noted for forget are dropped at
// most once every pruneEvery; a run noted once, long ago, is still
// forgotten then.
func TestRanPrunesAtMostOncePerInterval(t *testing.T) {
	mu.Lock()
	last, told, pruned = map[string]time.Time{}, map[string]bool{}, time.Time{}
	mu.Unlock()
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	stale := t0.Add(-forget - time.Second)
	Ran("stale-1", stale)
	for i := range keep {
		Ran(fmt.Sprintf("run-%d", i), t0) // the last one passes keep: pruned
	}
	if _, ok := last["stale-1"]; ok || len(last) != keep {
		t.Fatalf("past keep, a run not noted for %s is dropped: %d runs remembered, stale-1 among them: %v", forget, len(last), ok)
	}
	Ran("stale-2", stale)
	Ran("run-more", t0.Add(pruneEvery-time.Second))
	if _, ok := last["stale-2"]; !ok {
		t.Fatalf("the runs were walked again %s after the last time", pruneEvery-time.Second)
	}
	Ran("run-later", t0.Add(pruneEvery))
	if _, ok := last["stale-2"]; ok {
		t.Fatalf("%s after the last walk, a run not noted for %s is still remembered", pruneEvery, forget)
	}
	if held, first := HeldTask("run-later", 8*time.Second, t0.Add(pruneEvery+time.Second)); !held || !first {
		t.Errorf("a run noted during its task: held %v, first %v", held, first)
	}
}
