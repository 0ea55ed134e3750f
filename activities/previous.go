package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
)

// RunReader reads earlier runs from Temporal: the worker's client.
type RunReader interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool, filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// NotWonDetails are the details of a run's DealNotWon failure: the events
// it saw and the newest one's time and stage. A later run of the deal reads
// them (PreviousRun) to tell a won event the CRM delivers again, or late,
// from a new win.
type NotWonDetails struct {
	EventIDs []string  `json:"event_ids"`
	LatestAt time.Time `json:"latest_at"`
	Stage    string    `json:"stage,omitempty"`
}

// PreviousRunInput names the run asking (its own run is not "previous")
// and the signal that delivers a deal's later events to a run.
type PreviousRunInput struct {
	Connection string `json:"connection"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Signal     string `json:"signal"`
	// DealID is the deal whose runs are read, for the step's log lines
	// ("" in runs started before it was given).
	DealID string `json:"deal_id,omitempty"`
	// WithInvoice also reads the newest earlier run that made the deal's
	// invoice and failed writing it back (PreviousRun.Invoiced): for a
	// run that records a loss, which would otherwise say nothing was
	// invoiced.
	WithInvoice bool `json:"with_invoice,omitempty"`
}

// PreviousRun is how the newest earlier run of a workflow id that ended
// DealNotWon (SyncStatus "skipped") ended. RunID is empty when the run
// list has none: none ended so, or not yet listed (the run list shows a
// closed run a moment after it closed), or gone with the namespace's
// retention.
type PreviousRun struct {
	RunID     string         `json:"run_id,omitempty"`
	ErrorType string         `json:"error_type,omitempty"`
	NotWon    *NotWonDetails `json:"not_won,omitempty"`
	// Invoiced, asked for with WithInvoice, is the newest earlier run that
	// made the deal's invoice and failed writing it back (its invoice
	// exists), or nil.
	Invoiced *InvoicedRun `json:"invoiced,omitempty"`
	// InvoicedUnread says why Invoiced could not be read ("" when it was).
	InvoicedUnread string `json:"invoiced_unread,omitempty"`
}

// InvoicedRun is a run that made the deal's invoice and then failed
// (ErrTypeWriteBackFailed): its id and the invoice's.
type InvoicedRun struct {
	RunID     string `json:"run_id"`
	InvoiceID string `json:"invoice_id"`
	Number    string `json:"number,omitempty"`
}

// ErrTypeWriteBackFailed ends a run whose invoice was made but not
// written back to the CRM; its details are the invoice
// (connectors.InvoiceResult). The workflows' ErrTypeWriteBackFailed is it.
const ErrTypeWriteBackFailed = "WriteBackFailed"

// ErrTypeDealNotWon ends a run whose deal is no longer won; its details
// are NotWonDetails.
const ErrTypeDealNotWon = "DealNotWon"

// ErrTypeRunsUnreadable: Temporal refuses to list or read the deal's runs
// (permission, or a query the namespace cannot answer). Not retried.
const ErrTypeRunsUnreadable = "RunsUnreadable"

// ErrTypeTemporalUnavailable: listing or reading the deal's runs failed
// (Temporal or its run list unavailable, or rate-limited). Retried.
const ErrTypeTemporalUnavailable = "TemporalUnavailable"

// PreviousRun reads the newest earlier run of in.WorkflowID that ended
// DealNotWon (passing over skipped runs that failed otherwise), and the
// events it saw: from its failure's details, or, for a
// run that ended before failures carried them, from its history. Without
// a RunReader it reports none.
func (a *Activities) PreviousRun(ctx context.Context, in PreviousRunInput) (_ PreviousRun, err error) {
	defer a.observe(ctx, "previous_run", in.Connection, in.DealID, 0, time.Now(), &err)
	if a.Runs == nil {
		return PreviousRun{}, nil
	}
	out, err := a.previousLoss(ctx, in)
	if err != nil || !in.WithInvoice {
		return out, err
	}
	// Not a failure of the read: the loss it is for is recorded all the
	// same, saying that this could not be read.
	if out.Invoiced, err = a.invoicedRun(ctx, in); err != nil {
		out.InvoicedUnread = err.Error()
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			out.InvoicedUnread = appErr.Message() // without the SDK's "(type: …)"
		}
	}
	return out, nil
}

// invoicedRun reads the newest earlier run of in.WorkflowID that made the
// deal's invoice and failed writing it back; nil when there is none.
func (a *Activities) invoicedRun(ctx context.Context, in PreviousRunInput) (*InvoicedRun, error) {
	runs := RunsOfID(in.WorkflowID)
	var execs []*workflowpb.WorkflowExecutionInfo
	var token []byte
	listed := 0 // runs listed, of any ID
	// One page of the ID's runs; a filter that lists other IDs' runs too
	// reads on until it has a page of the ID's own, or all of them.
	for page := 0; page < maxPreviousPages && len(execs) < previousPageSize; page++ {
		resp, err := a.Runs.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         runs.Query + ` AND ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed"`,
			PageSize:      runs.pageSize(),
			NextPageToken: token,
		})
		if err != nil {
			return nil, runsError("listing the earlier runs of "+in.WorkflowID+" that failed writing their invoice back", err)
		}
		listed += len(resp.GetExecutions())
		for _, ex := range resp.GetExecutions() {
			if runs.Matches(ex) && ex.GetExecution().GetRunId() != in.RunID {
				execs = append(execs, ex)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 || !runs.Prefixed() {
			break
		}
	}
	// A prefixed filter whose pages ran out before a page of the ID's own
	// runs may have left its newest such run unread: none found is then
	// not "none".
	unread := runs.Prefixed() && len(token) > 0 && len(execs) < previousPageSize
	slices.SortStableFunc(execs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return b.GetCloseTime().AsTime().Compare(a.GetCloseTime().AsTime())
	})
	for _, ex := range execs {
		run := ex.GetExecution().GetRunId()
		closed, err := CloseEvent(ctx, a.Runs, in.WorkflowID, run)
		if err != nil {
			return nil, runsError("reading how run "+run+" of "+in.WorkflowID+" ended", err)
		}
		info := closed.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetApplicationFailureInfo()
		var made connectors.InvoiceResult
		if info.GetType() == ErrTypeWriteBackFailed && len(info.GetDetails().GetPayloads()) > 0 &&
			converter.GetDefaultDataConverter().FromPayloads(info.GetDetails(), &made) == nil && made.InvoiceID != "" {
			return &InvoicedRun{RunID: run, InvoiceID: made.InvoiceID, Number: made.Number}, nil
		}
	}
	if unread {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the run list cannot match %s exactly (it holds a %s): dealsync read the newest %d runs that failed writing their invoice back of the workflow ids starting %q (other deals' too), found none of this deal's that made its invoice, and reads no further",
				in.WorkflowID, runs.special(), listed, runs.prefix()),
			ErrTypeRunsUnreadable, nil)
	}
	return nil, nil
}

