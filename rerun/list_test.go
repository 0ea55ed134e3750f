package rerun

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// listedRuns is a run list of n runs, served in pages of at most the page
// size asked and pageMax; a query with "bad" in it is refused as Temporal
// refuses a filter it cannot parse. With tokenWhenFull a full page has a
// next-page token even when no run is left, as SQL visibility answers.
type listedRuns struct {
	client.Client
	t             *testing.T
	n             int
	pageMax       int
	tokenWhenFull bool
	queries       []string
	sizes         []int32
	// ended makes run i end with another status than run's (Terminated,
	// TimedOut, Canceled).
	ended map[int]enumspb.WorkflowExecutionStatus
	// syncStatus is run i's SyncStatus, when not that of run's.
	syncStatus map[int]string
	// memos are run i's memo fields besides the mapping's.
	memos map[int]map[string]any
	// closes is run i's close event, or the error reading it; nil: every
	// run failed on its mapping (mappingFailed).
	closes func(i int) (*historypb.HistoryEvent, error)

	// taskAttempts is the attempt of running run i's pending workflow
	// task (DescribeWorkflowExecution); absent: none pending.
	taskAttempts map[int]int32
	// pendingActivities are running run i's pending activities
	// (DescribeWorkflowExecution).
	pendingActivities map[int][]*workflowpb.PendingActivityInfo
	// histories is running run i's history from its end, a page per
	// element, each page followed by a next-page token but the last
	// (GetWorkflowExecutionHistoryReverse); absent: the read fails.
	histories map[int][][]*historypb.HistoryEvent
	pagesRead map[int]int // of histories, per run

	mu                    sync.Mutex
	reads                 []string // the runs whose close events were read
	filters               []enumspb.HistoryEventFilterType
	inFlight, maxInFlight int
}

// DescribeWorkflowExecution serves a running run's pending workflow task
// (taskAttempts).
func (l *listedRuns) DescribeWorkflowExecution(_ context.Context, _, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(runID, "run-"))
	if err != nil {
		l.t.Errorf("run %q", runID)
	}
	resp := &workflowservice.DescribeWorkflowExecutionResponse{}
	if n, ok := l.taskAttempts[i]; ok {
		resp.PendingWorkflowTask = &workflowpb.PendingWorkflowTaskInfo{Attempt: n}
	}
	resp.PendingActivities = l.pendingActivities[i]
	return resp, nil
}

func (l *listedRuns) WorkflowService() workflowservice.WorkflowServiceClient {
	return reverseHistories{l: l}
}

// reverseHistories serves listedRuns.histories.
type reverseHistories struct {
	workflowservice.WorkflowServiceClient
	l *listedRuns
}

func (r reverseHistories) GetWorkflowExecutionHistoryReverse(ctx context.Context, req *workflowservice.GetWorkflowExecutionHistoryReverseRequest, _ ...grpc.CallOption) (*workflowservice.GetWorkflowExecutionHistoryReverseResponse, error) {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	// A raw WorkflowService call has no deadline of its own (the client's
	// methods have one): without its own, a frontend that does not answer
	// holds `runs list` for good.
	if _, ok := ctx.Deadline(); !ok {
		r.l.t.Errorf("reverse history request of %s without a deadline", req.GetExecution().GetRunId())
	}
	i, err := strconv.Atoi(strings.TrimPrefix(req.GetExecution().GetRunId(), "run-"))
	if err != nil || req.GetNamespace() != "default" || req.GetMaximumPageSize() < 1 || req.GetMaximumPageSize() > 100 {
		r.l.t.Errorf("reverse history request %v", req)
	}
	pages, ok := r.l.histories[i]
	if !ok {
		return nil, serviceerror.NewUnavailable("connection refused")
	}
	if r.l.pagesRead == nil {
		r.l.pagesRead = map[int]int{}
	}
	page := 0
	if len(req.GetNextPageToken()) > 0 {
		page, _ = strconv.Atoi(string(req.GetNextPageToken()))
	}
	r.l.pagesRead[i]++
	resp := &workflowservice.GetWorkflowExecutionHistoryReverseResponse{History: &historypb.History{Events: pages[page]}}
	if page+1 < len(pages) {
		resp.NextPageToken = []byte(strconv.Itoa(page + 1))
	}
	return resp, nil
}

// GetWorkflowHistory serves run i's close event (closes), counting the
// reads and how many are under way at once.
func (l *listedRuns) GetWorkflowHistory(_ context.Context, id, runID string, _ bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads = append(l.reads, id+" "+runID)
	l.filters = append(l.filters, filter)
	l.inFlight++
	l.maxInFlight = max(l.maxInFlight, l.inFlight)
	i, err := strconv.Atoi(strings.TrimPrefix(runID, "run-"))
	if err != nil {
		l.t.Errorf("run %q", runID)
	}
	closes := l.closes
	if closes == nil {
		closes = func(int) (*historypb.HistoryEvent, error) { return mappingFailed(), nil }
	}
	ev, err := closes(i)
	return &closeEvent{l: l, ev: ev, err: err}
}

// closeEvent is a history of one close event, or of an error.
type closeEvent struct {
	l    *listedRuns
	ev   *historypb.HistoryEvent
	err  error
	done bool
}

func (c *closeEvent) HasNext() bool {
	if c.done {
		return false
	}
	c.done = true
	c.l.mu.Lock()
	c.l.inFlight--
	c.l.mu.Unlock()
	return true
}

func (c *closeEvent) Next() (*historypb.HistoryEvent, error) { return c.ev, c.err }

// failedWith is the close event of a run that failed with f.
func failedWith(f *failurepb.Failure) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 12, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: f}}}
}

// appFailure is an application error's failure, as dealsync's runs fail.
func appFailure(typ, msg string) *failurepb.Failure {
	return &failurepb.Failure{Message: msg, FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
		ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: typ, NonRetryable: true}}}
}

