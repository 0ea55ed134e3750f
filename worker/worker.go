// Package worker assembles the Temporal worker that runs dealsync's
// workflows and activities on one task queue. `dealsync worker` and
// `dealsync dev` both use it; scale out by running more of them.
package worker

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// New returns a worker (not yet started) polling taskQueue, with the
// InvoiceDeal and RecordDealLoss workflows and all activities registered. Without a
// WorkerStopTimeout in opts, its Stop waits StopTimeout(activityTimeout)
// for the calls in flight. A run whose connection acts lacks is left to
// the task queue's other workers (connectionGuard); a run that fails is
// logged at error (runEnds), with log: the logger of c's options (nil:
// the workflow's logger, whose Attempt is the workflow's).
func New(c client.Client, taskQueue string, acts *activities.Activities, activityTimeout time.Duration, opts sdkworker.Options, log sdklog.Logger) sdkworker.Worker {
	opts = withDefaults(opts, activityTimeout)
	opts.Interceptors = append(opts.Interceptors, &heartbeats{}, &runEnds{log: log})
	if acts != nil && acts.Connections != nil {
		opts.Interceptors = append(opts.Interceptors, &connectionGuard{connections: acts.Connections})
	}
	w := sdkworker.New(c, taskQueue, opts)
	Register(w, acts)
	return w
}

// withDefaults is opts with dealsync's defaults where opts leaves them
// unset: the stop timeout (StopTimeout), the workflow task pollers
// (WorkflowTaskPollers) and, for a versioned worker (worker deployments),
// its runs pinned to its build (Pinned).
func withDefaults(opts sdkworker.Options, activityTimeout time.Duration) sdkworker.Options {
	if opts.DeploymentOptions.UseVersioning && opts.DeploymentOptions.DefaultVersioningBehavior == workflow.VersioningBehaviorUnspecified {
		opts.DeploymentOptions.DefaultVersioningBehavior = Pinned
	}
	if opts.WorkerStopTimeout == 0 {
		opts.WorkerStopTimeout = StopTimeout(activityTimeout)
	}
	if opts.WorkflowTaskPollerBehavior == nil && opts.MaxConcurrentWorkflowTaskPollers == 0 {
		opts.WorkflowTaskPollerBehavior = WorkflowTaskPollers
	}
	return opts
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

// Pinned is how a versioned worker's runs are versioned: each run stays on
// the build (worker deployment version) that started it, to its end,
// whichever build is made current meanwhile; only that build's workers
// take its workflow tasks. A run waits minutes (settle time, linger) or a
// day (the retries' back-off) between its tasks: taken over by another
// build, it may not replay, and a build older than the one that started
// it fails it (docs/limitations.md). AutoUpgrade would move a waiting run
// to the current build at its next task: the very hazard. The price: a
// build's workers must keep running until its runs end (docs/operations.md,
// rolling upgrades).
const Pinned = workflow.VersioningBehaviorPinned

// DeploymentOptions are the worker deployment options of a worker of
// build buildID of deployment name (config's worker.deployment): none
// (an unversioned worker) when name is "".
func DeploymentOptions(name, buildID string) sdkworker.DeploymentOptions {
	if name == "" {
		return sdkworker.DeploymentOptions{}
	}
	return sdkworker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   sdkworker.WorkerDeploymentVersion{DeploymentName: name, BuildID: buildID},
		DefaultVersioningBehavior: Pinned,
	}
}

// WorkflowTaskPollers is how a worker polls for workflow tasks: pollers of
// the task queue and pollers of its own sticky queue, each kept apart and
// scaled by the server's hints. The SDK's default (two pollers, each
// choosing a queue per poll) can move every poll to the sticky queue on a
// stale backlog hint: after a Temporal restart, a journey measured a
// worker polling only its sticky queue for 80 s while new runs waited on
// the task queue. Apart, the task queue always has a poller.
var WorkflowTaskPollers = sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{
	InitialNumberOfPollers: 2, MinimumNumberOfPollers: 1, MaximumNumberOfPollers: 8,
})

// StopTimeout is how long a worker's Stop waits for the workflow tasks in
// hand (then as long again for the local calls still running, and, with
// external_calls: activity, as long a third time for the activities)
// before it cancels them: one attempt of a call (the activity timeout) and
// the completion of its workflow task. The SDK's default is 0: a call to
// the ERP would be cut off mid-request at every deploy. The platform's
// grace period for the process (Kubernetes' terminationGracePeriodSeconds,
// Docker's stop timeout) must be longer than twice this (three times with
// external_calls: activity).
func StopTimeout(activityTimeout time.Duration) time.Duration {
	return activityTimeout + 5*time.Second
}
