package backfill

import (
	"context"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// describer answers DescribeWorkflowExecution with one run's status and
// SyncStatus; the rest of client.Client is not used here.
type describer struct {
	client.Client
	status enumspb.WorkflowExecutionStatus
	sync   string
}

func (d describer) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	p, err := converter.GetDefaultDataConverter().ToPayload(d.sync)
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status:           d.status,
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.SyncStatusKey.GetName(): p}},
	}}, nil
}

type countingStarter struct{ starts int }

func (s *countingStarter) Start(context.Context, *connections.Connection, model.DealEvent) (connectors.EventResult, error) {
	s.starts++
	return connectors.EventResult{RunID: "new"}, nil
}

// A deal whose run ended without completing is started again, unless its
// invoice was made before the run ended (write-back failed, or timed out
// or terminated after the invoice): a new run would create the invoice
// again, kept from a duplicate only by the ERP's memory of the key.
func TestSyncSkipsDealsWhoseEndedRunMadeTheInvoice(t *testing.T) {
	conn := &connections.Connection{Name: "hs"}
	for _, c := range []struct {
		status enumspb.WorkflowExecutionStatus
		sync   string
		start  bool
	}{
		{enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, workflows.StatusFailed, true},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, workflows.StatusPending, true},
		{enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, workflows.StatusWriteBackFailed, false},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, workflows.StatusInvoiced, false},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, workflows.StatusInvoiced, false},
	} {
		st := &countingStarter{}
		r := one(context.Background(), describer{status: c.status, sync: c.sync}, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
		if started := st.starts == 1; started != c.start || (started && r.NewRun != "new") {
			t.Errorf("%s with SyncStatus %q: %+v; want started = %v", c.status, c.sync, r, c.start)
		}
		if !c.start && !strings.Contains(r.Skipped, "runs retry --writeback") {
			t.Errorf("%s with SyncStatus %q: skipped %q, want it to say how to write the invoice back", c.status, c.sync, r.Skipped)
		}
	}
}
