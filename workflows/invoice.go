// Package workflows holds dealsync's Temporal workflows: deterministic
// orchestration only, no I/O. Every call to the outside world is an activity
// of package activities. A change must keep the histories of earlier runs
// in testdata/histories replaying (workflow.GetVersion where it changes the
// steps): runs in flight during an upgrade are replayed by the new code.
package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// InvoiceDealName is the registered name of InvoiceDeal.
const InvoiceDealName = "InvoiceDeal"

// WorkflowID is the deterministic ID of the run that invoices a deal: one
// per connection and deal, so duplicate deliveries meet the same run.
func WorkflowID(connection, dealID string) string {
	return "invoice/" + connection + "/" + idPart(dealID)
}

// idPart is an id as a workflow ID carries it. The SDK sends a workflow
// ID in a gRPC header, which takes printable ASCII only: an id with any
// other byte (a deal "Zoë-2" of a generic source, a tab) could never
// start a run, and failed its whole delivery. Such an id has each of
// those bytes, and each %, written %XX (Zo%C3%AB-2); an id of printable
// ASCII is kept as it is, as before. (A CRM id written exactly as the
// escaped form of another one would meet its run: not a real CRM's ids.)
func idPart(id string) string {
	plain := true
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			plain = false
			break
		}
	}
	if plain {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DealWorkflowID is the ID of the run that invoices a deal of one CRM
// account (HubSpot portal, Salesforce org, Pipedrive company). A
// connection can serve several accounts, and deal ids are only unique
// within an account (Pipedrive numbers deals per company), so the account
// is part of the ID; events without an account keep WorkflowID.
func DealWorkflowID(connection, account, dealID string) string {
	if account == "" {
		return WorkflowID(connection, dealID)
	}
	return "invoice/" + connection + "/" + idPart(account) + "/" + idPart(dealID)
}

// WriteBackWorkflowID is the ID of the run that only writes back the
// invoice of a deal's run that completed without a write-back (its
// connection had none when it started: `runs retry --writeback
// --completed`): "writeback/" where the deal's ID has "invoice/". Its own
// ID, so that the deal's completed run goes on keeping every later run of
// the deal from invoicing it again, whatever becomes of the write-back;
// and one ID per deal, so that the write-back is made once (a completed
// one refuses the next start; a failed one may be started again).
func WriteBackWorkflowID(connection, account, dealID string) string {
	return writeBackPrefix + strings.TrimPrefix(DealWorkflowID(connection, account, dealID), invoicePrefix)
}

// IsWriteBackWorkflowID says whether id is a WriteBackWorkflowID.
func IsWriteBackWorkflowID(id string) bool { return strings.HasPrefix(id, writeBackPrefix) }

const (
	invoicePrefix   = "invoice/"
	writeBackPrefix = "writeback/"
)

// RetryPolicy is the retry policy of the ERP steps, fixed at start so the
// run behaves the same whatever the workers' config says later.
type RetryPolicy struct {
	InitialInterval    time.Duration `json:"initial_interval"`
	BackoffCoefficient float64       `json:"backoff_coefficient"`
	MaximumInterval    time.Duration `json:"maximum_interval"`
	MaximumAttempts    int32         `json:"maximum_attempts"`
}

// DealEventSignal delivers a later event of the same deal to its run.
const DealEventSignal = "deal-event"

// InvoiceDealInput starts an InvoiceDeal run.
type InvoiceDealInput struct {
	Connection      string          `json:"connection"`
	Event           model.DealEvent `json:"event"`
	Retry           RetryPolicy     `json:"retry"`
	ActivityTimeout time.Duration   `json:"activity_timeout"`
	// SettleTime: wait this long for more events of the deal before reading
	// it, so the run invoices the deal's final state.
	SettleTime time.Duration `json:"settle_time,omitempty"`
	// Linger: after invoicing, keep listening this long; later changes are
	// recorded (ChangedAfterInvoice) and never invoiced again.
	Linger time.Duration `json:"linger,omitempty"`
	// Fetch: the events are thin; read the deal from the CRM. WonStages then
	// re-checks that the fetched deal is still won.
	Fetch     bool     `json:"fetch,omitempty"`
	WonStages []string `json:"won_stages,omitempty"`
	// WriteBack: record the invoice on the CRM deal, as its own step.
	WriteBack bool `json:"write_back,omitempty"`
	// LocalCalls runs the calls to the ERP and the CRM as local activities
	// (recorded as markers, retried with the same policy, long back-offs as
	// server timers) instead of regular activities.
	LocalCalls bool `json:"local_calls,omitempty"`
	// Mapping and MappingHash are the mapping version the intake wrote into
	// the memo at start.
	Mapping     string `json:"mapping,omitempty"`
	MappingHash string `json:"mapping_hash,omitempty"`
	// MappingSnapshot is that mapping file's content (nil for the built-in
	// mapping): the run maps with it whatever the file says later.
	MappingSnapshot *mapping.Snapshot `json:"mapping_snapshot,omitempty"`
	// ERPTarget is where the connection's ERP calls went for the deal's
	// account when the intake started the run
	// (connections.Connection.TargetIdentityFor): its ERP steps refuse to
	// call another target (activities.ErrTypeTargetMismatch, retried),
	// so that workers whose configs disagree, or a target changed while
	// the run is under way, do not make its customer and invoice in
	// another ERP. Nil in runs started before it was pinned: not checked.
	ERPTarget *connectors.TargetIdentity `json:"erp_target,omitempty"`
	// ChainStart is when the first run of a chain of runs started, when
	// this run continues another (RecordDealLoss won again): the run
	// timeout counts from it.
	ChainStart time.Time `json:"chain_start,omitempty"`
	// Invoiced is set on a re-run of a run whose invoice was created but
	// whose write-back failed (`dealsync runs retry --writeback`), or that
	// completed without one (`--completed`, under WriteBackWorkflowID): the
	// run only writes that invoice back to the CRM deal.
	Invoiced *connectors.InvoiceResult `json:"invoiced,omitempty"`
}

// InvoiceDealResult is the run's result: what the ERP recorded.
type InvoiceDealResult struct {
	CustomerID  string `json:"customer_id,omitempty"`
	InvoiceID   string `json:"invoice_id,omitempty"`
	Number      string `json:"number,omitempty"`
	URL         string `json:"url,omitempty"`
	Mapping     string `json:"mapping,omitempty"`
	MappingHash string `json:"mapping_hash,omitempty"`
	// Skipped says why no invoice was made (the deal is no longer won).
	// Such a run fails DealNotWon with it as its message: Temporal keeps
	// no result of a failed run, so operators read it there.
	Skipped string `json:"skipped,omitempty"`
	// Events are the distinct CRM event ids the run received.
	Events []string `json:"events"`
	// ChangedAfterInvoice lists events that arrived after the deal's state
	// for the invoice was taken (after the settle time): they are recorded,
	// never invoiced.
	ChangedAfterInvoice []string `json:"changed_after_invoice,omitempty"`
	// Warning is what the ERP target noticed about the invoice it made
	// (NetSuite's total differs from the invoice's), for someone to look
	// at; the run still completes, the invoice being made.
	Warning string `json:"warning,omitempty"`
}

// Memo keys recorded on every run.
const (
	MemoMapping     = "mapping"
	MemoMappingHash = "mapping_hash"
	// MemoListens: whether the run takes later events of its deal (its
	// connection had a settle_time or linger when it started).
	MemoListens = "listens"
	// MemoWarning: what the ERP target noticed about the invoice the run
	// made (InvoiceDealResult.Warning), recorded only when it noticed
	// something, so that `runs list` shows it without reading the run's
	// result. Runs invoiced before warningMemoChange lack it.
	MemoWarning = "warning"
)

// ErrTypeDealNotWon ends a run whose deal is no longer won (fetched, or
// moved by a later event), or whose won event is older than the events
// that ended the deal's last run so; its details are
// activities.NotWonDetails.
const ErrTypeDealNotWon = activities.ErrTypeDealNotWon

// ErrTypeWriteBackFailed ends a run whose invoice was created but could not
// be written back to the CRM; the failure's details are the invoice
// (connectors.InvoiceResult), which a re-run writes back.
const ErrTypeWriteBackFailed = activities.ErrTypeWriteBackFailed

// Status values of SyncStatus beyond pending/invoiced/failed.
const (
	StatusSkipped         = "skipped"
	StatusWriteBackFailed = "writeback_failed"
)

// dealEvents keeps the distinct events a run has seen, deduplicated by the
// CRM's event id, and the newest of them by occurrence time (deliveries
// can arrive out of order). An event id seen before that comes again with
// a newer time is a new event, as staleWin takes it (a sender that
// numbers its events per transition: "42-won", "42-lost", "42-won").
type dealEvents struct {
	seen    map[string]time.Time
	ids     []string
	latest  model.DealEvent
	settled bool // the deal's state for the invoice has been taken
	// stateAt is when the deal was as the invoice bills it: the latest
	// whole-deal event's time, or a fetch's less staleAllowance (zero when
	// not known). An event from before it was already in that state.
	stateAt time.Time
	changed []string
	// newerReuse says whether a run takes a seen id with a newer time as
	// a new event; asked only when one arrives (runs that met one before
	// this rule replay without it).
	newerReuse func() bool
}

func (d *dealEvents) add(ev model.DealEvent) (fresh bool) {
	if at, ok := d.seen[ev.EventID]; ok {
		if at.IsZero() || !ev.OccurredAt.After(at) || d.newerReuse == nil || !d.newerReuse() {
			return false
		}
	} else {
		d.ids = append(d.ids, ev.EventID)
	}
	d.seen[ev.EventID] = ev.OccurredAt
	if !ev.OccurredAt.Before(d.latest.OccurredAt) {
		d.latest = ev
	}
	return true
}

// InvoiceDeal turns one won deal into exactly one ERP invoice:
// [settle] → [fetch the deal] → map → validate (local activities: pure,
// fast, still recorded) → find or create the customer → create the invoice
// → [write back to the CRM] → [linger]. ERP steps are activities with
// durable retries and idempotency keys derived from the workflow ID, so they
// are stable across retries and across a re-run of a failed workflow.
//
// A run whose calls are local activities and whose deal's events come to
// it (it settles, lingers or reads the deal: the intake signals it) ends,
// once it has sent the invoice step and not waited since, with a
// checkpoint: a timer, so that the workflow task that holds the invoice
// step's record ends with that timer rather than with the run's end. A
// local call is recorded only when its workflow task completes, and
// Temporal refuses a task that ends the run while an event (a signal) came
// in meanwhile: the task's records were dropped, and the task run again
// with the event read before the steps, so a loss delivered while the
// invoice was being made ended the run DealNotWon, "nothing was invoiced",
// with the invoice in the ERP. A task that ends with a timer is taken
// whatever came in. An invoiced run's checkpoint is a linger of 1 ms (the
// events that came meanwhile are changes after the invoice); a run that
// fails after sending the step (its write-back refused) waits 1 ms
// before it fails. Runs begun before the change replay without it.
func InvoiceDeal(ctx workflow.Context, in InvoiceDealInput) (InvoiceDealResult, error) {
	var sent bool // the invoice step was sent, and the run has not waited since
	r, err := invoiceDeal(ctx, in, &sent)
	if checkpointDue(ctx, in, sent) {
		_ = workflow.NewTimerWithOptions(ctx, time.Millisecond, workflow.TimerOptions{Summary: checkpointSummary}).Get(ctx, nil)
	}
	// The run's current details said its last step or wait: an ended run
	// says nothing there (its result or failure says how it ended).
	workflow.SetCurrentDetails(ctx, "")
	return r, err
}

// checkpointDue says whether the run ends with a checkpoint (see
// InvoiceDeal): it sent the invoice step as a local call and has not
// waited since, and its deal's events come to it.
func checkpointDue(ctx workflow.Context, in InvoiceDealInput, sent bool) bool {
	return sent && in.LocalCalls && (in.SettleTime > 0 || in.Linger > 0 || in.Fetch) &&
		workflow.GetVersion(ctx, invoiceCheckpointChange, workflow.DefaultVersion, 1) == 1
}

// writeBackFailedEventsChange versions reading, when the write-back
// failed, the events delivered meanwhile as changes after the invoice.
const writeBackFailedEventsChange = "writeback-failed-reads-events"

// invoiceCheckpointChange versions the checkpoint that ends a run which
// sent its invoice step as a local call and may receive events (see
// InvoiceDeal).
const invoiceCheckpointChange = "invoice-checkpoint"

// invoiceDeal is InvoiceDeal but its checkpoint: *sent says whether the
// invoice step was sent and the run has not waited (a timer) since.
func invoiceDeal(ctx workflow.Context, in InvoiceDealInput, sent *bool) (InvoiceDealResult, error) {
	var a *activities.Activities
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	// keyBase makes the ERP steps' idempotency keys: the deal's workflow ID.
	// A run started by hand under another ID (the Web UI's "Start Workflow
	// Like This One" with a random ID) takes its deal's keys all the same,
	// so that its ERP steps meet the deal's invoice, where the ERP keeps
	// the key, instead of making a second one. Runs under their deal's ID
	// (every run dealsync starts) ask nothing; runs under another ID begun
	// before the change keep theirs.
	keyBase := wfID
	if dealWfID := DealWorkflowID(in.Connection, in.Event.Account, in.Event.Deal.ID); dealWfID != wfID &&
		workflow.GetVersion(ctx, dealKeysChange, workflow.DefaultVersion, 1) == 1 {
		keyBase = dealWfID
		if in.Invoiced == nil {
			// (A write-back-only run, under its own ID, makes no ERP step.)
			workflow.GetLogger(ctx).Warn("run started under another workflow ID than its deal's (by hand?): its ERP steps use the deal's idempotency keys",
				"workflow_id", wfID, "deal_workflow_id", dealWfID)
		}
	}
	events := &dealEvents{seen: map[string]time.Time{}, latest: in.Event, newerReuse: func() bool {
		return workflow.GetVersion(ctx, eventIDReuseChange, workflow.DefaultVersion, 1) == 1
	}}
	events.add(in.Event)
	signals := workflow.GetSignalChannel(ctx, DealEventSignal)
	// invoiced says the deal's invoice exists (made by this run, or by the
	// run whose write-back this one makes again).
	invoiced := false
	// changedAfter records an event that came after the deal's state was
	// taken as a change the operator should look at, never as a reason to
	// invoice again. The run is marked ChangedAfterInvoice once its invoice
	// exists: a change before an invoice that is then never made is no
	// change after an invoice (runs that marked it at once replay so).
	changedAfter := func(id string) {
		if slices.Contains(events.changed, id) {
			return // an id sent again later: one change of that id is enough
		}
		// A late delivery of an event from before the state the invoice
		// bills (a CRM's retry, a burst delivered out of order) is in
		// that state already: no change to look at. Asked only when such
		// an event comes (runs that marked one replay so).
		if at := events.seen[id]; !at.IsZero() && at.Before(events.stateAt) &&
			workflow.GetVersion(ctx, staleEventNoChangeChange, workflow.DefaultVersion, 1) == 1 {
			return
		}
		events.changed = append(events.changed, id)
		if len(events.changed) == 1 && (invoiced ||
			workflow.GetVersion(ctx, changedOnceInvoicedChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion) {
			_ = workflow.UpsertTypedSearchAttributes(ctx, ChangedAfterInvoiceKey.ValueSet(true))
		}
	}
	receive := func(ev model.DealEvent) {
		// After the deal was read (or mapped), a new event can no longer
		// change this run's invoice.
		if !events.add(ev) || !events.settled {
			return
		}
		changedAfter(ev.EventID)
	}
	// sum makes the summaries of the run's steps and waits (the Web UI's
	// rows); doing sets one as the run's current details as the step
	// starts, and returns it.
	sum := newStepSummaries(in)
	doing := func(summary string) string {
		workflow.SetCurrentDetails(ctx, summary)
		return summary
	}
	listen := func(d time.Duration, summary func(now, until time.Time) string) {
		listenFor(ctx, signals, d, summary, receive)
	}
	// takeWaiting takes in the events waiting, without counting them as
	// changes after the invoice, and returns the ids of those that were new.
	takeWaiting := func() (fresh []string) {
		var ev model.DealEvent
		for signals.ReceiveAsync(&ev) {
			if events.add(ev) {
				fresh = append(fresh, ev.EventID)
			}
			ev = model.DealEvent{}
		}
		return fresh
	}
	drainFresh := func() bool { return len(takeWaiting()) > 0 }
	result := func() InvoiceDealResult {
		return InvoiceDealResult{Events: events.ids, ChangedAfterInvoice: events.changed}
	}

	call := externalCalls(ctx, in)
	callOnce := externalCallOnce(ctx, in)

	// writeBack records the invoice on the CRM deal, as its own step: a
	// failing write-back is retried on its own and never re-creates the
	// invoice.
	// Its long back-offs are timers that say so, as the customer step's.
	writeBack := func(r InvoiceDealResult, account, dealID string, created connectors.InvoiceResult) (InvoiceDealResult, error) {
		writeBackInput := activities.WriteBackInput{
			Connection: in.Connection, Account: account, DealID: dealID, Result: created,
			// A write-back-only run exists for the write-back: a worker
			// whose config lacks it must not take it as done.
			Required: in.Invoiced != nil,
		}
		if before, err := (stepRetries{ctx: ctx, in: in, change: writeBackBackOffChange,
			call: func(retry *temporal.RetryPolicy, budget, waitsOver time.Duration, before int32) workflow.Future {
				once := writeBackInput
				once.ReturnWaitsOver, once.AttemptsBefore = waitsOver, before
				return externalCallsWith(ctx, in, retry, budget)(a.WriteBack, once, doing(sum.writeBack(created)))
			},
			backOff: func(n int, wait time.Duration, err error) (summary, details string) {
				now := workflow.Now(ctx)
				return sum.writeBackBackOff(created, n, now, now.Add(wait)),
					sum.writeBackRetrying(created, n, now, now.Add(wait), firstLine(rootMessage("WriteBack", err)))
			}}).run(nil); err != nil {
			if canceledInStep(ctx, err) {
				// The invoice exists, its write-back was not made: the run
				// stays "invoiced", as one that timed out then does (it
				// was marked writeback_failed).
				return r, temporal.NewCanceledError("canceled while writing invoice " + created.InvoiceID +
					" back to the CRM deal: `dealsync runs retry --writeback --canceled` writes it back, creating no second invoice")
			}
			_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusWriteBackFailed))
			return r, temporal.NewNonRetryableApplicationError(
				"invoice "+created.InvoiceID+" was created, but writing it back to the CRM failed: "+rootMessage("WriteBack", err)+writeBackSpent(in, err, before)+
					" (once the cause is fixed, write the invoice back with `dealsync runs retry --writeback`, which creates no second invoice; "+
					"for HubSpot, Pipedrive and Salesforce, `dealsync config check --crm` names a write-back field the CRM refuses)",
				ErrTypeWriteBackFailed, nil, created) // no cause: its message says the step's (fail)
		}
		return r, nil
	}
	if in.Invoiced != nil {
		// A re-run after a failed write-back: the invoice exists.
		events.settled, invoiced = true, true
		created := *in.Invoiced
		r := result()
		r.InvoiceID, r.Number, r.URL = created.InvoiceID, created.Number, created.URL
		if r, err := writeBack(r, in.Event.Account, in.Event.Deal.ID, created); err != nil {
			return r, err
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx,
			ErpInvoiceIDKey.ValueSet(created.InvoiceID),
			SyncStatusKey.ValueSet(StatusInvoiced),
		)
		return r, nil
	}

	// erpTimedOut is err, the failure of an ERP step (FindOrCreateCustomer,
	// CreateInvoice) for a CRM account, where its last attempt timed out
	// (the SDK's bare TimeoutError, naming no step), as the step's own
	// failure (stepTimedOut) naming the connection and the target, as its
	// other failures do: the target's name, which only the worker's
	// config holds, is read by a local activity (TargetName), only then;
	// a run started for a target (in.ERPTarget) names that one instead.
	// Runs whose step timed out before the change replay without it.
	// made, the invoice step's note (timedOutMayHaveMade), says that the
	// timed-out attempt may have sent its request and made the invoice
	// (its answer lost), as the step's own failures say: in runs before
	// the change too (only the message of the run's failure changes).
	erpTimedOut := func(step, account, made string, err error) error {
		var te *temporal.TimeoutError
		if !errors.As(err, &te) {
			return err
		}
		msg, typ, _ := stepTimedOut(step, err)
		if made != "" && pinnedTarget(in).InvoiceRetry != connectors.InvoiceRetryFinds {
			// made says to look in the ERP before retrying: the step's
			// own "retry the run" goes (only the message changes).
			if i := strings.LastIndex(msg, "; retry the run once "); i >= 0 {
				msg = msg[:i]
			}
		}
		msg += made
		if workflow.GetVersion(ctx, timeoutNamesTargetChange, workflow.DefaultVersion, 1) != 1 {
			if made == "" {
				return err
			}
			return temporal.NewNonRetryableApplicationError(msg, typ, err)
		}
		var target string
		lookup := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
			Summary: doing(targetNameSummary),
		})
		if workflow.ExecuteLocalActivity(lookup, a.TargetName, activities.TargetInput{Connection: in.Connection, Account: account}).Get(ctx, &target) != nil {
			target = "" // the connection alone, rather than no failure
		}
		where := fmt.Sprintf("connection %q: ", in.Connection)
		if in.ERPTarget != nil && in.ERPTarget.Description != "" {
			// The target the run was started for, which its steps
			// called (checkTarget), not the one the worker's config
			// names now (changed since): TargetName's answer is left
			// unused, its call kept, so that the commands stay those
			// of runs started before targets were pinned.
			where += in.ERPTarget.Description + ": "
		} else if target != "" {
			where += fmt.Sprintf("target %q: ", target)
		}
		// Not retryable: its message says what to do (retriesSpent, which
		// could not count the attempts, adds nothing).
		return temporal.NewNonRetryableApplicationError(where+msg, typ, err)
	}

	// notWon ends a run whose deal left the won stages before it was
	// invoiced, as a failure, not a completion: the reuse policy lets only
	// a failed run be started again, so when the deal is won again later,
	// its webhook starts a new run instead of meeting this one.
	notWon := func(stage string, notes ...string) (InvoiceDealResult, error) {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusSkipped))
		r := result()
		r.Skipped = "the deal's stage is now " + stage + strings.Join(notes, "") + ", not a won stage; nothing was invoiced"
		return r, temporal.NewNonRetryableApplicationError(r.Skipped, ErrTypeDealNotWon, nil,
			activities.NotWonDetails{EventIDs: events.ids, LatestAt: events.latest.OccurredAt, Stage: stage})
	}

	// failed ends the run on the error of a step before the invoice. A
	// whole-deal event delivered during that step which says the deal left
	// the won stages ends it DealNotWon instead, as one delivered while it
	// settles does: the loss is recorded where a later delivery of an
	// older win reads it (a failed run would let that win be invoiced).
	// A failed invoice step stays failed: its invoice may exist.
	failed := func(step string, err error) (InvoiceDealResult, error) {
		if !in.Fetch && signals.Len() > 0 && workflow.GetVersion(ctx, lossDuringFailedStepChange, workflow.DefaultVersion, 1) == 1 {
			takeWaiting()
			if LeftWonStage(in, events.latest) {
				return notWon(events.latest.Deal.Stage)
			}
		}
		return fail(ctx, result(), step, err)
	}

	// A connection whose runs listen to the deal's whole-deal events can
	// end a run as DealNotWon (a "lost" event while it settles). The CRM
	// may then deliver the won event that started it again, or late; the
	// reuse policy lets it start a new run, which must not invoice a lost
	// deal: it reads how the deal's last DealNotWon run ended, takes in the
	// events delivered meanwhile, and goes on only when the newest of them
	// is newer than that run's.
	if !in.Fetch && (in.SettleTime > 0 || in.Linger > 0) && in.Invoiced == nil &&
		workflow.GetVersion(ctx, staleWinChange, workflow.DefaultVersion, 1) == 1 {
		var prev activities.PreviousRun
		if err := call(a.PreviousRun, activities.PreviousRunInput{
			Connection: in.Connection, WorkflowID: keyBase, RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Signal: DealEventSignal,
			DealID: in.Event.Deal.ID, // for its log lines: the input only, no command changes
		}, doing(previousRunSummary)).Get(ctx, &prev); err != nil {
			return failed("PreviousRun", err)
		}
		listen(0, nil)
		if prev.ErrorType == ErrTypeDealNotWon && prev.NotWon != nil && staleWin(events.latest, *prev.NotWon) {
			_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusSkipped))
			r := result()
			r.Skipped = "the newest event of this run (" + events.latest.EventID + ") is not newer than the events that ended run " +
				prev.RunID + " with the deal in stage " + prev.NotWon.Stage + ": a delivery of an old win, not a new one; nothing was invoiced"
			latest := prev.NotWon.LatestAt
			if events.latest.OccurredAt.After(latest) {
				latest = events.latest.OccurredAt
			}
			return r, temporal.NewNonRetryableApplicationError(r.Skipped, ErrTypeDealNotWon, nil, activities.NotWonDetails{
				EventIDs: unionIDs(prev.NotWon.EventIDs, events.ids), LatestAt: latest, Stage: prev.NotWon.Stage})
		}
	}

	// A run that continues a chain (a RecordDealLoss run won again) settles
	// within the chain's execution timeout, as it lingers: the loss's run
	// has spent some of it.
	settle := in.SettleTime
	if !in.ChainStart.IsZero() {
		settle = lingerWithin(ctx, settle, in.ChainStart)
	}
	listen(settle, sum.settle)
	if ctx.Err() != nil && workflow.GetVersion(ctx, canceledWhileSettlingChange, workflow.DefaultVersion, 1) == 1 {
		// Canceled while it settled (an operator's cancel): nothing was
		// mapped or sent, so the run ends canceled as it stands
		// (SyncStatus pending). It went on to map with the canceled
		// context, recorded a failed map step and marked itself failed,
		// among the runs that need someone.
		return result(), ctx.Err()
	}
	ev := events.latest
	events.settled = true
	if !in.Fetch {
		events.stateAt = ev.OccurredAt
	}
	if !in.Fetch && LeftWonStage(in, ev) {
		// A later whole-deal event, delivered while the run settled, moved
		// the deal out of the stage that started the run.
		return notWon(ev.Deal.Stage)
	}
	// fetch reads the deal from the CRM into out (again: not the run's
	// first read). Its long back-offs are timers that say so, as the
	// customer step's.
	fetch := func(again bool, out *model.Deal) error {
		_, err := stepRetries{ctx: ctx, in: in, change: fetchBackOffChange,
			call: func(retry *temporal.RetryPolicy, budget, waitsOver time.Duration, before int32) workflow.Future {
				return externalCallsWith(ctx, in, retry, budget)(a.FetchDeal, activities.FetchInput{
					Connection: in.Connection, Account: ev.Account, DealID: ev.Deal.ID, ReturnWaitsOver: waitsOver, AttemptsBefore: before,
				}, doing(sum.fetch(again)))
			},
			backOff: func(n int, wait time.Duration, err error) (summary, details string) {
				now := workflow.Now(ctx)
				return sum.fetchBackOff(n, now, now.Add(wait)),
					sum.fetchRetrying(n, now, now.Add(wait), firstLine(rootMessage("FetchDeal", err)))
			}}.run(out)
		return err
	}
	if in.Fetch {
		var deal model.Deal
		for fetches := 1; ; fetches++ {
			deal = model.Deal{} // decoded afresh: nothing of an earlier fetch stays
			events.stateAt = workflow.Now(ctx).Add(-staleAllowance)
			if err := fetch(fetches > 1, &deal); err != nil {
				return fail(ctx, result(), "FetchDeal", err)
			}
			if len(in.WonStages) == 0 || containsFold(in.WonStages, deal.Stage) {
				break
			}
			// An event delivered during the fetch (its webhook was
			// acknowledged) may say the deal was won again: read the deal
			// again rather than end with the event unread, which would
			// leave a won deal never invoiced. Bounded, in case a CRM
			// keeps sending.
			if fetches > maxRefetches || workflow.GetVersion(ctx, refetchChange, workflow.DefaultVersion, 1) != 1 || !drainFresh() {
				return notWon(deal.Stage, mergedInto(deal))
			}
		}
		if deal.PreviousStage == "" {
			deal.PreviousStage = ev.Deal.PreviousStage
		}
		ev.Deal = deal
		ev.Thin = false
	}

	pure := func(summary string) workflow.Context {
		return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
			Summary:             doing(summary),
		})
	}
	var mapped activities.MapResult
	if err := workflow.ExecuteLocalActivity(pure(sum.mapDeal(in.Mapping)), a.MapDeal, activities.MapInput{Connection: in.Connection, Event: ev, Snapshot: in.MappingSnapshot, Mapping: in.Mapping}).Get(ctx, &mapped); err != nil {
		return failed("MapDeal", err)
	}
	// The intake records the mapping version it expects in the memo at
	// start; upsert only when the run used another one (a reload in
	// between), which saves a visibility write per run.
	if mapped.Mapping != in.Mapping || mapped.MappingHash != in.MappingHash {
		_ = workflow.UpsertMemo(ctx, map[string]any{MemoMapping: mapped.Mapping, MemoMappingHash: mapped.MappingHash})
	}

	var invoice model.Invoice
	if err := workflow.ExecuteLocalActivity(pure(sum.validate(mapped.Invoice.Reference)), a.ValidateInvoice, activities.ValidateInput{
		Connection: in.Connection, Invoice: mapped.Invoice, DealAmount: ev.Deal.Amount, Tolerance: mapped.Tolerance,
	}).Get(ctx, &invoice); err != nil {
		return failed("ValidateInvoice", err)
	}

	var customer connectors.CustomerRef
	billed := invoice.Customer
	billed.Currency = invoice.Currency
	customerInput := activities.CustomerInput{
		Connection: in.Connection, Account: ev.Account, Customer: billed, IdempotencyKey: keyBase + "/customer",
		DealID: invoice.SourceDealID, Target: in.ERPTarget, // inputs only: no command changes
		// The grace of a refusal for another target counts from here
		// (activities.Activities.TargetMismatchGrace): the workflow's
		// time, the same in every call of the step and on replay.
		StepStart: workflow.Now(ctx),
	}
	customerBefore, err := stepRetries{ctx: ctx, in: in, change: customerBackOffChange,
		call: func(retry *temporal.RetryPolicy, budget, waitsOver time.Duration, before int32) workflow.Future {
			once := customerInput
			once.ReturnWaitsOver, once.AttemptsBefore = waitsOver, before
			return externalCallsWith(ctx, in, retry, budget)(a.FindOrCreateCustomer, once, doing(sum.customer(billed.Name)))
		},
		backOff: func(n int, wait time.Duration, err error) (summary, details string) {
			now := workflow.Now(ctx)
			return sum.customerBackOff(billed.Name, n, now, now.Add(wait)),
				sum.customerRetrying(billed.Name, n, now, now.Add(wait), firstLine(rootMessage("FindOrCreateCustomer", err)))
		}}.run(&customer)
	if err != nil {
		return failed("FindOrCreateCustomer", retriesSpent(in, erpTimedOut("FindOrCreateCustomer", ev.Account, "", err), customerBefore, false))
	}
	// A whole-deal event delivered since the deal was mapped (the customer
	// step can take hours when the ERP is down) may say the deal left the
	// won stages: then nothing is invoiced. Other events are changes after
	// the state the invoice bills, as those of the linger are.
	if !in.Fetch && signals.Len() > 0 && workflow.GetVersion(ctx, recheckChange, workflow.DefaultVersion, 1) == 1 {
		fresh := takeWaiting()
		if LeftWonStage(in, events.latest) {
			return notWon(events.latest.Deal.Stage)
		}
		for _, id := range fresh {
			changedAfter(id)
		}
	}
	// The same for a thin CRM event: it may say the deal was lost
	// (HubSpot's stage change) or only that something changed, so the deal
	// is read again, and one no longer won is not invoiced. Asked only
	// when an event came during the customer step: no read otherwise.
	if in.Fetch && len(in.WonStages) > 0 && signals.Len() > 0 && workflow.GetVersion(ctx, refetchBeforeInvoiceChange, workflow.DefaultVersion, 1) == 1 {
		// As the first fetch: a deal read not won while another event came
		// (won again, say) is read again, a bounded number of times,
		// rather than end with that event unread.
		if fresh := takeWaiting(); len(fresh) > 0 {
			for fetches := 1; ; fetches++ {
				var now model.Deal
				if err := fetch(true, &now); err != nil {
					return fail(ctx, result(), "FetchDeal", err)
				}
				if containsFold(in.WonStages, now.Stage) {
					break
				}
				var more []string
				if fetches <= maxRefetches {
					more = takeWaiting()
				}
				if len(more) == 0 {
					return notWon(now.Stage)
				}
				fresh = append(fresh, more...)
			}
			for _, id := range fresh {
				changedAfter(id)
			}
		}
	}
	// A run that listens (its deal's events come to it) makes the invoice
	// step one attempt at a time, with the run's retry policy between
	// attempts, so that the events delivered while the ERP is down or
	// limits the rate are read as they come: a deal that left the won
	// stages meanwhile is not invoiced, as long as no attempt may have
	// made the invoice (stillWon). Once one may have, or the run's history
	// grows long, the rest of the retries are one call, as in a run that
	// does not listen. Runs whose first attempt failed before this rule
	// replay as they ran: that attempt was all of their retries.
	var created connectors.InvoiceResult
	invoiceInput := activities.CreateInvoiceInput{
		Connection: in.Connection, Account: ev.Account, Invoice: invoice, Customer: customer, IdempotencyKey: keyBase + "/invoice",
		Target: in.ERPTarget, StepStart: workflow.Now(ctx), // inputs only: no command changes
	}
	if ctx.Err() != nil && workflow.GetVersion(ctx, canceledDuringStepChange, workflow.DefaultVersion, 1) == 1 {
		// Canceled as the customer step ended: nothing of the invoice
		// was sent (a step started now would fail at once, canceled).
		return result(), ctx.Err()
	}
	// mayExist: an attempt of the step before the one that failed last
	// may have made the invoice (its answer lost): the run's failure says
	// so (mayHaveMade), as the last attempt's own error cannot.
	mayExist := false
	// attemptsNotSent, when the step's attempts were made one at a time,
	// says that none of them may have made the invoice.
	var attemptsNotSent *bool
	// attemptsBefore is the number of attempts made before the call whose
	// failure is the step's.
	var attemptsBefore int32
	if in.SettleTime > 0 || in.Linger > 0 || in.Fetch {
		// Each call says how many attempts the calls before it made, and
		// the rest's whether one of them may have made the invoice: its
		// attempts' failures say so (only activity inputs change: runs
		// replay alike).
		attempts := invoiceAttempts{ctx: ctx, in: in, start: workflow.Now(ctx),
			attempt: func(before int32) workflow.Future {
				once := invoiceInput
				once.AttemptsBefore = before
				return callOnce(a.CreateInvoice, once, doing(sum.invoice(invoice.Reference, " (attempt "+strconv.Itoa(int(before)+1)+")")))
			},
			rest: func(retry *temporal.RetryPolicy, budget time.Duration, before int32, earlierMay bool) workflow.Future {
				rest := invoiceInput
				rest.AttemptsBefore, rest.EarlierMayHaveMade = before, earlierMay
				attempt := " (attempts " + strconv.Itoa(int(before)+1) + "+)"
				if retry.MaximumAttempts == 1 {
					attempt = " (attempt " + strconv.Itoa(int(before)+1) + ")" // the last one
				}
				return externalCallsWith(ctx, in, retry, budget)(a.CreateInvoice, rest, doing(sum.invoice(invoice.Reference, attempt)))
			},
			backOff: func(n int, wait time.Duration, err error) (summary, details string) {
				now := workflow.Now(ctx)
				return sum.backOff(invoice.Reference, n, now, now.Add(wait)),
					sum.retrying(invoice.Reference, n, now, now.Add(wait), firstLine(rootMessage("CreateInvoice", err)))
			}}
		*sent = true
		attemptsNotSent = &attempts.notSent
		err = attempts.first(&created)
		if err != nil && workflow.GetVersion(ctx, invoiceAttemptsChange, workflow.DefaultVersion, 1) == 1 {
			// stillWon reads the events delivered since the last look: the
			// stage of a deal that left the won stages, "" while it is won.
			// A thin event whose deal could not be read is read again at
			// the next look.
			var unread []string
			stillWon := func() string {
				fresh := append(unread, takeWaiting()...)
				unread = nil
				if len(fresh) == 0 {
					return ""
				}
				stage := ""
				switch {
				case !in.Fetch && LeftWonStage(in, events.latest):
					stage = events.latest.Deal.Stage
				case in.Fetch && len(in.WonStages) > 0 && attempts.notSent:
					// A thin event: the deal is read again (one attempt).
					var now model.Deal
					if callOnce(a.FetchDeal, activities.FetchInput{Connection: in.Connection, Account: ev.Account, DealID: ev.Deal.ID},
						doing(sum.fetch(true))).Get(ctx, &now) != nil {
						unread = fresh
						return ""
					}
					if !containsFold(in.WonStages, now.Stage) {
						// An event delivered during the read (won again?)
						// is read at the next look, as the other reads of
						// a run do, rather than end with it unread.
						if more := takeWaiting(); len(more) > 0 {
							unread = append(fresh, more...)
							return ""
						}
						stage = now.Stage
					}
				}
				if stage == "" || !attempts.notSent {
					// Not a loss, or one that comes too late to stop an
					// invoice that may exist: a change after the invoice.
					for _, id := range fresh {
						changedAfter(id)
					}
				}
				return stage
			}
			var lostStage string
			if lostStage, err = attempts.retry(&created, err, signals, stillWon); lostStage != "" {
				return notWon(lostStage)
			}
			if err != nil && attempts.notSent && workflow.GetVersion(ctx, invoiceLastLookChange, workflow.DefaultVersion, 1) == 1 {
				// The retries are over, none of them sent: a loss delivered
				// during the last attempt is read before the run fails, so
				// that the run ends as not won (a later delivery of the old
				// win then meets it) rather than failed with the loss unread.
				if lostStage = stillWon(); lostStage != "" {
					return notWon(lostStage)
				}
			}
			// Events whose deal could not be read before the invoice step
			// ended: changes after the invoice, for an operator to look at.
			for _, id := range unread {
				changedAfter(id)
			}
			mayExist = attempts.earlierMay
			attemptsBefore = attempts.before
		}
	} else {
		// A run that does not listen makes the invoice step's attempts
		// as the customer step's (stepRetries): its long back-offs are
		// timers that say so. Each call after the first says how many
		// attempts the calls before it made, and whether one of them may
		// have made the invoice (its failure said it may have written),
		// as the rest of a listening run's attempts do; the run's failure
		// says so too (mayExist). Activities, and runs whose step failed
		// before invoice-back-off-timers, make one call, as before.
		// Canceled while it waits on such a timer after attempts that
		// were each refused before the ERP acted (waiting, !earlierMay),
		// it made nothing: pending, as a listening run then.
		*sent = true
		earlierMay, waiting := false, false
		attemptsBefore, err = stepRetries{ctx: ctx, in: in, change: invoiceBackOffChange,
			call: func(retry *temporal.RetryPolicy, budget, waitsOver time.Duration, before int32) workflow.Future {
				once := invoiceInput
				once.ReturnWaitsOver, once.AttemptsBefore, once.EarlierMayHaveMade = waitsOver, before, earlierMay
				mayExist, waiting = earlierMay, false
				attempt := ""
				if before > 0 {
					attempt = " (attempts " + strconv.Itoa(int(before)+1) + "+)"
				}
				return externalCallsWith(ctx, in, retry, budget)(a.CreateInvoice, once, doing(sum.invoice(invoice.Reference, attempt)))
			},
			retried: func(err error) { earlierMay, waiting = earlierMay || !notSent(err), true },
			backOff: func(n int, wait time.Duration, err error) (summary, details string) {
				now := workflow.Now(ctx)
				return sum.backOff(invoice.Reference, n, now, now.Add(wait)),
					sum.retrying(invoice.Reference, n, now, now.Add(wait), firstLine(rootMessage("CreateInvoice", err)))
			}}.run(&created)
		if waiting {
			nothingMade := !earlierMay
			attemptsNotSent = &nothingMade
		}
	}
	if err != nil {
		// What `runs retry` does about an invoice the step may have made,
		// as the run's pinned target says: a run whose pin does not say
		// (started by the release before this one, or before targets were
		// pinned) promises nothing. Only the failure's message depends on
		// it: runs replay alike.
		retry := pinnedTarget(in)
		if canceledInStep(ctx, err) {
			if attemptsNotSent != nil && *attemptsNotSent {
				// Canceled between attempts that were each refused before
				// the ERP acted: nothing was made, the run stays pending.
				return result(), ctx.Err()
			}
			// An attempt may have made the invoice: "failed", as an
			// invoice step that failed so.
			_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusFailed))
			return result(), temporal.NewCanceledError(fmt.Sprintf("canceled during the invoice step, which "+activities.MayHaveMadeInvoice+" (reference %q) in the ERP: "+
				"look for it there before invoicing by hand%s", invoice.Reference, activities.InvoiceRetryAdvice(retry, "dealsync runs retry --canceled")))
		}
		err = retriesSpent(in, erpTimedOut("CreateInvoice", ev.Account, timedOutMayHaveMade(invoice.Reference, mayExist, retry), err), attemptsBefore, mayExist)
		if mayExist {
			err = mayHaveMade(err, invoice.Reference, retry)
		}
		return fail(ctx, result(), "CreateInvoice", err)
	}
	invoiced = true
	r := result()
	r.CustomerID, r.InvoiceID, r.Number, r.URL = customer.ID, created.InvoiceID, created.Number, created.URL
	r.Warning = created.Warning
	r.Mapping, r.MappingHash = mapped.Mapping, mapped.MappingHash
	// Amount and Currency said what the first event said (nothing, for a
	// thin CRM event); an invoiced run says what it billed before tax (the
	// subtotal, checked against the deal's amount; an ERP may compute the
	// tax itself). The changes recorded before the invoice existed mark
	// the run now. The same one upsert: replay matches upserts by their
	// kind, not their values. A subtotal no float holds is left out: it
	// made the SDK refuse the whole upsert, which runs before the change
	// replay as they did.
	attrs := []temporal.SearchAttributeUpdate{
		ErpInvoiceIDKey.ValueSet(created.InvoiceID),
		SyncStatusKey.ValueSet(StatusInvoiced),
		CurrencyKey.ValueSet(string(invoice.Currency)),
	}
	if amount, ok := AmountValue(invoice.Subtotal); ok || workflow.GetVersion(ctx, hugeSubtotalChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		attrs = append(attrs, AmountKey.ValueSet(amount))
	}
	if len(events.changed) > 0 {
		attrs = append(attrs, ChangedAfterInvoiceKey.ValueSet(true))
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, attrs...)
	// A warning is rare: the memo gets it then only, for the run list.
	if created.Warning != "" && workflow.GetVersion(ctx, warningMemoChange, workflow.DefaultVersion, 1) == 1 {
		_ = workflow.UpsertMemo(ctx, map[string]any{MemoWarning: created.Warning})
	}

	if in.WriteBack {
		if r, err := writeBack(r, ev.Account, ev.Deal.ID, created); err != nil {
			if canceledInStep(ctx, err) {
				return r, err
			}
			// The events delivered while the invoice was made or written
			// back are changes after the invoice, as an invoiced run's
			// linger reads them: they were left unread, and a loss of the
			// deal invoiced then never marked the run (its write-back run
			// reads none). With local calls, after the checkpoint (see
			// InvoiceDeal), so that the task that made the invoice is
			// taken whatever came in.
			if (in.SettleTime > 0 || in.Linger > 0 || in.Fetch) &&
				workflow.GetVersion(ctx, writeBackFailedEventsChange, workflow.DefaultVersion, 1) == 1 {
				wait := time.Duration(0)
				if checkpointDue(ctx, in, *sent) {
					wait = time.Millisecond
				}
				listen(wait, checkpoint)
				*sent = *sent && wait == 0
			}
			return r, err
		}
	}

	linger, lingerSummary := lingerWithin(ctx, in.Linger, in.ChainStart), sum.linger
	if linger <= 0 && checkpointDue(ctx, in, *sent) {
		linger, lingerSummary = time.Millisecond, checkpoint // the checkpoint (see InvoiceDeal)
	}
	listen(linger, lingerSummary)
	if linger > 0 {
		*sent = false // the linger's timer ended the task that sent it
	}
	r.Events, r.ChangedAfterInvoice = events.ids, events.changed
	return r, nil
}

