package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
)

// cancelingTarget is fakeTarget whose step named in is canceled by an
// operator while it runs: the step asks the run to be canceled, then waits
// for its own cancellation, as an ERP call that has not answered yet.
type cancelingTarget struct {
	*fakeTarget
	env *testsuite.TestWorkflowEnvironment
	in  string // "customer" or "invoice"
}

func (c cancelingTarget) hold(ctx context.Context) error {
	c.env.CancelWorkflow()
	<-ctx.Done()
	return ctx.Err()
}

func (c cancelingTarget) FindOrCreateCustomer(ctx context.Context, cu model.Customer, key string) (connectors.CustomerRef, error) {
	if c.in == "customer" {
		return connectors.CustomerRef{}, c.hold(ctx)
	}
	return c.fakeTarget.FindOrCreateCustomer(ctx, cu, key)
}

func (c cancelingTarget) CreateInvoice(ctx context.Context, inv model.Invoice, cu connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	if c.in == "invoice" {
		c.fakeTarget.attempts++
		return connectors.InvoiceResult{}, c.hold(ctx)
	}
	return c.fakeTarget.CreateInvoice(ctx, inv, cu, key)
}

// cancelingCRM is fakeCRM whose write-back is canceled while it runs.
type cancelingCRM struct {
	*fakeCRM
	env *testsuite.TestWorkflowEnvironment
}

func (c cancelingCRM) WriteBack(ctx context.Context, _, _ string, _ connectors.InvoiceResult) error {
	c.env.CancelWorkflow()
	<-ctx.Done()
	return ctx.Err()
}

// syncStatuses records the SyncStatus values a run sets, in order.
func syncStatuses(env *testsuite.TestWorkflowEnvironment) *[]string {
	var statuses []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if status, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(SyncStatusKey); ok {
			statuses = append(statuses, status)
		}
	}).Return(nil)
	return &statuses
}

// canceledWith is the run's cancellation and the message of its details
// ("" when it has none); it fails the test when the run was not canceled.
func canceledWith(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	t.Helper()
	var canceled *temporal.CanceledError
	err := env.GetWorkflowError()
	if !errors.As(err, &canceled) {
		t.Fatalf("%v; want the run canceled", err)
	}
	var msg string
	if canceled.HasDetails() {
		_ = canceled.Details(&msg)
	}
	return msg
}

// A run canceled by an operator during its customer step ends canceled,
// SyncStatus pending: nothing of the invoice was sent. It marked itself
// failed, among the runs that need someone, with local calls and
// activities alike.
func TestInvoiceDealCanceledDuringCustomerStepStaysPending(t *testing.T) {
	for _, local := range []bool{true, false} {
		erp := &fakeTarget{keys: map[string]bool{}}
		target := &cancelingTarget{fakeTarget: erp, in: "customer"}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: target})
		target.env = env
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-1", "100.00")})
		in.LocalCalls = local
		statuses := syncStatuses(env)
		env.ExecuteWorkflow(InvoiceDeal, in)
		canceledWith(t, env)
		if erp.attempts != 0 || len(*statuses) != 0 {
			t.Errorf("local calls %v: %d invoice attempts, SyncStatus set to %v; want none (pending)", local, erp.attempts, *statuses)
		}
	}
}

// A run canceled while its invoice call was under way may have made the
// invoice: it ends canceled, SyncStatus "failed" as an invoice step that
// failed so, and its cancellation says what to do, with the reference.
func TestInvoiceDealCanceledDuringInvoiceCallSaysItMayHaveMadeIt(t *testing.T) {
	for _, listens := range []bool{false, true} {
		erp := &fakeTarget{keys: map[string]bool{}}
		target := &cancelingTarget{fakeTarget: erp, in: "invoice"}
		env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: target})
		target.env = env
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-2", "100.00")})
		in.LocalCalls = true
		if listens {
			in.SettleTime = time.Minute // the invoice step's attempts one at a time
		}
		statuses := syncStatuses(env)
		env.ExecuteWorkflow(InvoiceDeal, in)
		msg := canceledWith(t, env)
		if erp.attempts != 1 || !slices.Equal(*statuses, []string{StatusFailed}) ||
			!strings.Contains(msg, `may have made the invoice (reference "D-2")`) || !strings.Contains(msg, "runs retry --canceled") {
			t.Errorf("listens %v: %d attempts, SyncStatus %v, cancellation %q; want 1 attempt, failed, and what to do", listens, erp.attempts, *statuses, msg)
		}
	}
}

