package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/rerun"
)

func newRunsCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "runs", Short: "Work with the runs of a Temporal namespace"}
	var o rerun.Options
	var dev, asJSON bool
	var failure []string
	retry := &cobra.Command{
		Use:   "retry [--query FILTER] [--failure TYPE[,TYPE…]] [--timed-out] [--terminated] [--canceled] [--writeback [--completed]] [--no-invoice-found] [--limit N] [--dry-run] [--json] [--dev]",
		Short: "Start failed runs again with the current config (after fixing a mapping, a lookup or an ERP setting)",
		Long: `retry starts a new run for each failed run of dealsync's task queue that
failed before any invoice was made (SyncStatus "failed": a mapping,
validation or ERP error), from the newest deal event the failed run
received (its first, or a later one of a connection whose runs settle),
exactly as the intake would start it now: with the current mapping, won stages and
retry policy. The new run has the same workflow ID, so its ERP writes keep
their idempotency keys; thin CRM events fetch the deal again. Each run
started (or listed by --dry-run) to invoice again (not with --writeback,
whose runs map nothing) names the mapping and hash the new run uses, the one this config gives the connection, with a WARNING line when
it differs from the failed run's (its memo), and another when the retry
policy, activity timeout, external calls, settle time, linger or ERP
target the failed run was started with differ from this config's (naming
the key, its variable and both values): run it with the workers' config and
DEALSYNC_* environment, unless the change is the fix.

A reset in the Temporal Web UI replays the run's own input instead, which
pins the mapping file the run started with: a run that failed on its
mapping fails again.

With --timed-out it also selects runs that timed out (workflow.run_timeout,
e.g. an ERP down for longer) while still "pending". Such a run may have had
its invoice created without hearing back: the new run's ERP writes keep
their idempotency keys, and the xero (with check_reference, its default),
quickbooks and netsuite targets look the invoice up first (by Reference,
DocNumber, external id), so the new run finds that invoice instead of making
a second one; so does the http target with lookup_invoices, and without it
(or xero without check_reference) only if the ERP honours its idempotency
key that long (the run's failure says which: look for the invoice in the
ERP first where it says a retry may make a second one).

With --terminated it also selects runs an operator terminated while still
"pending" (e.g. stuck in retries during an outage), with the same care, and
with --canceled runs an operator canceled (the Web UI's "Request
cancellation") while "pending" (before their invoice call was sent, or
between invoice attempts each refused before the ERP acted) or "failed"
(during their invoice call, which may have made the invoice: the new run
finds it where the target does, as above; or during any step, by a worker of
an earlier release). Runs of these endings that were past their
invoice ("invoiced", as a run canceled while it wrote its invoice back
ends; "writeback_failed" for one canceled so by a worker of an earlier
release) are listed too, skipped with the command that writes their
invoice back.

With --writeback it selects, instead, the runs whose invoice was created but
whose write-back to the CRM failed (SyncStatus "writeback_failed", e.g. a
missing CRM field, fixed since): each new run takes that invoice from the
failed run's history and only writes it back. No invoice is created again.
With --timed-out, --terminated or --canceled it also selects runs that
ended so after their invoice was made (SyncStatus "invoiced", e.g. a CRM
down for longer than workflow.run_timeout, or a run canceled while it wrote
its invoice back; "writeback_failed" for one canceled so by a worker of an
earlier release), unless their history shows the write-back done. A later run of the deal takes the write-back over only when
it is running, completed or has the invoice itself: one that ended without
it (a later delivery's run that failed on its mapping, say) does not.

With --writeback --completed it also selects the runs that completed with
the deal's invoice (SyncStatus "invoiced") and wrote nothing back because
their connection had no write-back when they started (it went live before
its write-back was set up), or the worker that ran their write-back step
had none (the step says so): each invoice is written back once, by a run of
its own workflow ID, writeback/<connection>/..., in place of invoice/...;
the deal's completed run stays as it is, and goes on keeping a later
delivery from invoicing the deal again. Skipped: a completed run that
wrote its invoice back, one whose write-back run is running or completed,
one whose write-back run failed (--writeback starts that one again), one
of a connection that still writes nothing back, and one started by hand
under another ID than its deal's. With --timed-out, --terminated or
--canceled too, it also writes back the runs that ended so after their
invoice with no write-back to do, under the deal's own ID (as --writeback
does for the runs of those endings); a deal's completed run and its
write-back run that ended so before writing back would start one
write-back run, listed once (the other row is skipped, naming it). Every
completed invoiced run is read: narrow them with --query (by Connection,
and StartTime before the write-back was set up). Upgrade the workers first
and give them the write-back: a worker without it leaves a new write-back
run to another worker, and fails its step, retried, when it has the run
already.

Skipped: runs that are not the latest of their workflow ID (a later webhook
started another; unless every later run only refused an older win), runs of
deals any of whose runs recorded their invoice (a full run would make it
again: --writeback writes it back), and runs of connections no longer in
the config. Also skipped, on a dry run too: a run whose failure says its
invoice may exist in the ERP (an invoice attempt got no answer, timed out,
got a gateway's 502 or a 2xx without the invoice's id, or the run was
canceled during it), unless the target the new run would use (this
config's) finds that invoice (xero with check_reference, quickbooks,
netsuite, http with lookup_invoices) and is the one the run was started
for: elsewhere the retry sends the invoice again, which makes a second
one unless the ERP still honours the idempotency key, and a new run for
another target does not search the ERP of the run's. The row names the
reference and the ERP to look in: look for
that invoice in the ERP, and if there is none, run the command again with
--no-invoice-found to retry it (if there is one, write it back by hand). Runs of deals that were no longer won ("skipped") are never
selected.

With --failure TYPE[,TYPE…] it keeps, of the failed runs selected, those
whose failure type (as runs list shows it: MappingError, ERPUnauthorized,
…) is one of those: once one cause is mended (an ERP's credentials
renewed, a mapping fixed), it restarts the runs that failed for it, not
those that failed for another reason. No search attribute holds the
type: each run the selection lists has its close event read for it (one
read), and the others are left out of the list printed. A run whose
failure cannot be read is listed with an error (exit status 1). A name
that is no failure type of dealsync is exit status 2, listing the types.
Runs that timed out, were terminated or were canceled have no failure
type: --failure with --timed-out, --terminated, --canceled or --completed
is exit status 2 (retry them in a command of their own); so is DealNotWon
(never retried), WriteBackFailed without --writeback, and another type
with --writeback (its runs all failed WriteBackFailed).

With --limit N it stops once N runs were started (with --dry-run: would be
started); the skipped runs and those that failed to start do not count. It
reads at most 100 × N failed runs (with --failure, those it leaves out
count too): when that many gave fewer than N started and more remain, it
stops with exit status 1, and --query can narrow the selection to the
others (e.g. by CloseTime).

Exit status: 0 every selected run was started or skipped for the reason
shown (or none was selected), 1 some could not be, 2 the config or a flag
is invalid.`,
		Example: `  dealsync runs retry --config dealsync.yaml --dry-run
  dealsync runs retry --config dealsync.yaml --query 'Connection = "shop"'
  dealsync runs retry --config dealsync.yaml --failure ERPUnauthorized --dry-run
  dealsync runs retry --config dealsync.yaml --writeback --completed --dry-run
  dealsync runs retry --dev          # against ` + "`dealsync dev`" + `'s server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Limit < 0 {
				return usageError(cmd, fmt.Errorf("--limit %d: give a number of runs, or 0 for all", o.Limit))
			}
			if o.NoInvoiceFound && o.WriteBack {
				return usageError(cmd, errors.New("--no-invoice-found retries runs in full whose invoice may exist: a run of --writeback makes no invoice, so give it without --writeback"))
			}
			if o.Completed && !o.WriteBack {
				return usageError(cmd, errors.New("--completed selects completed runs to write their invoices back: give it with --writeback (a completed run is never run again in full)"))
			}
			if err := o.CheckQuery(); err != nil {
				return usageError(cmd, err)
			}
			var err error
			if o.Failure, err = failureFlag(cmd, failure); err != nil {
				return err
			}
			if err := o.CheckFailure(); err != nil {
				return usageError(cmd, err)
			}
			cfg, set, c, err := g.runsClient(cmd.Context(), dev)
			if err != nil {
				return err
			}
			defer c.Close()
			o.TaskQueue, o.Namespace = cfg.Temporal.TaskQueue, cfg.Temporal.Namespace
			o.KeyVar = cfg.KeyVar // the settings warning names the variables connector advice names
			results, err := rerun.Failed(cmd.Context(), c, set, startedBy(app.Starter(cfg, c, false), intake.OriginRunsRetry), o)
			if errors.Is(err, rerun.ErrInvalidQuery) || errors.Is(err, rerun.ErrInvalidFailure) {
				return usageError(cmd, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if results == nil {
					results = []rerun.Result{}
				}
				v := map[string]any{"query": o.Filter(), "runs": results}
				if len(o.Failure) > 0 {
					v["failure"] = o.Failure
				}
				writeJSON(out, v)
			} else {
				printRetries(out, o, results, err, slices.Sorted(maps.Keys(cfg.Connections)))
			}
			return exitFor(err, results, func(r rerun.Result) (string, string) { return r.WorkflowID, r.Error })
		},
	}
	f := retry.Flags()
	f.StringVar(&o.Query, "query", "", "Temporal list filter narrowing the failed runs, e.g. 'Connection = \"shop\"'")
	f.StringSliceVar(&failure, "failure", nil, "only the failed runs whose failure type is one of these, e.g. ERPUnauthorized or MappingError,ValidationError (as runs list shows it)")
	f.IntVar(&o.Limit, "limit", 0, "start at most this many runs again (0: all); skipped runs do not count, and at most 100 × N runs are read (those --failure leaves out too)")
	f.BoolVar(&o.DryRun, "dry-run", false, "list the runs that would be started, start nothing")
	f.BoolVar(&o.WriteBack, "writeback", false, "instead: the runs whose invoice was created but not written back; the new runs only write the invoice back")
	f.BoolVar(&o.Completed, "completed", false, "with --writeback: also the runs that completed with their invoice and wrote nothing back (their connection had no write-back when they started, or their worker had none)")
	f.BoolVar(&o.NoInvoiceFound, "no-invoice-found", false, "you looked in the ERP for the invoice of each selected run whose failure says it may exist there, and found none: retry those runs too where the target does not look invoices up or is another than the run's (skipped otherwise)")
	f.BoolVar(&o.TimedOut, "timed-out", false, "also runs that timed out (workflow.run_timeout), e.g. after a long ERP or CRM outage")
	f.BoolVar(&o.Terminated, "terminated", false, "also runs an operator terminated")
	f.BoolVar(&o.Canceled, "canceled", false, "also runs an operator canceled (the Web UI's \"Request cancellation\")")
	f.BoolVar(&dev, "dev", false, "use the config defaults of dealsync dev (its demo connection and sandbox target)")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	root.AddCommand(retry, newRunsListCmd(g))
	return root
}

// runsClient is what `runs retry` starts with: the config (with
// `dealsync dev`'s defaults when dev), its connections, and a client of
// its Temporal namespace, which the caller closes. Exit 1 when Temporal
// cannot be reached.
func (g *globalFlags) runsClient(ctx context.Context, dev bool) (*config.Config, *connections.Set, client.Client, error) {
	cfg, set, quiet, err := g.loadAndBuild(dev)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := dial(ctx, cfg, quiet)
	if err != nil {
		return nil, nil, nil, &exitError{code: 1, err: err}
	}
	return cfg, set, c, nil
}

// exitFor is the exit of a command that acted on many items: 1 with the
// error that stopped it, else 1 with the first item's error (failure says
// an item's name and error, "" for none), else success. The item's error
// is a CRM's or ERP's words (a trigger's failure quotes the deal): it is
// printed on one line, as in the table, no escape sequence of its
// reaching the terminal.
func exitFor[R any](err error, results []R, failure func(R) (name, msg string)) error {
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	for _, r := range results {
		if name, msg := failure(r); msg != "" {
			return &exitError{code: 1, err: fmt.Errorf("%s: %s", cell(name), oneLine(msg))}
		}
	}
	return nil
}

// printRetries prints the runs read and what was done with each, then a
// summary: how many were read and started again, or, on a dry run, would
// be ("1 failed runs, 0 started again" beside "skipped: dry run" read as
// nothing to retry). When Failed stopped with an error (stopErr: a
// listing failed, or --limit's reads ran out), which the command then
// prints and exits 1 with, the summary says so. When no run's connection
// is among the config's (configured), it says that the config may be the
// wrong one.
func printRetries(w io.Writer, o rerun.Options, results []rerun.Result, stopErr error, configured []string) {
	fmt.Fprintf(w, "runs: %s\n", o.Filter())
	if len(o.Failure) > 0 {
		fmt.Fprintf(w, "failure type: %s (the runs of other types are left out)\n", strings.Join(o.Failure, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	started := 0
	for _, r := range results {
		what := "started run " + r.NewRun
		if r.NewWorkflowID != "" {
			what = "started run " + r.NewRun + " of " + r.NewWorkflowID
		}
		switch {
		case r.Error != "":
			what = "ERROR " + r.Error
		case r.Skipped == dryRunSkip:
			what = "skipped: " + r.Skipped
			if r.NewWorkflowID != "" {
				what += " (would start a run of " + r.NewWorkflowID + ")"
			}
			started++
		case r.Skipped != "":
			what = "skipped: " + r.Skipped
		default:
			started++
		}
		if r.Mapping != "" {
			what += fmt.Sprintf(", mapping %s (hash %s)", r.Mapping, r.MappingHash)
		}
		if r.FailureType != "" {
			// a dry run's: what the run failed with (`runs list` and
			// --json give the message)
			what += ", failed with " + oneLine(r.FailureType)
		}
		// what may carry a run's failure message (the ERP's words, a
		// deal's values in them): on one line, no escape sequence of its
		// reaching the terminal.
		fmt.Fprintf(tw, "  %s\t%s\n", cell(r.WorkflowID), oneLine(what))
		if r.MappingWarning != "" {
			fmt.Fprintf(tw, "  \tWARNING %s\n", oneLine(r.MappingWarning))
		}
		if r.SettingsWarning != "" {
			fmt.Fprintf(tw, "  \tWARNING %s\n", oneLine(r.SettingsWarning))
		}
	}
	tw.Flush()
	// A write-back of a completed run's invoice starts a run of an ID
	// that may never have run.
	again := " again"
	if o.Completed {
		again = ""
	}
	done := fmt.Sprintf("%d started%s", started, again)
	if o.DryRun {
		done = fmt.Sprintf("%d would start%s", started, again)
	}
	// Failed runs, unless the selection takes timed-out, terminated or
	// canceled ones too.
	one, many := "failed run", "failed runs"
	if o.TimedOut || o.Terminated || o.Canceled || o.Completed {
		one, many = "run", "runs"
	}
	summary := plural(len(results), one, many) + ", " + done
	switch {
	case stopErr != nil:
		summary = "stopped before every selected run was read (the error follows): " + summary
	case o.Limit > 0 && started >= o.Limit:
		// More may be selected: the command stops reading at the limit.
		summary += fmt.Sprintf(" (--limit %d reached: the runs not read yet are left; run it again for them)", o.Limit)
	}
	fmt.Fprintln(w, summary)
	if len(results) > 0 && !slices.ContainsFunc(results, func(r rerun.Result) bool { return !r.Unconfigured }) {
		fmt.Fprintf(w, "none of these runs' connections is in the config read (it has %s): a run is started again with its connection's settings; give the config the runs were made with (--config)\n",
			wording.ListOrNone(configured))
	}
}

// plural is n and one or many, as n asks: "1 failed run", "2 failed runs",
// "0 failed runs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// startedBy is starter with origin as what its runs' details in the Web
// UI say started them (`runs retry`, `deals sync`).
func startedBy(starter *intake.TemporalStarter, origin string) *intake.TemporalStarter {
	starter.Origin = origin
	return starter
}
