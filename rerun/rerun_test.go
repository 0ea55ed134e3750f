package rerun

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// The selection is the operators' filter language: what each option
// selects, narrowed by the user's filter in parentheses (an OR of theirs
// cannot widen it).
func TestFilter(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{TaskQueue: "dealsync"}, `TaskQueue = "dealsync" AND (ExecutionStatus = "Failed" AND SyncStatus = "failed")`},
		{Options{TaskQueue: "dealsync", TimedOut: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "failed") OR (ExecutionStatus = "TimedOut" AND SyncStatus IN ("pending", "failed", "invoiced", "writeback_failed")))`},
		{Options{TaskQueue: "dealsync", Terminated: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "failed") OR (ExecutionStatus = "Terminated" AND SyncStatus IN ("pending", "failed", "invoiced", "writeback_failed")))`},
		{Options{TaskQueue: "dealsync", Canceled: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "failed") OR (ExecutionStatus = "Canceled" AND SyncStatus IN ("pending", "failed", "invoiced", "writeback_failed")))`},
		{Options{TaskQueue: "dealsync", WriteBack: true}, `TaskQueue = "dealsync" AND (ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed")`},
		{Options{TaskQueue: "dealsync", WriteBack: true, TimedOut: true, Terminated: true}, `TaskQueue = "dealsync" AND (((ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed") OR (ExecutionStatus = "TimedOut" AND SyncStatus IN ("invoiced", "writeback_failed", "pending"))) OR (ExecutionStatus = "Terminated" AND SyncStatus IN ("invoiced", "writeback_failed", "pending")))`},
		{Options{TaskQueue: "dealsync", WriteBack: true, Canceled: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed") OR (ExecutionStatus = "Canceled" AND SyncStatus IN ("invoiced", "writeback_failed", "pending")))`},
		{Options{TaskQueue: "dealsync", WriteBack: true, Completed: true}, `TaskQueue = "dealsync" AND ((ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed") OR (ExecutionStatus = "Completed" AND SyncStatus = "invoiced"))`},
		{Options{TaskQueue: "dealsync", WriteBack: true, Completed: true, TimedOut: true}, `TaskQueue = "dealsync" AND (((ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed") OR (ExecutionStatus = "TimedOut" AND SyncStatus IN ("invoiced", "writeback_failed", "pending"))) OR (ExecutionStatus = "Completed" AND SyncStatus = "invoiced"))`},
		{Options{TaskQueue: "dealsync", Completed: true}, `TaskQueue = "dealsync" AND (ExecutionStatus = "Failed" AND SyncStatus = "failed")`},
		{Options{TaskQueue: "q", Query: `Connection = "a" OR Connection = "b"`}, `TaskQueue = "q" AND (ExecutionStatus = "Failed" AND SyncStatus = "failed") AND (Connection = "a" OR Connection = "b")`},
	} {
		if got := c.o.Filter(); got != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.o, got, c.want)
		}
	}
}

// sliceEvents is a history held in memory.
type sliceEvents []*historypb.HistoryEvent

func (s *sliceEvents) HasNext() bool { return len(*s) > 0 }
func (s *sliceEvents) Next() (*historypb.HistoryEvent, error) {
	ev := (*s)[0]
	*s = (*s)[1:]
	return ev, nil
}

func payloads(t *testing.T, v any) *commonpb.Payloads {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func started(t *testing.T, in workflows.InvoiceDealInput) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: &commonpb.WorkflowType{Name: workflows.InvoiceDealName}, Input: payloads(t, in),
		}}}
}

// marker is a local activity's marker as the SDK records it: its type in
// "data", its result in "result".
func marker(t *testing.T, id int64, activityType string, result any) *historypb.HistoryEvent {
	details := map[string]*commonpb.Payloads{"data": payloads(t, map[string]any{"ActivityType": activityType, "Attempt": 1})}
	if result != nil {
		details["result"] = payloads(t, result)
	}
	return &historypb.HistoryEvent{EventId: id, EventType: enumspb.EVENT_TYPE_MARKER_RECORDED,
		Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
			MarkerName: "LocalActivity", Details: details,
		}}}
}

