package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	enums "go.temporal.io/api/enums/v1"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// fakeTarget is an in-memory ERP that counts what it is asked to do.
type fakeTarget struct {
	customers, invoices int
	currencies          []model.Currency // of the customers asked for
	totals              []string         // of the invoices made
	keys                map[string]bool
	failInvoice         []error
	failCustomer        []error
	// wroteFirst: the invoice's failures come after its write was sent
	// (a target that reads back what it wrote).
	wroteFirst bool
	// now, if set, is the clock of invoiceAt: when each invoice attempt
	// came.
	now       func() time.Time
	invoiceAt []time.Time
	// duringInvoice, if set, runs in the nth invoice attempt (from 1).
	duringInvoice func(n int)
	attempts      int
	// warning, if set, is what the target notices about each invoice.
	warning string
}

func (f *fakeTarget) FindOrCreateCustomer(_ context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	if len(f.failCustomer) > 0 {
		err := f.failCustomer[0]
		f.failCustomer = f.failCustomer[1:]
		return connectors.CustomerRef{}, err
	}
	f.customers++
	f.currencies = append(f.currencies, c.Currency)
	return connectors.CustomerRef{ID: "CUS-" + c.ExternalID}, nil
}

func (f *fakeTarget) CreateInvoice(ctx context.Context, inv model.Invoice, _ connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	if f.now != nil {
		f.invoiceAt = append(f.invoiceAt, f.now())
	}
	f.attempts++
	if f.duringInvoice != nil {
		f.duringInvoice(f.attempts)
	}
	if f.wroteFirst {
		connectors.WriteDone(ctx)
	}
	if len(f.failInvoice) > 0 {
		err := f.failInvoice[0]
		f.failInvoice = f.failInvoice[1:]
		return connectors.InvoiceResult{}, err
	}
	if f.keys[key] {
		return connectors.InvoiceResult{InvoiceID: "INV-" + inv.Reference, Replayed: true}, nil
	}
	f.keys[key] = true
	f.invoices++
	f.totals = append(f.totals, inv.Total.StringFixed(2))
	return connectors.InvoiceResult{InvoiceID: "INV-" + inv.Reference, Number: "N-1", Warning: f.warning}, nil
}

func (f *fakeTarget) PlanInvoice(model.Invoice, connectors.CustomerRef, string) (connectors.Request, error) {
	return connectors.Request{}, nil
}

// fakeCRM serves fetches and write-backs.
type fakeCRM struct {
	deal          model.Deal
	fetches       int
	writeBacks    int
	failWriteBack int
	// stages, if set, is the deal's stage at each fetch (the last one
	// stays); duringFetch runs inside each fetch, given its number.
	stages      []string
	duringFetch func(n int)
	dealAt      map[int]func(*model.Deal) // changes the deal of fetch n
	failFetch   map[int]error             // the failure of fetch n
	// writeBackFaults are the failures of the first write-backs, before
	// those of failWriteBack.
	writeBackFaults []error
}

func (f *fakeCRM) FetchDeal(_ context.Context, account, dealID string) (model.Deal, error) {
	f.fetches++
	if f.duringFetch != nil {
		f.duringFetch(f.fetches)
	}
	if err := f.failFetch[f.fetches]; err != nil {
		return model.Deal{}, err
	}
	d := f.deal
	if len(f.stages) > 0 {
		d.Stage = f.stages[min(f.fetches, len(f.stages))-1]
	}
	if change := f.dealAt[f.fetches]; change != nil {
		change(&d)
	}
	d.ID = dealID
	return d, nil
}

func (f *fakeCRM) WriteBack(_ context.Context, account, dealID string, r connectors.InvoiceResult) error {
	if len(f.writeBackFaults) > 0 {
		err := f.writeBackFaults[0]
		f.writeBackFaults = f.writeBackFaults[1:]
		return err
	}
	if f.failWriteBack > 0 {
		f.failWriteBack--
		return &connectors.APIError{Service: "crm", Op: "write back", StatusCode: 503}
	}
	f.writeBacks++
	return nil
}

type resolver struct{ conn activities.Connection }

func (r resolver) Resolve(string) (activities.Connection, bool) { return r.conn, true }

func wonDeal(id string, amount string) model.Deal {
	return model.Deal{
		ID: id, Name: "Deal " + id, Stage: "closedwon", Currency: "EUR",
		Amount:    decimal.NewNullDecimal(decimal.RequireFromString(amount)),
		CloseDate: model.NewDate(2026, 11, 20),
		Company:   model.Company{ID: "C-1", Name: "Acme GmbH"},
	}
}

func newEnv(t *testing.T, conn activities.Connection) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
	env.RegisterActivityWithOptions(&activities.Activities{Connections: resolver{conn}}, activity.RegisterOptions{})
	return env
}

func input(ev model.DealEvent) InvoiceDealInput {
	return InvoiceDealInput{
		Connection: "c", Event: ev, ActivityTimeout: 10 * time.Second,
		Retry: RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
	}
}

func TestInvoiceDealHappyPath(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{PaymentTermsDays: 30}, Target: erp})
	env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-1", "100.00")}))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if r.InvoiceID != "INV-D-1" || r.CustomerID != "CUS-C-1" || r.Mapping != mapping.DefaultName || r.MappingHash == "" {
		t.Fatalf("result %+v", r)
	}
	if erp.invoices != 1 || erp.customers != 1 {
		t.Fatalf("ERP saw %d invoices, %d customer calls", erp.invoices, erp.customers)
	}
	// The customer is asked for in the invoice's currency (QuickBooks
	// makes a multicurrency company's customers in it).
	if len(erp.currencies) != 1 || erp.currencies[0] != "EUR" {
		t.Fatalf("customer asked for in %v, want EUR", erp.currencies)
	}
}

func TestInvoiceDealRetriesRateLimitAfterAdvertisedDelay(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: 7 * time.Second},
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503},
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	var attempts []int32
	var startedAt []time.Time // the test environment's clock, which skips waits
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "CreateInvoice" {
			startedAt = append(startedAt, env.Now())
		}
	})
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if info.ActivityType.Name == "CreateInvoice" {
			attempts = append(attempts, info.Attempt)
		}
	})
	env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-2", "100.00")}))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if erp.invoices != 1 {
		t.Fatalf("%d invoices", erp.invoices)
	}
	// The listener sees the successful completion: on attempt 3, after the
	// 429 and the 503 were retried (a run that does not listen retries
	// within one call).
	if len(attempts) == 0 || attempts[len(attempts)-1] != 3 {
		t.Fatalf("CreateInvoice succeeded on attempts %v, want 3", attempts)
	}
	// The retry after the 429 waited the advertised 7 s (NextRetryDelay),
	// not the policy's 1 s; the one after the 503 used the policy (1 s × 2).
	if len(startedAt) != 3 {
		t.Fatalf("CreateInvoice started %d times, want 3", len(startedAt))
	}
	if gap := startedAt[1].Sub(startedAt[0]); gap < 7*time.Second || gap >= 8*time.Second {
		t.Errorf("retry after 429 came %v after the first attempt, want 7s", gap)
	}
	if gap := startedAt[2].Sub(startedAt[1]); gap < 2*time.Second || gap >= 7*time.Second {
		t.Errorf("retry after 503 came %v after the second attempt, want the policy's backoff (2s)", gap)
	}
}

