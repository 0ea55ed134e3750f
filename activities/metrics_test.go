package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/model"
)

// rateLimitedERP finds customers and answers every invoice with 429.
type rateLimitedERP struct{}

func (rateLimitedERP) FindOrCreateCustomer(context.Context, model.Customer, string) (connectors.CustomerRef, error) {
	return connectors.CustomerRef{ID: "CUS-1"}, nil
}

func (rateLimitedERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	return connectors.InvoiceResult{}, &connectors.APIError{Service: "erp", Op: "create invoice", StatusCode: 429, RetryAfter: time.Second}
}

func (rateLimitedERP) PlanInvoice(model.Invoice, connectors.CustomerRef, string) (connectors.Request, error) {
	return connectors.Request{}, nil
}

type oneConnection map[string]Connection

func (c oneConnection) Resolve(name string) (Connection, bool) { v, ok := c[name]; return v, ok }

func TestStepsAreCountedByOutcome(t *testing.T) {
	a := &Activities{Connections: oneConnection{"m": {Target: rateLimitedERP{}}}}
	read := func(step, conn, outcome string) float64 {
		return metrics.Read("dealsync_steps_total", "step", step, "connection", conn, "outcome", outcome)
	}
	durations := func() float64 {
		return metrics.Read("dealsync_step_duration_seconds", "step", "invoice", "connection", "m")
	}
	customerOK, invoice429, unknown := read("customer", "m", metrics.StepOK), read("invoice", "m", ErrTypeERPRateLimited), read("invoice", "nowhere", ErrTypeConnectionUnavailable)
	invoiceSamples := durations()
	ctx := context.Background()
	if _, err := a.FindOrCreateCustomer(ctx, CustomerInput{Connection: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateInvoice(ctx, CreateInvoiceInput{Connection: "m"}); err == nil {
		t.Fatal("want the 429")
	}
	if _, err := a.CreateInvoice(ctx, CreateInvoiceInput{Connection: "nowhere"}); err == nil {
		t.Fatal("want an error for a connection the worker lacks")
	}
	if got := read("customer", "m", metrics.StepOK) - customerOK; got != 1 {
		t.Errorf("customer ok: %v, want 1", got)
	}
	if got := read("invoice", "m", ErrTypeERPRateLimited) - invoice429; got != 1 {
		t.Errorf("invoice ERPRateLimited: %v, want 1", got)
	}
	if got := read("invoice", "nowhere", ErrTypeConnectionUnavailable) - unknown; got != 1 {
		t.Errorf("invoice on an unknown connection: %v, want 1", got)
	}
	if got := durations() - invoiceSamples; got != 1 {
		t.Errorf("%v duration samples for the invoice step, want 1", got)
	}
}

// keyedERP records the keys the customer step sends.
type keyedERP struct {
	rateLimitedERP
	keys []string
}

func (k *keyedERP) FindOrCreateCustomer(_ context.Context, _ model.Customer, key string) (connectors.CustomerRef, error) {
	k.keys = append(k.keys, key)
	return connectors.CustomerRef{ID: "CUS-1"}, nil
}

// The customer step's key is the run's key and a digest of the customer:
// the same on every attempt, another for another customer, so that an ERP
// replaying by key (QuickBooks' requestid) never answers a changed
// company's run with the customer of an earlier one.
func TestCustomerKeyFollowsTheCustomer(t *testing.T) {
	erp := &keyedERP{}
	a := &Activities{Connections: oneConnection{"m": {Target: erp}}}
	ctx := context.Background()
	acme, renamed := model.Customer{ExternalID: "C-1", Name: "Acme"}, model.Customer{ExternalID: "C-1", Name: "Acme Renamed"}
	for _, c := range []model.Customer{acme, acme, renamed} {
		if _, err := a.FindOrCreateCustomer(ctx, CustomerInput{Connection: "m", Customer: c, IdempotencyKey: "invoice/m/D-1/customer"}); err != nil {
			t.Fatal(err)
		}
	}
	k := erp.keys
	if len(k) != 3 || k[0] != k[1] || k[1] == k[2] || !strings.HasPrefix(k[0], "invoice/m/D-1/customer/") || !strings.HasPrefix(k[2], "invoice/m/D-1/customer/") {
		t.Errorf("keys %q: want one per customer, each the run's key and a digest", k)
	}
}

// CustomerRunKey gives back the run's key of a CustomerKey, and leaves
// other keys alone.
func TestCustomerRunKey(t *testing.T) {
	run := "invoice/m/D-1/customer"
	if got := connectors.CustomerRunKey(connectors.CustomerKey(run, model.Customer{Name: "Acme"})); got != run {
		t.Errorf("CustomerRunKey(CustomerKey(%q)) = %q", run, got)
	}
	for _, k := range []string{run, "k", "invoice/m/D-1/customer/not-hex-digits", "a/0123456789abcdeg"} {
		if got := connectors.CustomerRunKey(k); got != k {
			t.Errorf("CustomerRunKey(%q) = %q, want it unchanged", k, got)
		}
	}
}

// panickingERP's invoice step panics (a connector's bug).
type panickingERP struct{ rateLimitedERP }

func (panickingERP) CreateInvoice(context.Context, model.Invoice, connectors.CustomerRef, string) (connectors.InvoiceResult, error) {
	panic("nil map")
}

// A step that panics is counted "Panic", and the panic goes on (the SDK
// fails and retries the attempt): it was counted "ok", a connector stuck
// panicking showing a stream of ok attempts and no invoices.
func TestAPanickingStepIsCountedAsOne(t *testing.T) {
	a := &Activities{Connections: oneConnection{"p": {Target: panickingERP{}}}}
	read := func(outcome string) float64 {
		return metrics.Read("dealsync_steps_total", "step", "invoice", "connection", "p", "outcome", outcome)
	}
	ok, panics := read(metrics.StepOK), read("Panic")
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on")
			}
		}()
		_, _ = a.CreateInvoice(context.Background(), CreateInvoiceInput{Connection: "p"})
	}()
	if got := read("Panic") - panics; got != 1 || read(metrics.StepOK) != ok {
		t.Errorf("Panic counted %v times, ok %v more; want 1 and 0", got, read(metrics.StepOK)-ok)
	}
}