// externalCalls runs the steps of a run that talk to the outside world,
// with the run's retry policy: as local activities or as activities. A
// local activity's retries end at its ScheduleToCloseTimeout, which the SDK
// sets to the StartToCloseTimeout (one attempt's) when none is given: the
// retries of a local call may last as long as the run, as those of an
// activity do.
func externalCalls(ctx workflow.Context, in InvoiceDealInput) externalCall {
	return externalCallsWith(ctx, in, runRetryPolicy(in), localBudget(ctx, in))
}

// runRetryPolicy is the retry policy of the run's external calls.
func runRetryPolicy(in InvoiceDealInput) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    in.Retry.InitialInterval,
		BackoffCoefficient: in.Retry.BackoffCoefficient,
		MaximumInterval:    in.Retry.MaximumInterval,
		MaximumAttempts:    in.Retry.MaximumAttempts,
	}
}

// externalCallOnce is externalCalls with one attempt per call: its caller
// retries (invoiceAttempts).
func externalCallOnce(ctx workflow.Context, in InvoiceDealInput) externalCall {
	return externalCallsWith(ctx, in, &temporal.RetryPolicy{MaximumAttempts: 1}, 0)
}

// externalCall runs a step that calls the outside world (fn with arg),
// whose row in the Web UI says summary.
type externalCall func(fn, arg any, summary string) workflow.Future

