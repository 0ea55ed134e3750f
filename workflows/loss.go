package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/model"
)

// RecordDealLossName is the registered name of RecordDealLoss.
const RecordDealLossName = "RecordDealLoss"

// lossLastLookChange versions taking in the events delivered to a
// RecordDealLoss run while it read the deal's previous run (runs that
// decided before the change end as they did).
const lossLastLookChange = "loss-last-look"

// lossReadFailedChange versions recording the loss when the read of the
// deal's previous run failed (runs that failed there before the change
// replay as they did).
const lossReadFailedChange = "loss-read-failed"

// lossReadBoundedChange versions ending the read of the deal's previous
// run before the run's timeout (runs that read before the change replay
// with the read's retries as they were).
const lossReadBoundedChange = "loss-read-bounded"

// IsLoss says whether ev, a whole-deal event, moved its deal out of the
// won stages: its previous stage is one of them and its stage is not.
func IsLoss(wonStages []string, ev model.DealEvent) bool {
	return !ev.Thin && containsFold(wonStages, ev.Deal.PreviousStage) && !containsFold(wonStages, ev.Deal.Stage)
}

// RecordDealLoss is the run of a deal whose loss (IsLoss) met no run of the
// deal, on a connection whose runs listen for later events (settle_time,
// linger). It records the loss: after the settle time it ends DealNotWon
// with its events and their newest time, as an InvoiceDeal run that saw
// the deal lost does, so that a win older than the loss delivered later
// (a CRM's retry of a delivery refused before the loss came) is judged
// stale by the new run's read of this one, and `runs retry` does not start
// an earlier failed run of the deal again. A win newer than the loss that
// arrives meanwhile continues as an InvoiceDeal run of that win (which
// reads the deal's previous runs as any listening run does). The loss
// recorded is the newest the deal's runs have seen: an earlier DealNotWon
// run's, when that is newer (a loss delivered late), with its events.
//
// It is a workflow type of its own so that a worker older than it, which
// would run an InvoiceDeal of a lost deal through to an invoice, leaves
// the run to one that knows it.
func RecordDealLoss(ctx workflow.Context, in InvoiceDealInput) (InvoiceDealResult, error) {
	// Its current details say its wait or its read while it runs, nothing
	// once it has ended.
	defer workflow.SetCurrentDetails(ctx, "")
	// The deal's events as InvoiceDeal keeps them: an id sent again with a
	// newer time is a new event (unversioned: this workflow type has
	// always taken it so).
	events := &dealEvents{seen: map[string]time.Time{}, latest: in.Event, newerReuse: func() bool { return true }}
	events.add(in.Event)
	signals := workflow.GetSignalChannel(ctx, DealEventSignal)
	receive := func(ev model.DealEvent) { events.add(ev) }
	sum := newStepSummaries(in)
	listenFor(ctx, signals, in.SettleTime, sum.settleLoss, receive)
	// wonAgain continues as a run of a win newer than the loss: that win
	// is invoiced, by a run that starts as pending (its search attributes
	// are this run's) and counts its time from this run's start (the run
	// timeout is the chain's).
	wonAgain := func() (InvoiceDealResult, error) {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusPending))
		won := in
		won.Event = events.latest
		if won.ChainStart.IsZero() {
			won.ChainStart = workflow.GetInfo(ctx).WorkflowStartTime
		}
		return InvoiceDealResult{}, workflow.NewContinueAsNewError(ctx, InvoiceDealName, won)
	}
	if containsFold(in.WonStages, events.latest.Deal.Stage) {
		return wonAgain()
	}
	var a *activities.Activities
	var prev activities.PreviousRun
	var unread string
	if err := readPreviousRun(ctx, in, a, &prev); err != nil {
		if workflow.GetVersion(ctx, lossReadFailedChange, workflow.DefaultVersion, 1) != 1 {
			return InvoiceDealResult{Events: events.ids}, err
		}
		// The deal's earlier runs could not be read (the run list refused
		// the query, or the retries ran out): the loss this run saw is
		// still recorded, and a win delivered meanwhile still invoiced;
		// failing would leave the win unread and the loss unrecorded.
		prev, unread = activities.PreviousRun{}, " (the deal's earlier runs could not be read, so an older loss they recorded is not merged: "+rootMessage("PreviousRun", err)+")"
	}
	// Events delivered while the previous run was read (their webhooks
	// were acknowledged as reaching this run) are taken in as those of the
	// settle time are: a win among them, newer than the loss, would
	// otherwise be left unread and never invoiced. Read in the workflow
	// task that ends the run, so an event arriving later still makes
	// Temporal run that task again.
	if signals.Len() > 0 && workflow.GetVersion(ctx, lossLastLookChange, workflow.DefaultVersion, 1) == 1 {
		listenFor(ctx, signals, 0, nil, receive)
		if containsFold(in.WonStages, events.latest.Deal.Stage) {
			return wonAgain()
		}
	}
	latest, ids := events.latest, events.ids
	lost := activities.NotWonDetails{EventIDs: ids, LatestAt: latest.OccurredAt, Stage: latest.Deal.Stage}
	if p := prev.NotWon; prev.ErrorType == ErrTypeDealNotWon && p != nil {
		lost.EventIDs = unionIDs(p.EventIDs, ids)
		if p.LatestAt.After(lost.LatestAt) {
			lost.LatestAt, lost.Stage = p.LatestAt, p.Stage
		}
	}
	msg := "the deal's stage is now " + lost.Stage + ", not a won stage: the loss is recorded (a win older than it, delivered later, is not invoiced); nothing was invoiced" + unread
	if prev.InvoicedUnread != "" {
		msg += " (whether an earlier run of the deal made its invoice and failed writing it back could not be read: " + prev.InvoicedUnread + ")"
	}
	if inv := prev.Invoiced; inv != nil {
		made := inv.InvoiceID
		if inv.Number != "" {
			made += " (" + inv.Number + ")"
		}
		msg = "the deal's stage is now " + lost.Stage + ", not a won stage: the loss is recorded (a win older than it, delivered later, is not invoiced); this run invoiced nothing, but run " + inv.RunID +
			" made the deal's invoice " + made + " and failed writing it back: if the loss stands, void or credit that invoice in the ERP, and leave run " + inv.RunID +
			" out of `dealsync runs retry --writeback`, which would write it back; if not, that command writes it back" + unread
	}
	r := InvoiceDealResult{Events: ids, Skipped: msg}
	return r, temporal.NewNonRetryableApplicationError(msg, ErrTypeDealNotWon, nil, lost)
}

