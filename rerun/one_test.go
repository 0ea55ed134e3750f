package rerun

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all" // the generic source and http target of the test's config
	"github.com/dealsync/dealsync/internal/testconfig"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// oneRun is a Temporal client that knows one run: its status and history.
type oneRun struct {
	client.Client
	runID  string
	status enumspb.WorkflowExecutionStatus
	events []*historypb.HistoryEvent
}

func (o *oneRun) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{RunId: o.runID}, Status: o.status,
	}}, nil
}

// ListWorkflow shows no run that made an invoice (InvoicedBy): the one
// run is all there is.
func (o *oneRun) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if !isInvoicedByQuery(req.GetQuery(), "wf") {
		return nil, fmt.Errorf("unexpected query %q", req.GetQuery())
	}
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}

// isInvoicedByQuery says whether q is InvoicedBy's query of workflow id.
func isInvoicedByQuery(q, id string) bool {
	return q == activities.RunsOfID(id).Query+` AND SyncStatus IN ("invoiced", "writeback_failed")`
}

// InvoicedBy names a run of the workflow, other than the one given, that
// recorded an invoice.
func TestInvoicedBy(t *testing.T) {
	ctx := context.Background()
	c := &runs{ids: []string{"r1", "r2", "r3"}, sync: map[string]string{"r1": workflows.StatusInvoiced, "r2": workflows.StatusFailed, "r3": workflows.StatusWriteBackFailed}}
	for _, tc := range []struct{ except, want string }{{"", "r1"}, {"r1", "r3"}, {"r3", "r1"}, {"r2", "r1"}} {
		if got, err := InvoicedBy(ctx, c, "wf", tc.except); err != nil || got != tc.want {
			t.Errorf("InvoicedBy(except %q) = %q, %v; want %q", tc.except, got, err, tc.want)
		}
	}
	c.sync["r3"] = workflows.StatusFailed
	if got, err := InvoicedBy(ctx, c, "wf", "r1"); err != nil || got != "" {
		t.Errorf("only the run excepted made the invoice: %q, %v; want none", got, err)
	}
}

// pagedRuns is a run list of pages (a page token is the next page's
// index) that records the queries asked.
type pagedRuns struct {
	client.Client
	pages   [][]*workflowpb.WorkflowExecutionInfo
	queries []string
}

func (p *pagedRuns) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	p.queries = append(p.queries, req.GetQuery())
	i := 0
	if tok := req.GetNextPageToken(); len(tok) > 0 {
		fmt.Sscan(string(tok), &i)
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: p.pages[i]}
	if i+1 < len(p.pages) {
		resp.NextPageToken = []byte(fmt.Sprint(i + 1))
	}
	return resp, nil
}

// A workflow ID holding a quote (the run list matches no filter written
// with it): InvoicedBy lists by the part before the quote and reads past
// the runs of other IDs that share it; none of its own: none.
func TestInvoicedByOfAWorkflowIDWithAQuote(t *testing.T) {
	run := func(wf, id string) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: wf, RunId: id}}
	}
	const id = `invoice/shop/D"1`
	c := &pagedRuns{pages: [][]*workflowpb.WorkflowExecutionInfo{{run("invoice/shop/D2", "other")}, {run(id, "self"), run(id, "made")}}}
	got, err := InvoicedBy(context.Background(), c, id, "self")
	if err != nil || got != "made" {
		t.Errorf("InvoicedBy = %q, %v; want made", got, err)
	}
	if want := `WorkflowId STARTS_WITH "invoice/shop/D" AND SyncStatus IN ("invoiced", "writeback_failed")`; len(c.queries) != 2 || c.queries[0] != want {
		t.Errorf("queries %q; want two of %s", c.queries, want)
	}
	c.pages = [][]*workflowpb.WorkflowExecutionInfo{{run("invoice/shop/D2", "other")}, {run(id, "self")}}
	if got, err := InvoicedBy(context.Background(), c, id, "self"); err != nil || got != "" {
		t.Errorf("only other IDs' runs and the one excepted: %q, %v; want none", got, err)
	}
	// `runs retry` of its failed write-back run selects it by run ID.
	if got, want := retryFilter(id, "r-1"), `'RunId = "r-1"'`; got != want {
		t.Errorf("retryFilter = %s, want %s", got, want)
	}
	if got, want := retryFilter("invoice/shop/it's", "r-1"), `'WorkflowId = "invoice/shop/it'\''s"'`; got != want {
		t.Errorf("retryFilter = %s, want %s", got, want)
	}
}

