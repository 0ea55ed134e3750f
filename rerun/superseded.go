package rerun

import (
	"context"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/activities"
)

// Superseded is the newest later run of a listed run's workflow ID, when
// the listed run did not complete (it failed, was terminated, timed out
// or was canceled) and a later run exists: one `runs retry` started, say.
// The old run keeps its SyncStatus ("failed"), which a filter still
// selects: this says the failure may be resolved.
type Superseded struct {
	RunID string `json:"run_id"`
	// ExecutionStatus is spelled as Run.ExecutionStatus.
	ExecutionStatus string     `json:"execution_status"`
	SyncStatus      string     `json:"sync_status,omitempty"`
	StartTime       time.Time  `json:"start_time"`
	CloseTime       *time.Time `json:"close_time,omitempty"` // nil while running
}

// Bounds of the read of later runs (readSuperseded): the workflow IDs
// asked for in one filter, and the pages of runs read for them, each
// given taskFailureTimeout.
const (
	supersededIDs   = 100
	supersededPage  = 1000
	supersededPages = 5
)

// ended says whether a run of status ended without completing: a later
// run of its workflow ID may have done what it did not.
func ended(status string) bool {
	switch statusOf(status) {
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return true
	}
	return false
}

// filterable says whether a run-list filter finds workflow ID id. One
// with a double quote or a backslash (a generic source's deal id, say:
// invoice/shop/D"1) matches no filter on Temporal's SQL visibility store,
// however it is escaped: the server writes the value into its SQL query
// with a backslash before each, which SQLite's strings keep as written.
func filterable(id string) bool {
	return !strings.ContainsAny(id, `"\`)
}

// readSuperseded sets the Superseded of each run that ended without
// completing and of whose workflow ID a later run (started after it)
// exists, in any task queue: the newest of them. It asks Temporal's run
// list for the runs of all those workflow IDs at once (WorkflowId IN
// (…), supersededIDs IDs a filter, at most supersededPages pages of
// supersededPage runs each), but those of workflow IDs no filter finds
// (filterable), whose current runs it describes one by one; a read that
// fails leaves the runs unmarked.
func readSuperseded(ctx context.Context, c client.Client, runs []Run) {
	var ids []string
	seen := map[string]bool{}
	newest := map[string]Run{} // by workflow ID
	for _, r := range runs {
		if !ended(r.ExecutionStatus) || seen[r.WorkflowID] {
			continue
		}
		seen[r.WorkflowID] = true
		if !filterable(r.WorkflowID) {
			// The current run of the ID is its newest.
			pctx, cancel := context.WithTimeout(ctx, taskFailureTimeout)
			d, err := c.DescribeWorkflowExecution(pctx, r.WorkflowID, "")
			cancel()
			if err == nil && d.GetWorkflowExecutionInfo() != nil {
				newest[r.WorkflowID] = listed(d.GetWorkflowExecutionInfo())
			}
			continue
		}
		ids = append(ids, r.WorkflowID)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), supersededIDs)]
		ids = ids[len(chunk):]
		quoted := make([]string, len(chunk))
		for i, id := range chunk {
			quoted[i] = activities.QueryString(id)
		}
		filter := "WorkflowId IN (" + strings.Join(quoted, ", ") + ")"
		var token []byte
		for page := 0; page < supersededPages; page++ {
			pctx, cancel := context.WithTimeout(ctx, taskFailureTimeout)
			resp, err := c.ListWorkflow(pctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: filter, NextPageToken: token, PageSize: supersededPage,
			})
			cancel()
			if err != nil {
				break
			}
			for _, ex := range resp.GetExecutions() {
				r := listed(ex)
				if n, ok := newest[r.WorkflowID]; !ok || r.StartTime.After(n.StartTime) {
					newest[r.WorkflowID] = r
				}
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	for i := range runs {
		r := &runs[i]
		n, ok := newest[r.WorkflowID]
		if !ended(r.ExecutionStatus) || !ok || n.RunID == r.RunID || !n.StartTime.After(r.StartTime) {
			continue
		}
		r.Superseded = &Superseded{RunID: n.RunID, ExecutionStatus: n.ExecutionStatus, SyncStatus: n.SyncStatus,
			StartTime: n.StartTime, CloseTime: n.CloseTime}
	}
}