// outageRun runs a deal with the calls as local activities against an ERP
// that answers n invoice attempts 503, in a run of the given timeout whose
// back-offs grow to maxInterval; it returns when the run has ended.
func outageRun(t *testing.T, n int, runTimeout, maxInterval time.Duration) (*fakeTarget, *testsuite.TestWorkflowEnvironment, time.Time) {
	var outage []error
	for range n {
		outage = append(outage, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503})
	}
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: outage}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: runTimeout})
	began := env.Now()
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-OUT", "100.00")})
	in.LocalCalls, in.Retry.MaximumInterval = true, maxInterval
	env.ExecuteWorkflow(InvoiceDeal, in)
	return erp, env, began
}

// With the calls as local activities (the default), an ERP that answers
// 503 for far longer than one attempt's timeout is retried until it comes
// back, within the run's timeout, as a regular activity would be: the
// retries are not bounded by the activity timeout.
func TestInvoiceDealLocalCallsRetryBeyondTheActivityTimeout(t *testing.T) {
	// 1+2+4+8 s, then every 10 s: about 4.5 minutes of 503s
	const attempts = 30
	erp, env, began := outageRun(t, attempts, 24*time.Hour, 10*time.Second)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("the run gave up during a %d-attempt outage: %v", attempts, err)
	}
	if erp.invoices != 1 || len(erp.failInvoice) != 0 {
		t.Fatalf("%d invoices, %d failures left", erp.invoices, len(erp.failInvoice))
	}
	if took := env.Now().Sub(began); took < 4*time.Minute {
		t.Errorf("the run ended %v after it began (the test clock); the outage's back-offs add up to more than 4 minutes", took)
	}
}

// A local call is retried for a day at most, even in a run allowed three:
// longer, its heartbeats would fill the run's history. The run then fails
// with the ERP's error.
func TestInvoiceDealLocalCallsGiveUpAfterADay(t *testing.T) {
	// back-offs up to an hour: far more than a day of 503s
	_, env, began := outageRun(t, 100, 72*time.Hour, time.Hour)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeERPUnavailable {
		t.Fatalf("want the run to fail with the ERP's 503 (ERPUnavailable), got %v", err)
	}
	if took := env.Now().Sub(began); took < 23*time.Hour || took > 25*time.Hour {
		t.Errorf("the run gave up %v after it began (the test clock), want about a day", took)
	}
}

func TestInvoiceDealERPRejectionIsNotRetried(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 422, Message: "AccountCode 999 is not valid", Field: "lines[0].account_code"},
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-3", "100.00")}))
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeERPRejected || !strings.Contains(appErr.Error(), "AccountCode 999 is not valid") {
		t.Fatalf("want a non-retryable ERPRejected error with the vendor message, got %v", err)
	}
	// No details rather than one null detail, which the Web UI cannot
	// parse ("Unexpected end of JSON input").
	if appErr.HasDetails() {
		t.Error("the run's failure has details, where its step's had none")
	}
	if len(erp.failInvoice) != 0 || erp.invoices != 0 {
		t.Fatal("rejection was retried or an invoice was made")
	}
	// The run's message, as the Web UI shows it, is the step's own: not
	// decorated with the SDK's "(type: …, retryable: …)".
	// It ends saying what to do.
	if msg := appErr.Message(); msg != `connection "c": erp create invoice: HTTP 422 on lines[0].account_code: AccountCode 999 is not valid; `+
		`once the cause is fixed (in the ERP, the mapping or the target's settings), start the run again with dealsync runs retry (which says why when it does not)` || strings.Contains(msg, "(type:") {
		t.Errorf("run failure message %q", msg)
	}
}

// A failed run's failure, as Temporal stores it and the Web UI shows it
// (its Result panel), has the step's message once: at failure.message,
// with no cause repeating it (the step's error, its activity failure and
// that one's cause).
func TestInvoiceDealFailureHasItsMessageOnce(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 422, Message: "AccountCode 999 is not valid", Field: "lines[0].account_code"},
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-3", "100.00")}))
	var wfErr *temporal.WorkflowExecutionError
	if err := env.GetWorkflowError(); !errors.As(err, &wfErr) {
		t.Fatalf("want the run to fail, got %v", err)
	}
	// The run's failure is the workflow error's cause, converted as the
	// SDK converts what a workflow returns into its close event.
	f := temporal.GetDefaultFailureConverter().ErrorToFailure(wfErr.Unwrap())
	if f.GetApplicationFailureInfo().GetType() != activities.ErrTypeERPRejected || !f.GetApplicationFailureInfo().GetNonRetryable() {
		t.Fatalf("run failure %v: want a non-retryable ERPRejected", f)
	}
	if f.GetCause() != nil {
		t.Errorf("the run's failure has a cause (%v): the Web UI shows its message again", f.GetCause())
	}
	if n := strings.Count(f.String(), "AccountCode 999 is not valid"); n != 1 {
		t.Errorf("the run's failure says the ERP's message %d times, want once: %v", n, f)
	}
}

// A step whose last attempt timed out (the SDK's bare TimeoutError of a
// local activity, which names no step) ends the run with a message naming
// the step and the type of the system it calls, not the SDK's "activity
// error" without a type.
func TestStepTimedOutIsNamed(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", temporal.NewTimeoutError(enums.TIMEOUT_TYPE_START_TO_CLOSE, nil))
	for step, want := range map[string]string{
		"FetchDeal": activities.ErrTypeCRMUnavailable, "WriteBack": activities.ErrTypeCRMUnavailable,
		"FindOrCreateCustomer": activities.ErrTypeERPUnavailable, "CreateInvoice": activities.ErrTypeERPUnavailable,
		"PreviousRun": activities.ErrTypeTemporalUnavailable, "MapDeal": ErrTypeStepTimedOut,
	} {
		msg, typ, ok := stepTimedOut(step, err)
		if !ok || typ != want || !strings.HasPrefix(msg, step+" ") || !strings.Contains(msg, "StartToClose") {
			t.Errorf("%s: %q, %q, %v; want type %s", step, msg, typ, ok, want)
		}
		if rootMessage(step, err) != msg {
			t.Errorf("%s: rootMessage %q", step, rootMessage(step, err))
		}
	}
	if _, _, ok := stepTimedOut("FetchDeal", errors.New("other")); ok {
		t.Error("another error taken for a timeout")
	}
	// A step run as an activity whose worker died got no heartbeat from
	// it, where the system it calls may have answered in time: it said
	// that system did not answer within activity_timeout.
	lost := temporal.NewTimeoutError(enums.TIMEOUT_TYPE_HEARTBEAT, nil)
	if msg, typ, ok := stepTimedOut("CreateInvoice", lost); !ok || typ != activities.ErrTypeERPUnavailable ||
		!strings.Contains(msg, "lost its worker on its last attempt (Heartbeat): the worker running it sent no heartbeat for 20s") || strings.Contains(msg, "activity_timeout") {
		t.Errorf("a heartbeat's timeout: %q, %q, %v; want the lost worker named", msg, typ, ok)
	}
}

