package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// A start the server could not take now is answered 503 (the sender
// retries); one it refuses for good is not.
func TestClassifyStartError(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"unavailable", serviceerror.NewUnavailable("frontend down"), true},
		{"namespace unavailable (failover)", serviceerror.NewNamespaceUnavailable("default"), true},
		{"namespace not active here", serviceerror.NewNamespaceNotActive("default", "c1", "c2"), true},
		{"aborted", serviceerror.NewAborted("try again"), true},
		{"resource exhausted", &serviceerror.ResourceExhausted{Message: "rps"}, true},
		{"wrapped deadline", fmt.Errorf("start: %w", context.DeadlineExceeded), true},
		{"plain gRPC unavailable", status.Error(codes.Unavailable, "conn refused"), true},
		{"invalid argument", serviceerror.NewInvalidArgument("bad search attribute"), false},
		{"namespace not found", serviceerror.NewNamespaceNotFound("nope"), false},
		{"internal", serviceerror.NewInternal("bug"), false},
	} {
		got := errors.Is(classifyStartError("wf/1", c.err), ErrUnavailable)
		if got != c.retry {
			t.Errorf("%s: unavailable = %v, want %v", c.name, got, c.retry)
		}
	}
}

// A start refused because its input is over the server's size limits is
// too large (413: sending it again cannot help), not unavailable or an
// internal error; other invalid arguments are neither.
func TestClassifyStartErrorTooLarge(t *testing.T) {
	for _, c := range []struct {
		err      error
		tooLarge bool
	}{
		{serviceerror.NewInvalidArgument("Blob data size exceeds limit."), true},
		{serviceerror.NewInvalidArgument("Memo size exceeds limit."), true},
		{status.Error(codes.InvalidArgument, "Blob data size exceeds limit."), true},
		{serviceerror.NewInvalidArgument("bad search attribute"), false},
		{serviceerror.NewInvalidArgument("WorkflowId length exceeds limit."), false},
		{serviceerror.NewInternal("Blob data size exceeds limit."), false},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (6122306 vs. 4194304)"), true},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (6122306 vs. 4194304)"), true},
	} {
		err := classifyStartError("wf/1", c.err)
		if errors.Is(err, ErrTooLarge) != c.tooLarge || errors.Is(err, ErrUnavailable) {
			t.Errorf("%v: %v; want too large = %v", c.err, err, c.tooLarge)
		}
	}
}

// A deal amount no float holds is left out of the run's search attributes
// (their encoding fails, and the start with it, on every retry); the
// others, and a plain amount, are set.
func TestOptionsLeaveOutAnAmountNoFloatHolds(t *testing.T) {
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	s := &TemporalStarter{TaskQueue: "q"}
	huge, err := decimal.NewFromString("1" + strings.Repeat("0", 400))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		amount decimal.Decimal
		want   bool
	}{{decimal.RequireFromString("1200.50"), true}, {huge, false}, {huge.Neg(), false}} {
		opts := s.options(conn, model.DealEvent{Deal: model.Deal{ID: "D", Amount: decimal.NewNullDecimal(c.amount)}})
		sa := opts.TypedSearchAttributes
		got, ok := sa.GetFloat64(workflows.AmountKey)
		if ok != c.want || (ok && got != 1200.5) {
			t.Errorf("amount of %d digits: Amount %v set %v, want set %v", len(c.amount.String()), got, ok, c.want)
		}
		if id, _ := sa.GetKeyword(workflows.DealIDKey); id != "D" {
			t.Errorf("DealId %q", id)
		}
	}
}

// endingRuns is a Temporal client whose deal run is found running at each
// start and has ended by the time the win is signalled to it.
type endingRuns struct {
	client.Client
	starts, signals int
}

type runOf string

func (r runOf) GetID() string                                                           { return "wf" }
func (r runOf) GetRunID() string                                                        { return string(r) }
func (r runOf) GetFirstExecutionRunID() string                                          { return string(r) }
func (r runOf) Get(context.Context, any) error                                          { return nil }
func (r runOf) GetWithOptions(context.Context, any, client.WorkflowRunGetOptions) error { return nil }

func (e *endingRuns) ExecuteWorkflow(ctx context.Context, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	e.starts++
	if p, ok := ctx.Value(startProbeKey{}).(*startProbe); ok {
		p.seen, p.started = true, false // met the running run
	}
	return runOf(fmt.Sprintf("run-%d", e.starts)), nil
}

func (e *endingRuns) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, Type: &commonpb.WorkflowType{Name: workflows.InvoiceDealName},
	}}, nil // no memo: a run that may listen
}

func (e *endingRuns) SignalWorkflow(context.Context, string, string, string, any) error {
	e.signals++
	return serviceerror.NewNotFound("workflow execution already completed")
}

