package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// retryPins are the ERP targets a run may be pinned to, as each says what
// `dealsync runs retry` does about an invoice the run may have made, and
// what its failure must say then: a target that finds the invoice (a
// vendor target, an http one with lookup_invoices) is promised it; an
// http target without lookup_invoices, and xero with check_reference:
// false (Xero keeps its keys a limited time), are told a retry makes a
// second invoice unless the ERP still honours the key; a pin of the release before
// (no InvoiceRetry) and a run started before targets were pinned are
// promised nothing.
var retryPins = []struct {
	name     string
	pin      *connectors.TargetIdentity
	promised bool
	says     string
}{
	{"xero", &connectors.TargetIdentity{Fingerprint: "t1:x", Description: `target "books" (xero)`, InvoiceRetry: connectors.InvoiceRetryFinds}, true, ""},
	{"http with lookup_invoices", &connectors.TargetIdentity{Fingerprint: "t1:l", Description: `target "erp" (http)`, InvoiceRetry: connectors.InvoiceRetryFinds}, true, ""},
	{"http without lookup_invoices", &connectors.TargetIdentity{Fingerprint: "t1:h", Description: `target "erp" (http)`, InvoiceRetry: connectors.InvoiceRetryKeyOnly, LookupSetting: "lookup_invoices"}, false,
		"makes a second invoice unless the ERP still honours that key; set lookup_invoices: true"},
	{"xero with check_reference: false", &connectors.TargetIdentity{Fingerprint: "t1:y", Description: `target "books" (xero)`, InvoiceRetry: connectors.InvoiceRetryKeyOnly, LookupSetting: "check_reference"}, false,
		"(check_reference is off), so the retry sends the invoice again under the same idempotency key, which makes a second invoice unless the ERP still honours that key; set check_reference: true"},
	{"a pin of the release before", &connectors.TargetIdentity{Fingerprint: "t1:x", Description: `target "books" (xero)`}, false,
		"only where the target looks invoices up (xero with check_reference, quickbooks, netsuite; http with lookup_invoices) or the ERP still honours that key, and otherwise makes a second invoice"},
	{"no pin", nil, false, "only where the target looks invoices up"},
}

// checkRetryAdvice fails t unless msg, the run's failure, promises
// command's finding the invoice as the pin's case says.
func checkRetryAdvice(t *testing.T, what, name, msg, command string, promised bool, says string) {
	t.Helper()
	promise := command + " finds it under the same idempotency key"
	if got := strings.Contains(msg, promise) && !strings.Contains(msg, promise+" only"); got != promised {
		t.Errorf("%s, %s: %q; want the promise %q: %v", what, name, msg, promise, promised)
	}
	if says != "" && !strings.Contains(msg, says) {
		t.Errorf("%s, %s: %q; want %q", what, name, msg, says)
	}
}

