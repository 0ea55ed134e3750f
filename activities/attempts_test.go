package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/model"
)

// lostThenRefused answers its first invoice request not at all (the
// invoice may have been made, its answer lost), then with a 503 that
// refuses the write.
type lostThenRefused struct {
	rateLimitedERP
	calls *atomic.Int32
}

func (l lostThenRefused) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	if l.calls.Add(1) == 1 {
		return connectors.InvoiceResult{}, &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}
	}
	return connectors.InvoiceResult{}, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, RetryAfter: time.Millisecond, RetryAfterGiven: true}
}

// An operator read a run's last failure, a 503 that wrote nothing, while
// its first attempt had made the invoice (its answer lost), and could
// bill by hand a second time. The failure of a later attempt of the
// invoice step says an earlier one may have made it, with the reference,
// and does not claim nothing was sent.
func TestALaterInvoiceAttemptSaysAnEarlierOneMayHaveMadeIt(t *testing.T) {
	calls := &atomic.Int32{}
	err := invoiceStep(lostThenRefused{calls: calls}, 2, "DS-7")
	var appErr *temporal.ApplicationError
	var at Attempt
	if calls.Load() != 2 || !errors.As(err, &appErr) || !strings.Contains(err.Error(), "HTTP 503") ||
		!strings.Contains(err.Error(), `attempt 2: an earlier one may have made the invoice (reference "DS-7")`) {
		t.Fatalf("%d calls, %v; want the second attempt's 503 saying the first may have made the invoice", calls.Load(), err)
	}
	if !appErr.HasDetails() || appErr.Details(&at) != nil || at.NotSent {
		t.Errorf("details %+v (present: %v): want the Attempt, and a later attempt does not claim nothing was sent", at, appErr.HasDetails())
	}
}

// An only attempt whose write got no answer (none at all, a gateway's 502
// to it) may have made the invoice, and one whose write was answered
// before a later call failed did: its failure, which ends a run of one
// attempt, says so with the reference. A refusal that sent nothing (a
// 400, a 429, a 503 with Retry-After), a read's 502 (the look-up before
// the write) and a token endpoint's failure do not.
func TestAnOnlyAttemptWithoutAnAnswerSaysItMayHaveMadeIt(t *testing.T) {
	const may, made = `the ERP may have made the invoice (reference "DS-8") all the same`, `the ERP made the invoice (reference "DS-8") before this failure`
	gateway := func() *connectors.APIError {
		return connectors.UnsureAnswer(true, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502, Message: "bad gateway"}, time.Millisecond)
	}
	for _, c := range []struct {
		name  string
		err   error
		wrote bool
		want  string // "" for no note
	}{
		{"a gateway's 502 to the write", gateway(), false, may},
		{"no answer", &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}, false, may},
		{"a read's 502", connectors.UnsureAnswer(false, &connectors.APIError{Service: "erp", Op: "find invoice", StatusCode: 502}, time.Millisecond), false, ""},
		{"a refusal", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}, false, ""},
		{"a 429", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Millisecond, RetryAfterGiven: true}, false, ""},
		{"a 503 with Retry-After", connectors.UnsureAnswer(true, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, RetryAfter: time.Millisecond, RetryAfterGiven: true}, time.Millisecond), false, ""},
		{"the token endpoint's 502", &erpkit.TokenError{Err: gateway()}, false, ""},
		{"a read after the write", &connectors.APIError{Service: "erp", Op: "read invoice", StatusCode: 404}, true, made},
	} {
		err := invoiceStep(writeThenRead{write: c.wrote, failure: c.err}, 1, "DS-8")
		if err == nil {
			t.Fatalf("%s: no failure", c.name)
		}
		msg := err.Error()
		if c.want == "" && (strings.Contains(msg, may) || strings.Contains(msg, made)) || c.want != "" && !strings.Contains(msg, c.want) {
			t.Errorf("%s: %v; want the note %q", c.name, err, c.want)
		}
		// `dealsync runs retry` reads a run's failure by these words: it
		// holds back the retry of a run whose invoice may exist.
		if SaysInvoiceMayExist(msg) != (c.want != "") {
			t.Errorf("%s: SaysInvoiceMayExist(%q) = %v", c.name, msg, !(c.want != ""))
		}
	}
}

