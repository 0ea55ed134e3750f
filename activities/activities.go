// Package activities holds every step of a dealsync run that touches the
// outside world or may fail: mapping, validation, the CRM and the ERP calls.
// Each runs as a Temporal activity (local or regular, as the workflow
// chooses), so it is retried durably and recorded in the run's history;
// errors are classified for Temporal in one place (errors.go).
package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/localcalls"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/model"
)

// Connection is what the activities need of a configured connection.
type Connection struct {
	Mapper mapping.Mapper
	Target connectors.Target
	// TargetName is the configured name of Target, which the ERP steps'
	// failures name: the fix of a refused credential is in the target's
	// settings. "" names none.
	TargetName string
	// TargetIdentity is where Target's calls go
	// (connectors.IdentifyTarget): the ERP steps of a run started for
	// another refuse to call it (checkTarget). Zero: not known (no step
	// is refused).
	TargetIdentity connectors.TargetIdentity
	// AccountTargets overrides Target for some CRM accounts (multi-tenant),
	// each with its name.
	AccountTargets map[string]NamedTarget
	// Fetcher reads full deals from the CRM (nil for sources whose events
	// carry the whole deal); WriteBacker records the invoice on the deal.
	Fetcher     connectors.DealFetcher
	WriteBacker connectors.WriteBacker
}

// NamedTarget is an ERP target with its configured name ("" names none)
// and its identity (Connection.TargetIdentity).
type NamedTarget struct {
	Name     string
	Target   connectors.Target
	Identity connectors.TargetIdentity
}

// TargetFor is the ERP target of a CRM account.
func (c Connection) TargetFor(account string) connectors.Target {
	if t, ok := c.AccountTargets[account]; ok {
		return t.Target
	}
	return c.Target
}

// TargetNameFor is the configured name of the ERP target of a CRM account
// (TargetFor), "" when the connection does not say.
func (c Connection) TargetNameFor(account string) string {
	if t, ok := c.AccountTargets[account]; ok {
		return t.Name
	}
	return c.TargetName
}

// TargetIdentityFor is where the ERP steps of a CRM account's deal call
// (TargetFor): the identity the intake pins in a run's input, and each of
// its ERP steps compares with its own (checkTarget).
func (c Connection) TargetIdentityFor(account string) connectors.TargetIdentity {
	if t, ok := c.AccountTargets[account]; ok {
		return t.Identity
	}
	return c.TargetIdentity
}

// erpFailure is err, the failure of an ERP step, with the connection and
// the target it called: `connection "pd": target "books": …`. The
// target's settings hold the ERP's credentials and ids, so a failure
// that names only the connection reads as the CRM's.
func erpFailure(connection, target string, err error) error {
	if target == "" {
		return fmt.Errorf("connection %q: %w", connection, err)
	}
	return fmt.Errorf("connection %q: target %q: %w", connection, target, err)
}

// Resolver finds a connection by name. It is consulted at each activity, so
// a reloaded config applies to steps that have not run yet.
type Resolver interface {
	Resolve(name string) (Connection, bool)
}

// Activities are the run steps; register a *Activities with the worker.
type Activities struct {
	Connections Resolver
	// Runs reads earlier runs of a deal (PreviousRun); nil reads none.
	Runs RunReader
	// ConfigPath is the worker's config file, absolute ("" when it has
	// none: defaults and DEALSYNC_* variables): a MappingError's advice
	// gives it to `dealsync mapping test --config`, which finds the
	// mapping by its name there.
	ConfigPath string
	// TargetMismatchGrace is how long an ERP step this worker refuses for
	// another target than its run's (checkTarget) is retried, counted
	// from the step's first attempt (workflow.target_mismatch_grace):
	// past it the refusal is not retryable and the run fails. 0 retries
	// it as long as the run's retries last.
	TargetMismatchGrace time.Duration
	// Now is the clock that counts it (nil: time.Now).
	Now func() time.Time

	failures lastFailures
	attempts attemptLog
}

