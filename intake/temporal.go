package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// TemporalStarter starts one InvoiceDeal run per deal and connection with
// a deterministic workflow ID: a duplicate delivery meets the running run
// (conflict policy USE_EXISTING), or the completed one within retention
// (reuse policy ALLOW_DUPLICATE_FAILED_ONLY), while a failed run can be
// triggered again by a later webhook.
type TemporalStarter struct {
	Client          client.Client
	TaskQueue       string
	Retry           workflows.RetryPolicy
	ActivityTimeout time.Duration
	RunTimeout      time.Duration
	// EagerStart hands the first workflow task straight to a worker in this
	// process, saving a round trip (only `dealsync dev` has one).
	EagerStart bool
	// LocalCalls runs the ERP and CRM calls as local activities.
	LocalCalls bool
	// Check, if set, is a further readiness check once Temporal answers
	// (the namespace has dealsync's search attributes). Its failure of the
	// namespace itself is a *NamespaceError.
	Check func(context.Context) error
	// Namespace, if set, is the namespace's part of Check alone (it
	// exists, the frontend takes the credentials for it: one read of the
	// namespace, a *NamespaceError when it fails): Watch's check, after
	// the frontend's (NamespaceChecker).
	Namespace func(context.Context) error
	// Store, if set, checks that Temporal reads its database (StoreProbe:
	// a *StoreError when it does not), after the namespace: Ready's and
	// Watch's last check.
	Store func(context.Context) error
	// Now is the clock that tells a recent change of a won deal from an
	// old one (awaitsWin; tests); default time.Now.
	Now func() time.Time
	// Logger takes what the starter notes at debug (a trigger that
	// fails on a change judged as a win, winWouldStart); nil: none.
	Logger *slog.Logger
	// Origin says what starts the runs, as their details in the Web UI
	// say it: "" for the intake's webhooks, else OriginDealsSync or
	// OriginRunsRetry.
	Origin string
}

// Origins of the runs a TemporalStarter starts (TemporalStarter.Origin).
const (
	OriginDealsSync = "dealsync deals sync"
	OriginRunsRetry = "dealsync runs retry"
)

// describe sets the summary and details the Web UI shows for the run opts
// starts, of type runType with in (workflows.StartSummary, StartDetails);
// mapping and hash name the mapping the memo names. Built from what the
// start has: no I/O.
func (s *TemporalStarter) describe(opts *client.StartWorkflowOptions, runType string, in workflows.InvoiceDealInput, mapping, hash string) {
	opts.StaticSummary = workflows.StartSummary(runType, in)
	opts.StaticDetails = workflows.StartDetails(in, s.Origin, mapping, hash)
}

// Input is the input a run of ev would start with: the settings of this
// starter's config (retry policy, activity timeout, external calls) and
// of conn (mapping, settle time, linger). `runs retry` compares it with
// a failed run's.
func (s *TemporalStarter) Input(conn *connections.Connection, ev model.DealEvent) workflows.InvoiceDealInput {
	return s.input(conn, ev)
}

func (s *TemporalStarter) input(conn *connections.Connection, ev model.DealEvent) workflows.InvoiceDealInput {
	var snapshot *mapping.Snapshot
	if sn, ok := conn.Mapper.(mapping.Snapshotter); ok {
		snapshot = sn.Snapshot()
	}
	var target *connectors.TargetIdentity
	if id := conn.TargetIdentityFor(ev.Account); !id.IsZero() {
		target = &id
	}
	return workflows.InvoiceDealInput{
		MappingSnapshot: snapshot,
		ERPTarget:       target,
		Connection:      conn.Name,
		Event:           ev,
		Retry:           s.Retry,
		ActivityTimeout: s.ActivityTimeout,
		SettleTime:      conn.SettleTime,
		Linger:          conn.Linger,
		Fetch:           conn.Fetcher != nil && ev.Thin,
		WonStages:       conn.WonStages,
		WriteBack:       conn.WriteBacker != nil,
		LocalCalls:      s.LocalCalls,
		Mapping:         conn.Mapper.Name(),
		MappingHash:     conn.Mapper.Hash(),
	}
}