// The same through a run: a local CRM fetch that outlasts activity_timeout
// on its one attempt fails the run as CRMUnavailable naming FetchDeal.
func TestLocalFetchThatTimesOutFailsTheRunNamingIt(t *testing.T) {
	crm := &fakeCRM{deal: wonDeal("D-SLOW", "100.00"), duringFetch: func(int) { time.Sleep(300 * time.Millisecond) }}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, Fetcher: crm})
	in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-SLOW", Stage: "closedwon"}})
	in.Fetch, in.WonStages, in.LocalCalls = true, []string{"closedwon"}, true
	in.ActivityTimeout, in.Retry.MaximumAttempts = 50*time.Millisecond, 1
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeCRMUnavailable || !strings.HasPrefix(appErr.Message(), "FetchDeal ") {
		t.Fatalf("%v; want CRMUnavailable naming FetchDeal", err)
	}
}

// A run canceled while it settles ends canceled at once: it maps
// nothing and calls no one, and is not marked failed (it went on to map
// with the canceled context, and recorded a failed map step).
func TestInvoiceDealCanceledWhileSettlingEndsCanceled(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &fakeCRM{deal: wonDeal("", "250.00")}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Thin: true, Account: "42", Deal: model.Deal{ID: "D-4", Stage: "closedwon"}})
	in.Fetch, in.WonStages, in.SettleTime = true, []string{"closedwon"}, 10*time.Minute
	var steps, statuses []string
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		steps = append(steps, info.ActivityType.Name)
	})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if status, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(SyncStatusKey); ok {
			statuses = append(statuses, status)
		}
	}).Return(nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var canceled *temporal.CanceledError
	if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("%v; want the run canceled", err)
	}
	if crm.fetches != 0 || erp.invoices != 0 || len(steps) != 0 || slices.Contains(statuses, StatusFailed) {
		t.Errorf("fetches %d, invoices %d, steps %v, SyncStatus %v; want nothing after the cancel, and the run not marked failed", crm.fetches, erp.invoices, steps, statuses)
	}
}

// A burst of thin events for one deal: the run settles, fetches the final
// state once, invoices once, writes back, and events after the invoice
// are recorded as changes, not invoiced again.
func TestInvoiceDealSettlesFetchesWritesBackAndRecordsLateChanges(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &fakeCRM{deal: wonDeal("", "250.00"), failWriteBack: 2}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Thin: true, Account: "42", Deal: model.Deal{ID: "D-4", Stage: "closedwon"}})
	in.Fetch, in.WriteBack, in.WonStages = true, true, []string{"closedwon"}
	in.SettleTime, in.Linger = 10*time.Second, time.Hour
	signal := func(after time.Duration, id string) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: id, Thin: true, Account: "42", Deal: model.Deal{ID: "D-4"}})
		}, after)
	}
	signal(2*time.Second, "e2")  // amount change during settle
	signal(3*time.Second, "e1")  // duplicate delivery
	signal(30*time.Minute, "e3") // a change after the invoice
	// A late delivery of an event of an hour before the fetch (a CRM's
	// retry): the fetch read its change; received, no change after.
	start := env.Now()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e0", OccurredAt: start.Add(-time.Hour), Thin: true, Account: "42", Deal: model.Deal{ID: "D-4"}})
	}, 40*time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if crm.fetches != 1 || erp.invoices != 1 || crm.writeBacks != 1 {
		t.Fatalf("fetches %d invoices %d write-backs %d, want 1 each", crm.fetches, erp.invoices, crm.writeBacks)
	}
	if strings.Join(r.Events, ",") != "e1,e2,e3,e0" || strings.Join(r.ChangedAfterInvoice, ",") != "e3" {
		t.Fatalf("events %v changed-after %v; want e0 received, not a change", r.Events, r.ChangedAfterInvoice)
	}
	if r.InvoiceID == "" {
		t.Fatalf("no invoice in result %+v", r)
	}
}

func TestInvoiceDealSkipsDealNoLongerWon(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &fakeCRM{deal: wonDeal("", "250.00")}
	crm.deal.Stage = "closedlost"
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-5", Stage: "closedwon"}})
	in.Fetch, in.WonStages = true, []string{"closedwon"}
	env.ExecuteWorkflow(InvoiceDeal, in)
	// A failure (not a completion), so a later won event can start a new run.
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || !appErr.NonRetryable() {
		t.Fatalf("want a non-retryable DealNotWon failure, got %v", err)
	}
	if erp.invoices != 0 {
		t.Fatal("a lost deal was invoiced")
	}
}

// A deal merged into another (HubSpot's merged_into) ends DealNotWon
// naming the deal it went into, whose own run invoices the sale.
func TestInvoiceDealNamesTheDealAMergedDealWentInto(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &fakeCRM{deal: wonDeal("", "250.00")}
	crm.deal.Stage, crm.deal.Raw = "merged", map[string]json.RawMessage{"merged_into": json.RawMessage(`"106"`)}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-5", Stage: "closedwon"}})
	in.Fetch, in.WonStages = true, []string{"closedwon"}
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon ||
		!strings.Contains(appErr.Message(), `the deal's stage is now merged (merged into deal 106, whose own run invoices the sale when it is won: find it by DealId = "106"), not a won stage`) {
		t.Fatalf("a merged deal: %v", err)
	}
	if mergedInto(model.Deal{Stage: "closedlost"}) != "" {
		t.Error("a note for a deal that was not merged")
	}
}

// A thin event delivered while the run fetches a deal that turns out not
// won (moved out of the won stage and back, say): the run fetches again
// instead of ending DealNotWon with the event unread, which would leave
// the deal won and never invoiced (its webhook was acknowledged).
func TestInvoiceDealFetchesAgainForAnEventDuringAFetch(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprint("local calls ", local), func(t *testing.T) { testFetchesAgain(t, local) })
	}
}

func testFetchesAgain(t *testing.T, local bool) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedlost", "closedwon"}}
	// The not-won fetch also says an owner and line items; the deal read
	// again has neither: nothing of the first fetch may stay.
	crm.dealAt = map[int]func(*model.Deal){1: func(d *model.Deal) {
		d.Owner = "stale-owner"
		d.LineItems = []model.LineItem{{Description: "stale", Quantity: decimal.NewFromInt(1), UnitPrice: decimal.NewFromInt(999)}}
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
	crm.duringFetch = func(n int) {
		if n == 1 {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", Thin: true, Deal: model.Deal{ID: "D-5b"}})
		}
	}
	in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-5b", Stage: "closedwon"}})
	in.Fetch, in.WonStages, in.LocalCalls = true, []string{"closedwon"}, local
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("the run ended %v; want the deal fetched again and invoiced", err)
	}
	if len(erp.totals) != 1 || erp.totals[0] != "250.00" {
		t.Errorf("invoice totals %v, want the re-read deal's 250.00 (no line of the first fetch)", erp.totals)
	}
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if crm.fetches != 2 || erp.invoices != 1 || !slices.Equal(r.Events, []string{"e1", "e2"}) || len(r.ChangedAfterInvoice) != 0 {
		t.Errorf("%d fetches, %d invoices, result %+v", crm.fetches, erp.invoices, r)
	}

	// Without an event during the fetch, a deal not won ends the run.
	erp2 := &fakeTarget{keys: map[string]bool{}}
	crm2 := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedlost", "closedwon"}}
	env2 := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp2, Fetcher: crm2, WriteBacker: crm2})
	env2.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env2.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || crm2.fetches != 1 || erp2.invoices != 0 {
		t.Errorf("no event during the fetch: %v after %d fetches, %d invoices; want DealNotWon after 1", err, crm2.fetches, erp2.invoices)
	}
}