// mappingMessage is a mapping error's message, as a run failed on it.
const mappingMessage = `mapping "acme": field tax_code: lookup "vat": no entry for "CH"`

func mappingFailed() *historypb.HistoryEvent {
	return failedWith(appFailure(activities.ErrTypeMapping, mappingMessage))
}

func (l *listedRuns) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	l.queries = append(l.queries, req.GetQuery())
	l.sizes = append(l.sizes, req.GetPageSize())
	if strings.Contains(req.GetQuery(), "bad") {
		return nil, serviceerror.NewInvalidArgument("invalid query: unable to parse")
	}
	from := 0
	if len(req.GetNextPageToken()) > 0 {
		from, _ = strconv.Atoi(string(req.GetNextPageToken()))
	}
	to := min(from+int(req.GetPageSize()), from+l.pageMax, l.n)
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for i := from; i < to; i++ {
		resp.Executions = append(resp.Executions, l.run(i))
	}
	if to < l.n || (l.tokenWhenFull && to-from == int(req.GetPageSize())) {
		resp.NextPageToken = []byte(strconv.Itoa(to))
	}
	return resp, nil
}

var listStart = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// run is the i-th run: a failed one with every search attribute and the
// memo, when i is even; a running one with the intake's attributes only,
// when odd.
func (l *listedRuns) run(i int) *workflowpb.WorkflowExecutionInfo {
	id := "invoice/shop/D-" + strconv.Itoa(i)
	sa := map[string]any{workflows.DealIDKey.GetName(): "D-" + strconv.Itoa(i), workflows.ConnectionKey.GetName(): "shop", workflows.SyncStatusKey.GetName(): workflows.StatusPending}
	ex := &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: "run-" + strconv.Itoa(i)},
		Type:      &commonpb.WorkflowType{Name: workflows.InvoiceDealName},
		Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		StartTime: timestamppb.New(listStart.Add(-time.Duration(i) * time.Minute)),
	}
	if i%2 == 0 {
		ex.Status = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
		if s, ok := l.ended[i]; ok {
			ex.Status = s
		}
		ex.CloseTime = timestamppb.New(listStart.Add(time.Second - time.Duration(i)*time.Minute))
		sa[workflows.SyncStatusKey.GetName()] = workflows.StatusFailed
		sa[workflows.CrmAccountKey.GetName()] = "62515"
		sa[workflows.ErpInvoiceIDKey.GetName()] = "INV-" + strconv.Itoa(i)
		sa[workflows.AmountKey.GetName()] = 650.5
		sa[workflows.CurrencyKey.GetName()] = "CHF"
		sa[workflows.ChangedAfterInvoiceKey.GetName()] = true
		ex.Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{
			workflows.MemoMapping: l.payload("generic-standard"), workflows.MemoMappingHash: l.payload("0123456789ab"),
		}}
	}
	for k, v := range l.memos[i] {
		if ex.Memo == nil {
			ex.Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
		}
		ex.Memo.Fields[k] = l.payload(v)
	}
	if st, ok := l.syncStatus[i]; ok {
		sa[workflows.SyncStatusKey.GetName()] = st
	}
	ex.SearchAttributes = &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{}}
	for k, v := range sa {
		ex.SearchAttributes.IndexedFields[k] = l.payload(v)
	}
	return ex
}

