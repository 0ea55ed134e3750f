package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// customerEnv is a run's test environment whose ERP target is erp, with
// a workflow task timeout of 10 s (Temporal's default) and its steps and
// waits recorded in rec. The run's retry policy: 5 s, doubled, at most a
// minute, so that its first two back-offs stay within the worker and
// the later ones do not.
func customerEnv(erp *fakeTarget, rec *summaryRecorder, maxAttempts int32, local bool) (*testsuite.TestWorkflowEnvironment, InvoiceDealInput) {
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	var a *activities.Activities
	env.OnActivity(a.PreviousRun, mock.Anything, mock.Anything).Return(activities.PreviousRun{}, nil).Maybe()
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls = local
	in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: maxAttempts}
	return env, in
}

// backOffEnv is a test environment of InvoiceDeal with the connection's
// activities, whose interceptor is rec (a summaryRecorder, a
// versionRecorder), for the steps' back-offs.
func backOffEnv(rec interceptor.WorkerInterceptor, conn activities.Connection) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec}})
	// A start later than the test's real time: the test environment
	// gives a local call retried after the SDK's own back-off a deadline
	// of the run's time, which, in the past, may time it out at once.
	env.SetStartTime(time.Date(2036, 11, 20, 14, 0, 0, 0, time.UTC))
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowTaskTimeout: 10 * time.Second})
	env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
	env.RegisterActivity(&activities.Activities{Connections: resolver{conn}})
	return env
}

// unavailable is n failures of the ERP (a 503 without Retry-After).
func unavailable(n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = &connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 503}
	}
	return errs
}

// rowsOf is the rows of rec that name a customer step or a timer.
// noBackOffTimer fails the test for each back-off timer of the run's
// that rec saw (what: the failure's words for one).
func noBackOffTimer(t *testing.T, rec *summaryRecorder, what string) {
	t.Helper()
	for _, r := range rec.rows {
		if strings.HasPrefix(r, "timer: back-off") {
			t.Errorf("%s: %s", what, r)
		}
	}
}

func rowsOf(rec *summaryRecorder) []string {
	var rows []string
	for _, r := range rec.rows {
		if strings.HasPrefix(r, "FindOrCreateCustomer: ") || strings.HasPrefix(r, "timer: ") {
			rows = append(rows, r)
		}
	}
	return rows
}

// A customer step retried while the ERP is down keeps its short back-offs
// within the worker (one call: attempts 1 to 3, after 5 s and 10 s) and
// waits each longer one with a timer that says what it waits for and
// until when; meanwhile the run's current details say so, with the
// error, and the call after it says the step again.
func TestCustomerBackOffsSayWhatTheyWaitFor(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(5)}
	rec := &summaryRecorder{}
	env, in := customerEnv(erp, rec, 0, true)
	var during, after string
	// Attempt 4 fails at 14:00:35; attempt 5 comes 40 s later.
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if erp.customers != 1 || len(erp.failCustomer) != 0 || erp.invoices != 1 {
		t.Fatalf("%d customers, %d failures left, %d invoices; want 1, 0, 1", erp.customers, len(erp.failCustomer), erp.invoices)
	}
	step := `FindOrCreateCustomer: ensure customer "Acme GmbH" in the ERP`
	want := []string{
		step,
		// The test environment waits even the back-offs a worker keeps
		// (at most the workflow task timeout) with the SDK's own timer.
		"timer: Sleep",
		"timer: Sleep",
		`timer: back-off: retry customer "Acme GmbH" (attempt 4) at 14:00:35 UTC`,
		step,
		`timer: back-off: retry customer "Acme GmbH" (attempt 5) at 14:01:15 UTC`,
		step,
		`timer: back-off: retry customer "Acme GmbH" (attempt 6) at 14:02:15 UTC`,
		step,
	}
	if got := strings.Join(rowsOf(rec), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the customer step and its waits say\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(during, `retrying customer "Acme GmbH" (attempt 5 at 14:01:15 UTC): `) || !strings.Contains(during, "503") {
		t.Errorf("current details during the back-off: %q", during)
	}
	if after = currentDetails(t, env); after != "" {
		t.Errorf("current details of the ended run: %q", after)
	}
}