// invoiceStep runs CreateInvoice against target as a run's local
// activity of attempts attempts, for an invoice of reference, and returns
// the run's error.
func invoiceStep(target connectors.Target, attempts int32, reference string) error {
	a := &Activities{Connections: oneConnection{"m": {Target: target}}}
	var env testsuite.WorkflowTestSuite
	wenv := env.NewTestWorkflowEnvironment()
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: attempts},
		})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: reference}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	wenv.ExecuteWorkflow("invoice")
	return wenv.GetWorkflowError()
}

// outageThenNoTime answers its first invoice requests with a 503 that
// refuses the write, then runs out of the step's time before sending (as
// an outage's last attempt meets the end of the run's time).
type outageThenNoTime struct {
	rateLimitedERP
	calls *atomic.Int32
	sent  int32 // the attempts that get the 503
}

func (o outageThenNoTime) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	if o.calls.Add(1) <= o.sent {
		return connectors.InvoiceResult{}, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, Message: "down for maintenance", RetryAfter: time.Millisecond, RetryAfterGiven: true}
	}
	return connectors.InvoiceResult{}, fmt.Errorf("erp create invoice: %w", connectors.ErrNoTimeLeft)
}

// A run that ran out of time in an outage ended saying only that its last
// attempt had no time left ("its earlier calls were slow"): an operator
// never saw the ERP's 503. Its failure now says what the attempt before it
// met; a step whose first attempt had no time says only that.
func TestNoTimeLeftSaysWhatTheAttemptBeforeMet(t *testing.T) {
	calls := &atomic.Int32{}
	err := invoiceStep(outageThenNoTime{calls: calls, sent: 2}, 3, "DS-9")
	if calls.Load() != 3 || err == nil || !strings.Contains(err.Error(), "too little of the step's time was left") ||
		!strings.Contains(err.Error(), "the attempt before it failed: erp create invoice: HTTP 503: down for maintenance") {
		t.Fatalf("%d calls, %v; want the last attempt's want of time with the 503 before it", calls.Load(), err)
	}
	calls = &atomic.Int32{}
	if err := invoiceStep(outageThenNoTime{calls: calls}, 1, "DS-9"); err == nil || strings.Contains(err.Error(), "the attempt before it") {
		t.Errorf("an only attempt without time: %v; want no attempt before it named", err)
	}
}

// A write answered with what an earlier request of its key made (an
// invoice billed to another customer), which the target refuses: the
// failure is the target's, without the note that this attempt made the
// invoice (it made nothing), on a first attempt or a later one.
func TestAWriteAnsweredWithAnEarlierRequestsInvoiceClaimsNothing(t *testing.T) {
	earlier := connectors.EarlierAnswer(fmt.Errorf("xero create invoice: Xero answered this step's Idempotency-Key with invoice INV-7, billed to another contact: %w", connectors.ErrPermanent))
	for _, first := range []bool{true, false} {
		calls := &atomic.Int32{}
		err := invoiceStep(lostThenEarlier{calls: calls, earlier: earlier, first: first}, 2, "DS-10")
		if err == nil || !strings.Contains(err.Error(), "answered this step's Idempotency-Key with invoice INV-7") ||
			strings.Contains(err.Error(), "made the invoice") || strings.Contains(err.Error(), "this was attempt") {
			t.Errorf("on the first attempt %v: %v; want the target's refusal alone", first, err)
		}
	}
}

// lostThenEarlier answers its write with earlier (marked written), on
// the first attempt or, when first is false, on the second after a lost
// answer.
type lostThenEarlier struct {
	rateLimitedERP
	calls   *atomic.Int32
	earlier error
	first   bool
}

func (l lostThenEarlier) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	if l.calls.Add(1) == 1 && !l.first {
		return connectors.InvoiceResult{}, &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}
	}
	connectors.WriteDone(ctx)
	return connectors.InvoiceResult{}, l.earlier
}

// scripted answers its invoice requests with failures, one per attempt
// (the last one again once they are used up).
type scripted struct {
	rateLimitedERP
	calls    *atomic.Int32
	failures []error
}

func (s scripted) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	n := int(s.calls.Add(1))
	return connectors.InvoiceResult{}, s.failures[min(n, len(s.failures))-1]
}