// A connection of whole-deal events that settles and lingers: a later
// event of the won deal delivered while the run settles (an amount
// change) is what gets invoiced; one after the invoice is recorded as a
// change, never invoiced.
func TestInvoiceDealInvoicesTheLatestWholeDealEvent(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-6", "100.00")})
	in.WonStages, in.SettleTime, in.Linger = []string{"closedwon"}, 10*time.Second, time.Hour
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Second), Deal: wonDeal("D-6", "120.00")})
	}, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e3", OccurredAt: at.Add(time.Minute), Deal: wonDeal("D-6", "999.00")})
	}, 30*time.Minute)
	// A late delivery of an event from before e2, the state invoiced (a
	// CRM's retry): received, and no change after the invoice.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e0", OccurredAt: at.Add(-time.Minute), Deal: wonDeal("D-6", "90.00")})
	}, 40*time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if erp.invoices != 1 || strings.Join(erp.totals, ",") != "120.00" {
		t.Fatalf("%d invoices of %v, want one of 120.00", erp.invoices, erp.totals)
	}
	if strings.Join(r.Events, ",") != "e1,e2,e3,e0" || strings.Join(r.ChangedAfterInvoice, ",") != "e3" {
		t.Fatalf("events %v changed-after %v; want e0 received, not a change", r.Events, r.ChangedAfterInvoice)
	}
}

// A later whole-deal event that moves the deal out of the won stages
// while the run settles ends the run as DealNotWon, with no invoice.
func TestInvoiceDealSkipsAWholeDealEventThatLeftTheWonStage(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-7", "100.00")})
	in.WonStages, in.SettleTime = []string{"closedwon"}, 10*time.Second
	lost := wonDeal("D-7", "100.00")
	lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Second), Deal: lost})
	}, 2*time.Second)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || !strings.Contains(appErr.Error(), "closedlost") {
		t.Fatalf("want DealNotWon naming closedlost, got %v", err)
	}
	if erp.invoices != 0 || erp.customers != 0 {
		t.Fatalf("%d invoices, %d customer calls for a lost deal", erp.invoices, erp.customers)
	}
}

// An event is an old one when it happened before the previous run's
// newest event, or when that run saw it at that time (or without one); a
// seen id with a newer time is a new event.
func TestStaleWin(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	prev := activities.NotWonDetails{EventIDs: []string{"e1", "e2"}, LatestAt: t0.Add(time.Minute)}
	for _, c := range []struct {
		ev   model.DealEvent
		want bool
	}{
		{model.DealEvent{EventID: "e1", OccurredAt: t0}, true},
		{model.DealEvent{EventID: "e2", OccurredAt: t0.Add(time.Minute)}, true},
		{model.DealEvent{EventID: "e1"}, true},
		{model.DealEvent{EventID: "e1", OccurredAt: t0.Add(time.Hour)}, false},
		{model.DealEvent{EventID: "e3", OccurredAt: t0}, true},
		{model.DealEvent{EventID: "e3", OccurredAt: t0.Add(time.Minute)}, false},
		{model.DealEvent{EventID: "e3", OccurredAt: t0.Add(5 * time.Minute)}, false},
		{model.DealEvent{EventID: "e3"}, false},
	} {
		if got := staleWin(c.ev, prev); got != c.want {
			t.Errorf("staleWin(%s at %v) = %v, want %v", c.ev.EventID, c.ev.OccurredAt, got, c.want)
		}
	}
}

// A listening connection's run whose won event is older than the events
// that ended the deal's last run as DealNotWon invoices nothing; one that
// gets a newer event while it reads that run (a signal during the step)
// goes on and invoices the newer state.
func TestInvoiceDealReadsTheLastNotWonRun(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	prev := activities.PreviousRun{RunID: "run-1", ErrorType: ErrTypeDealNotWon,
		NotWon: &activities.NotWonDetails{EventIDs: []string{"e1", "e2"}, LatestAt: t0.Add(time.Minute), Stage: "closed_lost"}}
	won := func(id string, at time.Time) model.DealEvent {
		d := wonDeal("D-9", "100.00")
		return model.DealEvent{EventID: id, OccurredAt: at, Deal: d}
	}
	start := func(t *testing.T, newer bool) (*fakeTarget, InvoiceDealResult, error) {
		erp := &fakeTarget{keys: map[string]bool{}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		var a *activities.Activities
		// The read names its deal, for its log lines.
		env.OnActivity(a.PreviousRun, mock.Anything, mock.MatchedBy(func(in activities.PreviousRunInput) bool { return in.DealID == "D-9" })).Return(prev, nil)
		if newer {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(DealEventSignal, won("e3", t0.Add(5*time.Minute))) }, 0)
		}
		in := input(won("e1", t0))
		in.SettleTime = time.Second
		env.ExecuteWorkflow(InvoiceDeal, in)
		var r InvoiceDealResult
		_ = env.GetWorkflowResult(&r)
		return erp, r, env.GetWorkflowError()
	}
	erp, _, err := start(t, false)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || !strings.Contains(err.Error(), "a delivery of an old win") || erp.invoices != 0 {
		t.Fatalf("the old won event: %v, %d invoices; want DealNotWon and none", err, erp.invoices)
	}
	var details activities.NotWonDetails
	if err := appErr.Details(&details); err != nil || strings.Join(details.EventIDs, ",") != "e1,e2" || !details.LatestAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("details carried forward: %+v %v", details, err)
	}
	erp, r, err := start(t, true)
	if err != nil || erp.invoices != 1 || strings.Join(r.Events, ",") != "e1,e3" {
		t.Fatalf("a newer event during the step: %v, %d invoices, events %v; want one invoice", err, erp.invoices, r.Events)
	}
}

// A sender that numbers its events per transition sends "42-won" again
// when the deal is won back: with a newer time it is a new event (as
// staleWin takes it), so the run that saw "42-lost" meanwhile invoices
// instead of ending DealNotWon with the won-back delivery acknowledged
// and dropped.
func TestInvoiceDealTakesAReusedEventIDWithANewerTime(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	in := input(model.DealEvent{EventID: "42-won", OccurredAt: at, Deal: wonDeal("D-8", "100.00")})
	in.WonStages, in.SettleTime = []string{"closedwon"}, 10*time.Second
	lost := wonDeal("D-8", "100.00")
	lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
	wonBack := wonDeal("D-8", "110.00")
	wonBack.PreviousStage = "closedlost"
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "42-lost", OccurredAt: at.Add(time.Second), Deal: lost})
	}, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "42-won", OccurredAt: at.Add(2 * time.Second), Deal: wonBack})
		// the same delivery again (a CRM retry): still one event
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "42-won", OccurredAt: at.Add(2 * time.Second), Deal: wonBack})
	}, 4*time.Second)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatalf("the deal was won back: %v", err)
	}
	if erp.invoices != 1 || strings.Join(erp.totals, ",") != "110.00" {
		t.Fatalf("%d invoices of %v, want one of 110.00 (the won-back deal)", erp.invoices, erp.totals)
	}
	if strings.Join(r.Events, ",") != "42-won,42-lost" {
		t.Fatalf("events %v, want each id once", r.Events)
	}
}