func (o *oneRun) GetWorkflowHistory(context.Context, string, string, bool, enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	ev := sliceEvents(append([]*historypb.HistoryEvent(nil), o.events...))
	return &ev
}

type recordingStarter struct {
	full, writeBacks       int
	madeWith, madeWithHash string // the last write-back run's
	writeBackID            string // the ID the last write-back run was given
}

func (s *recordingStarter) Start(context.Context, *connections.Connection, model.DealEvent) (connectors.EventResult, error) {
	s.full++
	return connectors.EventResult{RunID: "new"}, nil
}

func (s *recordingStarter) StartWriteBack(_ context.Context, _ *connections.Connection, _ model.DealEvent, _ connectors.InvoiceResult, madeWith, madeWithHash, id string) (connectors.EventResult, error) {
	s.writeBacks++
	s.madeWith, s.madeWithHash, s.writeBackID = madeWith, madeWithHash, id
	return connectors.EventResult{RunID: "new"}, nil
}

// A terminated run that still said "pending" is taken by --writeback
// --terminated: past the invoice checks when its history has the invoice
// (here its connection, a generic one, has no write-back to do), skipped,
// not an error, when it ended before making one; and never re-run in full
// while its history has an invoice, the skip naming the command that
// selects it.
func TestTerminatedPendingRuns(t *testing.T) {
	set := genericSet(t, "hs", "")
	in := workflows.InvoiceDealInput{Connection: "hs", WriteBack: true, Event: model.DealEvent{Deal: model.Deal{ID: "4711", Stage: "won"}}}
	inv := connectors.InvoiceResult{InvoiceID: "INV-1"}
	withInvoice := []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv)}
	withoutInvoice := []*historypb.HistoryEvent{started(t, in), marker(t, 2, "MapDeal", map[string]any{})}
	terminated := enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	ctx := context.Background()

	st := &recordingStarter{}
	r := one(ctx, &oneRun{runID: "r1", status: terminated, events: withInvoice}, set, st, "wf", "r1", Options{WriteBack: true, Terminated: true})
	if r.Error != "" || !strings.Contains(r.Skipped, "no longer writes back") || st.writeBacks+st.full != 0 {
		t.Fatalf("--writeback, invoice in the history: %+v, starter %+v", r, st)
	}
	st = &recordingStarter{}
	r = one(ctx, &oneRun{runID: "r1", status: terminated, events: withoutInvoice}, set, st, "wf", "r1", Options{WriteBack: true, Terminated: true})
	if r.Error != "" || !strings.Contains(r.Skipped, "retry it without --writeback") || st.writeBacks+st.full != 0 {
		t.Fatalf("--writeback, no invoice: %+v, starter %+v", r, st)
	}
	st = &recordingStarter{}
	r = one(ctx, &oneRun{runID: "r1", status: terminated, events: withInvoice}, set, st, "wf", "r1", Options{Terminated: true})
	if !strings.Contains(r.Skipped, "`dealsync runs retry --writeback --terminated`") || st.writeBacks+st.full != 0 {
		t.Fatalf("full re-run of a run with an invoice: %+v, starter %+v", r, st)
	}
	// A run without a write-back to do: its invoice is all there was, so
	// no command is suggested (--writeback would skip it in turn).
	in.WriteBack = false
	noWriteBack := []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv)}
	st = &recordingStarter{}
	r = one(ctx, &oneRun{runID: "r1", status: terminated, events: noWriteBack}, set, st, "wf", "r1", Options{Terminated: true})
	if !strings.Contains(r.Skipped, "no write-back to do: nothing to retry") || strings.Contains(r.Skipped, "--writeback") || st.writeBacks+st.full != 0 {
		t.Fatalf("full re-run of a run with an invoice and no write-back: %+v, starter %+v", r, st)
	}
}