func (l *listedRuns) payload(v any) *commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// List reads the run list page by page up to the limit, says whether more
// may match, and shows each run's status, times, search attributes and
// memo mapping.
func TestList(t *testing.T) {
	ctx := context.Background()
	l := &listedRuns{t: t, n: 7, pageMax: 3}
	runs, more, err := List(ctx, l, ListOptions{TaskQueue: "dealsync", Query: `SyncStatus = "failed" OR Connection = "shop"`, Limit: 5})
	if err != nil || !more || len(runs) != 5 {
		t.Fatalf("%d runs, more %v, %v; want 5 of 7, more", len(runs), more, err)
	}
	if want := `TaskQueue = "dealsync" AND (SyncStatus = "failed" OR Connection = "shop")`; l.queries[0] != want {
		t.Errorf("query %s, want %s", l.queries[0], want)
	}
	var got []int32 // the list's pages, not the read of later runs (readSuperseded)
	for i, q := range l.queries {
		if !strings.HasPrefix(q, "WorkflowId IN (") {
			got = append(got, l.sizes[i])
		}
	}
	if len(got) != 2 || got[0] != 6 || got[1] != 3 {
		t.Errorf("page sizes asked %v, want [6 3] (one more than the limit leaves)", got)
	}
	amount, closed := 650.5, listStart.Add(time.Second)
	want := Run{WorkflowID: "invoice/shop/D-0", RunID: "run-0", WorkflowType: "InvoiceDeal", ExecutionStatus: "Failed",
		StartTime: listStart, CloseTime: &closed, DealID: "D-0", Connection: "shop", CrmAccount: "62515", SyncStatus: "failed",
		ErpInvoiceID: "INV-0", ChangedAfterInvoice: true, Amount: &amount, Currency: "CHF", Mapping: "generic-standard", MappingHash: "0123456789ab"}
	if got := runs[0]; got.WorkflowID != want.WorkflowID || got.RunID != want.RunID || got.WorkflowType != want.WorkflowType ||
		got.ExecutionStatus != want.ExecutionStatus || !got.StartTime.Equal(want.StartTime) || got.CloseTime == nil || !got.CloseTime.Equal(closed) ||
		got.DealID != want.DealID || got.Connection != want.Connection || got.CrmAccount != want.CrmAccount || got.SyncStatus != want.SyncStatus ||
		got.ErpInvoiceID != want.ErpInvoiceID || !got.ChangedAfterInvoice || got.Amount == nil || *got.Amount != amount ||
		got.Currency != want.Currency || got.Mapping != want.Mapping || got.MappingHash != want.MappingHash {
		t.Errorf("run 0:\n got %+v\nwant %+v", got, want)
	}
	if got := runs[1]; got.ExecutionStatus != "Running" || got.CloseTime != nil || got.SyncStatus != "pending" ||
		got.Amount != nil || got.ErpInvoiceID != "" || got.Mapping != "" || got.ChangedAfterInvoice {
		t.Errorf("run 1 (running, no memo): %+v", got)
	}
	for i, r := range runs {
		if r.WorkflowID != "invoice/shop/D-"+strconv.Itoa(i) {
			t.Errorf("run %d is %s", i, r.WorkflowID)
		}
	}
	// The failed runs listed have their failure, the running ones none.
	if got := runs[0]; got.FailureType != activities.ErrTypeMapping || got.FailureMessage != mappingMessage || got.FailureReadError != "" {
		t.Errorf("run 0's failure: %q %q %q", got.FailureType, got.FailureMessage, got.FailureReadError)
	}
	if got := runs[1]; got.FailureType != "" || got.FailureMessage != "" || got.FailureReadError != "" {
		t.Errorf("run 1 (running) has a failure: %+v", got)
	}

	// The whole list when it is shorter than the limit: not more.
	l = &listedRuns{t: t, n: 7, pageMax: 3}
	if runs, more, err := List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 50}); err != nil || more || len(runs) != 7 {
		t.Fatalf("%d runs, more %v, %v; want all 7", len(runs), more, err)
	}
	if l.queries[0] != `TaskQueue = "dealsync"` {
		t.Errorf("default query %s", l.queries[0])
	}

	// Exactly the limit, from a run list that gives a full page a token
	// (SQL visibility does): not more.
	for _, n := range []int{3, 4} {
		l = &listedRuns{t: t, n: n, pageMax: 100, tokenWhenFull: true}
		if runs, more, err := List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 3}); err != nil || more != (n > 3) || len(runs) != 3 {
			t.Errorf("%d runs, limit 3: %d listed, more %v, %v; want 3, more %v", n, len(runs), more, err, n > 3)
		}
	}

	// A filter Temporal refuses, one that would widen the selection, and
	// a limit out of bounds are errors.
	if _, _, err := List(ctx, &listedRuns{t: t}, ListOptions{TaskQueue: "dealsync", Query: "bad = ", Limit: 5}); !errors.Is(err, ErrInvalidQuery) ||
		!strings.Contains(err.Error(), "Temporal refused the filter") {
		t.Errorf("a query Temporal refuses: %v", err)
	}
	if _, _, err := List(ctx, &listedRuns{t: t}, ListOptions{TaskQueue: "dealsync", Query: `a = "b") OR (c = "d"`, Limit: 5}); !errors.Is(err, ErrInvalidQuery) {
		t.Errorf("a query that widens the selection: %v", err)
	}
	for _, limit := range []int{0, -1, MaxListLimit + 1} {
		if _, _, err := List(ctx, &listedRuns{t: t}, ListOptions{TaskQueue: "dealsync", Limit: limit}); err == nil {
			t.Errorf("limit %d: no error", limit)
		}
	}
}

