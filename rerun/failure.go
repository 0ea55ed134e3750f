package rerun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// Failure is what a closed run's close event says of how it ended, as
// the Web UI's run page shows it.
type Failure struct {
	// Type is the failure's type: the application error's (e.g.
	// "MappingError", activities.ErrTypeMapping), or, for a failure of
	// another kind, the SDK's name of it ("TimeoutError", …). Empty for a
	// terminated run.
	Type string
	// Message is the failure's message whole, or a terminated run's
	// reason and who terminated it.
	Message string
}

// hasFailure says whether a run that ended with status has a failure its
// close event tells: a failed run's error, a terminated run's reason. The
// close event of a run that timed out or was canceled says no more than
// its status.
func hasFailure(status enumspb.WorkflowExecutionStatus) bool {
	return status == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED || status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
}

// runFailure reads run runID of workflow id's close event (one event:
// HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT, as activities' PreviousRun reads
// how a run ended) and returns the failure it tells; none for a close
// event that tells none (a run completed, timed out or canceled).
func runFailure(ctx context.Context, c client.Client, id, runID string) (Failure, error) {
	last, err := activities.CloseEvent(ctx, c, id, runID)
	if err != nil {
		return Failure{}, fmt.Errorf("reading the run's close event: %w", err)
	}
	if last == nil {
		return Failure{}, errors.New("the run's history is gone: Temporal no longer has the run's history (past the namespace's retention?)")
	}
	if f := last.GetWorkflowExecutionFailedEventAttributes().GetFailure(); f != nil {
		return failureOf(f), nil
	}
	if d := last.GetWorkflowExecutionCanceledEventAttributes().GetDetails(); len(d.GetPayloads()) > 0 {
		// A run canceled during its invoice step says why in its
		// cancellation's details (the workflow's CanceledError).
		var msg string
		if converter.GetDefaultDataConverter().FromPayload(d.GetPayloads()[0], &msg) == nil {
			return Failure{Type: "CanceledError", Message: msg}, nil
		}
	}
	if t := last.GetWorkflowExecutionTerminatedEventAttributes(); t != nil {
		msg := t.GetReason()
		if t.GetIdentity() != "" {
			if msg == "" {
				msg = "no reason given"
			}
			msg += " (by " + t.GetIdentity() + ")"
		}
		return Failure{Message: msg}, nil
	}
	return Failure{}, nil
}

// failureOf is the type and message of a run's failure. A run failed by
// an activity's or a child run's error the workflow returned as it was
// (its message "activity error", say) is told by that error, its cause;
// dealsync's own runs fail with an application error of the step's type
// and message (workflows' fail).
func failureOf(f *failurepb.Failure) Failure {
	for (f.GetActivityFailureInfo() != nil || f.GetChildWorkflowExecutionFailureInfo() != nil) && f.GetCause() != nil {
		f = f.GetCause()
	}
	out := Failure{Message: f.GetMessage()}
	switch {
	case f.GetApplicationFailureInfo() != nil:
		out.Type = f.GetApplicationFailureInfo().GetType()
	case f.GetTimeoutFailureInfo() != nil:
		out.Type = "TimeoutError"
	case f.GetCanceledFailureInfo() != nil:
		out.Type = "CanceledError"
	case f.GetTerminatedFailureInfo() != nil:
		out.Type = "TerminatedError"
	case f.GetServerFailureInfo() != nil:
		out.Type = "ServerError"
	case f.GetActivityFailureInfo() != nil:
		out.Type = "ActivityError"
	case f.GetChildWorkflowExecutionFailureInfo() != nil:
		out.Type = "ChildWorkflowExecutionError"
	}
	return out
}

// failureReads bounds the close events List reads at once.
const failureReads = 8

// Bounds of the read of a failing workflow task's failure
// (taskFailure): the run's history is read from its end, taskFailurePage
// events a page, at most taskFailurePages pages; and the message kept is
// its first line, at most maxTaskFailure characters.
const (
	taskFailurePage  = 32
	taskFailurePages = 2
	maxTaskFailure   = 1000
	// taskFailureTimeout bounds each page's read: a call of the raw
	// WorkflowService has no deadline of its own (the client's methods,
	// as DescribeWorkflowExecution, give each call 10 s), and a frontend
	// that does not answer would hold `runs list` for good.
	taskFailureTimeout = 10 * time.Second
)

