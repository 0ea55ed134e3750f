// Package rerun starts failed InvoiceDeal runs again with the current
// config: after a mapping, a lookup table or an ERP setting was fixed,
// the deals whose runs failed on it are invoiced without waiting for the
// CRM to send them again.
//
// Runs whose invoice was created but not written back to the CRM deal (the
// write-back failed, or the run timed out or was terminated while it was
// retried) are re-run with that invoice (from the run's history): the new
// run only writes it back.
//
// A reset in the Temporal Web UI is not the same: it replays the run's own
// input, which pins the mapping file the run started with, so a run that
// failed on a mapping fails again. A re-run is a new run of the same
// workflow ID (the ID reuse policy allows it after a failure), started
// from the newest deal event the failed run received, exactly as the
// intake would start it now: the current mapping, won stages and retry policy. Its ERP writes
// keep the idempotency keys of that workflow ID.
package rerun

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// Starter starts a deal's run as the intake does (intake.TemporalStarter).
type Starter interface {
	Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error)
	// StartWriteBack starts a run that only writes an existing invoice
	// back; its memo names madeWith and madeWithHash, the mapping the
	// invoice was made with (none when ""). It starts under the deal's
	// workflow ID, or under id when that is a write-back run's own
	// (workflows.WriteBackWorkflowID).
	StartWriteBack(ctx context.Context, conn *connections.Connection, ev model.DealEvent, invoiced connectors.InvoiceResult, madeWith, madeWithHash, id string) (connectors.EventResult, error)
}

// InputMaker is a Starter that says the input it would start a run of ev
// with (intake.TemporalStarter): Failed then warns when its settings
// differ from the failed run's (Result.SettingsWarning).
type InputMaker interface {
	Input(conn *connections.Connection, ev model.DealEvent) workflows.InvoiceDealInput
}

// Options select the runs.
type Options struct {
	// TaskQueue is dealsync's task queue: only its runs are considered.
	TaskQueue string
	// Namespace is the client's namespace, for messages only (a
	// *MissingAttributeError names it); "" says "the namespace".
	Namespace string
	// Query narrows the selection (a Temporal list filter, e.g.
	// `Connection = "shop" AND CloseTime > "2026-11-01T00:00:00Z"`).
	Query string
	// Failure keeps, of the runs Query selects, those whose failure type
	// (Failure.Type, as `runs list` shows it) is one of these
	// (ParseFailureTypes); none: every run. Failed reads each listed run's
	// close event for it, and leaves the others out of its results. It
	// selects failed runs only (CheckFailure).
	Failure []string
	// Limit stops after this many runs were started again, or would be on
	// a dry run (0: no limit). Runs skipped or failing to start do not
	// count; Failed reads at most readsPerRetry × Limit runs, those that
	// Failure leaves out included.
	Limit int
	// TimedOut also selects runs that timed out (workflow.run_timeout):
	// an ERP or CRM that stayed down longer.
	TimedOut bool
	// Terminated also selects runs an operator terminated.
	Terminated bool
	// Canceled also selects runs an operator canceled (the Web UI's
	// "Request cancellation").
	Canceled bool
	// WriteBack selects, instead of the runs without an invoice, the runs
	// whose invoice was created but not written back to the CRM deal: a
	// failed write-back (SyncStatus "writeback_failed"), and with TimedOut
	// Terminated or Canceled a run that ended while its write-back was retried
	// (SyncStatus "invoiced", or still "pending" when it ended right after
	// the invoice: its history tells). The new runs only write that
	// invoice back.
	WriteBack bool
	// Completed, with WriteBack, also selects the runs that completed
	// with the deal's invoice (SyncStatus "invoiced") and wrote nothing
	// back, because their connection had no write-back when they started
	// (it went live before its write-back was set up). Each gets a
	// write-back-only run under its own workflow ID
	// (workflows.WriteBackWorkflowID), once: the deal's completed run
	// stays the latest of the deal's ID, and goes on keeping a later
	// delivery from invoicing the deal again.
	Completed bool
	// DryRun lists what would be started, and starts nothing.
	DryRun bool
	// NoInvoiceFound says that the operator looked in the ERP for the
	// invoice of each selected run whose failure says it may exist there
	// (activities.SaysInvoiceMayExist) and found none: such a run is then
	// started again even where its target does not look invoices up
	// (connectors.InvoiceRetryKeyOnly, or a target that does not say),
	// which Failed otherwise skips (mayExistSkip): its retry would send the
	// invoice again, and make a second one unless the ERP still honours
	// the idempotency key.
	NoInvoiceFound bool
	// KeyVar is the environment variable that can set a config key, as
	// the config read spells it (config.Config.KeyVar, which connector
	// advice names too): the settings warning names it beside each key.
	// nil, or "" for a key, names none.
	KeyVar func(key string) string
}

// Result is what happened to one selected run.
type Result struct {
	WorkflowID string `json:"workflow_id"`
	// FailedRun is the run selected when it did not complete: it failed,
	// timed out, was terminated or was canceled.
	FailedRun string `json:"failed_run_id,omitempty"`
	// CompletedRun is, instead, the run selected when it completed
	// (Options.Completed: a completed run whose invoice is to be written
	// back); FailedRun is then "". Run gives either.
	CompletedRun string `json:"completed_run_id,omitempty"`
	Connection   string `json:"connection,omitempty"`
	DealID       string `json:"deal_id,omitempty"`
	// NewRun is the run started (empty when skipped or on a dry run).
	NewRun string `json:"new_run_id,omitempty"`
	// NewWorkflowID is the workflow ID of the run started (or that a dry
	// run would start) when it is not WorkflowID: the write-back of a
	// completed run's invoice, under workflows.WriteBackWorkflowID.
	NewWorkflowID string `json:"new_workflow_id,omitempty"`
	// Skipped says why no run was started.
	Skipped string `json:"skipped,omitempty"`
	// Unconfigured: skipped because the config read has no connection of
	// the run's name.
	Unconfigured bool   `json:"-"`
	Error        string `json:"error,omitempty"`
	// Mapping and MappingHash are the mapping the new run uses (or would,
	// on a dry run): the one the current config gives the connection. Set
	// for the runs started again in full; a write-back-only run maps
	// nothing.
	Mapping     string `json:"mapping,omitempty"`
	MappingHash string `json:"mapping_hash,omitempty"`
	// FailedMapping and FailedMappingHash are the failed run's, from its
	// memo ("" for a run without them).
	FailedMapping     string `json:"failed_run_mapping,omitempty"`
	FailedMappingHash string `json:"failed_run_mapping_hash,omitempty"`
	// MappingWarning names both when they differ (MappingChanged): the
	// new run maps the deal otherwise than the failed run did, which may
	// be the fix, or the config of a shell that lacks the workers'
	// DEALSYNC_* settings.
	MappingWarning string `json:"mapping_warning,omitempty"`
	// SettingsWarning names, old → new, the settings the new run starts
	// with (or would) that differ from those the failed run was started
	// with: the retry policy, the activity timeout, the external calls,
	// and for a full run the connection's settle time and linger, each
	// with its config key and DEALSYNC_* variable (Options.KeyVar), and
	// the ERP target the run is started for (its description). As with
	// the mapping,
	// the difference may be the fix, or the config of a shell that lacks
	// the workers' DEALSYNC_* settings.
	SettingsWarning string `json:"settings_warning,omitempty"`
	// FailureType and FailureMessage are the failed run's failure, from
	// its close event (as Run's), on a dry run for the runs it would
	// start, and for a run held back because its failure (or a canceled
	// run's cancellation, "CanceledError") says its invoice may exist
	// (mayExistSkip); empty when its close event tells none or could not
	// be read.
	FailureType    string `json:"failure_type,omitempty"`
	FailureMessage string `json:"failure_message,omitempty"`
}

