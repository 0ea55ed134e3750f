package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// A run whose ERP step's retries ran out on an outage or a rate limit
// ended with the last attempt's HTTP message alone, which reads as one
// failure: it now says how many attempts failed, why they stopped, and
// to start the run again with runs retry once the ERP is back, whether
// the SDK retried the step (local calls or activities) or the run made
// its attempts one at a time (it listens).
func TestRetriesSpentSayHowManyAttemptsAndWhatToDo(t *testing.T) {
	unavailable := func() error {
		return &connectors.APIError{Service: "erp", Op: "create", StatusCode: 503, Message: "down for maintenance", RetryAfter: time.Second, RetryAfterGiven: true}
	}
	limited := func() error {
		return &connectors.APIError{Service: "erp", Op: "create", StatusCode: 429, RetryAfter: time.Second, RetryAfterGiven: true}
	}
	const back, limit = "once the ERP answers again, start the run again with dealsync runs retry",
		"once the ERP's rate limit lets calls through again, start the run again with dealsync runs retry"
	for _, c := range []struct {
		name                 string
		step                 string
		local, listens       bool
		attempts             int32
		failure              func() error
		typ, spent, whatToDo string
		// first, if set, is the first attempt's failure.
		first error
		// also, if set, is in the message too.
		also string
	}{
		{"customer, local", "customer", true, false, 3, unavailable, activities.ErrTypeERPUnavailable, "all 3 attempts failed (workflow.retry.maximum_attempts)", back, nil, ""},
		{"customer, activities", "customer", false, false, 3, unavailable, activities.ErrTypeERPUnavailable, "all 3 attempts failed (workflow.retry.maximum_attempts)", back, nil, ""},
		{"invoice, local", "invoice", true, false, 3, unavailable, activities.ErrTypeERPUnavailable, "all 3 attempts failed (workflow.retry.maximum_attempts)", back, nil, ""},
		{"invoice, one at a time", "invoice", true, true, 3, limited, activities.ErrTypeERPRateLimited, "all 3 attempts failed (workflow.retry.maximum_attempts)", limit, nil, ""},
		{"invoice, activities, one at a time", "invoice", false, true, 4, unavailable, activities.ErrTypeERPUnavailable, "all 4 attempts failed (workflow.retry.maximum_attempts)", back, nil, ""},
		{"one attempt", "invoice", true, false, 1, unavailable, activities.ErrTypeERPUnavailable, "its only attempt failed (workflow.retry.maximum_attempts is 1)", back, nil, ""},
		// The first attempt got no answer: the rest are one call, whose
		// last attempt's failure says an earlier one may have made the
		// invoice, naming runs retry there; the run's unpinned target
		// does not say it finds it: look first.
		{"invoice, the rest in one call", "invoice", true, true, 3, unavailable, activities.ErrTypeERPUnavailable, "all 3 attempts failed (workflow.retry.maximum_attempts)",
			"once the ERP answers again and you have found no invoice of its reference there, start the run again", &connectors.OutcomeUnknownError{Err: errors.New("erp create: no answer"), Wait: time.Second},
			`this was attempt 3: an earlier one may have made the invoice (reference "D-40")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			erp := &fakeTarget{keys: map[string]bool{}}
			if c.first != nil {
				erp.failInvoice = append(erp.failInvoice, c.first)
			}
			for range c.attempts {
				if c.step == "customer" {
					erp.failCustomer = append(erp.failCustomer, c.failure())
				} else {
					erp.failInvoice = append(erp.failInvoice, c.failure())
				}
			}
			env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, TargetName: "books"})
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-40", "100.00")})
			in.LocalCalls, in.Retry.MaximumAttempts = c.local, c.attempts
			if c.listens {
				in.Linger = time.Second
			}
			env.ExecuteWorkflow(InvoiceDeal, in)
			var appErr *temporal.ApplicationError
			err := env.GetWorkflowError()
			if !errors.As(err, &appErr) || appErr.Type() != c.typ {
				t.Fatalf("%v; want the run failed %s", err, c.typ)
			}
			want := fmt.Sprintf("; %s: %s", c.spent, c.whatToDo)
			if msg := appErr.Message(); !strings.HasPrefix(msg, `connection "c": target "books": erp create: HTTP`) || !strings.Contains(msg, want) || !strings.Contains(msg, c.also) ||
				strings.Count(msg, "runs retry") != 1 || erp.invoices != 0 {
				t.Errorf("%q (%d invoices); want the last attempt's failure, then %q", msg, erp.invoices, want)
			}
			// Its details number the last attempt as the message counts
			// them (but where the note on an earlier attempt replaced them).
			var at activities.Attempt
			if c.first == nil && (!appErr.HasDetails() || appErr.Details(&at) != nil || at.Number != c.attempts) {
				t.Errorf("details %+v; want the step's attempt %d", at, c.attempts)
			}
		})
	}
}

// A listening run whose invoice attempts, made one at a time without a
// limit of attempts, ran out of the time their retries have (the run's
// execution timeout, with local calls) says how many failed in that time.
func TestRetriesSpentInTheirTimeSayHowMany(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	for range 100 {
		erp.failInvoice = append(erp.failInvoice, &connectors.APIError{Service: "erp", Op: "create", StatusCode: 503, RetryAfter: time.Hour, RetryAfterGiven: true})
	}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{WorkflowExecutionTimeout: 5*time.Hour + 30*time.Minute})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-41", "100.00")})
	in.LocalCalls, in.Linger = true, time.Second
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) ||
		!strings.Contains(appErr.Message(), fmt.Sprintf("; %d attempts failed in the time its retries had", erp.attempts)) || erp.attempts != 6 {
		t.Errorf("%v after %d attempts; want the 6 attempts an hour apart counted", err, erp.attempts)
	}
}

// slowTarget outlasts the step's time in the step named in.
type slowTarget struct {
	*fakeTarget
	in string
	// calls counts the calls of the step; the first lost of them fail at
	// once, answered by the fakeTarget.
	calls *int
	lost  int
}

func (s slowTarget) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	if s.in == "customer" {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // past the step's deadline, as a call that ignores it
	}
	return s.fakeTarget.FindOrCreateCustomer(ctx, c, key)
}

func (s slowTarget) CreateInvoice(ctx context.Context, inv model.Invoice, c connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	if s.calls != nil {
		if *s.calls++; *s.calls <= s.lost {
			return s.fakeTarget.CreateInvoice(ctx, inv, c, key)
		}
	}
	if s.in == "invoice" {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
	}
	return s.fakeTarget.CreateInvoice(ctx, inv, c, key)
}

// An ERP step whose last attempt timed out failed the run naming the step
// but neither the connection nor the target, which the step's other
// failures name: it now names them (the target of the deal's CRM
// account), with local calls and activities alike. A timed-out invoice
// attempt may have sent its request: the failure says the ERP may have
// made the invoice, with the reference (it said so only of an earlier
// attempt, and of none in a run that does not listen), in a run started
// before the target was named too.
func TestERPStepTimedOutNamesConnectionAndTarget(t *testing.T) {
	const made = `its request may have been sent, and the ERP may have made the invoice (reference "D-42"): look for it in the ERP before invoicing by hand`
	for _, c := range []struct {
		step         string
		local, older bool
	}{{"customer", true, false}, {"invoice", true, false}, {"invoice", false, false}, {"customer", true, true}, {"invoice", true, true}} {
		erp := &fakeTarget{keys: map[string]bool{}}
		other := &fakeTarget{keys: map[string]bool{}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: other, TargetName: "books",
			AccountTargets: map[string]activities.NamedTarget{"acme": {Name: "acme-books", Target: slowTarget{fakeTarget: erp, in: c.step}}}})
		if c.older {
			env.OnGetVersion(timeoutNamesTargetChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		}
		in := input(model.DealEvent{EventID: "e1", Account: "acme", Deal: wonDeal("D-42", "100.00")})
		in.LocalCalls, in.ActivityTimeout, in.Retry.MaximumAttempts = c.local, 50*time.Millisecond, 1
		env.ExecuteWorkflow(InvoiceDeal, in)
		var appErr *temporal.ApplicationError
		err := env.GetWorkflowError()
		want := map[string]string{"customer": "FindOrCreateCustomer", "invoice": "CreateInvoice"}[c.step] + " got no answer in time on its last attempt"
		if !c.older {
			want = `connection "c": target "acme-books": ` + want
		}
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeERPUnavailable || !strings.HasPrefix(appErr.Message(), want) {
			t.Errorf("%s, local calls %v, older run %v: %v; want ERPUnavailable, %q…", c.step, c.local, c.older, err, want)
		}
		if says := strings.Contains(appErr.Message(), made); says != (c.step == "invoice") || strings.Count(appErr.Message(), "may have made") > 1 {
			t.Errorf("%s, local calls %v, older run %v: %q; want %q in the invoice step's failure alone, once", c.step, c.local, c.older, appErr.Message(), made)
		}
	}
}

// renamedAfterTimeout is a worker's config that names the connection's
// target "books" (the run's pinned one) until its step calls the ERP,
// and another one after: the config changed between the step and the read of
// the target's name for its failure (TargetName).
type renamedAfterTimeout struct {
	before, after activities.Connection
	moved         *atomic.Bool
}

func (r renamedAfterTimeout) Resolve(string) (activities.Connection, bool) {
	if r.moved.Load() {
		return r.after, true
	}
	return r.before, true
}

// movesOnTimeout is a slowTarget that moves the config once its step
// has resolved the connection and checked its target: while it waits.
type movesOnTimeout struct {
	slowTarget
	moved *atomic.Bool
}

func (m movesOnTimeout) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	m.moved.Store(true)
	return m.slowTarget.FindOrCreateCustomer(ctx, c, key)
}

// A run started for a target whose ERP step timed out names, in its
// failure, the target it was started for (its pinned description), which
// its steps called, not the one the worker's config names when the
// failure is written (TargetName reads the config then): after a config
// change they differ.
func TestERPStepTimedOutNamesThePinnedTarget(t *testing.T) {
	pinned := connectors.IdentifyTarget("books", "http", nil)
	for _, local := range []bool{true, false} {
		erp := &fakeTarget{keys: map[string]bool{}}
		moved := new(atomic.Bool)
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
		env.RegisterActivityWithOptions(&activities.Activities{Connections: renamedAfterTimeout{
			before: activities.Connection{Mapper: mapping.Default{}, Target: movesOnTimeout{slowTarget{fakeTarget: erp, in: "customer"}, moved}, TargetName: "books", TargetIdentity: pinned},
			after:  activities.Connection{Mapper: mapping.Default{}, Target: erp, TargetName: "books-new", TargetIdentity: connectors.IdentifyTarget("books-new", "xero", nil)},
			moved:  moved,
		}}, activity.RegisterOptions{})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-45", "100.00")})
		in.LocalCalls, in.ActivityTimeout, in.Retry.MaximumAttempts, in.ERPTarget = local, 50*time.Millisecond, 1, &pinned
		env.ExecuteWorkflow(InvoiceDeal, in)
		var appErr *temporal.ApplicationError
		err := env.GetWorkflowError()
		const want = `connection "c": target "books" (http): FindOrCreateCustomer got no answer in time on its last attempt`
		if !errors.As(err, &appErr) || !strings.HasPrefix(appErr.Message(), want) || strings.Contains(appErr.Message(), "books-new") || !moved.Load() {
			t.Errorf("local calls %v: %v (config moved: %v); want %q…, not the config's new target", local, err, moved.Load(), want)
		}
	}
}

// A listening run whose first invoice attempt got no answer, and whose
// last one timed out, says where the step timed out and that the first
// attempt may have made the invoice.
func TestInvoiceStepTimedOutAfterALostAnswerSaysItMayExist(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{&connectors.OutcomeUnknownError{Err: errors.New("erp create: no answer"), Wait: time.Millisecond}}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: slowTarget{fakeTarget: erp, in: "invoice", calls: new(int), lost: 1}, TargetName: "books"})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-43", "100.00")})
	in.LocalCalls, in.Linger, in.ActivityTimeout, in.Retry.MaximumAttempts = true, time.Second, 50*time.Millisecond, 2
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	err := env.GetWorkflowError()
	if !errors.As(err, &appErr) || !strings.HasPrefix(appErr.Message(), `connection "c": target "books": CreateInvoice got no answer in time`) ||
		!strings.Contains(appErr.Message(), `this attempt, or an earlier one, may have made the invoice (reference "D-43")`) {
		t.Errorf("%v; want the timeout where it happened, and that an earlier attempt may have made the invoice", err)
	}
}

// A listening run's invoice calls say how many attempts came before them
// (the one-at-a-time attempts, then the rest in one call), and the rest
// whether one of those may have made the invoice: each attempt of the
// rest says so, numbered in the step, where the worker took an earlier
// call's refused attempt for the rest's own attempt 1.
func TestInvoiceCallsSayWhatCameBefore(t *testing.T) {
	limited := func() error {
		return &connectors.APIError{Service: "erp", Op: "create", StatusCode: 429, RetryAfter: time.Second, RetryAfterGiven: true}
	}
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		limited(), &connectors.OutcomeUnknownError{Err: errors.New("erp create: no answer"), Wait: time.Second}, limited(), limited(),
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, TargetName: "books"})
	type call struct {
		before     int32
		earlierMay bool
	}
	var calls []call
	env.SetOnLocalActivityStartedListener(func(_ *activity.Info, _ context.Context, args []any) {
		if in, ok := args[0].(activities.CreateInvoiceInput); ok {
			calls = append(calls, call{in.AttemptsBefore, in.EarlierMayHaveMade})
		}
	})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-44", "100.00")})
	in.LocalCalls, in.Linger, in.Retry.MaximumAttempts = true, time.Second, 4
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	err := env.GetWorkflowError()
	if want := []call{{0, false}, {1, false}, {2, true}, {2, true}}; !slices.Equal(calls, want) {
		t.Errorf("invoice calls %+v; want %+v", calls, want)
	}
	if !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), `HTTP 429; this was attempt 4: an earlier one may have made the invoice (reference "D-44")`) || erp.attempts != 4 {
		t.Errorf("%v after %d attempts; want the fourth attempt's 429 saying an earlier one may have made the invoice", err, erp.attempts)
	}
}

// movingTarget is a worker's config that sends the connection to target
// A until the customer is made, then to target B: a target changed, or a
// worker that disagrees, while a run is under way.
type movingTarget struct {
	erp    *fakeTarget
	a, b   connectors.TargetIdentity
	moveAt int // customers made when it moves (0: B from the start)
	// resolves, when set, counts the steps' look-ups of the connection.
	resolves *atomic.Int32
}

func (m movingTarget) Resolve(string) (activities.Connection, bool) {
	if m.resolves != nil {
		m.resolves.Add(1)
	}
	id := m.a
	if m.erp.customers >= m.moveAt {
		id = m.b
	}
	return activities.Connection{Mapper: mapping.Default{}, Target: m.erp, TargetName: "books", TargetIdentity: id}, true
}

// A run started for one target whose ERP step meets a worker that sends
// its connection to another retries the step, sending nothing, and when
// its retries run out fails ERPTargetMismatch, saying where the run was
// started for, where the worker sends it, how many attempts failed and
// what to do (runs retry, once): in its customer step, and in its invoice
// step once its customer was made, by local calls, activities, or
// attempts made one at a time. The customer made before the move stays.
func TestAnERPStepOfAnotherTargetFailsTheRunWhenItsRetriesRunOut(t *testing.T) {
	forEachMismatch(t, 3, func(*activities.Activities) {}, func(t *testing.T, msg string, _ int32) {
		if want := "; all 3 attempts failed (workflow.retry.maximum_attempts)"; !strings.Contains(msg, want) {
			t.Errorf("%q\nwant it to say %q", msg, want)
		}
	})
}

// A run whose ERP step meets a worker that sends its connection to
// another target, with unlimited attempts, is retried for the worker's
// workflow.target_mismatch_grace from the step's first attempt, then
// fails ERPTargetMismatch, not retried again (the SDK's retries, and
// those of the workflow's own timers, end), saying for how long and what
// to do: in its customer step, and in its invoice step, by local calls,
// activities, or attempts made one at a time. Nothing is sent.
func TestATargetMismatchFailsTheRunOnceItsGraceIsPast(t *testing.T) {
	forEachMismatch(t, 0, func(a *activities.Activities) { a.TargetMismatchGrace = 30 * time.Second }, func(t *testing.T, msg string, refused int32) {
		if want := "since its first attempt, past workflow.target_mismatch_grace (30s), and is not retried again: the run fails"; !strings.Contains(msg, want) {
			t.Errorf("%q\nwant it to say %q", msg, want)
		}
		// Retried within the grace (back-offs of 1 s to 10 s), then
		// not: 7 refusals in 35 s, not a day's.
		if refused < 6 || refused > 30 {
			t.Errorf("%d look-ups of the connection; want the step retried for the grace, then not", refused)
		}
	})
}

// forEachMismatch runs a run started for target A ("books", http) whose
// worker sends its connection to B ("books", xero), in its customer step
// and in its invoice step once its customer was made, by local calls,
// activities, or attempts made one at a time, with maxAttempts (0:
// unlimited) and the worker's activities as worker sets them; each run
// must fail ERPTargetMismatch saying both targets and that nothing was
// sent, name runs retry once, send nothing, and keep the customer made
// before the move; check says the rest of its message (and the worker's
// look-ups of the connection).
func forEachMismatch(t *testing.T, maxAttempts int32, worker func(*activities.Activities), check func(t *testing.T, msg string, refused int32)) {
	a := connectors.IdentifyTarget("books", "http", nil)
	b := connectors.IdentifyTarget("books", "xero", nil)
	for _, c := range []struct {
		name           string
		local, listens bool
		moveAt         int
		customers      int
	}{
		{"customer, local", true, false, 0, 0},
		{"customer, activities", false, false, 0, 0},
		{"invoice, local", true, false, 1, 1},
		{"invoice, activities", false, false, 1, 1},
		{"invoice, one at a time", true, true, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			erp := &fakeTarget{keys: map[string]bool{}}
			refused := &atomic.Int32{}
			acts := &activities.Activities{Connections: movingTarget{erp: erp, a: a, b: b, moveAt: c.moveAt, resolves: refused}}
			worker(acts)
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-42", "100.00")})
			in.Retry.MaximumAttempts = maxAttempts
			msg := mismatchMessage(t, acts, in, &a, c.local, c.listens)
			if want := `this worker sends the ERP calls of connection "c" to target "books" (xero), but the run was started for target "books" (http): nothing was sent`; !strings.Contains(msg, want) {
				t.Errorf("%q\nwant it to say %q", msg, want)
			}
			check(t, msg, refused.Load())
			if strings.Count(msg, "runs retry") != 1 || erp.invoices != 0 || erp.attempts != 0 || erp.customers != c.customers {
				t.Errorf("%q: %d customers, %d invoice attempts; want %d customers, none, and runs retry named once", msg, erp.customers, erp.attempts, c.customers)
			}
		})
	}
}

// mismatchMessage runs in, pinned to target, by local calls or
// activities, listening (a linger) or not, with the worker's activities
// acts (their clock the test environment's), and returns the message of
// the run's failure, which must be ERPTargetMismatch.
func mismatchMessage(t *testing.T, acts *activities.Activities, in InvoiceDealInput, target *connectors.TargetIdentity, local, listens bool) string {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(InvoiceDeal, workflow.RegisterOptions{Name: InvoiceDealName})
	acts.Now = env.Now
	env.RegisterActivityWithOptions(acts, activity.RegisterOptions{})
	in.LocalCalls, in.ERPTarget = local, target
	if listens {
		in.Linger = time.Second
	}
	env.ExecuteWorkflow(InvoiceDeal, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeTargetMismatch {
		t.Fatalf("%v; want the run failed %s", err, activities.ErrTypeTargetMismatch)
	}
	return appErr.Message()
}

// movesAfterInvoiceAttempt is a worker's config that sends the connection
// to target A until the invoice step's first attempt, then to B.
type movesAfterInvoiceAttempt struct {
	erp  *fakeTarget
	a, b connectors.TargetIdentity
}

func (m movesAfterInvoiceAttempt) Resolve(string) (activities.Connection, bool) {
	id := m.a
	if m.erp.attempts > 0 {
		id = m.b
	}
	return activities.Connection{Mapper: mapping.Default{}, Target: m.erp, TargetName: "books", TargetIdentity: id}, true
}

// A run whose invoice attempt got no answer from the run's target (it may
// have made the invoice there), and whose later attempts meet a worker
// that sends the connection elsewhere, fails ERPTargetMismatch once the
// grace is past, saying that an attempt on the run's target may have made
// the invoice there, to look for it before retrying the run for another
// target: by local calls, activities, or attempts made one at a time.
func TestATargetMismatchPastItsGraceSaysAnEarlierAttemptMayHaveMadeTheInvoice(t *testing.T) {
	a := connectors.IdentifyTarget("books", "http", nil)
	b := connectors.IdentifyTarget("books", "xero", nil)
	for _, c := range []struct {
		name           string
		local, listens bool
	}{{"local", true, false}, {"activities", false, false}, {"one at a time", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{&connectors.OutcomeUnknownError{Err: errors.New("erp create: no answer"), Wait: time.Millisecond}}}
			acts := &activities.Activities{Connections: movesAfterInvoiceAttempt{erp: erp, a: a, b: b}, TargetMismatchGrace: 30 * time.Second}
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-46", "100.00")}) // unlimited attempts
			msg := mismatchMessage(t, acts, in, &a, c.local, c.listens)
			for _, want := range []string{
				"past workflow.target_mismatch_grace (30s), and is not retried again: the run fails",
				`an earlier attempt of this step, sent to target "books" (http), may have made the invoice (reference "D-46") there: look for it there before retrying the run for another target`,
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q\nwant it to say %q", msg, want)
				}
			}
			if erp.attempts != 1 {
				t.Errorf("%d invoice attempts sent; want the first only", erp.attempts)
			}
		})
	}
}

// A run whose write-back's retries ran out on a CRM outage says how many
// attempts failed, as an ERP step's failure does; the attempts made in
// earlier calls (a long back-off waited by the run's timer) count. A
// CRM's refusal, not retried, says nothing of attempts.
func TestWriteBackFailedSaysHowManyAttempts(t *testing.T) {
	for _, c := range []struct {
		name         string
		local        bool
		interval     time.Duration
		attempts     int32
		fault        error
		spent        string // "" for none
		attemptsMade int
	}{
		{"local", true, time.Second, 3, nil, "; all 3 attempts failed (workflow.retry.maximum_attempts) (once the cause", 3},
		{"activities", false, time.Second, 4, nil, "; all 4 attempts failed (workflow.retry.maximum_attempts) (once the cause", 4},
		{"local, a long back-off between calls", true, 5 * time.Second, 4, nil, "; all 4 attempts failed (workflow.retry.maximum_attempts) (once the cause", 4},
		{"one attempt", true, time.Second, 1, nil, "; its only attempt failed (workflow.retry.maximum_attempts is 1) (once the cause", 1},
		{"refused", true, time.Second, 3, &connectors.APIError{Service: "crm", Op: "write back", StatusCode: 400, Message: "no such property"}, "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			crm := &fakeCRM{failWriteBack: 10}
			if c.fault != nil {
				crm.writeBackFaults = []error{c.fault}
			}
			env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: &fakeTarget{keys: map[string]bool{}}, WriteBacker: crm})
			in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-42", "100.00")})
			in.LocalCalls, in.WriteBack = c.local, true
			in.Retry = RetryPolicy{InitialInterval: c.interval, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: c.attempts}
			env.ExecuteWorkflow(InvoiceDeal, in)
			var appErr *temporal.ApplicationError
			if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != ErrTypeWriteBackFailed {
				t.Fatalf("%v; want the run failed WriteBackFailed", err)
			}
			made := 10 - crm.failWriteBack
			if c.fault != nil {
				made = 1 - len(crm.writeBackFaults) + 10 - crm.failWriteBack
			}
			msg := appErr.Message()
			if made != c.attemptsMade || c.spent != "" && !strings.Contains(msg, c.spent) || c.spent == "" && strings.Contains(msg, "attempt") {
				t.Errorf("%q after %d attempts; want %d attempts, then %q", msg, made, c.attemptsMade, c.spent)
			}
		})
	}
}

// A write-back failure that does not number its attempt (an earlier
// release's worker, a connection not configured on the worker) says
// nothing of attempts, rather than "all 0 attempts".
func TestWriteBackSpentWithoutANumber(t *testing.T) {
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-43", "100.00")})
	in.Retry.MaximumAttempts = 3
	for name, err := range map[string]error{
		"no number":  temporal.NewApplicationError("crm down", activities.ErrTypeCRMUnavailable, activities.Attempt{NotSent: true}),
		"no details": temporal.NewApplicationError("crm down", activities.ErrTypeCRMUnavailable),
		"refused":    temporal.NewNonRetryableApplicationError("crm: 400", activities.ErrTypeCRMRejected, nil, activities.Attempt{Number: 1}),
	} {
		if got := writeBackSpent(in, err, 2); got != "" {
			t.Errorf("%s: %q, want nothing", name, got)
		}
	}
	if got := writeBackSpent(in, temporal.NewApplicationError("crm down", activities.ErrTypeCRMUnavailable, activities.Attempt{Number: 1}), 2); got != "; all 3 attempts failed (workflow.retry.maximum_attempts)" {
		t.Errorf("the third attempt: %q", got)
	}
}