// now is a.Now, or time.Now.
func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// MapInput is the input of MapDeal.
type MapInput struct {
	Connection string          `json:"connection"`
	Event      model.DealEvent `json:"event"`
	// Snapshot pins the mapping file version the run started with (nil for
	// the built-in mapping).
	Snapshot *mapping.Snapshot `json:"snapshot,omitempty"`
	// Mapping is the name of the mapping the run started with, as the
	// intake recorded it ("" in runs started before it was passed).
	Mapping string `json:"mapping,omitempty"`
}

// MapResult is the mapped invoice and the exact mapping version used.
type MapResult struct {
	Invoice     model.Invoice   `json:"invoice"`
	Mapping     string          `json:"mapping"`
	MappingHash string          `json:"mapping_hash"`
	Tolerance   decimal.Decimal `json:"tolerance"`
}

// MapDeal evaluates the connection's mapping on the event. The result is
// recorded, so the run keeps this version of the mapping to its end.
func (a *Activities) MapDeal(ctx context.Context, in MapInput) (_ MapResult, err error) {
	defer a.observe(ctx, "map", in.Connection, in.Event.Deal.ID, 0, time.Now(), &err)
	mapper, err := a.runMapper(in)
	if err != nil {
		return MapResult{}, err
	}
	inv, err := mapper.Map(in.Event)
	if err == nil {
		err = inv.CheckDates()
	}
	if err != nil {
		var me *mapping.Error
		if errors.As(err, &me) {
			var snapshot string
			if in.Snapshot != nil {
				snapshot = in.Snapshot.Hash
			}
			return MapResult{}, mappingError(me, mappingPath(mapper), a.ConfigPath, a.fetchedDeal(in), snapshot)
		}
		return MapResult{}, temporalError(err)
	}
	return MapResult{Invoice: inv, Mapping: mapper.Name(), MappingHash: mapper.Hash(), Tolerance: mapper.Tolerance()}, nil
}

// fetchedDeal is the deal of in as read from its connection's CRM, for a
// connection that reads its deals there (a thin source's: its event says
// little more than the deal's id), or nil: a MappingError's advice then
// names `mapping test --fetch`, not a deal file the user does not have.
func (a *Activities) fetchedDeal(in MapInput) *fetchedDeal {
	conn, ok := a.Connections.Resolve(in.Connection)
	if !ok || conn.Fetcher == nil || in.Event.Deal.ID == "" {
		return nil
	}
	return &fetchedDeal{connection: in.Connection, account: in.Event.Account, dealID: in.Event.Deal.ID}
}

// mappingPath is m's file, absolute (the worker's working directory may
// not be the reader's), or "" for the built-in mapping.
func mappingPath(m mapping.Mapper) string {
	f, ok := m.(interface{ Path() string })
	if !ok || f.Path() == "" {
		return ""
	}
	if abs, err := filepath.Abs(f.Path()); err == nil {
		return abs
	}
	return f.Path()
}

// runMapper is the mapping the run started with: the file version of its
// snapshot, or the built-in mapping. Neither needs the connection, so a
// worker whose config does not have it yet (a rolling deploy that adds
// it) still maps; only runs started before the mapping's name was passed
// map with what their connection names now.
func (a *Activities) runMapper(in MapInput) (mapping.Mapper, error) {
	switch {
	case in.Snapshot != nil:
		if conn, ok := a.Connections.Resolve(in.Connection); ok && conn.Mapper.Hash() == in.Snapshot.Hash {
			return conn.Mapper, nil
		}
		// The file changed since the run started: use the run's version.
		m, err := mapping.FromSnapshot(in.Snapshot)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeMapping, nil)
		}
		return m, nil
	case in.Mapping == mapping.DefaultName:
		return mapping.Builtin, nil
	}
	conn, err := a.resolve(in.Connection)
	if err != nil {
		return nil, err
	}
	return conn.Mapper, nil
}