// workflow.retry.maximum_attempts bounds the customer step's attempts,
// those within the worker and those after a timer, and the run's failure
// counts them all.
func TestCustomerBackOffsKeepMaximumAttempts(t *testing.T) {
	for _, most := range []int32{2, 4, 5} {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(10)}
		rec := &summaryRecorder{}
		env, in := customerEnv(erp, rec, most, true)
		env.ExecuteWorkflow(InvoiceDeal, in)
		err := env.GetWorkflowError()
		if err == nil {
			t.Fatalf("maximum_attempts %d: the run did not fail", most)
		}
		if made := 10 - len(erp.failCustomer); made != int(most) {
			t.Errorf("maximum_attempts %d: %d attempts", most, made)
		}
		if want := "all " + string(rune('0'+most)) + " attempts failed (workflow.retry.maximum_attempts)"; !strings.Contains(err.Error(), want) {
			t.Errorf("maximum_attempts %d: the run's failure %q does not say %q", most, err, want)
		}
		timers := 0
		for _, r := range rowsOf(rec) {
			if strings.HasPrefix(r, "timer: back-off: retry customer") {
				timers++
			}
		}
		if want := map[int32]int{2: 0, 4: 1, 5: 2}[most]; timers != want {
			t.Errorf("maximum_attempts %d: %d back-off timers, want %d:\n%s", most, timers, want, strings.Join(rowsOf(rec), "\n"))
		}
	}
}

// A customer step that fails for good (the ERP refuses the customer)
// ends the run at once: no retry, no wait.
func TestCustomerRefusedDoesNotWait(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failCustomer: []error{
		&connectors.APIError{Service: "erp", Op: "find customer", StatusCode: 400, Message: "name too long"},
	}}
	erp.failCustomer = append(erp.failCustomer, unavailable(3)...)
	rec := &summaryRecorder{}
	env, in := customerEnv(erp, rec, 0, true)
	env.ExecuteWorkflow(InvoiceDeal, in)
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !strings.Contains(err.Error(), "name too long") {
		t.Fatalf("want the run failed with the ERP's refusal, got %v", err)
	}
	if len(erp.failCustomer) != 3 {
		t.Errorf("%d attempts, want 1", 4-len(erp.failCustomer))
	}
	if got := rowsOf(rec); len(got) != 1 {
		t.Errorf("the customer step and its waits say\n%s\nwant the step alone", strings.Join(got, "\n"))
	}
}

// A run canceled while its customer step waits ends canceled, with no
// further attempt.
func TestCustomerBackOffCanceled(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(10)}
	rec := &summaryRecorder{}
	env, in := customerEnv(erp, rec, 0, true)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute) // in the wait before attempt 5
	env.ExecuteWorkflow(InvoiceDeal, in)
	var canceled *temporal.CanceledError
	if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("want the run canceled, got %v", err)
	}
	if made := 10 - len(erp.failCustomer); made != 4 {
		t.Errorf("%d attempts, want 4", made)
	}
}

// With external_calls: activity, Temporal retries the step (one
// activity, its attempts pending in the Web UI): no timer of the run's.
func TestCustomerActivityRetriedByTemporal(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(4)}
	rec := &summaryRecorder{}
	env, in := customerEnv(erp, rec, 0, false)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(rec); len(got) != 1 || erp.customers != 1 {
		t.Errorf("%d customers; the customer step and its waits say\n%s\nwant the step alone", erp.customers, strings.Join(got, "\n"))
	}
}