func (s *TemporalStarter) options(conn *connections.Connection, ev model.DealEvent, status ...temporal.SearchAttributeUpdate) client.StartWorkflowOptions {
	attrs := []temporal.SearchAttributeUpdate{
		workflows.DealIDKey.ValueSet(ev.Deal.ID),
		workflows.ConnectionKey.ValueSet(conn.Name),
	}
	if len(status) == 0 {
		status = []temporal.SearchAttributeUpdate{workflows.SyncStatusKey.ValueSet(workflows.StatusPending)}
	}
	attrs = append(attrs, status...)
	// An amount no float holds (a source's huge number) is left out: the
	// start could not encode it, and would be refused on every retry.
	if f, ok := workflows.AmountValue(ev.Deal.Amount.Decimal); ev.Deal.Amount.Valid && ok {
		attrs = append(attrs, workflows.AmountKey.ValueSet(f))
	}
	if ev.Deal.Currency != "" {
		attrs = append(attrs, workflows.CurrencyKey.ValueSet(ev.Deal.Currency))
	}
	if ev.Account != "" {
		attrs = append(attrs, workflows.CrmAccountKey.ValueSet(ev.Account))
	}
	memo := map[string]any{workflows.MemoMapping: conn.Mapper.Name(), workflows.MemoMappingHash: conn.Mapper.Hash(),
		workflows.MemoListens: conn.Listens()}
	return client.StartWorkflowOptions{
		ID:                       workflows.DealWorkflowID(conn.Name, ev.Account, ev.Deal.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionTimeout: s.RunTimeout,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		Memo:                     memo,
		// Report a completed run as an error instead of returning it as if
		// it had been started: that is how a duplicate is told apart.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// Start implements Starter. Events that carry the whole deal start the run
// with it (eagerly when a worker shares this process); thin events, whose
// deal is fetched after a settle time, and the events of connections whose
// runs listen for later events, are signalled with start, so that a burst
// of events for one deal all reach its one run.
func (s *TemporalStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	opts, in := s.options(conn, ev), s.input(conn, ev)
	s.describe(&opts, workflows.InvoiceDealName, in, in.Mapping, in.MappingHash)
	if ev.Thin || conn.Listens() {
		res, metRunning, err := s.start(ctx, opts.ID, ev, func(ctx context.Context) (client.WorkflowRun, error) {
			return s.Client.SignalWithStartWorkflow(ctx, opts.ID, workflows.DealEventSignal, ev, opts, workflows.InvoiceDealName, in)
		})
		if err == nil && metRunning && !ev.Thin {
			// The run it reached: one that records the deal's loss is
			// not a duplicate of an invoiced win, whatever the answer's
			// duplicate says. Unread, the answer is left as it is. A
			// thin event (a burst of them meets the deal's run) is not
			// read for: only a whole-deal loss starts such a run, and it
			// tells a newer win by the event's stage, which a thin one
			// has not.
			if desc, derr := s.Client.DescribeWorkflowExecution(ctx, opts.ID, res.RunID); derr == nil {
				res.Reason = metReason(desc.GetWorkflowExecutionInfo().GetType().GetName(), res.RunID)
			}
		}
		return res, err
	}
	opts.EnableEagerStart = s.EagerStart
	begin := func(ctx context.Context) (client.WorkflowRun, error) {
		return s.Client.ExecuteWorkflow(ctx, opts, workflows.InvoiceDealName, in)
	}
	// A win that meets a running run of the deal is most often a duplicate
	// of the win that run invoices. But a run that listens for later
	// events (the connection had a settle_time or linger when it started,
	// removed since) may hold a loss it would end with, this acknowledged
	// win unread: it gets the win. One that ended meanwhile lets a new run
	// start, once: should that one too end before the win reaches it, the
	// delivery is refused (503) and sent again, not acknowledged unread.
	for attempt := 1; ; attempt++ {
		res, metRunning, err := s.start(ctx, opts.ID, ev, begin)
		if err != nil || !metRunning {
			return res, err
		}
		again, typ, err := s.toListeningRun(ctx, res.WorkflowID, ev)
		switch {
		case err != nil:
			return res, err
		case !again:
			res.Reason = metReason(typ, res.RunID)
			return res, nil
		case attempt == 2:
			return res, fmt.Errorf("%w: starting %s: the deal's runs ended twice before the event reached one", ErrUnavailable, opts.ID)
		}
	}
}

// toListeningRun signals ev to the running run of workflow id, which a
// plain start of ev met, if that run listens for later events of its deal
// (the MemoListens memo, or a RecordDealLoss run; a run without the memo,
// started by an older intake, may listen, and is signalled too). It says
// to start again when the run ended before it was signalled; a run that
// does not listen is left alone (ev is its duplicate: no history event,
// no change recorded).
func (s *TemporalStarter) toListeningRun(ctx context.Context, id string, ev model.DealEvent) (startAgain bool, runType string, err error) {
	var nf *serviceerror.NotFound
	desc, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	switch {
	case errors.As(err, &nf):
		return true, "", nil
	case err != nil:
		return false, "", classifyStartError(id, fmt.Errorf("reading the deal's running run: %w", err))
	}
	info := desc.GetWorkflowExecutionInfo()
	runType = info.GetType().GetName()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return true, "", nil
	}
	if runType != workflows.RecordDealLossName && !workflows.Listens(info.GetMemo()) {
		return false, runType, nil
	}
	err = s.Client.SignalWorkflow(ctx, id, "", workflows.DealEventSignal, ev)
	switch {
	case err == nil:
		return false, runType, nil
	case errors.As(err, &nf):
		return true, "", nil
	}
	return false, "", classifyStartError(id, fmt.Errorf("signalling the deal's running run: %w", err))
}

// metReason is the reason of the answer to a win whose start met the
// deal's running run, of type runType: a RecordDealLoss run, which
// records the deal's loss, took the win, and invoices it only if it is
// newer than the loss; "" for an InvoiceDeal run (a duplicate indeed).
func metReason(runType, runID string) string {
	if runType != workflows.RecordDealLossName {
		return ""
	}
	return "the deal's loss is being recorded by run " + runID + " (RecordDealLoss), which was handed this win: a win older than the loss is not invoiced; " +
		"a newer one is (the run goes on as an InvoiceDeal run)"
}

// StartWriteBack starts a run of the deal that only writes its existing
// invoice back to the CRM deal: the re-run of a run whose write-back
// failed (package rerun). It has the deal's workflow ID, so it meets a run
// started meanwhile as a duplicate. It starts as "invoiced", with the
// invoice's id: should it time out or be terminated while it retries the
// write-back, `runs retry --writeback` and `deals sync` still know the
// invoice exists, and nothing starts a run that would create it again.
//
// Its memo names the mapping and hash the invoice was made with
// (madeWith, madeWithHash: the failed run's memo), not the connection's
// current mapping, which it never runs: an operator tracing an invoice to
// its mapping is not pointed at a version that did not make it. Unknown
// (""), the memo names no mapping.
//
// Its workflow ID is the deal's, unless id is a write-back run's own
// (workflows.WriteBackWorkflowID: the write-back of a run that completed
// without one, or the retry of such a write-back), which it takes, with
// the same policies: it meets a running or completed write-back of the
// deal as a duplicate, and starts after a failed one.
func (s *TemporalStarter) StartWriteBack(ctx context.Context, conn *connections.Connection, ev model.DealEvent, invoiced connectors.InvoiceResult, madeWith, madeWithHash, id string) (connectors.EventResult, error) {
	opts := s.options(conn, ev, workflows.SyncStatusKey.ValueSet(workflows.StatusInvoiced), workflows.ErpInvoiceIDKey.ValueSet(invoiced.InvoiceID))
	if workflows.IsWriteBackWorkflowID(id) {
		opts.ID = id
	}
	opts.Memo[workflows.MemoListens] = false // it only writes the invoice back
	delete(opts.Memo, workflows.MemoMapping)
	delete(opts.Memo, workflows.MemoMappingHash)
	if madeWith != "" {
		opts.Memo[workflows.MemoMapping] = madeWith
	}
	if madeWithHash != "" {
		opts.Memo[workflows.MemoMappingHash] = madeWithHash
	}
	in := s.input(conn, ev)
	in.Invoiced = &invoiced
	s.describe(&opts, workflows.InvoiceDealName, in, madeWith, madeWithHash)
	res, _, err := s.start(ctx, opts.ID, ev, func(ctx context.Context) (client.WorkflowRun, error) {
		return s.Client.ExecuteWorkflow(ctx, opts, workflows.InvoiceDealName, in)
	})
	return res, err
}

// start sends a start request (begin) of workflow id and reports what it
// did: a new run, or a duplicate that met the running (metRunning) or
// completed one.
func (s *TemporalStarter) start(ctx context.Context, id string, ev model.DealEvent, begin func(context.Context) (client.WorkflowRun, error)) (res connectors.EventResult, metRunning bool, err error) {
	res = connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: id}
	probe := &startProbe{}
	run, err := begin(withStartProbe(ctx, probe))
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			// The deal's run already completed within retention.
			res.RunID, res.Duplicate = started.RunId, true
			return res, false, nil
		}
		return res, false, classifyStartError(id, probe.withLastAnswer(err))
	}
	res.RunID = run.GetRunID()
	res.Duplicate = probe.seen && !probe.started
	return res, res.Duplicate, nil
}