// ValidateInput is the input of ValidateInvoice.
type ValidateInput struct {
	Connection string              `json:"connection"`
	Invoice    model.Invoice       `json:"invoice"`
	DealAmount decimal.NullDecimal `json:"deal_amount"`
	Tolerance  decimal.Decimal     `json:"tolerance"`
}

// ValidateInvoice computes the totals and checks the invoice. A problem is
// a non-retryable failure that names every offending field.
func (a *Activities) ValidateInvoice(ctx context.Context, in ValidateInput) (_ model.Invoice, err error) {
	defer a.observe(ctx, "validate", in.Connection, in.Invoice.SourceDealID, 0, time.Now(), &err)
	inv := in.Invoice
	inv.ComputeTotals()
	if err := inv.Validate(model.ValidateOptions{DealAmount: in.DealAmount, Tolerance: in.Tolerance}); err != nil {
		return model.Invoice{}, temporalError(err)
	}
	return inv, nil
}

// CustomerInput is the input of FindOrCreateCustomer.
type CustomerInput struct {
	Connection     string         `json:"connection"`
	Account        string         `json:"account,omitempty"`
	Customer       model.Customer `json:"customer"`
	IdempotencyKey string         `json:"idempotency_key"`
	// DealID is the deal the customer is billed for, for the step's log
	// lines ("" in runs started before it was given).
	DealID string `json:"deal_id,omitempty"`
	// Target is the ERP target the run was started for
	// (InvoiceDealInput.ERPTarget): the step refuses to call another
	// (checkTarget). Nil in runs started before it was pinned.
	Target *connectors.TargetIdentity `json:"erp_target,omitempty"`
	// StepStart is when the step's first attempt was scheduled (the
	// workflow's time): a refusal for another target than Target is
	// retried for Activities.TargetMismatchGrace from it. Zero in calls
	// scheduled by an earlier release's worker: retried as before.
	StepStart time.Time `json:"step_start,omitempty"`
	// ReturnWaitsOver: a local call's failure that asks for a retry after
	// longer than it (a Retry-After) ends the call (returnLongWait), for
	// the workflow to wait with a timer that says so. 0 in the calls of
	// steps the workflow does not retry so.
	ReturnWaitsOver time.Duration `json:"return_waits_over,omitempty"`
	// AttemptsBefore is the number of the step's attempts made by earlier
	// calls (the workflow waits a long back-off between two calls): the
	// step's log lines number its attempts in the step, as the run's
	// failure counts them, not in the call.
	AttemptsBefore int32 `json:"attempts_before,omitempty"`
}

// FindOrCreateCustomer returns the ERP's customer for the invoice, created
// under connectors.CustomerKey(in.IdempotencyKey, in.Customer).
func (a *Activities) FindOrCreateCustomer(ctx context.Context, in CustomerInput) (_ connectors.CustomerRef, err error) {
	// (Deferred first, run last: the attempt is logged and counted with
	// its own failure, retried, not as returnLongWait ends the call.)
	defer returnLongWait(ctx, &err, in.ReturnWaitsOver)
	defer a.observe(ctx, "customer", in.Connection, in.DealID, in.AttemptsBefore, time.Now(), &err)
	conn, err := a.resolve(in.Connection)
	if err != nil {
		return connectors.CustomerRef{}, err
	}
	if err := a.checkTarget(ctx, in.Connection, in.Account, conn, in.Target, in.StepStart, "", false); err != nil {
		return connectors.CustomerRef{}, err
	}
	target := conn.TargetNameFor(in.Account)
	// What the target logs of the customer (one it could not claim) names
	// the run it belongs to.
	ctx = connectors.WithLogAttrs(ctx, runLogAttrs(ctx, in.Connection, target, in.DealID)...)
	ref, err := conn.TargetFor(in.Account).FindOrCreateCustomer(ctx, in.Customer, connectors.CustomerKey(in.IdempotencyKey, in.Customer))
	if err = a.failures.withEarlier(ctx, err); err != nil {
		return connectors.CustomerRef{}, erpError(ctx, erpFailure(in.Connection, target, err))
	}
	return ref, nil
}

