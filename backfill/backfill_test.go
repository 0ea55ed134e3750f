package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot"
	"github.com/dealsync/dealsync/connectors/pipedrive"
	"github.com/dealsync/dealsync/connectors/salesforce"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// describer answers DescribeWorkflowExecution with one run's status and
// SyncStatus; the rest of client.Client is not used here.
type describer struct {
	client.Client
	status enumspb.WorkflowExecutionStatus
	sync   string
	// invoicedBy is a run the run list shows as having made the invoice.
	invoicedBy string
	// missing: the deal has no run (Describe answers NotFound).
	missing bool
	// history is the run's history (GetWorkflowHistory), for the
	// real rerun.CreatedInvoice.
	history []*historypb.HistoryEvent
	// listed counts the run list's queries.
	listed *int
}

// GetWorkflowHistory answers rerun.CreatedInvoice's read.
func (d describer) GetWorkflowHistory(context.Context, string, string, bool, enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	return &historyEvents{events: d.history}
}

// historyEvents is a history held in memory.
type historyEvents struct{ events []*historypb.HistoryEvent }

func (h *historyEvents) HasNext() bool { return len(h.events) > 0 }
func (h *historyEvents) Next() (*historypb.HistoryEvent, error) {
	ev := h.events[0]
	h.events = h.events[1:]
	return ev, nil
}

// ListWorkflow answers rerun.InvoicedBy's query.
func (d describer) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if d.listed != nil {
		*d.listed++
	}
	if req.GetQuery() != `WorkflowId = "invoice/hs/62515/4711" AND SyncStatus IN ("invoiced", "writeback_failed")` {
		return nil, fmt.Errorf("unexpected query %q", req.GetQuery())
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	if d.invoicedBy != "" {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: "invoice/hs/62515/4711", RunId: d.invoicedBy}})
	}
	return resp, nil
}

