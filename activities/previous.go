package activities

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// RunReader reads earlier runs from Temporal: the worker's client.
type RunReader interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool, filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// NotWonDetails are the details of a run's DealNotWon failure: the events
// it saw and the newest one's time and stage. A later run of the deal reads
// them (PreviousRun) to tell a won event the CRM delivers again, or late,
// from a new win.
type NotWonDetails struct {
	EventIDs []string  `json:"event_ids"`
	LatestAt time.Time `json:"latest_at"`
	Stage    string    `json:"stage,omitempty"`
}

// PreviousRunInput names the run asking (its own run is not "previous").
type PreviousRunInput struct {
	Connection string `json:"connection"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// PreviousRun is how the newest failed earlier run of a workflow id ended.
// RunID is empty when the run list has none (yet: a run closed less than
// about a second ago may not be listed).
type PreviousRun struct {
	RunID     string `json:"run_id,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
	// NotWon holds the failure's details when they are NotWonDetails.
	NotWon *NotWonDetails `json:"not_won,omitempty"`
}

// PreviousRun reads the newest failed earlier run of in.WorkflowID from the
// run list, and its failure from its close event. Without a RunReader it
// reports none.
func (a *Activities) PreviousRun(ctx context.Context, in PreviousRunInput) (_ PreviousRun, err error) {
	defer observe("previous_run", in.Connection, time.Now(), &err)
	if a.Runs == nil {
		return PreviousRun{}, nil
	}
	resp, err := a.Runs.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Failed"`, in.WorkflowID),
		PageSize: 20,
	})
	if err != nil {
		return PreviousRun{}, fmt.Errorf("listing the earlier runs of %s: %w", in.WorkflowID, err)
	}
	var newest string
	var closed time.Time
	for _, ex := range resp.GetExecutions() {
		run := ex.GetExecution().GetRunId()
		if at := ex.GetCloseTime().AsTime(); run != in.RunID && (newest == "" || at.After(closed)) {
			newest, closed = run, at
		}
	}
	if newest == "" {
		return PreviousRun{}, nil
	}
	out := PreviousRun{RunID: newest}
	it := a.Runs.GetWorkflowHistory(ctx, in.WorkflowID, newest, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return PreviousRun{}, fmt.Errorf("reading how run %s of %s ended: %w", newest, in.WorkflowID, err)
		}
		info := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetApplicationFailureInfo()
		if info == nil {
			continue
		}
		out.ErrorType = info.GetType()
		if details := info.GetDetails(); len(details.GetPayloads()) > 0 {
			var d NotWonDetails
			if converter.GetDefaultDataConverter().FromPayloads(details, &d) == nil && (len(d.EventIDs) > 0 || !d.LatestAt.IsZero()) {
				out.NotWon = &d
			}
		}
	}
	return out, nil
}
