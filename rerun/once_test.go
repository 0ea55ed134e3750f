package rerun

import (
	"context"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// dealWithAWriteBackRun is a namespace holding a deal's completed run
// (invoice/…, its connection had no write-back then) and its write-back
// run (writeback/…) that timed out before it wrote the invoice back, the
// one run of each ID, listed in the order of listed.
type dealWithAWriteBackRun struct {
	client.Client
	listed []string // workflow IDs
	status map[string]enumspb.WorkflowExecutionStatus
	events map[string][]*historypb.HistoryEvent
}

func (d *dealWithAWriteBackRun) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, id := range d.listed {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id}, Status: d.status[id],
		})
	}
	return resp, nil
}

func (d *dealWithAWriteBackRun) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + id}, Status: d.status[id],
	}}, nil
}

func (d *dealWithAWriteBackRun) GetWorkflowHistory(_ context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	ev := sliceEvents(append([]*historypb.HistoryEvent(nil), d.events[id]...))
	return &ev
}

// A dry run of --writeback --completed --timed-out lists the deal's
// write-back run once: both the deal's completed run and its write-back
// run that timed out before writing the invoice back are selected, and
// each would start a run of the deal's write-back ID. Whichever is read
// first is listed to start; the other is skipped, naming it.
func TestDryRunListsEachDealsWriteBackOnce(t *testing.T) {
	set := genericSet(t, "hs", "https://crm.example.com/dealsync")
	inv := connectors.InvoiceResult{InvoiceID: "INV-1"}
	ev := model.DealEvent{Deal: model.Deal{ID: "4711", Stage: "won"}}
	dealID, wbID := workflows.DealWorkflowID("hs", "", "4711"), workflows.WriteBackWorkflowID("hs", "", "4711")
	ns := &dealWithAWriteBackRun{
		status: map[string]enumspb.WorkflowExecutionStatus{dealID: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, wbID: enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT},
		events: map[string][]*historypb.HistoryEvent{
			// Started before the connection wrote back.
			dealID: {started(t, workflows.InvoiceDealInput{Connection: "hs", Event: ev}), marker(t, 3, "CreateInvoice", inv)},
			// A write-back-only run, given the invoice, that timed out
			// before its write-back step completed.
			wbID: {started(t, workflows.InvoiceDealInput{Connection: "hs", WriteBack: true, Invoiced: &inv, Event: ev})},
		},
	}
	o := Options{TaskQueue: "dealsync", WriteBack: true, Completed: true, TimedOut: true, DryRun: true}
	for _, order := range [][]string{{wbID, dealID}, {dealID, wbID}} {
		ns.listed = order
		results, err := Failed(context.Background(), ns, set, &recordingStarter{}, o)
		if err != nil || len(results) != 2 {
			t.Fatalf("order %v: %+v, %v", order, results, err)
		}
		first, second := results[0], results[1]
		if first.Skipped != dryRun || first.Error != "" {
			t.Errorf("order %v: the first run read: %+v, want it listed to start", order, first)
		}
		if second.Skipped != "a run of "+wbID+" is listed above to start already, by the row of "+order[0]+" (run run-"+order[0]+"): one is started, not two" ||
			second.NewWorkflowID != "" || second.Run() != "run-"+order[1] {
			t.Errorf("order %v: the second run read: %+v, want it skipped naming the first", order, second)
		}
		if order[0] == dealID && first.NewWorkflowID != wbID {
			t.Errorf("order %v: the deal's completed run would start %q, want %s", order, first.NewWorkflowID, wbID)
		}
	}
	// Each is listed to start when it is the only one selected (the
	// query narrows the selection to it).
	for _, id := range []string{dealID, wbID} {
		ns.listed = []string{id}
		if results, err := Failed(context.Background(), ns, set, &recordingStarter{}, o); err != nil || len(results) != 1 || results[0].Skipped != dryRun {
			t.Errorf("%s alone: %+v, %v; want it listed to start", id, results, err)
		}
	}
}
