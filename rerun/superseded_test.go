package rerun

import (
	"context"
	"log/slog"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/workflows"
)

// laterRuns answers a run list with its runs, whatever the filter.
type laterRuns struct {
	client.Client
	execs   []*workflowpb.WorkflowExecutionInfo
	queries []string
}

func (l *laterRuns) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	l.queries = append(l.queries, req.GetQuery())
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: l.execs}, nil
}

// A run that failed, was terminated, timed out or was canceled, of whose
// workflow ID a later run exists, is marked with the newest of them; a
// completed or running run, or one without a later run, is not. One
// filter asks for the workflow IDs of the runs that may be marked.
func TestReadSupersededMarksRunsWithALaterRun(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	exec := func(id, run string, status enumspb.WorkflowExecutionStatus, start time.Duration) *workflowpb.WorkflowExecutionInfo {
		ex := &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run}, Status: status,
			StartTime: timestamppb.New(t0.Add(start))}
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			ex.CloseTime = timestamppb.New(t0.Add(start + time.Minute))
		}
		return ex
	}
	l := &laterRuns{execs: []*workflowpb.WorkflowExecutionInfo{
		exec("a", "a-2", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, 2*time.Hour),
		exec("a", "a-3", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, time.Hour), // older than a-2
		exec("a", "a-1", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, 0),
		exec("c", "c-1", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, 0),
		exec("d", "d-1", enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, 0),
		exec("d", "d-2", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, time.Hour),
	}}
	runs := []Run{
		{WorkflowID: "a", RunID: "a-1", ExecutionStatus: "Failed", StartTime: t0},
		{WorkflowID: "a", RunID: "a-2", ExecutionStatus: "Running", StartTime: t0.Add(2 * time.Hour)},
		{WorkflowID: "b", RunID: "b-1", ExecutionStatus: "Completed", StartTime: t0},
		{WorkflowID: "c", RunID: "c-1", ExecutionStatus: "Terminated", StartTime: t0},
		{WorkflowID: "d", RunID: "d-1", ExecutionStatus: "TimedOut", StartTime: t0},
	}
	readSuperseded(context.Background(), l, runs)
	if len(l.queries) != 1 || l.queries[0] != `WorkflowId IN ("a", "c", "d")` {
		t.Errorf("queries %q, want one of the ended runs' IDs", l.queries)
	}
	if s := runs[0].Superseded; s == nil || s.RunID != "a-2" || s.ExecutionStatus != "Running" || s.CloseTime != nil {
		t.Errorf("run a-1 superseded by %+v, want the running a-2", s)
	}
	if s := runs[4].Superseded; s == nil || s.RunID != "d-2" || s.ExecutionStatus != "Completed" || s.CloseTime == nil {
		t.Errorf("run d-1 superseded by %+v, want the completed d-2", s)
	}
	for _, i := range []int{1, 2, 3} {
		if runs[i].Superseded != nil {
			t.Errorf("run %s superseded by %+v, want none", runs[i].RunID, runs[i].Superseded)
		}
	}
}

// A later run of a workflow ID with a double quote or a backslash (a
// generic source's deal id: invoice/shop/D"1) marks the run before it,
// as one of a plain ID does: the embedded server's run list finds no such
// ID by any filter, so its current run is described instead.
func TestReadSupersededFindsIDsWithQuotes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, SearchAttributes: workflows.SearchAttributeTypes(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress(), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var runs []Run
	later := map[string]string{}
	for _, id := range []string{`invoice/shop/D"1`, `invoice/shop/D\2`, `invoice/shop/D-3`} {
		// No worker takes the runs: the first is terminated, the
		// second stays running.
		first, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "nobody"}, workflows.InvoiceDealName)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.TerminateWorkflow(ctx, id, first.GetRunID(), "test"); err != nil {
			t.Fatal(err)
		}
		d, err := c.DescribeWorkflowExecution(ctx, id, first.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "nobody"}, workflows.InvoiceDealName)
		if err != nil {
			t.Fatal(err)
		}
		later[id] = second.GetRunID()
		runs = append(runs, Run{WorkflowID: id, RunID: first.GetRunID(), ExecutionStatus: "Terminated", StartTime: d.GetWorkflowExecutionInfo().GetStartTime().AsTime()})
	}
	// The run list has the later runs once the plain ID's is listed.
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `WorkflowId = "invoice/shop/D-3" AND ExecutionStatus = "Running"`})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the run list never showed the later run")
		case <-time.After(100 * time.Millisecond):
		}
	}
	readSuperseded(ctx, c, runs)
	for _, r := range runs {
		if s := r.Superseded; s == nil || s.RunID != later[r.WorkflowID] || s.ExecutionStatus != "Running" {
			t.Errorf("run of %s superseded by %+v, want the running %s", r.WorkflowID, s, later[r.WorkflowID])
		}
	}
}