// A seen id at the same or an older time, or without a time, stays a
// duplicate.
func TestDealEventsKeepDuplicates(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	d := &dealEvents{seen: map[string]time.Time{}, newerReuse: func() bool { return true }}
	if !d.add(model.DealEvent{EventID: "a", OccurredAt: at}) || !d.add(model.DealEvent{EventID: "b"}) {
		t.Fatal("first events not fresh")
	}
	for _, ev := range []model.DealEvent{{EventID: "a", OccurredAt: at}, {EventID: "a", OccurredAt: at.Add(-time.Second)}, {EventID: "a"}, {EventID: "b", OccurredAt: at}} {
		if d.add(ev) {
			t.Errorf("%s at %v taken as new", ev.EventID, ev.OccurredAt)
		}
	}
	if !d.add(model.DealEvent{EventID: "a", OccurredAt: at.Add(time.Second)}) || d.latest.OccurredAt != at.Add(time.Second) {
		t.Error("a seen id with a newer time is not a new event")
	}
	d.newerReuse = func() bool { return false } // a run replaying without the rule
	if d.add(model.DealEvent{EventID: "a", OccurredAt: at.Add(time.Hour)}) {
		t.Error("taken as new without the version")
	}
}

// A linger longer than what is left of the run timeout is cut short: the
// invoiced run completes instead of ending TimedOut (after which the reuse
// policy would let the next won delivery start a full run).
func TestInvoiceDealLingersWithinTheRunTimeout(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.SetWorkflowRunTimeout(10 * time.Minute)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-9", "100.00")})
	in.WonStages, in.SettleTime, in.Linger = []string{"closedwon"}, 5*time.Second, 15*time.Minute
	later := wonDeal("D-9", "100.00")
	later.Name = "renamed"
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Hour), Deal: later})
	}, 5*time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var r InvoiceDealResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatalf("an invoiced run lingering past its timeout: %v", err)
	}
	if erp.invoices != 1 || strings.Join(r.ChangedAfterInvoice, ",") != "e2" {
		t.Fatalf("%d invoices, changed after invoice %v; want 1 and e2 (the linger still listens)", erp.invoices, r.ChangedAfterInvoice)
	}
}

// A whole-deal event that says the deal was lost, delivered while the
// customer step waits for the ERP, ends the run before the invoice: the
// deal is no longer won. An amount change delivered then is invoiced as
// mapped and recorded as a change.
func TestInvoiceDealRechecksTheStageBeforeTheInvoice(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	outage := []error{&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}, &connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}}
	run := func(t *testing.T, later model.Deal) (*fakeTarget, InvoiceDealResult, error) {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: slices.Clone(outage)}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-10", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: later})
		}, 6*time.Second) // after the settle, during the customer step's retries
		env.ExecuteWorkflow(InvoiceDeal, in)
		var r InvoiceDealResult
		err := env.GetWorkflowResult(&r)
		return erp, r, err
	}
	t.Run("lost", func(t *testing.T) {
		lost := wonDeal("D-10", "100.00")
		lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
		erp, _, err := run(t, lost)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon {
			t.Fatalf("want DealNotWon, got %v", err)
		}
		if erp.invoices != 0 {
			t.Fatalf("%d invoices of a deal lost before its invoice", erp.invoices)
		}
	})
	t.Run("amount change", func(t *testing.T) {
		erp, r, err := run(t, wonDeal("D-10", "150.00"))
		if err != nil {
			t.Fatal(err)
		}
		if erp.invoices != 1 || strings.Join(erp.totals, ",") != "100.00" || strings.Join(r.ChangedAfterInvoice, ",") != "e2" {
			t.Fatalf("%d invoices of %v, changed %v; want one of 100.00 and e2 recorded", erp.invoices, erp.totals, r.ChangedAfterInvoice)
		}
	})
}

// What the ERP target noticed about the invoice (its total differs) is
// in the run's result and, for the run list, in its memo; a run without
// a warning upserts no memo for it.
func TestInvoiceDealRecordsTheTargetsWarningInTheMemo(t *testing.T) {
	for _, warning := range []string{"invoice total differs in the ERP erp_total=112.00 invoice_total=131.84", ""} {
		erp := &fakeTarget{keys: map[string]bool{}, warning: warning}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		var memos []map[string]any
		env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
			memos = append(memos, args.Get(0).(map[string]any))
		}).Return(nil)
		env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-12", "100.00")}))
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil || r.Warning != warning {
			t.Fatalf("%v, result warning %q, want %q", err, r.Warning, warning)
		}
		var recorded []any
		for _, m := range memos {
			if w, ok := m[MemoWarning]; ok {
				recorded = append(recorded, w)
			}
		}
		switch {
		case warning != "" && !slices.Equal(recorded, []any{warning}):
			t.Errorf("memo warnings %v, want [%s]", recorded, warning)
		case warning == "" && len(recorded) > 0:
			t.Errorf("memo warnings %v, want none without a warning", recorded)
		}
	}
}

// An invoice whose subtotal no float holds still marks its run invoiced,
// with its id: the Amount is left out. Before, it made the SDK refuse the
// whole upsert, and the run stayed "pending" for operators. (Runs from
// before the change replay with it: the SDK's test environment panics on
// that refused upsert, which a worker returns as an error, so that branch
// is not run here.)
func TestInvoiceDealLeavesOutASubtotalNoFloatHolds(t *testing.T) {
	huge := "1" + strings.Repeat("0", 400)
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	var invoicedWithAmount []bool
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if status, _ := sa.GetKeyword(SyncStatusKey); status == StatusInvoiced {
			_, withID := sa.GetKeyword(ErpInvoiceIDKey)
			_, withAmount := sa.GetFloat64(AmountKey)
			if withID {
				invoicedWithAmount = append(invoicedWithAmount, withAmount)
			}
		}
	}).Return(nil)
	env.ExecuteWorkflow(InvoiceDeal, input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-11", huge)}))
	if err := env.GetWorkflowError(); err != nil || erp.invoices != 1 {
		t.Fatalf("%v, %d invoices", err, erp.invoices)
	}
	if !slices.Equal(invoicedWithAmount, []bool{false}) {
		t.Errorf("invoiced upserts (with an Amount?) %v, want one, without", invoicedWithAmount)
	}
	if f, ok := AmountValue(decimal.RequireFromString("-" + huge)); ok {
		t.Errorf("AmountValue(-1e400) = %v, true", f)
	}
	if f, ok := AmountValue(decimal.RequireFromString("1234.5")); !ok || f != 1234.5 {
		t.Errorf("AmountValue(1234.5) = %v, %v", f, ok)
	}
}

