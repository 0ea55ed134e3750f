package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/model"
)

// RecordDealLossName is the registered name of RecordDealLoss.
const RecordDealLossName = "RecordDealLoss"

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
	// The deal's events as InvoiceDeal keeps them: an id sent again with a
	// newer time is a new event (unversioned: this workflow type has
	// always taken it so).
	events := &dealEvents{seen: map[string]time.Time{}, latest: in.Event, newerReuse: func() bool { return true }}
	events.add(in.Event)
	listenFor(ctx, workflow.GetSignalChannel(ctx, DealEventSignal), in.SettleTime, func(ev model.DealEvent) { events.add(ev) })
	latest, ids := events.latest, events.ids
	if containsFold(in.WonStages, latest.Deal.Stage) {
		// Won again since the loss: that win is invoiced, by a run that
		// starts as pending (its search attributes are this run's) and
		// counts its time from this run's start (the run timeout is the
		// chain's).
		_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusPending))
		won := in
		won.Event = latest
		if won.ChainStart.IsZero() {
			won.ChainStart = workflow.GetInfo(ctx).WorkflowStartTime
		}
		return InvoiceDealResult{}, workflow.NewContinueAsNewError(ctx, InvoiceDealName, won)
	}
	var a *activities.Activities
	var prev activities.PreviousRun
	if err := externalCalls(ctx, in)(a.PreviousRun, activities.PreviousRunInput{
		Connection: in.Connection, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		RunID: workflow.GetInfo(ctx).WorkflowExecution.RunID, Signal: DealEventSignal,
	}).Get(ctx, &prev); err != nil {
		return InvoiceDealResult{Events: ids}, err
	}
	lost := activities.NotWonDetails{EventIDs: ids, LatestAt: latest.OccurredAt, Stage: latest.Deal.Stage}
	if p := prev.NotWon; prev.ErrorType == ErrTypeDealNotWon && p != nil {
		lost.EventIDs = slices.Clone(p.EventIDs)
		for _, id := range ids {
			if !slices.Contains(lost.EventIDs, id) {
				lost.EventIDs = append(lost.EventIDs, id)
			}
		}
		if p.LatestAt.After(lost.LatestAt) {
			lost.LatestAt, lost.Stage = p.LatestAt, p.Stage
		}
	}
	msg := "the deal's stage is now " + lost.Stage + ", not a won stage: the loss is recorded (a win older than it, delivered later, is not invoiced); nothing was invoiced"
	r := InvoiceDealResult{Events: ids, Skipped: msg}
	return r, temporal.NewNonRetryableApplicationError(msg, ErrTypeDealNotWon, nil, lost)
}
