package worker

import (
	"fmt"
	"sync"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/internal/refusal"
	"github.com/dealsync/dealsync/workflows"
)

// connectionGuard keeps a worker from taking on a run whose connection it
// does not have (its config is older than the intake's, or differs).
// Such a run's steps could only fail here, and a run whose workflow task
// completes on a worker stays with it (Temporal's sticky queue, and with
// external_calls: local its steps run inside that worker's workflow
// tasks) until that worker stops. So a new run's workflow task (one of
// a run no worker has taken on yet) fails here before any of the run's
// code runs: the SDK reports
// the first failure (a WorkflowTaskFailed event naming the connection,
// in the Web UI) and lets later ones time out, and the server gives
// each new attempt to any worker polling the task queue, so the run goes
// on, without a gap in its history, on one that has the connection.
// Each refusal after the first costs the run a workflow-task timeout (10
// s), longer from its fourth attempt (Temporal's backoff, up to 10
// minutes); a run whose steps are activities is refused at most
// maxRefusals times by a worker.
//
// It is the worker's decision, not the workflow's: it adds no event and
// no command, so replays are unchanged whatever the worker's config.
type connectionGuard struct {
	interceptor.WorkerInterceptorBase
	connections activities.Resolver

	mu      sync.Mutex
	refused map[string]int  // run id → the times this worker refused it
	warned  map[string]bool // run ids whose refusal this worker logged
}

// maxRefusals is how often a worker refuses one run whose steps are
// activities (external_calls: activity). Temporal lengthens a failing
// workflow task's timeout from its fourth attempt on (5 s, doubling, up
// to 10 minutes), and the SDK reports only the first failure, so a run
// refused again and again would wait that long on this worker even once
// another has its connection. Past maxRefusals this worker takes such a
// run: its workflow code needs no connection, and its steps go to any
// worker of the task queue (those that lack it fail ConnectionUnavailable
// and are retried elsewhere). A run whose steps are local calls is
// refused every time: taken, it would stay here (sticky) with its steps
// failing until this worker has the connection or stops, for good on a
// worker whose config differs; refused, it waits Temporal's backoff at
// worst, and moves.
const maxRefusals = 3

// maxRefusalsKept bounds the runs whose refusals are counted: past it
// the count starts again (a run is then refused a few times more).
const maxRefusalsKept = 10000

// firstRefusal says whether run was not refused here before (its
// refusal is logged once), and notes it.
func (g *connectionGuard) firstRefusal(run string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.warned == nil || len(g.warned) >= maxRefusalsKept {
		g.warned = map[string]bool{}
	}
	first := !g.warned[run]
	g.warned[run] = true
	return first
}

// refuse counts a refusal of run and says whether it is within
// maxRefusals.
func (g *connectionGuard) refuse(run string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refused == nil || len(g.refused) >= maxRefusalsKept {
		g.refused = map[string]int{}
	}
	g.refused[run]++
	return g.refused[run] <= maxRefusals
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
			conn, has := i.guard.connections.Resolve(run.Connection)
			// A write-back-only run exists for its write-back, which a
			// worker without the connection's fails (its step is
			// required): it is left to one that has it, as a run whose
			// connection is missing is.
			lacks := fmt.Sprintf("connection %q is not configured on this worker", run.Connection)
			if has && run.Invoiced != nil && conn.WriteBacker == nil {
				has, lacks = false, fmt.Sprintf("connection %q writes nothing back on this worker, and this run exists to write its invoice back", run.Connection)
			}
			if !has {
				if !run.LocalCalls && !i.guard.refuse(workflow.GetInfo(ctx).WorkflowExecution.RunID) {
					workflow.GetLogger(ctx).Warn(fmt.Sprintf("%s; this worker has refused this run %d times: it takes the run now, whose steps fail ConnectionUnavailable here until this worker has the connection or stops", lacks, maxRefusals))
					return i.Next.ExecuteWorkflow(ctx, in)
				}
				msg := lacks + ": its workflow task fails here so that a worker of the task queue that has the connection takes the run (give every worker the intakes' config: dealsync config check)"
				// A panic is how a workflow task fails without ending
				// the run (the SDK's default BlockWorkflow policy). The
				// SDK logs each as "Workflow panic" at error with a
				// stack trace, which reads like a crash: the refusal is
				// noted, so that the SDK's logger adapter (app) puts
				// that line at debug, and said here at warn, once per
				// run.
				run := workflow.GetInfo(ctx).WorkflowExecution.RunID
				refusal.Note(run, msg)
				if i.guard.firstRefusal(run) {
					workflow.GetLogger(ctx).Warn(msg + " (logged once per run: its later refusals here are at debug)")
				}
				panic(msg)
			}
		}
	}
	return i.Next.ExecuteWorkflow(ctx, in)
}