// A step's call that made more attempts than stepRetries asked for (a
// call of a run under way before the change, which the SDK retried after
// its own timers) counts them all, as its failure numbers them: the next
// wait is the policy's after them, and maximum_attempts counts them. A
// call whose last attempt timed out made all its attempts (its failure's
// cause, numbered, is an earlier attempt's).
func TestStepRetriesCountTheCallsAttempts(t *testing.T) {
	refused := temporal.NewApplicationError("down", activities.ErrTypeERPUnavailable, activities.Attempt{Number: 3})
	type waited struct {
		n    int
		wait time.Duration
	}
	for _, tc := range []struct {
		initial time.Duration
		first   error
		most    int32
		waits   []waited
		calls   int
	}{
		{initial: 15 * time.Second, first: refused, waits: []waited{{4, time.Minute}}, calls: 2},
		{initial: 15 * time.Second, first: refused, most: 3, calls: 1},
		// 5 s, 10 s within the worker: the call makes 3 attempts.
		{initial: 5 * time.Second, first: temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE,
			temporal.NewApplicationError("down", activities.ErrTypeERPUnavailable, activities.Attempt{Number: 1})),
			waits: []waited{{4, 20 * time.Second}}, calls: 2},
	} {
		var waits []waited
		calls := 0
		wf := func(ctx workflow.Context) (int32, error) {
			in := InvoiceDealInput{LocalCalls: true, ActivityTimeout: 10 * time.Second,
				Retry: RetryPolicy{InitialInterval: tc.initial, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: tc.most}}
			return stepRetries{ctx: ctx, in: in, change: "test-change",
				call: func(*temporal.RetryPolicy, time.Duration, time.Duration, int32) workflow.Future {
					calls++
					f, set := workflow.NewFuture(ctx)
					if calls == 1 {
						set.SetError(tc.first)
					} else {
						set.Set(nil, nil)
					}
					return f
				},
				backOff: func(n int, wait time.Duration, _ error) (string, string) {
					waits = append(waits, waited{n, wait})
					return "back-off", "retrying"
				}}.run(nil)
		}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowTaskTimeout: 10 * time.Second})
		env.RegisterWorkflow(wf)
		env.ExecuteWorkflow(wf)
		if tc.most > 0 {
			if env.GetWorkflowError() == nil {
				t.Errorf("maximum_attempts %d: the step did not fail", tc.most)
			}
		} else if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if calls != tc.calls || len(waits) != len(tc.waits) || (len(waits) > 0 && waits[0] != tc.waits[0]) {
			t.Errorf("maximum_attempts %d: %d calls, waits %v; want %d, %v", tc.most, calls, waits, tc.calls, tc.waits)
		}
	}
}

// The write-back step's long back-offs are timers that say so too, and
// the run's current details why.
func TestWriteBackBackOffsSayWhatTheyWaitFor(t *testing.T) {
	crm := &fakeCRM{failWriteBack: 4}
	rec := &summaryRecorder{}
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls, in.WriteBack = true, true
	in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	var during string
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if crm.writeBacks != 1 || crm.failWriteBack != 0 {
		t.Fatalf("%d write-backs, %d failures left; want 1, 0", crm.writeBacks, crm.failWriteBack)
	}
	var rows []string
	for _, r := range rec.rows {
		if strings.HasPrefix(r, "WriteBack: ") || strings.HasPrefix(r, "timer: ") {
			rows = append(rows, r)
		}
	}
	step := "WriteBack: write invoice N-1 back to deal D-9 in the CRM"
	want := []string{step, "timer: Sleep", "timer: Sleep", // within the worker (see TestCustomerBackOffsSayWhatTheyWaitFor)
		"timer: back-off: retry write-back of invoice N-1 to deal D-9 (attempt 4) at 14:00:35 UTC", step,
		"timer: back-off: retry write-back of invoice N-1 to deal D-9 (attempt 5) at 14:01:15 UTC", step}
	if got := strings.Join(rows, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the write-back step and its waits say\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(during, "retrying write-back of invoice N-1 to deal D-9 (attempt 5 at 14:01:15 UTC): ") || !strings.Contains(during, "503") {
		t.Errorf("current details during the back-off: %q", during)
	}
}

// A run recorded before customer-back-off-timers (or
// writeback-back-off-timers), replayed after the step's first call
// failed with attempts and time left (a failure of an earlier release,
// numbered 0; a write-back, whose failures are not numbered; a budget
// the SDK found spent a little earlier than the workflow does), keeps
// what it recorded: the call's failure ends the step, no timer of the
// run's is made (one would not match the history: nondeterminism).
func TestStepBackOffsOfRunsBeforeTheChange(t *testing.T) {
	t.Run("customer", func(t *testing.T) {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(10)}
		rec := &summaryRecorder{}
		env, in := customerEnv(erp, rec, 0, true)
		env.OnGetVersion(customerBackOffChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("want the run failed with the ERP's 503, got %v", err)
		}
		// The call's attempts: 1 to 3 (5 s, 10 s within the worker).
		if made := 10 - len(erp.failCustomer); made != 3 {
			t.Errorf("%d attempts, want 3", made)
		}
		noBackOffTimer(t, rec, "a timer of the run's")
	})
	t.Run("write-back", func(t *testing.T) {
		crm := &fakeCRM{failWriteBack: 10}
		rec := &summaryRecorder{}
		env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, WriteBacker: crm})
		env.OnGetVersion(writeBackBackOffChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
		in.LocalCalls, in.WriteBack = true, true
		in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
		env.ExecuteWorkflow(InvoiceDeal, in)
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeWriteBackFailed {
			t.Fatalf("want the run failed WriteBackFailed, got %v", err)
		}
		if crm.failWriteBack != 7 || crm.writeBacks != 0 {
			t.Errorf("%d attempts, %d write-backs; want 3, 0", 10-crm.failWriteBack, crm.writeBacks)
		}
		noBackOffTimer(t, rec, "a timer of the run's")
	})
}