// --writeback --completed with an ending's flag writes back the invoice of
// a run that ended so with no write-back to do, under the deal's own ID
// (its run keeps no later run from starting: a write-back of another ID
// would leave the deal open to a full run); a full retry of it names that
// command. A completed run started by hand under another ID is skipped:
// the deal's own run may have written the invoice back.
func TestLateWriteBackOfARunThatEndedOtherwise(t *testing.T) {
	set := genericSet(t, "hs", "https://crm.example.com/dealsync")
	in := workflows.InvoiceDealInput{Connection: "hs", Event: model.DealEvent{Deal: model.Deal{ID: "4711", Stage: "won"}}}
	events := []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", connectors.InvoiceResult{InvoiceID: "INV-1"})}
	terminated := enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
	ctx := context.Background()
	id := workflows.DealWorkflowID("hs", "", "4711")

	st := &recordingStarter{}
	r := one(ctx, &oneRun{runID: "r1", status: terminated, events: events}, set, st, id, "r1", Options{WriteBack: true, Terminated: true})
	if !strings.HasSuffix(r.Skipped, "add --completed to write its invoice back now") || st.writeBacks != 0 {
		t.Fatalf("--writeback --terminated: %+v, starter %+v", r, st)
	}
	r = one(ctx, &oneRun{runID: "r1", status: terminated, events: events}, set, st, id, "r1", Options{Terminated: true})
	if !strings.Contains(r.Skipped, "`dealsync runs retry --writeback --terminated --completed` writes the invoice back") || st.full+st.writeBacks != 0 {
		t.Fatalf("--terminated: %+v, starter %+v", r, st)
	}
	r = one(ctx, &oneRun{runID: "r1", status: terminated, events: events}, set, st, id, "r1", Options{WriteBack: true, Completed: true, Terminated: true})
	if r.NewRun == "" || r.NewWorkflowID != "" || st.writeBacks != 1 || st.writeBackID != "" {
		t.Fatalf("--writeback --completed --terminated: %+v, starter %+v; want a write-back under the deal's ID", r, st)
	}

	st = &recordingStarter{}
	byHand := &noWriteBackRun{oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, events: events}}
	r = one(ctx, byHand, set, st, "by-hand-7f3a", "r1", Options{WriteBack: true, Completed: true})
	if !strings.HasPrefix(r.Skipped, "the run was started under another workflow ID than its deal's ("+id+"): write its invoice back by hand") || st.writeBacks != 0 {
		t.Fatalf("a completed run started by hand: %+v, starter %+v", r, st)
	}
	// Once the deal's write-back run wrote it back, it says so.
	r = one(ctx, &oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, events: events}, set, st, "by-hand-7f3a", "r1", Options{WriteBack: true, Completed: true})
	if !strings.HasPrefix(r.Skipped, "the run was started under another workflow ID than its deal's; its invoice was written back by writeback/hs/4711") || st.writeBacks != 0 {
		t.Fatalf("a completed run started by hand, its deal written back: %+v, starter %+v", r, st)
	}
}

func mustPayload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noWriteBackRun is oneRun without any write-back run.
type noWriteBackRun struct{ oneRun }

