package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/backfill"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/wording"
)

func newDealsCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "deals", Short: "Work with the deals of a CRM connection"}
	var o backfill.Options
	var connection, since, until string
	var dev, asJSON bool
	sync := &cobra.Command{
		Use:   "sync --connection NAME --since DATE [--until DATE] [--account ID]... [--dry-run] [--json] [--dev]",
		Short: "Start the runs of the deals the CRM lists as won in a period that have none (a first sync, or webhooks the CRM gave up on)",
		Long: `sync asks the connection's CRM for the deals that are won now and that
changed in [--since, --until): HubSpot and Salesforce deals last modified then
(hs_lastmodifieddate, SystemModstamp), Pipedrive deals won then (won_time);
and starts a run for each that has none, or whose latest run failed, timed
out, was terminated or was canceled before making its invoice: as if the
CRM had sent a "won" webhook now. The run reads the deal, checks that it is
still won and invoices it under the deal's own workflow ID. Deals with a
running or completed run are skipped, and so are those whose run ended
after making the invoice (` + "`dealsync runs retry --writeback`" + `, with
--timed-out, --terminated or --canceled for the runs that ended so, writes
those back), and those any of whose runs recorded an invoice (SyncStatus
invoiced or writeback_failed; a run stopped between its invoice and that
record is seen only when it is the latest).

The period is not the deals' close date alone: that is the rep's
forecast, which Salesforce and HubSpot keep when the deal is won, so a deal
won during an outage may have one after the period (in the future). A deal
is modified when it is won, so it is listed, unless it was modified again
after --until (leave --until out to recover an outage: the period then has
no end) or its close date is before the period (back-dated; HubSpot and
Salesforce allow a day's margin): a deal closed long ago and only edited in
the period is not listed, as it may have been invoiced by hand before the
connection went live. Run --dry-run first and check the deals it lists.

Use it when a connection goes live after deals were won, and after an outage
long enough for the CRM to give up delivering webhooks (HubSpot retries for
about a day). Sources:
  hubspot     the CRM search API: hs_lastmodifieddate in the period, a
              closedate from the day before it on, closed won by HubSpot's
              rule, or in a stage of won_stages; paged by deal id. Without
              --until, hs_lastmodifieddate from --since on, with no end, so
              deals modified while it reads are not skipped
  salesforce  a SOQL query: SystemModstamp in the period (whole seconds,
              UTC), a CloseDate from the day before it on (picked in the
              rep's zone), IsWon, or a StageName of won_stages
  pipedrive   the won deals updated since --since, kept when won_time is in
              the period; at most 100,000 of them

Exit status: 0 every deal was started or skipped, 1 some could not be (or
the listing failed), 2 the config or the options are invalid.`,
		Example: `  dealsync deals sync --config dealsync.yaml --connection hubspot-eu --since 2026-11-01 --dry-run
  dealsync deals sync --config dealsync.yaml --connection hubspot-eu --since 2026-11-20 --until 2026-11-27`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := syncPeriod(&o, since, until, time.Now().UTC()); err != nil {
				return err
			}
			cfg, set, quiet, err := g.loadAndBuild(dev)
			if err != nil {
				return err
			}
			conn, ok := set.Get(connection)
			if !ok {
				return usage("--connection %q: no such connection (the config has %s)", connection, wording.ListOrNone(set.Names()))
			}
			if err := backfill.CanSync(conn); err != nil {
				return usage("%v", err)
			}
			if len(o.Accounts) > 0 {
				if _, err := backfill.AccountKeys(conn, o.Accounts); err != nil {
					return usage("--account: %v", err)
				}
			}
			c, err := dial(cmd.Context(), cfg, quiet)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer c.Close()
			results, err := backfill.Sync(cmd.Context(), c, conn, startedBy(app.Starter(cfg, c, false), intake.OriginDealsSync), o)
			out := cmd.OutOrStdout()
			if asJSON {
				// open_ended: no --until; HubSpot then listed past until (the
				// sync's start), the others up to it.
				if results == nil {
					results = []backfill.Result{}
				}
				writeJSON(out, map[string]any{"connection": connection, "since": o.Since, "until": o.Until, "open_ended": o.OpenEnded, "deals": results})
			} else {
				printSync(out, results, o.DryRun, err)
			}
			return exitFor(err, results, func(r backfill.Result) (string, string) { return "deal " + r.DealID, r.Error })
		},
	}
	f := sync.Flags()
	f.StringVar(&connection, "connection", "", "the connection whose CRM is asked (required)")
	f.StringVar(&since, "since", "", "the start of the period in which the deals were last modified (Pipedrive: won): 2026-11-01, a UTC day, or a time in RFC 3339")
	f.StringVar(&until, "until", "", "the end of the period, excluded (default: none: HubSpot lists the deals modified up to when it reads them, Salesforce and Pipedrive up to now; a deal modified again after it is not listed)")
	f.StringSliceVar(&o.Accounts, "account", nil, "only these CRM accounts (HubSpot portal, Salesforce org or Pipedrive company ids; default: every account of the connection)")
	f.BoolVar(&o.DryRun, "dry-run", false, "list the won deals and what would be done, start nothing")
	f.BoolVar(&dev, "dev", false, "use the config defaults of dealsync dev")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	_ = sync.MarkFlagRequired("connection")
	root.AddCommand(sync)
	return root
}

