package workflows

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// rateLimited is a vendor's 429 that asks for a retry after wait.
func rateLimited(service, op string, wait time.Duration) error {
	return &connectors.APIError{Service: service, Op: op, StatusCode: 429, Message: "rate limit", RetryAfter: wait, RetryAfterGiven: true}
}

// rowsNamed is the rows of rec that name step or a timer, but the
// checkpoint's.
func rowsNamed(rec *summaryRecorder, step string) []string {
	var rows []string
	for _, r := range rec.rows {
		if strings.HasPrefix(r, step+": ") || strings.HasPrefix(r, "timer: ") && r != "timer: "+checkpointSummary {
			rows = append(rows, r)
		}
	}
	return rows
}

// A Retry-After longer than the workflow task timeout, answered to an
// attempt of the customer step's call whose policy back-offs the worker
// keeps (1 s, 2 s, …, 10 s: one call for all the attempts), ends the
// call: the run waits it with a timer that says what it waits for and
// until when, its current details say why, and the call after it makes
// the next attempt. A shorter one stays within the worker (the test
// environment waits it with the SDK's own timer) and asks for nothing.
func TestCustomerLongRetryAfterSaysWhatItWaitsFor(t *testing.T) {
	step := `FindOrCreateCustomer: ensure customer "Acme GmbH" in the ERP`
	for _, tc := range []struct {
		retryAfter time.Duration
		want       []string
		during     string
	}{
		{retryAfter: time.Minute, want: []string{step, "timer: Sleep", `timer: back-off: retry customer "Acme GmbH" (attempt 3) at 14:01:01 UTC`, step},
			during: `retrying customer "Acme GmbH" (attempt 3 at 14:01:01 UTC): `},
		{retryAfter: 8 * time.Second, want: []string{step, "timer: Sleep", "timer: Sleep"}},
	} {
		erp := &fakeTarget{keys: map[string]bool{}, failCustomer: []error{unavailable(1)[0], rateLimited("erp", "find customer", tc.retryAfter)}}
		rec := &summaryRecorder{}
		versions := &versionRecorder{}
		env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{rec, versions}})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
		in.LocalCalls = true
		var during string
		env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, 30*time.Second)
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if erp.customers != 1 || len(erp.failCustomer) != 0 || erp.invoices != 1 {
			t.Fatalf("Retry-After %s: %d customers, %d failures left, %d invoices; want 1, 0, 1", tc.retryAfter, erp.customers, len(erp.failCustomer), erp.invoices)
		}
		if got := strings.Join(rowsOf(rec), "\n"); got != strings.Join(tc.want, "\n") {
			t.Errorf("Retry-After %s: the customer step and its waits say\n%s\nwant\n%s", tc.retryAfter, got, strings.Join(tc.want, "\n"))
		}
		asked := strings.Contains(strings.Join(versions.changes, " "), longRetryAfterChange)
		if tc.during != "" && (!strings.HasPrefix(during, tc.during) || !strings.Contains(during, "HTTP 429")) {
			t.Errorf("Retry-After %s: current details during the wait: %q", tc.retryAfter, during)
		}
		if asked != (tc.during != "") {
			t.Errorf("Retry-After %s: asked for %s: %v", tc.retryAfter, longRetryAfterChange, asked)
		}
	}
}

// workflow.retry.maximum_attempts counts the attempt that asked for a
// long wait: when it was the last, the run fails with it as a spent
// retry (counted, retryable: runs retry starts the run again), without
// waiting.
func TestLongRetryAfterKeepsMaximumAttempts(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failCustomer: []error{unavailable(1)[0], rateLimited("erp", "find customer", time.Minute), nil}}
	rec := &summaryRecorder{}
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls, in.Retry.MaximumAttempts = true, 2
	env.ExecuteWorkflow(InvoiceDeal, in)
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeERPRateLimited ||
		!strings.Contains(err.Error(), "all 2 attempts failed (workflow.retry.maximum_attempts)") {
		t.Fatalf("want the run failed ERPRateLimited after 2 attempts, got %v", err)
	}
	if len(erp.failCustomer) != 1 {
		t.Errorf("%d attempts, want 2", 3-len(erp.failCustomer))
	}
	noBackOffTimer(t, rec, "a timer after the last attempt")
}