// Run is the run selected: FailedRun, or CompletedRun for a completed one.
func (r Result) Run() string {
	if r.CompletedRun != "" {
		return r.CompletedRun
	}
	return r.FailedRun
}

// MappingChanged says whether the new run's mapping differs from the
// failed run's memo (name or hash); false when either is unknown.
func (r Result) MappingChanged() bool {
	return r.Mapping != "" && r.FailedMapping != "" &&
		(r.Mapping != r.FailedMapping || r.MappingHash != r.FailedMappingHash)
}

// noteMapping records the mapping the new run uses, m, and the failed
// run's from its memo, with a warning when they differ.
func (r *Result) noteMapping(m mapping.Mapper, failedRun *commonpb.Memo) {
	r.Mapping, r.MappingHash = m.Name(), m.Hash()
	r.FailedMapping = memoString(failedRun, workflows.MemoMapping)
	r.FailedMappingHash = memoString(failedRun, workflows.MemoMappingHash)
	if r.MappingChanged() {
		r.MappingWarning = fmt.Sprintf("the mapping differs from the failed run's: new run %s (hash %s), failed run %s (hash %s)",
			r.Mapping, r.MappingHash, r.FailedMapping, r.FailedMappingHash)
	}
}

// noteSettings records in SettingsWarning the settings of now, the input
// the new run starts with, that differ from was, the failed run's; a
// write-back-only run (writeBack) waits for no event, and its settle time
// and linger, and the ERP target it has no step for, are not compared. A
// setting the failed run's input does not have (zero or nil: a run of an
// older release) is not compared. Durations are written as the config
// writes them (wording.Duration: 1m, 1h30m, not 1m0s, 1h30m0s). Each
// key is named with the variable keyVar gives it (Options.KeyVar), when
// it gives one.
func (r *Result) noteSettings(was, now workflows.InvoiceDealInput, writeBack bool, keyVar func(string) string) {
	var diffs []string
	note := func(key, old, new string) {
		if old == new {
			return
		}
		if keyVar != nil {
			if v := keyVar(key); v != "" {
				key += " (env " + v + ")"
			}
		}
		diffs = append(diffs, fmt.Sprintf("%s %s → %s", key, old, new))
	}
	attempts := func(n int32) string {
		if n == 0 {
			return "0 (unlimited)"
		}
		return fmt.Sprint(n)
	}
	dur := func(key string, old, new time.Duration) {
		if old != 0 {
			note(key, wording.Duration(old), wording.Duration(new))
		}
	}
	note("workflow.retry.maximum_attempts", attempts(was.Retry.MaximumAttempts), attempts(now.Retry.MaximumAttempts))
	dur("workflow.retry.initial_interval", was.Retry.InitialInterval, now.Retry.InitialInterval)
	if was.Retry.BackoffCoefficient != 0 {
		note("workflow.retry.backoff_coefficient", fmt.Sprint(was.Retry.BackoffCoefficient), fmt.Sprint(now.Retry.BackoffCoefficient))
	}
	dur("workflow.retry.maximum_interval", was.Retry.MaximumInterval, now.Retry.MaximumInterval)
	dur("workflow.activity_timeout", was.ActivityTimeout, now.ActivityTimeout)
	calls := func(local bool) string {
		if local {
			return "local"
		}
		return "activity"
	}
	note("workflow.external_calls", calls(was.LocalCalls), calls(now.LocalCalls))
	if !writeBack {
		note("connections."+now.Connection+".settle_time", wording.Duration(was.SettleTime), wording.Duration(now.SettleTime))
		note("connections."+now.Connection+".linger", wording.Duration(was.Linger), wording.Duration(now.Linger))
		// The ERP target the new run is started for (pinned in its
		// input): a retry from a shell whose config or DEALSYNC_TARGETS_*
		// variables send the connection elsewhere than the workers' makes
		// runs they refuse (ERPTargetMismatch), or, on a target changed on
		// purpose, says where the invoice now goes.
		if w, n := was.ERPTarget, now.ERPTarget; w != nil && n != nil && w.Comparable(*n) && !n.Matches(*w) {
			diffs = append(diffs, fmt.Sprintf("the ERP target (connections.%s.target or account_targets, or a DEALSYNC_TARGETS_ variable) %s → %s",
				now.Connection, w.Description, n.Description))
		}
	}
	if len(diffs) > 0 {
		r.SettingsWarning = "the settings differ from the failed run's (failed run → new run): " + strings.Join(diffs, "; ")
	}
}

// Filter is the list filter of the runs Failed considers, on dealsync's
// task queue: the runs that failed before any invoice was made (SyncStatus
// "failed": a mapping, validation, ERP or CRM error), and with TimedOut,
// Terminated or Canceled those that timed out, were terminated or were
// canceled: before their invoice was made (SyncStatus "pending"; "failed"
// for a run canceled during its invoice call, which may have made it, or,
// by a worker of an earlier release, during any step), and after it
// ("invoiced", as a run canceled during its write-back ends;
// "writeback_failed" for one canceled so by a worker of an earlier
// release), which Failed skips naming the command that writes their
// invoice back. With WriteBack, instead, the
// runs whose write-back failed, and with TimedOut, Terminated or Canceled
// those that ended after their invoice was made (SyncStatus "invoiced" or
// "writeback_failed", or "pending" when they ended before recording it; Failed
// then reads their history, and skips those without an invoice or that
// had written it back); with Completed too, the runs that completed with
// their invoice ("invoiced": Failed skips those that wrote it back). o.Query
// narrows it.
func (o Options) Filter() string {
	str := activities.QueryString
	in := func(statuses ...string) string {
		for i, s := range statuses {
			statuses[i] = str(s)
		}
		return "SyncStatus IN (" + strings.Join(statuses, ", ") + ")"
	}
	// A run canceled while it wrote its invoice back ends Canceled with
	// SyncStatus "invoiced" ("writeback_failed" in runs of an earlier
	// release, whose write-back step returned the cancellation): selected
	// in both modes, as an ended run after its invoice.
	failed, ended := workflows.StatusFailed, in(workflows.StatusPending, workflows.StatusFailed, workflows.StatusInvoiced, workflows.StatusWriteBackFailed)
	if o.WriteBack {
		failed = workflows.StatusWriteBackFailed
		ended = in(workflows.StatusInvoiced, workflows.StatusWriteBackFailed, workflows.StatusPending)
	}
	sel := `ExecutionStatus = "Failed" AND SyncStatus = ` + str(failed)
	for _, status := range o.endedStatuses() {
		sel = fmt.Sprintf(`(%s) OR (ExecutionStatus = %s AND %s)`, sel, str(status), ended)
	}
	if o.WriteBack && o.Completed {
		// A completed run that made (or found) the deal's invoice; Failed
		// reads its history, and skips one that wrote it back.
		sel = fmt.Sprintf(`(%s) OR (ExecutionStatus = "Completed" AND SyncStatus = %s)`, sel, str(workflows.StatusInvoiced))
	}
	q := fmt.Sprintf(`TaskQueue = %s AND (%s)`, str(o.TaskQueue), sel)
	if o.Query != "" {
		q += " AND (" + o.Query + ")"
	}
	return q
}

