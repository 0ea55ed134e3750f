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
