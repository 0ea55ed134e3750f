// Package backfill starts the runs of the deals a CRM lists as won in a
// period (`dealsync deals sync`): for a connection that goes live after
// deals were won, and as the safety net for webhooks a CRM gave up
// delivering (HubSpot stops retrying after about a day). A
// deal is started as if its CRM had just sent a thin "won" event: the run
// reads the deal, checks that it is still won and invoices it under the
// deal's own workflow ID. Deals the connection's trigger leaves out (it
// judges the listed deal as a thin webhook of it), deals with a running or
// completed run, or any of
// whose runs recorded an invoice, are skipped; a deal whose runs the
// namespace's retention removed is started again (only the ERP's look-up
// keeps it from a second invoice).
package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// Starter starts a deal's run as the intake does (intake.TemporalStarter).
type Starter interface {
	Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error)
}

// Options select the deals.
type Options struct {
	// Accounts are the CRM accounts to list (none: every account the
	// connection serves).
	Accounts []string
	// Since and Until bound the period [Since, Until) in which the deals
	// were won, as each source reads it (connectors.WonDealLister).
	Since, Until time.Time
	// OpenEnded says that the period has no end (`deals sync` without
	// --until): Until is when the sync began. A source that can list
	// without an end (OpenEndedLister: HubSpot, whose period is the deals'
	// last modification) does, so that a won deal modified while the
	// listing runs, before it is read, is not left out; the others list
	// [Since, Until).
	OpenEnded bool
	// DryRun lists the deals and what would be done, and starts nothing.
	DryRun bool
}