func (d describer) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if d.missing {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(d.sync)
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: id, RunId: "r1"},
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
	conn := &connections.Connection{Name: "hs", Trigger: mapping.StageTrigger{WonStages: []string{"closedwon"}}}
	var historyInvoice *connectors.InvoiceResult // what the run's history holds
	var historyRead bool
	old := createdInvoice
	createdInvoice = func(context.Context, client.Client, string, string) (*connectors.InvoiceResult, error) {
		historyRead = true
		return historyInvoice, nil
	}
	t.Cleanup(func() { createdInvoice = old })
	for _, c := range []struct {
		status  enumspb.WorkflowExecutionStatus
		sync    string
		history *connectors.InvoiceResult
		start   bool
	}{
		{enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, workflows.StatusFailed, nil, true},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, workflows.StatusPending, nil, true},
		{enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, workflows.StatusWriteBackFailed, nil, false},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, workflows.StatusInvoiced, nil, false},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, workflows.StatusInvoiced, nil, false},
		// Ended after its invoice but before the task that records it:
		// SyncStatus still "pending", the history has the invoice.
		{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, workflows.StatusPending, &connectors.InvoiceResult{InvoiceID: "INV-9"}, false},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, workflows.StatusPending, &connectors.InvoiceResult{InvoiceID: "INV-9"}, false},
	} {
		historyInvoice, historyRead = c.history, false
		st := &countingStarter{}
		r := one(context.Background(), describer{status: c.status, sync: c.sync}, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
		if started := st.starts == 1; started != c.start || (started && r.NewRun != "new") {
			t.Errorf("%s with SyncStatus %q: %+v; want started = %v", c.status, c.sync, r, c.start)
		}
		// The command that selects the run: --writeback alone takes only
		// failed runs.
		hint := map[enumspb.WorkflowExecutionStatus]string{
			enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     "`dealsync runs retry --writeback`",
			enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  "`dealsync runs retry --writeback --timed-out`",
			enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: "`dealsync runs retry --writeback --terminated`",
		}[c.status]
		if !c.start && !strings.Contains(r.Skipped, hint) {
			t.Errorf("%s with SyncStatus %q: skipped %q, want it to say %s", c.status, c.sync, r.Skipped, hint)
		}
		// A failed run recorded "failed" (no invoice): nothing to read.
		if historyRead && c.sync == workflows.StatusFailed {
			t.Errorf("%s with SyncStatus %q: its history was read", c.status, c.sync)
		}
	}

	// The latest run (a later delivery's) failed; an earlier one made the
	// invoice (then was terminated while it lingered).
	historyInvoice = nil
	st := &countingStarter{}
	r := one(context.Background(), describer{status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, sync: workflows.StatusFailed, invoicedBy: "r1"},
		conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
	if st.starts != 0 || !strings.Contains(r.Skipped, "invoiced already by run r1") {
		t.Errorf("an earlier run made the invoice: %+v, %d starts; want it skipped naming r1", r, st.starts)
	}
}

// A deal without a run (Describe answers NotFound) is started, without
// asking the run list for runs that made its invoice (it has none).
func TestSyncStartsADealWithoutARun(t *testing.T) {
	conn := &connections.Connection{Name: "hs", Trigger: mapping.StageTrigger{WonStages: []string{"closedwon"}}}
	listed := 0
	st := &countingStarter{}
	r := one(context.Background(), describer{missing: true, listed: &listed}, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
	if st.starts != 1 || r.NewRun != "new" || r.Existing != "" || r.Error != "" || r.Skipped != "" || listed != 0 {
		t.Errorf("no run: %+v, %d starts, %d run lists; want it started, with no existing run", r, st.starts, listed)
	}
	// A dry run says what it would do.
	st = &countingStarter{}
	if r := one(context.Background(), describer{missing: true}, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, true); st.starts != 0 || r.Skipped != "dry run" || r.Existing != "" {
		t.Errorf("no run, dry run: %+v, %d starts", r, st.starts)
	}
}

// A deal whose latest run is a RecordDealLoss run (its loss was recorded;
// then it was won again, and the win's webhook was lost) that timed out,
// was terminated or was canceled (SyncStatus "skipped", so its history is
// read) is started: that run made no invoice. It is not an error of
// every sync. The real history read (rerun.CreatedInvoice) is used.
func TestSyncStartsADealWhoseLatestRunRecordedItsLoss(t *testing.T) {
	conn := &connections.Connection{Name: "hs", Trigger: mapping.StageTrigger{WonStages: []string{"closedwon"}}}
	p, err := converter.GetDefaultDataConverter().ToPayloads(workflows.InvoiceDealInput{Connection: "hs",
		Event: model.DealEvent{EventID: "e1", Account: "62515", Deal: model.Deal{ID: "4711", Stage: "closedlost", PreviousStage: "closedwon"}}})
	if err != nil {
		t.Fatal(err)
	}
	loss := []*historypb.HistoryEvent{{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: &commonpb.WorkflowType{Name: workflows.RecordDealLossName}, Input: p,
		}}}}
	for _, status := range []enumspb.WorkflowExecutionStatus{enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED} {
		st := &countingStarter{}
		r := one(context.Background(), describer{status: status, sync: workflows.StatusSkipped, history: loss}, conn, st, "62515",
			connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
		if st.starts != 1 || r.NewRun != "new" || r.Error != "" || r.Existing != status.String() {
			t.Errorf("a RecordDealLoss run that ended %s: %+v, %d starts; want the deal started", status, r, st.starts)
		}
	}
	// An earlier run made the invoice: still skipped.
	st := &countingStarter{}
	r := one(context.Background(), describer{status: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, sync: workflows.StatusSkipped, history: loss, invoicedBy: "r0"},
		conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "closedwon"}, false)
	if st.starts != 0 || !strings.Contains(r.Skipped, "invoiced already by run r0") {
		t.Errorf("a loss run after the run that made the invoice: %+v, %d starts; want it skipped naming r0", r, st.starts)
	}
}

// pipelineTrigger starts runs for the deals of pipeline 2 only, reading
// the pipeline id a thin webhook carries; a deal without it fails.
type pipelineTrigger struct{}

func (pipelineTrigger) Evaluate(ev model.DealEvent) (bool, string, error) {
	p, ok := ev.Deal.Raw["pipeline_id"]
	switch {
	case !ev.Thin || !ok:
		return false, "", fmt.Errorf("deal %s: no pipeline id (thin %v)", ev.Deal.ID, ev.Thin)
	case string(p) != "2":
		return false, "pipeline " + string(p) + " is not invoiced", nil
	}
	return true, "", nil
}