// externalCallsWith runs a call with the retry policy, as a local
// activity (whose retries last budget) or as an activity (whose retries
// last budget when it is set, else as long as the run).
func externalCallsWith(ctx workflow.Context, in InvoiceDealInput, retry *temporal.RetryPolicy, budget time.Duration) externalCall {
	return func(fn, arg any, summary string) workflow.Future {
		if in.LocalCalls {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				ScheduleToCloseTimeout: max(budget, in.ActivityTimeout),
				StartToCloseTimeout:    in.ActivityTimeout, RetryPolicy: retry, Summary: summary,
			}), fn, arg)
		}
		// localBudget gives activities no budget: only a call that must
		// end before the run does (RecordDealLoss's read) passes one.
		// HeartbeatTimeout: a worker that dies mid-call (kill -9, a lost
		// host) is found out within it, not at the end of the call's
		// activity_timeout; the worker heartbeats every call that lasts
		// longer than a third of it (worker.heartbeats). Only the
		// command's attributes change: runs under way replay as they did.
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: in.ActivityTimeout, ScheduleToCloseTimeout: budget, RetryPolicy: retry,
			HeartbeatTimeout: ActivityHeartbeatTimeout, Summary: summary,
		}), fn, arg)
	}
}

// ActivityHeartbeatTimeout is how long a step run as an activity
// (external_calls: activity) may go without a heartbeat before Temporal
// gives it to another worker. The SDK sends a call's heartbeats at most
// every 0.8 of it, which leaves a fifth (4 s) for a heartbeat's own trip:
// a live call timed out would run twice at once (its keys keep it to one
// invoice, but not to one request).
const ActivityHeartbeatTimeout = 20 * time.Second