func (o *noWriteBackRun) DescribeWorkflowExecution(ctx context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if workflows.IsWriteBackWorkflowID(id) {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	return o.oneRun.DescribeWorkflowExecution(ctx, id, runID)
}

// runs is a Temporal client that knows a workflow's runs: the last one is
// the latest.
type runs struct {
	client.Client
	ids    []string
	status map[string]enumspb.WorkflowExecutionStatus
	sync   map[string]string // SyncStatus
	events map[string][]*historypb.HistoryEvent
	lag    int // the last runs the run list does not show yet
	// wf is the workflow ID ("wf" when empty); others are runs of other
	// IDs that a filter by its prefix lists too (one holding a quote).
	wf     string
	others []*workflowpb.WorkflowExecutionInfo
}

func (o *runs) id() string {
	if o.wf == "" {
		return "wf"
	}
	return o.wf
}

// ListWorkflow lists the runs after the first (the query asks for those
// started after the run being retried, the first here).
func (o *runs) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if isInvoicedByQuery(req.GetQuery(), o.id()) {
		resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: slices.Clone(o.others)}
		for _, id := range o.ids[:len(o.ids)-o.lag] {
			if st := o.sync[id]; st == workflows.StatusInvoiced || st == workflows.StatusWriteBackFailed {
				resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: o.id(), RunId: id}, Status: o.status[id]})
			}
		}
		return resp, nil
	}
	if !strings.HasPrefix(req.GetQuery(), activities.RunsOfID(o.id()).Query+` AND StartTime >=`) {
		return nil, fmt.Errorf("query %q does not select the runs of %s after one", req.GetQuery(), o.id())
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: slices.Clone(o.others)}
	for _, id := range o.ids[1 : len(o.ids)-o.lag] {
		p, err := converter.GetDefaultDataConverter().ToPayload(o.sync[id])
		if err != nil {
			return nil, err
		}
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: o.id(), RunId: id}, Status: o.status[id],
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.SyncStatusKey.GetName(): p}},
		})
	}
	return resp, nil
}

func (o *runs) DescribeWorkflowExecution(_ context.Context, _, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if runID == "" {
		runID = o.ids[len(o.ids)-1] // the latest
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{RunId: runID}, Status: o.status[runID],
	}}, nil
}

func (o *runs) GetWorkflowHistory(_ context.Context, _ string, runID string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	evs := o.events[runID]
	if filter == enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT {
		evs = evs[len(evs)-1:]
	}
	ev := sliceEvents(append([]*historypb.HistoryEvent(nil), evs...))
	return &ev
}

func failedNotWon(t *testing.T, d activities.NotWonDetails) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 9, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{
			Failure: &failurepb.Failure{Message: "not won", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{
				Type: activities.ErrTypeDealNotWon, NonRetryable: true, Details: payloads(t, d),
			}}},
		}}}
}