func scheduled(id int64, activityType string) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: id, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
		Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityType: &commonpb.ActivityType{Name: activityType},
		}}}
}

func completed(t *testing.T, id, scheduledID int64, result any) *historypb.HistoryEvent {
	attrs := &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: scheduledID}
	if result != nil {
		attrs.Result = payloads(t, result)
	}
	return &historypb.HistoryEvent{EventId: id, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: attrs}}
}

// readHistory finds the invoice a run created and whether it was written
// back, from local activities' markers and from activities' completions;
// a run that only wrote an invoice back has it in its input.
func TestReadHistoryFindsTheInvoiceAndTheWriteBack(t *testing.T) {
	in := workflows.InvoiceDealInput{Connection: "hs", WriteBack: true, Event: model.DealEvent{Deal: model.Deal{ID: "4711"}}}
	inv := connectors.InvoiceResult{InvoiceID: "INV-1", Number: "1001"}
	failedMarker := marker(t, 6, "WriteBack", nil)
	failedMarker.GetMarkerRecordedEventAttributes().Failure = &failurepb.Failure{Message: "HubSpot answered 503"}
	for _, c := range []struct {
		name      string
		events    []*historypb.HistoryEvent
		invoice   string
		wroteBack bool
	}{
		{"local activities, write-back still retried", []*historypb.HistoryEvent{started(t, in), marker(t, 2, "MapDeal", map[string]any{}), marker(t, 3, "CreateInvoice", inv)}, "INV-1", false},
		{"local activities, written back", []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv), marker(t, 4, "WriteBack", nil)}, "INV-1", true},
		{"a failed write-back is not one", []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv), failedMarker}, "INV-1", false},
		{"activities, written back", []*historypb.HistoryEvent{started(t, in), scheduled(5, "CreateInvoice"), completed(t, 7, 5, inv), scheduled(9, "WriteBack"), completed(t, 11, 9, nil)}, "INV-1", true},
		{"activities, write-back scheduled only", []*historypb.HistoryEvent{started(t, in), scheduled(5, "CreateInvoice"), completed(t, 7, 5, inv), scheduled(9, "WriteBack")}, "INV-1", false},
		// A step whose worker had no write-back for the connection
		// skipped it, and says so; one that wrote says nothing.
		{"local activities, write-back skipped", []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv), marker(t, 4, "WriteBack", activities.WriteBackOutcome{Skipped: "no write-back here"})}, "INV-1", false},
		{"activities, write-back skipped", []*historypb.HistoryEvent{started(t, in), scheduled(5, "CreateInvoice"), completed(t, 7, 5, inv), scheduled(9, "WriteBack"), completed(t, 11, 9, activities.WriteBackOutcome{Skipped: "no write-back here"})}, "INV-1", false},
		{"local activities, written back with an outcome", []*historypb.HistoryEvent{started(t, in), marker(t, 3, "CreateInvoice", inv), marker(t, 4, "WriteBack", activities.WriteBackOutcome{})}, "INV-1", true},
		{"no invoice", []*historypb.HistoryEvent{started(t, in), marker(t, 2, "MapDeal", map[string]any{})}, "", false},
	} {
		events := sliceEvents(c.events)
		h, err := readHistory(&events)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ""
		if h.invoiced != nil {
			got = h.invoiced.InvoiceID
		}
		if got != c.invoice || h.wroteBack != c.wroteBack || h.input.Event.Deal.ID != "4711" || !h.input.WriteBack {
			t.Errorf("%s: invoice %q wrote back %v input %+v; want %q %v", c.name, got, h.wroteBack, h.input, c.invoice, c.wroteBack)
		}
	}

	rerunIn := in
	rerunIn.Invoiced = &inv
	events := sliceEvents{started(t, rerunIn)}
	if h, err := readHistory(&events); err != nil || h.invoiced == nil || h.invoiced.InvoiceID != "INV-1" {
		t.Errorf("a write-back-only run: %+v, %v", h, err)
	}
	events = sliceEvents{}
	if _, err := readHistory(&events); err == nil {
		t.Error("an empty history was read")
	}
	other := started(t, in)
	other.GetWorkflowExecutionStartedEventAttributes().WorkflowType.Name = "Other"
	events = sliceEvents{other}
	if _, err := readHistory(&events); err == nil {
		t.Errorf("another workflow type: %v", err)
	}
}