// A run canceled while it waited between attempts of its invoice step,
// each refused before the ERP acted (a 429 with Retry-After), made no
// invoice: it ends canceled, pending, without another attempt.
func TestInvoiceDealCanceledBetweenRefusedAttemptsStaysPending(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}, failInvoice: []error{
		&connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Hour, RetryAfterGiven: true},
	}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp})
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-3", "100.00")})
	in.LocalCalls, in.SettleTime = true, time.Minute
	statuses := syncStatuses(env)
	env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Minute)
	env.ExecuteWorkflow(InvoiceDeal, in)
	if msg := canceledWith(t, env); msg != "" {
		t.Errorf("cancellation says %q; want nothing to look for", msg)
	}
	if erp.attempts != 1 || len(*statuses) != 0 {
		t.Errorf("%d attempts, SyncStatus set to %v; want 1 attempt and none (pending)", erp.attempts, *statuses)
	}
}

// A run canceled during its write-back has made its invoice: it ends
// canceled, SyncStatus "invoiced" as a run that timed out then (it was
// marked writeback_failed), and its cancellation names the command that
// writes the invoice back.
func TestInvoiceDealCanceledDuringWriteBackStaysInvoiced(t *testing.T) {
	erp := &fakeTarget{keys: map[string]bool{}}
	crm := &cancelingCRM{fakeCRM: &fakeCRM{}}
	env := newEnv(t, activities.Connection{Mapper: mapping.Default{}, Target: erp, WriteBacker: crm})
	crm.env = env
	in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-4", "100.00")})
	in.LocalCalls, in.WriteBack, in.SettleTime = true, true, time.Minute
	statuses := syncStatuses(env)
	env.ExecuteWorkflow(InvoiceDeal, in)
	msg := canceledWith(t, env)
	if erp.invoices != 1 || !slices.Equal(*statuses, []string{StatusInvoiced}) || !strings.Contains(msg, "runs retry --writeback --canceled") {
		t.Errorf("%d invoices, SyncStatus %v, cancellation %q; want the invoice, invoiced, and the write-back's command", erp.invoices, *statuses, msg)
	}
}

// A run that does not listen, canceled while its invoice step waits a
// long back-off on a timer of its own (local calls, a Retry-After over
// the workflow task timeout) after attempts each refused before the ERP
// acted, made no invoice: it ends canceled, pending, as a listening
// run does. After an attempt that may have made the invoice (a 502) it
// ends canceled, "failed", saying what to look for.
func TestNotListeningRunCanceledWhileItsInvoiceStepWaits(t *testing.T) {
	gateway := &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502}
	for _, tc := range []struct {
		name     string
		fail     []error
		statuses []string
		says     string
	}{
		{"refused", []error{rateLimited("erp", "create invoice", time.Hour)}, nil, ""},
		{"refused after a 502", []error{gateway, rateLimited("erp", "create invoice", time.Hour)}, []string{StatusFailed}, `may have made the invoice (reference "D-3")`},
	} {
		erp := &fakeTarget{keys: map[string]bool{}, failInvoice: tc.fail}
		env := backOffEnv(&summaryRecorder{}, activities.Connection{Mapper: mapping.Default{}, Target: erp})
		in := input(model.DealEvent{EventID: "e1", Deal: wonDeal("D-3", "100.00")})
		in.LocalCalls = true
		statuses := syncStatuses(env)
		env.RegisterDelayedCallback(env.CancelWorkflow, 30*time.Minute)
		env.ExecuteWorkflow(InvoiceDeal, in)
		msg := canceledWith(t, env)
		if erp.attempts != len(tc.fail) || !slices.Equal(*statuses, tc.statuses) || (tc.says == "") != (msg == "") || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %d attempts, SyncStatus set to %v, cancellation %q; want %d attempts, %v, %q", tc.name, erp.attempts, *statuses, msg, len(tc.fail), tc.statuses, tc.says)
		}
	}
}