// Review: a failed run's failure could not be read without a browser.
// List reads the close event of each listed run that failed or was
// terminated (and of no other: running, timed out, canceled, or past the
// limit), once, at most 8 at a time, and gives its type and whole message;
// an activity's error the workflow returned as it was is told by its
// cause; a read that fails is noted in the run, and the list goes on.
func TestListReadsTheFailures(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("the ERP refused the invoice line; ", 20)
	l := &listedRuns{t: t, n: 40, pageMax: 7,
		ended: map[int]enumspb.WorkflowExecutionStatus{
			8:  enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
			12: enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
			14: enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
			16: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		},
		closes: func(i int) (*historypb.HistoryEvent, error) {
			switch i {
			case 2:
				return nil, serviceerror.NewUnavailable("frontend unavailable")
			case 4:
				return nil, serviceerror.NewNotFound("workflow execution not found")
			case 6:
				return failedWith(&failurepb.Failure{Message: "activity error", Cause: appFailure(activities.ErrTypeERPRejected, long),
					FailureInfo: &failurepb.Failure_ActivityFailureInfo{ActivityFailureInfo: &failurepb.ActivityFailureInfo{}}}), nil
			case 8:
				return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
					Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{
						Reason: "stuck in retries during the ERP outage", Identity: "ops@bastion"}}}, nil
			case 10:
				return failedWith(&failurepb.Failure{Message: "deadline", FailureInfo: &failurepb.Failure_TimeoutFailureInfo{TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{}}}), nil
			case 16:
				return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
					Attributes: &historypb.HistoryEvent_WorkflowExecutionTerminatedEventAttributes{WorkflowExecutionTerminatedEventAttributes: &historypb.WorkflowExecutionTerminatedEventAttributes{}}}, nil
			}
			return mappingFailed(), nil
		}}
	runs, more, err := List(ctx, l, ListOptions{TaskQueue: "dealsync", Limit: 30})
	if err != nil || !more || len(runs) != 30 {
		t.Fatalf("%d runs, more %v, %v; want 30 of 40, more", len(runs), more, err)
	}
	// One read per failed or terminated run listed: runs 0 to 28, even,
	// but the timed-out 12 and the canceled 14.
	var want []string
	for i := 0; i < 30; i += 2 {
		if i != 12 && i != 14 {
			want = append(want, "invoice/shop/D-"+strconv.Itoa(i)+" run-"+strconv.Itoa(i))
		}
	}
	got := slices.Clone(l.reads)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("close events read:\n%v\nwant those of the failed and terminated runs listed, once each:\n%v", got, want)
	}
	for _, f := range l.filters {
		if f != enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT {
			t.Errorf("a history read with filter %v, want the close event alone", f)
		}
	}
	if l.maxInFlight > 8 {
		t.Errorf("%d close events read at once, want at most 8", l.maxInFlight)
	}

	type failure struct{ typ, msg, unread string }
	for i, w := range map[int]failure{
		0:  {activities.ErrTypeMapping, mappingMessage, ""},
		2:  {"", "", "frontend unavailable"},
		4:  {"", "", "no longer has the run's history"},
		6:  {activities.ErrTypeERPRejected, long, ""}, // whole
		8:  {"", "stuck in retries during the ERP outage (by ops@bastion)", ""},
		10: {"TimeoutError", "deadline", ""},
		12: {}, 14: {}, 16: {},
		1: {}, 29: {},
	} {
		r := runs[i]
		if r.FailureType != w.typ || r.FailureMessage != w.msg || (w.unread == "") != (r.FailureReadError == "") || !strings.Contains(r.FailureReadError, w.unread) {
			t.Errorf("run %d (%s): failure %q %q, unread %q; want %q %q, unread %q", i, r.ExecutionStatus, r.FailureType, r.FailureMessage, r.FailureReadError, w.typ, w.msg, w.unread)
		}
	}

	// In JSON: failure_type and failure_message, left out when empty;
	// failure_read_error when unread.
	for i, keys := range map[int]map[string]bool{
		0: {"failure_type": true, "failure_message": true, "failure_read_error": false},
		1: {"failure_type": false, "failure_message": false, "failure_read_error": false},
		2: {"failure_type": false, "failure_message": false, "failure_read_error": true},
	} {
		b, err := json.Marshal(runs[i])
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		for key, present := range keys {
			if _, ok := obj[key]; ok != present {
				t.Errorf("run %d's JSON has %q: %v, want %v\n%s", i, key, ok, present, b)
			}
		}
	}
	if !strings.Contains(mustJSON(t, runs[0]), `"failure_type":"MappingError","failure_message":"mapping \"acme\": field tax_code: lookup \"vat\": no entry for \"CH\""`) {
		t.Errorf("run 0's JSON: %s", mustJSON(t, runs[0]))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// memoRun is a failed run whose memo names a mapping.
type memoRun struct {
	oneRun
	memo map[string]string
}

func (m *memoRun) DescribeWorkflowExecution(ctx context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	resp, err := m.oneRun.DescribeWorkflowExecution(ctx, id, runID)
	memo := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range m.memo {
		p, _ := converter.GetDefaultDataConverter().ToPayload(v)
		memo.Fields[k] = p
	}
	resp.WorkflowExecutionInfo.Memo = memo
	return resp, err
}

// A retry names the mapping the new run uses, the one the config gives
// the connection now, and warns, naming both, when the failed run's memo
// names another (the workers had a DEALSYNC_* mapping the operator's shell
// lacks); it still starts the run.
func TestRetryNamesTheNewRunsMapping(t *testing.T) {
	set := genericSet(t, "shop", "")
	ctx := context.Background()
	in := workflows.InvoiceDealInput{Connection: "shop", Event: model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-1", Stage: "won"}}}
	failed := func(mapping, hash string) *memoRun {
		return &memoRun{
			oneRun: oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, events: []*historypb.HistoryEvent{started(t, in)}},
			memo:   map[string]string{workflows.MemoMapping: mapping, workflows.MemoMappingHash: hash},
		}
	}
	builtin := mapping.Builtin.Hash()
	for _, dry := range []bool{true, false} {
		st := &recordingStarter{}
		r := one(ctx, failed("generic-standard", "0123456789ab"), set, st, "wf", "r1", Options{DryRun: dry})
		if !r.retried() || r.Error != "" {
			t.Fatalf("dry run %v: %+v", dry, r)
		}
		if r.Mapping != "default" || r.MappingHash != builtin || r.FailedMapping != "generic-standard" || r.FailedMappingHash != "0123456789ab" || !r.MappingChanged() {
			t.Errorf("dry run %v: mappings %+v", dry, r)
		}
		for _, name := range []string{"new run default (hash " + builtin + ")", "failed run generic-standard (hash 0123456789ab)"} {
			if !strings.Contains(r.MappingWarning, name) {
				t.Errorf("dry run %v: warning %q does not name %q", dry, r.MappingWarning, name)
			}
		}
	}
	// The same mapping: named, no warning.
	r := one(ctx, failed("default", builtin), set, &recordingStarter{}, "wf", "r1", Options{})
	if r.NewRun == "" || r.Mapping != "default" || r.MappingChanged() || r.MappingWarning != "" {
		t.Errorf("same mapping: %+v", r)
	}
	// The same name, another hash (the mapping file was fixed): a warning.
	r = one(ctx, failed("default", "fedcba987654"), set, &recordingStarter{}, "wf", "r1", Options{DryRun: true})
	if !strings.Contains(r.MappingWarning, "failed run default (hash fedcba987654)") {
		t.Errorf("another hash: %+v", r)
	}
	// A failed run without a memo (older than the memo): named, no warning.
	r = one(ctx, failed("", ""), set, &recordingStarter{}, "wf", "r1", Options{DryRun: true})
	if r.Mapping != "default" || r.MappingChanged() || r.MappingWarning != "" {
		t.Errorf("no memo: %+v", r)
	}
}

// A run started to write an invoice back maps nothing: it is started with
// the mapping the invoice was made with, the failed run's memo, for its
// own memo, not the connection's current mapping.
func TestWriteBackRunKeepsTheInvoicesMapping(t *testing.T) {
	set := genericSet(t, "shop", "http://127.0.0.1:1/invoices")
	in := workflows.InvoiceDealInput{Connection: "shop", WriteBack: true, Event: model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-1", Stage: "won"}}}
	failed := &memoRun{
		oneRun: oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
			events: []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", connectors.InvoiceResult{InvoiceID: "INV-5"})}},
		memo: map[string]string{workflows.MemoMapping: "shop-invoices", workflows.MemoMappingHash: "593fc46cac74"},
	}
	st := &recordingStarter{}
	r := one(context.Background(), failed, set, st, "wf", "r1", Options{WriteBack: true})
	if r.NewRun == "" || st.writeBacks != 1 {
		t.Fatalf("retry --writeback: %+v, %d write-back runs", r, st.writeBacks)
	}
	if st.madeWith != "shop-invoices" || st.madeWithHash != "593fc46cac74" {
		t.Errorf("the write-back run was started with mapping %q (%q), want the failed run's shop-invoices (593fc46cac74)", st.madeWith, st.madeWithHash)
	}
}

// A dry run names what the runs it would start failed with (their close
// events'); a retry does not read it.
func TestDryRunNamesTheFailure(t *testing.T) {
	set := genericSet(t, "shop", "")
	ctx := context.Background()
	in := workflows.InvoiceDealInput{Connection: "shop", Event: model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-1", Stage: "won"}}}
	failed := &oneRun{runID: "r1", status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, events: []*historypb.HistoryEvent{started(t, in), mappingFailed()}}
	r := one(ctx, failed, set, &recordingStarter{}, "wf", "r1", Options{DryRun: true})
	if r.Skipped != dryRun || r.FailureType != activities.ErrTypeMapping || r.FailureMessage != mappingMessage {
		t.Errorf("dry run: %+v", r)
	}
	if r := one(ctx, failed, set, &recordingStarter{}, "wf", "r1", Options{}); r.NewRun == "" || r.FailureType != "" {
		t.Errorf("retry: %+v", r)
	}
}

// refusingList refuses every filter as Temporal refuses one it cannot
// parse, with the position Temporal's parser gives in the SQL it makes of
// the filter: "select * from table1 where " + filter, bytes counted from
// 1, at the byte after the offending token (the end counts as one past
// the last byte). at finds the offending token's end in the filter.
type refusingList struct {
	client.Client
	at   func(filter string) int
	near string
}

func (r *refusingList) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	msg := "invalid query: malformed SQL query: syntax error at position " + strconv.Itoa(len("select * from table1 where ")+r.at(req.GetQuery())+1)
	if r.near != "" {
		msg += " near '" + r.near + "'"
	}
	return nil, serviceerror.NewInvalidArgument(msg)
}

// Review: `runs list --query 'DealId = '` said "syntax error at position
// 66": a position in the SQL Temporal made of the wrapped filter
// (`TaskQueue = "dealsync" AND (DealId = )`), past the end of the 9
// characters the operator typed. The position is counted in the query,
// or, past its end, said so; `runs retry` (another wrapping) the same.
// The messages are those a Temporal server (v1.32) gave for these
// filters.
func TestSyntaxErrorPositionIsTheQuerys(t *testing.T) {
	ctx := context.Background()
	endOf := func(token string) func(string) int {
		return func(filter string) int {
			i := strings.LastIndex(filter, token)
			if i < 0 {
				t.Fatalf("%q not in %s", token, filter)
			}
			return i + len(token)
		}
	}
	for _, c := range []struct {
		query, near string
		at          func(string) int
		want        string
	}{
		// The wrapping's closing parenthesis is the offending token.
		{`DealId = `, "", func(f string) int { return len(f) }, "syntax error at the end of the query (it is incomplete)"},
		{`DealId = "x" AND AND Connection = "y"`, "and", endOf(`AND AND`), "syntax error at character 20 of the query near 'and'"},
		// Characters, not bytes.
		{`DealId = "é" AND AND Connection = "y"`, "and", endOf(`AND AND`), "syntax error at character 20 of the query near 'and'"},
		{`DealId == "x"`, "", endOf(`==`), "syntax error at character 9 of the query"},
		{`DealId = "x" this is`, "this", endOf(`this`), "syntax error at character 17 of the query near 'this'"},
		// A token the query does not have: no position at all.
		{`DealId = "x" this is`, "that", endOf(`this`), "syntax error near 'that'"},
	} {
		r := &refusingList{at: c.at, near: c.near}
		_, _, err := List(ctx, r, ListOptions{TaskQueue: "dealsync", Query: c.query, Limit: 5})
		if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "position") {
			t.Errorf("runs list --query %q: %v; want %q", c.query, err, c.want)
		}
		_, err = Failed(ctx, r, nil, nil, Options{TaskQueue: "dealsync", Query: c.query, TimedOut: true})
		if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "position") {
			t.Errorf("runs retry --query %q: %v; want %q", c.query, err, c.want)
		}
	}
	// The real server's message for `runs list --query 'DealId = '`.
	if got := queryError(`TaskQueue = "dealsync" AND (DealId = )`, `DealId = `, "invalid query: malformed SQL query: syntax error at position 66"); got != "invalid query: malformed SQL query: syntax error at the end of the query (it is incomplete)" {
		t.Errorf("position 66: %s", got)
	}
	// Other refusals are Temporal's words.
	if got := queryError(`TaskQueue = "dealsync" AND (Foo = "x")`, `Foo = "x"`, "invalid query: invalid search attribute: Foo"); got != "invalid query: invalid search attribute: Foo" {
		t.Errorf("an unknown search attribute: %s", got)
	}
}