// Notify implements Starter: it delivers an event that does not trigger a
// run (an amount or close-date change) to the deal's running run, if any.
// On a connection whose runs listen for later events, a loss (a
// whole-deal event that moved the deal out of the won stages,
// workflows.IsLoss) that meets no running run starts a RecordDealLoss run
// instead, unless the deal's last run completed: a win older than the
// loss, delivered later, is then not invoiced. On a connection whose runs
// settle, a recent change of a won deal that meets no running run may be
// refused (ErrWinPending) until its win's run exists (awaitsWin,
// beforeWin).
func (s *TemporalStarter) Notify(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	id := workflows.DealWorkflowID(conn.Name, ev.Account, ev.Deal.ID)
	res := connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: id}
	if recordsLoss(conn, ev) {
		// Started as skipped: `runs retry` never selects it.
		opts, in := s.options(conn, ev, workflows.SyncStatusKey.ValueSet(workflows.StatusSkipped)), s.input(conn, ev)
		s.describe(&opts, workflows.RecordDealLossName, in, in.Mapping, in.MappingHash)
		probe := &startProbe{}
		run, err := s.Client.SignalWithStartWorkflow(withStartProbe(ctx, probe), id, workflows.DealEventSignal, ev, opts, workflows.RecordDealLossName, in)
		if err != nil {
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return res, false, nil // the deal was invoiced: nothing to record
			}
			return res, false, classifyStartError(id, probe.withLastAnswer(err))
		}
		// A new run, or the deal's running run (of either type) the loss
		// was signalled to: Duplicate, as a start that meets it says, which
		// the intake answers as a hand-over (notified, duplicate false: the
		// run takes the loss, or drops it if it has its event id already).
		res.RunID, res.Duplicate = run.GetRunID(), probe.seen && !probe.started
		return res, true, nil
	}
	err := s.Client.SignalWorkflow(ctx, id, "", workflows.DealEventSignal, ev)
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		return res, true, nil
	case !errors.As(err, &nf):
		return res, false, classifyStartError(id, err)
	}
	now := s.now()
	if !s.awaitsWin(conn, ev, now) {
		return res, false, nil
	}
	return s.beforeWin(ctx, conn, ev, res, now)
}