// A change delivered while the customer step retries marks the run
// ChangedAfterInvoice once its invoice exists, in the invoice's upsert,
// and not at all when the invoice is then refused: a run that made no
// invoice has no change after one (operators filter on the mark to look
// at invoices whose deal changed).
func TestInvoiceDealMarksAChangeOnceInvoiced(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	outage := []error{&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}, &connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}}
	var before bool // the run started before changed-once-invoiced
	run := func(t *testing.T, failInvoice []error) (marks []bool, invoiced bool, err error) {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: slices.Clone(outage), failInvoice: failInvoice}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		if before {
			env.OnGetVersion(changedOnceInvoicedChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		}
		env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
			sa := args.Get(0).(temporal.SearchAttributes)
			if v, ok := sa.GetBool(ChangedAfterInvoiceKey); ok {
				_, withInvoice := sa.GetKeyword(ErpInvoiceIDKey)
				marks = append(marks, v && withInvoice)
			}
		}).Return(nil)
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-10", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: wonDeal("D-10", "150.00")})
		}, 6*time.Second) // after the settle, during the customer step's retries
		env.ExecuteWorkflow(InvoiceDeal, in)
		return marks, erp.invoices == 1, env.GetWorkflowError()
	}
	t.Run("invoiced", func(t *testing.T) {
		marks, invoiced, err := run(t, nil)
		if err != nil || !invoiced {
			t.Fatalf("%v, invoiced %v; want the invoice", err, invoiced)
		}
		if !slices.Equal(marks, []bool{true}) {
			t.Errorf("ChangedAfterInvoice upserts %v, want one, with the invoice's id", marks)
		}
	})
	t.Run("invoice refused", func(t *testing.T) {
		marks, invoiced, err := run(t, []error{&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "refused"}})
		if err == nil || invoiced {
			t.Fatalf("%v, invoiced %v; want the run failed without an invoice", err, invoiced)
		}
		if len(marks) != 0 {
			t.Errorf("ChangedAfterInvoice upserted (%v) on a run that made no invoice", marks)
		}
	})
	// A run in flight from before the change marks at the first change, as
	// it did (its history has that upsert), invoiced or not.
	t.Run("started before the change", func(t *testing.T) {
		before = true
		defer func() { before = false }()
		if marks, invoiced, err := run(t, nil); err != nil || !invoiced || !slices.Equal(marks, []bool{false, true}) {
			t.Errorf("%v, invoiced %v, upserts %v; want the invoice, marked at the change and again with the invoice", err, invoiced, marks)
		}
		refused := []error{&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "refused"}}
		if marks, invoiced, err := run(t, refused); err == nil || invoiced || !slices.Equal(marks, []bool{false}) {
			t.Errorf("%v, invoiced %v, upserts %v; want no invoice, marked at the change", err, invoiced, marks)
		}
	})
}

// A loss delivered while a step before the invoice retries, which then
// fails for good (the ERP refuses the customer): the run ends DealNotWon,
// recording the loss where a later delivery of an older win reads it,
// not failed; a change that is not a loss leaves it failed.
func TestInvoiceDealStepFailedAfterALoss(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	run := func(t *testing.T, later model.Deal) error {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: []error{
			&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503},
			&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503},
			&connectors.APIError{Service: "erp", Op: "create customer", StatusCode: 422, Message: "Name is invalid"},
		}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-11", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, true
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: later})
		}, 6*time.Second) // after the settle, during the customer step's retries
		env.ExecuteWorkflow(InvoiceDeal, in)
		if erp.invoices != 0 || len(erp.failCustomer) != 0 {
			t.Fatalf("%d invoices, %d customer failures left", erp.invoices, len(erp.failCustomer))
		}
		return env.GetWorkflowError()
	}
	var appErr *temporal.ApplicationError
	t.Run("lost", func(t *testing.T) {
		lost := wonDeal("D-11", "100.00")
		lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
		var details activities.NotWonDetails
		if err := run(t, lost); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || appErr.Details(&details) != nil ||
			strings.Join(details.EventIDs, ",") != "e1,e2" || !details.LatestAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("want DealNotWon recording e1 and e2, got %v (%+v)", err, details)
		}
	})
	t.Run("amount change", func(t *testing.T) {
		if err := run(t, wonDeal("D-11", "150.00")); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeERPRejected {
			t.Fatalf("want the ERP's refusal, got %v", err)
		}
	})
}

// The input's event id sent again later with a stage that is not won (a
// sender whose ids are per deal, not per event): the deal left the won
// stage, and the run invoices nothing.
func TestInvoiceDealSkipsTheInputsIDSentAgainLost(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	in := input(model.DealEvent{EventID: "deal-42", OccurredAt: at, Deal: wonDeal("D-11", "100.00")})
	in.WonStages, in.SettleTime = []string{"closedwon"}, 10*time.Second
	lost := wonDeal("D-11", "100.00")
	lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "deal-42", OccurredAt: at.Add(time.Second), Deal: lost})
	}, 2*time.Second)
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon {
		t.Fatalf("want DealNotWon, got %v", err)
	}
	if erp.invoices != 0 {
		t.Fatalf("%d invoices of a lost deal", erp.invoices)
	}
}

// A thin CRM event delivered while the customer step waits for the ERP:
// the deal is read again before the invoice, and a deal lost meanwhile is
// not invoiced; one still won is invoiced as mapped, the event recorded as
// a change.
func TestInvoiceDealReadsAThinDealAgainBeforeTheInvoice(t *testing.T) {
	outage := []error{&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}, &connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}}
	run := func(t *testing.T, stages []string) (*fakeTarget, *fakeCRM, InvoiceDealResult, error) {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: slices.Clone(outage)}
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: stages}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
		in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-11", Stage: "closedwon"}})
		in.Fetch, in.WonStages, in.SettleTime, in.LocalCalls = true, []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", Thin: true, Deal: model.Deal{ID: "D-11", Stage: "closedlost"}})
		}, 6*time.Second) // after the settle, during the customer step's retries
		env.ExecuteWorkflow(InvoiceDeal, in)
		var r InvoiceDealResult
		err := env.GetWorkflowResult(&r)
		return erp, crm, r, err
	}
	t.Run("lost", func(t *testing.T) {
		erp, crm, _, err := run(t, []string{"closedwon", "closedlost"})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || crm.fetches != 2 {
			t.Fatalf("want DealNotWon after 2 reads, got %v after %d", err, crm.fetches)
		}
		if erp.invoices != 0 {
			t.Fatalf("%d invoices of a deal lost before its invoice", erp.invoices)
		}
	})
	t.Run("won again while read again", func(t *testing.T) {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: slices.Clone(outage)}
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedwon", "closedlost", "closedwon"}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
		crm.duringFetch = func(n int) {
			if n == 2 { // the deal is won again while it is read as lost
				env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e3", Thin: true, Deal: model.Deal{ID: "D-11", Stage: "closedwon"}})
			}
		}
		in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: "D-11", Stage: "closedwon"}})
		in.Fetch, in.WonStages, in.SettleTime, in.LocalCalls = true, []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", Thin: true, Deal: model.Deal{ID: "D-11", Stage: "closedlost"}})
		}, 6*time.Second)
		env.ExecuteWorkflow(InvoiceDeal, in)
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil {
			t.Fatalf("the run ended %v; want the deal read a third time and invoiced", err)
		}
		if erp.invoices != 1 || crm.fetches != 3 || strings.Join(r.ChangedAfterInvoice, ",") != "e2,e3" {
			t.Fatalf("%d invoices after %d reads, changed %v; want one, after 3, e2 and e3 recorded", erp.invoices, crm.fetches, r.ChangedAfterInvoice)
		}
	})
	t.Run("still won", func(t *testing.T) {
		erp, crm, r, err := run(t, []string{"closedwon", "closedwon"})
		if err != nil {
			t.Fatal(err)
		}
		if erp.invoices != 1 || crm.fetches != 2 || strings.Join(r.ChangedAfterInvoice, ",") != "e2" {
			t.Fatalf("%d invoices after %d reads, changed %v; want one, after 2, and e2 recorded", erp.invoices, crm.fetches, r.ChangedAfterInvoice)
		}
	})
}

