package activities_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/internal/testlog"
)

// runsFake answers the run list and the close events of runs.
type runsFake struct {
	query  string
	listed []*workflowpb.WorkflowExecutionInfo
	closes map[string]*historypb.HistoryEvent   // run id → close event
	all    map[string][]*historypb.HistoryEvent // run id → all its events
	read   []string                             // run ids whose close event was read
	err    error
	// pages, when set, are the list's pages (listed is then unused):
	// the page token is the next page's index.
	pages  [][]*workflowpb.WorkflowExecutionInfo
	tokens []string // the page tokens asked for, "" for the first
}

func (f *runsFake) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.query = r.GetQuery()
	if f.pages == nil {
		return &workflowservice.ListWorkflowExecutionsResponse{Executions: f.listed}, f.err
	}
	f.tokens = append(f.tokens, string(r.GetNextPageToken()))
	i := 0
	if tok := r.GetNextPageToken(); len(tok) > 0 {
		i, _ = strconv.Atoi(string(tok))
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: f.pages[i]}
	if i+1 < len(f.pages) {
		resp.NextPageToken = []byte(strconv.Itoa(i + 1))
	}
	return resp, f.err
}

func (f *runsFake) GetWorkflowHistory(_ context.Context, _, runID string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	f.read = append(f.read, runID)
	ev, known := f.closes[runID]
	switch {
	case !known:
		return &events{err: serviceerror.NewNotFound("workflow execution not found")}
	case filter == enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT:
		return &events{evs: []*historypb.HistoryEvent{ev}}
	}
	return &events{evs: f.all[runID]}
}

type events struct {
	evs []*historypb.HistoryEvent
	err error // answered by the first Next
}

func (e *events) HasNext() bool { return len(e.evs) > 0 || e.err != nil }
func (e *events) Next() (*historypb.HistoryEvent, error) {
	if err := e.err; err != nil {
		e.err = nil
		return nil, err
	}
	ev := e.evs[0]
	e.evs = e.evs[1:]
	return ev, nil
}

func failedRun(id string, closed time.Time) *workflowpb.WorkflowExecutionInfo {
	return failedRunOf("invoice/demo/D-1", id, closed)
}

func failedRunOf(workflowID, id string, closed time.Time) *workflowpb.WorkflowExecutionInfo {
	return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: id}, CloseTime: timestamppb.New(closed)}
}

func failure(t *testing.T, typ string, details any) *historypb.HistoryEvent {
	info := &failurepb.ApplicationFailureInfo{Type: typ}
	if details != nil {
		p, err := converter.GetDefaultDataConverter().ToPayloads(details)
		if err != nil {
			t.Fatal(err)
		}
		info.Details = p
	}
	return &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
		WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{
			Failure: &failurepb.Failure{Message: "m", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: info}},
		}}}
}

