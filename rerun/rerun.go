// Package rerun starts failed InvoiceDeal runs again with the current
// config: after a mapping, a lookup table or an ERP setting was fixed,
// the deals whose runs failed on it are invoiced without waiting for the
// CRM to send them again.
//
// Runs whose invoice was created but whose write-back failed are re-run
// with that invoice (from the failed run's history): the new run only
// writes it back.
//
// A reset in the Temporal Web UI is not the same: it replays the run's own
// input, which pins the mapping file the run started with, so a run that
// failed on a mapping fails again. A re-run is a new run of the same
// workflow ID (the ID reuse policy allows it after a failure), started
// from the failed run's deal event exactly as the intake would start it
// now: the current mapping, won stages and retry policy. Its ERP writes
// keep the idempotency keys of that workflow ID.
package rerun

import (
	"context"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// Starter starts a deal's run as the intake does (intake.TemporalStarter).
type Starter interface {
	Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error)
	// StartWriteBack starts a run that only writes an existing invoice back.
	StartWriteBack(ctx context.Context, conn *connections.Connection, ev model.DealEvent, invoiced connectors.InvoiceResult) (connectors.EventResult, error)
}

// Options select the runs.
type Options struct {
	// TaskQueue is dealsync's task queue: only its runs are considered.
	TaskQueue string
	// Query narrows the selection (a Temporal list filter, e.g.
	// `Connection = "shop" AND CloseTime > "2026-11-01T00:00:00Z"`).
	Query string
	// Limit stops after this many runs (0: no limit).
	Limit int
	// TimedOut also selects runs that timed out (workflow.run_timeout)
	// before their invoice was made: an ERP or CRM that stayed down longer.
	TimedOut bool
	// WriteBack selects, instead, the runs whose invoice was created but
	// whose write-back failed (SyncStatus "writeback_failed"), and starts
	// runs that only write that invoice back to the CRM deal.
	WriteBack bool
	// DryRun lists what would be started, and starts nothing.
	DryRun bool
}

// Result is what happened to one failed run.
type Result struct {
	WorkflowID string `json:"workflow_id"`
	FailedRun  string `json:"failed_run_id"`
	Connection string `json:"connection,omitempty"`
	DealID     string `json:"deal_id,omitempty"`
	// NewRun is the run started (empty when skipped or on a dry run).
	NewRun string `json:"new_run_id,omitempty"`
	// Skipped says why no run was started.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Filter is the list filter of the runs Failed considers: dealsync's runs
// that failed before any invoice was made (SyncStatus "failed": a mapping,
// validation, ERP or CRM error), with TimedOut also those that timed out
// before (SyncStatus still "pending"); with WriteBack the runs whose
// write-back failed instead. o.Query narrows it.
func (o Options) Filter() string {
	sel := fmt.Sprintf(`ExecutionStatus = "Failed" AND SyncStatus = %q`, workflows.StatusFailed)
	switch {
	case o.WriteBack:
		sel = fmt.Sprintf(`ExecutionStatus = "Failed" AND SyncStatus = %q`, workflows.StatusWriteBackFailed)
	case o.TimedOut:
		sel = fmt.Sprintf(`(%s) OR (ExecutionStatus = "TimedOut" AND SyncStatus = %q)`, sel, workflows.StatusPending)
	}
	q := fmt.Sprintf(`TaskQueue = %q AND (%s)`, o.TaskQueue, sel)
	if o.Query != "" {
		q += " AND (" + o.Query + ")"
	}
	return q
}

// Failed starts the selected failed runs again. Runs that are no longer
// the latest of their workflow ID (a later webhook started a new one) and
// runs of connections that are no longer configured are skipped. An error
// means the selection could not be listed; failures of single runs are in
// their Result.
func Failed(ctx context.Context, c client.Client, set *connections.Set, starter Starter, o Options) ([]Result, error) {
	var results []Result
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: o.Filter(), NextPageToken: token, PageSize: 100,
		})
		if err != nil {
			return results, fmt.Errorf("listing failed runs: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			if o.Limit > 0 && len(results) >= o.Limit {
				return results, nil
			}
			id, runID := ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()
			results = append(results, one(ctx, c, set, starter, id, runID, o))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return results, nil
		}
	}
}