// A win that meets a listening run which ends before the win is signalled
// to it starts again; when the next run too ends first, the delivery is
// refused with 503 (sent again), not acknowledged with the win unread.
func TestAWinMeetingRunsThatEndTwiceIsRefused(t *testing.T) {
	c := &endingRuns{}
	s := &TemporalStarter{Client: c, TaskQueue: "q"}
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	_, err := s.Start(context.Background(), conn, model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D", Stage: "won"}})
	if !errors.Is(err, ErrUnavailable) || c.starts != 2 || c.signals != 2 {
		t.Fatalf("%v after %d starts and %d signals; want ErrUnavailable after two of each", err, c.starts, c.signals)
	}
}

// dealRuns is a Temporal client that keeps one run per workflow ID, as the
// server does with USE_EXISTING and ALLOW_DUPLICATE_FAILED_ONLY: a start
// (or signal-with-start) meets a running run (the probe's started flag
// false, the signal delivered), is refused for a completed one, and makes
// a new run otherwise.
type dealRuns struct {
	client.Client
	runs      map[string]string // workflow ID → run ID
	completed map[string]bool
	failed    map[string]bool   // the run ended failed: a start makes a new one
	types     map[string]string // run ID → workflow type
	signalled map[string][]string
	// startOnMiss is a workflow ID whose run another replica starts just
	// as a signal finds none (the win of the deal, arriving with it).
	startOnMiss string
	describes   int
}

func newDealRuns() *dealRuns {
	return &dealRuns{runs: map[string]string{}, completed: map[string]bool{}, failed: map[string]bool{}, types: map[string]string{}, signalled: map[string][]string{}}
}

func (d *dealRuns) start(ctx context.Context, id string, workflow any, signal any) (client.WorkflowRun, error) {
	p, _ := ctx.Value(startProbeKey{}).(*startProbe)
	run, ok := d.runs[id]
	switch {
	case ok && d.completed[id]:
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already completed", "", run)
	case !ok || d.failed[id]:
		run = fmt.Sprintf("run-%d", len(d.types)+1)
		d.runs[id], d.types[run] = run, fmt.Sprint(workflow)
		ok, d.failed[id] = false, false
	}
	if p != nil {
		p.seen, p.started = true, p.started || !ok
	}
	if ev, isEvent := signal.(model.DealEvent); isEvent {
		d.signalled[run] = append(d.signalled[run], ev.EventID)
	}
	return runOf(run), nil
}

func (d *dealRuns) ExecuteWorkflow(ctx context.Context, opts client.StartWorkflowOptions, workflow any, _ ...any) (client.WorkflowRun, error) {
	return d.start(ctx, opts.ID, workflow, nil)
}

func (d *dealRuns) SignalWithStartWorkflow(ctx context.Context, id, _ string, arg any, _ client.StartWorkflowOptions, workflow any, _ ...any) (client.WorkflowRun, error) {
	return d.start(ctx, id, workflow, arg)
}

func (d *dealRuns) SignalWorkflow(ctx context.Context, id, _, _ string, arg any) error {
	run, ok := d.runs[id]
	if !ok || d.completed[id] || d.failed[id] {
		if id == d.startOnMiss {
			d.startOnMiss = ""
			_, _ = d.start(ctx, id, workflows.InvoiceDealName, nil)
		}
		return serviceerror.NewNotFound("workflow not found")
	}
	d.signalled[run] = append(d.signalled[run], arg.(model.DealEvent).EventID)
	return nil
}

func (d *dealRuns) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	d.describes++
	run, ok := d.runs[id]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	status := enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	switch {
	case d.completed[id]:
		status = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	case d.failed[id]:
		status = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run}, Status: status,
		Type: &commonpb.WorkflowType{Name: d.types[run]},
	}}, nil
}

// On a connection whose runs settle, a change of a won deal that comes
// before the deal's run exists (its win arriving at the same moment at
// another replica, or sent again by the CRM after a 503) is refused with
// 503 and Retry-After, nothing acknowledged, so that sent again it reaches
// the run its win starts; it used to be acknowledged as skipped, and the
// run billed the older state. A change that is older than the settle
// time, of a deal whose run completed, on a connection without a
// settle_time, or thin, is skipped as before (a deal won before dealsync
// went live is never held for ever); one whose deal's last run failed
// (a win may start another) is held as one with no run.
func TestAChangeBeforeItsWinIsRefusedUntilTheWinsRunExists(t *testing.T) {
	won := []string{"closed_won"}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	runs := newDealRuns()
	conn := func(name string, settle, linger time.Duration) *connections.Connection {
		return &connections.Connection{Name: name, Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: won}, WonStages: won,
			SettleTime: settle, Linger: linger, Mapper: mapping.Default{PaymentTermsDays: 30}}
	}
	logs := &testlog.Buffer{}
	srv := httptest.NewServer(New(Options{
		Connections: conns{"settles": conn("settles", 8*time.Second, 30*time.Second), "lingers": conn("lingers", 0, 30*time.Second)},
		Starter:     &TemporalStarter{Client: runs, TaskQueue: "q", Now: clock},
		Now:         clock, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}))
	t.Cleanup(srv.Close)
	event := func(id, deal string, age time.Duration, previous string, thin bool) string {
		return fmt.Sprintf(`[{"event_id":%q,"occurred_at":%q,"thin":%v,"deal":{"id":%q,"stage":"closed_won","previous_stage":%q,"amount":"175.00"}}]`,
			id, now.Add(-age).Format(time.RFC3339Nano), thin, deal, previous)
	}
	send := func(conn, body string) (int, string, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/"+conn, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ok", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
	}
	skipped := func(name string, status int, body string) {
		t.Helper()
		if status != http.StatusOK || !strings.Contains(body, "no run in progress for this deal") {
			t.Errorf("%s: %d %s; want it skipped (200), as before", name, status, body)
		}
	}

	// The change first: refused, nothing handed on, sent again in 2 s (a
	// quarter of the settle time).
	status, body, retry := send("settles", event("c0", "R-0", 0, "closed_won", false))
	if status != http.StatusServiceUnavailable || retry != "2" || !strings.Contains(body, `event c0 of deal R-0 changes a won deal that has no run in progress`) ||
		!strings.Contains(body, `connection \"settles\"'s settle_time (8s)`) || len(runs.signalled) != 0 {
		t.Fatalf("a change before its win: %d %s (Retry-After %q), signalled %v; want 503 naming the settle_time, Retry-After 2", status, body, retry, runs.signalled)
	}
	// A refusal on purpose, logged as one (at info, with its reason), not
	// as a failure of the intake's to record the delivery.
	if want := `level=INFO msg="webhook refused" connection=settles status=503 reason="event c0 of deal R-0 changes a won deal`; !strings.Contains(logs.String(), want) ||
		strings.Contains(logs.String(), "webhook not acknowledged") {
		t.Errorf("the log lacks %q:\n%s", want, logs.String())
	}
	// The win starts the run; the change sent again reaches it.
	if status, body, _ := send("settles", event("w0", "R-0", 2*time.Second, "negotiation", false)); status != http.StatusAccepted {
		t.Fatalf("the win: %d %s", status, body)
	}
	if status, body, _ := send("settles", event("c0", "R-0", 0, "closed_won", false)); status != http.StatusAccepted || !strings.Contains(body, `"notified":true`) {
		t.Fatalf("the change sent again: %d %s; want it notified to the win's run", status, body)
	}
	if got := strings.Join(runs.signalled[runs.runs[workflows.DealWorkflowID("settles", "", "R-0")]], ","); got != "w0,c0" {
		t.Errorf("R-0's run was signalled %s, want w0,c0", got)
	}

	// The win's run is started by another replica just as the change's
	// signal finds none: the change reaches it at once.
	runs.startOnMiss = workflows.DealWorkflowID("settles", "", "R-1")
	if status, body, _ := send("settles", event("c1", "R-1", 0, "closed_won", false)); status != http.StatusAccepted || !strings.Contains(body, `"notified":true`) {
		t.Errorf("a change whose win's run started meanwhile: %d %s; want it notified", status, body)
	}

	// A deal won before dealsync went live: its change, once older than
	// the settle time, is skipped (200), with no run read or started.
	describes := runs.describes
	status, body, _ = send("settles", event("c2", "OLD", 8*time.Second, "closed_won", false))
	skipped("a change older than the settle time", status, body)
	status, body, _ = send("settles", event("c3", "OLD", -9*time.Second, "closed_won", false))
	skipped("a change further in the future than the settle time", status, body)
	// Thin, or on a connection that only lingers: skipped as before.
	status, body, _ = send("settles", event("c4", "OLD", 0, "closed_won", true))
	skipped("a thin change", status, body)
	status, body, _ = send("lingers", event("c5", "OLD", 0, "closed_won", false))
	skipped("a change on a connection without a settle_time", status, body)
	if runs.describes != describes || len(runs.runs) != 2 {
		t.Errorf("%d reads of a deal's last run, %d runs: none read or started for skipped changes", runs.describes-describes, len(runs.runs))
	}

	// A deal whose run completed (invoiced): a recent change is skipped.
	runs.completed[workflows.DealWorkflowID("settles", "", "R-0")] = true
	status, body, _ = send("settles", event("c6", "R-0", 0, "closed_won", false))
	skipped("a change after the deal's run completed", status, body)
	// A deal whose last run failed: a win may start another, so a recent
	// change is held as one with no run.
	runs.failed[workflows.DealWorkflowID("settles", "", "R-1")] = true
	if status, body, _ := send("settles", event("c7", "R-1", time.Second, "closed_won", false)); status != http.StatusServiceUnavailable {
		t.Errorf("a change after the deal's run failed: %d %s; want 503", status, body)
	}
}

