package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/bench"
	"github.com/dealsync/dealsync/config"
)

func newBenchCmd(g *globalFlags) *cobra.Command {
	var (
		o         bench.Options
		baselines string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure webhook acknowledgement, invoices/s, exactly-once, memory and CPU",
		Long: `bench starts the dev stack in this process on a fresh temporary data dir
(SQLite file, free ports, no Web UI, no metrics endpoint), sends N distinct
signed closed-won webhooks (plus a share of non-triggering ones) at the
given concurrency or rate, waits for the invoices in the sandbox ERP and
reports: acknowledgement throughput and latency, end-to-end invoices/s,
invoices lost, duplicated and unexpected (all must be 0), history events per
invoice, RSS and CPU per invoice. The --connection must send its invoices to
the sandbox ERP (the dev config's demo does): bench refuses any other, which
would create real invoices, and one the config does not have (exit 2). It
refuses as well a connection whose source is not generic (the deliveries
are the generic source's), and one whose mapping, tried on a bench deal,
does not make invoice.reference exactly the deal id (a prefix such as
"DS-" + deal.id is refused): bench finds each deal's invoices in the
sandbox ERP by that reference. With --intake-url the mapping cannot be
checked: runs that made invoices under another reference are reported
unmatched (not lost) and the run is inconclusive (exit 3). The deliveries are signed with the connection's own
source.secret from the config (DEALSYNC_CONNECTIONS_<NAME>_SOURCE_SECRET
included), unless --secret is given.

In the same run it drives a bare workflow with no-op steps on the same
Temporal server (eager start) and reports dealsync's throughput as a ratio
of it. The default baseline, local, has 4 no-op local activities, InvoiceDeal's
recorded steps, of which 2 stand for the external calls (customer, invoice)
and 2 for the pure steps (map, validate); calls has the 2 external calls
alone.

With --intake-url and --sandbox-url it targets a running dealsync instead
(--pid for its memory and CPU, --temporal-address for history sizes, the
baseline, and to tell a lost invoice from one still coming: the final check
looks up the run of each acknowledged deal without an invoice; the
baseline's worker and client then run in this process, so its CPU is this
process's plus --pid's, and its RSS is not given); it cannot see
that dealsync's config, so point it only at one whose --connection invoices
the --sandbox-url with the deal id as invoice.reference, and give --secret
unless that connection takes the dev secret (dealsync dev's demo).

After all rounds a final check lists every round's invoices again, counts
the runs still open, and looks up in Temporal the run of each acknowledged
closed-won deal without an invoice: lost if no run was started for it or its
run closed without one, pending while it runs or if it could not be looked
up (no --temporal-address, or the run was stopped first). Exit status: 0 every closed-won deal acknowledged and
invoiced exactly once, no run left open (unknown without Temporal access);
1 exactly-once violated (an invoice
lost, duplicated or unexpected), or an error; 2 a usage error; 3
inconclusive (stopped by --timeout or Ctrl-C, or runs still open or their
state unknown: invoices may still come); 4 closed-won deliveries not
acknowledged (refused, or 5xx/429 beyond --retries: a wrong --secret or
--connection, an intake that is down).

Every wait is bounded: the phases, the final check's waits and lookups of
runs, and the history samples (60 s in all, for every phase) stop at
--timeout (or Ctrl-C). After that the round under way lists its invoices,
and the final check lists them again and counts the runs, without waiting
for anything, looking up runs or reading histories: normally a moment; each
listing is bounded at 30 s and each count at 10 s, so at worst about 1.5
minutes more.`,
		Example: `  dealsync bench                          # N=2000, concurrency 50, baseline local
  dealsync bench -n 500 --rate 100        # acknowledgement latency at 100 webhooks/s
  dealsync bench --error-rate 0.05 --rate-limit-rate 0.05
  go build -o /tmp/dealsync-bench ./cmd/dealsync && /tmp/dealsync-bench bench --cpuprofile /tmp/cpu.out && go tool pprof -top /tmp/dealsync-bench /tmp/cpu.out`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if baselines != "auto" && baselines != "none" && baselines != "" {
				o.Baselines = strings.Split(baselines, ",")
			}
			if o.IntakeURL == "" && o.SandboxURL == "" {
				cfg, err := g.load(config.WithDevDefaults())
				if err != nil {
					return err
				}
				o.Config = cfg
			}
			// A value the run cannot honour is refused before anything
			// starts, not turned into a default: the flags, their
			// combinations and (in-process) the --connection, which
			// the config must have, invoicing the sandbox ERP with the
			// deal id as reference, and its secret without --secret.
			if err := o.Check(); err != nil {
				return usageError(cmd, err)
			}
			if baselines == "auto" && o.Rate <= 0 {
				// local: the fastest form of the same steps, the one the
				// throughput target compares with; full: the same steps
				// with the ERP calls as regular activities, added when the
				// stack runs them so (workflow.external_calls: activity).
				o.Baselines = []string{bench.BaselineLocal}
				if o.Config != nil && o.Config.Workflow.ExternalCalls == "activity" {
					o.Baselines = append(o.Baselines, bench.BaselineFull)
				}
			}
			o.Progress = os.Stderr
			rep, err := bench.Run(cmd.Context(), o)
			if rep != nil {
				if asJSON {
					writeJSON(os.Stdout, rep)
				} else {
					rep.WriteTable(os.Stdout)
				}
			}
			if err != nil {
				return err
			}
			return benchExit(rep)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.N, "deals", "n", 2000, "closed-won deals to send (each must become exactly one invoice)")
	f.IntVarP(&o.Concurrency, "concurrency", "c", 50, "webhooks in flight at most (and baseline starts in flight)")
	f.Float64Var(&o.NonTriggerShare, "non-trigger", 0.1, "extra share of non-triggering webhooks (0.1 = 10% of N)")
	f.Float64Var(&o.Rate, "rate", 0, "send at this many webhooks/s (0 = as fast as --concurrency allows); latency counts from each send's slot")
	f.DurationVar(&o.Timeout, "timeout", 4*time.Minute, "bound on the run: its phases, the final check's waits and the history samples (after it only the final check's listings and counts run: normally a moment, at worst about 1.5 minutes)")
	f.DurationVar(&o.Settle, "settle", 60*time.Second, "stop waiting for invoices, or for a baseline's runs, after this long without a new one; bound on the wait for runs to close")
	f.IntVar(&o.Retries, "retries", 3, "retries of a webhook answered 5xx/429 or not at all (same webhook-id, as a CRM does; 0 = one attempt)")
	f.StringVar(&o.LogLevel, "log-level", "", "log level of the in-process stack (default: the config's); the log goes to dealsync.log in the data dir")
	f.BoolVar(&o.KeepDataDir, "keep", false, "keep the temporary data dir (SQLite file and log)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the dealsync phase (in-process) to this file, and of each baseline to FILE.baseline-<variant>; later rounds add .r<N> (give go tool pprof all of them)")
	f.StringVar(&o.IntakeURL, "intake-url", "", "intake of a running dealsync (e.g. http://127.0.0.1:8080) instead of the in-process stack")
	f.StringVar(&o.SandboxURL, "sandbox-url", "", "its sandbox ERP (e.g. http://127.0.0.1:8090)")
	f.IntVar(&o.PID, "pid", 0, "pid of the running dealsync, for its RSS and CPU")
	f.StringVar(&o.TemporalAddress, "temporal-address", "", "its Temporal frontend, for history sizes, run completion and the baseline")
	f.StringVar(&o.Namespace, "namespace", "default", "Temporal namespace of --temporal-address")
	f.StringVar(&o.TaskQueue, "task-queue", "dealsync", "dealsync's task queue on --temporal-address")
	f.StringVar(&o.Connection, "connection", "demo", "connection to send to (in-process: its target must be the sandbox ERP)")
	f.StringVar(&o.Secret, "secret", "", "the connection's Standard Webhooks secret (default: in-process, the connection's source.secret in the config; with --intake-url, the dev secret of dealsync dev's demo)")
	f.Float64Var(&o.ErrorRate, "error-rate", 0, "fraction of ERP calls the sandbox answers 503 (in-process)")
	f.Float64Var(&o.RateLimitRate, "rate-limit-rate", 0, "fraction of ERP calls the sandbox answers 429 (in-process)")
	f.DurationVar(&o.RetryAfter, "retry-after", time.Second, "Retry-After of the sandbox's 429 and 503 answers")
	f.StringVar(&baselines, "baseline", "auto", "baseline variants, comma-separated: local (4 local activities: the map, validate, customer and invoice steps), calls (2 local activities: the ERP calls alone), full (2 local + 2 activities), acts (2 activities); none; auto = local, plus full when workflow.external_calls is activity; none with --rate")
	f.IntVar(&o.BaselineN, "baseline-n", 0, "runs per baseline variant (default N: only phases of the same size compare)")
	f.IntVar(&o.Rounds, "rounds", 0, "split N and --baseline-n into this many rounds of dealsync then each baseline, interleaved (default 3; 1 with --rate)")
	f.IntVar(&o.HistorySample, "history-sample", 200, "runs whose history is read for the events-per-invoice figure (0 = none)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// benchExit is the exit status of a bench run's verdict (see the command's
// help): an inconclusive run and undelivered webhooks are not an
// exactly-once violation, and a script must be able to tell them apart.
func benchExit(rep *bench.Report) error {
	switch rep.Verdict {
	case bench.VerdictPass:
		return nil
	case bench.VerdictInconclusive:
		return &exitError{code: 3, err: fmt.Errorf("inconclusive: %s", rep.VerdictReason)}
	case bench.VerdictUndelivered:
		return &exitError{code: 4, err: fmt.Errorf("undelivered: %s", rep.VerdictReason)}
	default:
		return &exitError{code: 1, err: fmt.Errorf("exactly-once violated: %s", rep.VerdictReason)}
	}
}