// PreviousRun reads the newest failed run other than the asking one, and
// its DealNotWon details.
func TestPreviousRunReadsTheNewestFailedRun(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	want := activities.NotWonDetails{EventIDs: []string{"evt_1", "evt_2"}, LatestAt: t0.Add(time.Minute), Stage: "closed_lost"}
	f := &runsFake{
		listed: []*workflowpb.WorkflowExecutionInfo{failedRun("old", t0), failedRun("newest", t0.Add(time.Hour)), failedRun("self", t0.Add(2*time.Hour))},
		closes: map[string]*historypb.HistoryEvent{"old": failure(t, "Validation", nil), "newest": failure(t, "DealNotWon", want)},
	}
	a := &activities.Activities{Runs: f}
	got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{Connection: "demo", WorkflowID: "invoice/demo/D-1", RunID: "self"})
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != "newest" || got.ErrorType != "DealNotWon" || got.NotWon == nil ||
		strings.Join(got.NotWon.EventIDs, ",") != "evt_1,evt_2" || !got.NotWon.LatestAt.Equal(want.LatestAt) || got.NotWon.Stage != "closed_lost" {
		t.Fatalf("got %+v (%+v)", got, got.NotWon)
	}
	if f.query != `WorkflowId = "invoice/demo/D-1" AND ExecutionStatus = "Failed" AND SyncStatus = "skipped"` || strings.Join(f.read, ",") != "newest" {
		t.Errorf("query %q, close events read %v", f.query, f.read)
	}

	// Another kind of failure (a RecordDealLoss run whose read of the runs
	// before it failed) hides no older loss: it is passed over.
	f.closes["newest"] = failure(t, activities.ErrTypeRunsUnreadable, nil)
	f.closes["old"] = failure(t, "DealNotWon", want)
	if got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"}); err != nil || got.RunID != "old" || got.NotWon == nil {
		t.Errorf("a newer run that failed otherwise: %+v %v; want the older DealNotWon run", got, err)
	}
	f.closes["old"] = failure(t, "Validation", nil)
	if got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"}); err != nil || got.RunID != "" {
		t.Errorf("no run ended DealNotWon: %+v %v; want none", got, err)
	}
	// None listed (or none yet), no reader, or the list failing.
	f.listed = f.listed[2:]
	if got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"}); err != nil || got.RunID != "" {
		t.Errorf("only the asking run listed: %+v %v", got, err)
	}
	if got, err := (&activities.Activities{}).PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "x"}); err != nil || got.RunID != "" {
		t.Errorf("no reader: %+v %v", got, err)
	}
	f.err = errors.New("unavailable")
	var appErr *temporal.ApplicationError
	if _, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"}); !errors.As(err, &appErr) ||
		appErr.Type() != activities.ErrTypeTemporalUnavailable || appErr.NonRetryable() || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("list failing: %v, want a retryable TemporalUnavailable", err)
	}
	f.err = serviceerror.NewInvalidArgument("invalid query")
	if _, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"}); !errors.As(err, &appErr) ||
		appErr.Type() != activities.ErrTypeRunsUnreadable || !appErr.NonRetryable() {
		t.Errorf("list refused: %v, want a non-retryable RunsUnreadable", err)
	}
}

// The run list is read page by page until a run that ended DealNotWon:
// one behind a full page of runs that failed otherwise is found. A deal
// with more such runs than PreviousRun reads fails the run, naming it,
// rather than answer "none".
func TestPreviousRunReadsLaterPages(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	f := &runsFake{closes: map[string]*historypb.HistoryEvent{}}
	page := func(n int, from time.Time) []*workflowpb.WorkflowExecutionInfo {
		var out []*workflowpb.WorkflowExecutionInfo
		for i := range n {
			id := fmt.Sprintf("r%d", from.Sub(t0)/time.Minute+time.Duration(i))
			out = append(out, failedRun(id, from.Add(-time.Duration(i)*time.Second)))
			f.closes[id] = failure(t, activities.ErrTypeRunsUnreadable, nil)
		}
		return out
	}
	f.pages = [][]*workflowpb.WorkflowExecutionInfo{page(20, t0.Add(40*time.Minute)), page(20, t0.Add(20*time.Minute)), {failedRun("lost", t0)}}
	want := activities.NotWonDetails{EventIDs: []string{"evt_9"}, LatestAt: t0}
	f.closes["lost"] = failure(t, "DealNotWon", want)
	a := &activities.Activities{Runs: f}
	got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"})
	if err != nil || got.RunID != "lost" || got.NotWon == nil || strings.Join(got.NotWon.EventIDs, ",") != "evt_9" {
		t.Fatalf("got %+v %v; want the DealNotWon run of the third page", got, err)
	}
	if strings.Join(f.tokens, "|") != "|1|2" || len(f.read) != 41 {
		t.Errorf("page tokens asked %q, %d close events read; want |1|2 and 41", f.tokens, len(f.read))
	}

	// Pages without end: the bound is reached, and the run is told.
	f.pages = nil
	for i := range 30 {
		f.pages = append(f.pages, page(20, t0.Add(time.Duration(1000-20*i)*time.Minute)))
	}
	f.tokens, f.read = nil, nil
	_, err = a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeRunsUnreadable || !appErr.NonRetryable() || !strings.Contains(err.Error(), "newest 500 skipped runs of invoice/demo/D-1") {
		t.Errorf("too many runs: %v; want a non-retryable RunsUnreadable naming the bound", err)
	}
	if len(f.tokens) != 25 || len(f.read) != 500 {
		t.Errorf("%d pages and %d close events read; want 25 and 500", len(f.tokens), len(f.read))
	}
}

