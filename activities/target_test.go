package activities

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// countingERP counts the calls it gets and answers each.
type countingERP struct {
	rateLimitedERP
	calls *atomic.Int32
}

func (e countingERP) FindOrCreateCustomer(context.Context, model.Customer, string) (connectors.CustomerRef, error) {
	e.calls.Add(1)
	return connectors.CustomerRef{ID: "CUS-1"}, nil
}

func (e countingERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	e.calls.Add(1)
	return connectors.InvoiceResult{InvoiceID: "INV-1"}, nil
}

// identified is a target config that names its base URL.
type identified struct{ baseURL string }

func (i identified) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{connectors.URLSetting("base_url", i.baseURL)}
}

// A worker whose config sends the run's connection to another ERP target
// than the one the run was started for sends no request, in either ERP
// step: each fails retryable (a rolling config change can finish, another
// worker take the step) as ERPTargetMismatch, saying where this worker
// would send it, where the run was started for, and what to do. The same
// target, a run started before targets were pinned, and an account routed
// (account_targets) to the pinned target go on.
func TestAnERPStepRefusesAnotherTargetThanTheRuns(t *testing.T) {
	erpA := connectors.IdentifyTarget("books", "http", identified{"https://a.example"})
	erpB := connectors.IdentifyTarget("books", "http", identified{"https://b.example"})
	// A base_url whose host is written with a trailing dot, which the
	// release before this one pinned as written.
	erpC := connectors.IdentifyTarget("books", "http", identified{"https://c.example./v1"})
	erpCEarlier := connectors.IdentifyTarget("books", "http", settingsOf{{Key: "base_url", Value: "https://c.example./v1"}})
	// One since rewritten without the dot, which the release before this
	// one pinned with it.
	erpD := connectors.IdentifyTarget("books", "http", identified{"https://d.example/v1"})
	erpDEarlier := connectors.IdentifyTarget("books", "http", settingsOf{{Key: "base_url", Value: "https://d.example./v1"}})
	calls := &atomic.Int32{}
	erp := countingERP{calls: calls}
	conn := Connection{Target: erp, TargetName: "books", TargetIdentity: erpB,
		AccountTargets: map[string]NamedTarget{"7": {Name: "books", Target: erp, Identity: erpA}, "8": {Name: "books", Target: erp, Identity: erpC},
			"9": {Name: "books", Target: erp, Identity: erpD}}}
	a := &Activities{Connections: oneConnection{"pd": conn}}
	ctx := context.Background()
	steps := func(account string, pinned *connectors.TargetIdentity) (cerr, ierr error) {
		_, cerr = a.FindOrCreateCustomer(ctx, CustomerInput{Connection: "pd", Account: account, Target: pinned})
		_, ierr = a.CreateInvoice(ctx, CreateInvoiceInput{Connection: "pd", Account: account, Target: pinned, Invoice: model.Invoice{Reference: "DS-1"}})
		return cerr, ierr
	}

	cerr, ierr := steps("", &erpA)
	if calls.Load() != 0 {
		t.Fatalf("%d calls to the ERP of another target than the run's; want none", calls.Load())
	}
	for step, err := range map[string]error{"customer": cerr, "invoice": ierr} {
		var appErr *temporal.ApplicationError
		var at Attempt
		if !errors.As(err, &appErr) || appErr.Type() != ErrTypeTargetMismatch || appErr.NonRetryable() {
			t.Fatalf("%s step: %v; want a retryable %s", step, err, ErrTypeTargetMismatch)
		}
		if !appErr.HasDetails() || appErr.Details(&at) != nil || !at.NotSent {
			t.Errorf("%s step: details %+v; want the attempt noted as sending nothing", step, at)
		}
		for _, want := range []string{
			`this worker sends the ERP calls of connection "pd" to target "books" (http, base_url https://b.example)`,
			`but the run was started for target "books" (http, base_url https://a.example): nothing was sent`,
			"`dealsync config check` on every host", "DEALSYNC_ variables",
			// The run's target is the starter's: a worker that agrees with
			// every other worker may still disagree with it.
			"differ from the run starter's (an intake, or a `deals sync` or retry)",
			"give every worker and intake the same config file",
			// Unlimited attempts (the default) end at the run's timeout:
			// the quick way out of a run started for the wrong target.
			"retried until the run's run_timeout meanwhile",
			"terminate it (Web UI, or `temporal workflow terminate`) and `dealsync runs retry --terminated --query …`",
			"(a run that failed: without --terminated; timed out: --timed-out) starts it again for the target configured then",
		} {
			if !strings.Contains(appErr.Message(), want) {
				t.Errorf("%s step: message %q\nwant it to say %q", step, appErr.Message(), want)
			}
		}
	}

	for _, c := range []struct {
		name    string
		account string
		pinned  *connectors.TargetIdentity
	}{
		{"the same target", "", &erpB},
		{"a run started before targets were pinned", "", nil},
		{"an account routed to the run's target", "7", &erpA},
		{"a pin of another scheme (a later release's)", "", &connectors.TargetIdentity{Fingerprint: "t9:abc", Description: "elsewhere"}},
		{"the earlier release's pin of a host written with its trailing dot", "8", &erpCEarlier},
		{"this release's pin of it", "8", &connectors.TargetIdentity{Fingerprint: erpC.Fingerprint, Description: erpC.Description}},
		{"the earlier release's pin of a host written with its trailing dot, since rewritten without it", "9", &erpDEarlier},
	} {
		calls.Store(0)
		if cerr, ierr := steps(c.account, c.pinned); cerr != nil || ierr != nil || calls.Load() != 2 {
			t.Errorf("%s: %v, %v, %d calls; want both steps to call the ERP", c.name, cerr, ierr, calls.Load())
		}
	}
	calls.Store(0)
	if _, ierr := steps("7", &erpB); calls.Load() != 0 || !strings.Contains(ierr.Error(), `connection "pd" for account "7" to target "books" (http, base_url https://a.example)`) {
		t.Errorf("an account routed elsewhere than the run's target: %d calls, %v; want none, naming the account", calls.Load(), ierr)
	}
}

