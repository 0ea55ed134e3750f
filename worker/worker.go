// Package worker assembles the Temporal worker that runs dealsync's
// workflows and activities on one task queue. `dealsync worker` and
// `dealsync dev` both use it; scale out by running more of them.
package worker

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// New returns a worker (not yet started) polling taskQueue, with the
// InvoiceDeal and RecordDealLoss workflows and all activities registered. Without a
// WorkerStopTimeout in opts, its Stop waits StopTimeout(activityTimeout)
// for the calls in flight. A run whose connection acts lacks is left to
// the task queue's other workers (connectionGuard).
func New(c client.Client, taskQueue string, acts *activities.Activities, activityTimeout time.Duration, opts sdkworker.Options) sdkworker.Worker {
	if opts.WorkerStopTimeout == 0 {
		opts.WorkerStopTimeout = StopTimeout(activityTimeout)
	}
	opts.Interceptors = append(opts.Interceptors, &heartbeats{})
	if acts != nil && acts.Connections != nil {
		opts.Interceptors = append(opts.Interceptors, &connectionGuard{connections: acts.Connections})
	}
	w := sdkworker.New(c, taskQueue, opts)
	Register(w, acts)
	return w
}

// Register adds dealsync's workflows and activities to any registry (a
// worker, a replayer or a test environment).
func Register(r interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
	r.RegisterWorkflowWithOptions(workflows.RecordDealLoss, workflow.RegisterOptions{Name: workflows.RecordDealLossName})
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}

// StopTimeout is how long a worker's Stop waits for the workflow tasks in
// hand (and then, as long again, for the local calls still running) before
// it cancels them: one attempt of a call (the activity timeout) and the
// completion of its workflow task. The SDK's default is 0: a call to the
// ERP would be cut off mid-request at every deploy. The platform's grace
// period for the process (Kubernetes' terminationGracePeriodSeconds,
// Docker's stop timeout) must be longer than twice this.
func StopTimeout(activityTimeout time.Duration) time.Duration {
	return activityTimeout + 5*time.Second
}