// localBudget is how long the retries of a local call last: the run's
// execution timeout, at most maxLocalRetries; 0 for calls that are
// activities, whose retries last as long as the run.
func localBudget(ctx workflow.Context, in InvoiceDealInput) time.Duration {
	if !in.LocalCalls {
		return 0
	}
	budget := workflow.GetInfo(ctx).WorkflowExecutionTimeout
	if budget <= 0 || budget > maxLocalRetries {
		budget = maxLocalRetries
	}
	return budget
}

// invoiceAttempts runs the invoice step one attempt at a time.
type invoiceAttempts struct {
	ctx   workflow.Context
	in    InvoiceDealInput
	start time.Time // of the first attempt
	// attempt makes one attempt, after before attempts.
	attempt func(before int32) workflow.Future
	// rest makes the remaining attempts in one call, with retry and, for
	// a local call, budget, after before attempts of which one may have
	// made the invoice when earlierMay is set.
	rest func(retry *temporal.RetryPolicy, budget time.Duration, before int32, earlierMay bool) workflow.Future
	// backOff says the wait before attempt n, after err: the timer's
	// summary, and the run's current details meanwhile.
	backOff func(n int, wait time.Duration, err error) (summary, details string)
	n       int // attempts made
	// notSent says that no attempt so far may have made the invoice:
	// each was refused before the ERP acted on it, or never sent.
	notSent bool
	// earlierMay says that an attempt before the last one made may have
	// made the invoice: the last one's failure cannot say so itself.
	earlierMay bool
	// before is the number of attempts made before the last call (one
	// attempt, or the rest in one call).
	before int32
}