// awaitsWin says whether ev, an event that starts no run and met no
// running run of its deal, may belong to a run that is about to start: a
// whole-deal change of an already won deal (its stage and its previous
// stage both won stages), on a connection whose runs settle, that
// occurred within the settle time of now, of a deal the trigger would
// start a run for had it just been won (winWouldStart). Its deal's win,
// which starts the run that is to bill the newest state, may not have
// reached dealsync yet: it came at the same moment to another replica, or
// it was refused (a 503) and the CRM sends it again after this event. An
// older event is skipped, as a change of a deal won before dealsync went
// live (or invoiced longer ago than the namespace's retention) is: the
// bound keeps such a change from being refused for ever. A win the
// trigger turned down (a previous stage that is not won: a free deal's
// win, with a trigger that wants an amount) has no other win to wait for,
// and a change the trigger would not start a run for (that free deal's
// later edit) is most likely of a deal no win starts a run for: both are
// skipped at once. Thin events are not held: their runs read the deal
// after the settle time, whatever events reached them.
func (s *TemporalStarter) awaitsWin(conn *connections.Connection, ev model.DealEvent, now time.Time) bool {
	won := func(stage string) bool {
		return slices.ContainsFunc(conn.WonStages, func(s string) bool { return strings.EqualFold(s, stage) })
	}
	if ev.Thin || conn.SettleTime <= 0 || ev.OccurredAt.IsZero() || !won(ev.Deal.Stage) || !won(ev.Deal.PreviousStage) {
		return false
	}
	age := now.Sub(ev.OccurredAt)
	return age < conn.SettleTime && age > -conn.SettleTime && s.winWouldStart(conn, ev)
}