// A deal won (e1), lost (e2: run r1 ended not won), won again (e3: run r2
// failed on a mapping error); the CRM then delivered e1 again, and run r3
// ended it as an old win. r2 has the deal's newest state: `runs retry`
// retries it. A later run that saw the deal lost after r2's newest event
// does supersede it.
func TestRetryPastALaterRunThatRefusedAnOldWin(t *testing.T) {
	set := buildSet(t, `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"}
connections:
  shop:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
    settle_time: 5s
`)
	at := func(min int) time.Time { return time.Date(2026, 11, 20, 10, min, 0, 0, time.UTC) }
	e3 := model.DealEvent{EventID: "e3", OccurredAt: at(3), Deal: model.Deal{ID: "D-1", Stage: "closed_won"}}
	r2 := []*historypb.HistoryEvent{started(t, workflows.InvoiceDealInput{Connection: "shop", Event: e3, WonStages: []string{"closed_won"}})}
	failed := enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	ctx := context.Background()

	oldWin := failedNotWon(t, activities.NotWonDetails{EventIDs: []string{"e1", "e2"}, LatestAt: at(2), Stage: "closed_lost"})
	st := &recordingStarter{}
	c := &runs{ids: []string{"r2", "r3"}, status: map[string]enumspb.WorkflowExecutionStatus{"r2": failed, "r3": failed},
		sync:   map[string]string{"r2": workflows.StatusFailed, "r3": workflows.StatusSkipped},
		events: map[string][]*historypb.HistoryEvent{"r2": r2, "r3": {oldWin}}}
	if r := one(ctx, c, set, st, "wf", "r2", Options{}); r.NewRun != "new" || st.full != 1 {
		t.Fatalf("a later run that only refused an older win: %+v, starter %+v; want r2 retried", r, st)
	}

	// The same of a workflow ID holding a quote, listed by its prefix with
	// a run of another ID that made its invoice: that one is not this
	// deal's, so r2 is retried all the same.
	st = &recordingStarter{}
	quoted := &runs{ids: c.ids, status: c.status, sync: c.sync, events: c.events, wf: `w"f`, others: []*workflowpb.WorkflowExecutionInfo{{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "w-other", RunId: "other"}, Status: failed,
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.SyncStatusKey.GetName(): mustPayload(t, workflows.StatusWriteBackFailed)}},
	}}}
	if r := one(ctx, quoted, set, st, `w"f`, "r2", Options{}); r.NewRun != "new" || st.full != 1 {
		t.Fatalf("a workflow ID with a quote: %+v, starter %+v; want r2 retried", r, st)
	}

	// A run between them made the invoice (its write-back then failed): a
	// full re-run of r2 would invoice the deal again.
	st = &recordingStarter{}
	between := &runs{ids: []string{"r2", "r2b", "r3"}, status: map[string]enumspb.WorkflowExecutionStatus{"r2": failed, "r2b": failed, "r3": failed},
		sync:   map[string]string{"r2": workflows.StatusFailed, "r2b": workflows.StatusWriteBackFailed, "r3": workflows.StatusSkipped},
		events: map[string][]*historypb.HistoryEvent{"r2": r2, "r3": {oldWin}}}
	if r := one(ctx, between, set, st, "wf", "r2", Options{}); !strings.Contains(r.Skipped, `a later run r2b (Failed, SyncStatus "writeback_failed") exists`) || st.full != 0 {
		t.Fatalf("a run between that made the invoice: %+v, starter %+v; want r2 skipped naming r2b", r, st)
	}

	// An earlier run made the invoice and was terminated while it
	// lingered; the latest (a later delivery's) failed: a full re-run of
	// the latest would invoice the deal again.
	st = &recordingStarter{}
	earlier := &runs{ids: []string{"r1", "r2"}, status: map[string]enumspb.WorkflowExecutionStatus{"r1": enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "r2": failed},
		sync:   map[string]string{"r1": workflows.StatusInvoiced, "r2": workflows.StatusFailed},
		events: map[string][]*historypb.HistoryEvent{"r2": r2}}
	if r := one(ctx, earlier, set, st, "wf", "r2", Options{}); !strings.Contains(r.Skipped, "run r1 of this deal made its invoice") || st.full != 0 {
		t.Fatalf("an earlier run made the invoice: %+v, starter %+v; want r2 skipped naming r1", r, st)
	}

	// A run list that does not show the latest run yet may not show a run
	// in between either: an error, not a retry.
	st = &recordingStarter{}
	c.lag = 1
	if r := one(ctx, c, set, st, "wf", "r2", Options{}); !strings.Contains(r.Error, "does not show the latest run r3 yet") || st.full != 0 {
		t.Fatalf("a run list behind: %+v, starter %+v; want an error", r, st)
	}
	c.lag = 0

	lostLater := failedNotWon(t, activities.NotWonDetails{EventIDs: []string{"e4"}, LatestAt: at(4), Stage: "closed_lost"})
	st = &recordingStarter{}
	c.events["r3"] = []*historypb.HistoryEvent{lostLater}
	if r := one(ctx, c, set, st, "wf", "r2", Options{}); !strings.Contains(r.Skipped, "a later run r3") || st.full != 0 {
		t.Fatalf("a later run that saw the deal lost after r2: %+v, starter %+v; want r2 skipped", r, st)
	}

	// A run past which the retry looks is judged by its own end, not the
	// later run's: r2 timed out after making its invoice, which only
	// `--writeback --timed-out` writes back.
	st = &recordingStarter{}
	c.events["r3"] = []*historypb.HistoryEvent{oldWin}
	c.status["r2"] = enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT
	c.events["r2"] = []*historypb.HistoryEvent{
		started(t, workflows.InvoiceDealInput{Connection: "shop", Event: e3, WonStages: []string{"closed_won"}, WriteBack: true}),
		marker(t, 3, "CreateInvoice", connectors.InvoiceResult{InvoiceID: "INV-1"}),
	}
	if r := one(ctx, c, set, st, "wf", "r2", Options{TimedOut: true}); !strings.Contains(r.Skipped, "--writeback --timed-out") || st.full != 0 {
		t.Fatalf("r2 timed out with its invoice: %+v, starter %+v; want it pointed to runs retry --writeback --timed-out", r, st)
	}
	c.status["r2"], c.events["r2"] = failed, r2

	st = &recordingStarter{}
	c.status["r3"] = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	if r := one(ctx, c, set, st, "wf", "r2", Options{}); !strings.Contains(r.Skipped, "a later run r3") || st.full != 0 {
		t.Fatalf("a later completed run: %+v, starter %+v; want r2 skipped", r, st)
	}
}