// ErrInvalidQuery says that Options.Query is not a filter that narrows the
// selection: it does not parse (Temporal refused it), or it would widen
// or reorder the selection (an unbalanced parenthesis, an ORDER BY).
var ErrInvalidQuery = errors.New("invalid --query")

// CheckQuery refuses a Query that would not only narrow the selection: a
// parenthesis closed that it did not open (`Connection = "a") OR (...`
// escapes the selection's own parentheses), an ORDER BY (not a filter) and
// a comment (which can hide a quote from this check).
// Temporal judges the rest when Failed lists the runs.
func (o Options) CheckQuery() error {
	depth := 0
	var quote rune
	escaped := false
	var outside strings.Builder // the query without its quoted strings
	for _, r := range o.Query {
		switch {
		case escaped:
			escaped = false
			continue
		case quote != 0:
			if r == '\\' {
				escaped = true
			} else if r == quote {
				quote = 0
			}
			continue
		case r == '"' || r == '\'' || r == '`':
			quote = r
			outside.WriteRune(' ')
			continue
		case r == '(':
			depth++
		case r == ')':
			depth--
		}
		if depth < 0 {
			return fmt.Errorf("%w %q: a parenthesis is closed that was not opened", ErrInvalidQuery, o.Query)
		}
		outside.WriteRune(r)
	}
	switch {
	case quote != 0:
		return fmt.Errorf("%w %q: a quoted string is not closed", ErrInvalidQuery, o.Query)
	case depth != 0:
		return fmt.Errorf("%w %q: a parenthesis is not closed", ErrInvalidQuery, o.Query)
	case strings.Contains(strings.Join(strings.Fields(strings.ToUpper(outside.String())), " "), "ORDER BY"):
		return fmt.Errorf("%w %q: give a filter, without ORDER BY", ErrInvalidQuery, o.Query)
	case strings.Contains(outside.String(), "/*") || strings.Contains(outside.String(), "//") ||
		strings.Contains(outside.String(), "--") || strings.Contains(outside.String(), "#"):
		// A comment can hide a quote, and with it a parenthesis, from
		// this check, but not from Temporal's parser (which takes // to
		// the end of the line as one too).
		return fmt.Errorf("%w %q: give a filter without comments (/* */, //, --, #)", ErrInvalidQuery, o.Query)
	}
	return nil
}

// ErrInvalidFailure says that Options.Failure does not go with the other
// options: it would select no run.
var ErrInvalidFailure = errors.New("invalid --failure")

// CheckFailure refuses a Failure that would select no run, saying why:
// the runs of TimedOut, Terminated, Canceled and Completed have no
// failure type, and the runs Failed selects never failed DealNotWon
// (SyncStatus "skipped"); with WriteBack every run selected failed
// WriteBackFailed (the write-back's own error type is in its message
// only), and without it none did.
func (o Options) CheckFailure() error {
	if len(o.Failure) == 0 {
		return nil
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		flag string
	}{{o.TimedOut, "--timed-out"}, {o.Terminated, "--terminated"}, {o.Canceled, "--canceled"}, {o.Completed, "--completed"}} {
		if f.on {
			flags = append(flags, f.flag)
		}
	}
	if len(flags) > 0 {
		return fmt.Errorf("%w: --failure selects failed runs by their failure type, and the runs %s adds have none (they did not fail): retry them in a command of their own, without --failure (--query can narrow it)", ErrInvalidFailure, strings.Join(flags, ", "))
	}
	for _, t := range o.Failure {
		switch {
		case t == activities.ErrTypeDealNotWon:
			return fmt.Errorf("%w %s: runs of deals no longer won (SyncStatus \"skipped\") are never retried; the deal's next win starts a run", ErrInvalidFailure, t)
		case o.WriteBack && t != activities.ErrTypeWriteBackFailed:
			return fmt.Errorf("%w %s: every run --writeback selects failed %s (the write-back's own error, a %s say, is in its message): leave --failure out, or give %[3]s", ErrInvalidFailure, t, activities.ErrTypeWriteBackFailed, activities.ErrTypeCRMUnauthorized)
		case !o.WriteBack && t == activities.ErrTypeWriteBackFailed:
			return fmt.Errorf("%w %s: these runs made their invoice, and only their write-back is retried: give --writeback (with or without --failure %[2]s)", ErrInvalidFailure, t)
		}
	}
	return nil
}

// endedStatuses are the execution statuses beyond "Failed" the options
// select, as the list filter spells them.
func (o Options) endedStatuses() []string {
	var s []string
	if o.TimedOut {
		s = append(s, "TimedOut")
	}
	if o.Terminated {
		s = append(s, "Terminated")
	}
	if o.Canceled {
		s = append(s, "Canceled")
	}
	return s
}

// readsPerRetry bounds the runs Failed reads when Options.Limit is set: at
// most readsPerRetry × Limit, however many of them are skipped or fail to
// start, so that it ends by itself even when the selection is mostly runs
// it skips (a later run exists, a connection was removed) or the starts
// keep failing.
const readsPerRetry = 100