// A running run whose workflow task fails again and again (a worker
// without its connection refuses it) says its attempt, and why, from the
// last WorkflowTaskFailed event of its history read from its end (its
// first line), within two pages; one whose task is on its first attempt,
// or has none pending, says nothing of a failing task (its history is
// read for a retried step only).
func TestListSaysARunningRunsFailingWorkflowTask(t *testing.T) {
	event := func(typ enumspb.EventType) *historypb.HistoryEvent { return &historypb.HistoryEvent{EventType: typ} }
	failed := func(msg string) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, Attributes: &historypb.HistoryEvent_WorkflowTaskFailedEventAttributes{
			WorkflowTaskFailedEventAttributes: &historypb.WorkflowTaskFailedEventAttributes{Failure: &failurepb.Failure{Message: msg}},
		}}
	}
	signaled := event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
	refusal := `connection "beta" is not configured on this worker: its workflow task fails here so that a worker of the task queue that has the connection takes the run`
	l := &listedRuns{t: t, n: 12, pageMax: 12, taskAttempts: map[int]int32{1: 5, 3: 1, 5: 2, 7: 3, 9: 2, 11: 4}, histories: map[int][][]*historypb.HistoryEvent{
		// The refusal, after a signal that came since, on the second page;
		// an older failure before it is not the one told.
		1: {{signaled}, {signaled, failed("  \n" + refusal + "\n\tat the guard\n"), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED), failed("older")}},
		3: {{failed("not read: first attempt")}},
		// A completed task comes first: the failure before it is past.
		7: {{event(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED), event(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), failed("past")}},
		// Past the second page: not read.
		9: {{signaled}, {signaled}, {failed("too far")}},
		// A message longer than the bound.
		11: {{failed(strings.Repeat("é", 1500))}},
		// 5: the read fails.
	}}
	runs, _, err := List(context.Background(), l, ListOptions{TaskQueue: "dealsync", Limit: 12})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 500) + "…" + strings.Repeat("é", 499) // cut in the middle
	for i, r := range runs {
		want, wantFailure := l.taskAttempts[i], map[int]string{1: refusal, 11: long}[i]
		if want < 2 {
			want = 0
		}
		if r.ExecutionStatus != "Running" {
			want, wantFailure = 0, ""
		}
		if r.WorkflowTaskAttempt != want || r.WorkflowTaskFailure != wantFailure {
			t.Errorf("run %d (%s): workflow task attempt %d, failure %q; want %d, %q", i, r.ExecutionStatus, r.WorkflowTaskAttempt, r.WorkflowTaskFailure, want, wantFailure)
		}
	}
	// Run 3 (first attempt) has its history read for a step retried
	// (its WorkflowTaskFailed events are not that): one page.
	if len(runs) != 12 || l.pagesRead[3] != 1 || runs[3].Retrying != nil || l.pagesRead[9] != 2 || l.pagesRead[1] != 2 {
		t.Errorf("%d runs, pages read: %v, run 3 retrying %+v; want 12, one of run 3 (first attempt: a step's retry looked for), two of runs 1 and 9", len(runs), l.pagesRead, runs[3].Retrying)
	}
}