// winWouldStart says whether the connection's trigger starts a run for
// ev's deal as ev has it, had the deal just been won: ev judged with no
// previous stage (as a source that does not say it sends a win). A
// trigger that fails on it is taken as a yes: the change is held, as a
// change of a won deal is, rather than skipped on a guess, and the
// trigger's error is logged at debug (the hold's refusal does not say it:
// the trigger judged the change as it came, without the error).
func (s *TemporalStarter) winWouldStart(conn *connections.Connection, ev model.DealEvent) bool {
	if conn.Trigger == nil {
		return true
	}
	ev.Deal.PreviousStage = ""
	ok, _, err := conn.Trigger.Evaluate(ev)
	if err != nil && s.Logger != nil {
		s.Logger.Debug("hold check: the trigger failed on the change judged as a win (with no previous stage); the change is held as a change of a won deal would be: fix the trigger if it is to skip such deals",
			"connection", conn.Name, "deal", ev.Deal.ID, "event", ev.EventID, "error", err.Error())
	}
	return ok || err != nil
}

// beforeWin answers ev, a change of a won deal that met no running run of
// it (awaitsWin), by the deal's last run: one started since the signal
// (the win, on another replica) is signalled the change; after a
// completed run (the deal invoiced: no later win starts another) the
// change is skipped, as before; with no run of the deal, or one that
// failed, was canceled, terminated or timed out (a win may start a new
// one), the delivery is refused with 503 (winPendingError), nothing
// acknowledged: sent again, the change reaches the run its win started,
// or, older than the settle time by then, is skipped. A deal invoiced
// longer ago than the namespace's retention has no run left to read: its
// recent change is held as one of a deal never run (the intake logs and
// counts such holds apart from an outage: Handler.webhook).
func (s *TemporalStarter) beforeWin(ctx context.Context, conn *connections.Connection, ev model.DealEvent, res connectors.EventResult, now time.Time) (connectors.EventResult, bool, error) {
	id := res.WorkflowID
	var nf *serviceerror.NotFound
	desc, err := s.Client.DescribeWorkflowExecution(ctx, id, "")
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return res, false, classifyStartError(id, fmt.Errorf("reading the deal's last run: %w", err))
	default:
		switch desc.GetWorkflowExecutionInfo().GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			return res, false, nil
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			err := s.Client.SignalWorkflow(ctx, id, "", workflows.DealEventSignal, ev)
			switch {
			case err == nil:
				return res, true, nil
			case !errors.As(err, &nf):
				return res, false, classifyStartError(id, fmt.Errorf("signalling the deal's running run: %w", err))
			}
			// It ended meanwhile: sent again, the change meets its end.
		}
	}
	return res, false, &winPendingError{conn: conn.Name, eventID: ev.EventID, dealID: ev.Deal.ID, settle: conn.SettleTime,
		retryAt: now.Add(max(time.Second, conn.SettleTime/4))}
}

func (s *TemporalStarter) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// winPendingError refuses a delivery (503, ErrWinPending) whose change of
// a won deal met no run of the deal while its win may still come
// (TemporalStarter.beforeWin). Retry-After is a quarter of the settle
// time (1 s at least): the change sent again then still reaches the run
// of a win that came with it while that run settles.
type winPendingError struct {
	conn, eventID, dealID string
	settle                time.Duration
	retryAt               time.Time
}

func (e *winPendingError) Error() string {
	return fmt.Sprintf("event %s of deal %s changes a won deal that has no run in progress: the deal's win, whose run is to bill the newest state, "+
		"may not have reached dealsync yet (another replica is starting it, or the CRM is to send it again); the delivery was not acknowledged: "+
		"send it again, with the same occurred_at. Once the event is older than connection %q's settle_time (%s) with still no run of the deal in progress, "+
		"it is skipped (a deal won before dealsync went live, or invoiced longer ago than the Temporal namespace's retention, whose run is gone)",
		e.eventID, e.dealID, e.conn, wording.Duration(e.settle))
}

func (e *winPendingError) Unwrap() error      { return ErrWinPending }
func (e *winPendingError) RetryAt() time.Time { return e.retryAt }

// Ready implements Starter: the frontend's health check, then Check (the
// namespace's search attributes, a read of the namespace).
func (s *TemporalStarter) Ready(ctx context.Context) error {
	if err := s.CheckFrontend(ctx); err != nil {
		return err
	}
	if s.Check != nil {
		if err := s.Check(ctx); err != nil {
			return err
		}
	}
	if s.Store != nil {
		return s.Store(ctx)
	}
	return nil
}