// Failed starts the selected failed runs again, until o.Limit of them were
// started. Runs that are no longer the latest of their workflow ID (a later
// webhook started a new one) and runs of connections that are no longer
// configured are skipped. An error means the selection could not be listed,
// or that Failed read readsPerRetry × o.Limit runs without starting
// o.Limit and more remain; failures of single runs are in their Result.
func Failed(ctx context.Context, c client.Client, set *connections.Set, starter Starter, o Options) ([]Result, error) {
	if err := o.CheckQuery(); err != nil {
		return nil, err
	}
	if err := o.CheckFailure(); err != nil {
		return nil, err
	}
	var results []Result
	var token []byte
	retried := 0
	// The runs read: those in results, and those o.Failure left out.
	read, leftOut := 0, 0
	// A dry run's: the selected run that would start a run of each
	// workflow ID (see onceEach).
	wouldStart := map[string]Result{}
	for {
		resp, err := listPage(ctx, c, o.Namespace, o.Filter(), o.Query, token, 100)
		if errors.Is(err, ErrInvalidQuery) {
			return results, err
		}
		if err != nil {
			return results, fmt.Errorf("listing failed runs: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			// read >= readsPerRetry*o.Limit, without overflow.
			if o.Limit > 0 && read/readsPerRetry >= o.Limit {
				of := ""
				if len(o.Failure) > 0 {
					of = fmt.Sprintf(" (%d of them left out by --failure)", leftOut)
				}
				return results, fmt.Errorf("stopped after reading %d selected runs%s, the most a limit of %d reads, with %d of them started (or, on a dry run, to be started): narrow the selection with a query to reach the others", read, of, o.Limit, retried)
			}
			read++
			id, runID := ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId()
			var known *Failure // the run's failure, when read here
			if len(o.Failure) > 0 {
				// Its failure type is in its close event only (no search
				// attribute holds it): one read, before any other.
				f, err := runFailure(ctx, c, id, runID)
				if err != nil {
					// Its type unknown, it may be one of o.Failure's:
					// said, not left out unseen.
					results = append(results, Result{WorkflowID: id, FailedRun: runID,
						Error: err.Error() + ": its failure type is unknown, so --failure can neither select it nor leave it out"})
					continue
				}
				if !failureIn(o.Failure, f.Type) {
					leftOut++
					continue
				}
				known = &f
			}
			r := oneRead(ctx, c, set, starter, id, runID, o, known)
			if ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
				// Not a failed run: a completed one whose invoice is
				// to be written back (--writeback --completed).
				r.CompletedRun, r.FailedRun = r.FailedRun, ""
			}
			if o.DryRun {
				r = onceEach(r, wouldStart)
			}
			results = append(results, r)
			if r.retried() {
				retried++
			}
			if o.Limit > 0 && retried >= o.Limit {
				return results, nil
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return results, nil
		}
	}
}

// onceEach lists, on a dry run, one run to start under each workflow ID:
// a deal's completed run and its write-back run that ended before it
// wrote the invoice back (both selected by --writeback --completed with
// that ending's flag) would each start the deal's write-back run
// (workflows.WriteBackWorkflowID), and the deal was counted twice. The
// later of them is skipped naming the first, as a run that is not dry
// skips it once the first has started (its write-back run is then
// running). The first is named by its row's workflow ID, which the text
// table shows, and its run ID. wouldStart holds the runs listed to start
// so far, by the workflow ID they would start.
func onceEach(r Result, wouldStart map[string]Result) Result {
	if r.Skipped != dryRun {
		return r
	}
	target := r.WorkflowID
	if r.NewWorkflowID != "" {
		target = r.NewWorkflowID
	}
	first, listed := wouldStart[target]
	if !listed {
		wouldStart[target] = r
		return r
	}
	return Result{
		WorkflowID: r.WorkflowID, FailedRun: r.FailedRun, CompletedRun: r.CompletedRun, Connection: r.Connection, DealID: r.DealID,
		Skipped: fmt.Sprintf("a run of %s is listed above to start already, by the row of %s (run %s): one is started, not two", target, first.WorkflowID, first.Run()),
	}
}

// runsAfter names the first run of workflow id started at or after
// started, other than runID, that supersedes it (supersedes says; it may
// read the run's history); "" when there is none. The list must show
// latest (the workflow's latest run, as Temporal describes it): a run list
// that has not caught up may not show a run in between either, so it is an
// error, not "none".
func runsAfter(ctx context.Context, c client.Client, id, runID, latest string, started time.Time,
	supersedes func(*workflowpb.WorkflowExecutionInfo) (bool, error)) (string, error) {
	var token []byte
	seen := false
	runs := activities.RunsOfID(id)
	for page := 0; page < 10; page++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         runs.Query + " AND StartTime >= " + activities.QueryString(started.UTC().Format(time.RFC3339Nano)),
			PageSize:      100,
			NextPageToken: token,
		})
		if err != nil {
			return "", err
		}
		for _, ex := range resp.GetExecutions() {
			run := ex.GetExecution().GetRunId()
			if run == runID || !runs.Matches(ex) {
				continue
			}
			seen = seen || run == latest
			if yes, err := supersedes(ex); err != nil {
				return "", err
			} else if yes {
				return fmt.Sprintf("%s (%s, SyncStatus %q)", run, ex.GetStatus(), SyncStatus(ex.GetSearchAttributes())), nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			if !seen {
				return "", fmt.Errorf("the run list does not show the latest run %s yet: try again in a moment", latest)
			}
			return "", nil
		}
	}
	if runs.Prefixed() {
		// Mostly runs of other IDs that start alike: the latest may be
		// among them, read, and only older runs of the ID left unread.
		return "", fmt.Errorf("more than 1,000 runs started after this one listed by the filter %s (the run list cannot match %s exactly: other deals' runs too), none of them one of this workflow ID that supersedes it; dealsync reads no further", runs.Query, id)
	}
	return "", errors.New("more than 1,000 runs after this one")
}

// lateWriteBack says whether --writeback --completed writes back the
// invoice of a run that did not write it back: one that completed with
// it (its connection had no write-back when it started, or its worker's
// had none when the step ran), or (selected by its ending's flag) ended
// otherwise after its invoice, before the connection had a write-back.
func lateWriteBack(o Options, status enumspb.WorkflowExecutionStatus, in workflows.InvoiceDealInput, h runHistory) bool {
	if !o.WriteBack || h.invoiced == nil {
		return false
	}
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return o.Completed
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return false
	}
	return o.Completed && !in.WriteBack && !h.wroteBack
}

// writtenBackBy says why the invoice of a completed run, whose
// write-back-only run would have workflow id (workflows.WriteBackWorkflowID),
// needs none started now: that run is running, completed (it wrote the
// invoice back), failed (--writeback selects it, and starts it again), or
// ended otherwise after its write-back. "" when there is none, or it
// ended otherwise before its write-back (then started again from here);
// wrote says that the invoice was written back.
func writtenBackBy(ctx context.Context, c client.Client, id string) (skip string, wrote bool, _ error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("describing the write-back run %s: %w", id, err)
	}
	ex := d.GetWorkflowExecutionInfo()
	run := ex.GetExecution().GetRunId()
	switch ex.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return fmt.Sprintf("its write-back run %s (run %s) is running", id, run), false, nil
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return fmt.Sprintf("its invoice was written back by %s (run %s)", id, run), true, nil
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		// A failed write-back (SyncStatus "writeback_failed") is what
		// --writeback selects, and starts again under its ID.
		return fmt.Sprintf("its write-back run %s (run %s) failed: `dealsync runs retry --writeback --query %s` starts it again", id, run, retryFilter(id, run)), false, nil
	}
	// Timed out, terminated or canceled: after its write-back, maybe.
	h, err := historyOf(ctx, c, id, run)
	if err != nil {
		return "", false, fmt.Errorf("reading the write-back run %s: %w", id, err)
	}
	if h.wroteBack {
		return fmt.Sprintf("its invoice was written back by %s (run %s, which then %s)", id, run, endedHow(ex.GetStatus())), true, nil
	}
	// Ended before writing it back: started again under its ID, from
	// here (its own row, when the selection has it too, then meets that
	// run, or, on a dry run, is skipped by onceEach; and the other way
	// round when its row comes first).
	return "", false, nil
}