// maxAttemptsHistory is the history length past which the invoice step's
// remaining retries are one call: an attempt at a time costs about ten
// events each, and a run ends at Temporal's 51,200.
const maxAttemptsHistory = 10000

// first makes the first attempt.
func (ia *invoiceAttempts) first(created *connectors.InvoiceResult) error {
	ia.n = 1
	err := ia.attempt(0).Get(ia.ctx, created)
	ia.notSent = err != nil && notSent(err)
	return err
}

// retry makes the next attempts after the failed one (err), as the run's
// retry policy says (or after the delay the failure asked for), until one
// succeeds, one fails for good, or the policy's attempts or the local
// budget are spent. While it waits between attempts, the deal's events are
// read as they come (stillWon): when one says the deal left the won stages
// while no attempt may have made the invoice, it stops with that stage.
func (ia *invoiceAttempts) retry(created *connectors.InvoiceResult, err error, signals workflow.ReceiveChannel, stillWon func() string) (lostStage string, _ error) {
	policy, budget := ia.in.Retry, localBudget(ia.ctx, ia.in)
	for {
		if !retryable(err) || (policy.MaximumAttempts > 0 && ia.n >= int(policy.MaximumAttempts)) {
			return "", err
		}
		wait := retryDelay(policy, ia.n, err)
		if budget > 0 && workflow.Now(ia.ctx).Add(wait).Sub(ia.start) > budget {
			return "", err
		}
		summary, details := ia.backOff(ia.n+1, wait, err)
		if stage := ia.wait(wait, summary, details, signals, stillWon); stage != "" {
			return stage, nil
		}
		if ia.ctx.Err() != nil && workflow.GetVersion(ia.ctx, canceledDuringStepChange, workflow.DefaultVersion, 1) == 1 {
			// Canceled while it waited: no attempt is made (one started
			// now would be canceled at once), notSent says what the
			// attempts so far may have made.
			return "", ia.ctx.Err()
		}
		*created = connectors.InvoiceResult{}
		if !ia.notSent || workflow.GetInfo(ia.ctx).GetCurrentHistoryLength() > maxAttemptsHistory {
			// No event can stop the invoice now (one may exist), or the
			// history is long: the remaining attempts in one call.
			// The back-off goes on from where the attempts left it, under
			// the policy's ceiling.
			most := int32(0)
			if policy.MaximumAttempts > 0 {
				most = policy.MaximumAttempts - int32(ia.n)
			}
			rest := restPolicy(policy, ia.n, most)
			left := time.Duration(0)
			if budget > 0 {
				left = max(time.Millisecond, budget-workflow.Now(ia.ctx).Sub(ia.start))
			}
			ia.earlierMay = !ia.notSent
			ia.before = int32(ia.n)
			err := ia.rest(rest, left, ia.before, ia.earlierMay).Get(ia.ctx, created)
			if err != nil && ia.notSent && workflow.GetVersion(ia.ctx, restMaySendChange, workflow.DefaultVersion, 1) == 1 {
				// Any attempt of the call may have made the invoice (its
				// error is the last attempt's): no loss stops it now.
				ia.notSent = false
			}
			return "", err
		}
		ia.before = int32(ia.n)
		ia.n++
		ia.earlierMay = !ia.notSent
		if err = ia.attempt(ia.before).Get(ia.ctx, created); err == nil {
			return "", nil
		}
		ia.notSent = ia.notSent && notSent(err)
	}
}