// A later attempt whose earlier ones were each refused before the ERP
// acted (a 429, a 503 with Retry-After) said that an earlier one may have
// made the invoice, though none could: its failure says what it met, and
// that it wrote nothing. One after an attempt whose outcome is unknown (no
// answer) still says it, however many refusals came between.
func TestALaterInvoiceAttemptAfterRefusalsClaimsNothing(t *testing.T) {
	rateLimited := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Millisecond, RetryAfterGiven: true}
	unavailable := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 503, Message: "maintenance", RetryAfter: time.Millisecond, RetryAfterGiven: true}
	lost := &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}
	const claim = `attempt 3: an earlier one may have made the invoice (reference "DS-11")`
	for _, c := range []struct {
		name     string
		failures []error
		claims   bool
	}{
		{"429, 503 with Retry-After, 429", []error{rateLimited, unavailable, rateLimited}, false},
		{"no answer, 429, 429", []error{lost, rateLimited, rateLimited}, true},
		{"429, no answer, 503 with Retry-After", []error{rateLimited, lost, unavailable}, true},
	} {
		calls := &atomic.Int32{}
		err := invoiceStep(scripted{calls: calls, failures: c.failures}, 3, "DS-11")
		var appErr *temporal.ApplicationError
		var at Attempt
		if calls.Load() != 3 || !errors.As(err, &appErr) || !appErr.HasDetails() || appErr.Details(&at) != nil {
			t.Fatalf("%s: %d calls, %v; want 3 attempts and the last one's failure", c.name, calls.Load(), err)
		}
		if c.claims && (!strings.Contains(err.Error(), claim) || at.NotSent) {
			t.Errorf("%s: %v (not sent: %v); want the note that an earlier attempt may have made the invoice", c.name, err, at.NotSent)
		}
		if !c.claims && (strings.Contains(err.Error(), "may have made") || !at.NotSent) {
			t.Errorf("%s: %v (not sent: %v); want the last refusal alone, nothing sent", c.name, err, at.NotSent)
		}
	}
}

// byRequest answers a run's invoice requests, whatever call makes them,
// one behaviour each in order: "refused" (a 429 with Retry-After),
// "lost" (no answer: the invoice may have been made), or "hung" (its
// write under way past the attempt's time: it returns only when the test
// ends, having left no failure behind).
type byRequest struct {
	rateLimitedERP
	calls  *atomic.Int32
	script []string
	hung   chan struct{}
}

func (b byRequest) CreateInvoice(ctx context.Context, _ model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	n := int(b.calls.Add(1))
	switch b.script[min(n, len(b.script))-1] {
	case "lost":
		return connectors.InvoiceResult{}, &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}
	case "hung":
		connectors.WriteDone(ctx)
		<-b.hung
	}
	return connectors.InvoiceResult{}, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Millisecond, RetryAfterGiven: true}
}

// invoiceCalls runs CreateInvoice as the invoice step of a run that
// listens to its deal's events makes it: a first call of one attempt,
// then the rest of the attempts (rest) in one call, told how many came
// before it and, when earlierMay, that one of them may have made the
// invoice; each attempt of the rest has 500ms. With otherWorker, the
// rest's first attempt runs on another worker than the others. It
// returns the rest's failure.
func invoiceCalls(t *testing.T, target connectors.Target, rest int32, before int32, earlierMay, otherWorker bool) error {
	t.Helper()
	first := &Activities{Connections: oneConnection{"m": {Target: target}}}
	other := first
	if otherWorker {
		other = &Activities{Connections: oneConnection{"m": {Target: target}}}
	}
	// One activity for both workers: what each noted is under its type.
	createInvoice := func(ctx context.Context, in CreateInvoiceInput) (connectors.InvoiceResult, error) {
		if in.AttemptsBefore > 0 && attemptOf(ctx) == 1 {
			return other.CreateInvoice(ctx, in)
		}
		return first.CreateInvoice(ctx, in)
	}
	var env testsuite.WorkflowTestSuite
	wenv := env.NewTestWorkflowEnvironment()
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		in := CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: "DS-12"}}
		once := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		if err := workflow.ExecuteLocalActivity(once, createInvoice, in).Get(ctx, nil); err == nil {
			return errors.New("the first call made the invoice")
		}
		in.AttemptsBefore, in.EarlierMayHaveMade = before, earlierMay
		all := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: time.Minute, StartToCloseTimeout: 500 * time.Millisecond,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: rest},
		})
		return workflow.ExecuteLocalActivity(all, createInvoice, in).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	wenv.ExecuteWorkflow("invoice")
	return wenv.GetWorkflowError()
}