// unlessNotWon: a later run supersedes a failed run unless it ended as not
// won (Failed, with SyncStatus "skipped").
func unlessNotWon(ex *workflowpb.WorkflowExecutionInfo) (bool, error) {
	return ex.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED || SyncStatus(ex.GetSearchAttributes()) != workflows.StatusSkipped, nil
}

// tookOverWriteBack says whether a later run of workflow id takes over the
// write-back of an earlier run's invoice: it is running or completed, or
// it has the deal's invoice itself (recorded, or in its history), and then
// it is the run to write back. A later run that ended without an invoice
// (failed on a mapping, not won, timed out before the invoice step) does
// not: the earlier run's invoice is still to be written back, and only a
// write-back of that run does it.
func tookOverWriteBack(ctx context.Context, c client.Client, id string) func(*workflowpb.WorkflowExecutionInfo) (bool, error) {
	return func(ex *workflowpb.WorkflowExecutionInfo) (bool, error) {
		switch ex.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			return true, nil
		case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			// A RecordDealLoss run that continued as the run of a new win:
			// that run, listed too, is judged on its own.
			return false, nil
		}
		switch SyncStatus(ex.GetSearchAttributes()) {
		case workflows.StatusFailed, workflows.StatusSkipped:
			return false, nil
		case workflows.StatusPending:
			// ended before recording an invoice, which its history may have
			inv, err := CreatedInvoice(ctx, c, id, ex.GetExecution().GetRunId())
			if err != nil {
				return false, fmt.Errorf("reading run %s: %w", ex.GetExecution().GetRunId(), err)
			}
			return inv != nil, nil
		}
		return true, nil
	}
}

// InvoicedBy returns a run of workflow id other than except that made the
// deal's invoice and recorded it (SyncStatus invoiced or writeback_failed,
// whatever became of the run), "" when the run list shows none. A full run
// of such a deal would create its invoice again, kept from a duplicate only
// by the ERP's memory of the key or a look-up by reference; the latest run
// is not always that run (a later delivery's run that failed, say).
func InvoicedBy(ctx context.Context, c client.Client, id, except string) (string, error) {
	runs := activities.RunsOfID(id)
	q := runs.Query + " AND " + workflows.SyncStatusKey.GetName() + " IN (" +
		activities.QueryString(workflows.StatusInvoiced) + ", " + activities.QueryString(workflows.StatusWriteBackFailed) + ")"
	// Two runs are enough when the filter lists the ID's runs alone; a
	// prefixed one reads on past other IDs' runs, a bounded number.
	size, pages := int32(2), 1
	if runs.Prefixed() {
		size, pages = 100, invoicedByPages
	}
	var token []byte
	for range pages {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, PageSize: size, NextPageToken: token})
		if err != nil {
			return "", fmt.Errorf("listing the runs of %s that made an invoice: %w", id, err)
		}
		for _, e := range resp.GetExecutions() {
			if run := e.GetExecution().GetRunId(); run != except && runs.Matches(e) {
				return run, nil
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return "", nil
		}
	}
	return "", fmt.Errorf("listing the runs of %s that made an invoice: the filter %s (the run list cannot match the ID exactly) lists more than %d runs of other IDs; dealsync reads no further", id, q, invoicedByPages*100)
}

// retryFilter is a `runs retry --query` filter, as a shell word, that
// selects run of workflow id: by its ID where the run list can match it,
// else by the run's ID (a workflow ID holding a `"` or a `\`, which
// Temporal's SQL run list matches in no filter).
func retryFilter(id, run string) string {
	if activities.RunsOfID(id).Prefixed() {
		return wording.ShellWord("RunId = " + activities.QueryString(run))
	}
	return wording.ShellWord("WorkflowId = " + activities.QueryString(id))
}

// invoicedByPages bounds InvoicedBy's read of a prefixed filter: pages
// of 100 runs.
const invoicedByPages = 20

// SyncStatus reads a run's SyncStatus search attribute ("" when unset).
func SyncStatus(sa *commonpb.SearchAttributes) string {
	return keyword(sa, workflows.SyncStatusKey.GetName())
}

// ErpInvoiceID reads a run's ErpInvoiceId search attribute ("" when
// unset: the run made no invoice).
func ErpInvoiceID(sa *commonpb.SearchAttributes) string {
	return keyword(sa, workflows.ErpInvoiceIDKey.GetName())
}

// retried says whether the run was started again, or would be on a dry run.
func (r Result) retried() bool { return r.NewRun != "" || r.Skipped == dryRun }

// dryRun is Result.Skipped of a run a dry run would have started.
const dryRun = "dry run"

func one(ctx context.Context, c client.Client, set *connections.Set, starter Starter, id, runID string, o Options) Result {
	return oneRead(ctx, c, set, starter, id, runID, o, nil)
}