// readFailures sets the failure of each run that has one (hasFailure),
// reading their close events (a completed run's warning is in its memo:
// listed), and the workflow-task attempt of each running run whose task
// fails (Run.WorkflowTaskAttempt), describing it,
// with that task's failure (taskFailure), or else the last failure of the
// step it retries (Run.Retrying: pendingRetry, else
// retryingFromHistory), failureReads at a time. A read
// of a close event that fails leaves the run's failure empty and says why
// in its FailureReadError. namespace is the client's ("" is Temporal's
// default).
func readFailures(ctx context.Context, c client.Client, namespace string, runs []Run) {
	var g errgroup.Group
	g.SetLimit(failureReads)
	for i := range runs {
		r := &runs[i]
		if statusOf(r.ExecutionStatus) == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			g.Go(func() error {
				// A run whose workflow task fails again and again (a
				// worker refuses it) shows nothing else of it in the
				// list; a read that fails leaves it unsaid.
				d, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
				if err != nil {
					return nil
				}
				// A task failing again and again says why first.
				if d.GetPendingWorkflowTask().GetAttempt() <= 1 {
					if r.WaitingForWorker = waitingForWorker(d, time.Now()); r.WaitingForWorker != "" {
						return nil
					}
				}
				if d.GetPendingWorkflowTask().GetAttempt() > 1 {
					r.WorkflowTaskAttempt = d.GetPendingWorkflowTask().GetAttempt()
					// Why it fails is in the history only: a read that
					// fails, or finds none, leaves it unsaid.
					r.WorkflowTaskFailure, _ = taskFailure(ctx, c, namespace, r.WorkflowID, r.RunID)
					return nil
				}
				// A step retried: an activity's last failure is in the
				// describe (external_calls: activity); a local call's,
				// or a failed attempt of the invoice step's made one at
				// a time, in the end of the history. A read that fails,
				// or finds none, leaves it unsaid.
				if r.Retrying = pendingRetry(d.GetPendingActivities()); r.Retrying == nil {
					r.Retrying, _ = retryingFromHistory(ctx, c, namespace, r.WorkflowID, r.RunID)
				}
				return nil
			})
			continue
		}
		if !hasFailure(statusOf(r.ExecutionStatus)) {
			continue
		}
		g.Go(func() error {
			f, err := runFailure(ctx, c, r.WorkflowID, r.RunID)
			if err != nil {
				r.FailureReadError = err.Error()
				return nil
			}
			r.FailureType, r.FailureMessage = f.Type, f.Message
			return nil
		})
	}
	_ = g.Wait() // every read says its own error
}

// taskFailure is the message of the last WorkflowTaskFailed event of run
// runID of workflow id (the guard's refusal, `connection "x" is not
// configured on this worker: …`, or a panic's value): its first line, cut
// to maxTaskFailure characters with an ellipsis. The history is read from
// its end (GetWorkflowExecutionHistoryReverse), at most taskFailurePages
// pages of taskFailurePage events: a failing task's later attempts are
// not written to the history, so its first failure is among the last
// events, after those a signal added since. "" when none is found there,
// or a WorkflowTaskCompleted comes first (an older failure is past).
func taskFailure(ctx context.Context, c client.Client, namespace, id, runID string) (string, error) {
	var msg string
	_, err := historyFromEnd(ctx, c, namespace, id, runID, func(ev *historypb.HistoryEvent) bool {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			return true
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			msg = firstLine(ev.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage(), maxTaskFailure)
			return true
		}
		return false
	})
	if err != nil {
		return "", err
	}
	return msg, nil
}

// historyFromEnd gives visit the events of run runID of workflow id's
// history from its end (GetWorkflowExecutionHistoryReverse), at most
// taskFailurePages pages of taskFailurePage events, each page read within
// taskFailureTimeout, until visit says it is done (stopped) or the pages
// run out. namespace "" is Temporal's default. taskFailure and
// retryingFromHistory read a running run's history so.
func historyFromEnd(ctx context.Context, c client.Client, namespace, id, runID string, visit func(*historypb.HistoryEvent) (done bool)) (stopped bool, err error) {
	if namespace == "" {
		namespace = client.DefaultNamespace
	}
	var token []byte
	for range taskFailurePages {
		rctx, cancel := context.WithTimeout(ctx, taskFailureTimeout)
		resp, err := c.WorkflowService().GetWorkflowExecutionHistoryReverse(rctx, &workflowservice.GetWorkflowExecutionHistoryReverseRequest{
			Namespace:       namespace,
			Execution:       &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
			MaximumPageSize: taskFailurePage,
			NextPageToken:   token,
		})
		cancel()
		if err != nil {
			return false, err
		}
		for _, ev := range resp.GetHistory().GetEvents() {
			if visit(ev) {
				return true, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return false, nil
}

// firstLine is s's first non-blank line, trimmed, cut in the middle to
// most characters (CutKeepingEnd): a long message's end says what to do.
func firstLine(s string, most int) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return CutKeepingEnd(line, most)
		}
	}
	return ""
}