// previousLoss is PreviousRun without Invoiced.
func (a *Activities) previousLoss(ctx context.Context, in PreviousRunInput) (PreviousRun, error) {
	runs := RunsOfID(in.WorkflowID)
	var token []byte
	listed := 0 // runs listed, of any ID
	for range maxPreviousPages {
		resp, err := a.Runs.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         runs.Query + ` AND ExecutionStatus = "Failed" AND SyncStatus = "skipped"`,
			PageSize:      runs.pageSize(),
			NextPageToken: token,
		})
		if err != nil {
			return PreviousRun{}, runsError("listing the earlier runs of "+in.WorkflowID, err)
		}
		listed += len(resp.GetExecutions())
		execs := slices.DeleteFunc(slices.Clone(resp.GetExecutions()), func(ex *workflowpb.WorkflowExecutionInfo) bool {
			return !runs.Matches(ex) || ex.GetExecution().GetRunId() == in.RunID
		})
		// The run list gives the newest closed first, across pages; each
		// page is sorted again all the same (a page of a store that
		// orders otherwise is read newest first; the pages are not).
		slices.SortStableFunc(execs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
			return b.GetCloseTime().AsTime().Compare(a.GetCloseTime().AsTime())
		})
		for _, ex := range execs {
			out, ok, err := a.ended(ctx, in, ex.GetExecution().GetRunId())
			if err != nil {
				return PreviousRun{}, runsError("reading how run "+ex.GetExecution().GetRunId()+" of "+in.WorkflowID+" ended", err)
			}
			// A run that failed otherwise while skipped (a RecordDealLoss run
			// whose read of the runs before it failed, before it recorded its
			// loss all the same) hides no older loss: look on.
			if ok && out.ErrorType == ErrTypeDealNotWon {
				return out, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return PreviousRun{}, nil
		}
	}
	// More skipped runs that failed otherwise than a deal can plausibly
	// have: say so rather than answer "none", which would read a late
	// won event as a new win.
	if runs.Prefixed() {
		// Mostly other deals' runs, their losses among them, which are
		// not to be deleted: the bound is met by deals whose IDs start
		// alike, not by this deal's own runs.
		return PreviousRun{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the run list cannot match %s exactly (it holds a %s), so dealsync lists the skipped runs that failed of every workflow id starting %q: the newest %d of them (other deals' too) include none of this deal's that ended %s, and dealsync reads no further for the loss that would tell an old win from a new one; "+
				"this deal's runs fail so while that many such runs of ids starting alike are kept (the namespace's retention): if the deal is won, look for its invoice in the ERP and invoice it by hand",
				in.WorkflowID, runs.special(), runs.prefix(), listed, ErrTypeDealNotWon),
			ErrTypeRunsUnreadable, nil)
	}
	return PreviousRun{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("the newest %d skipped runs of %s that failed include none that ended %s, and dealsync reads no further for the loss that would tell an old win from a new one; delete the skipped runs of this workflow id that failed with another type (keep those that ended %[3]s: they record the deal's losses), then re-run it", maxPreviousPages*previousPageSize, in.WorkflowID, ErrTypeDealNotWon),
		ErrTypeRunsUnreadable, nil)
}