// syncPeriod reads --since and --until into o. Without --until the period
// has no end (o.OpenEnded): o.Until is now, where the sources that cannot
// list without an end stop (Salesforce, Pipedrive); HubSpot lists the
// deals modified up to when it reads them, so that a won deal modified
// while the listing runs is not left out.
func syncPeriod(o *backfill.Options, since, until string, now time.Time) error {
	var err error
	if since == "" {
		return usage("--since: a date (2026-11-01) or a time (2026-11-01T08:00:00Z) is required")
	}
	if o.Since, err = parseDay(since); err != nil {
		return usage("--since: %v", err)
	}
	o.Until, o.OpenEnded = now, until == ""
	if until != "" {
		if o.Until, err = parseDay(until); err != nil {
			return usage("--until: %v", err)
		}
	}
	if !o.Since.Before(o.Until) {
		if o.OpenEnded {
			return usage("--since %s is not before now (%s): give a time past", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
		}
		return usage("--since %s is not before --until %s", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	}
	return nil
}

// parseDay reads a date (midnight UTC) or an RFC 3339 time.
func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (2026-11-01) nor a time (2026-11-01T08:00:00Z)", s)
}

// printSync prints the deals listed and what was done with each, then a
// summary: how many were listed and started (on a dry run, would be). When
// the listing failed (listErr, which the command then prints and exits 1
// with), the summary says so: "0 won deals, 0 runs started" read as
// nothing to do while the CRM was not even reached.
func printSync(w io.Writer, results []backfill.Result, dryRun bool, listErr error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	started := 0
	for _, r := range results {
		what := "started run " + r.NewRun
		switch {
		case r.Error != "":
			what = "ERROR " + r.Error
		case r.Skipped == dryRunSkip:
			what = "skipped: " + r.Skipped
			started++
		case r.Skipped != "":
			what = "skipped: " + r.Skipped
		default:
			started++
		}
		existing := r.Existing
		if existing == "" {
			existing = "no run"
		}
		// The stage and the errors are the CRM's words (a trigger's
		// failure quotes the deal): on one line, no escape sequence of
		// theirs reaching the terminal.
		fmt.Fprintf(tw, "  %s\t%s\tclosed %s\t%s\t%s\n", cell(r.WorkflowID), cell(r.Stage), cell(r.CloseDate), oneLine(existing), oneLine(what))
	}
	tw.Flush()
	done := plural(started, "run started", "runs started")
	if dryRun {
		done = fmt.Sprintf("%d would start a run", started)
	}
	summary := plural(len(results), "won deal", "won deals") + ", " + done
	switch {
	case listErr != nil && len(results) == 0:
		summary = "listing the won deals failed (the error follows): none listed, nothing done"
	case listErr != nil:
		summary = "listing the won deals failed (the error follows): " + plural(len(results), "won deal", "won deals") +
			" listed, " + done + "; others may be missing"
	}
	fmt.Fprintln(w, summary)
}

// dryRunSkip is Result.Skipped of a deal or run a dry run would have
// started (backfill's and rerun's).
const dryRunSkip = "dry run"