func signaled(t *testing.T, id int64, ev model.DealEvent) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventId: id, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{
			SignalName: workflows.DealEventSignal, Input: payloads(t, ev),
		}}}
}

// A re-run starts from the newest event of the deal the failed run
// received: a later event of the won deal (an amount change) replaces the
// input event, an older one delivered late does not, and one that moved
// the deal out of the won stages is not retried. Thin events keep the
// input event (the run reads the deal).
func TestRetryEventIsTheNewestStateOfTheWonDeal(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 11, 20, 10, min, 0, 0, time.UTC) }
	won := model.DealEvent{EventID: "e1", OccurredAt: at(0), Deal: model.Deal{ID: "D-1", Stage: "closed_won", Amount: decimal.NewNullDecimal(decimal.RequireFromString("100"))}}
	amount := won
	amount.EventID, amount.OccurredAt, amount.Deal.Amount = "e2", at(1), decimal.NewNullDecimal(decimal.RequireFromString("120"))
	older := won
	older.EventID, older.OccurredAt = "e0", at(-5)
	otherWon := won
	otherWon.EventID, otherWon.OccurredAt, otherWon.Deal.Stage = "e4", at(3), "won_renewal"
	lost := won
	lost.EventID, lost.OccurredAt, lost.Deal.Stage = "e3", at(2), "closed_lost"
	thinWon, thinLater := won, amount
	thinWon.Thin, thinLater.Thin = true, true

	for _, c := range []struct {
		name     string
		input    model.DealEvent
		signals  []model.DealEvent
		want     string
		skipping bool
	}{
		{"no later event", won, nil, "e1", false},
		{"a later amount change", won, []model.DealEvent{amount}, "e2", false},
		{"an older event delivered late", won, []model.DealEvent{amount, older}, "e2", false},
		{"another won stage", won, []model.DealEvent{otherWon}, "e4", false},
		{"the deal was lost", won, []model.DealEvent{amount, lost}, "e1", true},
		{"thin events", thinWon, []model.DealEvent{thinLater}, "e1", false},
	} {
		in := workflows.InvoiceDealInput{Connection: "shop", Event: c.input, WonStages: []string{"closed_won", "WON_RENEWAL"}}
		events := sliceEvents{started(t, in)}
		for i, sig := range c.signals {
			events = append(events, signaled(t, int64(5+i), sig))
		}
		h, err := readHistory(&events)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ev, skip := h.retryEvent()
		if ev.EventID != c.want || (skip != "") != c.skipping {
			t.Errorf("%s: event %s, skip %q; want %s, skipping %v", c.name, ev.EventID, skip, c.want, c.skipping)
		}
	}

	// The input's id sent again later (a sender numbering its events per
	// transition, the deal won back at another amount): the newer event,
	// as the run takes it.
	wonBack := won
	wonBack.OccurredAt, wonBack.Deal.Amount = at(4), decimal.NewNullDecimal(decimal.RequireFromString("130"))
	in := workflows.InvoiceDealInput{Connection: "shop", Event: won, WonStages: []string{"closed_won"}}
	events := sliceEvents{started(t, in), signaled(t, 5, lost), signaled(t, 6, wonBack)}
	h, err := readHistory(&events)
	if err != nil {
		t.Fatal(err)
	}
	if ev, skip := h.retryEvent(); skip != "" || !ev.OccurredAt.Equal(at(4)) || ev.Deal.Amount.Decimal.String() != "130" {
		t.Errorf("won back under the input's id: event %s at %v amount %v, skip %q; want the one at %v", ev.EventID, ev.OccurredAt, ev.Deal.Amount, skip, at(4))
	}
	// ... and lost under it: not retried, as the run would have ended.
	lostAgain := won
	lostAgain.OccurredAt, lostAgain.Deal.Stage = at(5), "closed_lost"
	events = sliceEvents{started(t, in), signaled(t, 5, lostAgain)}
	if h, err = readHistory(&events); err != nil {
		t.Fatal(err)
	}
	if _, skip := h.retryEvent(); skip == "" {
		t.Error("lost under the input's id: retried")
	}
}