// The write-back step's long Retry-After is a timer that says so too.
func TestWriteBackLongRetryAfterSaysWhatItWaitsFor(t *testing.T) {
	crm := &fakeCRM{writeBackFaults: []error{rateLimited("crm", "write back", 90*time.Second)}}
	rec := &summaryRecorder{}
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, WriteBacker: crm})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls, in.WriteBack = true, true
	var during string
	env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if crm.writeBacks != 1 || len(crm.writeBackFaults) != 0 {
		t.Fatalf("%d write-backs, %d failures left; want 1, 0", crm.writeBacks, len(crm.writeBackFaults))
	}
	step := "WriteBack: write invoice N-1 back to deal D-9 in the CRM"
	want := []string{step, "timer: back-off: retry write-back of invoice N-1 to deal D-9 (attempt 2) at 14:01:30 UTC", step}
	if got := strings.Join(rowsNamed(rec, "WriteBack"), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("the write-back step and its waits say\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(during, "retrying write-back of invoice N-1 to deal D-9 (attempt 2 at 14:01:30 UTC): ") || !strings.Contains(during, "HTTP 429") {
		t.Errorf("current details during the wait: %q", during)
	}
}

// fetchEnv is customerEnv's for a run that reads its deal from crm.
func fetchEnv(crm *fakeCRM, rec *summaryRecorder, policy RetryPolicy) (*testsuite.TestWorkflowEnvironment, InvoiceDealInput) {
	crm.deal = wonDeal("D-9", "100.00")
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, Fetcher: crm})
	in := input(model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-9", Stage: "closedwon"}, Thin: true})
	in.LocalCalls, in.Fetch, in.WonStages, in.Retry = true, true, []string{"closedwon"}, policy
	return env, in
}

// The fetch step (a thin event's read of the deal) waits its long
// back-offs, the policy's and a CRM's long Retry-After, with timers that
// say what they wait for, as the customer step does.
func TestFetchBackOffsSayWhatTheyWaitFor(t *testing.T) {
	step := "FetchDeal: fetch deal D-9 from the CRM"
	down := &connectors.APIError{Service: "crm", Op: "fetch deal", StatusCode: 503}
	for _, tc := range []struct {
		name   string
		policy RetryPolicy
		fail   map[int]error
		want   []string
		during string
	}{
		{name: "policy", policy: RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
			fail: map[int]error{1: down, 2: down, 3: down, 4: down},
			want: []string{step, "timer: Sleep", "timer: Sleep", "timer: back-off: retry fetch of deal D-9 from the CRM (attempt 4) at 14:00:35 UTC", step,
				"timer: back-off: retry fetch of deal D-9 from the CRM (attempt 5) at 14:01:15 UTC", step},
			during: "retrying fetch of deal D-9 from the CRM (attempt 5 at 14:01:15 UTC): "},
		{name: "Retry-After", policy: RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
			fail:   map[int]error{1: down, 2: rateLimited("crm", "fetch deal", 2*time.Minute)},
			want:   []string{step, "timer: Sleep", "timer: back-off: retry fetch of deal D-9 from the CRM (attempt 3) at 14:02:01 UTC", step},
			during: "retrying fetch of deal D-9 from the CRM (attempt 3 at 14:02:01 UTC): "},
	} {
		crm := &fakeCRM{failFetch: tc.fail}
		rec := &summaryRecorder{}
		env, in := fetchEnv(crm, rec, tc.policy)
		var during string
		env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if crm.fetches != len(tc.fail)+1 {
			t.Errorf("%s: %d fetches, want %d", tc.name, crm.fetches, len(tc.fail)+1)
		}
		if got := strings.Join(rowsNamed(rec, "FetchDeal"), "\n"); got != strings.Join(tc.want, "\n") {
			t.Errorf("%s: the fetch step and its waits say\n%s\nwant\n%s", tc.name, got, strings.Join(tc.want, "\n"))
		}
		if !strings.HasPrefix(during, tc.during) || !strings.Contains(during, "crm fetch deal") {
			t.Errorf("%s: current details during the wait: %q", tc.name, during)
		}
	}
}

