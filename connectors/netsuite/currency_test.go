package netsuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/connectors/netsuite/netsuitefake"
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

// customerInEUR makes the customer of inv (a deal in EUR) and checks that
// NetSuite has it in EUR, currency 2.
func customerInEUR(t *testing.T, fake *netsuitefake.Server, tg *netsuite.Target, inv model.Invoice) connectors.CustomerRef {
	t.Helper()
	billed := inv.Customer
	billed.Currency = inv.Currency
	ref, err := tg.FindOrCreateCustomer(context.Background(), billed, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if cs := fake.Customers(); len(cs) != 1 || cs[0].Currency != "2" {
		t.Fatalf("customer %+v, want currency 2 (EUR)", cs)
	}
	return ref
}

// Without currency_ids, a multi-currency account's currencies are read:
// the new customer is made in the deal's currency and the invoice carries
// it.
func TestCurrenciesOfAMultiCurrencyAccount(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR", "3": "GBP"}, "1")
	ctx := context.Background()
	inv := exampleInvoice() // EUR
	ref := customerInEUR(t, fake, tg, inv)
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
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "3": "GBP"}, "1")
	ctx := context.Background()
	inv := exampleInvoice() // EUR
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	// How long the list is kept is said as the config writes durations
	// (5m, not 5m0s).
	if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "no active currency EUR (it has GBP, USD)") ||
		!strings.Contains(err.Error(), "(dealsync reads them again after 5m)") {
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

	// EUR is added in NetSuite: believed missing until the list is old
	// enough to be read again.
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR", "3": "GBP"}, "1")
	if _, err := tg.FindOrCreateCustomer(ctx, other, "invoice/demo/D-1002/customer"); class(err) != connectors.Permanent {
		t.Fatalf("customer in EUR within %v of the read: %v", "5m", err)
	}
	defer netsuite.SetCurrenciesFor(0)()
	ref2, err := tg.FindOrCreateCustomer(ctx, other, "invoice/demo/D-1002/customer")
	if err != nil {
		t.Fatalf("after EUR was added: %v", err)
	}
	inv.Customer = other
	if _, err := tg.CreateInvoice(ctx, inv, ref2, "invoice/demo/D-1002/invoice"); err != nil {
		t.Fatalf("after EUR was added: %v", err)
	}
	// The first company's customer was made in the base currency (USD):
	// NetSuite refuses it an invoice in EUR.
	if _, err := tg.CreateInvoice(ctx, exampleInvoice(), ref, "invoice/demo/D-1001/invoice"); class(err) != connectors.Permanent {
		t.Fatalf("EUR invoice to a USD customer: %v", err)
	}
}

// More currencies than a SuiteQL page of 50: every one is read.
func TestManyCurrencies(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ids := map[string]string{}
	for i := range 120 {
		ids[fmt.Sprintf("%03d", i)] = fmt.Sprintf("Q%02d", i) // sorted before EUR's id
	}
	ids["999"] = "EUR"
	fake.SetCurrencies(ids, "000")
	inv := exampleInvoice()
	billed := inv.Customer
	billed.Currency = inv.Currency
	ctx := context.Background()
	ref, err := tg.FindOrCreateCustomer(ctx, billed, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatal(err)
	}
	if invs := fake.Invoices(); len(invs) != 1 || invs[0].Currency != "999" {
		t.Fatalf("invoices %+v", invs)
	}
}

// A single-currency account (multi-currency off) takes invoices in its
// currency without sending one, and refuses any other: NetSuite would book
// it in the customer's currency with the deal's figures.
func TestSingleCurrencyAccount(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD"}, "1")
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
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR"}, "1")
	ctx := context.Background()
	inv := exampleInvoice()
	ref := customerInEUR(t, fake, tg, inv)
	first, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil {
		t.Fatal(err)
	}
	if invs := fake.Invoices(); len(invs) != 1 || sentCurrency(t, invs[0].Body) != "2" {
		t.Fatalf("invoices %+v", invs)
	}
	if n := fake.Calls("POST suiteql"); n != 2 { // tax id and name: the currencies are not read
		t.Errorf("%d SuiteQL queries, want 2", n)
	}
	// The same step again with a currency the config lacks: the invoice
	// made before is the answer.
	inv.Currency = model.Currency("GBP")
	again, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || !again.Replayed || again.InvoiceID != first.InvoiceID {
		t.Fatalf("replay: %+v %v", again, err)
	}
}

// Credentials that do not work (401) say nothing about the account's
// currencies: the step fails and the next one reads them; a 403 (a role
// without the Currency permission) is taken as a list it cannot read.
func TestCurrencyReadRefusals(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR"}, "2")
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	fake.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusUnauthorized}, netsuitefake.Fault{Status: http.StatusUnauthorized})
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); class(err) != connectors.Unauthorized {
		t.Fatalf("401 on the currency list: %v", err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatal(err)
	}
	if invs := fake.Invoices(); len(invs) != 1 || sentCurrency(t, invs[0].Body) != "2" {
		t.Fatalf("invoices %+v: want one in EUR (2), the list read after the 401", invs)
	}

	fake2, tg2 := setup(t, testRSAKey(t), nil)
	fake2.SetCurrencies(map[string]string{"1": "USD", "2": "EUR"}, "2")
	ref2, err := tg2.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	fake2.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusForbidden})
	if _, err := tg2.CreateInvoice(ctx, inv, ref2, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatalf("403 on the currency list: %v", err)
	}
	if invs := fake2.Invoices(); len(invs) != 1 || sentCurrency(t, invs[0].Body) != "" {
		t.Fatalf("invoices %+v: want one without a currency (base_currency EUR)", invs)
	}

	// Without base_currency, or with another one, an unreadable list
	// refuses the invoice before sending: it would be booked in the
	// customer's currency with the deal's figures.
	for base, want := range map[string]string{"": "set the target's base_currency", "USD": "books in its base_currency USD only"} {
		fake3, tg3 := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.BaseCurrency = base })
		ref3, err := tg3.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
		if err != nil {
			t.Fatal(err)
		}
		fake3.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusForbidden})
		if _, err := tg3.CreateInvoice(ctx, inv, ref3, "invoice/demo/D-1001/invoice"); class(err) != connectors.Permanent || !strings.Contains(err.Error(), want) {
			t.Fatalf("base_currency %q, 403 on the currency list: %v; want a permanent error saying %q", base, err, want)
		}
		if n := len(fake3.Invoices()); n != 0 {
			t.Fatalf("base_currency %q: %d invoices sent", base, n)
		}
	}
}

// A list read once stands when a later read is refused: a currency the
// account lacks still fails before sending, instead of going out without
// a currency and being booked in the customer's.
func TestCurrencyListStandsWhenARereadIsRefused(t *testing.T) {
	defer netsuite.SetCurrenciesFor(0)()
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.SetCurrencies(map[string]string{"1": "USD", "2": "EUR"}, "2")
	ctx := context.Background()
	inv := exampleInvoice() // EUR
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil {
		t.Fatal(err)
	}
	fake.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusForbidden})
	gbp := exampleInvoice()
	gbp.Currency = "GBP"
	gbp.ComputeTotals()
	if _, err := tg.CreateInvoice(ctx, gbp, ref, "invoice/demo/D-1002/invoice"); class(err) != connectors.Permanent || !strings.Contains(err.Error(), "no active currency GBP") {
		t.Fatalf("GBP after a refused re-read: %v", err)
	}
	if invs := fake.Invoices(); len(invs) != 1 {
		t.Fatalf("%d invoices, want the EUR one only", len(invs))
	}
}