// CreateInvoiceInput is the input of CreateInvoice.
type CreateInvoiceInput struct {
	Connection     string                 `json:"connection"`
	Account        string                 `json:"account,omitempty"`
	Invoice        model.Invoice          `json:"invoice"`
	Customer       connectors.CustomerRef `json:"customer"`
	IdempotencyKey string                 `json:"idempotency_key"`
	// AttemptsBefore is the number of the step's attempts made by earlier
	// calls (a run that listens to its deal's events makes its first
	// attempts one call each, then the rest in one call): what this
	// worker noted of another call's attempts is not taken for this
	// call's, and its failures and log lines number their attempt in the
	// step.
	AttemptsBefore int32 `json:"attempts_before,omitempty"`
	// EarlierMayHaveMade says that an attempt of an earlier call may have
	// made the invoice (its outcome unknown): every attempt's failure
	// says so, as one after such an attempt of the same call does.
	EarlierMayHaveMade bool `json:"earlier_may_have_made,omitempty"`
	// Target is the ERP target the run was started for, as
	// CustomerInput's.
	Target *connectors.TargetIdentity `json:"erp_target,omitempty"`
	// StepStart is CustomerInput's.
	StepStart time.Time `json:"step_start,omitempty"`
	// ReturnWaitsOver is CustomerInput's.
	ReturnWaitsOver time.Duration `json:"return_waits_over,omitempty"`
}