// A run whose fetch step failed before fetch-back-off-timers, with
// attempts and time left, replays as it ran: the call's failure ends the
// run, no timer of the run's.
func TestFetchBackOffsOfRunsBeforeTheChange(t *testing.T) {
	down := &connectors.APIError{Service: "crm", Op: "fetch deal", StatusCode: 503}
	crm := &fakeCRM{failFetch: map[int]error{1: down, 2: down, 3: down, 4: down, 5: down}}
	rec := &summaryRecorder{}
	env, in := fetchEnv(crm, rec, RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute})
	env.OnGetVersion(fetchBackOffChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want the run failed with the CRM's 503, got %v", err)
	}
	if crm.fetches != 3 {
		t.Errorf("%d fetches, want 3", crm.fetches)
	}
	noBackOffTimer(t, rec, "a timer of the run's")
}

// The invoice step of a run that does not listen to its deal's events
// waits its long back-offs, the policy's and an ERP's long Retry-After,
// with timers that say what they wait for, as the customer step does;
// the call after a wait says which attempts it makes.
func TestInvoiceBackOffsSayWhatTheyWaitFor(t *testing.T) {
	limited := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429}
	for _, tc := range []struct {
		name   string
		policy RetryPolicy
		fail   []error
		want   []string
		during string
	}{
		{name: "policy", policy: RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
			fail: []error{limited, limited, limited, limited},
			want: []string{"CreateInvoice: create invoice D-9 in the ERP", "timer: Sleep", "timer: Sleep",
				"timer: back-off: retry invoice D-9 (attempt 4) at 14:00:35 UTC", "CreateInvoice: create invoice D-9 in the ERP (attempts 4+)",
				"timer: back-off: retry invoice D-9 (attempt 5) at 14:01:15 UTC", "CreateInvoice: create invoice D-9 in the ERP (attempts 5+)"},
			during: "retrying invoice D-9 (attempt 5 at 14:01:15 UTC): "},
		{name: "Retry-After", policy: RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
			fail: []error{limited, rateLimited("erp", "create invoice", 2*time.Minute)},
			want: []string{"CreateInvoice: create invoice D-9 in the ERP", "timer: Sleep",
				"timer: back-off: retry invoice D-9 (attempt 3) at 14:02:01 UTC", "CreateInvoice: create invoice D-9 in the ERP (attempts 3+)"},
			during: "retrying invoice D-9 (attempt 3 at 14:02:01 UTC): "},
	} {
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: tc.fail}
		rec := &summaryRecorder{}
		env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
		in.LocalCalls, in.Retry = true, tc.policy
		var during string
		env.RegisterDelayedCallback(func() { during = currentDetails(t, env) }, time.Minute)
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if erp.invoices != 1 || len(erp.failInvoice) != 0 {
			t.Errorf("%s: %d invoices, %d failures left; want 1, 0", tc.name, erp.invoices, len(erp.failInvoice))
		}
		if got := strings.Join(rowsNamed(rec, "CreateInvoice"), "\n"); got != strings.Join(tc.want, "\n") {
			t.Errorf("%s: the invoice step and its waits say\n%s\nwant\n%s", tc.name, got, strings.Join(tc.want, "\n"))
		}
		if !strings.HasPrefix(during, tc.during) || !strings.Contains(during, "HTTP 429") {
			t.Errorf("%s: current details during the wait: %q", tc.name, during)
		}
	}
}

