package rerun

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// Retrying is a running run's step whose last attempt failed and that is
// retried: during an ERP outage, or on a worker that refuses the step
// (ERPTargetMismatch), the run's row says no more than "pending".
type Retrying struct {
	// Step is dealsync's name of the step, as the metric
	// dealsync_steps_total and the worker's "step attempt failed" log line
	// name it (customer, invoice, write_back, …; the activity type for one
	// dealsync does not name).
	Step string `json:"step"`
	// Attempt is the number of the step's attempt that failed last (1 for
	// the first), 0 when it is not known (its first attempts are further
	// back in the history than is read).
	Attempt int32 `json:"attempt,omitempty"`
	// Type is the failure's type (ERPUnavailable, ERPTargetMismatch, …,
	// or the SDK's name of a failure of another kind: TimeoutError).
	Type string `json:"type,omitempty"`
	// Message is the failure's message, its first line, at most 1000
	// characters: a longer one is cut in the middle, keeping its end
	// (what to do).
	Message string `json:"message"`
}

// stepNames are dealsync's names of its steps (the metrics' and logs'),
// by activity type.
var stepNames = map[string]string{
	"MapDeal":              "map",
	"ValidateInvoice":      "validate",
	"FetchDeal":            "fetch_deal",
	"PreviousRun":          "previous_run",
	"FindOrCreateCustomer": "customer",
	"CreateInvoice":        "invoice",
	"WriteBack":            "write_back",
	"TargetName":           "target",
}

// stepName is dealsync's name of the step of activity type typ, typ
// itself when it has none.
func stepName(typ string) string {
	if s, ok := stepNames[typ]; ok {
		return s
	}
	return typ
}

// pendingRetry is the Retrying of a run's pending activity whose last
// attempt failed (external_calls: activity; DescribeWorkflowExecution's
// PendingActivities), nil when none has failed.
func pendingRetry(pending []*workflowpb.PendingActivityInfo) *Retrying {
	for _, pa := range pending {
		if pa.GetLastFailure() == nil {
			continue
		}
		f := failureOf(pa.GetLastFailure())
		// Attempt is the attempt under way or scheduled: the one that
		// failed is the one before it.
		return &Retrying{Step: stepName(pa.GetActivityType().GetName()), Attempt: max(pa.GetAttempt()-1, 0), Type: f.Type,
			Message: firstLine(f.Message, maxTaskFailure)}
	}
	return nil
}

// localActivityMarker is the SDK's name of the marker of a local
// activity's result (a local call's, external_calls: local), and
// localActivityData the key of its details that holds the
// localActivityData.
const (
	localActivityMarker = "LocalActivity"
	localActivityData   = "data"
)

// localActivityMarkerData is what the SDK records of a local activity in
// its marker's details (the SDK's localActivityMarkerData): the call's
// id, its activity type and its attempt, counted from 1 (the failed one,
// when the marker has a failure: its back-off outlasted a workflow task,
// so the SDK recorded it and waits with a server timer).
type localActivityMarkerData struct {
	ActivityID   string
	ActivityType string
	Attempt      int32
	// Backoff is the wait before the call's next attempt, set on a failed
	// attempt that the SDK retries after a timer: that next attempt is a
	// call of its own (another ActivityID) whose Attempt goes on counting,
	// so this one's attempts are in it. 0 on a call's last attempt.
	Backoff time.Duration
}

// callResult is a step's call as the end of a run's history tells it: a
// local activity's marker, or an activity's closing event.
type callResult struct {
	id, typ string
	attempt int32
	// retried says that the call is a local call's failed attempt that
	// the SDK retries after a timer (its marker's Backoff): the attempt
	// after it counts it.
	retried bool
	failure *Failure
	// unread says that the call is a local call whose marker could not be
	// decoded (another SDK's format): its step and outcome are unknown.
	unread bool
}