// CreateInvoice creates the invoice in the ERP exactly once: the key is the
// same on every attempt, so a retry after a lost response is a replay.
func (a *Activities) CreateInvoice(ctx context.Context, in CreateInvoiceInput) (_ connectors.InvoiceResult, err error) {
	// (Deferred first, run last: the attempt is logged and counted with
	// its own failure, retried, not as returnLongWait ends the call.)
	defer returnLongWait(ctx, &err, in.ReturnWaitsOver)
	defer a.observe(ctx, "invoice", in.Connection, in.Invoice.SourceDealID, in.AttemptsBefore, time.Now(), &err)
	conn, err := a.resolve(in.Connection)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	target := conn.TargetNameFor(in.Account)
	ctx, wrote := connectors.TrackWrites(ctx)
	// What the target logs of the invoice (a total that differs in the
	// ERP) names the run it belongs to.
	ctx = connectors.WithLogAttrs(ctx, runLogAttrs(ctx, in.Connection, target, in.Invoice.SourceDealID)...)
	// What an earlier attempt of the step did is not known here when its
	// outcome was unknown (no answer, a gateway's: the workflow says so of
	// an earlier call's, EarlierMayHaveMade), or this worker did not see
	// it end (it ran on another worker, or ran out of time with its write
	// under way): it may have made the invoice. Earlier attempts of this
	// call that were each refused before the ERP acted (a 429, a 503 with
	// Retry-After) made nothing. This attempt is noted started, not
	// refused, until it returns: one that never does is not taken for a
	// refused one by the next.
	n := attemptOf(ctx)
	earlierMay := in.EarlierMayHaveMade || (n > 1 && !a.failures.earlierRefused(ctx, in.AttemptsBefore))
	// A worker that would call another target than the run's sends
	// nothing; an earlier attempt, sent to the run's target, may have
	// made the invoice there, which a run retried for another target
	// would not find.
	note := ""
	if earlierMay && in.Target != nil {
		note = fmt.Sprintf("; an earlier attempt of this step, sent to %s, "+MayHaveMadeInvoice+" (reference %q) there: "+
			"look for it there before retrying the run for another target or invoicing by hand", in.Target.Description, in.Invoice.Reference)
	}
	if err := a.checkTarget(ctx, in.Connection, in.Account, conn, in.Target, in.StepStart, note, earlierMay); err != nil {
		a.failures.noteAttempt(ctx, in.AttemptsBefore, !earlierMay)
		return connectors.InvoiceResult{}, err
	}
	a.failures.noteAttempt(ctx, in.AttemptsBefore, false)
	res, err := conn.TargetFor(in.Account).CreateInvoice(ctx, in.Invoice, in.Customer, in.IdempotencyKey)
	if err = a.failures.withEarlier(ctx, err); err != nil {
		err = erpFailure(in.Connection, target, err)
		// What `runs retry` does about an invoice this step may have made
		// is the target's, as this worker's config has it (the run's pin
		// when the worker's says nothing).
		retry := InvoiceRetryAdvice(invoiceRetry(conn.TargetIdentityFor(in.Account), in.Target), "dealsync runs retry")
		if connectors.IsEarlierAnswer(err) {
			// Answered with an invoice other than the one sent (billed to
			// another customer: made by an earlier request of the key,
			// or fixed data of a proxy or mock at base_url): this attempt
			// made nothing, a retry gets the same answer, and the
			// target's message says what it answered and what to do.
			return connectors.InvoiceResult{}, writeError(ctx, err, true)
		}
		if earlierMay {
			// An earlier attempt may have made the invoice (its answer
			// lost), so this failure, which may end the run, says so,
			// and claims nothing was sent by none of them.
			return connectors.InvoiceResult{}, writeError(ctx, fmt.Errorf("%w; this was attempt %d: an earlier one "+MayHaveMadeInvoice+" (reference %q) in the ERP: "+
				"look for it there before invoicing by hand%s", err, n+in.AttemptsBefore, in.Invoice.Reference, retry), true)
		}
		// This attempt's own write may have made the invoice (no answer, a
		// gateway's), or did (a read after it failed): its failure, which
		// ends the run when it is the last attempt, says so too. A token
		// endpoint's failure sent nothing.
		switch {
		case wrote():
			err = fmt.Errorf("%w; "+MadeInvoiceBefore+" (reference %q) before this failure: "+
				"look for it there before invoicing by hand%s", err, in.Invoice.Reference, retry)
		case erpkit.IsTokenFailure(err):
		case connectors.MayHaveActed(err):
			err = fmt.Errorf("%w; the ERP "+MayHaveMadeInvoice+" (reference %q) all the same: "+
				"look for it there before invoicing by hand%s", err, in.Invoice.Reference, retry)
		}
		err = writeError(ctx, err, wrote())
		a.failures.noteAttempt(ctx, in.AttemptsBefore, wroteNothing(err))
		return connectors.InvoiceResult{}, err
	}
	if activity.IsActivity(ctx) {
		// The one line at info a run leaves for its deal: an operator
		// follows a deal to its invoice by grepping its id (the SDK's
		// activity logger adds the run's workflow and run ids). An
		// answer the ERP replayed (a reset or retried run's, under the
		// same idempotency key) made nothing: it says so.
		msg := "invoice made"
		if res.Replayed {
			msg = "invoice found: the ERP already had it (idempotent replay)"
		}
		activity.GetLogger(ctx).Info(msg, "connection", in.Connection, "deal_id", in.Invoice.SourceDealID,
			"reference", in.Invoice.Reference, "invoice_id", res.InvoiceID, "invoice_number", res.Number, "replayed", res.Replayed)
	}
	return res, nil
}

// invoiceRetry is the identity that says what a retry of the invoice step
// does (InvoiceRetryAdvice): here, the one this worker's config gives the
// run's target, or, when that is not known, pinned, the run's.
func invoiceRetry(here connectors.TargetIdentity, pinned *connectors.TargetIdentity) connectors.TargetIdentity {
	if here.IsZero() && pinned != nil {
		return *pinned
	}
	return here
}

// TargetInput is the input of TargetName.
type TargetInput struct {
	Connection string `json:"connection"`
	Account    string `json:"account,omitempty"`
}