var (
	_ FrontendChecker  = (*TemporalStarter)(nil) // Watch's check, not Ready
	_ NamespaceChecker = (*TemporalStarter)(nil)
)

// CheckNamespace implements NamespaceChecker: Namespace, then Store (each
// skipped when unset).
func (s *TemporalStarter) CheckNamespace(ctx context.Context) error {
	if s.Namespace != nil {
		if err := s.Namespace(ctx); err != nil {
			return err
		}
	}
	if s.Store != nil {
		return s.Store(ctx)
	}
	return nil
}

// StoreProbeID is the workflow ID StoreProbe reads: no run has it.
const StoreProbeID = "dealsync-readiness-probe/no-such-run"

// StoreProbe checks that Temporal reads its database: it describes a run
// that does not exist, which the history service looks up in the
// database (a run that does not exist is in no cache). The frontend's
// health check and the read of the namespace (which Temporal answers
// from its cache) pass while the database is down, and every start then
// fails after intake.start_timeout: only this read says so. It costs
// the server one read of the database per check.
//
// The read's client must have StartProbeInterceptor: the SDK retries a
// read the server answers Unavailable, ResourceExhausted, Unknown, Aborted
// (or Internal, for a server that does not say it is final) until the
// check's deadline, and then says only "context deadline exceeded"; the
// interceptor keeps the server's last answer, which the StoreError says.
func StoreProbe(c client.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		probe := &startProbe{}
		_, err := c.DescribeWorkflowExecution(withStartProbe(ctx, probe), StoreProbeID, "")
		return storeProbeError(err, probe.lastAnswer())
	}
}

// storeProbeError is StoreProbe's verdict on the read's error, last the
// server's last answer to an attempt of it (nil when none failed, or
// unknown): the run not found is the database's answer (nil); no answer
// in time, or an answer that the server cannot read it now (Unavailable:
// its database down or full, its history shards moving; ResourceExhausted:
// it sheds load; Internal, Unknown, Aborted: it failed), a *StoreError, which
// names the server's last answer; the read canceled (the asker of
// /readyz gone), an error that is not the database's; a refusal of the
// intake's credentials (PermissionDenied, Unauthenticated: a gRPC proxy's
// HTTP 401 and 403 too) or any other answer is not the database's, and
// holds nothing back.
func storeProbeError(err, last error) error {
	var notFound *serviceerror.NotFound
	if err == nil || errors.As(err, &notFound) {
		return nil
	}
	if ranOutOfTime(err) {
		return &StoreError{Err: fmt.Errorf("reading a run got no answer in time: %w", withLastAnswer(err, last))}
	}
	switch code := serviceerror.ToStatus(err).Code(); code {
	case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown, codes.Aborted:
		return &StoreError{Err: fmt.Errorf("reading a run: %s: %w", code, err)}
	case codes.Canceled:
		// The check's asker went away: no answer either way, and no
		// "ready" for a read that was not made.
		return fmt.Errorf("reading a run was canceled: %w", err)
	}
	return nil
}

// CheckFrontend implements FrontendChecker: the frontend's health check
// alone (ErrUnavailable when it does not answer), which costs the server
// no database read.
func (s *TemporalStarter) CheckFrontend(ctx context.Context) error {
	if _, err := s.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// UnreachableHint says what gRPC's words of a frontend it cannot reach
// mean, where they say nothing of the cause: "no children to pick from" is
// how it reports an address whose host name does not resolve (or
// resolves to no address). "" for any other error.
func UnreachableHint(err error) string {
	if err != nil && strings.Contains(err.Error(), "no children to pick from") {
		return `gRPC says "no children to pick from" when temporal.address's host name does not resolve, or resolves to no address: check the name, and the DNS of this host`
	}
	return ""
}

func classifyStartError(id string, err error) error {
	if hint := UnreachableHint(err); hint != "" {
		return fmt.Errorf("%w: starting %s: %v (%s)", ErrUnavailable, id, err, hint)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &netErr):
		return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
	}
	// The SDK's errors are serviceerror types (NamespaceUnavailable during a
	// failover, Aborted, …), which ToStatus reads, as it reads plain gRPC
	// statuses. A namespace that is not active here (multi-cluster, while
	// another cluster takes over) is worth a retry too.
	var notActive *serviceerror.NamespaceNotActive
	if errors.As(err, &notActive) {
		return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
	}
	st := serviceerror.ToStatus(err)
	switch msg := strings.ToLower(st.Message()); {
	case st.Code() == codes.ResourceExhausted && (strings.Contains(msg, "larger than max") || strings.Contains(msg, "message too large")):
		// "grpc: received message larger than max (6122306 vs. 4194304)":
		// the frontend's gRPC message limit (4 MiB), which a start with
		// its signal (the deal twice) meets before the blob limit. The
		// same start is refused every time.
		return fmt.Errorf("%w: starting %s: %v", ErrTooLarge, id, err)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.Aborted:
		return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
	case codes.InvalidArgument:
		// "Blob data size exceeds limit.", "Memo size exceeds limit.": the
		// same start is refused every time.
		if strings.Contains(strings.ToLower(st.Message()), "size exceeds limit") {
			return fmt.Errorf("%w: starting %s: %v", ErrTooLarge, id, err)
		}
	}
	return fmt.Errorf("starting %s: %w", id, err)
}