// stepRetries runs a step of local calls (external_calls: local) with the
// run's retry policy, as one call retried by the SDK, but for its long
// back-offs: the SDK retries a local call within the worker while its
// back-off is at most the workflow task timeout, and waits longer ones
// with a timer of its own that says only "Sleep". Each call here makes
// the attempts whose back-offs stay within the worker; a longer back-off
// (the policy's, or the delay the failure asked for) is a timer that says
// what it waits for and until when (backOff), while the run's current
// details say why; the call after it says the step again. Once the
// history is long (maxAttemptsHistory), the rest of the attempts are one
// call, as before. Activities (external_calls: activity), retried by
// Temporal, and runs whose step failed so before change, are one call.
type stepRetries struct {
	ctx    workflow.Context
	in     InvoiceDealInput
	change string // the workflow.GetVersion change id of the step's waits
	// call makes the step's attempts with retry, whose retries last
	// budget, after before attempts of earlier calls; a local call's
	// attempt whose failure asks for a retry after longer than waitsOver
	// (a vendor's Retry-After) ends the call (activities.LongWait; the
	// input's ReturnWaitsOver; 0 for activities).
	call func(retry *temporal.RetryPolicy, budget, waitsOver time.Duration, before int32) workflow.Future
	// retried, if set, is told of each call's failure that the step
	// retries after a timer, before the wait.
	retried func(err error)
	// backOff says the wait before attempt n, after err: the timer's
	// summary, and the run's current details meanwhile.
	backOff func(n int, wait time.Duration, err error) (summary, details string)
}

// run makes the step's attempts into out until one succeeds, one fails
// for good, or the policy's attempts or the local budget are spent; it
// returns the last call's failure and the attempts made before that call.
func (r stepRetries) run(out any) (before int32, _ error) {
	ctx, policy := r.ctx, r.in.Retry
	budget, start := localBudget(ctx, r.in), workflow.Now(ctx)
	if !r.in.LocalCalls {
		return 0, r.call(runRetryPolicy(r.in), budget, 0, 0).Get(ctx, out)
	}
	inWorker := workflowTaskTimeout(ctx)
	n := 0 // attempts made
	for whole := false; ; {
		// The attempts of this call: up to the first back-off longer
		// than the workflow task timeout, else all that are left (0: as
		// many as the budget lets).
		k := 0
		if !whole && retryDelay(policy, math.MaxInt32, nil) > inWorker {
			k = 1
			for m := n + 1; retryDelay(policy, m, nil) <= inWorker; m++ {
				k++
			}
		}
		left := policy.MaximumAttempts
		if left > 0 {
			left -= int32(n)
			if k == 0 || int32(k) > left {
				k = int(left)
			}
		}
		retry := restPolicy(policy, n, int32(k))
		callBudget := budget
		if n > 0 {
			callBudget = max(time.Millisecond, budget-workflow.Now(ctx).Sub(start))
		}
		before = int32(n)
		err := r.call(retry, callBudget, inWorker, before).Get(ctx, out)
		// An attempt that asked for a longer wait than the worker keeps
		// (a Retry-After) ended the call, which had attempts left.
		_, long := activities.LongWait(err)
		if err == nil || !long && (!retryable(err) || k == 0 || (left > 0 && int32(k) >= left)) {
			return before, err
		}
		// The call made k attempts, as its last attempt's failure numbers
		// it (a timeout's cause is an earlier attempt's failure): fewer
		// when its budget ran out or an attempt asked for a long wait,
		// more when it is a call of a run under way before the change,
		// which the SDK retried after its own timers and went on counting.
		made := k
		var app *temporal.ApplicationError
		var te *temporal.TimeoutError
		var at activities.Attempt
		if !errors.As(err, &te) && errors.As(err, &app) && app.HasDetails() && app.Details(&at) == nil && at.Number > 0 {
			made = int(at.Number)
		}
		if long {
			made = max(made, 1) // (a failure that does not number its attempt)
		}
		n += made
		if policy.MaximumAttempts > 0 && n >= int(policy.MaximumAttempts) {
			return before, activities.Retried(err)
		}
		wait := retryDelay(policy, n, err)
		if budget > 0 && workflow.Now(ctx).Add(wait).Sub(start) > budget {
			return before, activities.Retried(err)
		}
		change := r.change
		if long {
			// Asked only when an attempt asks for a long wait: the
			// calls of runs before it were retried by the SDK, after
			// its own timer ("Sleep"), and never ended so.
			change = longRetryAfterChange
		}
		if workflow.GetVersion(ctx, change, workflow.DefaultVersion, 1) != 1 {
			// Runs before the change made their attempts in one call.
			return before, activities.Retried(err)
		}
		if r.retried != nil {
			r.retried(err)
		}
		summary, details := r.backOff(n+1, wait, err)
		workflow.SetCurrentDetails(ctx, details)
		if werr := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: summary}).Get(ctx, nil); werr != nil {
			return before, werr // canceled while it waited
		}
		whole = workflow.GetInfo(ctx).GetCurrentHistoryLength() > maxAttemptsHistory
	}
}

// workflowTaskTimeout is the run's workflow task timeout: the longest
// back-off the SDK waits within the worker between attempts of a local
// call (a longer one is a timer of the SDK's, "Sleep").
func workflowTaskTimeout(ctx workflow.Context) time.Duration {
	if d := workflow.GetInfo(ctx).WorkflowTaskTimeout; d > 0 {
		return d
	}
	return 10 * time.Second // the SDK's default
}

// restPolicy is the run's retry policy for the attempts after the first
// n of a step: its back-off goes on from where the attempts left it,
// under the policy's ceiling, for at most attempts (0: as many as the
// call's time lets).
func restPolicy(policy RetryPolicy, n int, attempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{InitialInterval: retryDelay(policy, n+1, nil), BackoffCoefficient: policy.BackoffCoefficient,
		MaximumInterval: retryDelay(policy, math.MaxInt32, nil), MaximumAttempts: attempts}
}

// wait waits d, reading the deal's events as they come (stillWon); it
// stops early with the stage of a deal that left the won stages while no
// attempt may have made the invoice. Its timer says summary, the run's
// current details say details while it waits, again after each read of
// the deal stillWon makes (whose step says the read meanwhile).
func (ia *invoiceAttempts) wait(d time.Duration, summary, details string, signals workflow.ReceiveChannel, stillWon func() string) string {
	timer := workflow.NewTimerWithOptions(ia.ctx, d, workflow.TimerOptions{Summary: summary})
	look := func() string {
		stage := stillWon()
		workflow.SetCurrentDetails(ia.ctx, details)
		return stage
	}
	// What waits already, or could not be read at the last look.
	if stage := look(); stage != "" && ia.notSent {
		return stage
	}
	for fired := false; !fired; {
		sel := workflow.NewSelector(ia.ctx)
		sel.AddFuture(timer, func(workflow.Future) { fired = true })
		sel.AddReceive(signals, func(workflow.ReceiveChannel, bool) {}) // read by stillWon
		sel.Select(ia.ctx)
		if stage := look(); stage != "" && ia.notSent {
			return stage
		}
	}
	return ""
}

// retryDelay is the wait after attempt n failed with err: the delay the
// failure asked for (a Retry-After), else the policy's back-off, as
// Temporal computes it for an activity's retries.
func retryDelay(p RetryPolicy, n int, err error) time.Duration {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NextRetryDelay() > 0 {
		return app.NextRetryDelay()
	}
	initial := p.InitialInterval
	if initial <= 0 {
		initial = time.Second
	}
	coefficient := p.BackoffCoefficient
	if coefficient < 1 {
		coefficient = 2
	}
	ceiling := p.MaximumInterval
	if ceiling <= 0 {
		ceiling = 100 * initial
	}
	d := float64(initial) * math.Pow(coefficient, float64(n-1))
	if d >= float64(ceiling) {
		return ceiling
	}
	return time.Duration(d)
}

// retryable says whether a failed attempt is tried again: not one that
// failed for good (a non-retryable error) or was canceled.
func retryable(err error) bool {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return !app.NonRetryable()
	}
	var canceled *temporal.CanceledError
	return !errors.As(err, &canceled)
}

// notSent says whether a failed attempt wrote nothing
// (activities.Attempt); a failure that does not say so may have.
func notSent(err error) bool {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() {
		return false
	}
	var at activities.Attempt
	return app.Details(&at) == nil && at.NotSent
}