// oneRead is one, given the run's failure when it was read already
// (known, for --failure): its close event is then not read again.
func oneRead(ctx context.Context, c client.Client, set *connections.Set, starter Starter, id, runID string, o Options, known *Failure) Result {
	r := Result{WorkflowID: id, FailedRun: runID}
	latest, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		r.Error = "describing the workflow: " + err.Error()
		return r
	}
	info := latest.GetWorkflowExecutionInfo()
	later := info.GetExecution().GetRunId()
	var h runHistory
	if later != runID && o.WriteBack {
		// A later run takes the write-back of this run's invoice over only
		// when it is running, completed or has the invoice itself: one that
		// ended without it (a later delivery's run that failed on its
		// mapping, say) leaves this run's write-back to do.
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			r.Skipped = fmt.Sprintf("a later run %s (%s) exists", later, info.GetStatus())
			return r
		}
		if h, err = historyOf(ctx, c, id, runID); err != nil {
			r.Error = err.Error()
			return r
		}
		by, err := runsAfter(ctx, c, id, runID, later, h.started, tookOverWriteBack(ctx, c, id))
		if err != nil {
			r.Error = "listing the runs after this one: " + err.Error()
			return r
		}
		if by != "" {
			r.Skipped = fmt.Sprintf("a later run %s exists: it has the deal's invoice or is writing it back", by)
			return r
		}
	}
	var laterNotWon *activities.NotWonDetails
	if later != runID && !o.WriteBack {
		// A later run supersedes this one, unless it only ended a delivery
		// of an older win as not won (DealNotWon, its events older than
		// this run's newest): then this run still has the deal's newest
		// state, and retrying it is the only way the deal gets invoiced.
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
			prev, ok, err := activities.EndedRun(ctx, c, id, later, workflows.DealEventSignal)
			if err != nil {
				r.Error = "reading how the later run " + later + " ended: " + err.Error()
				return r
			}
			if ok && prev.ErrorType == activities.ErrTypeDealNotWon && prev.NotWon != nil && !prev.NotWon.LatestAt.IsZero() {
				laterNotWon = prev.NotWon
			}
		}
		if laterNotWon == nil {
			r.Skipped = fmt.Sprintf("a later run %s (%s) exists", later, info.GetStatus())
			return r
		}
	}
	if h.started.IsZero() {
		if h, err = historyOf(ctx, c, id, runID); err != nil {
			r.Error = err.Error()
			return r
		}
	}
	if laterNotWon != nil {
		if !h.latest.OccurredAt.After(laterNotWon.LatestAt) {
			r.Skipped = fmt.Sprintf("a later run %s (%s) exists: it saw the deal no longer won at %s, after this run's newest event",
				later, info.GetStatus(), laterNotWon.LatestAt.Format(time.RFC3339))
			return r
		}
		// Every run after this one must have ended so (not won, no
		// invoice): one that made the invoice, or failed on a newer state
		// of the deal, supersedes this run.
		between, err := runsAfter(ctx, c, id, runID, later, h.started, unlessNotWon)
		if err != nil {
			r.Error = "listing the runs after this one: " + err.Error()
			return r
		}
		if between != "" {
			r.Skipped = fmt.Sprintf("a later run %s exists", between)
			return r
		}
	}
	// How this run ended: the latest run's status, or, when a later run
	// only refused an older win, its own.
	status, memo := info.GetStatus(), info.GetMemo()
	if later != runID {
		own, err := c.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			r.Error = "describing run " + runID + ": " + err.Error()
			return r
		}
		status, memo = own.GetWorkflowExecutionInfo().GetStatus(), own.GetWorkflowExecutionInfo().GetMemo()
	}
	in := h.input
	r.Connection, r.DealID = in.Connection, in.Event.Deal.ID
	conn, ok := set.Get(in.Connection)
	failed := status == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
	completed := status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	late := lateWriteBack(o, status, in, h)
	// The deal's own IDs: a run under another one was started by hand.
	dealID := workflows.DealWorkflowID(in.Connection, in.Event.Account, in.Event.Deal.ID)
	writeBackID := workflows.WriteBackWorkflowID(in.Connection, in.Event.Account, in.Event.Deal.ID)
	ownID := id == dealID || id == writeBackID
	// The ID a write-back-only run starts under: a write-back run's own
	// keeps it; a completed run's invoice gets the deal's write-back ID.
	startID := ""
	if workflows.IsWriteBackWorkflowID(id) {
		startID = id
	}
	switch {
	case !ok:
		r.Skipped = fmt.Sprintf("connection %q is no longer configured", in.Connection)
		r.Unconfigured = true
		return r
	// A completed run (--writeback --completed) wrote its invoice back,
	// or had no write-back to do when it started; so had a run that
	// ended otherwise after its invoice, without one to do (--completed
	// with its ending's flag).
	case o.WriteBack && completed && h.invoiced == nil:
		r.Skipped = "the run completed without an invoice it made or was given: nothing to write back"
		return r
	case o.WriteBack && completed && h.wroteBack:
		r.Skipped = "the run wrote its invoice back"
		return r
	case late && conn.WriteBacker == nil:
		r.Skipped = fmt.Sprintf("connection %q writes nothing back to its CRM: set its write-back up first", in.Connection)
		return r
	case late && !ownID:
		// Started by hand under another ID: the deal's own run may have
		// written its invoice back, which this one cannot tell.
		r.Skipped = "the run was started under another workflow ID than its deal's (" + dealID + "): write its invoice back by hand, or select the deal's own run"
		if by, wrote, err := writtenBackBy(ctx, c, writeBackID); err == nil && wrote {
			r.Skipped = "the run was started under another workflow ID than its deal's; " + by
		}
		return r
	case late && completed && startID == "":
		// The deal's completed run stays the latest of its ID (it keeps
		// a later delivery from invoicing the deal again): the write-back
		// gets an ID of its own.
		startID = writeBackID
		if skip, _, err := writtenBackBy(ctx, c, startID); err != nil {
			r.Error = err.Error()
			return r
		} else if skip != "" {
			r.Skipped = skip
			return r
		}
	case late:
		// A run that timed out, was terminated or was canceled keeps no
		// later run of the deal from starting: its write-back-only run
		// takes the deal's own ID, as --writeback's of its ending do, and
		// a later delivery then meets it (a completed one closes the
		// deal).
	case o.WriteBack && h.invoiced == nil && !failed:
		r.Skipped = "the run " + endedHow(status) + " before its invoice was made: retry it without --writeback"
		return r
	case o.WriteBack && h.invoiced == nil:
		r.Error = "the run's history has no created invoice to write back"
		return r
	// A run whose history has the deal's invoice (made by it, or given to
	// a write-back-only run) is never re-run in full: that would invoice
	// the deal again, kept from a duplicate only by the ERP's memory of
	// the key.
	case !o.WriteBack && h.invoiced != nil && h.wroteBack:
		r.Skipped = "the run's history has invoice " + h.invoiced.InvoiceID + ", which exists, and its write-back was done before it " + endedHow(status) + ": nothing to retry"
		return r
	case !o.WriteBack && h.invoiced != nil && !in.WriteBack:
		r.Skipped = "the run's history has invoice " + h.invoiced.InvoiceID + ", which exists, and the run had no write-back to do: nothing to retry"
		if conn.WriteBacker != nil && ownID {
			r.Skipped += " (its connection writes back now: `" + WriteBackCommand(status) + " --completed` writes the invoice back)"
		}
		return r
	case !o.WriteBack && h.invoiced != nil:
		r.Skipped = "the run's history has invoice " + h.invoiced.InvoiceID + ", which exists: use `" + WriteBackCommand(status) + "` to write it back"
		return r
	// A run that timed out or was terminated after its invoice was made
	// may have written it back already (and then lingered), or had
	// nothing to write back.
	case o.WriteBack && !failed && !in.WriteBack:
		r.Skipped = "the run had no write-back to do (its connection wrote nothing back when it started)"
		if h.invoiced != nil && conn.WriteBacker != nil && ownID {
			r.Skipped += ": add --completed to write its invoice back now"
		}
		return r
	case o.WriteBack && !failed && h.wroteBack:
		r.Skipped = "the run had written its invoice back before it " + endedHow(status)
		return r
	case o.WriteBack && conn.WriteBacker == nil:
		r.Skipped = fmt.Sprintf("connection %q no longer writes back to its CRM", in.Connection)
		return r
	}
	ev, skip := h.retryEvent()
	if !o.WriteBack && skip == "" {
		by, err := InvoicedBy(ctx, c, id, runID)
		switch {
		case err != nil:
			r.Error = err.Error()
			return r
		case by != "":
			skip = "run " + by + " of this deal made its invoice: a full run would create it again (if that run's write-back is still to do, `dealsync runs retry --writeback` with its ending's flag selects it)"
		}
	}
	// The run's failure, read once: whether it says the invoice may
	// exist (a full run only), and what a dry run names.
	var f Failure
	var fErr error
	read := false
	if !o.WriteBack && skip == "" && saysFailure(status) {
		if known != nil {
			f = *known
		} else {
			f, fErr = runFailure(ctx, c, id, runID)
		}
		read = true
		if fErr == nil && activities.SaysInvoiceMayExist(f.Message) && !o.NoInvoiceFound {
			skip = mayExistSkip(f.Message, in.ERPTarget, conn.TargetIdentityFor(ev.Account), status)
		}
		if fErr != nil && !o.NoInvoiceFound {
			// Unread, the failure may say the invoice exists: not
			// started blind.
			r.Error = fErr.Error() + ": it may say that the run's invoice exists in the ERP; look for it there, and if there is none, retry with --no-invoice-found"
			return r
		}
	}
	switch {
	case !o.WriteBack && skip != "":
		r.Skipped = skip
		if read && fErr == nil {
			// What it failed with (a canceled run's cancellation too,
			// whose details may be why it is held back).
			r.FailureType, r.FailureMessage = f.Type, f.Message
		}
		return r
	case o.DryRun:
		r.Skipped = dryRun
		if startID != "" && startID != id {
			r.NewWorkflowID = startID
		}
		if !o.WriteBack {
			r.noteMapping(conn.Mapper, memo)
		}
		r.compareSettings(starter, conn, in, ev, o)
		if hasFailure(status) {
			// What to fix before starting it: a courtesy, one read of
			// its close event; unread, it is left out.
			switch {
			case !read && known != nil:
				f = *known
			case !read:
				f, fErr = runFailure(ctx, c, id, runID)
			}
			if fErr == nil {
				r.FailureType, r.FailureMessage = f.Type, f.Message
			}
		}
		return r
	}
	var res connectors.EventResult
	if o.WriteBack {
		// The invoice's mapping, which the new run does not run, is the
		// failed run's (a write-back-only run's memo carries it on).
		res, err = starter.StartWriteBack(ctx, conn, in.Event, *h.invoiced, memoString(memo, workflows.MemoMapping), memoString(memo, workflows.MemoMappingHash), startID)
	} else {
		res, err = starter.Start(ctx, conn, ev)
	}
	switch {
	case err != nil:
		r.Error = err.Error()
	case res.Duplicate && startID != "" && startID != id:
		r.Skipped = "a write-back run of its invoice started meanwhile, or completed: " + startID + " run " + res.RunID
	case res.Duplicate:
		r.Skipped = "another run started meanwhile: " + res.RunID
	default:
		r.NewRun = res.RunID
		if res.WorkflowID != "" && res.WorkflowID != id {
			r.NewWorkflowID = res.WorkflowID
		}
		if !o.WriteBack {
			r.noteMapping(conn.Mapper, memo)
		}
		r.compareSettings(starter, conn, in, ev, o)
	}
	return r
}

