package activities

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// answeringERP answers the invoice step with its result or its error.
type answeringERP struct {
	rateLimitedERP
	res connectors.InvoiceResult
	err error
}

func (e answeringERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	return e.res, e.err
}

// The worker's log at info follows a deal to its invoice (one line naming
// the deal, the invoice and, by the SDK's logger, the run); a failure that
// ends the run for someone to fix is an error, where it was a warning like
// every retried attempt, which an alert on errors missed.
func TestTheWorkerLogsTheInvoiceAndTheFailuresThatEndARun(t *testing.T) {
	run := func(target connectors.Target) string {
		var out bytes.Buffer
		a := &Activities{Connections: oneConnection{"m": {Target: target}}}
		var suite testsuite.WorkflowTestSuite
		suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))))
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: time.Minute,
				RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 2},
			})
			return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "m",
				Invoice: model.Invoice{Reference: "DS-D-77", SourceDealID: "D-77"}}).Get(ctx, nil)
		}, workflow.RegisterOptions{Name: "invoice"})
		env.ExecuteWorkflow("invoice")
		return out.String()
	}
	lineWith := func(log, text string) string {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, text) {
				return l
			}
		}
		return ""
	}

	made := run(answeringERP{res: connectors.InvoiceResult{InvoiceID: "INV-9", Number: "N-9"}})
	if l := lineWith(made, "invoice made"); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "deal_id=D-77") ||
		!strings.Contains(l, "invoice_id=INV-9") || !strings.Contains(l, "invoice_number=N-9") || !strings.Contains(l, "WorkflowID=") {
		t.Errorf("a made invoice's line %q in:\n%s", l, made)
	}

	if strings.Contains(made, "invoice found") || strings.Contains(made, "replayed=true") {
		t.Errorf("a made invoice logged as found:\n%s", made)
	}
	// An answer the ERP replayed (a reset or retried run's) made nothing:
	// its line says the invoice was found, with the same attributes.
	found := run(answeringERP{res: connectors.InvoiceResult{InvoiceID: "INV-9", Number: "N-9", Replayed: true}})
	if l := lineWith(found, "invoice found: the ERP already had it (idempotent replay)"); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "deal_id=D-77") ||
		!strings.Contains(l, "invoice_id=INV-9") || !strings.Contains(l, "replayed=true") || !strings.Contains(l, "WorkflowID=") {
		t.Errorf("a replayed invoice's line %q in:\n%s", l, found)
	}
	if strings.Contains(found, "invoice made") {
		t.Errorf("a replayed invoice logged as made:\n%s", found)
	}

	refused := run(answeringERP{err: &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 400, Message: "bad date"}})
	if l := lineWith(refused, "step failed: the run ends"); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "bad date") || !strings.Contains(l, "deal_id=D-77") {
		t.Errorf("a refusal's line %q in:\n%s", l, refused)
	}
	if strings.Contains(refused, "step attempt failed") || strings.Contains(refused, "invoice made") {
		t.Errorf("a refusal also logged as a retried attempt or an invoice:\n%s", refused)
	}

	// A retryable failure is a warning on every attempt: the workflow
	// makes some calls one attempt at a time and retries them itself, so
	// an attempt cannot tell it is the run's last.
	retried := run(rateLimitedERP{})
	if l := lineWith(retried, "step attempt failed"); !strings.Contains(l, "level=WARN") || strings.Contains(retried, "the run ends") {
		t.Errorf("a retried attempt's line %q in:\n%s", l, retried)
	}
}

// refusingCRM refuses every write-back with err.
type refusingCRM struct{ err error }

func (c refusingCRM) WriteBack(context.Context, string, string, connectors.InvoiceResult) error {
	return c.err
}

// A CRM's refusal of the write-back ends the run (WriteBackFailed) for
// someone to fix: logged at error, as the ERP's refusals are.
func TestARefusedWriteBackIsLoggedAsEndingTheRun(t *testing.T) {
	var out bytes.Buffer
	a := &Activities{Connections: oneConnection{"m": {Target: rateLimitedERP{},
		WriteBacker: refusingCRM{&connectors.APIError{Service: "crm", Op: "write back", StatusCode: 400, Message: "no such property"}}}}}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteLocalActivity(ctx, a.WriteBack, WriteBackInput{Connection: "m", DealID: "D-7"}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "writeback"})
	env.ExecuteWorkflow("writeback")
	if !strings.Contains(out.String(), `level=ERROR msg="step failed: the run ends"`) || !strings.Contains(out.String(), "error_type=CRMRejected") {
		t.Errorf("a refused write-back's log:\n%s", out.String())
	}
}

// differingERP makes every invoice, and finds that the ERP's total is
// not the invoice's: it logs that as a target does
// (connectors.TotalDiffers, to the step's logger).
type differingERP struct {
	rateLimitedERP
	log *slog.Logger
}

func (e differingERP) CreateInvoice(ctx context.Context, inv model.Invoice, _ connectors.CustomerRef, _ string) (connectors.InvoiceResult, error) {
	w := connectors.TotalDiffers("ERP", "INV-9", "N-9", inv, connectors.Reported{Total: "119.01"}, "it computed its own tax", connectors.StepLogger(ctx, e.log))
	return connectors.InvoiceResult{InvoiceID: "INV-9", Warning: w}, nil
}

// What a target logs of an invoice during its step (a total that differs
// in the ERP) names the run it belongs to: the connection, the target, the
// deal and the workflow, which the target itself does not know.
func TestATargetsLogLineNamesTheRun(t *testing.T) {
	var out bytes.Buffer
	erp := differingERP{log: slog.New(slog.NewTextHandler(&out, nil))}
	a := &Activities{Connections: oneConnection{"pd": {Target: erp, TargetName: "books"}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteLocalActivity(ctx, a.CreateInvoice, CreateInvoiceInput{Connection: "pd",
			Invoice: model.Invoice{Reference: "DS-D-77", SourceDealID: "D-77", Currency: "EUR", Total: decimal.RequireFromString("119"),
				Lines: []model.InvoiceLine{{TaxRate: decimal.RequireFromString("19")}}}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "invoice"})
	env.ExecuteWorkflow("invoice")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{`msg="invoice total differs in the ERP"`, "erp=ERP", "invoice=INV-9", "connection=pd", "target=books", "deal_id=D-77",
		"workflow_id=default-test-workflow-id", "run_id=default-test-run-id"} {
		if !strings.Contains(line, want) {
			t.Errorf("the target's line lacks %s:\n%s", want, line)
		}
	}

	// The customer step's lines too.
	out.Reset()
	env = suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
		return workflow.ExecuteLocalActivity(ctx, a.FindOrCreateCustomer, CustomerInput{Connection: "pd", DealID: "D-77",
			Customer: model.Customer{Name: "Acme"}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "customer"})
	env.ExecuteWorkflow("customer")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="customer could not be claimed"`, "connection=pd", "target=books", "deal_id=D-77", "workflow_id=default-test-workflow-id"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the customer step's line lacks %s:\n%s", want, out.String())
		}
	}
}

func (e differingERP) FindOrCreateCustomer(ctx context.Context, _ model.Customer, _ string) (connectors.CustomerRef, error) {
	connectors.StepLogger(ctx, e.log).Warn("customer could not be claimed")
	return connectors.CustomerRef{ID: "C-1"}, nil
}