// A run that ended DealNotWon before failures carried their events: the
// events it saw are read from its history (start and signals; a payload of
// another codec is passed over). A listed run whose history is gone
// (retention) gives way to the next one. A deal id with a quote is
// listed by the part of its workflow ID before the quote (the SQL run list
// matches no filter written with it), and a run of another ID the filter
// lists (newer, and a loss too) is passed over.
func TestPreviousRunReadsAnOlderRunsHistory(t *testing.T) {
	const id = `invoice/demo/D-"1"`
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	dc := converter.GetDefaultDataConverter()
	start, _ := dc.ToPayloads(map[string]any{"connection": "demo", "event": map[string]any{"event_id": "evt_1", "occurred_at": t0, "deal": map[string]any{"id": `D-"1"`, "stage": "closed_won"}}})
	lost, _ := dc.ToPayloads(map[string]any{"event_id": "evt_2", "occurred_at": t0.Add(time.Minute), "deal": map[string]any{"id": `D-"1"`, "stage": "closed_lost"}})
	other, _ := dc.ToPayloads(map[string]any{"event_id": "evt_x", "occurred_at": t0.Add(time.Hour)})
	old := []*historypb.HistoryEvent{
		{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: start}}},
		{Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: "deal-event", Input: lost}}},
		{Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: "another", Input: other}}},
		{Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: "deal-event", Input: &commonpb.Payloads{
			Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: []byte{1, 2, 3}}}}}}},
		failure(t, "DealNotWon", nil),
	}
	f := &runsFake{
		listed: []*workflowpb.WorkflowExecutionInfo{failedRunOf(id, "old", t0), failedRunOf(id, "gone", t0.Add(time.Hour)), failedRunOf("invoice/demo/D-2", "other", t0.Add(2*time.Hour))},
		closes: map[string]*historypb.HistoryEvent{"old": old[len(old)-1], "other": failure(t, "DealNotWon", activities.NotWonDetails{EventIDs: []string{"evt_other"}})},
		all:    map[string][]*historypb.HistoryEvent{"old": old},
	}
	a := &activities.Activities{Runs: f}
	got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: id, RunID: "self", Signal: "deal-event"})
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != "old" || got.ErrorType != "DealNotWon" || got.NotWon == nil || strings.Join(got.NotWon.EventIDs, ",") != "evt_1,evt_2" ||
		!got.NotWon.LatestAt.Equal(t0.Add(time.Minute)) || got.NotWon.Stage != "closed_lost" {
		t.Fatalf("got %+v (%+v)", got, got.NotWon)
	}
	if want := `WorkflowId STARTS_WITH "invoice/demo/D-" AND ExecutionStatus = "Failed" AND SyncStatus = "skipped"`; f.query != want {
		t.Errorf("query %s, want %s", f.query, want)
	}
	if strings.Contains(strings.Join(f.read, ","), "other") {
		t.Errorf("read the runs %v; want none of another workflow ID", f.read)
	}
}

// byQuery answers the run list by the SyncStatus its query asks for.
type byQuery struct {
	*runsFake
	lists   map[string][]*workflowpb.WorkflowExecutionInfo // SyncStatus → runs
	listErr map[string]error
}

func (f *byQuery) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	for status, runs := range f.lists {
		if strings.Contains(r.GetQuery(), `SyncStatus = "`+status+`"`) {
			return &workflowservice.ListWorkflowExecutionsResponse{Executions: runs}, f.listErr[status]
		}
	}
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}