// A listed deal is judged by the connection's trigger as a thin webhook of
// it: one the mapping leaves out is not started (it was invoiced at go-live
// whatever the trigger said), and one the trigger fails on is an error,
// neither started nor taken as left out.
func TestSyncAsksTheTrigger(t *testing.T) {
	conn := &connections.Connection{Name: "hs", Trigger: pipelineTrigger{}}
	ctx := context.Background()
	failedRun := describer{status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, sync: workflows.StatusFailed}
	for _, c := range []struct {
		raw          map[string]json.RawMessage
		start        bool
		skipped, err string
	}{
		{map[string]json.RawMessage{"pipeline_id": json.RawMessage("2")}, true, "", ""},
		{map[string]json.RawMessage{"pipeline_id": json.RawMessage("7")}, false, "the connection's trigger does not start a run for it: pipeline 7 is not invoiced", ""},
		{nil, false, "", "the connection's trigger failed on the deal (fix the mapping, then sync again): deal 4711: no pipeline id"},
	} {
		st := &countingStarter{}
		r := one(ctx, failedRun, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "won", Raw: c.raw}, false)
		if (st.starts == 1) != c.start || r.Skipped != c.skipped || !strings.HasPrefix(r.Error, c.err) || (c.err == "" && r.Error != "") {
			t.Errorf("raw %s: %+v, %d starts; want started %v, skipped %q, error %q", c.raw, r, st.starts, c.start, c.skipped, c.err)
		}
	}
}

// A listed deal is judged at the stage its webhooks report (HubSpot and
// Salesforce report every won stage as their won stage), not the CRM's
// own stage id, which the built-in trigger does not know as won.
func TestSyncJudgesTheStageAWebhookReports(t *testing.T) {
	conn := &connections.Connection{Name: "hs", Trigger: mapping.StageTrigger{WonStages: []string{"closedwon"}}}
	failedRun := describer{status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, sync: workflows.StatusFailed}
	st := &countingStarter{}
	r := one(context.Background(), failedRun, conn, st, "62515", connectors.WonDeal{ID: "4711", Stage: "12345678", EventStage: "closedwon"}, false)
	if st.starts != 1 || r.Stage != "12345678" {
		t.Errorf("%+v, %d starts; want started, showing the CRM's stage", r, st.starts)
	}
}

// accountSource serves configured accounts; keyed also maps spellings of
// an account to its configured key, as Salesforce does for org ids.
type accountSource struct {
	connectors.Source
	accounts []string
	keyed    map[string]string
}

func (s accountSource) Accounts() []string { return s.accounts }

type keyedSource struct{ accountSource }

func (s keyedSource) AccountKey(id string) (string, bool) {
	k, ok := s.keyed[id]
	return k, ok
}

// The account an operator types is the configured key the webhooks' runs
// use (a deal must meet its run, and its account's target): another letter
// case, or a source's other spelling (a 15-character Salesforce org id),
// gives that key; an account the connection does not serve is refused.
func TestAccountKeys(t *testing.T) {
	plain := &connections.Connection{Name: "pd", Source: accountSource{accounts: []string{"6083095", "acme-eu"}}}
	if got, err := AccountKeys(plain, []string{"6083095", "ACME-EU"}); err != nil || strings.Join(got, ",") != "6083095,acme-eu" {
		t.Errorf("plain: %v %v", got, err)
	}
	if _, err := AccountKeys(plain, []string{"777"}); err == nil || !strings.Contains(err.Error(), `no account "777"`) || !strings.Contains(err.Error(), "6083095, acme-eu") {
		t.Errorf("unknown account: %v", err)
	}
	sf := &connections.Connection{Name: "sf", Source: keyedSource{accountSource{
		accounts: []string{"00d5w000004qgtoea2"},
		keyed:    map[string]string{"00D5w000004qGTO": "00d5w000004qgtoea2", "00D5w000004qGTOEA2": "00d5w000004qgtoea2"},
	}}}
	if got, err := AccountKeys(sf, []string{"00D5w000004qGTO", "00D5w000004qGTOEA2"}); err != nil || strings.Join(got, ",") != "00d5w000004qgtoea2,00d5w000004qgtoea2" {
		t.Errorf("salesforce spellings: %v %v", got, err)
	}
}

// listingSource lists deal 4711 of account 62515 and fails to list
// account 10000 (a revoked token, say).
type listingSource struct{ connectors.Source }

func (listingSource) Accounts() []string { return []string{"62515", "10000"} }

func (listingSource) ListWonDeals(_ context.Context, account string, _, _ time.Time, fn func(connectors.WonDeal) error) error {
	if account == "10000" {
		return errors.New("401 token revoked")
	}
	return fn(connectors.WonDeal{ID: "4711", Stage: "won", Raw: map[string]json.RawMessage{"pipeline_id": json.RawMessage("2")}})
}