// A run whose invoice step timed out, or was canceled during its call,
// may have made the invoice: its failure promises that runs retry finds
// it only where the target the run was pinned to does, and only there
// says to retry the run once the ERP answers.
func TestAnInvoiceThatMayExistIsPromisedToARetryOnlyWhereThePinnedTargetFindsIt(t *testing.T) {
	for _, c := range retryPins {
		erp := &fakeTarget{keys: map[string]bool{}}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: slowTarget{fakeTarget: erp, in: "invoice"}, TargetName: "erp"})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-50", "100.00")})
		in.LocalCalls, in.ActivityTimeout, in.Retry.MaximumAttempts, in.ERPTarget = true, 50*time.Millisecond, 1, c.pin
		env.ExecuteWorkflow(InvoiceDeal, in)
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), `may have made the invoice (reference "D-50")`) {
			t.Fatalf("timed out, %s: %v; want the failure saying the invoice may exist", c.name, err)
		}
		checkRetryAdvice(t, "timed out", c.name, appErr.Message(), "dealsync runs retry", c.promised, c.says)
		if !activities.SaysInvoiceMayExist(appErr.Message()) {
			t.Errorf("timed out, %s: `runs retry` does not read %q as saying the invoice may exist", c.name, appErr.Message())
		}
		if says := strings.Contains(appErr.Message(), "retry the run once it does"); says != c.promised {
			t.Errorf("timed out, %s: %q; want the step's own \"retry the run once it does\" only where a retry finds the invoice", c.name, appErr.Message())
		}

		erp = &fakeTarget{keys: map[string]bool{}}
		target := &cancelingTarget{fakeTarget: erp, in: "invoice"}
		env = newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: target})
		target.env = env
		in = input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-51", "100.00")})
		in.LocalCalls, in.ERPTarget = true, c.pin
		env.ExecuteWorkflow(InvoiceDeal, in)
		msg := canceledWith(t, env)
		if !strings.Contains(msg, `may have made the invoice (reference "D-51")`) {
			t.Fatalf("canceled, %s: %q; want the cancellation saying the invoice may exist", c.name, msg)
		}
		checkRetryAdvice(t, "canceled", c.name, msg, "dealsync runs retry --canceled", c.promised, c.says)
		if !activities.SaysInvoiceMayExist(msg) {
			t.Errorf("canceled, %s: `runs retry` does not read %q as saying the invoice may exist", c.name, msg)
		}
	}
}

// The failure of an invoice step after an earlier attempt that may have
// made the invoice says so with the same advice, as the run's target
// says.
func TestMayHaveMadeWordsTheRetryAsTheTargetSays(t *testing.T) {
	for _, c := range retryPins {
		var how connectors.TargetIdentity
		if c.pin != nil {
			how = *c.pin
		}
		err := mayHaveMade(temporal.NewApplicationError("erp create invoice: HTTP 503", activities.ErrTypeERPUnavailable), "D-52", how)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), `an earlier attempt may have made the invoice (reference "D-52")`) {
			t.Fatalf("%s: %v; want the note that an earlier attempt may have made it", c.name, err)
		}
		checkRetryAdvice(t, "an earlier attempt", c.name, appErr.Message(), "dealsync runs retry", c.promised, c.says)
		if !activities.SaysInvoiceMayExist(appErr.Message()) {
			t.Errorf("%s: `runs retry` does not read %q as saying the invoice may exist", c.name, appErr.Message())
		}
	}
}

// An invoice step whose retries ran out after attempts that may have
// made the invoice ends saying what to do once the ERP answers again:
// where the run's target does not find the invoice, that is to start the
// run again only after finding none in the ERP, not a retry alone, which
// would undo the advice before it (a second invoice); where it finds it,
// the retry alone.
func TestRetriesSpentAfterAnInvoiceThatMayExistDoNotAskForARetryAlone(t *testing.T) {
	const alone, looked = "; all 2 attempts failed (workflow.retry.maximum_attempts): once the ERP answers again, start the run again",
		"; all 2 attempts failed (workflow.retry.maximum_attempts): once the ERP answers again and you have found no invoice of its reference there, start the run again"
	for _, c := range retryPins {
		erp := &fakeTarget{keys: map[string]bool{}}
		for range 2 {
			erp.failInvoice = append(erp.failInvoice, &connectors.OutcomeUnknownError{Err: errors.New("erp create: no answer"), Wait: time.Second})
		}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, TargetName: "erp"})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-53", "100.00")})
		in.LocalCalls, in.Retry.MaximumAttempts, in.ERPTarget = true, 2, c.pin
		env.ExecuteWorkflow(InvoiceDeal, in)
		var appErr *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &appErr) || !strings.Contains(appErr.Message(), `may have made the invoice (reference "D-53")`) {
			t.Fatalf("%s: %v; want the failure saying the invoice may exist", c.name, err)
		}
		want := looked
		if c.promised {
			want = alone
		}
		if msg := appErr.Message(); !strings.HasSuffix(msg, want) {
			t.Errorf("%s: %q; want %q", c.name, msg, want)
		}
	}
}