// Run r1 made the invoice and its write-back failed; a later delivery's
// run r2 failed on its mapping before any invoice. `runs retry
// --writeback` still writes r1's invoice back (r2 did not take it over,
// and `runs retry` skips r2 pointing to --writeback): before, both skipped
// and the invoice was never written back. A later run that is running,
// completed, recorded an invoice or has one in its history does take it
// over, and a canceled run is selected with --canceled.
func TestWriteBackPastALaterRunWithoutAnInvoice(t *testing.T) {
	t.Setenv("HS_SECRET", "s3cret")
	set := buildSet(t, `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"}
connections:
  hs:
    target: erp
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      base_url: http://127.0.0.1:1
      accounts:
        "62515": {access_token: pat-na1-62515}
`)
	in := workflows.InvoiceDealInput{Connection: "hs", WriteBack: true, Event: model.DealEvent{Account: "62515", Deal: model.Deal{ID: "4711", Stage: "closedwon"}}}
	inv := connectors.InvoiceResult{InvoiceID: "INV-1"}
	r1 := []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv)}
	r2 := []*historypb.HistoryEvent{started(t, in), marker(t, 2, "MapDeal", map[string]any{})}
	failed := enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	ctx := context.Background()
	newRuns := func() *runs {
		return &runs{ids: []string{"r1", "r2"}, status: map[string]enumspb.WorkflowExecutionStatus{"r1": failed, "r2": failed},
			sync:   map[string]string{"r1": workflows.StatusWriteBackFailed, "r2": workflows.StatusFailed},
			events: map[string][]*historypb.HistoryEvent{"r1": r1, "r2": r2}}
	}

	st := &recordingStarter{}
	if r := one(ctx, newRuns(), set, st, "wf", "r1", Options{WriteBack: true}); r.NewRun != "new" || st.writeBacks != 1 || st.full != 0 {
		t.Fatalf("a later run that failed before any invoice: %+v, starter %+v; want r1's invoice written back", r, st)
	}
	st = &recordingStarter{}
	if r := one(ctx, newRuns(), set, st, "wf", "r2", Options{}); !strings.Contains(r.Skipped, "run r1 of this deal made its invoice") ||
		!strings.Contains(r.Skipped, "--writeback") || st.writeBacks+st.full != 0 {
		t.Fatalf("runs retry of the later run: %+v, starter %+v; want it skipped pointing to --writeback", r, st)
	}

	for _, tc := range []struct {
		name   string
		status enumspb.WorkflowExecutionStatus
		sync   string
		events []*historypb.HistoryEvent
	}{
		{"running", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StatusPending, r2},
		{"completed", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, workflows.StatusInvoiced, r2},
		{"failed writing back itself", failed, workflows.StatusWriteBackFailed, r1},
		{"timed out with the invoice in its history", enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, workflows.StatusPending, r1},
	} {
		c := newRuns()
		c.status["r2"], c.sync["r2"], c.events["r2"] = tc.status, tc.sync, tc.events
		st := &recordingStarter{}
		if r := one(ctx, c, set, st, "wf", "r1", Options{WriteBack: true}); !strings.Contains(r.Skipped, "a later run r2") || st.writeBacks+st.full != 0 {
			t.Errorf("a later run %s: %+v, starter %+v; want r1 skipped naming r2", tc.name, r, st)
		}
	}
	// A loss run that continued as a new win's run (r2), which failed on
	// its mapping (r3): neither takes the write-back over.
	c := &runs{ids: []string{"r1", "r2", "r3"}, status: map[string]enumspb.WorkflowExecutionStatus{"r1": failed,
		"r2": enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, "r3": failed},
		sync:   map[string]string{"r1": workflows.StatusWriteBackFailed, "r2": workflows.StatusSkipped, "r3": workflows.StatusFailed},
		events: map[string][]*historypb.HistoryEvent{"r1": r1, "r3": r2}}
	st = &recordingStarter{}
	if r := one(ctx, c, set, st, "wf", "r1", Options{WriteBack: true}); r.NewRun != "new" || st.writeBacks != 1 {
		t.Errorf("a loss run continued as a failed win's run: %+v, starter %+v; want r1 written back", r, st)
	}
	// A later run that timed out before its invoice does not take it over.
	c = newRuns()
	c.status["r2"], c.sync["r2"] = enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, workflows.StatusPending
	st = &recordingStarter{}
	if r := one(ctx, c, set, st, "wf", "r1", Options{WriteBack: true}); r.NewRun != "new" || st.writeBacks != 1 {
		t.Errorf("a later run that timed out without an invoice: %+v, starter %+v; want r1 written back", r, st)
	}

	// A canceled run after its invoice (the Web UI's "Request
	// cancellation" during the write-back's retries) is written back with
	// --writeback --canceled, and a full retry names that command.
	c = &runs{ids: []string{"r1"}, status: map[string]enumspb.WorkflowExecutionStatus{"r1": enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED},
		sync: map[string]string{"r1": workflows.StatusInvoiced}, events: map[string][]*historypb.HistoryEvent{"r1": r1}}
	st = &recordingStarter{}
	if r := one(ctx, c, set, st, "wf", "r1", Options{Canceled: true}); !strings.Contains(r.Skipped, "`dealsync runs retry --writeback --canceled`") || st.writeBacks+st.full != 0 {
		t.Errorf("full retry of a canceled run with its invoice: %+v, starter %+v", r, st)
	}
	st = &recordingStarter{}
	if r := one(ctx, c, set, st, "wf", "r1", Options{WriteBack: true, Canceled: true}); r.NewRun != "new" || st.writeBacks != 1 {
		t.Errorf("--writeback --canceled: %+v, starter %+v; want the invoice written back", r, st)
	}
	// One whose write-back was done is not pointed to --writeback.
	c.events["r1"] = append(r1[:2:2], marker(t, 4, "WriteBack", nil))
	st = &recordingStarter{}
	if r := one(ctx, c, set, st, "wf", "r1", Options{Canceled: true}); !strings.Contains(r.Skipped, "write-back was done before it was canceled") ||
		strings.Contains(r.Skipped, "--writeback") || st.writeBacks+st.full != 0 {
		t.Errorf("full retry of a canceled run that wrote back: %+v, starter %+v", r, st)
	}
}