// TargetName is the configured name of the ERP target that the ERP steps
// of a connection call for a CRM account (TargetNameFor): "" when this
// worker does not have the connection, or it names none. A run whose ERP
// step's last attempt timed out names it in its failure, as the step's
// other failures do (erpFailure): the timeout leaves the step no failure
// of its own.
func (a *Activities) TargetName(_ context.Context, in TargetInput) (string, error) {
	conn, ok := a.Connections.Resolve(in.Connection)
	if !ok {
		return "", nil
	}
	return conn.TargetNameFor(in.Account), nil
}

// runLogAttrs are the attributes of a line a connector logs during an ERP
// step (connectors.WithLogAttrs): the connection, its target (when
// named), the deal and, in a step, the run's workflow and run ids, as the
// intake logs them.
func runLogAttrs(ctx context.Context, connection, target, dealID string) []any {
	args := []any{"connection", connection}
	if target != "" {
		args = append(args, "target", target)
	}
	args = append(args, "deal_id", dealID)
	if activity.IsActivity(ctx) {
		run := activity.GetInfo(ctx).WorkflowExecution
		args = append(args, "workflow_id", run.ID, "run_id", run.RunID)
	}
	return args
}

// attemptOf is the attempt number of the step running in ctx (1 for the
// first; 0 outside a step, as in tests that call the activity directly).
func attemptOf(ctx context.Context) int32 {
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).Attempt
	}
	return 0
}

// FetchInput is the input of FetchDeal.
type FetchInput struct {
	Connection string `json:"connection"`
	Account    string `json:"account,omitempty"`
	DealID     string `json:"deal_id"`
	// ReturnWaitsOver and AttemptsBefore are CustomerInput's.
	ReturnWaitsOver time.Duration `json:"return_waits_over,omitempty"`
	AttemptsBefore  int32         `json:"attempts_before,omitempty"`
}

// FetchDeal reads the deal's current state (company, line items) from the
// CRM, for sources whose webhooks only say that something changed.
func (a *Activities) FetchDeal(ctx context.Context, in FetchInput) (_ model.Deal, err error) {
	// (Deferred first, run last: the attempt is logged and counted with
	// its own failure, retried, not as returnLongWait ends the call.)
	defer returnLongWait(ctx, &err, in.ReturnWaitsOver)
	defer a.observe(ctx, "fetch_deal", in.Connection, in.DealID, in.AttemptsBefore, time.Now(), &err)
	conn, err := a.resolve(in.Connection)
	if err != nil {
		return model.Deal{}, err
	}
	if conn.Fetcher == nil {
		return model.Deal{}, crmError(fmt.Errorf("connection %q: its source cannot fetch deals: %w", in.Connection, connectors.ErrPermanent))
	}
	deal, err := conn.Fetcher.FetchDeal(ctx, in.Account, in.DealID)
	if err = a.failures.withEarlier(ctx, err); err != nil {
		return model.Deal{}, fetchError(ctx, fmt.Errorf("connection %q: fetching deal %s: %w", in.Connection, in.DealID, err))
	}
	return deal, nil
}

// WriteBackInput is the input of WriteBack.
type WriteBackInput struct {
	Connection string                   `json:"connection"`
	Account    string                   `json:"account,omitempty"`
	DealID     string                   `json:"deal_id"`
	Result     connectors.InvoiceResult `json:"result"`
	// Required: the run exists to write the invoice back (a write-back-only
	// run), so a connection without a write-back on this worker fails the
	// step, retried, rather than taking it as done (a replay does not
	// compare a step's input).
	Required bool `json:"required,omitempty"`
	// ReturnWaitsOver and AttemptsBefore are CustomerInput's.
	ReturnWaitsOver time.Duration `json:"return_waits_over,omitempty"`
	AttemptsBefore  int32         `json:"attempts_before,omitempty"`
}

// WriteBackOutcome is the result of WriteBack: empty when the invoice was
// written back. Runs recorded before it have none (their step took the
// write-back as done).
type WriteBackOutcome struct {
	// Skipped says why nothing was written: the connection writes nothing
	// back on the worker that ran the step (its config lacks the
	// write-back the run started with). `runs retry --writeback
	// --completed` reads it in the run's history.
	Skipped string `json:"skipped,omitempty"`
}