// The intake's answer says of each event what the metric counts it as,
// and what happened, on every path of TemporalStarter: a new event handed
// to the deal's running run (a loss whose start met the run, an amount
// correction) is notified, not a duplicate, with the run's id when the
// start named it; a win sent again is a duplicate of the run it met; a
// loss that meets no run is a start (of its RecordDealLoss run).
func TestAnswersSayWhatHappenedToEachEvent(t *testing.T) {
	won := []string{"won"}
	runs := newDealRuns()
	srv := httptest.NewServer(New(Options{
		Connections: conns{"answers": {Name: "answers", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: won}, WonStages: won,
			SettleTime: 10 * time.Second, Mapper: mapping.Default{PaymentTermsDays: 30}}},
		Starter:      &TemporalStarter{Client: runs, TaskQueue: "q"},
		MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	outcomes := []string{metrics.EventStarted, metrics.EventDuplicate, metrics.EventNotified, metrics.EventIgnored}
	counted := func() map[string]float64 {
		m := map[string]float64{}
		for _, o := range outcomes {
			m[o] = metrics.Read("dealsync_webhook_events_total", "connection", "answers", "outcome", o)
		}
		return m
	}
	event := func(id, deal, at, stage, previous string) string {
		return fmt.Sprintf(`[{"event_id":%q,"occurred_at":%q,"deal":{"id":%q,"stage":%q,"previous_stage":%q,"amount":"100"}}]`, id, at, deal, stage, previous)
	}
	type answer struct {
		EventID   string `json:"event_id"`
		RunID     string `json:"run_id"`
		Duplicate *bool  `json:"duplicate"`
		Notified  *bool  `json:"notified"`
		Skipped   string `json:"skipped"`
		Reason    string `json:"reason"`
	}
	for _, c := range []struct {
		name, body, outcome, runID string
		complete                   string // a workflow ID whose run completes first
		reason                     string // what the answer's reason says ("": none)
	}{
		{name: "a win starts the deal's run", body: event("evt_w1", "D", "2026-11-20T10:00:00Z", "won", "open"), outcome: metrics.EventStarted, runID: "run-1"},
		{name: "the win sent again", body: event("evt_w1", "D", "2026-11-20T10:00:00Z", "won", "open"), outcome: metrics.EventDuplicate, runID: "run-1"},
		{name: "a new loss reaches the running run", body: event("evt_l3", "D", "2026-11-20T10:05:00Z", "lost", "won"), outcome: metrics.EventNotified, runID: "run-1"},
		{name: "the loss sent again is handed over again", body: event("evt_l3", "D", "2026-11-20T10:05:00Z", "lost", "won"), outcome: metrics.EventNotified, runID: "run-1"},
		{name: "an amount correction is signalled", body: event("evt_a4", "D", "2026-11-20T10:06:00Z", "won", "won"), outcome: metrics.EventNotified},
		{name: "a loss that meets no run starts its own", body: event("evt_e1", "E", "2026-11-20T10:05:00Z", "lost", "won"), outcome: metrics.EventStarted, runID: "run-2"},
		{name: "a newer win meets the loss's run", body: event("evt_e2", "E", "2026-11-20T10:10:00Z", "won", "lost"), outcome: metrics.EventDuplicate, runID: "run-2",
			reason: "the deal's loss is being recorded by run run-2 (RecordDealLoss), which was handed this win: a win older than the loss is not invoiced; a newer one is (the run goes on as an InvoiceDeal run)"},
		{name: "a loss after the deal's run completed", body: event("evt_l5", "D", "2026-11-20T11:00:00Z", "lost", "won"), outcome: metrics.EventIgnored, complete: "D"},
		{name: "the win sent again after its run completed", body: event("evt_w1", "D", "2026-11-20T10:00:00Z", "won", "open"), outcome: metrics.EventDuplicate, runID: "run-1"},
		{name: "an amount correction after the run completed", body: event("evt_a6", "D", "2026-11-20T11:01:00Z", "won", "won"), outcome: metrics.EventIgnored},
	} {
		if c.complete != "" {
			runs.completed[workflows.DealWorkflowID("answers", "", c.complete)] = true
		}
		before := counted()
		status, body := post(t, srv.URL+"/webhooks/answers", c.body)
		var reply struct{ Results []answer }
		if err := json.Unmarshal([]byte(body), &reply); err != nil || len(reply.Results) != 1 {
			t.Fatalf("%s: %d %s (%v)", c.name, status, body, err)
		}
		a := reply.Results[0]
		after := counted()
		var got []string
		for _, o := range outcomes {
			if after[o]-before[o] == 1 {
				got = append(got, o)
			} else if after[o] != before[o] {
				t.Errorf("%s: %s counted %v times", c.name, o, after[o]-before[o])
			}
		}
		if len(got) != 1 || got[0] != c.outcome {
			t.Errorf("%s: counted %v, want %s", c.name, got, c.outcome)
		}
		// The answer's fields, read as a CRM would.
		said := metrics.EventStarted
		switch {
		case a.Skipped != "":
			said = metrics.EventIgnored
		case a.Notified != nil && *a.Notified:
			said = metrics.EventNotified
		case a.Duplicate != nil && *a.Duplicate:
			said = metrics.EventDuplicate
		}
		wantStatus := http.StatusAccepted
		if c.outcome == metrics.EventIgnored {
			wantStatus = http.StatusOK
		}
		var sent []struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal([]byte(c.body), &sent); err != nil || len(sent) != 1 {
			t.Fatalf("%s: the case's body: %v", c.name, err)
		}
		if status != wantStatus || said != c.outcome || a.Duplicate == nil || *a.Duplicate != (c.outcome == metrics.EventDuplicate) ||
			(a.Notified != nil && !*a.Notified) || a.RunID != c.runID || a.EventID != sent[0].EventID {
			t.Errorf("%s: answered %d %s; want %d saying %s with event_id %q and run_id %q (no notified:false, duplicate always)", c.name, status, body, wantStatus, c.outcome, sent[0].EventID, c.runID)
		}
		// A duplicate that met the run recording the deal's loss says
		// so: the win is not taken for one already invoiced.
		if a.Reason != c.reason {
			t.Errorf("%s: reason %q, want %q", c.name, a.Reason, c.reason)
		}
	}
	// What reached the runs: the loss (twice: the run drops an event id it
	// has) and the correction reached D's run, the newer win E's.
	if got := strings.Join(runs.signalled["run-1"], ","); got != "evt_w1,evt_w1,evt_l3,evt_l3,evt_a4" {
		t.Errorf("D's run was signalled %s", got)
	}
	if got := strings.Join(runs.signalled["run-2"], ","); got != "evt_e1,evt_e2" || runs.types["run-2"] != workflows.RecordDealLossName {
		t.Errorf("E's run (%s) was signalled %s", runs.types["run-2"], got)
	}
}

// startCapture is a Temporal client that keeps the options of the run it
// is asked to start.
type startCapture struct {
	client.Client
	opts client.StartWorkflowOptions
}

func (c *startCapture) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	c.opts = opts
	return runOf("new"), nil
}

// A run that only writes an invoice back maps nothing: its memo names the
// mapping the invoice was made with (the failed run's), not the
// connection's current one, and none when that is unknown; it does not
// listen.
func TestWriteBackRunNamesTheMappingOfItsInvoice(t *testing.T) {
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	current := conn.Mapper.Hash()
	for _, c := range []struct{ name, hash string }{{"shop-invoices", "593fc46cac74"}, {"", ""}} {
		capture := &startCapture{}
		s := &TemporalStarter{Client: capture, TaskQueue: "q"}
		ev := model.DealEvent{EventID: "e", Deal: model.Deal{ID: "D"}}
		if _, err := s.StartWriteBack(context.Background(), conn, ev, connectors.InvoiceResult{InvoiceID: "INV-5"}, c.name, c.hash, ""); err != nil {
			t.Fatal(err)
		}
		if id := capture.opts.ID; id != "invoice/crm/D" {
			t.Errorf("a write-back run of a failed run starts as %q, want the deal's ID", id)
		}
		memo := capture.opts.Memo
		name, hasName := memo[workflows.MemoMapping]
		hash, hasHash := memo[workflows.MemoMappingHash]
		if c.name == "" && (hasName || hasHash) || c.name != "" && (name != c.name || hash != c.hash) {
			t.Errorf("made with %q (%s): memo %v, want the mapping the invoice was made with (not the current %s), or none", c.name, c.hash, memo, current)
		}
		if memo[workflows.MemoListens] != false {
			t.Errorf("memo %v: a write-back run does not listen", memo)
		}
	}
}

// A write-back-only run of a completed run's invoice has its own ID,
// writeback/ for invoice/, with the deal's policies: it meets a running or
// completed write-back as a duplicate and starts after a failed one. An ID
// that is not a write-back run's (one started by hand) gives the deal's.
func TestWriteBackRunOfACompletedRunHasItsOwnID(t *testing.T) {
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	ev := model.DealEvent{EventID: "e", Account: "62515", Deal: model.Deal{ID: "D"}}
	for id, want := range map[string]string{
		workflows.WriteBackWorkflowID("crm", "62515", "D"): "writeback/crm/62515/D",
		"by-hand-7f3a": "invoice/crm/62515/D",
	} {
		capture := &startCapture{}
		s := &TemporalStarter{Client: capture, TaskQueue: "q"}
		if _, err := s.StartWriteBack(context.Background(), conn, ev, connectors.InvoiceResult{InvoiceID: "INV-5"}, "", "", id); err != nil {
			t.Fatal(err)
		}
		o := capture.opts
		if o.ID != want || o.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY ||
			o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING || !o.WorkflowExecutionErrorWhenAlreadyStarted {
			t.Errorf("given %q: started %q with reuse %v, conflict %v, error when started %v; want %q, after a failed run only, meeting a running one",
				id, o.ID, o.WorkflowIDReusePolicy, o.WorkflowIDConflictPolicy, o.WorkflowExecutionErrorWhenAlreadyStarted, want)
		}
	}
}

// gRPC's "no children to pick from", its words for a host name that does
// not resolve, is answered as unavailable (503) with what it means.
func TestAnUnresolvedAddressIsExplained(t *testing.T) {
	err := classifyStartError("invoice/demo/D-1", status.Error(codes.Unavailable, "last connection error: connection error: desc = \"transport: Error while dialing: dial tcp: lookup temporal.invalid: no such host\"; no children to pick from"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "when temporal.address's host name does not resolve") {
		t.Errorf("got %v", err)
	}
	if UnreachableHint(errors.New("connection refused")) != "" {
		t.Error("a hint for another error")
	}
}

// On a connection whose runs settle, only a change of an already won deal
// (its previous stage a won stage too) whose deal the trigger would start
// a run for had it just been won is held for the deal's win: a win the
// trigger turns down (the free deal of a trigger that wants an amount,
// negotiation → closed_won; a renewal the trigger leaves out) and the
// free deal's later changes are skipped at once (200), as before, with no
// run read. The free win was answered 503, Retry-After 150, "changes a
// won deal that has no run in progress", as if a win were to come.
func TestOnlyAChangeOfAWonDealTheTriggerWouldStartIsHeld(t *testing.T) {
	won := []string{"closed_won"}
	file, err := mapping.Parse("paid.yaml", []byte("name: paid\ntrigger: is_won(deal.stage) && !is_won(deal.previous_stage) && deal.previous_stage != 'renewal' && deal.amount > 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	runs := newDealRuns()
	srv := httptest.NewServer(New(Options{
		Connections: conns{"paid": {Name: "paid", Source: &listSource{}, Trigger: file.Trigger(won), WonStages: won,
			SettleTime: 10 * time.Minute, Mapper: file}},
		Starter: &TemporalStarter{Client: runs, TaskQueue: "q", Now: clock},
		Now:     clock, MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	send := func(id, deal, previous, amount string) (*http.Response, string) {
		return postBody(t, srv.URL+"/webhooks/paid", strings.NewReader(fmt.Sprintf(
			`[{"event_id":%q,"occurred_at":%q,"deal":{"id":%q,"stage":"closed_won","previous_stage":%q,"amount":%q}}]`,
			id, now.Format(time.RFC3339Nano), deal, previous, amount)))
	}
	for _, c := range []struct{ name, id, previous, amount string }{
		{"a free deal's win", "w-free", "negotiation", "0"},
		{"a renewal's win", "w-renewal", "renewal", "175.00"},
		{"a free won deal's change", "c-free", "closed_won", "0"},
		{"a win whose previous stage is not said", "w-unsaid", "", "0"},
	} {
		if resp, body := send(c.id, "FREE", c.previous, c.amount); resp.StatusCode != http.StatusOK || resp.Header.Get("Retry-After") != "" ||
			!strings.Contains(body, `trigger of mapping \"paid\" is false`) || !strings.Contains(body, "no run in progress for this deal") {
			t.Errorf("%s: %d (Retry-After %q) %s; want it skipped (200) by the trigger, as before", c.name, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if runs.describes != 0 || len(runs.runs) != 0 {
		t.Errorf("%d reads of a deal's last run, %d runs, for events skipped at once", runs.describes, len(runs.runs))
	}
	// A paid won deal's change is still held for its win.
	if resp, body := send("c-paid", "PAID", "closed_won", "175.00"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "150" ||
		!strings.Contains(body, "event c-paid of deal PAID changes a won deal that has no run in progress") || !strings.Contains(body, "settle_time (10m)") {
		t.Errorf("a paid won deal's change: %d (Retry-After %q) %s; want 503, Retry-After 150", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// lockedRuns is dealRuns for a batch's concurrent starts, which give up
// when the delivery's context is done, as the SDK's calls do.
type lockedRuns struct {
	mu sync.Mutex
	*dealRuns
}

func (l *lockedRuns) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any, opts client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.dealRuns.SignalWithStartWorkflow(ctx, id, signal, arg, opts, workflow, args...)
}

func (l *lockedRuns) SignalWorkflow(ctx context.Context, id, run, signal string, arg any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.dealRuns.SignalWorkflow(ctx, id, run, signal, arg)
}

func (l *lockedRuns) DescribeWorkflowExecution(ctx context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.dealRuns.DescribeWorkflowExecution(ctx, id, run)
}

// A change held for its deal's win refuses its delivery (503) but stops
// no other deal's start: a batch of 40 wins and a held change starts the
// 40 runs at once, so that a sender that gives up on the delivery loses
// the change only. (The held change stopped the starts not yet made: 36
// of 40 runs started, the others dropped with the delivery.) Sent again,
// the wins meet their runs (duplicates, the run drops an event id it has)
// and, once the change is older than the settle time, the delivery is
// acknowledged, each event counted once. Such a 503 is counted as
// 503_held, not as an outage's 503, and logged at info with its reason.
func TestAHeldChangeStopsNoOtherDealsStart(t *testing.T) {
	won := []string{"closed_won"}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	runs := &lockedRuns{dealRuns: newDealRuns()}
	logged := &testlog.Buffer{}
	srv := httptest.NewServer(New(Options{
		Connections: conns{"batch": {Name: "batch", Source: &listSource{}, Trigger: mapping.StageTrigger{WonStages: won}, WonStages: won,
			SettleTime: 10 * time.Minute, Mapper: mapping.Default{PaymentTermsDays: 30}}},
		Starter: &TemporalStarter{Client: runs, TaskQueue: "q", Now: clock},
		Now:     clock, MaxBodyBytes: 1 << 20, StartTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(logged, nil)),
	}))
	t.Cleanup(srv.Close)
	count := func() map[string]float64 {
		m := map[string]float64{}
		for _, code := range []string{"503", metrics.CodeHeld, "202"} {
			m[code] = metrics.Read("dealsync_webhooks_total", "connection", "batch", "code", code)
		}
		for _, o := range []string{metrics.EventStarted, metrics.EventDuplicate, metrics.EventIgnored} {
			m[o] = metrics.Read("dealsync_webhook_events_total", "connection", "batch", "outcome", o)
		}
		return m
	}
	before := count()
	// A few batches, each of new deals: the order the intake takes a
	// batch's deals in is its own each time.
	for round := range 5 {
		var evs []string
		for i := range 40 {
			evs = append(evs, fmt.Sprintf(`{"event_id":"w%d-%d","occurred_at":%q,"deal":{"id":"D%d-%d","stage":"closed_won","previous_stage":"negotiation","amount":"100"}}`,
				round, i, now.Format(time.RFC3339Nano), round, i))
		}
		held := fmt.Sprintf("H%d", round)
		evs = append(evs, fmt.Sprintf(`{"event_id":"c%d","occurred_at":%q,"deal":{"id":%q,"stage":"closed_won","previous_stage":"closed_won","amount":"175"}}`,
			round, now.Format(time.RFC3339Nano), held))
		body := "[" + strings.Join(evs, ",") + "]"
		resp, said := postBody(t, srv.URL+"/webhooks/batch", strings.NewReader(body))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "150" ||
			!strings.Contains(said, "changes a won deal that has no run in progress") || !strings.Contains(said, "other deals' events were handed on") {
			t.Fatalf("round %d: %d (Retry-After %q) %s; want 503 holding the change, Retry-After 150", round, resp.StatusCode, resp.Header.Get("Retry-After"), said)
		}
		var missing []string
		for i := range 40 {
			if _, ok := runs.runs[workflows.DealWorkflowID("batch", "", fmt.Sprintf("D%d-%d", round, i))]; !ok {
				missing = append(missing, fmt.Sprintf("D%d-%d", round, i))
			}
		}
		if len(missing) != 0 {
			t.Fatalf("round %d: the held change stopped the starts of %v; want every win started", round, missing)
		}
		// Sent again within the settle time: held again, the wins duplicates.
		if resp, _ := postBody(t, srv.URL+"/webhooks/batch", strings.NewReader(body)); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("round %d, sent again: %d; want 503", round, resp.StatusCode)
		}
		if len(runs.runs) != 40*(round+1) {
			t.Fatalf("round %d: %d runs, want one per win", round, len(runs.runs))
		}
		// Once the change is older than the settle time: acknowledged, the
		// wins duplicates of their runs, the change skipped.
		clockMu.Lock()
		now = now.Add(10 * time.Minute)
		clockMu.Unlock()
		var reply struct{ Results []answer }
		resp, said = postBody(t, srv.URL+"/webhooks/batch", strings.NewReader(body))
		if err := json.Unmarshal([]byte(said), &reply); err != nil || resp.StatusCode != http.StatusAccepted || len(reply.Results) != 41 {
			t.Fatalf("round %d, sent again after the settle time: %d %s; want 202", round, resp.StatusCode, said)
		}
		for _, r := range reply.Results[:40] {
			if !r.Duplicate {
				t.Errorf("round %d: win %s sent again: %+v; want a duplicate of its run", round, r.EventID, r)
			}
		}
		if r := reply.Results[40]; !strings.Contains(r.Skipped, "no run in progress for this deal") {
			t.Errorf("round %d: the change past the settle time: %+v; want it skipped", round, r)
		}
		for i := range 40 {
			run := runs.runs[workflows.DealWorkflowID("batch", "", fmt.Sprintf("D%d-%d", round, i))]
			if got := len(runs.signalled[run]); got != 3 {
				t.Errorf("round %d: D%d-%d's run was signalled its win %d times, want 3 (it drops the id it has)", round, round, i, got)
			}
		}
	}
	after := count()
	for key, want := range map[string]float64{"503": 0, metrics.CodeHeld: 10, "202": 5, metrics.EventStarted: 0, metrics.EventDuplicate: 200, metrics.EventIgnored: 5} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s counted %v, want %v (a hold is no outage's 503; events are counted once, with the delivery acknowledged)", key, got, want)
		}
	}
	out := logged.String()
	if strings.Contains(out, "level=WARN") || !strings.Contains(out, `level=INFO msg="webhook refused" connection=batch status=503`) ||
		!strings.Contains(out, "not an outage") || !strings.Contains(out, "longer ago than the Temporal namespace's retention") ||
		!strings.Contains(out, `level=INFO msg="http request" method=POST path=/webhooks/batch status=503`) {
		t.Errorf("a held change's refusals are logged at info, saying why, not at warn as an outage:\n%s", out)
	}
}

// failingWinTrigger fails on a deal judged as just won (no previous
// stage), as an expression may on a field a win lacks.
type failingWinTrigger struct{}

func (failingWinTrigger) Evaluate(ev model.DealEvent) (bool, string, error) {
	if ev.Deal.PreviousStage == "" {
		return false, "", errors.New("deal.custom.tier: no such field")
	}
	return false, "not a win", nil
}

// A trigger that fails on the hold check's copy of a change (judged as a
// win) is taken as a yes, and the change held: that was said nowhere.
// It is logged at debug, with the trigger's error.
func TestAHoldOnATriggerThatFailsIsLoggedAtDebug(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	won := []string{"closed_won"}
	logged := &testlog.Buffer{}
	s := &TemporalStarter{Client: newDealRuns(), TaskQueue: "q", Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	conn := &connections.Connection{Name: "crm", Trigger: failingWinTrigger{}, WonStages: won, SettleTime: 8 * time.Second,
		Mapper: mapping.Default{PaymentTermsDays: 30}}
	ev := model.DealEvent{EventID: "e7", OccurredAt: now.Add(-time.Second), Deal: model.Deal{ID: "D", Stage: "closed_won", PreviousStage: "closed_won"}}
	if _, _, err := s.Notify(context.Background(), conn, ev); !errors.Is(err, ErrWinPending) {
		t.Fatalf("Notify: %v, want the change held (ErrWinPending)", err)
	}
	out := logged.String()
	for _, want := range []string{"level=DEBUG", "hold check: the trigger failed", "connection=crm", "deal=D", "event=e7", "deal.custom.tier: no such field"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// inputCapture is a Temporal client that keeps the input of the run it is
// asked to start.
type inputCapture struct {
	client.Client
	in workflows.InvoiceDealInput
}

func (c *inputCapture) ExecuteWorkflow(_ context.Context, _ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	c.in = args[0].(workflows.InvoiceDealInput)
	return runOf("new"), nil
}

// A run is started for the ERP target its connection's config gives the
// deal's account (account_targets, else the connection's target): its
// ERP steps refuse to call another. A connection whose target is not
// known starts runs without one (not checked).
func TestARunIsStartedForItsAccountsTarget(t *testing.T) {
	books := connectors.IdentifyTarget("books", "http", nil)
	booksDE := connectors.IdentifyTarget("books-de", "http", nil)
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}, TargetIdentity: books,
		AccountTargets: map[string]activities.NamedTarget{"7": {Name: "books-de", Identity: booksDE}}}
	for account, want := range map[string]*connectors.TargetIdentity{"7": &booksDE, "8": &books, "": &books} {
		capture := &inputCapture{}
		s := &TemporalStarter{Client: capture, TaskQueue: "q"}
		if _, err := s.Start(context.Background(), conn, model.DealEvent{EventID: "e", Account: account, Deal: model.Deal{ID: "D"}}); err != nil {
			t.Fatal(err)
		}
		if got := capture.in.ERPTarget; got == nil || *got != *want {
			t.Errorf("account %q: the run is started for %+v, want %+v", account, got, want)
		}
	}
	capture := &inputCapture{}
	s := &TemporalStarter{Client: capture, TaskQueue: "q"}
	if _, err := s.Start(context.Background(), &connections.Connection{Name: "crm", Mapper: mapping.Default{}}, model.DealEvent{EventID: "e", Deal: model.Deal{ID: "D"}}); err != nil {
		t.Fatal(err)
	}
	if capture.in.ERPTarget != nil {
		t.Errorf("a connection without a known target: the run is started for %+v, want none", capture.in.ERPTarget)
	}
}

// The events of a thin CRM (HubSpot, Salesforce, Pipedrive) come in
// bursts, each meeting the deal's running run: only a whole-deal loss
// starts a RecordDealLoss run, so the run a thin event meets is never
// one, and reading its type cost every such event one more call to
// Temporal before its answer. (A thin event has no stage either: the
// loss's run could not tell it a newer win, and the answer's reason
// would be wrong.)
func TestAThinEventMeetingItsRunReadsNoRunType(t *testing.T) {
	runs := newDealRuns()
	s := &TemporalStarter{Client: runs, TaskQueue: "q"}
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	for i, want := range []bool{false, true, true} {
		res, err := s.Start(context.Background(), conn, model.DealEvent{EventID: fmt.Sprint("e", i), Thin: true, Deal: model.Deal{ID: "D"}})
		if err != nil || res.Duplicate != want || res.Reason != "" {
			t.Fatalf("event %d: %+v, %v; want duplicate %v and no reason", i, res, err, want)
		}
	}
	if runs.describes != 0 {
		t.Errorf("the deal's run was described %d times for thin events", runs.describes)
	}
}

// optionsCapture is a Temporal client that keeps the options and the
// workflow type of each run it is asked to start, by start or signal
// with start.
type optionsCapture struct {
	client.Client
	opts  []client.StartWorkflowOptions
	types []string
}

func (c *optionsCapture) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, workflow any, _ ...any) (client.WorkflowRun, error) {
	c.opts, c.types = append(c.opts, opts), append(c.types, workflow.(string))
	return runOf("new"), nil
}

func (c *optionsCapture) SignalWithStartWorkflow(_ context.Context, _, _ string, _ any, opts client.StartWorkflowOptions, workflow any, _ ...any) (client.WorkflowRun, error) {
	c.opts, c.types = append(c.opts, opts), append(c.types, workflow.(string))
	return runOf("new"), nil
}

// Every run dealsync starts says in the Web UI which deal it is for and
// what it does with it (its summary), and where its calls go and what
// started it (its details): a win started or signalled with start, the
// write-back of an invoice (naming the mapping it was made with, and no
// ERP target: it calls none, and the connection's today may not be the
// one the invoice was made on), a loss's RecordDealLoss run; the
// starter's Origin names `deals sync` or `runs retry`.
func TestStartsSayWhatTheRunIs(t *testing.T) {
	books := connectors.IdentifyTarget("books", "http", nil)
	conn := &connections.Connection{Name: "shop", Mapper: mapping.Default{PaymentTermsDays: 30}, TargetIdentity: books, WonStages: []string{"closed_won"}}
	hash := conn.Mapper.Hash()
	deal := model.Deal{ID: "D-1", Stage: "closed_won", PreviousStage: "negotiation", Amount: decimal.NewNullDecimal(decimal.RequireFromString("1200")),
		Currency: "EUR", Company: model.Company{Name: "Acme Ltd"}}
	won := model.DealEvent{EventID: "e1", Account: "62515", Deal: deal}
	lost := won
	lost.EventID, lost.Deal.Stage, lost.Deal.PreviousStage = "e2", "closed_lost", "closed_won"

	capture := &optionsCapture{}
	s := &TemporalStarter{Client: capture, TaskQueue: "q"}
	if _, err := s.Start(context.Background(), conn, won); err != nil {
		t.Fatal(err)
	}
	s.Origin = OriginRunsRetry
	if _, err := s.StartWriteBack(context.Background(), conn, won, connectors.InvoiceResult{InvoiceID: "inv-5", Number: "INV-0005"}, "shop-invoices", "593fc46cac74", ""); err != nil {
		t.Fatal(err)
	}
	s.Origin = OriginDealsSync
	listening := *conn
	listening.SettleTime = time.Minute
	if _, err := s.Start(context.Background(), &listening, won); err != nil {
		t.Fatal(err)
	}
	s.Origin = ""
	if _, _, err := s.Notify(context.Background(), &listening, lost); err != nil {
		t.Fatal(err)
	}
	want := []struct{ typ, summary, details string }{
		{workflows.InvoiceDealName, `Deal D-1 (Acme Ltd) · 1,200.00 EUR · won → invoice via connection "shop"`,
			"- connection shop, CRM account 62515\n- mapping default (hash " + hash + ")\n- ERP target \"books\" (http)\n- started by a webhook"},
		{workflows.InvoiceDealName, `Deal D-1 (Acme Ltd) · 1,200.00 EUR · write invoice INV-0005 back to the CRM via connection "shop"`,
			"- connection shop, CRM account 62515\n- invoice made with mapping shop-invoices (hash 593fc46cac74)\n- started by dealsync runs retry"},
		{workflows.InvoiceDealName, `Deal D-1 (Acme Ltd) · 1,200.00 EUR · won → invoice via connection "shop"`,
			"- connection shop, CRM account 62515\n- mapping default (hash " + hash + ")\n- ERP target \"books\" (http)\n- started by dealsync deals sync"},
		{workflows.RecordDealLossName, `Deal D-1 (Acme Ltd) · 1,200.00 EUR · lost (stage closed_lost) → record the loss via connection "shop"`,
			"- connection shop, CRM account 62515\n- mapping default (hash " + hash + ")\n- ERP target \"books\" (http)\n- started by a webhook"},
	}
	if len(capture.opts) != len(want) {
		t.Fatalf("%d runs started, want %d", len(capture.opts), len(want))
	}
	for i, w := range want {
		if o := capture.opts[i]; capture.types[i] != w.typ || o.StaticSummary != w.summary || o.StaticDetails != w.details {
			t.Errorf("run %d (%s):\n summary %s\n details %q\nwant %s\n summary %s\n details %q", i, capture.types[i], o.StaticSummary, o.StaticDetails, w.typ, w.summary, w.details)
		}
	}
}

// The store probe's run not found is the database's answer; no answer
// in time, or an answer that the server cannot read it now (unavailable,
// shedding load, failing), is the database's outage; a refusal of the
// intake's credentials is not, and holds nothing back.
func TestStoreProbeTellsTheDatabasesOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		store bool
	}{
		{"found", nil, false},
		{"not found", serviceerror.NewNotFound("workflow not found for ID: " + StoreProbeID), false},
		{"no answer in time", context.DeadlineExceeded, true},
		{"deadline status", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true},
		{"unavailable", serviceerror.NewUnavailable("GetWorkflowExecution operation failed. Error: dial tcp: connection refused"), true},
		{"resource exhausted", &serviceerror.ResourceExhausted{Message: "persistence max QPS reached"}, true},
		{"internal", serviceerror.NewInternal("Error in deserialization"), true},
		{"unknown", status.Error(codes.Unknown, "unexpected HTTP status code received from server: 500"), true},
		{"aborted", status.Error(codes.Aborted, "operation aborted"), true},
		{"permission", serviceerror.NewPermissionDenied("Request unauthorized.", ""), false},
		{"a proxy's 401", status.Error(codes.Unauthenticated, "unexpected HTTP status code received from server: 401"), false},
		{"canceled", status.Error(codes.Canceled, "context canceled"), false},
		{"context canceled", context.Canceled, false},
	} {
		err := storeProbeError(tc.err, nil)
		var se *StoreError
		if got := errors.As(err, &se); got != tc.store {
			t.Errorf("%s: %v, want a StoreError: %v", tc.name, err, tc.store)
		}
		// The server's answer is kept, for the log.
		if tc.store && tc.err != nil && !strings.Contains(err.Error(), serviceerror.ToStatus(tc.err).Message()) {
			t.Errorf("%s: %q does not say the server's answer %q", tc.name, err, serviceerror.ToStatus(tc.err).Message())
		}
		// A read cut short (its asker gone) is no answer either way: not
		// "ready".
		if strings.Contains(tc.name, "canceled") {
			if err == nil {
				t.Errorf("%s: nil, want the read's cancellation", tc.name)
			}
		}
	}
}

// A read that ran out of time while the SDK retried the server's answers
// (a full disk: "shard status unknown") says the last of them, which the
// SDK's "context deadline exceeded" does not; an attempt cut off by the
// deadline is no answer.
func TestStoreProbeSaysTheServersLastAnswer(t *testing.T) {
	p := &startProbe{}
	p.answered(status.Error(codes.Unavailable, "shard status unknown"))
	p.answered(status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	err := storeProbeError(serviceerror.NewDeadlineExceeded("context deadline exceeded"), p.lastAnswer())
	var se *StoreError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "Temporal's last answer: rpc error: code = Unavailable desc = shard status unknown") {
		t.Errorf("%v, want a StoreError that says the last answer", err)
	}
	start := classifyStartError("wf/1", p.withLastAnswer(context.DeadlineExceeded))
	if !errors.Is(start, ErrUnavailable) || !strings.Contains(start.Error(), "shard status unknown") {
		t.Errorf("a start out of time: %v, want unavailable, saying the last answer", start)
	}
	if err := p.withLastAnswer(serviceerror.NewInvalidArgument("bad")); strings.Contains(err.Error(), "last answer") {
		t.Errorf("an answer of its own: %v, want it alone", err)
	}
}

// Watch's namespace check and Ready end with the store probe, after the
// namespace: a namespace that cannot be used is said first.
func TestTheStoreIsCheckedAfterTheNamespace(t *testing.T) {
	down := &StoreError{Err: errors.New("reading a run: context deadline exceeded")}
	probed := 0
	s := &TemporalStarter{Store: func(context.Context) error { probed++; return down }}
	if err := s.CheckNamespace(context.Background()); !errors.Is(err, down) || probed != 1 {
		t.Errorf("CheckNamespace: %v after %d probes, want the store's error after 1", err, probed)
	}
	gone := &NamespaceError{Err: errors.New("namespace gone")}
	s.Namespace = func(context.Context) error { return gone }
	if err := s.CheckNamespace(context.Background()); !errors.Is(err, gone) || probed != 1 {
		t.Errorf("CheckNamespace of a namespace gone: %v after %d probes, want the namespace's error, no probe", err, probed)
	}
}