// listenFor hands receive the deal events signalled until d has passed,
// then those waiting (only those when d <= 0). The wait's timer says
// summary(now, its end), which the run's current details say meanwhile.
func listenFor(ctx workflow.Context, signals workflow.ReceiveChannel, d time.Duration, summary func(now, until time.Time) string, receive func(model.DealEvent)) {
	if d > 0 {
		done := false
		now := workflow.Now(ctx)
		what := summary(now, now.Add(d))
		workflow.SetCurrentDetails(ctx, what)
		timer := workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{Summary: what})
		for !done {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(timer, func(workflow.Future) { done = true })
			sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
				var ev model.DealEvent
				c.Receive(ctx, &ev)
				receive(ev)
			})
			sel.Select(ctx)
		}
	}
	var ev model.DealEvent
	for signals.ReceiveAsync(&ev) {
		receive(ev)
		ev = model.DealEvent{}
	}
}

// checkpoint is the summary of the checkpoint's timer (see InvoiceDeal).
func checkpoint(time.Time, time.Time) string { return checkpointSummary }

// firstLine is s up to its first line break.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// lingerMargin is the time an invoiced run keeps, after lingering, to
// complete before its timeout.
const lingerMargin = time.Minute

// lingerWithin is how long an invoiced run may linger: linger, cut short
// so that the run completes lingerMargin before its run timeout. An
// invoiced run that timed out while lingering would say TimedOut, and the
// reuse policy would then let the next won delivery start a full run.
func lingerWithin(ctx workflow.Context, linger time.Duration, chainStart time.Time) time.Duration {
	if linger <= 0 {
		return linger
	}
	end := runEnd(ctx, chainStart)
	if end.IsZero() {
		return linger
	}
	left := end.Sub(workflow.Now(ctx)) - lingerMargin
	// At least a millisecond: a linger is a timer, and a run that started
	// one before this cut replays with one.
	return max(time.Millisecond, min(linger, left))
}

// runEnd is when the run times out: at its run timeout, counted from its
// start, or at the execution timeout, counted from the start of the chain
// of runs it continues (chainStart; its own start when it continues none),
// the earlier. It is zero when the run has no timeout (or no start time,
// as in some tests).
func runEnd(ctx workflow.Context, chainStart time.Time) time.Time {
	info := workflow.GetInfo(ctx)
	if info.WorkflowStartTime.IsZero() {
		return time.Time{}
	}
	var end time.Time
	if t := info.WorkflowRunTimeout; t > 0 {
		end = info.WorkflowStartTime.Add(t)
	}
	if t := info.WorkflowExecutionTimeout; t > 0 {
		start := info.WorkflowStartTime
		if !chainStart.IsZero() && chainStart.Before(start) {
			start = chainStart
		}
		if e := start.Add(t); end.IsZero() || e.Before(end) {
			end = e
		}
	}
	return end
}

// maxLocalRetries bounds the retries of one local call (the run timeout
// does when it is shorter). A local call retried in the worker keeps its
// workflow task open with a heartbeat every 8 s (3 events each), about
// 32,000 events a day: a day stays well under the 51,200 events at which
// Temporal ends a run. Longer outages need external_calls: activity.
const maxLocalRetries = 24 * time.Hour

// invoiceAttemptsChange versions the invoice step's attempts made one at
// a time (invoiceAttempts), reading the deal's events between them; runs
// whose first attempt failed before it fail as they did (that attempt held
// all their retries).
const invoiceAttemptsChange = "invoice-attempts-read-events"

// customerBackOffChange versions the customer step's long back-offs as
// timers of its own, which say what they wait for (stepRetries): runs
// whose step was retried by the SDK alone replay as they ran.
const customerBackOffChange = "customer-back-off-timers"

// writeBackBackOffChange is customerBackOffChange's for the write-back
// step.
const writeBackBackOffChange = "writeback-back-off-timers"

// longRetryAfterChange versions ending a local call of a step retried
// by stepRetries when an attempt asks to be retried after longer than
// the worker keeps (a vendor's Retry-After over the workflow task
// timeout), and waiting that with a timer of the run's that says what
// it waits for, as the policy's long back-offs are: the SDK waited it
// with its own timer ("Sleep"), within the call. Asked only then.
const longRetryAfterChange = "long-retry-after-timers"

// invoiceBackOffChange is customerBackOffChange's for the invoice step
// of a run that does not listen to its deal's events (one that does
// makes its attempts one at a time: invoiceAttempts).
const invoiceBackOffChange = "invoice-back-off-timers"

// fetchBackOffChange is customerBackOffChange's for the fetch step (a
// thin CRM event's read of the deal).
const fetchBackOffChange = "fetch-back-off-timers"

// invoiceLastLookChange versions the last look at the deal's events when
// the invoice step's attempts are over and none was sent: runs that failed
// there before it replay as they failed.
const invoiceLastLookChange = "invoice-attempts-last-look"

// restMaySendChange versions taking the invoice step's remaining attempts,
// once they failed as one call (a long history), as attempts that may
// have made the invoice: runs that then read a loss as "nothing was
// invoiced" replay as they ended.
const restMaySendChange = "rest-may-have-sent"

// hugeSubtotalChange versions leaving out of the invoiced run's search
// attributes a subtotal no float holds.
const hugeSubtotalChange = "huge-subtotal-left-out"

// warningMemoChange versions recording the ERP target's warning about
// the invoice in the run's memo (MemoWarning): runs invoiced with a
// warning before it replay without that upsert.
const warningMemoChange = "warning-in-memo"

// refetchChange versions the fetch again of a deal found not won when an
// event arrived during the fetch (runs whose history decided before the
// change end DealNotWon as they did). maxRefetches bounds those fetches.
const (
	refetchChange = "refetch-after-event"
	maxRefetches  = 5
)

// staleWinChange versions the read of the deal's previous run (runs that
// started before it replay without it).
const staleWinChange = "read-previous-run"

// recheckChange versions reading the events delivered before the invoice
// step, which ends a run whose deal left the won stages meanwhile.
const recheckChange = "recheck-before-invoice"

// refetchBeforeInvoiceChange versions reading a fetched deal again when
// thin events arrived during the customer step, which ends a run whose
// deal left the won stages meanwhile.
const refetchBeforeInvoiceChange = "refetch-before-invoice"

// lossDuringFailedStepChange versions ending a run whose step failed as
// DealNotWon when an event delivered during the step says the deal was
// lost.
const lossDuringFailedStepChange = "loss-during-failed-step"

// eventIDReuseChange versions taking an event id seen before, with a newer
// time, as a new event (dealEvents.add).
const eventIDReuseChange = "event-id-reused-later"

// changedOnceInvoicedChange versions marking a run ChangedAfterInvoice
// only once its invoice exists (runs that marked it at the first change,
// before their invoice step, replay as they did).
const changedOnceInvoicedChange = "changed-once-invoiced"

// staleEventNoChangeChange versions leaving out of ChangedAfterInvoice an
// event that happened before the state the invoice bills (events.stateAt).
const staleEventNoChangeChange = "stale-event-no-change"

// canceledWhileSettlingChange versions ending a run canceled while it
// settled at once, without its map step.
const canceledWhileSettlingChange = "canceled-while-settling"

// canceledDuringStepChange versions ending a run canceled during a step
// (canceledInStep) canceled without marking it failed, unless its invoice
// step may have made the invoice.
const canceledDuringStepChange = "canceled-during-step"

// canceledInStep says whether err, a step's failure, is the run's
// cancellation (an operator's cancel, while the step ran): the run then
// ends canceled with the SyncStatus it has, "pending" before its invoice
// step, "invoiced" in its write-back. Runs canceled so before the change
// marked themselves failed, and replay so.
func canceledInStep(ctx workflow.Context, err error) bool {
	var canceled *temporal.CanceledError
	return ctx.Err() != nil && errors.As(err, &canceled) &&
		workflow.GetVersion(ctx, canceledDuringStepChange, workflow.DefaultVersion, 1) == 1
}

// timeoutNamesTargetChange versions reading the target's name (a local
// activity) for the failure of an ERP step whose last attempt timed out.
const timeoutNamesTargetChange = "timeout-names-target"

// dealKeysChange versions the ERP steps' idempotency keys of a run under
// another workflow ID than its deal's: the deal's (keyBase in InvoiceDeal).
const dealKeysChange = "deal-idempotency-keys"

// staleAllowance is how much older than a fetch an event must be to count
// as read by it: the CRM's clock and its API's replicas may lag the read.
const staleAllowance = time.Minute

