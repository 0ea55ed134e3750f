package worker

import (
	"errors"

	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
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
// A replay does not log again, so a run's failure is logged once (again
// only if the worker dies before Temporal has the run's end). It adds no
// event and no command: runs replay alike.
//
// The lines name the run (WorkflowType, WorkflowID, RunID) as the
// workflow's logger does, but not its Attempt: the workflow's, which is
// always 1 (a run has no retry policy of its own), and read as the
// failed step's. The step's own attempts are in its lines (`step attempt
// failed`, `step failed: the run ends`, each with its attempt); the
// failure does not carry them (a local call's has no attempt, and the
// invoice step is retried one call at a time by the workflow).
type runEnds struct {
	interceptor.WorkerInterceptorBase
	// log is the worker's logger (the SDK client's); nil logs with the
	// workflow's (its Attempt included).
	log sdklog.Logger
}

func (r *runEnds) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &runEndsWorkflow{log: r.log}
	i.Next = next
	return i
}

type runEndsWorkflow struct {
	interceptor.WorkflowInboundInterceptorBase
	log sdklog.Logger
}

// logger is the logger of a run's end: the worker's with the run's
// names, or, without one, the workflow's. None during a replay.
func (i *runEndsWorkflow) logger(ctx workflow.Context) sdklog.Logger {
	if i.log == nil {
		return workflow.GetLogger(ctx)
	}
	if workflow.IsReplaying(ctx) {
		return nopLogger{}
	}
	info := workflow.GetInfo(ctx)
	return sdklog.With(i.log, "Namespace", info.Namespace, "TaskQueue", info.TaskQueueName,
		"WorkflowType", info.WorkflowType.Name, "WorkflowID", info.WorkflowExecution.ID, "RunID", info.WorkflowExecution.RunID)
}

// nopLogger logs nothing.
type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}

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
		i.logger(ctx).Info("run ended: the deal is not won, nothing was invoiced", append(attrs, "outcome", typ, "reason", failureMessage(err))...)
		return out, err
	case temporal.IsCanceledError(err):
		// An operator's cancel: nothing to alert on, and no error.
		i.logger(ctx).Warn("run canceled", append(attrs, "outcome", typ, "reason", failureMessage(err))...)
		return out, err
	}
	i.logger(ctx).Error("run failed", append(attrs, "error_type", typ, "error", failureMessage(err))...)
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