// A run whose invoice step meets a worker that sends its connection
// elsewhere, on every attempt, fails with the mismatch once its retries
// run out, having sent nothing.
func TestAnInvoiceStepOfAnotherTargetFailsWhenItsRetriesRunOut(t *testing.T) {
	erpA := connectors.IdentifyTarget("books", "http", identified{"https://a.example"})
	erpB := connectors.IdentifyTarget("books", "http", identified{"https://b.example"})
	calls := &atomic.Int32{}
	a := &Activities{Connections: oneConnection{"m": {Target: countingERP{calls: calls}, TargetName: "books", TargetIdentity: erpB}}}
	var env testsuite.WorkflowTestSuite
	wenv := env.NewTestWorkflowEnvironment()
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 3},
		})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m", Target: &erpA, Invoice: model.Invoice{Reference: "DS-2"}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	wenv.ExecuteWorkflow("invoice")
	err := wenv.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if calls.Load() != 0 || !errors.As(err, &appErr) || appErr.Type() != ErrTypeTargetMismatch ||
		!strings.Contains(appErr.Message(), `the run was started for target "books" (http, base_url https://a.example)`) {
		t.Fatalf("%d calls, %v; want none and the mismatch", calls.Load(), err)
	}
	// Its attempts, each refused in this worker, made nothing.
	if strings.Contains(err.Error(), "may have made the invoice") {
		t.Errorf("the failure says an attempt may have made the invoice: %v", err)
	}
}

// With a grace (workflow.target_mismatch_grace), a refused step is
// retryable until the grace has passed since its first attempt
// (StepStart), saying for how long it is retried and what then; past it,
// not retryable, saying how long it was retried and what to do, its
// invoice note kept. A call without StepStart (scheduled by an earlier
// release's worker) is retried as before.
func TestATargetMismatchIsRetriedForTheGraceOnly(t *testing.T) {
	erpA := connectors.IdentifyTarget("books", "http", identified{"https://a.example"})
	erpB := connectors.IdentifyTarget("books", "http", identified{"https://b.example"})
	calls := &atomic.Int32{}
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := start
	a := &Activities{Connections: oneConnection{"pd": {Target: countingERP{calls: calls}, TargetName: "books", TargetIdentity: erpB}},
		TargetMismatchGrace: 15 * time.Minute, Now: func() time.Time { return now }}
	steps := func(stepStart time.Time) map[string]error {
		_, cerr := a.FindOrCreateCustomer(context.Background(), CustomerInput{Connection: "pd", Target: &erpA, StepStart: stepStart})
		_, ierr := a.CreateInvoice(context.Background(), CreateInvoiceInput{Connection: "pd", Target: &erpA, StepStart: stepStart,
			Invoice: model.Invoice{Reference: "DS-1"}, EarlierMayHaveMade: true})
		return map[string]error{"customer": cerr, "invoice": ierr}
	}
	check := func(when string, errs map[string]error, retryable bool, says ...string) {
		t.Helper()
		for step, err := range errs {
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeTargetMismatch || appErr.NonRetryable() == retryable {
				t.Errorf("%s, %s step: %v; want an %s, retryable %v", when, step, err, ErrTypeTargetMismatch, retryable)
				continue
			}
			if _, ok := ParseTargetMismatch(appErr.Message()); !ok {
				t.Errorf("%s, %s step: %q does not read back", when, step, appErr.Message())
			}
			for _, want := range says {
				if !strings.Contains(appErr.Message(), want) {
					t.Errorf("%s, %s step: %q\nwant it to say %q", when, step, appErr.Message(), want)
				}
			}
		}
		if !strings.Contains(errs["invoice"].Error(), `may have made the invoice (reference "DS-1") there`) {
			t.Errorf("%s: %v; want the invoice step's note kept", when, errs["invoice"])
		}
	}
	now = start.Add(14*time.Minute + 59*time.Second)
	check("within the grace", steps(start), true,
		"the step is retried meanwhile, for up to workflow.target_mismatch_grace (15m) from its first attempt, then the run fails: "+
			"`dealsync runs retry --query … --failure ERPTargetMismatch` (a run that timed out: --timed-out, without --failure; terminated: --terminated, without it) starts it again for the target configured then")
	now = start.Add(15 * time.Minute)
	check("at the grace", steps(start), false,
		"the step was retried for 15m since its first attempt, past workflow.target_mismatch_grace (15m), and is not retried again: the run fails. "+
			"Once the config is the one meant, `dealsync runs retry --query … --failure ERPTargetMismatch` starts it again for the target configured then")
	now = start.Add(3 * time.Hour)
	check("long past it", steps(start), false, "the step was retried for 3h since its first attempt")
	check("a call of an earlier release's worker", steps(time.Time{}), true, "the step is retried until the run's run_timeout meanwhile")
	a.TargetMismatchGrace = 0
	check("without a grace", steps(start), true, "the step is retried until the run's run_timeout meanwhile")
	if calls.Load() != 0 {
		t.Errorf("%d calls to the ERP; want none", calls.Load())
	}
}

