package activities

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// The promise that `dealsync runs retry` finds an invoice the step may
// have made under the same idempotency key holds only where the target
// finds it: quickbooks, netsuite, xero with check_reference, an http
// target with lookup_invoices, dev's sandbox. An http target without
// lookup_invoices, or xero with check_reference: false, sends the invoice
// again, which makes a second one where the ERP no longer honours the key
// (Xero keeps its keys a limited time): its advice says so, names the
// setting, and says to look first; a target that does not say (a pin of the release
// before) promises nothing.
func TestInvoiceRetryAdvicePromisesOnlyWhereTheTargetFindsTheInvoice(t *testing.T) {
	const promise = "dealsync runs retry finds it under the same idempotency key"
	for _, c := range []struct {
		name    string
		how     connectors.TargetIdentity
		promise bool
		says    []string
	}{
		{"a target that finds it", connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryFinds}, true, nil},
		{"an http target without lookup_invoices", connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryKeyOnly, LookupSetting: "lookup_invoices"}, false,
			[]string{"makes a second invoice unless the ERP still honours that key", "set lookup_invoices: true", "(lookup_invoices is off)"}},
		{"xero with check_reference: false", connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryKeyOnly, LookupSetting: "check_reference"}, false,
			[]string{"makes a second invoice unless the ERP still honours that key", "set check_reference: true", "(check_reference is off)"}},
		{"a look-up off whose setting is not named", connectors.TargetIdentity{InvoiceRetry: connectors.InvoiceRetryKeyOnly}, false,
			[]string{"makes a second invoice", "its look-up of invoices by reference is off", "turn that look-up on"}},
		{"a target that does not say", connectors.TargetIdentity{}, false,
			[]string{"only where the target looks invoices up", "otherwise makes a second invoice", "xero with check_reference", "lookup_invoices"}},
	} {
		advice := "look for it there before invoicing by hand" + InvoiceRetryAdvice(c.how, "dealsync runs retry")
		if got := strings.HasSuffix(advice, "; "+promise); got != c.promise {
			t.Errorf("%s: %q; want the promise %v", c.name, advice, c.promise)
		}
		if !strings.Contains(advice, "dealsync runs retry") {
			t.Errorf("%s: %q; want the command named", c.name, advice)
		}
		for _, s := range c.says {
			if !strings.Contains(advice, s) {
				t.Errorf("%s: %q; want %q in it", c.name, advice, s)
			}
		}
	}
}

// The failure of an invoice step whose attempt may have made the invoice
// (no answer) or did (answered 2xx, then unread: an http API's answer
// without an id) words what runs retry does as this worker's target says
// (its config's identity; the run's pin when the worker's is not known).
func TestAnInvoiceStepThatMayHaveMadeItPromisesARetryOnlyWhereTheTargetFindsIt(t *testing.T) {
	const promise = "dealsync runs retry finds it under the same idempotency key"
	const second = "which makes a second invoice unless the ERP still honours that key; set lookup_invoices: true"
	noAnswer := writeThenRead{failure: &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}}
	noID := writeThenRead{write: true, failure: errors.New(`erp create invoice: the API answered 2xx, but its answer has no id: permanent`)}
	finds := connectors.TargetIdentity{Fingerprint: "t1:a", Description: `target "books" (xero)`, InvoiceRetry: connectors.InvoiceRetryFinds}
	keyOnly := connectors.TargetIdentity{Fingerprint: "t1:b", Description: `target "erp" (http)`, InvoiceRetry: connectors.InvoiceRetryKeyOnly, LookupSetting: "lookup_invoices"}
	for _, c := range []struct {
		name   string
		target connectors.Target
		here   connectors.TargetIdentity
		pinned *connectors.TargetIdentity
		want   string
	}{
		{"no answer, a target that finds it", noAnswer, finds, &finds, promise},
		{"no answer, an http target without lookup_invoices", noAnswer, keyOnly, &keyOnly, second},
		{"2xx without an id, an http target without lookup_invoices", noID, keyOnly, &keyOnly, second},
		{"2xx without an id, a target that finds it", noID, finds, &finds, promise},
		{"no answer, the worker's target not known: the pin's", noAnswer, connectors.TargetIdentity{}, &keyOnly, second},
		{"no answer, neither known", noAnswer, connectors.TargetIdentity{}, nil, "only where the target looks invoices up"},
	} {
		err := invoiceStepOf(Connection{Target: c.target, TargetIdentity: c.here}, c.pinned, "DS-12")
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), `(reference "DS-12")`) {
			t.Fatalf("%s: %v; want the step's failure naming the reference", c.name, err)
		}
		msg := appErr.Message()
		if !strings.Contains(msg, c.want) || (c.want != promise && strings.Contains(msg, promise)) {
			t.Errorf("%s: %q; want %q, and no promise unless the target finds it", c.name, msg, c.want)
		}
	}
}

// invoiceStepOf runs CreateInvoice for conn, a run pinned to pinned, as a
// local activity of one attempt, and returns the run's error.
func invoiceStepOf(conn Connection, pinned *connectors.TargetIdentity, reference string) error {
	a := &Activities{Connections: oneConnection{"m": conn}}
	var env testsuite.WorkflowTestSuite
	wenv := env.NewTestWorkflowEnvironment()
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: reference}, Target: pinned}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	wenv.ExecuteWorkflow("invoice")
	return wenv.GetWorkflowError()
}