// previousPageSize and maxPreviousPages bound PreviousRun's reading of the
// run list: 20 runs a page, at most 500 runs.
const (
	previousPageSize = 20
	maxPreviousPages = 25
	// prefixedPageSize is the page size when the filter lists other
	// IDs' runs too (RunsOf.Prefixed): at most 2,500 runs.
	prefixedPageSize = 100
)

// EndedRun reads how run of workflowID ended, as PreviousRun reads the
// runs it lists (signal: the signal that delivers the deal's later
// events); ok is false when Temporal no longer has its history.
func EndedRun(ctx context.Context, runs RunReader, workflowID, run, signal string) (_ PreviousRun, ok bool, _ error) {
	return (&Activities{Runs: runs}).ended(ctx, PreviousRunInput{WorkflowID: workflowID, Signal: signal}, run)
}

// CloseEvent reads the close event of run of workflowID: nil (and no
// error) when Temporal no longer has the run.
func CloseEvent(ctx context.Context, runs RunReader, workflowID, run string) (*historypb.HistoryEvent, error) {
	events, err := (&Activities{Runs: runs}).history(ctx, workflowID, run, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	return events[len(events)-1], nil
}

// ended reads how run ended; ok is false when its history is gone.
func (a *Activities) ended(ctx context.Context, in PreviousRunInput, run string) (PreviousRun, bool, error) {
	closed, err := CloseEvent(ctx, a.Runs, in.WorkflowID, run)
	if err != nil || closed == nil {
		return PreviousRun{}, false, err
	}
	out := PreviousRun{RunID: run}
	info := closed.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetApplicationFailureInfo()
	out.ErrorType = info.GetType()
	if details := info.GetDetails(); len(details.GetPayloads()) > 0 {
		var d NotWonDetails
		if converter.GetDefaultDataConverter().FromPayloads(details, &d) == nil && (len(d.EventIDs) > 0 || !d.LatestAt.IsZero()) {
			out.NotWon = &d
			return out, true, nil
		}
	}
	if out.ErrorType != ErrTypeDealNotWon {
		return out, true, nil
	}
	// Ended before DealNotWon failures carried their events: the run's
	// start and its signals say which it saw.
	all, err := a.history(ctx, in.WorkflowID, run, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if err != nil || len(all) == 0 {
		return PreviousRun{}, false, err
	}
	out.NotWon = seenEvents(all, in.Signal)
	return out, true, nil
}

// history reads a run's events; none (and no error) when Temporal no
// longer has the run.
func (a *Activities) history(ctx context.Context, workflowID, run string, filter enumspb.HistoryEventFilterType) ([]*historypb.HistoryEvent, error) {
	var out []*historypb.HistoryEvent
	it := a.Runs.GetWorkflowHistory(ctx, workflowID, run, false, filter)
	for it.HasNext() {
		ev, err := it.Next()
		var missing *serviceerror.NotFound
		if errors.As(err, &missing) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// seenEvent is the part of a model.DealEvent that seenEvents reads.
type seenEvent struct {
	EventID    string    `json:"event_id"`
	OccurredAt time.Time `json:"occurred_at"`
	Deal       struct {
		Stage string `json:"stage"`
	} `json:"deal"`
}

// seenEvents are the deal events a run received: its start's and those
// of its signals named signal. A payload that does not decode (another
// codec) is passed over: what does decode still counts.
func seenEvents(history []*historypb.HistoryEvent, signal string) *NotWonDetails {
	d := &NotWonDetails{}
	var latest seenEvent
	add := func(ev seenEvent) {
		if ev.EventID != "" && !slices.Contains(d.EventIDs, ev.EventID) {
			d.EventIDs = append(d.EventIDs, ev.EventID)
		}
		if !ev.OccurredAt.Before(latest.OccurredAt) {
			latest = ev
		}
	}
	dc := converter.GetDefaultDataConverter()
	for _, h := range history {
		if st := h.GetWorkflowExecutionStartedEventAttributes(); st != nil {
			var input struct {
				Event seenEvent `json:"event"`
			}
			if p := st.GetInput().GetPayloads(); len(p) > 0 && dc.FromPayload(p[0], &input) == nil {
				add(input.Event)
			}
		}
		if sg := h.GetWorkflowExecutionSignaledEventAttributes(); sg != nil && sg.GetSignalName() == signal {
			var ev seenEvent
			if dc.FromPayloads(sg.GetInput(), &ev) == nil {
				add(ev)
			}
		}
	}
	d.LatestAt, d.Stage = latest.OccurredAt, latest.Deal.Stage
	return d
}

// runsError classifies a failed read of the deal's runs.
func runsError(what string, err error) error {
	var denied *serviceerror.PermissionDenied
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &denied) || errors.As(err, &invalid) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), ErrTypeRunsUnreadable, err)
	}
	return temporal.NewApplicationError(what+": "+err.Error(), ErrTypeTemporalUnavailable, err)
}