// saysFailure says whether the close event of a run that ended with
// status may say that its invoice may exist: a failed run's failure, a
// run canceled during its invoice step (its cancellation's details).
func saysFailure(status enumspb.WorkflowExecutionStatus) bool {
	return status == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED || status == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED
}

// mayExistSkip is why a run whose failure, msg, says that its invoice
// may exist in the ERP (activities.SaysInvoiceMayExist) is not started
// again in full for target, the ERP target the new run would use (this
// config's for the deal's account): "" when that target finds the
// invoice an earlier attempt made (connectors.InvoiceRetryFinds) and is
// the one the run was started for, pinned (or the run has no pin to
// compare), and the retry does no harm. Otherwise the retry would send
// the invoice again, and make a second one unless the ERP still honours
// the idempotency key; or, for a target other than the pinned one (the
// config changed since, or the run failed ERPTargetMismatch after an
// attempt on its own target), it would look the invoice up, if at all,
// in another ERP than the one the attempts were sent to, and make it
// there whatever its look-up: the operator looks for it first, in the
// pinned target's ERP, and retries with --no-invoice-found when there is
// none.
func mayExistSkip(msg string, pinned *connectors.TargetIdentity, target connectors.TargetIdentity, status enumspb.WorkflowExecutionStatus) string {
	moved := pinned != nil && pinned.Comparable(target) && !target.Matches(*pinned)
	if target.InvoiceRetry == connectors.InvoiceRetryFinds && !moved {
		return ""
	}
	ref := "the deal's reference"
	if m := referenceRE.FindAllStringSubmatch(msg, -1); m != nil {
		// The last: the note dealsync appends after the ERP's own
		// message, which may name a reference of its own.
		ref = "reference " + m[len(m)-1][1]
	}
	where := "the ERP"
	if target.Description != "" {
		where = "the ERP of " + target.Description
	}
	why := "the target it would run against does not say whether it looks invoices up"
	switch {
	case moved:
		why = "the run was started for " + cmp.Or(pinned.Description, "another target") +
			", where an attempt may have made it, and the new run would go to " + cmp.Or(target.Description, "another target") +
			" (the ERP target configured now), whose look-up, if it has one, does not search that ERP"
		where = "the ERP of " + cmp.Or(pinned.Description, "the run's target")
	case target.InvoiceRetry == connectors.InvoiceRetryKeyOnly && target.LookupSetting != "":
		why = "the target it would run against does not look invoices up (" + target.LookupSetting + " is off)"
	case target.InvoiceRetry == connectors.InvoiceRetryKeyOnly:
		why = "the target it would run against does not look invoices up"
	}
	again := "a retry would send the invoice again and make a second one unless the ERP still honours the idempotency key"
	if moved {
		again = "a retry may invoice the deal a second time"
	}
	cmd := "dealsync runs retry"
	if e, ok := endings[status]; ok {
		cmd += " " + e.flag
	}
	return "not retried: the run's failure says its invoice may exist in the ERP, and " + why +
		", so " + again + ": " +
		"look for an invoice with " + ref + " in " + where + "; if there is none, `" + cmd + " --no-invoice-found` (with this selection) retries it; " +
		"if there is one, write it back by hand"
}

// referenceRE finds the invoice's reference a failure names
// (`(reference "R")`), as a quoted Go string.
var referenceRE = regexp.MustCompile(`\(reference ("(?:[^"\\]|\\.)*")\)`)

// compareSettings notes the settings a run of ev started by starter has
// that differ from the failed run's input, in (noteSettings), when the
// starter says its input (InputMaker). A write-back-only run
// (o.WriteBack) starts from the failed run's event.
func (r *Result) compareSettings(starter Starter, conn *connections.Connection, in workflows.InvoiceDealInput, ev model.DealEvent, o Options) {
	im, ok := starter.(InputMaker)
	if !ok {
		return
	}
	if o.WriteBack {
		ev = in.Event
	}
	r.noteSettings(in, im.Input(conn, ev), o.WriteBack, o.KeyVar)
}