// With WithInvoice (a run recording a loss), PreviousRun also names the
// newest earlier run that made the deal's invoice and failed writing it
// back; a run list that cannot say so does not fail the read (the loss
// is recorded all the same), but says why.
func TestPreviousRunWithInvoiceNamesARunThatFailedWritingBack(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	f := &byQuery{
		runsFake: &runsFake{closes: map[string]*historypb.HistoryEvent{
			"made":  failure(t, activities.ErrTypeWriteBackFailed, map[string]any{"invoice_id": "INV-7", "number": "2026-0007"}),
			"older": failure(t, activities.ErrTypeWriteBackFailed, map[string]any{"invoice_id": "INV-1"}),
		}},
		lists: map[string][]*workflowpb.WorkflowExecutionInfo{"writeback_failed": {failedRun("older", t0), failedRun("made", t0.Add(time.Hour))}},
	}
	a := &activities.Activities{Runs: f}
	in := activities.PreviousRunInput{WorkflowID: "invoice/demo/D-1", RunID: "self", WithInvoice: true}
	got, err := a.PreviousRun(context.Background(), in)
	if err != nil || got.Invoiced == nil || *got.Invoiced != (activities.InvoicedRun{RunID: "made", InvoiceID: "INV-7", Number: "2026-0007"}) || got.InvoicedUnread != "" {
		t.Fatalf("got %+v (%+v), %v; want the newest run that made invoice INV-7", got, got.Invoiced, err)
	}
	// Without WithInvoice (an InvoiceDeal run's read), nothing of it.
	in.WithInvoice = false
	if got, err := a.PreviousRun(context.Background(), in); err != nil || got.Invoiced != nil {
		t.Errorf("without WithInvoice: %+v, %v", got, err)
	}
	// The list failing: no error, the reason said.
	in.WithInvoice = true
	f.listErr = map[string]error{"writeback_failed": errors.New("visibility unavailable")}
	if got, err := a.PreviousRun(context.Background(), in); err != nil || got.Invoiced != nil || !strings.Contains(got.InvoicedUnread, "visibility unavailable") {
		t.Errorf("the list failing: %+v, %v; want no error and the reason in InvoicedUnread", got, err)
	}
}

// A deal whose workflow ID holds a backslash: its runs are listed by the
// part before it, page by page, past pages of other IDs' runs, until one
// of its own made the invoice.
func TestPreviousRunWithInvoiceOfAPrefixedIDReadsPastOtherIDs(t *testing.T) {
	const id = `invoice/demo/D\1`
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	f := &runsFake{
		closes: map[string]*historypb.HistoryEvent{
			"other": failure(t, activities.ErrTypeWriteBackFailed, map[string]any{"invoice_id": "INV-OTHER"}),
			"made":  failure(t, activities.ErrTypeWriteBackFailed, map[string]any{"invoice_id": "INV-7"}),
		},
		pages: [][]*workflowpb.WorkflowExecutionInfo{
			{failedRunOf("invoice/demo/D2", "other", t0.Add(time.Hour))},
			{failedRunOf(id, "made", t0)},
		},
	}
	a := &activities.Activities{Runs: f}
	got, err := a.PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: id, RunID: "self", WithInvoice: true})
	if err != nil || got.Invoiced == nil || got.Invoiced.InvoiceID != "INV-7" {
		t.Fatalf("got %+v (%+v), %v; want run made's invoice INV-7", got, got.Invoiced, err)
	}
	if want := `WorkflowId STARTS_WITH "invoice/demo/D" AND ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed"`; f.query != want {
		t.Errorf("query %s, want %s", f.query, want)
	}
}

// RunsOfID: an ID the SQL run list can match is filtered by equality; one
// with a `"` or a `\` by the part before it, matched exactly after.
func TestRunsOfID(t *testing.T) {
	for _, c := range []struct{ id, query string }{
		{"invoice/shop/D-1", `WorkflowId = "invoice/shop/D-1"`},
		{"invoice/shop/it's", `WorkflowId = "invoice/shop/it's"`},
		{`invoice/shop/D"1\2`, `WorkflowId STARTS_WITH "invoice/shop/D"`},
		{`invoice/shop/D\1"2`, `WorkflowId STARTS_WITH "invoice/shop/D"`},
		{`"`, `WorkflowId STARTS_WITH ""`},
	} {
		f := activities.RunsOfID(c.id)
		if f.Query != c.query || f.Prefixed() != (c.query != `WorkflowId = "`+c.id+`"`) {
			t.Errorf("RunsOfID(%q) = %q (prefixed %v), want %q", c.id, f.Query, f.Prefixed(), c.query)
		}
		run := func(id string) *workflowpb.WorkflowExecutionInfo {
			return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}}
		}
		if !f.Matches(run(c.id)) || f.Matches(run(c.id+"x")) || f.Matches(run("invoice/shop/D")) {
			t.Errorf("RunsOfID(%q) matches another ID or not its own", c.id)
		}
	}
	// Only backslash and quote are escaped: a control character goes as
	// it is (Go's %q would write \x01, which the filter's parser reads as
	// "x01").
	if got, want := activities.QueryString("a\"b\\c\x01"), "\"a\\\"b\\\\c\x01\""; got != want {
		t.Errorf("QueryString = %q, want %q", got, want)
	}
}