// startProbe learns from the server's answer whether a start created a new
// run or met an existing one (USE_EXISTING). The SDK does not surface the
// response's `started` flag, so a gRPC interceptor reads it.
//
// It also keeps the server's answer to the last failed attempt of a call
// the SDK retries (lastAnswer), which the call's own error, once its
// deadline passed, no longer says.
type startProbe struct {
	seen, started bool

	mu   sync.Mutex // the SDK's retries are made one after another; for the race detector's sake
	last error
}

// answered records an attempt's error: a server's answer, not the end of
// the caller's context.
func (p *startProbe) answered(err error) {
	switch serviceerror.ToStatus(err).Code() {
	case codes.OK, codes.DeadlineExceeded, codes.Canceled:
		return
	}
	p.mu.Lock()
	p.last = err
	p.mu.Unlock()
}

// withLastAnswer adds the server's last answer to err, a call's error
// that ran out of time (the SDK's retries say nothing more of it).
func (p *startProbe) withLastAnswer(err error) error {
	return withLastAnswer(err, p.lastAnswer())
}

// withLastAnswer adds last, the server's answer to the last failed attempt
// of a call (nil when none failed), to err, the call's error, when that
// ran out of time; any other error says the server's answer itself.
func withLastAnswer(err, last error) error {
	if last == nil || !ranOutOfTime(err) {
		return err
	}
	return fmt.Errorf("%w (Temporal's last answer: %v)", err, last)
}

// ranOutOfTime says whether err is a call's deadline passing, as the
// context says it or as gRPC does.
func ranOutOfTime(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || serviceerror.ToStatus(err).Code() == codes.DeadlineExceeded
}

// lastAnswer is the server's answer to the last failed attempt, or nil.
func (p *startProbe) lastAnswer() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

type startProbeKey struct{}

func withStartProbe(ctx context.Context, p *startProbe) context.Context {
	return context.WithValue(ctx, startProbeKey{}, p)
}

// StartProbeInterceptor must be installed on the client used by
// TemporalStarter (client.Options.ConnectionOptions.DialOptions) so that
// duplicates are reported as such, and so that a start or a StoreProbe
// read that ran out of time says the server's last answer to it.
func StartProbeInterceptor() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if p, ok := ctx.Value(startProbeKey{}).(*startProbe); ok && err != nil {
			p.answered(err)
		}
		if err == nil {
			if p, ok := ctx.Value(startProbeKey{}).(*startProbe); ok {
				switch resp := reply.(type) {
				// Sticky: when the SDK retries a start whose answer was lost,
				// the retry meets the run the first attempt created.
				case *workflowservice.StartWorkflowExecutionResponse:
					p.seen, p.started = true, p.started || resp.GetStarted()
				case *workflowservice.SignalWithStartWorkflowExecutionResponse:
					p.seen, p.started = true, p.started || resp.GetStarted()
				}
			}
		}
		return err
	})
}

// recordsLoss says whether ev is a loss Notify records in a run of its own
// when its deal has none (a connection whose runs listen): such an event
// reaches a run without one running, as a start does (startAll orders a
// deal's events by it).
func recordsLoss(conn *connections.Connection, ev model.DealEvent) bool {
	return conn.Listens() && workflows.IsLoss(conn.WonStages, ev)
}