// WriteBack records the invoice on the CRM deal. It is its own step: when
// it fails, only it is retried, never the invoice. A connection that writes
// nothing back on this worker skips it, saying so in its outcome and the
// log, unless the step is Required.
func (a *Activities) WriteBack(ctx context.Context, in WriteBackInput) (_ WriteBackOutcome, err error) {
	skipped := ""
	// (Deferred first, run last: the attempt is logged and counted with
	// its own failure, retried, not as returnLongWait ends the call.)
	defer returnLongWait(ctx, &err, in.ReturnWaitsOver)
	defer a.observe(ctx, "write_back", in.Connection, in.DealID, in.AttemptsBefore, time.Now(), &err, &skipped)
	conn, err := a.resolve(in.Connection)
	if err != nil {
		return WriteBackOutcome{}, err
	}
	if conn.WriteBacker == nil && in.Required {
		// A worker whose config is older than the command's that started
		// the run: done here, the write-back would be lost for good.
		return WriteBackOutcome{}, temporal.NewApplicationError(fmt.Sprintf("connection %q writes nothing back to its CRM on this worker, and this run exists to write invoice %s back: "+
			"retried; give every worker the config `runs retry --writeback` ran with "+
			"(with external_calls: local the run stays on this worker until it stops, or the step's retries run out)",
			in.Connection, in.Result.InvoiceID), ErrTypeConnectionUnavailable, Attempt{NotSent: true, Number: attemptOf(ctx)})
	}
	if conn.WriteBacker == nil {
		// The run started with a write-back its connection no longer has
		// here (a config older than the intake's, or one that dropped it).
		out := WriteBackOutcome{Skipped: fmt.Sprintf("connection %q writes nothing back to its CRM on this worker", in.Connection)}
		skipped = metrics.StepWriteBackSkipped
		if activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("write-back skipped: the run started with a write-back that this worker's config does not have "+
				"(no write_back.url, or no write-back field); once every worker has it, `dealsync runs retry --writeback --completed` writes it back "+
				"(with --timed-out, --terminated or --canceled for a run that ends so)",
				"connection", in.Connection, "deal_id", in.DealID, "invoice_id", in.Result.InvoiceID)
		}
		return out, nil
	}
	if err := a.failures.withEarlier(ctx, conn.WriteBacker.WriteBack(ctx, in.Account, in.DealID, in.Result)); err != nil {
		return WriteBackOutcome{}, writeBackError(ctx, fmt.Errorf("connection %q: writing back to deal %s: %w", in.Connection, in.DealID, err))
	}
	return WriteBackOutcome{}, nil
}