// settingsOf is a target config that names the settings it holds.
type settingsOf []connectors.Setting

func (s settingsOf) IdentifyingSettings() []connectors.Setting { return s }

// The message of a refused step reads back as the connection, the
// account and both targets' descriptions, whatever follows it (a note,
// the run's spent retries), names and accounts holding the message's own
// words included; the release before's message, whose account was not
// quoted, reads too; another message does not read.
func TestParseTargetMismatchReadsTheMessageBack(t *testing.T) {
	here := connectors.IdentifyTarget("books", "xero", identified{"https://a.example"})
	pinned := connectors.IdentifyTarget(`old "books"`, "http", settingsOf{{Key: "base_url", Value: "(a URL: x, y)"}, {Key: "realm_id", Value: "9"}})
	tricky := connectors.IdentifyTarget(`a, but the run was started for target "b" (http): nothing was sent`, "http", identified{"https://b.example"})
	for _, c := range []struct {
		account      string
		here, pinned connectors.TargetIdentity
	}{
		{"", here, pinned},
		{"0015e00000AbCdE", here, pinned},
		{`42 to target "x", but the run was started for "y"`, tricky, tricky},
		{"7", here, tricky},
	} {
		msg := targetMismatch("shop eu", c.account, c.here, c.pinned, 0, 0) + "; all 2 attempts failed (workflow.retry.maximum_attempts)"
		want := TargetMismatch{Connection: "shop eu", Account: c.account, Here: c.here.Description, Pinned: c.pinned.Description}
		if got, ok := ParseTargetMismatch(msg); !ok || got != want {
			t.Errorf("ParseTargetMismatch(%q) = %+v, %v; want %+v", msg, got, ok, want)
		}
	}
	if msg := targetMismatch("shop", "42", here, pinned, 0, 0); !strings.Contains(msg, `connection "shop" for account "42" to target "books"`) {
		t.Errorf("the account not quoted: %q", msg)
	}
	// The release before's messages: the account as it is.
	for _, account := range []string{"42", "0015e00000AbCdE", "acme gmbh", `"acme" gmbh`} {
		msg := `this worker sends the ERP calls of connection "shop" for account ` + account + " to " + here.Description +
			", but the run was started for " + pinned.Description + ": nothing was sent, so that …"
		want := TargetMismatch{Connection: "shop", Account: account, Here: here.Description, Pinned: pinned.Description}
		if got, ok := ParseTargetMismatch(msg); !ok || got != want {
			t.Errorf("ParseTargetMismatch(%q) = %+v, %v; want %+v", msg, got, ok, want)
		}
	}
	for _, msg := range []string{"", "ERP unreachable: connection refused", `this worker sends the ERP calls of connection "x" to somewhere`,
		`this worker sends the ERP calls of connection "x" to target "a" (http), but the run was started for target "b (http): nothing was sent`,
		`this worker sends the ERP calls of connection "x" for account 7 to somewhere`} {
		if m, ok := ParseTargetMismatch(msg); ok {
			t.Errorf("ParseTargetMismatch(%q) read %+v", msg, m)
		}
	}
}