// A run that listens to its deal's events makes its invoice step's first
// attempts one call each, then the rest in one call, whose attempts are
// numbered from 1 again. What the worker noted of a refused attempt of an
// earlier call was taken for the rest's own attempt 1: a later attempt
// after one that timed out with its write under way said only its 429
// and that nothing was sent (the run's failure too), and one after an
// earlier call's attempt with no answer the same (its retry markers and
// log lines). Each now says an earlier attempt may have made the invoice
// (numbered in the step), and does not claim nothing was sent.
func TestInvoiceAttemptsOfAnotherCallAreNotTakenForThisCallsOwn(t *testing.T) {
	for _, c := range []struct {
		name           string
		script         []string
		rest, before   int32
		earlierMay     bool
		otherWorker    bool
		claim          string
		requestsWanted int32
	}{
		// A refused call, then the rest: a hung attempt, a 429.
		{"refused, then hung and 429", []string{"refused", "hung", "refused"}, 2, 1, false, false, "attempt 3: an earlier one may have made", 3},
		// The same, the rest's input from an earlier release (no count).
		{"refused, then hung and 429, the count unknown", []string{"refused", "hung", "refused"}, 2, 0, false, false, "attempt 2: an earlier one may have made", 3},
		// The same, the rest's first attempt (no answer) on another worker.
		{"refused, then no answer on another worker and 429", []string{"refused", "lost", "refused"}, 2, 1, false, true, "attempt 3: an earlier one may have made", 3},
		// A call with no answer, then the rest: 429s.
		{"lost, then 429s", []string{"lost", "refused"}, 3, 1, true, false, "attempt 4: an earlier one may have made", 4},
		{"lost, then one 429", []string{"lost", "refused"}, 1, 1, true, false, "attempt 2: an earlier one may have made", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			hung := make(chan struct{})
			defer close(hung)
			calls := &atomic.Int32{}
			err := invoiceCalls(t, byRequest{calls: calls, script: c.script, hung: hung}, c.rest, c.before, c.earlierMay, c.otherWorker)
			var appErr *temporal.ApplicationError
			var at Attempt
			if calls.Load() != c.requestsWanted || !errors.As(err, &appErr) || !appErr.HasDetails() || appErr.Details(&at) != nil {
				t.Fatalf("%d requests, %v; want %d and the last attempt's failure", calls.Load(), err, c.requestsWanted)
			}
			if msg := appErr.Message(); !strings.Contains(msg, "HTTP 429") || !strings.Contains(msg, c.claim+` the invoice (reference "DS-12")`) || at.NotSent {
				t.Errorf("%q (not sent: %v); want the 429 and %q…, not that nothing was sent", msg, at.NotSent, c.claim)
			}
		})
	}
}

// A write-back's failed attempt says its number (Attempt.Number), as the
// ERP steps' do: the workflow counts by it the attempts of a call the SDK
// went on retrying after its own timer (a run under way at the upgrade
// to writeback-back-off-timers), which would otherwise start counting
// again, past workflow.retry.maximum_attempts.
func TestAFailedWriteBackSaysItsAttempt(t *testing.T) {
	a := &Activities{Connections: oneConnection{"m": {Target: rateLimitedERP{},
		WriteBacker: refusingCRM{&connectors.APIError{Service: "crm", Op: "write back", StatusCode: 503}}}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 3}})
		return workflow.ExecuteLocalActivity(ctx, a.WriteBack, WriteBackInput{Connection: "m", DealID: "D-7"}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "writeback"})
	env.ExecuteWorkflow("writeback")
	var app *temporal.ApplicationError
	var at Attempt
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeCRMUnavailable || !app.HasDetails() || app.Details(&at) != nil {
		t.Fatalf("want a CRMUnavailable failure with details, got %v", err)
	}
	if at.Number != 3 {
		t.Errorf("the last attempt says it is attempt %d, want 3", at.Number)
	}
}