// statusOf is the execution status Run.ExecutionStatus spells.
func statusOf(s string) enumspb.WorkflowExecutionStatus {
	status, err := enumspb.WorkflowExecutionStatusFromString(s)
	if err != nil {
		return enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
	}
	return status
}

// WaitingTaskAfter is how long a run's workflow task must have waited,
// scheduled and not taken, for `runs list` to say it waits for a worker
// (Run.WaitingForWorker): a worker's restart, or its sticky queue's
// hand-over, leaves a task waiting for seconds only.
var WaitingTaskAfter = time.Minute

// waitingForWorker is Run.WaitingForWorker of a running run described by
// d at now: why its workflow task, scheduled at least WaitingTaskAfter
// ago, is taken by no worker; "" when it is not.
func waitingForWorker(d *workflowservice.DescribeWorkflowExecutionResponse, now time.Time) string {
	task := d.GetPendingWorkflowTask()
	if task.GetState() != enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED || task.GetScheduledTime() == nil {
		return ""
	}
	since := task.GetScheduledTime().AsTime()
	if now.Sub(since) < WaitingTaskAfter {
		return ""
	}
	at := since.UTC().Format(time.RFC3339)
	vi := d.GetWorkflowExecutionInfo().GetVersioningInfo()
	if v := vi.GetDeploymentVersion(); vi.GetBehavior() == enumspb.VERSIONING_BEHAVIOR_PINNED && v.GetBuildId() != "" {
		return fmt.Sprintf("workflow task waiting since %s for a worker of build %s of worker deployment %s, which the run is pinned to: start that build's workers (worker.deployment)", at, v.GetBuildId(), v.GetDeploymentName())
	}
	return fmt.Sprintf("workflow task waiting since %s for a worker: none polls the task queue (or all are busy), or, with worker.deployment, no build is current (dealsync worker set-current)", at)
}

// FailureTypes are the types of the failures dealsync's runs end with
// (the application errors its activities and workflows raise, as Failure
// and `runs list` give them), sorted: what --failure of `runs list` and
// `runs retry` takes, and what docs/operations.md's table of failures
// ("What a failure means and what to do") lists. A run that timed out,
// was terminated or was canceled has none of them.
var FailureTypes = []string{
	activities.ErrTypeCRMRateLimited,
	activities.ErrTypeCRMRejected,
	activities.ErrTypeCRMUnauthorized,
	activities.ErrTypeCRMUnavailable,
	activities.ErrTypeConnectionUnavailable,
	activities.ErrTypeDealNotWon,
	activities.ErrTypeERPRateLimited,
	activities.ErrTypeERPRejected,
	activities.ErrTypeTargetMismatch,
	activities.ErrTypeERPUnauthorized,
	activities.ErrTypeERPUnavailable,
	activities.ErrTypeLocalFile,
	activities.ErrTypeMapping,
	activities.ErrTypeRunsUnreadable,
	workflows.ErrTypeStepTimedOut,
	activities.ErrTypeTemporalUnavailable,
	activities.ErrTypeValidation,
	activities.ErrTypeWriteBackFailed,
}

// ErrUnknownFailureType says that a --failure value names no type of
// FailureTypes.
var ErrUnknownFailureType = errors.New("unknown failure type")

// ParseFailureTypes reads the values of --failure (each a type, or types
// separated by commas) as FailureTypes spells them, matched without
// regard to case, each once, in the order given. A value naming none of
// them is ErrUnknownFailureType, listing the types known.
func ParseFailureTypes(values []string) ([]string, error) {
	var types []string
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			i := slices.IndexFunc(FailureTypes, func(t string) bool { return strings.EqualFold(t, name) })
			if i < 0 {
				return nil, fmt.Errorf("%w %q: give one or more of %s (separated by commas)", ErrUnknownFailureType, name, strings.Join(FailureTypes, ", "))
			}
			if known := FailureTypes[i]; !slices.Contains(types, known) {
				types = append(types, known)
			}
		}
	}
	return types, nil
}

// failureIn says whether a run's failure type, typ (Failure.Type), is one
// of types; every type is when types is empty (no --failure).
func failureIn(types []string, typ string) bool {
	return len(types) == 0 || slices.Contains(types, typ)
}
