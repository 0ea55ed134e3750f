// Package worker assembles the Temporal worker that runs dealsync's
// workflows and activities on one task queue. `dealsync worker` and
// `dealsync dev` both use it; scale out by running more of them.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// New returns a worker (not yet started) polling taskQueue, with the
// InvoiceDeal workflow and all activities registered.
func New(c client.Client, taskQueue string, acts *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
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
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
}