// A loss delivered while the invoice step waits out the ERP (429s, then
// it answers): when no attempt may have made the invoice, the deal is not
// invoiced and the run ends DealNotWon, at once, not when the ERP is back;
// after an attempt whose outcome is unknown (no answer), the invoice that
// may exist is made sure of and the loss recorded as a change after it.
// A change that is not a loss is recorded and the deal invoiced. The same
// with the calls as activities, and for a thin CRM event, which has the
// deal read again.
func TestInvoiceDealReadsEventsWhileTheInvoiceStepRetries(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	limited := func(n int) []error {
		var errs []error
		for range n {
			errs = append(errs, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Minute})
		}
		return errs
	}
	lost := wonDeal("D-20", "100.00")
	lost.Stage, lost.PreviousStage = "closedlost", "closedwon"
	type outcome struct {
		erp     *fakeTarget
		r       InvoiceDealResult
		err     error
		endedAt time.Duration // after the run began, on the test clock
	}
	run := func(t *testing.T, local bool, failures []error, later model.Deal) outcome {
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: failures}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-20", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, local
		began := env.Now()
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: later})
		}, 150*time.Second) // during the invoice step's third wait
		env.ExecuteWorkflow(InvoiceDeal, in)
		var o outcome
		o.erp, o.err, o.endedAt = erp, env.GetWorkflowResult(&o.r), env.Now().Sub(began)
		return o
	}
	for _, local := range []bool{true, false} {
		t.Run(fmt.Sprintf("local %v", local), func(t *testing.T) {
			t.Run("lost while limited", func(t *testing.T) {
				o := run(t, local, limited(8), lost)
				var appErr *temporal.ApplicationError
				if !errors.As(o.err, &appErr) || appErr.Type() != ErrTypeDealNotWon || o.erp.invoices != 0 {
					t.Fatalf("%v, %d invoices; want DealNotWon and none", o.err, o.erp.invoices)
				}
				// Attempts at 5 s, 65 s and 125 s (a minute's Retry-After
				// each), the loss at 150 s during the third wait: the run
				// ends then, on the test clock, with 5 refusals unasked
				// (and, its calls local, after its 1 ms checkpoint).
				want := 150 * time.Second
				if local {
					want += time.Millisecond
				}
				if len(o.erp.failInvoice) != 5 || o.endedAt != want {
					t.Errorf("the run ended %v after it began, %d refusals left; want it ended with the loss at %v, 5 left", o.endedAt, len(o.erp.failInvoice), want)
				}
			})
			t.Run("lost after an unknown outcome", func(t *testing.T) {
				failures := append([]error{&connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer"), Wait: 30 * time.Second}}, limited(4)...)
				o := run(t, local, failures, lost)
				if o.err != nil || o.erp.invoices != 1 || strings.Join(o.r.ChangedAfterInvoice, ",") != "e2" {
					t.Fatalf("%v, %d invoices, changed %v; want the invoice made sure of and e2 recorded", o.err, o.erp.invoices, o.r.ChangedAfterInvoice)
				}
			})
			t.Run("changed while limited", func(t *testing.T) {
				o := run(t, local, limited(4), wonDeal("D-20", "150.00"))
				if o.err != nil || o.erp.invoices != 1 || strings.Join(o.erp.totals, ",") != "100.00" || strings.Join(o.r.ChangedAfterInvoice, ",") != "e2" {
					t.Fatalf("%v, %d invoices of %v, changed %v; want one of 100.00 and e2 recorded", o.err, o.erp.invoices, o.erp.totals, o.r.ChangedAfterInvoice)
				}
			})
		})
	}
	t.Run("lost during the last attempt", func(t *testing.T) {
		// The loss comes while the third and last attempt is refused (a
		// 429, nothing sent): it is read before the run ends, DealNotWon,
		// not failed ERPRateLimited with the loss unread (a later delivery
		// of the old win would then have met no loss, and invoiced).
		for _, local := range []bool{true, false} {
			erp := &fakeTarget{keys: map[string]bool{}, failInvoice: limited(5)}
			env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
			erp.duringInvoice = func(n int) {
				if n == 3 {
					env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: lost})
				}
			}
			var a *activities.Activities
			env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
			in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-23", "100.00")})
			in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, local
			in.Retry.MaximumAttempts = 3
			env.ExecuteWorkflow(InvoiceDeal, in)
			var appErr *temporal.ApplicationError
			if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || erp.invoices != 0 || erp.attempts != 3 {
				t.Errorf("local %v: %v, %d invoices after %d attempts; want DealNotWon after the 3 attempts, none", local, err, erp.invoices, erp.attempts)
			}
		}
	})
	t.Run("lost during the attempts of a long run's last call", func(t *testing.T) {
		// The history is long: after the first attempt, the rest are one
		// call. Its second attempt gets no answer (the invoice may exist)
		// and a loss comes then; the call's last attempt is refused (429).
		// The run fails: it must not say "nothing was invoiced" (DealNotWon).
		// Runs that ended DealNotWon there before the change replay so.
		for _, old := range []bool{false, true} {
			for _, local := range []bool{true, false} {
				erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
					&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Minute},
					&connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer")},
					&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Minute},
				}}
				env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
				env.SetCurrentHistoryLength(maxAttemptsHistory + 1)
				if old {
					env.OnGetVersion(restMaySendChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
				}
				erp.duringInvoice = func(n int) {
					if n == 2 {
						env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: lost})
					}
				}
				var a *activities.Activities
				env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
				in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-24", "100.00")})
				in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, local
				in.Retry.MaximumAttempts = 3
				env.ExecuteWorkflow(InvoiceDeal, in)
				want := activities.ErrTypeERPRateLimited
				if old {
					want = ErrTypeDealNotWon
				}
				var appErr *temporal.ApplicationError
				if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != want || erp.attempts != 3 {
					t.Errorf("old version %v, local %v: %v after %d attempts; want %s after 3", old, local, err, erp.attempts, want)
				}
			}
		}
	})
	t.Run("lost after an attempt that wrote, then was limited", func(t *testing.T) {
		// The 429 answered the read of what the attempt wrote: the invoice
		// may exist, so it is made sure of, and the loss recorded.
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: limited(4), wroteFirst: true}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-22", "100.00")})
		in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", OccurredAt: at.Add(time.Minute), Deal: lost})
		}, 150*time.Second)
		env.ExecuteWorkflow(InvoiceDeal, in)
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil || erp.invoices != 1 || strings.Join(r.ChangedAfterInvoice, ",") != "e2" {
			t.Fatalf("%v, %d invoices, changed %v; want the invoice made sure of and e2 recorded", err, erp.invoices, r.ChangedAfterInvoice)
		}
	})
	// thinRun runs a thin deal of a listening connection whose invoice
	// step meets failures, reading it from crm, with a thin loss of it
	// delivered at 150 s; before, if set, gets the environment first.
	thinRun := func(t *testing.T, dealID string, failures []error, crm *fakeCRM, before func(*testsuite.TestWorkflowEnvironment)) (*fakeTarget, *testsuite.TestWorkflowEnvironment) {
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: failures}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm})
		if before != nil {
			before(env)
		}
		in := input(model.DealEvent{EventID: "e1", Thin: true, Deal: model.Deal{ID: dealID, Stage: "closedwon"}})
		in.Fetch, in.WonStages, in.SettleTime, in.LocalCalls = true, []string{"closedwon"}, 5*time.Second, true
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e2", Thin: true, Deal: model.Deal{ID: dealID, Stage: "closedlost"}})
		}, 150*time.Second)
		env.ExecuteWorkflow(InvoiceDeal, in)
		return erp, env
	}
	unavailable := &connectors.APIError{Service: "hubspot", Op: "fetch deal", StatusCode: 503}
	t.Run("thin event whose deal cannot be read at once", func(t *testing.T) {
		// The read after the event fails: the deal is read again at the
		// next look, and a loss still stops the invoice.
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedwon", "closedlost"}, failFetch: map[int]error{2: unavailable}}
		erp, env := thinRun(t, "D-23", limited(8), crm, nil)
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || erp.invoices != 0 || crm.fetches != 3 {
			t.Fatalf("%v, %d invoices after %d reads; want DealNotWon, none, after 3", err, erp.invoices, crm.fetches)
		}
	})
	t.Run("thin event, won again while read as lost", func(t *testing.T) {
		// During the read the event brought, the deal is won again: the
		// deal is read again at the next look, and invoiced.
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedwon", "closedlost", "closedwon"}}
		erp, env := thinRun(t, "D-24", limited(5), crm, func(env *testsuite.TestWorkflowEnvironment) {
			crm.duringFetch = func(n int) {
				if n == 2 {
					env.SignalWorkflow(DealEventSignal, model.DealEvent{EventID: "e3", Thin: true, Deal: model.Deal{ID: "D-24", Stage: "closedwon"}})
				}
			}
		})
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil || erp.invoices != 1 || crm.fetches != 3 || strings.Join(r.ChangedAfterInvoice, ",") != "e2,e3" {
			t.Fatalf("%v, %d invoices after %d reads, changed %v; want one, after 3, e2 and e3 recorded", err, erp.invoices, crm.fetches, r.ChangedAfterInvoice)
		}
	})
	t.Run("thin event whose deal is never read before the invoice", func(t *testing.T) {
		// The reads fail until the ERP takes the invoice: the event is
		// recorded as a change after it, not dropped.
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedwon", "closedlost"}, failFetch: map[int]error{2: unavailable, 3: unavailable}}
		erp, env := thinRun(t, "D-25", limited(3), crm, nil) // the loss during the last wait
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil || erp.invoices != 1 || strings.Join(r.ChangedAfterInvoice, ",") != "e2" {
			t.Fatalf("%v, %d invoices after %d reads, changed %v; want one and e2 recorded", err, erp.invoices, crm.fetches, r.ChangedAfterInvoice)
		}
	})
	t.Run("thin event, lost while limited", func(t *testing.T) {
		crm := &fakeCRM{deal: wonDeal("", "250.00"), stages: []string{"closedwon", "closedlost"}}
		erp, env := thinRun(t, "D-21", limited(8), crm, nil)
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeDealNotWon || erp.invoices != 0 || crm.fetches != 2 || len(erp.failInvoice) != 5 {
			t.Fatalf("%v, %d invoices after %d reads, %d refusals left; want DealNotWon, none, after 2, 5 left", err, erp.invoices, crm.fetches, len(erp.failInvoice))
		}
	})
	t.Run("after an attempt that may have written, the back-off goes on", func(t *testing.T) {
		// No answer (30 s for the ERP to finish), then 503 twice: the
		// remaining retries are one call whose back-off goes on from the
		// attempts' (2 s, then 4 s; not 1 s and 2 s again).
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
			&connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer"), Wait: 30 * time.Second},
			&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503},
			&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503},
		}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		erp.now = env.Now
		var a *activities.Activities
		env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
		in := input(model.DealEvent{EventID: "e1", OccurredAt: at, Deal: wonDeal("D-26", "100.00")})
		in.WonStages, in.SettleTime = []string{"closedwon"}, 5*time.Second
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil || erp.invoices != 1 {
			t.Fatalf("%v, %d invoices; want one", err, erp.invoices)
		}
		var gaps []string
		for i := 1; i < len(erp.invoiceAt); i++ {
			gaps = append(gaps, erp.invoiceAt[i].Sub(erp.invoiceAt[i-1]).Round(time.Second).String())
		}
		if strings.Join(gaps, ",") != "30s,2s,4s" {
			t.Fatalf("attempts %v apart, want 30s,2s,4s", gaps)
		}
	})
}

