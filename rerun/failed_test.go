package rerun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// failedRuns is a namespace holding failed runs of the `demo` connection
// (or conn), listed two to a page. A workflow ID in superseded has a
// later run, so its failed run is skipped; one in completed is a run that
// completed instead.
type failedRuns struct {
	client.Client // only the methods below are called
	t             *testing.T
	ids           []string
	superseded    map[string]bool
	completed     map[string]bool
	read          int // runs listed so far
	conn          string
	// failures are the failure types of the runs' close events, by
	// workflow ID ("unreadable": the read fails); nil: every close
	// event read is the history's first event, which tells none.
	failures   map[string]string
	closeReads int
}

func (f *failedRuns) status(id string) enumspb.WorkflowExecutionStatus {
	if f.completed[id] {
		return enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}
	return enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
}

func (f *failedRuns) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if slices.ContainsFunc(f.ids, func(id string) bool { return isInvoicedByQuery(req.GetQuery(), id) }) {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil // no run made an invoice
	}
	from := 0
	if len(req.GetNextPageToken()) > 0 {
		from, _ = strconv.Atoi(string(req.GetNextPageToken()))
	}
	to := min(from+2, len(f.ids))
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for _, id := range f.ids[from:to] {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "failed-" + id}, Status: f.status(id)})
	}
	if to < len(f.ids) {
		resp.NextPageToken = []byte(strconv.Itoa(to))
	}
	f.read = to
	return resp, nil
}

func (f *failedRuns) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	runID := "failed-" + id
	if f.superseded[id] {
		runID = "later-" + id
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: runID},
		Status:    f.status(id),
	}}, nil
}

func (f *failedRuns) GetWorkflowHistory(_ context.Context, id, _ string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	if filter == enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT && f.failures != nil {
		f.closeReads++
		if f.failures[id] == "unreadable" {
			return &closeEvent{l: &listedRuns{}, err: errors.New("frontend unavailable")}
		}
		return &sliceEvents{failedWith(appFailure(f.failures[id], "failed with "+f.failures[id]))}
	}
	conn := "demo"
	if f.conn != "" {
		conn = f.conn
	}
	in := workflows.InvoiceDealInput{Connection: conn, Event: model.DealEvent{EventID: "ev-" + id, Deal: model.Deal{ID: id}}}
	return &sliceEvents{started(f.t, in)}
}

// countingStarter starts every run it is given.
type countingStarter struct{ started []string }

func (s *countingStarter) Start(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	s.started = append(s.started, ev.Deal.ID)
	return connectors.EventResult{RunID: "new-" + ev.Deal.ID}, nil
}

func (s *countingStarter) StartWriteBack(context.Context, *connections.Connection, model.DealEvent, connectors.InvoiceResult, string, string, string) (connectors.EventResult, error) {
	panic("not a write-back")
}

