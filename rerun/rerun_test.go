package rerun

import "testing"

// The selection is the operators' filter language: what each option
// selects, narrowed by the user's filter in parentheses (an OR of theirs
// cannot widen it).
func TestFilter(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{TaskQueue: "dealsync"}, `TaskQueue = "dealsync" AND (ExecutionStatus = "Failed" AND SyncStatus = "failed")`},
		{Options{TaskQueue: "dealsync", TimedOut: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "failed") OR (ExecutionStatus = "TimedOut" AND SyncStatus = "pending"))`},
		{Options{TaskQueue: "dealsync", WriteBack: true, TimedOut: true}, `TaskQueue = "dealsync" AND (ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed")`},
		{Options{TaskQueue: "q", Query: `Connection = "a" OR Connection = "b"`}, `TaskQueue = "q" AND (ExecutionStatus = "Failed" AND SyncStatus = "failed") AND (Connection = "a" OR Connection = "b")`},
	} {
		if got := c.o.Filter(); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.o, got, c.want)
		}
	}
}