// observe records one attempt of a step in the metrics: ok, or the type
// of the failure as the Web UI shows it (ERPRateLimited, MappingError, ...).
// outcomeOf, when given and set, names the outcome of a step that
// succeeded without doing its work (WriteBackSkipped). A failed attempt is
// logged at warn too: a step made as a local call
// (external_calls: local, the default) shows no pending step in the Web UI
// while the worker retries it, so the worker's log is where an operator
// sees why a run waits; its attempt is numbered in the step (before: the
// attempts of the step's earlier calls, which a long back-off of the
// workflow's own separates), as the run's failure counts them. Those
// warnings of a run's step are throttled (attemptLog): past its first
// few, at most one a minute of each failure type, with how many were not
// logged. A panic (a connector's bug) is recorded as "Panic", then goes
// on: the SDK fails the attempt and retries it.
func (a *Activities) observe(ctx context.Context, step, connection, deal string, before int32, start time.Time, err *error, outcomeOf ...*string) {
	if p := recover(); p != nil {
		metrics.Step(step, connection, "Panic", time.Since(start))
		panic(p)
	}
	// A local call that failed (its retry's back-off follows, in the same
	// workflow task) or took long holds its run's workflow task: the
	// SDK's warning of a long task is then expected (app's logger).
	if activity.IsActivity(ctx) && (*err != nil || time.Since(start) > time.Second) {
		if info := activity.GetInfo(ctx); info.IsLocalActivity {
			localcalls.Ran(info.WorkflowExecution.RunID, time.Now())
		}
	}
	outcome := metrics.StepOK
	if len(outcomeOf) > 0 && *outcomeOf[0] != "" && *err == nil {
		outcome = *outcomeOf[0] // a step that succeeded without doing its work
	}
	if *err != nil {
		outcome = "Error" // not classified (a bug, or a failure no type covers): retried
		var appErr *temporal.ApplicationError
		if errors.As(*err, &appErr) && appErr.Type() != "" {
			outcome = appErr.Type()
		}
		if activity.IsActivity(ctx) {
			// The SDK's activity logger names the run and the step's
			// attempt. (The SDK's own line of an activity's failed
			// attempt, at error, the worker's client logs at debug:
			// app.quietActivityErrors.)
			// A failure no run survives, and that someone must fix
			// (endsTheRun, not retried), is an error; any other a warning:
			// one retried, or one the run outlives (a CRM's refusal of a
			// deal's re-read). An attempt that is the last of
			// workflow.retry.maximum_attempts is not told apart: the
			// workflow makes some calls one attempt at a time and retries
			// them itself.
			log := activity.GetLogger(ctx).Warn
			msg := "step attempt failed"
			var notLogged int
			var throttleNext bool
			if appErr := (*temporal.ApplicationError)(nil); errors.As(*err, &appErr) && appErr.NonRetryable() &&
				(endsTheRun[outcome] || step == "write_back" && crmRefusals[outcome]) {
				log, msg = activity.GetLogger(ctx).Error, "step failed: the run ends"
				notLogged = a.attempts.ended(stepKey(ctx))
			} else {
				var logIt bool
				if logIt, notLogged, throttleNext = a.attempts.failed(stepKey(ctx), outcome, a.now()); !logIt {
					metrics.Step(step, connection, outcome, time.Since(start))
					return
				}
			}
			attrs := []any{"step", step, "connection", connection}
			if deal != "" {
				attrs = append(attrs, "deal_id", deal)
			}
			attrs = append(attrs, "attempt", before+activity.GetInfo(ctx).Attempt, "error_type", outcome, "error", (*err).Error())
			if notLogged > 0 {
				attrs = append(attrs, "attempts_not_logged", notLogged)
			}
			if throttleNext {
				attrs = append(attrs, "throttled", "this step's later failed attempts of the same error_type are logged at most once a minute, with attempts_not_logged")
			}
			log(msg, attrs...)
		}
	} else if activity.IsActivity(ctx) {
		a.attempts.ended(stepKey(ctx))
	}
	metrics.Step(step, connection, outcome, time.Since(start))
}

// endsTheRun are the failure types of a step that end its run for
// someone to fix, when not retried: logged at error.
var endsTheRun = map[string]bool{ErrTypeMapping: true, ErrTypeValidation: true, ErrTypeERPRejected: true, ErrTypeERPUnauthorized: true}

// crmRefusals end the run when its write-back gets them (WriteBackFailed);
// a run outlives them on a deal's re-read.
var crmRefusals = map[string]bool{ErrTypeCRMRejected: true, ErrTypeCRMUnauthorized: true}

func (a *Activities) resolve(name string) (Connection, error) {
	conn, ok := a.Connections.Resolve(name)
	if !ok {
		// Retryable: a worker with an older config may pick the task up
		// before its config is updated; another worker (or a reload) can
		// do it. Nothing was sent: a listening run can still stop on a loss.
		return Connection{}, temporal.NewApplicationError(fmt.Sprintf("connection %q is not configured on this worker", name),
			ErrTypeConnectionUnavailable, Attempt{NotSent: true})
	}
	return conn, nil
}