// versionRecorder records the change ids a run asks workflow.GetVersion
// for: each asked for the first time is a marker in the run's history.
type versionRecorder struct {
	interceptor.WorkerInterceptorBase
	changes []string
}

func (r *versionRecorder) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return withOutbound(next, func(out interceptor.WorkflowOutboundInterceptor) interceptor.WorkflowOutboundInterceptor {
		return &versionOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, r: r}
	})
}

type versionOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	r *versionRecorder
}

func (o *versionOutbound) GetVersion(ctx workflow.Context, changeID string, minSupported, maxSupported workflow.Version) workflow.Version {
	o.r.changes = append(o.r.changes, changeID)
	return o.Next.GetVersion(ctx, changeID, minSupported, maxSupported)
}

// A fetch, customer, invoice (of a run that does not listen) or
// write-back step that succeeds at once, or after retries within its
// first call (back-offs of 5 s and 10 s, a Retry-After of 8 s), adds
// nothing to the run's history: it asks for none of
// fetch-back-off-timers, customer-back-off-timers,
// invoice-back-off-timers, writeback-back-off-timers and
// long-retry-after-timers (a marker, then the timers they gate; the
// benchmarks count on the happy path's events).
func TestStepsThatDoNotWaitAddNoEvents(t *testing.T) {
	for _, fetch := range []bool{false, true} {
		for _, failures := range []int{0, 2} {
			crm := &fakeCRM{failWriteBack: failures, deal: wonDeal("D-9", "100.00"), failFetch: map[int]error{}}
			erp := &fakeTarget{keys: map[string]bool{}, failCustomer: unavailable(failures)}
			for i := 1; i <= failures; i++ {
				crm.failFetch[i] = rateLimited("crm", "fetch deal", 8*time.Second)
				erp.failInvoice = append(erp.failInvoice, rateLimited("erp", "create invoice", 8*time.Second))
			}
			rec := &versionRecorder{}
			env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp, WriteBacker: crm, Fetcher: crm})
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
			if fetch {
				in = input(model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-9", Stage: "closedwon"}, Thin: true})
				in.Fetch, in.WonStages = true, []string{"closedwon"}
			}
			in.LocalCalls, in.WriteBack = true, true
			in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
			env.ExecuteWorkflow(InvoiceDeal, in)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			fetches := 0
			if fetch {
				fetches = failures + 1
			}
			if erp.customers != 1 || erp.invoices != 1 || crm.writeBacks != 1 || crm.fetches != fetches || len(erp.failCustomer) != 0 || crm.failWriteBack != 0 {
				t.Fatalf("fetch %v, %d failures: %d customers, %d invoices, %d write-backs, %d fetches; want 1, 1, 1, %d",
					fetch, failures, erp.customers, erp.invoices, crm.writeBacks, crm.fetches, fetches)
			}
			for _, c := range rec.changes {
				if c == customerBackOffChange || c == writeBackBackOffChange || c == fetchBackOffChange || c == invoiceBackOffChange || c == longRetryAfterChange {
					t.Errorf("fetch %v, %d failures: the run asked for %s", fetch, failures, c)
				}
			}
		}
	}
}