func one(ctx context.Context, c client.Client, set *connections.Set, starter Starter, id, runID string, o Options) Result {
	r := Result{WorkflowID: id, FailedRun: runID}
	latest, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		r.Error = "describing the workflow: " + err.Error()
		return r
	}
	if info := latest.GetWorkflowExecutionInfo(); info.GetExecution().GetRunId() != runID {
		r.Skipped = fmt.Sprintf("a later run %s (%s) exists", info.GetExecution().GetRunId(), info.GetStatus())
		return r
	}
	in, invoiced, err := history(ctx, c, id, runID, o.WriteBack)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Connection, r.DealID = in.Connection, in.Event.Deal.ID
	conn, ok := set.Get(in.Connection)
	switch {
	case !ok:
		r.Skipped = fmt.Sprintf("connection %q is no longer configured", in.Connection)
		return r
	case o.WriteBack && invoiced == nil:
		r.Error = "the run's history has no created invoice to write back"
		return r
	case o.DryRun:
		r.Skipped = "dry run"
		return r
	}
	var res connectors.EventResult
	if o.WriteBack {
		res, err = starter.StartWriteBack(ctx, conn, in.Event, *invoiced)
	} else {
		res, err = starter.Start(ctx, conn, in.Event)
	}
	switch {
	case err != nil:
		r.Error = err.Error()
	case res.Duplicate:
		r.Skipped = "another run started meanwhile: " + res.RunID
	default:
		r.NewRun = res.RunID
	}
	return r
}

// createInvoice is the activity type of the step that creates the invoice.
const createInvoice = "CreateInvoice"

// history reads the run's InvoiceDealInput (its first event) and, with
// withInvoice, the invoice the run created: the result of its
// CreateInvoice step, a local activity's marker or an activity's
// completion (nil when there is none). Without withInvoice only the first
// event is read. dealsync's payloads use the SDK's default data converter.
func history(ctx context.Context, c client.Client, id, runID string, withInvoice bool) (workflows.InvoiceDealInput, *connectors.InvoiceResult, error) {
	var in workflows.InvoiceDealInput
	dc := converter.GetDefaultDataConverter()
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var invoiced *connectors.InvoiceResult
	scheduled := map[int64]bool{} // CreateInvoice activities by event id
	first := true
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return in, nil, fmt.Errorf("reading the run's history: %w", err)
		}
		if first {
			first = false
			attrs := ev.GetWorkflowExecutionStartedEventAttributes()
			if attrs == nil || attrs.GetWorkflowType().GetName() != workflows.InvoiceDealName {
				return in, nil, errors.New("not an InvoiceDeal run")
			}
			if err := dc.FromPayloads(attrs.GetInput(), &in); err != nil {
				return in, nil, fmt.Errorf("decoding the run's input: %w", err)
			}
			if !withInvoice {
				return in, nil, nil
			}
			continue
		}
		var result *commonpb.Payloads
		switch {
		case ev.GetMarkerRecordedEventAttributes() != nil:
			m := ev.GetMarkerRecordedEventAttributes()
			var data struct{ ActivityType string }
			if m.GetFailure() != nil || dc.FromPayloads(m.GetDetails()["data"], &data) != nil || data.ActivityType != createInvoice {
				continue
			}
			result = m.GetDetails()["result"]
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == createInvoice {
				scheduled[ev.GetEventId()] = true
			}
			continue
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			done := ev.GetActivityTaskCompletedEventAttributes()
			if !scheduled[done.GetScheduledEventId()] {
				continue
			}
			result = done.GetResult()
		default:
			continue
		}
		var created connectors.InvoiceResult
		if err := dc.FromPayloads(result, &created); err == nil && created.InvoiceID != "" {
			invoiced = &created
		}
	}
	if first {
		return in, nil, errors.New("the run has no history (past the namespace's retention?)")
	}
	return in, invoiced, nil
}
