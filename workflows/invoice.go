// Package workflows holds dealsync's Temporal workflows: deterministic
// orchestration only, no I/O. Every call to the outside world is an activity
// of package activities.
package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// InvoiceDealName is the registered name of InvoiceDeal.
const InvoiceDealName = "InvoiceDeal"

// WorkflowID is the deterministic ID of the run that invoices a deal: one
// per connection and deal, so duplicate deliveries meet the same run.
func WorkflowID(connection, dealID string) string {
	return "invoice/" + connection + "/" + dealID
}

// RetryPolicy is the retry policy of the ERP steps, fixed at start so the
// run behaves the same whatever the workers' config says later.
type RetryPolicy struct {
	InitialInterval    time.Duration `json:"initial_interval"`
	BackoffCoefficient float64       `json:"backoff_coefficient"`
	MaximumInterval    time.Duration `json:"maximum_interval"`
	MaximumAttempts    int32         `json:"maximum_attempts"`
}

// InvoiceDealInput starts an InvoiceDeal run.
type InvoiceDealInput struct {
	Connection      string          `json:"connection"`
	Event           model.DealEvent `json:"event"`
	Retry           RetryPolicy     `json:"retry"`
	ActivityTimeout time.Duration   `json:"activity_timeout"`
}

// InvoiceDealResult is the run's result: what the ERP recorded.
type InvoiceDealResult struct {
	CustomerID  string `json:"customer_id"`
	InvoiceID   string `json:"invoice_id"`
	Number      string `json:"number,omitempty"`
	URL         string `json:"url,omitempty"`
	Mapping     string `json:"mapping"`
	MappingHash string `json:"mapping_hash"`
}

// Memo keys recorded on every run.
const (
	MemoMapping     = "mapping"
	MemoMappingHash = "mapping_hash"
)

// InvoiceDeal turns one won deal into exactly one ERP invoice:
// map → validate (local activities: pure, fast, still recorded) → find or
// create the customer → create the invoice (activities with durable retries
// and idempotency keys derived from the workflow ID, so they are stable
// across retries and across a re-run of a failed workflow).
func InvoiceDeal(ctx workflow.Context, in InvoiceDealInput) (InvoiceDealResult, error) {
	var a *activities.Activities
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID

	pure := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var mapped activities.MapResult
	if err := workflow.ExecuteLocalActivity(pure, a.MapDeal, activities.MapInput{Connection: in.Connection, Event: in.Event}).Get(ctx, &mapped); err != nil {
		return fail(ctx, err)
	}
	_ = workflow.UpsertMemo(ctx, map[string]any{MemoMapping: mapped.Mapping, MemoMappingHash: mapped.MappingHash})

	var invoice model.Invoice
	if err := workflow.ExecuteLocalActivity(pure, a.ValidateInvoice, activities.ValidateInput{
		Connection: in.Connection, Invoice: mapped.Invoice, DealAmount: in.Event.Deal.Amount, Tolerance: mapped.Tolerance,
	}).Get(ctx, &invoice); err != nil {
		return fail(ctx, err)
	}

	erp := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: in.ActivityTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    in.Retry.InitialInterval,
			BackoffCoefficient: in.Retry.BackoffCoefficient,
			MaximumInterval:    in.Retry.MaximumInterval,
			MaximumAttempts:    in.Retry.MaximumAttempts,
		},
	})
	var customer connectors.CustomerRef
	if err := workflow.ExecuteActivity(erp, a.FindOrCreateCustomer, activities.CustomerInput{
		Connection: in.Connection, Customer: invoice.Customer, IdempotencyKey: wfID + "/customer",
	}).Get(ctx, &customer); err != nil {
		return fail(ctx, err)
	}
	var created connectors.InvoiceResult
	if err := workflow.ExecuteActivity(erp, a.CreateInvoice, activities.CreateInvoiceInput{
		Connection: in.Connection, Invoice: invoice, Customer: customer, IdempotencyKey: wfID + "/invoice",
	}).Get(ctx, &created); err != nil {
		return fail(ctx, err)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		ErpInvoiceIDKey.ValueSet(created.InvoiceID),
		SyncStatusKey.ValueSet(StatusInvoiced),
	)
	return InvoiceDealResult{
		CustomerID: customer.ID, InvoiceID: created.InvoiceID, Number: created.Number, URL: created.URL,
		Mapping: mapped.Mapping, MappingHash: mapped.MappingHash,
	}, nil
}

// fail marks the run failed for operators and ends it with the step's own
// message (not the SDK's "activity error" wrapper), so the Web UI shows
// what went wrong in the run's failure.
func fail(ctx workflow.Context, err error) (InvoiceDealResult, error) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, SyncStatusKey.ValueSet(StatusFailed))
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		var details any
		if appErr.HasDetails() {
			_ = appErr.Details(&details)
		}
		return InvoiceDealResult{}, temporal.NewNonRetryableApplicationError(appErr.Error(), appErr.Type(), err, details)
	}
	return InvoiceDealResult{}, err
}