// genericSet is the connection set of a config whose one connection,
// name, has a generic source (writing back to writeBackURL, or not when
// "") and invoices to an http target no test reaches.
func genericSet(t *testing.T, name, writeBackURL string) *connections.Set {
	t.Helper()
	writeBack := ""
	if writeBackURL != "" {
		writeBack = fmt.Sprintf(", write_back: {url: %q}", writeBackURL)
	}
	return buildSet(t, fmt.Sprintf(`
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"}
connections:
  %s:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw%s}
    target: erp
`, name, writeBack))
}

// buildSet loads the config text yaml and builds its connections.
func buildSet(t *testing.T, yaml string) *connections.Set {
	t.Helper()
	_, set := testconfig.Build(t, "", yaml, connectors.Env{})
	return set
}

// A RecordDealLoss run made no invoice: CreatedInvoice reads its history
// as having none (`deals sync` starts the deal when such a run, its latest,
// timed out or was terminated), not as an error; another workflow type
// still is one. A later loss run does not take over an earlier run's
// write-back.
func TestCreatedInvoiceOfALossRun(t *testing.T) {
	in := workflows.InvoiceDealInput{Connection: "hs", WriteBack: true, Event: model.DealEvent{Deal: model.Deal{ID: "4711", Stage: "closedlost"}}}
	loss := started(t, in)
	loss.GetWorkflowExecutionStartedEventAttributes().WorkflowType.Name = workflows.RecordDealLossName
	ctx := context.Background()
	for _, status := range []enumspb.WorkflowExecutionStatus{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED} {
		c := &oneRun{runID: "r1", status: status, events: []*historypb.HistoryEvent{loss, marker(t, 5, "PreviousRun", map[string]any{})}}
		if inv, err := CreatedInvoice(ctx, c, "wf", "r1"); err != nil || inv != nil {
			t.Errorf("a RecordDealLoss run that ended %s: %+v, %v; want no invoice, no error", status, inv, err)
		}
	}
	other := started(t, in)
	other.GetWorkflowExecutionStartedEventAttributes().WorkflowType.Name = "Other"
	if _, err := CreatedInvoice(ctx, &oneRun{runID: "r1", events: []*historypb.HistoryEvent{other}}, "wf", "r1"); err == nil {
		t.Error("another workflow type's history was read as a run without an invoice")
	}

	// r1 failed writing its invoice back; a later loss run r2 that still
	// said "pending" when it ended does not take the write-back over.
	set := genericSet(t, "hs", "")
	inv := connectors.InvoiceResult{InvoiceID: "INV-1"}
	c := &runs{ids: []string{"r1", "r2"},
		status: map[string]enumspb.WorkflowExecutionStatus{"r1": enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "r2": enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED},
		sync:   map[string]string{"r1": workflows.StatusWriteBackFailed, "r2": workflows.StatusPending},
		events: map[string][]*historypb.HistoryEvent{"r1": {started(t, in), marker(t, 3, "CreateInvoice", inv)}, "r2": {loss}}}
	r := one(ctx, c, set, &recordingStarter{}, "wf", "r1", Options{WriteBack: true})
	if r.Error != "" || strings.Contains(r.Skipped, "a later run r2") {
		t.Errorf("a later loss run: %+v; want r1's write-back not taken over by r2", r)
	}
}

// runsAfter of a workflow ID holding a quote, whose filter lists more
// runs of other IDs than it reads: the error says it read no further,
// and does not claim the latest run unlisted when it was read.
func TestRunsAfterOfAPrefixedIDPastItsBound(t *testing.T) {
	const id = `invoice/shop/D"1`
	run := func(wf, r string) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: wf, RunId: r}}
	}
	c := &pagedRuns{pages: [][]*workflowpb.WorkflowExecutionInfo{{run(id, "latest")}}}
	for i := range 10 {
		c.pages = append(c.pages, []*workflowpb.WorkflowExecutionInfo{run(fmt.Sprint("invoice/shop/D", i), fmt.Sprint("other-", i))})
	}
	never := func(*workflowpb.WorkflowExecutionInfo) (bool, error) { return false, nil }
	_, err := runsAfter(context.Background(), c, id, "self", "latest", time.Now(), never)
	if err == nil || !strings.Contains(err.Error(), "none of them one of this workflow ID that supersedes it") || strings.Contains(err.Error(), "the latest") {
		t.Errorf("got %v; want the bound said, not the latest run called unlisted", err)
	}
}