// A --query can only narrow the selection: one that closes a parenthesis
// it did not open (escaping the selection's own) or orders the list is
// refused before anything is listed; quoted text is not judged.
func TestCheckQuery(t *testing.T) {
	for _, q := range []string{"", `Connection = "shop"`, `Connection = "a)" OR (DealId = 'b(')`, `DealId = "x\")"`,
		`(Connection = "a" OR Connection = "b") AND CloseTime > "2026-11-01T00:00:00Z"`, `Connection = "order by"`} {
		if err := (Options{Query: q}).CheckQuery(); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for q, want := range map[string]string{
		`Connection = "shop") OR (ExecutionStatus = "Completed"`: "closed that was not opened",
		`(Connection = "shop"`:                                                 "not closed",
		`Connection = "shop`:                                                   "quoted string is not closed",
		`Connection = "shop" ORDER BY CloseTime`:                               "without ORDER BY",
		"Connection = \"shop\" order\n by StartTime":                           "without ORDER BY",
		`Connection = "a" /* " */ ) OR (ExecutionStatus = "Completed" /* " */`: "without comments",
		`Connection = "a" -- x`:                                                "without comments",
		"DealId = \"x\" // \"\n) OR (ExecutionStatus = 'Running' // \"\n":      "without comments",
	} {
		err := (Options{Query: q}).CheckQuery()
		if !errors.Is(err, ErrInvalidQuery) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrInvalidQuery saying %q", q, err, want)
		}
	}
}

// --writeback --completed writes back a run that had no write-back to do
// when it started: one that completed with its invoice, and one that
// ended otherwise after it (selected by its ending's flag); never a
// failed run's (--writeback's own), one without an invoice, or one that
// ended otherwise with a write-back to do (--writeback alone takes it).
func TestLateWriteBack(t *testing.T) {
	inv := &connectors.InvoiceResult{InvoiceID: "INV-1"}
	const (
		completed = enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
		timedOut  = enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT
		failed    = enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	)
	for _, c := range []struct {
		name      string
		o         Options
		status    enumspb.WorkflowExecutionStatus
		writeBack bool
		h         runHistory
		want      bool
	}{
		{"completed", Options{WriteBack: true, Completed: true}, completed, false, runHistory{invoiced: inv}, true},
		{"completed, not --writeback", Options{Completed: true}, completed, false, runHistory{invoiced: inv}, false},
		{"completed without an invoice", Options{WriteBack: true, Completed: true}, completed, false, runHistory{}, false},
		{"timed out without a write-back to do", Options{WriteBack: true, Completed: true, TimedOut: true}, timedOut, false, runHistory{invoiced: inv}, true},
		{"timed out, without --completed", Options{WriteBack: true, TimedOut: true}, timedOut, false, runHistory{invoiced: inv}, false},
		{"timed out with a write-back to do", Options{WriteBack: true, Completed: true, TimedOut: true}, timedOut, true, runHistory{invoiced: inv}, false},
		{"failed", Options{WriteBack: true, Completed: true}, failed, false, runHistory{invoiced: inv}, false},
	} {
		if got := lateWriteBack(c.o, c.status, workflows.InvoiceDealInput{WriteBack: c.writeBack}, c.h); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
