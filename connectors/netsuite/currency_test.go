package netsuite_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/model"
)

// sentCurrency is the currency id of the invoice upsert's body ("" = none).
func sentCurrency(t *testing.T, body json.RawMessage) string {
	t.Helper()
	var b netsuite.Invoice
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Currency == nil {
		return ""
	}
	return b.Currency.ID
}

// Without currency_ids, a multi-currency account's currencies are read:
// the new customer is made in the deal's currency and the invoice carries
// it.
func TestCurrenciesOfAMultiCurrencyAccount(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR", "3": "GBP"})
	ctx := context.Background()
	inv := exampleInvoice() // EUR
	billed := inv.Customer
	billed.Currency = inv.Currency
	ref, err := tg.FindOrCreateCustomer(ctx, billed, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if cs := fake.Customers(); len(cs) != 1 || cs[0].Currency != "2" {
		t.Fatalf("customer %+v, want currency 2 (EUR)", cs)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatal(err)
	}
	invs := fake.Invoices()
	if len(invs) != 1 || invs[0].Currency != "2" || sentCurrency(t, invs[0].Body) != "2" {
		t.Fatalf("invoices %+v", invs)
	}
	// One read for both steps.
	if n := fake.Calls("POST suiteql"); n > 3 { // tax id, name, currencies
		t.Errorf("%d SuiteQL queries", n)
	}
}

// An account without the deal's currency refuses the invoice before
// anything is sent, naming what it has; a currency added in NetSuite is
// seen once the list is read again.
func TestCurrencyTheAccountLacks(t *testing.T) {
	defer netsuite.SetCurrenciesFor(0)()
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "3": "GBP"})
	ctx := context.Background()
	inv := exampleInvoice() // EUR
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "no active currency EUR (it has GBP, USD)") {
		t.Fatalf("err = %v", err)
	}
	if n := len(fake.Invoices()); n != 0 || fake.InvoiceUpserts() != 0 {
		t.Fatalf("%d invoices sent", n)
	}
	// A customer of a currency the account lacks is not made either.
	other := inv.Customer
	other.ExternalID, other.Name, other.TaxID, other.Currency = "C-2", "Other AG", "", "EUR"
	if _, err := tg.FindOrCreateCustomer(ctx, other, "invoice/demo/D-1002/customer"); class(err) != connectors.Permanent {
		t.Fatalf("customer in EUR: %v", err)
	}

	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR", "3": "GBP"})
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatalf("after EUR was added: %v", err)
	}
}

// A single-currency account (multi-currency off) takes invoices in its
// currency without sending one, and refuses any other: NetSuite would book
// it in the customer's currency with the deal's figures.
func TestSingleCurrencyAccount(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD"})
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); class(err) != connectors.Permanent ||
		!strings.Contains(err.Error(), "the invoice is in EUR") || !strings.Contains(err.Error(), "(it has USD)") {
		t.Fatalf("EUR invoice: %v", err)
	}
	inv.Currency = "USD"
	inv.ComputeTotals()
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatal(err)
	}
	if invs := fake.Invoices(); len(invs) != 1 || sentCurrency(t, invs[0].Body) != "" {
		t.Fatalf("invoices %+v: want one, without a currency", invs)
	}
}

// currency_ids wins over the account's list (nothing is read), and the
// invoice of an earlier attempt is found before its currency is judged.
func TestConfiguredCurrencyIDs(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.CurrencyIDs = map[string]string{"EUR": "2"} })
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR"})
	ctx := context.Background()
	inv := exampleInvoice()
	billed := inv.Customer
	billed.Currency = inv.Currency
	ref, err := tg.FindOrCreateCustomer(ctx, billed, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if cs := fake.Customers(); len(cs) != 1 || cs[0].Currency != "2" {
		t.Fatalf("customer %+v", cs)
	}
	first, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil {
		t.Fatal(err)
	}
	if invs := fake.Invoices(); len(invs) != 1 || sentCurrency(t, invs[0].Body) != "2" {
		t.Fatalf("invoices %+v", invs)
	}
	// The same step again with a currency the config lacks: the invoice
	// made before is the answer.
	inv.Currency = model.Currency("GBP")
	again, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || !again.Replayed || again.InvoiceID != first.InvoiceID {
		t.Fatalf("replay: %+v %v", again, err)
	}
}