// retryEvent is the deal event a re-run starts from: the newest event of
// the deal the failed run received. A later whole-deal event (a connection
// whose runs listen) replaces the input event, unless it moved the deal
// out of the stage that started the run and out of the won stages: then
// the deal is not retried (skip says why), as the run would have ended.
// Thin events keep the input event: the new run reads the deal.
func (h runHistory) retryEvent() (ev model.DealEvent, skip string) {
	in, latest := h.input.Event, h.latest
	switch {
	case (latest.EventID == in.EventID && !latest.OccurredAt.After(in.OccurredAt)) || latest.Thin:
		// the input event itself (an id sent again later, with a newer
		// time, is a new event, as the run takes it)
		return in, ""
	case !workflows.LeftWonStage(h.input, latest):
		return latest, ""
	}
	return in, fmt.Sprintf("a later event %s moved the deal to stage %q, not a won stage: not retried", latest.EventID, latest.Deal.Stage)
}

// endings are the ways a run can end, besides failing, that Failed selects
// on request: how messages say it, and the `runs retry` flag that selects
// it.
var endings = map[enumspb.WorkflowExecutionStatus]struct{ how, flag string }{
	enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  {"timed out", "--timed-out"},
	enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: {"was terminated", "--terminated"},
	enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   {"was canceled", "--canceled"},
}

func endedHow(status enumspb.WorkflowExecutionStatus) string {
	if e, ok := endings[status]; ok {
		return e.how
	}
	return "ended"
}

// Activity types of the steps whose results the history is searched for.
const (
	createInvoice = "CreateInvoice"
	writeBack     = "WriteBack"
)

// events is what readHistory needs of a history (client.HistoryEventIterator).
type events interface {
	HasNext() bool
	Next() (*historypb.HistoryEvent, error)
}

// runHistory is what a failed run's history says.
type runHistory struct {
	input workflows.InvoiceDealInput
	// latest is the newest event of the deal the run received: its input
	// event, or a later one signalled to it, the newest by occurrence time
	// as the run itself chooses.
	latest model.DealEvent
	// invoiced is the invoice the run created (the result of its
	// CreateInvoice step) or, for a run that only wrote an invoice back,
	// the one it was given; nil when there is none.
	invoiced *connectors.InvoiceResult
	// wroteBack: the run's WriteBack step completed, and did not skip the
	// write-back (activities.WriteBackOutcome).
	wroteBack bool
	// started is when the run started.
	started time.Time
}

// WriteBackCommand is the `runs retry` command that writes back the
// invoice of a run that ended with status: --writeback selects the failed
// runs only, and the runs that timed out or were terminated with the flag
// that says so.
func WriteBackCommand(status enumspb.WorkflowExecutionStatus) string {
	cmd := "dealsync runs retry --writeback"
	if e, ok := endings[status]; ok {
		cmd += " " + e.flag
	}
	return cmd
}

// CreatedInvoice is the invoice run runID of workflow id made (or was
// given to write back), read from its history; nil when it has none. A run
// can end with its invoice made while its SyncStatus still says "pending"
// (terminated, or timed out, before the workflow task that records it).
// A RecordDealLoss run has none: it records a deal's loss, and a win it
// meets continues as a new InvoiceDeal run (its own run ends
// ContinuedAsNew), so one that ended otherwise (failed as not won, or
// timed out, was terminated or canceled) made no invoice.
func CreatedInvoice(ctx context.Context, c client.Client, id, runID string) (*connectors.InvoiceResult, error) {
	h, err := historyOf(ctx, c, id, runID)
	if errors.Is(err, errLossRun) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return h.invoiced, nil
}

// errLossRun says that a history read is a RecordDealLoss run's, not an
// InvoiceDeal run's.
var errLossRun = errors.New("a RecordDealLoss run (it records a deal's loss and makes no invoice), not an InvoiceDeal run")

// historyOf reads run runID of workflow id (readHistory).
func historyOf(ctx context.Context, c client.Client, id, runID string) (runHistory, error) {
	return readHistory(c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT))
}

// readHistory reads the run's InvoiceDealInput (its first event), the deal
// events signalled to it, and the results of its CreateInvoice and
// WriteBack steps: local activities' markers or activities' completions.
// dealsync's payloads use the SDK's default data converter.
func readHistory(it events) (runHistory, error) {
	var h runHistory
	dc := converter.GetDefaultDataConverter()
	scheduled := map[int64]string{} // activity types by their scheduled event id
	first := true
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return h, fmt.Errorf("reading the run's history: %w", err)
		}
		if first {
			first = false
			h.started = ev.GetEventTime().AsTime()
			attrs := ev.GetWorkflowExecutionStartedEventAttributes()
			switch attrs.GetWorkflowType().GetName() {
			case workflows.InvoiceDealName:
			case workflows.RecordDealLossName:
				return h, errLossRun
			default:
				return h, errors.New("not an InvoiceDeal run")
			}
			if err := dc.FromPayloads(attrs.GetInput(), &h.input); err != nil {
				return h, fmt.Errorf("decoding the run's input: %w", err)
			}
			h.invoiced = h.input.Invoiced
			h.latest = h.input.Event
			continue
		}
		var step string
		var result *commonpb.Payloads
		switch {
		case ev.GetWorkflowExecutionSignaledEventAttributes() != nil:
			sig := ev.GetWorkflowExecutionSignaledEventAttributes()
			var later model.DealEvent
			if sig.GetSignalName() == workflows.DealEventSignal && dc.FromPayloads(sig.GetInput(), &later) == nil &&
				!later.OccurredAt.Before(h.latest.OccurredAt) {
				h.latest = later
			}
			continue
		case ev.GetMarkerRecordedEventAttributes() != nil:
			m := ev.GetMarkerRecordedEventAttributes()
			var data struct{ ActivityType string }
			if m.GetFailure() != nil || dc.FromPayloads(m.GetDetails()["data"], &data) != nil {
				continue
			}
			step, result = data.ActivityType, m.GetDetails()["result"]
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			continue
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			done := ev.GetActivityTaskCompletedEventAttributes()
			step, result = scheduled[done.GetScheduledEventId()], done.GetResult()
		default:
			continue
		}
		switch step {
		case writeBack:
			// A step that skipped the write-back (its worker's connection
			// had none) says so in its outcome; one recorded before the
			// outcome existed has none, and counts as done.
			var out activities.WriteBackOutcome
			if result != nil {
				_ = dc.FromPayloads(result, &out)
			}
			h.wroteBack = out.Skipped == ""
		case createInvoice:
			var created connectors.InvoiceResult
			if err := dc.FromPayloads(result, &created); err == nil && created.InvoiceID != "" {
				h.invoiced = &created
			}
		}
	}
	if first {
		return h, errors.New("the run has no history (past the namespace's retention?)")
	}
	return h, nil
}