// unknownAttributes refuses every filter as Temporal refuses one naming a
// search attribute its namespace lacks: the first of names the filter has.
type unknownAttributes struct {
	client.Client
	names []string
}

func (u unknownAttributes) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	for _, n := range u.names {
		if strings.Contains(req.GetQuery(), n) {
			return nil, serviceerror.NewInvalidArgument("invalid query: invalid search attribute: " + n)
		}
	}
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}

// Journey: `runs list --query 'DealId = "x"'` on a namespace without
// dealsync's search attributes said the query was invalid (exit 2), in
// Temporal's words. A filter refused for naming one of dealsync's own
// attributes (the operator's query, or the selection of `runs retry`,
// which reads SyncStatus) says that the namespace lacks them, and where
// the commands that register them are; an attribute that is not
// dealsync's is still the query's mistake.
func TestFilterOfAnAttributeTheNamespaceLacks(t *testing.T) {
	ctx := context.Background()
	lacking := unknownAttributes{names: []string{"DealId", "SyncStatus", "Foo"}}
	check := func(what string, err error) {
		t.Helper()
		var missing *MissingAttributeError
		if !errors.As(err, &missing) || errors.Is(err, ErrInvalidQuery) ||
			!strings.Contains(err.Error(), "the namespace lacks dealsync's search attributes (Temporal refused the filter: invalid query: invalid search attribute: ") ||
			!strings.Contains(err.Error(), "dealsync config check --temporal prints the commands") {
			t.Errorf("%s: %v; want the namespace's missing attributes, not an invalid query", what, err)
		}
	}
	_, _, err := List(ctx, lacking, ListOptions{TaskQueue: "dealsync", Query: `DealId = "x"`, Limit: 5})
	check("runs list --query DealId", err)
	_, err = Failed(ctx, lacking, nil, nil, Options{TaskQueue: "dealsync"})
	check("runs retry", err)
	_, err = Failed(ctx, unknownAttributes{names: []string{"DealId"}}, nil, nil, Options{TaskQueue: "dealsync", Query: `DealId = "x"`})
	check("runs retry --query DealId", err)

	_, _, err = List(ctx, lacking, ListOptions{TaskQueue: "dealsync", Query: `Foo = "x"`, Limit: 5})
	if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), "invalid search attribute: Foo") {
		t.Errorf("runs list --query Foo: %v; want an invalid query", err)
	}
	named := (&MissingAttributeError{Name: "DealId", Refusal: "invalid query: invalid search attribute: DealId", Namespace: "prod"}).Error()
	if !strings.HasPrefix(named, `namespace "prod" lacks dealsync's search attributes`) {
		t.Errorf("with its namespace: %s", named)
	}
}

// laMarker is the SDK's marker of a local activity's call id of type typ,
// its attempt attempt, failed with f (nil: it succeeded); a failed one is
// retried after a timer of 20 s (its Backoff), as the SDK records a
// retried call's attempt (the next attempt is a call of another id).
func laMarker(t *testing.T, id, typ string, attempt int32, f *failurepb.Failure) *historypb.HistoryEvent {
	backoff := time.Duration(0)
	if f != nil {
		backoff = 20 * time.Second
	}
	return laMarkerWith(t, id, typ, attempt, backoff, f)
}

