package worker

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// A step run as an activity with a HeartbeatTimeout is heartbeated while
// it runs, with nothing of its own code, so that Temporal finds a dead
// worker out within that timeout; a local activity is not.
func TestActivitiesAreHeartbeatedWhileTheyRun(t *testing.T) {
	for _, local := range []bool{false, true} {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&heartbeats{}}})
		beat := make(chan struct{}, 1)
		env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
			select {
			case beat <- struct{}{}:
			default:
			}
		})
		env.SetTestTimeout(30 * time.Second)
		// The call waits for a heartbeat: an activity's comes within a
		// third of its 300 ms timeout, so the bound is reached only when
		// none comes (a failure for it; for the local one, what it shows:
		// ten times as long without one).
		call := func(ctx context.Context) (bool, error) {
			select {
			case <-beat:
				return true, nil
			case <-time.After(time.Second):
				return false, nil
			}
		}
		env.RegisterActivityWithOptions(call, activity.RegisterOptions{Name: "call"})
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (bool, error) {
			var beaten bool
			if local {
				ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
				return beaten, workflow.ExecuteLocalActivity(ctx, "call").Get(ctx, &beaten)
			}
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: 300 * time.Millisecond,
				RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
			return beaten, workflow.ExecuteActivity(ctx, "call").Get(ctx, &beaten)
		}, workflow.RegisterOptions{Name: "wf"})
		env.ExecuteWorkflow("wf")
		var beaten bool
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("local %v: %v", local, err)
		}
		if err := env.GetWorkflowResult(&beaten); err != nil {
			t.Fatal(err)
		}
		if beaten == local {
			t.Errorf("local %v: heartbeated %v, want %v", local, beaten, !local)
		}
	}
}