// retryingFromHistory reads run runID of workflow id's history from its
// end, at most taskFailurePages pages of taskFailurePage events, for the
// last call of a step that failed (a local activity's marker with a
// failure, or an activity's ActivityTaskFailed or ActivityTaskTimedOut),
// and is not followed by one that succeeded: the step that the run
// retries (its back-off a timer; with the invoice step's attempts made one
// at a time, between them). Its attempt adds up the attempts of the
// step's failed calls read before it back to the step's start (another
// step's call that succeeded, or the run's start), a local call retried
// after timers counted once, by its last attempt (the SDK counts on);
// when the pages end first, the SDK's count of the one call read, else
// 0. A read of the deal while the invoice step waits between attempts
// is passed over. nil when none is found, or a call that succeeded, or a
// local call's marker that cannot be decoded, comes first.
func retryingFromHistory(ctx context.Context, c client.Client, namespace, id, runID string) (*Retrying, error) {
	var (
		last *Retrying
		// calls is the attempt of each failed call of last's step read,
		// by call: an activity's retries keep its id; a local call's
		// retry after a timer is a call of another id whose attempt
		// counts the ones before (those are passed over: retried).
		calls = map[string]int32{}
		// activities are the activities whose close was read, by
		// scheduled event id, until their scheduled event is.
		activities = map[int64]*callResult{}
	)
	// take takes r, a call read; done says that the reading is over.
	take := func(r callResult) (done bool) {
		if r.unread {
			// A call of unknown step and outcome: what is behind it
			// may have succeeded since.
			return true
		}
		if last == nil {
			if r.failure == nil && r.typ == "FetchDeal" {
				// A read of the deal between the invoice step's attempts
				// (an event came while it waited): the attempt before it
				// is the one retried. (The deal's first read is followed
				// by the map step's call; the one after the customer
				// step by the invoice step's.)
				return false
			}
			if r.failure == nil {
				return true // a call succeeded since
			}
			last = &Retrying{Step: stepName(r.typ), Type: r.failure.Type, Message: firstLine(r.failure.Message, maxTaskFailure)}
			calls[r.id] = r.attempt
			return false
		}
		if stepName(r.typ) != last.Step {
			// Another step: the reads of the deal between the invoice
			// step's attempts are not its start.
			if last.Step == "invoice" && r.typ == "FetchDeal" {
				return false
			}
			return true
		}
		if r.failure == nil {
			return true // the step's earlier run, which succeeded
		}
		if r.retried {
			// An attempt of a local call that the SDK retried after a
			// timer: the call's attempt read since counts it.
			return false
		}
		calls[r.id] = max(calls[r.id], r.attempt)
		return false
	}
	count := func() {
		last.Attempt = 0
		for _, n := range calls {
			if n < 1 {
				last.Attempt = 0
				return
			}
			last.Attempt += n
		}
	}
	stopped, err := historyFromEnd(ctx, c, namespace, id, runID, func(ev *historypb.HistoryEvent) bool {
		r, ok := callOf(ev, activities)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED {
			return true
		}
		return ok && take(r)
	})
	if err != nil {
		return nil, err
	}
	if last != nil {
		count()
		if !stopped && len(calls) > 1 {
			// The pages ended before the step's start: its attempt is
			// known only when the SDK counted them in one call (a local
			// call's retries; an invoice step whose first attempts were
			// made one at a time counts from the call that made the
			// rest).
			last.Attempt = 0
		}
	}
	return last, nil
}

// callOf is the call ev, read from the end of a history, closes: a
// local activity's marker, or, at an activity's scheduled event, the
// activity whose close (ActivityTaskCompleted, Failed, TimedOut or
// Canceled) and start were read before it into activities.
func callOf(ev *historypb.HistoryEvent, activities map[int64]*callResult) (callResult, bool) {
	var f *Failure
	failed := func(fp *failurepb.Failure) *Failure {
		out := failureOf(fp)
		return &out
	}
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_MARKER_RECORDED:
		m := ev.GetMarkerRecordedEventAttributes()
		if m.GetMarkerName() != localActivityMarker {
			return callResult{}, false // a version marker, a side effect
		}
		var data localActivityMarkerData
		if converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()[localActivityData], &data) != nil || data.ActivityType == "" {
			// Not the format read here: a call all the same, one whose
			// step and outcome are unknown (skipping it could show an
			// older failure that this call succeeded after).
			return callResult{unread: true}, true
		}
		if m.GetFailure() != nil {
			f = failed(m.GetFailure())
		}
		return callResult{id: data.ActivityID, typ: data.ActivityType, attempt: data.Attempt, retried: f != nil && data.Backoff > 0, failure: f}, true
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		activities[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()] = &callResult{}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		a := ev.GetActivityTaskFailedEventAttributes()
		activities[a.GetScheduledEventId()] = &callResult{failure: failed(a.GetFailure())}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		a := ev.GetActivityTaskTimedOutEventAttributes()
		activities[a.GetScheduledEventId()] = &callResult{failure: failed(a.GetFailure())}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		a := ev.GetActivityTaskStartedEventAttributes()
		if r := activities[a.GetScheduledEventId()]; r != nil {
			r.attempt = a.GetAttempt()
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		r := activities[ev.GetEventId()]
		if r == nil {
			return callResult{}, false // under way: its close is not written yet
		}
		a := ev.GetActivityTaskScheduledEventAttributes()
		r.id, r.typ = a.GetActivityId(), a.GetActivityType().GetName()
		return *r, true
	}
	return callResult{}, false
}