// A call of the invoice step after a wait knows the attempts before it
// and that one of them may have made the invoice (a 502: no answer to
// the write): the run's failure, once the attempts are spent, counts
// them all and says that an earlier one may have made the invoice.
func TestInvoiceCallAfterAWaitKnowsTheEarlierAttempts(t *testing.T) {
	gateway := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502}
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{gateway, gateway, gateway, gateway}}
	rec := &summaryRecorder{}
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls = true
	in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 4}
	env.ExecuteWorkflow(InvoiceDeal, in)
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("the run did not fail")
	}
	for _, want := range []string{"this was attempt 4: an earlier one may have made the invoice", "all 4 attempts failed (workflow.retry.maximum_attempts)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the run's failure %q does not say %q", err, want)
		}
	}
	if erp.attempts != 4 {
		t.Errorf("%d attempts, want 4", erp.attempts)
	}
}

// A run whose invoice step (not listening) failed before
// invoice-back-off-timers, with attempts and time left, replays as it
// ran: the call's failure ends the run, no timer of the run's.
func TestInvoiceBackOffsOfRunsBeforeTheChange(t *testing.T) {
	limited := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429}
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{limited, limited, limited, limited, limited}}
	rec := &summaryRecorder{}
	env := backOffEnv(rec, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.OnGetVersion(invoiceBackOffChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
	in.LocalCalls = true
	in.Retry = RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	env.ExecuteWorkflow(InvoiceDeal, in)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("want the run failed with the ERP's 429, got %v", err)
	}
	if erp.attempts != 3 {
		t.Errorf("%d attempts, want 3", erp.attempts)
	}
	noBackOffTimer(t, rec, "a timer of the run's")
}

// The worker's `step attempt failed` lines of a step whose attempts are
// several calls, a long back-off of the run's own between two (the
// policy's or a Retry-After), number the attempts in the step, as the
// run's failure counts them (1 to 4 here), not from 1 again in each
// call: the fetch, customer, invoice and write-back steps alike.
func TestStepAttemptsAreNumberedInTheStepAcrossCalls(t *testing.T) {
	policy := RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	crmDown := &connectors.APIError{Service: "crm", Op: "fetch deal", StatusCode: 503}
	erpDown := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429}
	for _, step := range []string{"fetch_deal", "customer", "invoice", "write_back"} {
		var out bytes.Buffer
		var s testsuite.WorkflowTestSuite
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		env := s.NewTestWorkflowEnvironment()
		env.SetStartTime(time.Date(2036, 11, 20, 14, 0, 0, 0, time.UTC))
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowTaskTimeout: 10 * time.Second})
		env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
		erp := &fakeTarget{keys: map[string]bool{}}
		crm := &fakeCRM{deal: wonDeal("D-9", "100.00")}
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-9", "100.00")})
		in.LocalCalls, in.Retry = true, policy
		switch step {
		case "fetch_deal":
			crm.failFetch = map[int]error{1: crmDown, 2: crmDown, 3: crmDown, 4: crmDown}
			in.Event = model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D-9", Stage: "closedwon"}, Thin: true}
			in.Fetch, in.WonStages = true, []string{"closedwon"}
		case "customer":
			erp.failCustomer = unavailable(4)
		case "invoice":
			erp.failInvoice = []error{erpDown, erpDown, erpDown, erpDown}
		case "write_back":
			wbDown := &connectors.APIError{Service: "crm", Op: "write back", StatusCode: 503}
			crm.writeBackFaults = []error{wbDown, wbDown, wbDown, wbDown}
			in.WriteBack = true
		}
		env.RegisterActivity(&activities.Activities{Connections: resolver{activities.Connection{Mapper: mapping.Default{}, Target: erp, Fetcher: crm, WriteBacker: crm}}})
		env.ExecuteWorkflow(InvoiceDeal, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var attempts []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, `msg="step attempt failed"`) && strings.Contains(l, " step="+step+" ") {
				_, n, _ := strings.Cut(l, " attempt=")
				n, _, _ = strings.Cut(n, " ")
				attempts = append(attempts, n)
			}
		}
		if got := strings.Join(attempts, " "); got != "1 2 3 4" {
			t.Errorf("%s: the failed attempts are logged as attempts %q, want 1 2 3 4, in:\n%s", step, got, out.String())
		}
	}
}