func demoSet(t *testing.T) *connections.Set {
	t.Helper()
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	set, err := connections.Build(cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// The limit counts the runs started again: the skipped runs before them
// (a later run exists) do not use it up, and Failed stops listing once
// the limit's runs are started. A dry run counts the runs it would start.
func TestFailedLimitCountsTheRunsStarted(t *testing.T) {
	set := demoSet(t)
	for _, dry := range []bool{false, true} {
		f := &failedRuns{t: t, ids: []string{"d1", "d2", "d3", "d4", "d5", "d6", "d7"}, superseded: map[string]bool{"d1": true, "d2": true, "d4": true}}
		starter := &countingStarter{}
		results, err := Failed(context.Background(), f, set, starter, Options{TaskQueue: "dealsync", Limit: 2, DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		var retried, skipped []string
		for _, r := range results {
			if r.Error != "" {
				t.Fatalf("%s: %s", r.WorkflowID, r.Error)
			}
			if r.NewRun != "" || r.Skipped == "dry run" {
				retried = append(retried, r.WorkflowID)
			} else {
				skipped = append(skipped, r.WorkflowID)
			}
		}
		if got := strings.Join(retried, " "); got != "d3 d5" {
			t.Errorf("dry run %v: retried %q, want the first 2 not skipped: d3 d5", dry, got)
		}
		if got := strings.Join(skipped, " "); got != "d1 d2 d4" {
			t.Errorf("dry run %v: skipped %q, want d1 d2 d4", dry, got)
		}
		if want := map[bool]string{false: "d3 d5", true: ""}[dry]; strings.Join(starter.started, " ") != want {
			t.Errorf("dry run %v: started %q, want %q", dry, starter.started, want)
		}
		if f.read != 6 {
			t.Errorf("dry run %v: listed %d runs, want 6 (3 pages of 2, none after d5's)", dry, f.read)
		}
	}
}

// Runs that are all skipped do not make Failed read the whole selection:
// it reads at most readsPerRetry (100) × the limit of them, and says it
// stopped.
func TestFailedLimitBoundsTheRunsRead(t *testing.T) {
	f := &failedRuns{t: t, superseded: map[string]bool{}}
	for i := range 305 {
		id := fmt.Sprintf("d%d", i)
		f.ids = append(f.ids, id)
		f.superseded[id] = true
	}
	results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", Limit: 2})
	if err == nil || !strings.Contains(err.Error(), "stopped after reading 200 selected runs") {
		t.Fatalf("error %v, want one saying it stopped after reading 200 runs", err)
	}
	if len(results) != 200 {
		t.Fatalf("%d results, want 200", len(results))
	}
	// The whole selection when it is shorter than the bound: no error.
	f.ids = f.ids[:150]
	if results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", Limit: 2}); err != nil || len(results) != 150 {
		t.Fatalf("%d results, %v; want all 150 skipped runs and no error", len(results), err)
	}
}

// A run whose connection the config does not have is skipped saying so,
// and marked for the command's hint (a config given wrongly, or none).
func TestFailedMarksRunsOfConnectionsNotConfigured(t *testing.T) {
	f := &failedRuns{t: t, ids: []string{"d1", "d2"}, conn: "old"}
	results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync"})
	if err != nil || len(results) != 2 {
		t.Fatalf("%+v, %v", results, err)
	}
	for _, r := range results {
		if !r.Unconfigured || r.Skipped != `connection "old" is no longer configured` {
			t.Errorf("%+v; want it skipped as not configured", r)
		}
	}
	results, err = Failed(context.Background(), &failedRuns{t: t, ids: []string{"d1"}}, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync"})
	if err != nil || len(results) != 1 || results[0].Unconfigured {
		t.Errorf("a configured connection's run: %+v, %v", results, err)
	}
}

// A completed run (--writeback --completed) is named completed_run_id in
// the JSON, not failed_run_id, which the failed runs keep.
func TestCompletedRunsAreNotNamedFailed(t *testing.T) {
	f := &failedRuns{t: t, ids: []string{"d1", "d2"}, completed: map[string]bool{"d2": true}}
	results, err := Failed(context.Background(), f, demoSet(t), &countingStarter{}, Options{TaskQueue: "dealsync", WriteBack: true, Completed: true, DryRun: true})
	if err != nil || len(results) != 2 {
		t.Fatalf("%+v, %v", results, err)
	}
	b, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	var objects []map[string]any
	if err := json.Unmarshal(b, &objects); err != nil {
		t.Fatal(err)
	}
	if objects[0]["failed_run_id"] != "failed-d1" || objects[0]["completed_run_id"] != nil || results[0].Run() != "failed-d1" {
		t.Errorf("the failed run: %s", b)
	}
	if objects[1]["completed_run_id"] != "failed-d2" || objects[1]["failed_run_id"] != nil || results[1].Run() != "failed-d2" {
		t.Errorf("the completed run: %s", b)
	}
}
