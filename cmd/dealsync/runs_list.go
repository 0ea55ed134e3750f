package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/rerun"
)

func newRunsListCmd(g *globalFlags) *cobra.Command {
	var o rerun.ListOptions
	var dev, asJSON bool
	var failure []string
	list := &cobra.Command{
		Use:   "list [--query FILTER] [--failure TYPE[,TYPE…]] [--limit N] [--json] [--dev]",
		Short: "List the runs of dealsync's task queue that match a filter, as the Web UI's run list does",
		Long: `list prints the runs of dealsync's task queue (temporal.task_queue) that
match --query, a filter as the Temporal Web UI's run list takes it (the
filters of docs/operations.md, "Finding runs"), in Temporal's order (running
runs first, then the last closed first): by default every run of the
namespace on that task queue. A table of the workflow ID,
execution status, SyncStatus, ErpInvoiceId, start time and mapping (the
memo's name and hash), each run that failed or was terminated followed by
an indented line of its failure's type and message (a terminated run's
reason) on one line, cut to 120 characters: a longer message leaves out
first the DEALSYNC_ variables that connector advice names beside config
keys, then its middle, keeping its innermost cause (what follows its last
": " before any "; ", "…: connection refused"), or else its end,
and an ERPTargetMismatch is said short, both targets' names and
the settings they differ in (connection "shop": this worker's target is
"books", the run's is "books" (other tenant_id)); each completed run
whose ERP noticed something about the invoice it made (its total
differs) is followed by "warning: " and that warning from the run's
memo, cut alike (runs completed before this release show none); each
run that failed, was terminated, timed out or was canceled, of whose
workflow ID a later run exists (runs retry started one), by "superseded
by a later run (completed, invoiced, closed TIME)": the newest one's
status, SyncStatus and close or start time (superseded in --json), read
with one run-list filter for all of them (WorkflowId IN (…)), as the old
run keeps its SyncStatus;
with --json each run's
workflow ID, run ID, workflow type, execution status, start and close
times, dealsync's search attributes, the memo's mapping and hash, and
failure_type and failure_message (or warning) whole. The failures are
read from the runs' close events, one read per failed or terminated run
listed (no other closed run is read); one that cannot be read is noted
(failure_read_error) and does not stop the list. A running run whose workflow task fails again and again (a worker
without its connection refuses it) is followed by a line saying so, with
the attempt (workflow_task_attempt) and the message of its last
WorkflowTaskFailed event, its first line (workflow_task_failure), read
from the end of its history: each running run listed is described once,
and one whose task fails has at most two pages of its history read. A
running run whose step is retried (an ERP that does not answer, a worker
that refuses the step for another ERP target) is followed by
"retrying STEP step, attempt N: " and the first line of its last
attempt's failure (retrying in --json: step, attempt, type, message): a
pending activity's (external_calls: activity), from the describe, or else
the last failed call the end of its history tells (a local call whose
back-off became a timer, an invoice attempt made one at a time), at most
two pages read per running run, each given 10 s; the attempt is left out
when the step's attempts were made one at a time further back than those
pages. A local call retried within a worker's
workflow task (its back-off under 10 s) is not in the history yet: the
row says nothing of it. Runs that timed out or were canceled have
nothing more to say than their status.

It prints at most --limit runs (default 50, at most 1000), and says when
more may match: narrow --query (e.g. by StartTime) to see the others.

With --failure TYPE[,TYPE…] it lists the failed runs (ExecutionStatus
"Failed") whose failure type is one of those (MappingError,
ERPUnauthorized, …: the types of the table's failure lines), and those
whose failure could not be read (they may be of them). No search
attribute holds the type: the failed runs --query selects are read 100 a
page, each one's close event read, until --limit runs are kept or
100 × --limit were read (then it says that more may match). Runs that
timed out, were terminated or were canceled have no failure type, and
are not listed with --failure. A name that is no failure type of
dealsync is exit status 2, listing the types.

Exit status: 0 listed (none matching included), 1 Temporal could not be
asked (or its namespace lacks dealsync's search attributes, which the
filter names: dealsync config check --temporal prints the commands that
register them), 2 the config, --query, --failure or --limit is invalid. Of the config only
temporal.*, dev.* and log.* must be valid: its mapping files are not
compiled, nor its other secrets resolved, nor its connections built, so a
mapping being edited, a secret this shell lacks, a connection's mistake or
a DEALSYNC_ variable naming a section it does not read
(DEALSYNC_CONNECTIONS_SHOP, which the other commands refuse) does not keep
the runs from being listed. Such problems are named on stderr as warnings
(a misplaced key among them, such as a temporal block indented under
connections, which leaves temporal.* at its defaults).`,
		Example: `  dealsync runs list --config dealsync.yaml --query 'SyncStatus = "failed"'
  dealsync runs list --config dealsync.yaml --query 'DealId = "D-1001"' --json
  dealsync runs list --config dealsync.yaml --failure ERPUnauthorized,CRMUnauthorized
  dealsync runs list --dev --limit 10    # against ` + "`dealsync dev`" + `'s server`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Limit < 1 || o.Limit > rerun.MaxListLimit {
				return usageError(cmd, fmt.Errorf("--limit %d: give a number of runs from 1 to %d", o.Limit, rerun.MaxListLimit))
			}
			if err := o.CheckQuery(); err != nil {
				return usageError(cmd, err)
			}
			var err error
			if o.Failure, err = failureFlag(cmd, failure); err != nil {
				return err
			}
			// The list needs the Temporal settings alone: a connection
			// that cannot be built, a mapping file being edited or a
			// secret this shell lacks does not keep operators from their
			// runs.
			cfg, err := g.loadFor(dev, config.TemporalOnly())
			if err != nil {
				return err
			}
			warnSkipped(cfg.Skipped())
			c, err := dial(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer c.Close()
			o.TaskQueue, o.Namespace = cfg.Temporal.TaskQueue, cfg.Temporal.Namespace
			runs, more, err := rerun.List(cmd.Context(), c, o)
			switch {
			case errors.Is(err, rerun.ErrInvalidQuery):
				return usageError(cmd, err)
			case err != nil:
				return &exitError{code: 1, err: fmt.Errorf("listing runs: %w", err)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if runs == nil {
					runs = []rerun.Run{}
				}
				v := map[string]any{"query": o.Filter(), "runs": runs, "more": more}
				if len(o.Failure) > 0 {
					v["failure"] = o.Failure
				}
				writeJSON(out, v)
			} else {
				printRuns(out, o, runs, more)
			}
			return nil
		},
	}
	f := list.Flags()
	f.StringVar(&o.Query, "query", "", "Temporal list filter, as the Web UI takes it, e.g. 'SyncStatus = \"failed\"' (default: every run of the task queue)")
	f.StringSliceVar(&failure, "failure", nil, "only the failed runs whose failure type is one of these, e.g. ERPUnauthorized or MappingError,ValidationError")
	f.IntVar(&o.Limit, "limit", 50, fmt.Sprintf("list at most this many runs (1 to %d)", rerun.MaxListLimit))
	f.BoolVar(&dev, "dev", false, "use the config defaults of dealsync dev (its demo connection and sandbox target)")
	f.BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return list
}

// printRuns prints the listed runs as a table, each run that failed or
// was terminated followed by an indented line of its failure: its type
// and message on one line, shortened to failureWidth characters
// (listMessage).
func printRuns(w io.Writer, o rerun.ListOptions, runs []rerun.Run, more bool) {
	fmt.Fprintf(w, "runs: %s\n", o.Filter())
	if len(o.Failure) > 0 {
		fmt.Fprintf(w, "failure type: %s\n", strings.Join(o.Failure, ", "))
	}
	cut := false
	if len(runs) > 0 {
		// The table's rows, aligned as a whole, then each with its
		// failure line: a line of its own in the tabwriter would align
		// the rows above and below it apart.
		var table bytes.Buffer
		tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKFLOW ID\tSTATUS\tSYNCSTATUS\tERPINVOICEID\tSTARTED\tMAPPING")
		for _, r := range runs {
			mapping := orDash(r.Mapping)
			if r.MemoEncrypted && r.Mapping == "" {
				mapping = "(encrypted)"
			}
			if r.MappingHash != "" {
				mapping += " (" + r.MappingHash + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(r.WorkflowID), r.ExecutionStatus, cell(orDash(r.SyncStatus)),
				cell(orDash(r.ErpInvoiceID)), r.StartTime.UTC().Format(time.RFC3339), cell(mapping))
		}
		tw.Flush()
		rows := strings.SplitAfter(table.String(), "\n") // the header, a row per run, ""
		io.WriteString(w, rows[0])
		for i, r := range runs {
			io.WriteString(w, rows[i+1])
			line, truncated := failureLine(r)
			if line != "" {
				fmt.Fprintf(w, "    %s\n", line)
			}
			if line := supersededLine(r); line != "" {
				fmt.Fprintf(w, "    %s\n", line)
			}
			cut = cut || truncated
		}
	}
	switch {
	case more && len(o.Failure) > 0 && len(runs) < o.Limit:
		// The reads ran out before the limit.
		fmt.Fprintf(w, "%s of these failure types among the %d failed runs read, the most --limit %d reads with --failure: more may match (narrow --query, e.g. by StartTime)\n", plural(len(runs), "run", "runs"), rerun.FailureReads(o.Limit), o.Limit)
	case more:
		fmt.Fprintf(w, "%s, as many as --limit allows: more may match (narrow --query, or raise --limit up to %d)\n", plural(len(runs), "run", "runs"), rerun.MaxListLimit)
	case len(runs) == 1:
		fmt.Fprintln(w, "1 run")
	default:
		fmt.Fprintf(w, "%d runs\n", len(runs))
	}
	if cut {
		fmt.Fprintf(w, "failure messages cut to %d characters (…): --json gives them whole\n", failureWidth)
	}
	encrypted := 0
	for _, r := range runs {
		if r.MemoEncrypted {
			encrypted++
		}
	}
	if n := encrypted; n > 0 {
		fmt.Fprintf(w, "%s stored encrypted (temporal.encryption): give this command the keys its workers have to see the mapping and warning\n",
			plural(n, "run's memo is", "runs' memos are"))
	}
}

// supersededLine is the table's line of a run that a later run of its
// workflow ID superseded (rerun.Run.Superseded), "" for another:
// "superseded by a later run (completed, invoiced, closed 2026-12-07T17:30:00Z)",
// "… (running, pending, started …)".
func supersededLine(r rerun.Run) string {
	s := r.Superseded
	if s == nil {
		return ""
	}
	what := []string{strings.ToLower(s.ExecutionStatus)}
	if s.SyncStatus != "" {
		what = append(what, oneLine(s.SyncStatus))
	}
	if s.CloseTime != nil {
		what = append(what, "closed "+s.CloseTime.UTC().Format(time.RFC3339))
	} else {
		what = append(what, "started "+s.StartTime.UTC().Format(time.RFC3339))
	}
	return "superseded by a later run (" + strings.Join(what, ", ") + ")"
}

// failureWidth is the most characters of a failure's message the table
// shows.
const failureWidth = 120

// failureLine is the table's line of a run's failure, "" when it has
// none: "MappingError: mapping …", "terminated: reason (by identity)",
// "workflow task failing, attempt N: connection …" (its last
// WorkflowTaskFailed event's message, or, unread, what may cause it),
// "retrying invoice step, attempt N: ERP unreachable: …" (the last failure
// of the step a running run retries, Run.Retrying),
// its message made one line and shortened to failureWidth characters
// (listMessage: cut says so); or why it could not be read.
func failureLine(r rerun.Run) (line string, cut bool) {
	switch {
	case r.WorkflowTaskAttempt > 1 && r.WorkflowTaskFailure != "":
		// The last WorkflowTaskFailed event's message says why.
		line = fmt.Sprintf("workflow task failing, attempt %d: ", r.WorkflowTaskAttempt)
		return line + listMessage("", r.WorkflowTaskFailure, &cut), cut
	case r.WorkflowTaskAttempt > 1:
		return fmt.Sprintf("workflow task failing, attempt %d: a worker refuses the run (it lacks its connection) or its code fails; its page in the Web UI shows WorkflowTaskFailed", r.WorkflowTaskAttempt), false
	case r.WaitingForWorker != "":
		return oneLine(r.WaitingForWorker), false
	case r.Retrying != nil && r.Retrying.Message != "":
		// The step's last attempt failed: the run waits to retry it.
		line = "retrying " + oneLine(r.Retrying.Step) + " step"
		if r.Retrying.Attempt > 0 {
			line += fmt.Sprintf(", attempt %d", r.Retrying.Attempt)
		}
		return line + ": " + listMessage(r.Retrying.Type, r.Retrying.Message, &cut), cut
	case r.Warning != "":
		// A completed run's: the invoice is made, the ERP's differs.
		return "warning: " + listMessage("", r.Warning, &cut), cut
	case r.FailureReadError != "":
		return "failure not read: " + oneLine(r.FailureReadError), false
	case r.FailureType == "" && r.FailureMessage == "":
		return "", false
	}
	label := r.FailureType
	if label == "" {
		label = strings.ToLower(r.ExecutionStatus) // a terminated run's reason
	}
	msg := listMessage(r.FailureType, r.FailureMessage, &cut)
	if msg == "" {
		return oneLine(label), false
	}
	return oneLine(label) + ": " + msg, cut
}

// listMessage is a failure's message of type typ as the table shows it,
// on one line and at most failureWidth characters, setting *cut when it
// is not whole. A longer one keeps what says what to do first:
// an ERPTargetMismatch is said short (shortTargetMismatch: both targets'
// names and which of their settings differ, which the whole message
// names only after both targets' settings); the DEALSYNC_ variables that
// connector advice names beside config keys ("(or DEALSYNC_…)") are left
// out, the keys kept; then what is still too long is cut, keeping its
// innermost cause (rerun.CutKeepingCause). A message shortened so ends with an
// ellipsis, even when what is left fits.
func listMessage(typ, msg string, cut *bool) string {
	line := oneLine(msg)
	if len([]rune(line)) <= failureWidth {
		return line
	}
	*cut = true
	short, ok := "", false
	if typ == activities.ErrTypeTargetMismatch {
		short, ok = shortTargetMismatch(msg) // read before oneLine: names keep their spaces
	}
	if !ok {
		short = varAside.ReplaceAllString(line, "")
	}
	return rerun.CutKeepingCause(short, failureWidth)
}

// varAside is a variable named beside a config key in connector advice
// (connectors.Keys.Key): "targets.qbo.realm_id (or DEALSYNC_TARGETS_QBO_REALM_ID)".
var varAside = regexp.MustCompile(` \(or ` + config.EnvPrefix + `_[^\s()]*\)`)

// shortTargetMismatch is an ERPTargetMismatch's message
// (activities.ParseTargetMismatch) in short, on one line: `connection
// "shop": this worker's target is "books", the run's is "books" (other
// tenant_id)`, the run's being the one it was started for, and the
// settings named those whose values differ (or that one of the targets
// lacks), "other settings" when the descriptions do not show them apart;
// false for another message. msg is read as the failure has it, so that
// the names, quoted again, are as written (oneLine would make two spaces
// in them one).
func shortTargetMismatch(msg string) (string, bool) {
	m, ok := activities.ParseTargetMismatch(msg)
	if !ok {
		return "", false
	}
	here, hereShown, ok1 := connectors.ParseDescription(m.Here)
	pinned, pinnedShown, ok2 := connectors.ParseDescription(m.Pinned)
	if !ok1 || !ok2 {
		return "", false
	}
	// Quoted (strconv.Quote), a name is on one line, its control
	// characters escaped.
	whose := "connection " + strconv.Quote(m.Connection)
	if m.Account != "" {
		whose += ", account " + strconv.Quote(m.Account)
	}
	short := fmt.Sprintf("%s: this worker's target is %q, the run's is %q", whose, here, pinned)
	keys := differingSettings(hereShown, pinnedShown)
	for i, k := range keys {
		keys[i] = oneLine(k)
	}
	switch {
	case len(keys) > 0:
		short += " (other " + strings.Join(keys, ", ") + ")"
	case here == pinned:
		// Fingerprints differ by what the descriptions do not show.
		short += " (other settings)"
	}
	return short, true
}

// differingSettings are the keys of the settings two target descriptions
// show (connectors.ParseDescription: the type, then "key value") whose
// values differ or that one lacks, in a's order then b's.
func differingSettings(a, b []string) []string {
	values := func(shown []string) (keys []string, byKey map[string]string) {
		byKey = map[string]string{}
		for i, s := range shown {
			key, value, _ := strings.Cut(s, " ")
			if i == 0 {
				key, value = "type", s
			}
			keys, byKey[key] = append(keys, key), value
		}
		return keys, byKey
	}
	aKeys, aVals := values(a)
	bKeys, bVals := values(b)
	var out []string
	for _, k := range aKeys {
		if v, ok := bVals[k]; !ok || v != aVals[k] {
			out = append(out, k)
		}
	}
	for _, k := range bKeys {
		if _, ok := aVals[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// oneLine is s on one line: its line breaks and other control characters
// (a terminal's escape sequences among them) as spaces, its runs of
// spaces as one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)), " ")
}

// cell is s as a table's cell: quoted when it has a control character (a
// line break would break the table's rows apart, an escape sequence
// reach the terminal) or is not UTF-8 (a byte 0xff is the tabwriter's
// escape).
func cell(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// maxSkippedShown bounds the problems warnSkipped names.
const maxSkippedShown = 5

// warnSkipped names on stderr the config's problems that runs list does
// not need fixed (config.TemporalOnly), at most maxSkippedShown of them.
func warnSkipped(skipped []config.Problem) {
	if len(skipped) == 0 {
		return
	}
	fmt.Fprintf(stderr, "dealsync: warning: the config has %d problem(s) in sections runs list does not read (serve and worker would stop on them):\n", len(skipped))
	for i, p := range skipped {
		if i == maxSkippedShown {
			fmt.Fprintf(stderr, "  … and %d more (dealsync config check lists them)\n", len(skipped)-maxSkippedShown)
			break
		}
		fmt.Fprintf(stderr, "  %s: %s\n", p.Key, p.Message)
	}
}

// failureFlag is the types --failure gives (rerun.ParseFailureTypes), a
// usage error when it names none it knows. --failure "" (a script's
// empty variable, say) is refused too: read as no --failure, it would
// select the runs of every type, `runs retry` restarting them all.
func failureFlag(cmd *cobra.Command, values []string) ([]string, error) {
	types, err := rerun.ParseFailureTypes(values)
	if err == nil && len(types) == 0 && cmd.Flags().Changed("failure") {
		err = fmt.Errorf("%w \"\": give one or more of %s (separated by commas)", rerun.ErrUnknownFailureType, strings.Join(rerun.FailureTypes, ", "))
	}
	if err != nil {
		return nil, usageError(cmd, fmt.Errorf("--failure: %w", err))
	}
	return types, nil
}