// laOnce is laMarker of a call's last attempt (no Backoff): the invoice
// step's attempts made one at a time, each a call of one attempt.
func laOnce(t *testing.T, id, typ string, f *failurepb.Failure) *historypb.HistoryEvent {
	return laMarkerWith(t, id, typ, 1, 0, f)
}

// laMarkerWith is laMarker with the marker's Backoff.
func laMarkerWith(t *testing.T, id, typ string, attempt int32, backoff time.Duration, f *failurepb.Failure) *historypb.HistoryEvent {
	data, err := converter.GetDefaultDataConverter().ToPayloads(map[string]any{"ActivityID": id, "ActivityType": typ, "ReplayTime": listStart, "Attempt": attempt, "Backoff": backoff})
	if err != nil {
		t.Fatal(err)
	}
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED, Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
		MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: "LocalActivity", Failure: f,
			Details: map[string]*commonpb.Payloads{"data": data}},
	}}
}

// retryable is a retryable application error's failure.
func retryable(typ, msg string) *failurepb.Failure {
	return &failurepb.Failure{Message: msg, FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
		ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: typ}}}
}

// A running run whose step is retried says the step's last failure, its
// first line, and its attempt when known: a pending activity's (from the
// describe, its history unread), or the last failed call its history ends
// with, a local call's marker or an activity's failure; a call that
// succeeded since, or a failing workflow task, wins over it.
func TestListSaysARunningRunsRetriedStep(t *testing.T) {
	event := func(typ enumspb.EventType) *historypb.HistoryEvent { return &historypb.HistoryEvent{EventType: typ} }
	timer, fired := event(enumspb.EVENT_TYPE_TIMER_STARTED), event(enumspb.EVENT_TYPE_TIMER_FIRED)
	wftCompleted, signaled := event(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
	version := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED, Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
		MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: "Version"}}}
	refused := "ERP unreachable: dial tcp 127.0.0.1:9: connect: connection refused\nmore"
	mismatch := "this worker sends the ERP calls of connection \"shop\" to B, but the run was started for A: nothing was sent"
	activity := func(sched int64, typ, id string, attempt int32, f *failurepb.Failure) []*historypb.HistoryEvent {
		closed := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
			ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: sched}}}
		if f != nil {
			closed = &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, Attributes: &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{
				ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{ScheduledEventId: sched, Failure: f}}}
		}
		return []*historypb.HistoryEvent{closed,
			{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
				ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: sched, Attempt: attempt}}},
			{EventId: sched, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
				ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{ActivityId: id, ActivityType: &commonpb.ActivityType{Name: typ}}}},
		}
	}
	page := func(parts ...[]*historypb.HistoryEvent) []*historypb.HistoryEvent { return slices.Concat(parts...) }
	one := func(evs ...*historypb.HistoryEvent) []*historypb.HistoryEvent { return evs }
	l := &listedRuns{t: t, n: 26, pageMax: 26, taskAttempts: map[int]int32{15: 3},
		pendingActivities: map[int][]*workflowpb.PendingActivityInfo{
			// external_calls: activity: the describe says it, no history read.
			1: {{ActivityType: &commonpb.ActivityType{Name: "WriteBack"}, Attempt: 1},
				{ActivityType: &commonpb.ActivityType{Name: "FindOrCreateCustomer"}, Attempt: 8, LastFailure: retryable("ERPUnavailable", refused)}},
		},
		histories: map[int][][]*historypb.HistoryEvent{
			1: {{laMarker(t, "9", "CreateInvoice", 2, retryable("ERPUnavailable", "not read"))}},
			// A local call retried with a timer, its retries in one call
			// (the SDK counts them), back to the step before it.
			// (Each retry after a timer is a call of its own id, whose
			// attempt goes on from the one before.)
			3: {one(wftCompleted, fired, signaled, timer, version, laMarker(t, "5", "CreateInvoice", 7, retryable("ERPUnavailable", refused)), wftCompleted),
				one(timer, laMarker(t, "4", "CreateInvoice", 6, retryable("ERPUnavailable", "older")), laMarker(t, "3", "FindOrCreateCustomer", 1, nil))},
			// The invoice step's attempts one at a time (one call each),
			// the deal read between them: three attempts.
			5: {one(timer, laOnce(t, "12", "CreateInvoice", retryable("ERPTargetMismatch", mismatch)), laMarker(t, "11", "FetchDeal", 1, nil),
				timer, laOnce(t, "10", "CreateInvoice", retryable("ERPTargetMismatch", mismatch)),
				timer, laOnce(t, "9", "CreateInvoice", retryable("ERPTargetMismatch", mismatch)), laMarker(t, "8", "FindOrCreateCustomer", 1, nil))},
			// A call that succeeded since: nothing retried.
			7: {one(timer, laMarker(t, "5", "WriteBack", 1, nil), laMarker(t, "4", "CreateInvoice", 3, retryable("ERPUnavailable", "past")))},
			// Attempts one at a time past the pages read: the attempt is
			// not known.
			9: {one(laOnce(t, "12", "CreateInvoice", retryable("ERPUnavailable", refused)), timer),
				one(laOnce(t, "10", "CreateInvoice", retryable("ERPUnavailable", refused))),
				one(laMarker(t, "3", "FindOrCreateCustomer", 1, nil))},
			// Activities (external_calls: activity) made one at a time: two
			// failed attempts of the invoice step since the customer's.
			11: {page(one(timer), activity(20, "CreateInvoice", "20", 1, retryable("ERPUnavailable", refused)), one(timer),
				activity(14, "CreateInvoice", "14", 1, retryable("ERPUnavailable", "older")), activity(8, "FindOrCreateCustomer", "8", 1, nil))},
			// A local call's retries past the pages: the SDK's count.
			13: {one(timer, laMarker(t, "7", "FindOrCreateCustomer", 40, retryable("ERPUnavailable", refused))), one(signaled), one(timer)},
			// A failing workflow task wins.
			15: {one(laMarker(t, "7", "FindOrCreateCustomer", 4, retryable("ERPUnavailable", refused)))},
			// A history back to the run's start, no failure.
			17: {one(timer, event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED))},
			// 19: the read fails.
			// A local call retried after timers, its first attempts in
			// the pages: each retry a call of its own, counting on.
			21: {one(timer, laMarker(t, "6", "WriteBack", 3, retryable("CRMUnavailable", refused)), timer,
				laMarker(t, "5", "WriteBack", 2, retryable("CRMUnavailable", refused)), timer,
				laMarker(t, "4", "WriteBack", 1, retryable("CRMUnavailable", refused)), laMarker(t, "3", "CreateInvoice", 1, nil))},
			// A marker of another format (its step and outcome unknown)
			// since an older failure: nothing said.
			23: {one(timer, &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED, Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
				MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: "LocalActivity",
					Details: map[string]*commonpb.Payloads{"data": {Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: []byte("x")}}}}}}},
				laMarker(t, "4", "WriteBack", 2, retryable("CRMUnavailable", "past")))},
			// The deal read (an event came) while the invoice step waits
			// between attempts made one at a time: that step is retried.
			25: {one(laMarker(t, "13", "FetchDeal", 1, nil), timer, laOnce(t, "12", "CreateInvoice", retryable("ERPUnavailable", refused)),
				timer, laOnce(t, "10", "CreateInvoice", retryable("ERPUnavailable", refused)), laMarker(t, "8", "FindOrCreateCustomer", 1, nil))},
		}}
	runs, _, err := List(context.Background(), l, ListOptions{TaskQueue: "dealsync", Limit: 26})
	if err != nil {
		t.Fatal(err)
	}
	first := "ERP unreachable: dial tcp 127.0.0.1:9: connect: connection refused"
	want := map[int]*Retrying{
		1:  {Step: "customer", Attempt: 7, Type: "ERPUnavailable", Message: first},
		3:  {Step: "invoice", Attempt: 7, Type: "ERPUnavailable", Message: first},
		5:  {Step: "invoice", Attempt: 3, Type: "ERPTargetMismatch", Message: mismatch},
		9:  {Step: "invoice", Type: "ERPUnavailable", Message: first},
		11: {Step: "invoice", Attempt: 2, Type: "ERPUnavailable", Message: first},
		13: {Step: "customer", Attempt: 40, Type: "ERPUnavailable", Message: first},
		21: {Step: "write_back", Attempt: 3, Type: "CRMUnavailable", Message: first},
		25: {Step: "invoice", Attempt: 2, Type: "ERPUnavailable", Message: first},
	}
	for i, r := range runs {
		if w := want[i]; (w == nil) != (r.Retrying == nil) || w != nil && *w != *r.Retrying {
			t.Errorf("run %d (%s): retrying %+v; want %+v", i, r.ExecutionStatus, r.Retrying, w)
		}
	}
	if l.pagesRead[1] != 0 || l.pagesRead[15] != 1 || l.pagesRead[9] != 2 || runs[15].WorkflowTaskAttempt != 3 {
		t.Errorf("pages read %v, run 15's task attempt %d; want none of run 1 (its describe says), two of run 9, run 15's task failing", l.pagesRead, runs[15].WorkflowTaskAttempt)
	}
}