// unionIDs is earlier's event ids followed by those of later it lacks.
func unionIDs(earlier, later []string) []string {
	ids := slices.Clone(earlier)
	for _, id := range later {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// staleWin says whether ev, the newest event of a run, is no newer than
// the events of the deal's previous run, which ended it as DealNotWon:
// older than that run's newest event, or one it saw at that same time (or
// without a time). A seen event id with a newer time is a new event (a
// sender that numbers its events per transition).
func staleWin(ev model.DealEvent, prev activities.NotWonDetails) bool {
	seen := slices.Contains(prev.EventIDs, ev.EventID)
	if ev.OccurredAt.IsZero() || prev.LatestAt.IsZero() {
		return seen
	}
	return ev.OccurredAt.Before(prev.LatestAt) || (seen && !ev.OccurredAt.After(prev.LatestAt))
}

// LeftWonStage says whether latest, a later whole-deal event of the run
// started with in, moved the deal out of the stage that started the run
// and out of the won stages. The run then ends as DealNotWon, and `runs
// retry` does not start it again.
func LeftWonStage(in InvoiceDealInput, latest model.DealEvent) bool {
	// latest is another event than the input: another id, or the input's
	// id sent again later (dealEvents.add takes that as a new event)
	return (latest.EventID != in.Event.EventID || latest.OccurredAt.After(in.Event.OccurredAt)) &&
		!strings.EqualFold(latest.Deal.Stage, in.Event.Deal.Stage) &&
		!containsFold(in.WonStages, latest.Deal.Stage)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// rootMessage is step's own message: its ApplicationError's, without the
// SDK's "(type: …, retryable: …)" and the causes, or what a timed-out last
// attempt means.
func rootMessage(step string, err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	if msg, _, ok := stepTimedOut(step, err); ok {
		return msg
	}
	return err.Error()
}

// stepTimedOut reads step's last attempt that ran out of time without
// another error (a local activity's StartToClose: the SDK reports a bare
// TimeoutError, naming no step): a message naming it and the type of the
// system it calls.
func stepTimedOut(step string, err error) (msg, typ string, ok bool) {
	var te *temporal.TimeoutError
	if !errors.As(err, &te) {
		return "", "", false
	}
	typ, ok = stepSystems[step]
	if !ok {
		// A pure step (map, validate) has its own time limit.
		return step + " did not finish in time on its last attempt (" + te.TimeoutType().String() + ")", ErrTypeStepTimedOut, true
	}
	if te.TimeoutType() == enumspb.TIMEOUT_TYPE_HEARTBEAT {
		// A step run as an activity whose worker stopped (killed, its
		// host lost) or lost its connection to Temporal mid-call: the
		// system it calls may have answered.
		return step + " lost its worker on its last attempt (" + te.TimeoutType().String() + "): the worker running it sent no heartbeat for " +
			ActivityHeartbeatTimeout.String() + " (it stopped, or lost its connection to Temporal); retry the run once the workers run", typ, true
	}
	return step + " got no answer in time on its last attempt (" + te.TimeoutType().String() +
		"): the system it calls did not answer within activity_timeout; retry the run once it does", typ, true
}

// stepSystems types a timed-out step by the system it calls.
var stepSystems = map[string]string{
	"FetchDeal": activities.ErrTypeCRMUnavailable, "WriteBack": activities.ErrTypeCRMUnavailable,
	"FindOrCreateCustomer": activities.ErrTypeERPUnavailable, "CreateInvoice": activities.ErrTypeERPUnavailable,
	"PreviousRun": activities.ErrTypeTemporalUnavailable,
}

// pinnedTarget is the target the run was pinned to, which says what a
// retry of the run's invoice step does about an invoice an earlier
// attempt may have made (connectors.TargetIdentity.InvoiceRetry): unsaid
// for a pin of the release before this one, or (the zero identity) for a
// run started before targets were pinned.
func pinnedTarget(in InvoiceDealInput) connectors.TargetIdentity {
	if in.ERPTarget == nil {
		return connectors.TargetIdentity{}
	}
	return *in.ERPTarget
}

// mayHaveMade is the invoice step's failure err, after attempts of which
// one before the last may have made the invoice (reference): its message
// says so, once (the step's own attempts say it when the SDK retried
// them), with what runs retry does about it as the run's target says
// (retry, activities.InvoiceRetryAdvice), and it no longer claims that
// nothing was sent. Only the message and details of the run's failure
// change: runs replay alike.
func mayHaveMade(err error, reference string, retry connectors.TargetIdentity) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return err
	}
	msg := appErr.Message()
	if !strings.Contains(msg, activities.MayHaveMadeInvoice) {
		// Its own advice (look in the ERP first) replaces the step's.
		msg = activities.WithoutRetryAdvice(msg)
		msg += fmt.Sprintf("; an earlier attempt "+activities.MayHaveMadeInvoice+" (reference %q) in the ERP: look for it there before invoicing by hand%s",
			reference, activities.InvoiceRetryAdvice(retry, "dealsync runs retry"))
	}
	if appErr.NonRetryable() {
		return temporal.NewNonRetryableApplicationError(msg, appErr.Type(), err, activities.Attempt{})
	}
	return temporal.NewApplicationError(msg, appErr.Type(), activities.Attempt{})
}

// timedOutMayHaveMade is what the failure of an invoice step whose last
// attempt timed out adds: that attempt may have sent its request and made
// the invoice (reference), its answer lost, or (earlier) so may an
// attempt before it; and what to do, as the run's target says (retry,
// activities.InvoiceRetryAdvice).
func timedOutMayHaveMade(reference string, earlier bool, retry connectors.TargetIdentity) string {
	who := "its request may have been sent, and the ERP " + activities.MayHaveMadeInvoice
	if earlier {
		who = "this attempt, or an earlier one, " + activities.MayHaveMadeInvoice
	}
	return fmt.Sprintf("; %s (reference %q): look for it in the ERP before invoicing by hand%s",
		who, reference, activities.InvoiceRetryAdvice(retry, "dealsync runs retry"))
}

// retriesSpent is err, the failure of an ERP step whose retries ended
// while it could still be retried (the ERP down, or limiting the rate,
// or a worker sending the connection to another target than the run's,
// until workflow.retry.maximum_attempts or the retries' time ran out),
// saying how many attempts were made (before, the attempts made before
// the call that failed, and that call's) and what to do: the last
// attempt's message alone read as one failure, to be retried at once.
// Other failures are returned as they are. named says that what follows
// (mayHaveMade) names runs retry, as the message may already. After such
// advice, unless the run's target finds the invoice, what to do asks to
// look for the invoice first. Only the message of the run's failure
// changes: runs replay alike.
func retriesSpent(in InvoiceDealInput, err error, before int32, named bool) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() {
		return err
	}
	back := "the ERP answers again"
	switch appErr.Type() {
	case activities.ErrTypeERPUnavailable:
	case activities.ErrTypeERPRateLimited:
		back = "the ERP's rate limit lets calls through again"
	case activities.ErrTypeTargetMismatch:
		back = "" // its message says what to do
	default:
		return err
	}
	if back != "" && (named || strings.Contains(appErr.Message(), activities.MayHaveMadeInvoice)) && pinnedTarget(in).InvoiceRetry != connectors.InvoiceRetryFinds {
		// The message says that an attempt may have made the invoice and
		// that a retry may make a second one (the target does not look
		// invoices up, or the run's pin does not say): what to do must not
		// undo that advice by asking for a retry alone.
		back += " and you have found no invoice of its reference there"
	}
	var at activities.Attempt
	if appErr.HasDetails() {
		_ = appErr.Details(&at)
	}
	spent := "its retries ran out"
	if at.Number > 0 {
		spent = attemptsSpent(in, before+at.Number)
	} // else a failure of an earlier release's worker: its number unknown
	if at.Number > 0 {
		// The details number the step's attempt, as the message counts
		// them (the Web UI shows both in the run's result), not the
		// attempt within the last call.
		at.Number += before
	}
	msg := fmt.Sprintf("%s; %s: once %s, start the run again", appErr.Message(), spent, back)
	if back == "" {
		msg = appErr.Message() + "; " + spent
	}
	if !named && !strings.Contains(msg, "runs retry") {
		msg += " with dealsync runs retry"
	}
	return temporal.NewApplicationErrorWithOptions(msg, appErr.Type(), temporal.ApplicationErrorOptions{
		NextRetryDelay: appErr.NextRetryDelay(), Details: []any{at},
	})
}

// attemptsSpent says how the n attempts of a step whose retries ended
// while it could still be retried failed: all that
// workflow.retry.maximum_attempts allows, or as many as the time its
// retries had.
func attemptsSpent(in InvoiceDealInput, n int32) string {
	switch most := in.Retry.MaximumAttempts; {
	case most > 0 && n >= most && n == 1:
		return "its only attempt failed (workflow.retry.maximum_attempts is 1)"
	case most > 0 && n >= most:
		return fmt.Sprintf("all %d attempts failed (workflow.retry.maximum_attempts)", n)
	default:
		return fmt.Sprintf("%d attempts failed in the time its retries had (workflow.run_timeout; with external_calls: local, at most 24 h)", n)
	}
}

// writeBackSpent is "; " and how many attempts the write-back made
// (attemptsSpent), when err, its failure, is one it could still retry and
// numbers its attempt (before, the attempts of the step's earlier calls);
// "" otherwise (a CRM's refusal fails its one attempt; a timeout or an
// earlier release's failure does not say). Only the message of the run's
// failure changes: runs replay alike.
func writeBackSpent(in InvoiceDealInput, err error, before int32) string {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || !appErr.HasDetails() {
		return ""
	}
	var at activities.Attempt
	if appErr.Details(&at) != nil || at.Number <= 0 {
		return ""
	}
	return "; " + attemptsSpent(in, before+at.Number)
}

// ErrTypeStepTimedOut ends a run whose pure step (map, validate) ran out
// of time on its last attempt.
const ErrTypeStepTimedOut = "StepTimedOut"

// fail marks the run failed for operators and ends it with the step's own
// message (not the SDK's "activity error" wrapper), so the Web UI shows
// what went wrong in the run's failure.
//
// The run's failure has no cause (runFailure): the step's error, kept as
// its cause, would show the same message a second time (and a third,
// through its own causes) in the Web UI's result of the run. The step's
// activity type, attempt and retry state stay in the run's history (its
// ActivityTaskFailed event, or a local call's marker), where the Web UI
// shows them; nothing of dealsync reads them from the run's failure.
// Only the content of the run's failure changes: runs replay alike.
func fail(ctx workflow.Context, r InvoiceDealResult, step string, err error) (InvoiceDealResult, error) {
	if canceledInStep(ctx, err) {
		// Canceled during a step before the invoice's: nothing of the
		// invoice was sent, the run stays pending.
		return r, ctx.Err()
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusFailed))
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if !appErr.HasDetails() {
			// No details rather than one null detail, which the Web UI
			// cannot parse ("Unexpected end of JSON input").
			return r, runFailure(appErr.Message(), appErr.Type())
		}
		var details any
		_ = appErr.Details(&details)
		return r, runFailure(appErr.Message(), appErr.Type(), details)
	}
	if msg, typ, ok := stepTimedOut(step, err); ok {
		return r, runFailure(msg, typ)
	}
	return r, err
}

// runFailure is the failure a run ends with, of type typ: its message
// once, with no cause (fail), and its details.
func runFailure(msg, typ string, details ...any) error {
	return temporal.NewNonRetryableApplicationError(msg, typ, nil, details...)
}

// mergedInto notes the deal a fetched deal was merged into, as its source
// reports it in Raw["merged_into"] (HubSpot): the run of that deal, not
// this one, invoices the sale. "" for any other deal.
func mergedInto(d model.Deal) string {
	var into string
	if raw, ok := d.Raw["merged_into"]; !ok || json.Unmarshal(raw, &into) != nil || into == "" {
		return ""
	}
	return " (merged into deal " + into + ", whose own run invoices the sale when it is won: find it by DealId = \"" + into + "\")"
}