type noFetch struct{}

func (noFetch) FetchDeal(context.Context, string, string) (model.Deal, error) {
	return model.Deal{}, errors.New("not used")
}

// An account whose listing fails does not keep the others from being
// listed (it stopped the sync, and every account sorted after it went
// unlisted): its error is returned, and the other's deal is started.
func TestSyncListsEveryAccountWhenOneFails(t *testing.T) {
	conn := &connections.Connection{Name: "hs", Trigger: pipelineTrigger{}, Source: listingSource{}, Fetcher: noFetch{}}
	st := &countingStarter{}
	results, err := Sync(context.Background(), describer{status: enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, sync: workflows.StatusFailed},
		conn, st, Options{Since: time.Now().Add(-time.Hour), Until: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "listing the won deals of account 10000: 401 token revoked") {
		t.Errorf("error %v, want account 10000's listing named", err)
	}
	if len(results) != 1 || results[0].Account != "62515" || results[0].NewRun != "new" || st.starts != 1 {
		t.Errorf("results %+v, %d starts; want account 62515's deal started", results, st.starts)
	}
}

// periodSource lists one deal and records the period each listing was
// asked for; since, with ListWonDealsSince, says that it can list a
// period without an end (as HubSpot does).
type periodSource struct {
	connectors.Source
	asked *[]string
}

func (s periodSource) Accounts() []string { return []string{"62515"} }

func (s periodSource) ListWonDeals(_ context.Context, _ string, since, until time.Time, fn func(connectors.WonDeal) error) error {
	*s.asked = append(*s.asked, since.Format(time.DateOnly)+".."+until.Format(time.DateOnly))
	return fn(connectors.WonDeal{ID: "4711", Stage: "won", Raw: map[string]json.RawMessage{"pipeline_id": json.RawMessage("2")}})
}

type openEndedSource struct{ periodSource }

func (s openEndedSource) ListWonDealsSince(_ context.Context, _ string, since time.Time, fn func(connectors.WonDeal) error) error {
	*s.asked = append(*s.asked, since.Format(time.DateOnly)+"..")
	return fn(connectors.WonDeal{ID: "4711", Stage: "won", Raw: map[string]json.RawMessage{"pipeline_id": json.RawMessage("2")}})
}

// A sync without an end (no --until) lists a source that can list a
// period without one that way (HubSpot: a won deal modified while the
// listing runs is not left out); a sync with an end, and a source that
// cannot, list [Since, Until).
func TestSyncListsAnOpenPeriodWithoutAnEnd(t *testing.T) {
	// HubSpot's is the open-ended listing; Salesforce (a query's snapshot
	// cursor) and Pipedrive (won_time) keep listing [Since, Until).
	for src, want := range map[any]bool{(*hubspot.Source)(nil): true, (*salesforce.Source)(nil): false, (*pipedrive.Source)(nil): false} {
		if _, ok := src.(OpenEndedLister); ok != want {
			t.Errorf("%T lists a period without an end: %v, want %v", src, ok, want)
		}
	}
	since, until := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		open bool
		src  func(*[]string) connectors.Source
		want string
	}{
		{"open, a source that can", true, func(a *[]string) connectors.Source { return openEndedSource{periodSource{asked: a}} }, "2026-11-01.."},
		{"with an end, a source that can", false, func(a *[]string) connectors.Source { return openEndedSource{periodSource{asked: a}} }, "2026-11-01..2026-12-01"},
		{"open, a source that cannot", true, func(a *[]string) connectors.Source { return periodSource{asked: a} }, "2026-11-01..2026-12-01"},
	} {
		var asked []string
		conn := &connections.Connection{Name: "hs", Trigger: pipelineTrigger{}, Source: c.src(&asked), Fetcher: noFetch{}}
		st := &countingStarter{}
		results, err := Sync(context.Background(), describer{missing: true}, conn, st, Options{Since: since, Until: until, OpenEnded: c.open})
		if err != nil || len(results) != 1 || results[0].NewRun != "new" {
			t.Errorf("%s: %+v, %v", c.name, results, err)
		}
		if strings.Join(asked, ",") != c.want {
			t.Errorf("%s: listed %v, want %s", c.name, asked, c.want)
		}
	}
}
