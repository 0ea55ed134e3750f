package worker

import (
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"
)

// A worker polls its task queue and its sticky queue with pollers kept
// apart (WorkflowTaskPollers) unless the caller chose its pollers, and
// waits StopTimeout for the calls in hand unless told otherwise.
func TestWorkerDefaults(t *testing.T) {
	got := withDefaults(sdkworker.Options{}, 30*time.Second)
	if got.WorkflowTaskPollerBehavior != WorkflowTaskPollers {
		t.Errorf("workflow task pollers %#v, want WorkflowTaskPollers", got.WorkflowTaskPollerBehavior)
	}
	if got.WorkerStopTimeout != 35*time.Second {
		t.Errorf("stop timeout %v, want 35s", got.WorkerStopTimeout)
	}
	chosen := withDefaults(sdkworker.Options{MaxConcurrentWorkflowTaskPollers: 4, WorkerStopTimeout: time.Second}, 30*time.Second)
	if chosen.WorkflowTaskPollerBehavior != nil || chosen.MaxConcurrentWorkflowTaskPollers != 4 || chosen.WorkerStopTimeout != time.Second {
		t.Errorf("the caller's choices were overridden: %#v", chosen)
	}
}