// The read of a deal's earlier runs names the deal and the connection in
// its log lines (a failed attempt's), as the other steps do: it named
// the connection only, and a deal's runs could not be found by its id.
func TestPreviousRunLogsNameTheDeal(t *testing.T) {
	var out testlog.Buffer
	a := &activities.Activities{Runs: &runsFake{err: errors.New("the run list is down")}}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, nil))))
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		return workflow.ExecuteLocalActivity(ctx, a.PreviousRun, activities.PreviousRunInput{Connection: "demo",
			WorkflowID: "invoice/demo/D-1", RunID: "self", DealID: "D-1"}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "previous"})
	env.ExecuteWorkflow("previous")
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "step attempt failed") {
			line = l
		}
	}
	for _, want := range []string{"step=previous_run", "connection=demo", "deal_id=D-1", "the run list is down"} {
		if !strings.Contains(line, want) {
			t.Errorf("the failed read's line %q lacks %q:\n%s", line, want, out.String())
		}
	}
}

// endlessRuns is a run list that answers a filter of the skipped runs
// with none (skipped false) or with page after page, each of one run of
// another workflow ID, and a token for the next.
type endlessRuns struct {
	*runsFake
	skipped bool
	lists   int
}

func (f *endlessRuns) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if !f.skipped && strings.Contains(r.GetQuery(), `SyncStatus = "skipped"`) {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	f.lists++
	return &workflowservice.ListWorkflowExecutionsResponse{
		Executions:    []*workflowpb.WorkflowExecutionInfo{failedRunOf(fmt.Sprintf("invoice/demo/D%d", f.lists), fmt.Sprint("other-", f.lists), time.Now())},
		NextPageToken: []byte("next"),
	}, nil
}

// A deal id holding a quote, whose prefix the runs of more other deals
// share than dealsync reads: the read of its loss fails saying so (the
// bound met by other deals' runs, the count read, what to do), not
// telling the operator to delete runs that record other deals' losses;
// the read of an invoice whose write-back failed says it could not be
// read, rather than "none".
func TestPreviousRunOfAPrefixedIDPastItsBound(t *testing.T) {
	const id = `invoice/demo/D"1`
	f := &endlessRuns{runsFake: &runsFake{}, skipped: true}
	_, err := (&activities.Activities{Runs: f}).PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: id, RunID: "self"})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeRunsUnreadable || !appErr.NonRetryable() {
		t.Fatalf("got %v; want a RunsUnreadable failure", err)
	}
	for _, want := range []string{`cannot match invoice/demo/D"1 exactly (it holds a double quote)`, `starting "invoice/demo/D"`,
		fmt.Sprintf("the newest %d of them (other deals' too)", f.lists), "invoice it by hand"} {
		if !strings.Contains(appErr.Message(), want) {
			t.Errorf("%q; want %q in it", appErr.Message(), want)
		}
	}
	if strings.Contains(appErr.Message(), "delete") {
		t.Errorf("%q; want no advice to delete runs (other deals' losses among them)", appErr.Message())
	}

	f = &endlessRuns{runsFake: &runsFake{}}
	got, err := (&activities.Activities{Runs: f}).PreviousRun(context.Background(), activities.PreviousRunInput{WorkflowID: id, RunID: "self", WithInvoice: true})
	if err != nil || got.Invoiced != nil || !strings.Contains(got.InvoicedUnread, fmt.Sprintf("read the newest %d runs that failed writing their invoice back", f.lists)) {
		t.Errorf("got %+v, %v; want the invoiced run unread, saying why", got, err)
	}
}