// readPreviousRun reads the deal's previous run into prev. Its retries end
// lingerMargin before the run's timeout, so that a run list down until
// then still leaves the run the time to record its loss (the read starts
// after the settle time, and its retries would otherwise last as long as
// the run: the run would time out and its loss never be recorded).
func readPreviousRun(ctx workflow.Context, in InvoiceDealInput, a *activities.Activities, prev *activities.PreviousRun) error {
	info := workflow.GetInfo(ctx)
	read := activities.PreviousRunInput{
		Connection: in.Connection, WorkflowID: info.WorkflowExecution.ID,
		RunID: info.WorkflowExecution.RunID, Signal: DealEventSignal,
		DealID: in.Event.Deal.ID, // for its log lines: the input only, no command changes
		// A run that made the deal's invoice and failed writing it back is
		// named, not "nothing was invoiced" (only the loss's message
		// changes: no command).
		WithInvoice: true,
	}
	call := externalCalls(ctx, in)
	if workflow.GetVersion(ctx, lossReadBoundedChange, workflow.DefaultVersion, 1) == 1 {
		if end := runEnd(ctx, in.ChainStart); !end.IsZero() {
			left := end.Sub(workflow.Now(ctx)) - lingerMargin
			if budget := localBudget(ctx, in); budget > 0 {
				left = min(left, budget)
			}
			if left <= 0 || left < in.ActivityTimeout {
				return temporal.NewApplicationError("no time was left before the run's timeout to read them", activities.ErrTypeTemporalUnavailable)
			}
			call = externalCallsWith(ctx, in, runRetryPolicy(in), left)
		}
	}
	workflow.SetCurrentDetails(ctx, earlierRunsSummary)
	return call(a.PreviousRun, read, earlierRunsSummary).Get(ctx, prev)
}