// Result is what happened to one won deal.
type Result struct {
	Account    string `json:"account,omitempty"`
	DealID     string `json:"deal_id"`
	Stage      string `json:"stage,omitempty"`
	CloseDate  string `json:"close_date,omitempty"`
	WorkflowID string `json:"workflow_id"`
	// Existing is the status of the deal's latest run before ("" when it
	// has none): Running, Completed, Failed, TimedOut, Terminated, ...
	Existing string `json:"existing_run,omitempty"`
	// NewRun is the run started (empty when skipped or on a dry run).
	NewRun  string `json:"new_run_id,omitempty"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// OpenEndedLister is implemented by WonDealListers that can list the won
// deals of a period without an end (Options.OpenEnded): the deals last
// modified from since on, up to when each page is read. A source whose
// period is the deals' last modification, read page by page over minutes
// (HubSpot's search), would otherwise leave out a won deal modified after
// the listing began and before its page was read; no later listing of the
// period would list it either.
type OpenEndedLister interface {
	ListWonDealsSince(ctx context.Context, account string, since time.Time, fn func(connectors.WonDeal) error) error
}

// ErrCannotList says that the connection's source cannot list won deals.
var ErrCannotList = errors.New("its source cannot list won deals")

// Sync lists the won deals of the connection's accounts in the period and
// starts a run for each that has none, or whose latest run ended without
// completing (failed, timed out, terminated: the same as a new webhook
// would) before its invoice was made. Deals with a running or completed
// run are skipped, and so are those whose run ended after making the
// invoice (SyncStatus invoiced or writeback_failed: `runs retry
// --writeback` writes those back). An error means a listing failed (the
// other accounts are still listed: it joins the errors of all that
// failed); failures of single deals are in their Result.
func Sync(ctx context.Context, c client.Client, conn *connections.Connection, starter Starter, o Options) ([]Result, error) {
	if err := CanSync(conn); err != nil {
		return nil, err
	}
	lister := conn.Source.(connectors.WonDealLister)
	list := func(account string, fn func(connectors.WonDeal) error) error {
		return lister.ListWonDeals(ctx, account, o.Since, o.Until, fn)
	}
	if open, ok := conn.Source.(OpenEndedLister); ok && o.OpenEnded {
		list = func(account string, fn func(connectors.WonDeal) error) error {
			return open.ListWonDealsSince(ctx, account, o.Since, fn)
		}
	}
	accounts := o.Accounts
	if len(accounts) == 0 {
		if al, ok := conn.Source.(connectors.AccountLister); ok {
			accounts = al.Accounts()
			slices.Sort(accounts) // the lister's order is not fixed
		}
	} else {
		var err error
		if accounts, err = AccountKeys(conn, accounts); err != nil {
			return nil, err
		}
	}
	// An account whose listing fails (a revoked token, say) does not keep
	// the others from being listed: the errors are joined.
	var results []Result
	var errs []error
	for _, account := range accounts {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := list(account, func(d connectors.WonDeal) error {
			results = append(results, one(ctx, c, conn, starter, account, d, o.DryRun))
			return ctx.Err()
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the won deals of account %s: %w", account, err))
		}
	}
	return results, errors.Join(errs...)
}

// AccountKeys turns the accounts an operator typed into the connection's
// configured keys, which the webhooks' runs use in their workflow ids and
// account_targets: a deal must meet its run whatever the spelling (a
// Salesforce org id in 15 characters, or in another letter case). An
// account the connection does not serve is an error.
func AccountKeys(conn *connections.Connection, typed []string) ([]string, error) {
	out := make([]string, 0, len(typed))
	for _, a := range typed {
		key, err := conn.AccountKey(a)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

// CanSync says whether the connection's source can list its won deals
// (an error wrapping ErrCannotList when not).
func CanSync(conn *connections.Connection) error {
	if _, ok := conn.Source.(connectors.WonDealLister); !ok || conn.Fetcher == nil {
		return fmt.Errorf("connection %q (%s): %w", conn.Name, conn.SourceType, ErrCannotList)
	}
	return nil
}

// createdInvoice reads the invoice a run made from its history (tests
// replace it).
var createdInvoice = rerun.CreatedInvoice

func one(ctx context.Context, c client.Client, conn *connections.Connection, starter Starter, account string, d connectors.WonDeal, dryRun bool) Result {
	r := Result{Account: account, DealID: d.ID, Stage: d.Stage, WorkflowID: workflows.DealWorkflowID(conn.Name, account, d.ID)}
	if !d.CloseDate.IsZero() {
		r.CloseDate = d.CloseDate.String()
	}
	// The event the run starts with, as a thin webhook of the deal: the
	// connection's trigger judges it as it judges the webhooks, so a deal
	// the mapping leaves out (another pipeline) is not invoiced here
	// either.
	ev := model.DealEvent{
		EventID: "deals-sync/" + d.ID, Account: account, OccurredAt: time.Now().UTC(), Thin: true,
		Deal: model.Deal{ID: d.ID, Stage: d.Stage, Raw: d.Raw},
	}
	if d.EventStage != "" {
		ev.Deal.Stage = d.EventStage
	}
	switch ok, reason, err := conn.Trigger.Evaluate(ev); {
	case err != nil:
		r.Error = "the connection's trigger failed on the deal (fix the mapping, then sync again): " + err.Error()
		return r
	case !ok:
		r.Skipped = "the connection's trigger does not start a run for it: " + reason
		return r
	}
	desc, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, "")
	var notFound *serviceerror.NotFound
	ran := !errors.As(err, &notFound)
	switch {
	case !ran:
	case err != nil:
		r.Error = "describing the deal's run: " + err.Error()
		return r
	default:
		status := desc.GetWorkflowExecutionInfo().GetStatus()
		r.Existing = status.String() // as the list filter spells it: Running, Completed, ...
		switch status {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			r.Skipped = "a run is in progress"
			return r
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			r.Skipped = "invoiced already"
			return r
		}
		// A run that ended otherwise after its invoice was made (its
		// write-back failed, or it timed out or was terminated then) has an
		// invoice: a new run would create it again, protected only by the
		// ERP still knowing the step's idempotency key. `runs retry` writes
		// such invoices back instead.
		if st := rerun.SyncStatus(desc.GetWorkflowExecutionInfo().GetSearchAttributes()); st == workflows.StatusInvoiced || st == workflows.StatusWriteBackFailed {
			r.Skipped = "invoiced already (the run ended " + r.Existing + " after the invoice was made; `" + rerun.WriteBackCommand(status) + "` writes it back)"
			return r
		}
		// The search attribute is recorded a workflow task after the
		// invoice: a run terminated, timed out or cancelled in between
		// ended with its invoice made and SyncStatus still "pending". Its
		// history says. (A run that failed recorded "failed": no invoice.
		// A RecordDealLoss run, SyncStatus "skipped", made none: its
		// history says so too.)
		if status != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED && rerun.SyncStatus(desc.GetWorkflowExecutionInfo().GetSearchAttributes()) != workflows.StatusFailed {
			inv, err := createdInvoice(ctx, c, r.WorkflowID, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
			switch {
			case err != nil:
				r.Error = "reading the deal's last run: " + err.Error()
				return r
			case inv != nil:
				r.Skipped = "invoiced already (the run ended " + r.Existing + " after invoice " + inv.InvoiceID +
					" was made; if its connection writes back to the CRM, `" + rerun.WriteBackCommand(status) + "` does, with --completed when the connection had no write-back when the run started)"
				return r
			}
		}
	}
	// An earlier run than the latest may have made the invoice (the latest
	// one, of a later delivery, failed).
	if ran {
		switch by, err := rerun.InvoicedBy(ctx, c, r.WorkflowID, ""); {
		case err != nil:
			r.Error = err.Error()
			return r
		case by != "":
			r.Skipped = "invoiced already by run " + by + " (a later run of the deal ended " + r.Existing + ")"
			return r
		}
	}
	if dryRun {
		r.Skipped = "dry run"
		return r
	}
	res, err := starter.Start(ctx, conn, ev)
	switch {
	case err != nil:
		r.Error = err.Error()
	case res.Duplicate:
		r.Skipped = "a run started meanwhile: " + res.RunID
	default:
		r.NewRun = res.RunID
	}
	return r
}
