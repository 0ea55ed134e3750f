package worker

import (
	"fmt"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// connectionGuard keeps a worker from taking on a run whose connection it
// does not have (its config is older than the intake's, or differs).
// Such a run's steps could only fail here, and a run whose workflow task
// completes on a worker stays with it (Temporal's sticky queue, and with
// external_calls: local its steps run inside that worker's workflow
// tasks) until that worker stops. So a new run's first workflow task on
// this worker fails before any of the run's code runs: the SDK reports
// the first failure (a WorkflowTaskFailed event naming the connection,
// in the Web UI) and lets later ones time out, and the server gives
// each new attempt to any worker polling the task queue, so the run goes
// on, without a gap in its history, on one that has the connection.
// Runs of a connection no worker has wait so, a workflow-task timeout
// per attempt (10 s, and from the fourth attempt on the server's growing
// backoff, up to 10 minutes), until a worker has it or the run times out.
//
// It is the worker's decision, not the workflow's: it adds no event and
// no command, so replays are unchanged whatever the worker's config.
type connectionGuard struct {
	interceptor.WorkerInterceptorBase
	connections activities.Resolver
}

func (g *connectionGuard) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &guardedWorkflow{guard: g}
	i.Next = next
	return i
}

type guardedWorkflow struct {
	interceptor.WorkflowInboundInterceptorBase
	guard *connectionGuard
}

// ExecuteWorkflow runs when this worker builds a run's state: its first
// workflow task here, or a replay after the run left the worker's cache.
// Only an InvoiceDeal run that no worker has taken on yet (no workflow
// task of it completed: not replaying) is refused: a run under way
// replays wherever it lands, as before, so that a run whose connection
// was removed on purpose (a lingering run past its invoice) still ends,
// and a query or a replay of a closed run answers on any worker.
// RecordDealLoss runs, whose one call reads Temporal, need no connection.
func (i *guardedWorkflow) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	if len(in.Args) > 0 && !workflow.IsReplaying(ctx) && workflow.GetInfo(ctx).WorkflowType.Name == workflows.InvoiceDealName {
		if run, ok := in.Args[0].(workflows.InvoiceDealInput); ok && run.Connection != "" {
			if _, has := i.guard.connections.Resolve(run.Connection); !has {
				msg := fmt.Sprintf("connection %q is not configured on this worker: its workflow task fails here so that a worker of the task queue that has the connection takes the run (give every worker the intakes' config: dealsync config check)", run.Connection)
				// A panic is how a workflow task fails without ending
				// the run (the SDK's default BlockWorkflow policy); the
				// SDK logs it, with the message, at each attempt here.
				panic(msg)
			}
		}
	}
	return i.Next.ExecuteWorkflow(ctx, in)
}