// A listening run whose invoice step's first attempt got no answer (the
// invoice may exist) and whose next attempts were refused (nothing sent)
// fails saying that an earlier attempt may have made the invoice, and not
// that nothing was sent: an operator reading only the last refusal would
// bill by hand a second time. Its attempts are calls of one attempt each,
// and the rest one call: none is the SDK's attempt 2.
func TestInvoiceStepFailureSaysAnEarlierAttemptMayHaveMadeIt(t *testing.T) {
	for _, c := range []struct {
		local bool
		last  error
		says  string
	}{
		{true, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Second}, "HTTP 429"},
		{false, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Second}, "HTTP 429"},
		// A refusal's own advice (retry once fixed) gives way to looking
		// in the ERP first.
		{true, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}, "HTTP 400"},
		{false, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}, "HTTP 400"},
	} {
		local := c.local
		t.Run(fmt.Sprintf("local %v %s", local, c.says), func(t *testing.T) {
			erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
				&connectors.OutcomeUnknownError{Err: errors.New("create invoice: no answer"), Wait: time.Second},
				c.last,
			}}
			env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
			var a *activities.Activities
			env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil)
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-30", "100.00")})
			in.WonStages, in.SettleTime, in.LocalCalls = []string{"closedwon"}, time.Second, local
			in.Retry.MaximumAttempts = 2
			env.ExecuteWorkflow(InvoiceDeal, in)
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			var at activities.Attempt
			if !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), c.says) ||
				!strings.Contains(appErr.Message(), `may have made the invoice (reference "D-30")`) || erp.attempts != 2 ||
				strings.Count(appErr.Message(), "dealsync runs retry") != 1 {
				t.Fatalf("%v after %d attempts; want the %s saying an earlier attempt may have made the invoice, naming runs retry once", err, erp.attempts, c.says)
			}
			if appErr.HasDetails() && appErr.Details(&at) == nil && at.NotSent {
				t.Errorf("details %+v: the run claims nothing was sent", at)
			}
		})
	}
}

// A run started under another workflow ID than its deal's (the Web UI's
// "Start Workflow Like This One" with a random ID) makes its ERP steps
// with the deal's idempotency keys, so that an ERP that keeps the keys
// answers with the deal's invoice instead of making a second one. A run
// under its deal's own ID uses that ID.
func TestInvoiceDealUsesTheDealsIdempotencyKeys(t *testing.T) {
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	dealID := DealWorkflowID(in.Connection, in.Event.Account, in.Event.Deal.ID)
	for _, c := range []struct{ name, workflowID string }{
		{"the deal's own ID", dealID},
		{"a random ID", "82434904-5c1f-4e5b-9d3a-1f0e2d3c4b5a"},
	} {
		erp := &fakeTarget{keys: map[string]bool{dealID + "/invoice": true}} // the deal's invoice exists
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{PaymentTermsDays: 30}, Target: erp})
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: c.workflowID})
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var r InvoiceDealResult
		if err := env.GetWorkflowResult(&r); err != nil {
			t.Fatal(err)
		}
		if erp.invoices != 0 || r.InvoiceID != "INV-D-9" {
			t.Errorf("%s: %d invoices made, result %+v; want the deal's invoice answered by its key, none made", c.name, erp.invoices, r)
		}
	}
}