// A completed run whose ERP noticed something about the invoice it made
// (its total differs) has that warning in its memo (the workflow records
// it there): List gives it (warning in JSON) from the list alone, reading
// no completed run's close event; a run without one, one completed
// before the memo had it, or one that failed after its invoice step
// (its failure shows) says none.
func TestListGivesACompletedRunsWarningFromItsMemo(t *testing.T) {
	const warning = "Xero's total of invoice inv-1 (INV-0001) is EUR 112.00, not the invoice's EUR 131.84: Xero computes the tax by the tax type, so check the invoice and the tax setup before sending it"
	completed := enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	l := &listedRuns{t: t, n: 10, pageMax: 10,
		ended:      map[int]enumspb.WorkflowExecutionStatus{0: completed, 2: completed, 4: completed, 6: completed},
		syncStatus: map[int]string{0: workflows.StatusInvoiced, 2: workflows.StatusInvoiced, 4: workflows.StatusSkipped, 6: workflows.StatusInvoiced},
		memos:      map[int]map[string]any{0: {workflows.MemoWarning: warning}, 8: {workflows.MemoWarning: warning}},
	}
	runs, _, err := List(context.Background(), l, ListOptions{TaskQueue: "dealsync", Limit: 10})
	if err != nil || len(runs) != 10 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	for i, want := range map[int]string{0: warning, 1: "", 2: "", 4: "", 6: "", 8: ""} {
		if r := runs[i]; r.Warning != want {
			t.Errorf("run %d (%s, %s): warning %q; want %q", i, r.ExecutionStatus, r.SyncStatus, r.Warning, want)
		}
	}
	if runs[8].FailureType != activities.ErrTypeMapping {
		t.Errorf("run 8 (failed, with a warning in its memo): failure %q, want its own", runs[8].FailureType)
	}
	if want := []string{"invoice/shop/D-8 run-8"}; !slices.Equal(l.reads, want) {
		t.Errorf("close events read: %v; want the failed run's alone, none of a completed run", l.reads)
	}
	if got := mustJSON(t, runs[0]); !strings.Contains(got, `"warning":"Xero's total of invoice inv-1 (INV-0001) is EUR 112.00`) {
		t.Errorf("run 0's JSON: %s", got)
	}
	if got := mustJSON(t, runs[2]); strings.Contains(got, `"warning"`) {
		t.Errorf("run 2's JSON (no warning): %s", got)
	}
}
