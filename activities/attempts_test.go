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
	a := &Activities{Connections: oneConnection{"m": {Target: lostThenRefused{calls: calls}}}}
	var env testsuite.WorkflowTestSuite
	wenv := env.NewTestWorkflowEnvironment()
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 2},
		})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: "DS-7"}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	wenv.ExecuteWorkflow("invoice")
	err := wenv.GetWorkflowError()
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

// An only attempt whose answer was lost (a gateway's 502, no answer at
// all) may have made the invoice: its failure, which ends a run of one
// attempt, says so with the reference; a refusal that sent nothing (a
// 400) does not.
func TestAnOnlyAttemptWithoutAnAnswerSaysItMayHaveMadeIt(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		may  bool
	}{
		{"a gateway's 502", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 502, Message: "bad gateway"}, true},
		{"no answer", &connectors.OutcomeUnknownError{Err: errors.New("create invoice: timeout"), Wait: time.Millisecond}, true},
		{"a refusal", &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}, false},
	} {
		a := &Activities{Connections: oneConnection{"m": {Target: failingInvoice{err: c.err}}}}
		var env testsuite.WorkflowTestSuite
		wenv := env.NewTestWorkflowEnvironment()
		wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: time.Minute,
				RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 1},
			})
			return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m", Invoice: model.Invoice{Reference: "DS-8"}}).Get(ctx, nil)
		}, workflow.RegisterOptions{Name: "invoice"})
		wenv.ExecuteWorkflow("invoice")
		err := wenv.GetWorkflowError()
		if says := err != nil && strings.Contains(err.Error(), `the ERP may have made the invoice (reference "DS-8") all the same`); says != c.may {
			t.Errorf("%s: %v; want the may-have-made note: %v", c.name, err, c.may)
		}
	}
}

// failingInvoice fails every invoice request with err.
type failingInvoice struct {
	rateLimitedERP
	err error
}

func (f failingInvoice) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	return connectors.InvoiceResult{}, f.err
}