// A write-back-only run's step (Required) fails, retried, on a worker
// whose connection writes nothing back: taken as done there, the run
// completed and its invoice was never written back. A run's ordinary
// write-back step on such a worker is skipped, its outcome saying so (for
// `runs retry --writeback --completed` to find).
func TestARequiredWriteBackIsNotDoneByAWorkerWithoutIt(t *testing.T) {
	a := &Activities{Connections: oneConnection{"m": {Target: rateLimitedERP{}}}}
	in := WriteBackInput{Connection: "m", DealID: "D-1", Result: connectors.InvoiceResult{InvoiceID: "INV-1"}}
	skips := metrics.Read("dealsync_steps_total", "step", "write_back", "connection", "m", "outcome", metrics.StepWriteBackSkipped)
	if out, err := a.WriteBack(context.Background(), in); err != nil || !strings.Contains(out.Skipped, "writes nothing back to its CRM on this worker") {
		t.Fatalf("an ordinary write-back step without a write-back: %+v, %v; want it skipped, saying so", out, err)
	}
	if n := metrics.Read("dealsync_steps_total", "step", "write_back", "connection", "m", "outcome", metrics.StepWriteBackSkipped); n != skips+1 {
		t.Errorf("skipped write-backs counted %v, want %v", n, skips+1)
	}
	in.Required = true
	_, err := a.WriteBack(context.Background(), in)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeConnectionUnavailable || appErr.NonRetryable() ||
		!strings.Contains(appErr.Message(), "invoice INV-1") {
		t.Fatalf("a required write-back without one: %v, want a retryable %s naming the invoice", err, ErrTypeConnectionUnavailable)
	}
}
