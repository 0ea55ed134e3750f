package worker

import (
	"errors"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// runEnds logs each run that ends failed, at error, on the worker that
// ends it: "run failed", naming the deal, the connection, the failure's
// type and message (error_type, error); a run that ends DealNotWon, the
// deal lost before its invoice, at info, and one canceled at warn, with
// their outcome and reason: not failures. A run that used up workflow.retry.maximum_attempts
// left only the warnings of its attempts in the log (an attempt cannot
// tell it is the last one: the workflow makes some calls one attempt at a
// time and retries them itself), so an alert on the log's errors missed
// it. A failure that someone must fix was logged by its step already
// ("step failed: the run ends", for external_calls: local); this line is
// the run's, one per failed run, whatever its cause.
//
// The workflow's logger leaves out what a replay does again, so a run's
// failure is logged once (again only if the worker dies before Temporal
// has the run's end). It adds no event and no command: runs replay alike.
type runEnds struct {
	interceptor.WorkerInterceptorBase
}

func (*runEnds) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &runEndsWorkflow{}
	i.Next = next
	return i
}

type runEndsWorkflow struct {
	interceptor.WorkflowInboundInterceptorBase
}

func (i *runEndsWorkflow) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	out, err := i.Next.ExecuteWorkflow(ctx, in)
	if err == nil || workflow.IsContinueAsNewError(err) {
		return out, err
	}
	var attrs []any
	if len(in.Args) > 0 {
		if run, ok := in.Args[0].(workflows.InvoiceDealInput); ok {
			attrs = append(attrs, "connection", run.Connection, "deal_id", run.Event.Deal.ID)
			if run.Event.Account != "" {
				attrs = append(attrs, "account", run.Event.Account)
			}
		}
	}
	typ := failureType(err)
	switch {
	case typ == activities.ErrTypeDealNotWon:
		// The deal left the won stages (a lost deal, or a late delivery
		// of an older win): an outcome, ended as a failure only so that a
		// later win starts a new run. Its text is why, not an error.
		workflow.GetLogger(ctx).Info("run ended: the deal is not won, nothing was invoiced", append(attrs, "outcome", typ, "reason", failureMessage(err))...)
		return out, err
	case temporal.IsCanceledError(err):
		// An operator's cancel: nothing to alert on, and no error.
		workflow.GetLogger(ctx).Warn("run canceled", append(attrs, "outcome", typ, "reason", failureMessage(err))...)
		return out, err
	}
	workflow.GetLogger(ctx).Error("run failed", append(attrs, "error_type", typ, "error", failureMessage(err))...)
	return out, err
}

// failureMessage is a run's failure as the Web UI and `runs list` show
// it: its ApplicationError's own message, once (err.Error() repeats the
// chain of causes, with "retryable: false" and "true" of one failure).
func failureMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// failureType is the type a run's failure shows in the Web UI: its
// ApplicationError's (MappingError, ERPUnavailable, ...), or the kind of
// the SDK's error.
func failureType(err error) string {
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	var panicked *temporal.PanicError
	switch {
	case errors.As(err, &appErr) && appErr.Type() != "":
		return appErr.Type()
	case errors.As(err, &timeout):
		return "Timeout"
	case errors.As(err, &panicked):
		return "Panic"
	case temporal.IsCanceledError(err):
		return "Canceled"
	}
	return "Error"
}