// QueryString is a string literal of Temporal's list filter. With every
// backslash doubled and the double quote escaped, no escape sequence of the
// filter's parser (\0, \n, \t, … among them) can appear, so the string
// reaches it as it is; Go's %q would write \x01 or \u00a0, which the
// parser reads as other characters.
func QueryString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// RunsOf is a run-list filter for the runs of one workflow ID.
//
// Temporal's SQL run list (SQLite, PostgreSQL) writes a filter's string
// into its SQL with a backslash before each `"` and `\`, which those
// databases keep as written: `WorkflowId = "a\"b"` matches no run whose
// ID holds a `"` or a `\`, however it is written. For such an ID
// (a generic source's deal id `D"1`) the filter lists the runs whose
// IDs start with its part before the first of those characters, and
// Matches drops the runs of other IDs.
type RunsOf struct {
	// Query is the filter, `WorkflowId = …` or `WorkflowId STARTS_WITH …`.
	Query string
	id    string
}

// RunsOfID is RunsOf for workflow ID id.
func RunsOfID(id string) RunsOf {
	if i := strings.IndexAny(id, `"\`); i >= 0 {
		return RunsOf{Query: "WorkflowId STARTS_WITH " + QueryString(id[:i]), id: id}
	}
	return RunsOf{Query: "WorkflowId = " + QueryString(id), id: id}
}

// Prefixed says whether the filter lists runs of other IDs too (the ID
// holds a `"` or a `\`): a reader then reads more pages for the same
// runs, and its bounds count more.
func (f RunsOf) Prefixed() bool { return strings.HasPrefix(f.Query, "WorkflowId STARTS_WITH") }

// pageSize is the page size of a reader of the ID's runs: larger where
// the filter lists other IDs' runs too, for the same bound of pages.
func (f RunsOf) pageSize() int32 {
	if f.Prefixed() {
		return prefixedPageSize
	}
	return previousPageSize
}

// prefix is the part of the ID a prefixed filter lists by.
func (f RunsOf) prefix() string { return f.id[:strings.IndexAny(f.id, `"\`)] }

// special names the first character of the ID the run list cannot match.
func (f RunsOf) special() string {
	if f.id[len(f.prefix())] == '"' {
		return "double quote"
	}
	return "backslash"
}

// Matches says whether a listed run is a run of the ID.
func (f RunsOf) Matches(ex *workflowpb.WorkflowExecutionInfo) bool {
	return ex.GetExecution().GetWorkflowId() == f.id
}
