package quickbooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/connectors/quickbooks/qbofake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

const realm = "9130355555555555"

func newFake(t *testing.T) *qbofake.Server {
	f := qbofake.New(realm, "seed")
	f.HomeCurrency = "EUR" // the example company is in Berlin
	t.Cleanup(f.Close)
	return f
}

func newTarget(t *testing.T, f *qbofake.Server) *quickbooks.Target {
	return newTargetIn(t, f, t.TempDir())
}

// newTargetIn keeps its token and link files in dir.
func newTargetIn(t *testing.T, f *qbofake.Server, dir string) *quickbooks.Target {
	return newTargetWith(t, f, dir, quickbooks.Deps{})
}

// newTargetWith is newTargetIn with the target's collaborators (a logger).
func newTargetWith(t *testing.T, f *qbofake.Server, dir string, deps quickbooks.Deps) *quickbooks.Target {
	cfg := quickbooks.DefaultConfig()
	cfg.RealmID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = realm, f.ClientID, secret.New(f.ClientSecret), secret.New("seed")
	cfg.TokenFile, cfg.LinkFile = filepath.Join(dir, "tok.json"), filepath.Join(dir, "links.json")
	cfg.BaseURL, cfg.TokenURL = f.URL, f.TokenURL()
	cfg.DefaultItemID = "1"
	tg, err := quickbooks.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// A base_url that has the API path already (Intuit's reference writes the
// base as …/v3/company/<realmId>) would double it, and every call would
// answer 404: refused, saying to give the host alone. The host, with or
// without a trailing slash, is taken.
func TestBaseURLWithTheAPIPathIsRefused(t *testing.T) {
	f := newFake(t)
	for raw, want := range map[string]string{
		f.URL + "/v3/company": `already has the API path "/v3/company": dealsync adds /v3/company/<realm_id> itself; give the host alone`,
		"https://quickbooks.api.intuit.com/v3/company/9130355555555555": `already has the API path "/v3/company/9130355555555555"`,
		f.URL + "/": "",
		"https://sandbox-quickbooks.api.intuit.com": "",
	} {
		cfg := quickbooks.DefaultConfig()
		cfg.RealmID, cfg.ClientID, cfg.ClientSecret = realm, "c", secret.New("s")
		cfg.TokenFile, cfg.LinkFile = filepath.Join(t.TempDir(), "tok.json"), filepath.Join(t.TempDir(), "links.json")
		cfg.BaseURL = raw
		_, err := quickbooks.New(cfg, quickbooks.Deps{})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("base_url %s: %v; want %q", raw, err, want)
		}
	}
}

func exampleInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "D-1001", SourceDealID: "D-1001", Memo: "Acme annual",
		Customer:  model.Customer{ExternalID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", Address: model.Address{Line1: "Main St 1", City: "Berlin", Region: "BE", PostalCode: "10115", Country: "DE"}},
		Currency:  "EUR",
		IssueDate: model.NewDate(2026, 11, 20), DueDate: model.NewDate(2026, 12, 20),
		Lines: []model.InvoiceLine{
			{ItemCode: "17", Description: "Pro plan, 1 year", Quantity: d("1"), UnitPrice: d("12000.00"), TaxCode: "TAX"},
			{Description: "Onboarding", Quantity: d("2.5"), UnitPrice: d("99.50"), Discount: d("10"), TaxCode: "TAX"},
		},
	}
	inv.ComputeTotals()
	return inv
}

func TestCustomerAndInvoiceExactlyOnce(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil || !ref.Created {
		t.Fatalf("%+v %v", ref, err)
	}
	// Renamed in QBO: the link still finds it.
	f.RenameCustomer(ref.ID, "Acme GmbH (Berlin)")
	again, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf2/customer")
	if err != nil || again.ID != ref.ID || again.Created {
		t.Fatalf("by link: %+v %v", again, err)
	}
	// Lost answer, then retry with the same key: requestid replays.
	f.Fail("POST /invoice", qbofake.Fault{Status: http.StatusServiceUnavailable, AfterWork: true})
	_, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.RetryAfter {
		t.Fatalf("lost answer: %v; want it retried after the target's timeout (a 503 without Retry-After to a write)", err)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || !res.Replayed || res.Number != "D-1001" {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, n := f.Counts(); f.InvoicePosts() != 1 || n != 1 {
		t.Fatalf("posts %d invoices %d, want 1 and 1", f.InvoicePosts(), n)
	}
	bodies := f.InvoiceBodies()
	var body quickbooks.Invoice
	if err := json.Unmarshal(bodies[0], &body); err != nil {
		t.Fatal(err)
	}
	if body.CustomerRef.Value != ref.ID || body.TxnDate != "2026-11-20" || len(body.Line) != 3 ||
		body.Line[0].SalesItemLineDetail.ItemRef.Value != "17" || body.Line[0].SalesItemLineDetail.TaxCodeRef.Value != "TAX" ||
		body.Line[1].SalesItemLineDetail.ItemRef.Value != "1" || body.Line[1].Amount != "248.75" ||
		body.Line[2].DetailType != "DiscountLineDetail" || body.Line[2].Amount != "10.00" ||
		!body.ApplyTaxAfterDiscount || body.CurrencyRef != nil {
		t.Errorf("body %s", bodies[0])
	}
}

// A company without multicurrency books every invoice in its home
// currency: an invoice in another currency is refused before anything is
// sent, naming both currencies, instead of being booked with the deal's
// figures in the wrong currency, and when the setting is read again (5m,
// as the config writes durations). The preferences are read once.
func TestInvoiceInAnotherCurrencyThanTheHomeCurrency(t *testing.T) {
	f := newFake(t)
	f.HomeCurrency = "USD"
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"wf/invoice", "wf2/invoice"} {
		_, err = tg.CreateInvoice(ctx, inv, ref, key)
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "EUR") || !strings.Contains(err.Error(), "books in USD") ||
			!strings.Contains(err.Error(), "(dealsync reads the setting again after 5m)") {
			t.Fatalf("EUR invoice for a USD company: %v; want a permanent error naming both currencies and when the setting is read again", err)
		}
	}
	if n := f.Calls("POST /invoice"); n != 0 {
		t.Errorf("%d invoice POSTs sent, want none", n)
	}
	inv.Currency = "USD"
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf3/invoice")
	if err != nil || res.InvoiceID == "" {
		t.Fatalf("USD invoice: %+v %v", res, err)
	}
	if n := f.Calls("GET /preferences"); n != 1 {
		t.Errorf("preferences read %d times, want once", n)
	}
}

// multi_currency is off in the config, but the company has multicurrency
// on: CurrencyRef is sent all the same (QBO checks it against the
// customer's currency), instead of QBO taking the customer's currency for
// the deal's figures. An invoice without a discount does not ask for tax
// after the discount.
func TestMultiCurrencyCompanyGetsCurrencyRef(t *testing.T) {
	f := newFake(t)
	f.HomeCurrency, f.MultiCurrency = "USD", true
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines[1].Discount = decimal.Zero
	inv.ComputeTotals()
	inv.Customer.Currency = inv.Currency // as the run sets it
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	// A customer has one currency for good in QBO: a new one is made in
	// the deal's, or its EUR invoices would be refused.
	if c := f.CustomerCurrency(ref.ID); c != "EUR" {
		t.Fatalf("new customer's currency %q, want EUR", c)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice"); err != nil {
		t.Fatal(err)
	}
	var body quickbooks.Invoice
	if err := json.Unmarshal(f.InvoiceBodies()[0], &body); err != nil {
		t.Fatal(err)
	}
	if body.CurrencyRef == nil || body.CurrencyRef.Value != "EUR" || body.ApplyTaxAfterDiscount || len(body.Line) != 2 {
		t.Errorf("body %s; want CurrencyRef EUR, two lines, no ApplyTaxAfterDiscount", f.InvoiceBodies()[0])
	}
}

// An existing customer in another currency: QBO refuses the invoice, and
// the run fails with QBO's words (a person must decide which customer).
func TestMultiCurrencyCustomerOfAnotherCurrency(t *testing.T) {
	f := newFake(t)
	f.HomeCurrency, f.MultiCurrency = "USD", true
	tg := newTarget(t, f)
	usd := f.AddCustomer("Acme GmbH")
	inv := exampleInvoice()
	_, err := tg.CreateInvoice(context.Background(), inv, connectors.CustomerRef{ID: usd}, "wf/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "currency of the customer (USD)") {
		t.Fatalf("EUR invoice for a USD customer: %v; want QBO's refusal, permanent", err)
	}
}

// "Multicurrency off" is read again after a while: a company that turns it
// on, as the refusal asks, gets its invoices without a restart. An invoice
// that already exists for the deal is found before the currency is judged.
func TestMultiCurrencyTurnedOnIsNoticed(t *testing.T) {
	f := newFake(t)
	f.HomeCurrency = "USD"
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Customer.Currency = inv.Currency
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer") // made in USD: multicurrency is off
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice"); err == nil {
		t.Fatal("EUR invoice in a USD company: want a refusal")
	}
	defer func(d time.Duration) { *quickbooks.PrefsOffFor = d }(*quickbooks.PrefsOffFor)
	*quickbooks.PrefsOffFor = 0
	f.MultiCurrency = true
	eur, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Beta SARL", Currency: "EUR"}, "wf2/customer")
	if err != nil || f.CustomerCurrency(eur.ID) != "EUR" {
		t.Fatalf("after multicurrency was turned on: %+v %v, currency %q; want a EUR customer", eur, err, f.CustomerCurrency(eur.ID))
	}
	res, err := tg.CreateInvoice(ctx, inv, eur, "wf2/invoice")
	if err != nil || res.InvoiceID == "" {
		t.Fatalf("EUR invoice after multicurrency was turned on: %+v %v", res, err)
	}
}

// The deal's invoice exists (made before the company's currency settings
// would refuse it): a re-run finds it instead of failing.
func TestExistingInvoiceIsFoundBeforeTheCurrencyIsJudged(t *testing.T) {
	f := newFake(t)
	f.HomeCurrency = "USD"
	tg := newTarget(t, f)
	inv := exampleInvoice()
	customer := f.AddCustomer("Acme GmbH")
	made := f.AddInvoice("D-1001", customer, "dealsync D-1001")
	res, err := tg.CreateInvoice(context.Background(), inv, connectors.CustomerRef{ID: customer}, "wf/invoice")
	if err != nil || !res.Replayed || res.InvoiceID != made {
		t.Fatalf("got %+v, %v; want %s replayed", res, err, made)
	}
}

// QBO numbers its own invoices 1001, 1002, …: an invoice that merely has
// the deal's reference as its DocNumber, billed to another customer or for
// another deal, is not the deal's invoice. QBO refuses a second invoice of
// that number (6140): the run fails saying how to map the reference. With
// a reference QBO's numbers do not take, the deal's own is created.
func TestInvoiceOfAnotherCustomerWithTheSameDocNumberIsNotTaken(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Reference, inv.SourceDealID = "1001", "1001"
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	foreign := f.AddInvoice("1001", "999", "")                    // QBO's own invoice 1001 of another customer
	sameCustomer := f.AddInvoice("1001", ref.ID, "typed by hand") // not made by dealsync for this deal
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	// QBO refuses a second invoice numbered 1001 (code 6140): the run
	// fails saying how to map the reference, taking neither.
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || res.InvoiceID != "" || f.InvoicePosts() != 1 ||
		!strings.Contains(fmt.Sprint(err), "refuses DocNumber 1001") || !strings.Contains(fmt.Sprint(err), `"DS-" + deal.id`) {
		t.Fatalf("got %+v, %v (class %v, %d posts); want a permanent error saying how to map the reference, not %s or %s",
			res, err, cl, f.InvoicePosts(), foreign, sameCustomer)
	}
	// A reference QBO's numbers do not take: the deal's invoice is made,
	// and found again (a re-run after a lost answer whose requestid QBO no
	// longer remembers).
	inv.Reference = "DS-1001"
	res, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice-2")
	if err != nil || res.Replayed || f.InvoicePosts() != 2 {
		t.Fatalf("got %+v, %v (%d posts); want a new invoice", res, err, f.InvoicePosts())
	}
	again, err := tg.CreateInvoice(ctx, inv, ref, "wf-rerun/invoice")
	if err != nil || !again.Replayed || again.InvoiceID != res.InvoiceID || f.InvoicePosts() != 2 {
		t.Fatalf("re-run: %+v, %v (%d posts); want %s found", again, err, f.InvoicePosts(), res.InvoiceID)
	}
}

// A later run of a deal whose company changed in the CRM since its invoice
// was made (the invoice's DocNumber and dealsync's note are the deal's, its
// customer the old one): refused with a message naming the invoice, never
// a second invoice for the deal.
func TestDealsInvoiceBilledToAnotherCustomerIsNotInvoicedAgain(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	inv := exampleInvoice()
	first, res := invoiced(t, tg, inv)
	refusedForAnotherCustomer(t, f, tg, inv, first.ID, res.InvoiceID)
}

// invoiced makes inv's customer and inv (step keys wf/customer/a and
// wf/invoice).
func invoiced(t *testing.T, tg *quickbooks.Target, inv model.Invoice) (connectors.CustomerRef, connectors.InvoiceResult) {
	t.Helper()
	ctx := context.Background()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer/a")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil {
		t.Fatal(err)
	}
	return ref, res
}

// refusedForAnotherCustomer checks that a run of inv's deal billed to
// another customer than customerID is refused, naming invoiceID, and
// posts no second invoice.
func refusedForAnotherCustomer(t *testing.T, f *qbofake.Server, tg *quickbooks.Target, inv model.Invoice, customerID, invoiceID string) {
	t.Helper()
	ctx := context.Background()
	other, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-OTHER", Name: "Other Co"}, "wf/customer/b")
	if err != nil || other.ID == customerID {
		t.Fatalf("second customer: %+v, %v", other, err)
	}
	_, err = tg.CreateInvoice(ctx, inv, other, "wf-other/invoice")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(fmt.Sprint(err), invoiceID) || f.InvoicePosts() != 1 {
		t.Fatalf("billed to another customer: %v (class %v, %d posts); want a permanent refusal naming %s", err, c, f.InvoicePosts(), invoiceID)
	}
}

// A person added text to the PrivateNote of the deal's invoice in QBO,
// before or after dealsync's note: a re-run after Intuit has forgotten the
// requestid still takes it for the deal's, and a run billed to another
// customer is still refused, naming it.
func TestDealsInvoiceWithTextAddedToItsNoteIsFound(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || f.PrivateNote(res.InvoiceID) != "dealsync D-1001" {
		t.Fatalf("create: %+v, %v, note %q", res, err, f.PrivateNote(res.InvoiceID))
	}
	for i, note := range []string{
		"dealsync D-1001 paid by wire on 3 March",
		"Checked by Anna.\ndealsync D-1001\nPO 4471",
		"PO 4471; dealsync D-1001",
	} {
		f.SetPrivateNote(res.InvoiceID, note)
		again, err := tg.CreateInvoice(ctx, inv, ref, fmt.Sprintf("wf-rerun-%d/invoice", i))
		if err != nil || !again.Replayed || again.InvoiceID != res.InvoiceID || f.InvoicePosts() != 1 {
			t.Fatalf("note %q: %+v, %v (%d posts); want %s found", note, again, err, f.InvoicePosts(), res.InvoiceID)
		}
	}
	refusedForAnotherCustomer(t, f, tg, inv, ref.ID, res.InvoiceID)
}

// The deal's invoice voided in QBO (amounts zeroed, "Voided" before its
// note or in its place): a later run of the deal is refused for good,
// naming the invoice and the void, rather than taking the voided invoice
// for the deal's (a zero invoice reported made) or posting a second one.
// A live invoice with the deal's note beside it (billed again by hand) is
// the deal's; an invoice at 0 that is not voided is still taken.
func TestVoidedInvoiceIsNotTakenNorBilledAgain(t *testing.T) {
	for _, note := range []string{"Voided", "Voided dealsync D-1001", "Voided - dealsync D-1001 paid by wire"} {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, res := invoiced(t, tg, inv)
		f.Void(res.InvoiceID, note)
		_, err := tg.CreateInvoice(context.Background(), inv, ref, "wf-rerun/invoice")
		msg := fmt.Sprint(err)
		if c, _ := connectors.Classify(err); c != connectors.Permanent || f.InvoicePosts() != 1 ||
			!strings.Contains(msg, "invoice "+res.InvoiceID+" ") || !strings.Contains(msg, "voided in QuickBooks") || !strings.Contains(msg, "bill it by hand") {
			t.Fatalf("note %q: %v (class %v, %d posts); want a permanent refusal naming voided invoice %s, nothing posted", note, err, c, f.InvoicePosts(), res.InvoiceID)
		}
		if mentions := strings.Contains(fmt.Sprint(err), `its note has "dealsync D-1001"`); mentions != (note != "Voided") {
			t.Errorf("note %q: %v; says the note names the deal: %v", note, err, mentions)
		}
	}

	// Billed again by hand, with the deal's note: the live one is taken.
	f := newFake(t)
	tg := newTarget(t, f)
	inv := exampleInvoice()
	ref, res := invoiced(t, tg, inv)
	f.Void(res.InvoiceID, "Voided dealsync D-1001")
	live := f.AddInvoice(inv.Reference, ref.ID, "dealsync D-1001")
	got, err := tg.CreateInvoice(context.Background(), inv, ref, "wf-rerun/invoice")
	if err != nil || !got.Replayed || got.InvoiceID != live {
		t.Fatalf("voided and live: %+v, %v; want live invoice %s", got, err, live)
	}

	// At 0 but not voided (a note a person wrote, "Voided" not first):
	// the deal's invoice, as before.
	f = newFake(t)
	tg = newTarget(t, f)
	ref, res = invoiced(t, tg, inv)
	f.Void(res.InvoiceID, "dealsync D-1001 (Voided? ask Anna)")
	got, err = tg.CreateInvoice(context.Background(), inv, ref, "wf-rerun/invoice")
	if err != nil || !got.Replayed || got.InvoiceID != res.InvoiceID {
		t.Fatalf("at 0, not voided: %+v, %v; want %s replayed", got, err, res.InvoiceID)
	}
}

// The deal's invoice no longer found by its DocNumber and note (a person
// changed them) while the step's requestid is still remembered: a later
// run billed to another customer gets QBO's answer to that requestid, the
// old invoice, and is refused, naming it, rather than reported invoiced.
func TestRequestIDAnsweredWithAnotherCustomersInvoiceIsRefused(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, res := invoiced(t, tg, inv)
	f.SetPrivateNote(res.InvoiceID, "moved")
	other, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-OTHER", Name: "Other Co"}, "wf/customer/b")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(ctx, inv, other, "wf/invoice")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !connectors.IsEarlierAnswer(err) || !strings.Contains(fmt.Sprint(err), res.InvoiceID) || !strings.Contains(fmt.Sprint(err), "requestid") {
		t.Fatalf("%v (class %v); want a permanent refusal naming invoice %s and the requestid", err, c, res.InvoiceID)
	}
	// What is certain is that the answer is not the invoice sent; an
	// earlier attempt or run is one cause, a proxy or a mock answering
	// fixed data (even to a first attempt) another.
	for _, want := range []string{"not with the invoice this request sent, billed to customer " + other.ID, "either an earlier attempt or run of this step made it",
		"or what answers at the target's base_url is not QuickBooks' API itself (a proxy or a mock answering fixed data)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "made by an earlier attempt") {
		t.Errorf("message %q says as certain that an earlier attempt made the invoice", err)
	}
	// The same customer's retry is the step's replay, as before.
	again, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || again.InvoiceID != res.InvoiceID {
		t.Fatalf("the same customer's retry: %+v, %v", again, err)
	}
}

// Invoices with the deal's DocNumber whose notes name another deal whose
// id only starts with this deal's ("dealsync 421" for deal 42), with text
// around it or not, are not the deal's: one billed to the deal's customer
// is not taken, one billed to another customer is no reason to refuse the
// run (as this deal's invoice billed elsewhere). The deal's own invoice is
// posted, and QBO refuses its number.
func TestInvoiceOfALongerDealIDIsNotTaken(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Reference, inv.SourceDealID = "42", "42"
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	sameCustomer := f.AddInvoice("42", ref.ID, "dealsync 421 paid by wire")
	dashed := f.AddInvoice("42", ref.ID, "dealsync 42-b")
	otherCustomer := f.AddInvoice("42", "999", "PO 7: dealsync 421")
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	// None is taken, and none is taken for this deal's invoice billed
	// elsewhere: the invoice is posted, and QBO refuses the number (6140).
	if res.InvoiceID != "" || f.InvoicePosts() != 1 || !strings.Contains(fmt.Sprint(err), "refuses DocNumber 42") {
		t.Fatalf("got %+v, %v (%d posts); want it posted and refused for its number, not %s, %s or %s taken", res, err, f.InvoicePosts(), sameCustomer, dashed, otherCustomer)
	}
}

// Two or more invoices with the deal's DocNumber and dealsync's note of the
// deal, billed to the deal's customer (a copy made in QBO, the deal billed
// again by hand): each says it is the deal's, so the run fails for good,
// naming the number and the invoices (the first five, and how many more),
// and saying what to do in QBO, rather than take the first QBO lists or
// post another one.
func TestSeveralInvoicesOfTheDealAreRefused(t *testing.T) {
	ctx := context.Background()
	refused := func(t *testing.T, f *qbofake.Server, tg *quickbooks.Target, inv model.Invoice, ref connectors.CustomerRef, posts int, want ...string) error {
		t.Helper()
		var last error
		for _, key := range []string{"wf/invoice", "wf-rerun/invoice"} {
			res, err := tg.CreateInvoice(ctx, inv, ref, key)
			if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || res.InvoiceID != "" {
				t.Fatalf("key %s: got %+v, %v (class %v); want a permanent refusal", key, res, err, cl)
			}
			for _, w := range append([]string{"DocNumber " + inv.Reference, ref.ID, `"dealsync ` + inv.SourceDealID + `"`, "does not guess",
				"delete those that are not the deal's", "invoice.reference unique per deal", "retry the run"}, want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
			last = err
		}
		if f.InvoicePosts() != posts {
			t.Errorf("%d posts, want %d (none made)", f.InvoicePosts(), posts)
		}
		return last
	}
	t.Run("two", func(t *testing.T) {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, res := invoiced(t, tg, inv)
		copied := f.AddInvoice("D-1001", ref.ID, "dealsync D-1001 (copy)")
		err := refused(t, f, tg, inv, ref, 1, "2 invoices", res.InvoiceID+", "+copied)
		if strings.Contains(err.Error(), "at least") {
			t.Errorf("message %q: every invoice of the number was read", err)
		}
	})
	t.Run("six: five named, and how many more", func(t *testing.T) {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for range 6 {
			ids = append(ids, f.AddInvoice("D-1001", ref.ID, "dealsync D-1001"))
		}
		err = refused(t, f, tg, inv, ref, 0, "6 invoices", strings.Join(ids[:5], ", ")+" and 1 more")
		if strings.Contains(err.Error(), ids[5]) {
			t.Errorf("message %q names the sixth invoice; want five named", err)
		}
	})
	t.Run("the second on a later page", func(t *testing.T) {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, res := invoiced(t, tg, inv)
		// A thousand invoices typed by hand with the number (QBO's
		// duplicate-number check off), then a copy of the deal's: past the
		// first page of the number's invoices.
		for range 1000 {
			f.AddInvoice("D-1001", ref.ID, "typed by hand")
		}
		copied := f.AddInvoice("D-1001", ref.ID, "dealsync D-1001")
		refused(t, f, tg, inv, ref, 1, "2 invoices", res.InvoiceID+", "+copied)
	})
}

// More invoices of the deal's number than the look-up reads (20 pages of
// 1000), none of them the deal's among those read: the run fails for
// good, naming the number, rather than post an invoice while one it could
// not read may be the deal's.
func TestMoreInvoicesOfTheNumberThanAreReadIsRefused(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(context.Background(), inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 * 1000 {
		f.AddInvoice("D-1001", ref.ID, "typed by hand")
	}
	f.AddInvoice("D-1001", ref.ID, "dealsync D-1001")
	before := f.Calls("GET /query")
	res, err := tg.CreateInvoice(context.Background(), inv, ref, "wf/invoice")
	queries := f.Calls("GET /query") - before
	if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || res.InvoiceID != "" ||
		!strings.Contains(err.Error(), "20000 or more invoices have DocNumber D-1001") || f.InvoicePosts() != 0 || queries != 20 {
		t.Fatalf("got %+v, %v (class %v, %d posts, %d queries); want a permanent refusal naming the number after 20 pages, nothing posted",
			res, err, cl, f.InvoicePosts(), queries)
	}
}

// The note ties an invoice to the deal: invoices of the deal's number
// without it, or billed to another customer, beside the deal's own do not
// make the look-up ambiguous; the deal's is taken. So is the deal's
// invoice on a later page of the number's invoices.
func TestDealsInvoiceAmongOthersOfItsNumberIsTaken(t *testing.T) {
	ctx := context.Background()
	t.Run("others of the number", func(t *testing.T) {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, res := invoiced(t, tg, inv)
		f.AddInvoice("D-1001", ref.ID, "typed by hand")
		f.AddInvoice("D-1001", ref.ID, "dealsync D-10011")
		f.AddInvoice("D-1001", "999", "dealsync D-1001")
		again, err := tg.CreateInvoice(ctx, inv, ref, "wf-rerun/invoice")
		if err != nil || !again.Replayed || again.InvoiceID != res.InvoiceID || f.InvoicePosts() != 1 {
			t.Fatalf("got %+v, %v (%d posts); want %s replayed", again, err, f.InvoicePosts(), res.InvoiceID)
		}
	})
	t.Run("on a later page", func(t *testing.T) {
		f := newFake(t)
		tg := newTarget(t, f)
		inv := exampleInvoice()
		ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
		if err != nil {
			t.Fatal(err)
		}
		for range 1000 {
			f.AddInvoice("D-1001", ref.ID, "typed by hand")
		}
		deals := f.AddInvoice("D-1001", ref.ID, "dealsync D-1001")
		res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
		if err != nil || !res.Replayed || res.InvoiceID != deals || f.InvoicePosts() != 0 {
			t.Fatalf("got %+v, %v (%d posts); want %s replayed", res, err, f.InvoicePosts(), deals)
		}
	})
}

// A PrivateNote names the deal when it holds "dealsync <deal id>" as whole
// words, wherever in the note; a longer id is another deal.
func TestNotesDeal(t *testing.T) {
	for _, c := range []struct {
		deal, note string
		want       bool
	}{
		{"12", "dealsync 12", true},
		{"12", "  dealsync   12\n", true},
		{"12", "dealsync 12 paid by wire", true},
		{"12", "paid by wire; dealsync 12", true},
		{"12", "checked\ndealsync 12\nPO 7", true},
		{"12", "dealsync 123 and dealsync 12", true},
		{"12", "dealsync 123", false},
		{"12", "dealsync 123 paid", false},
		{"12", "dealsync 12-b", false},
		{"12", "dealsync 1", false},
		{"12", "mydealsync 12", false},
		{"12", "dealsync", false},
		{"12", "", false},
		{"ACME 7", "dealsync ACME 7 paid", true},
		{"ACME 7", "dealsync ACME 77", false},
		{"", "dealsync", true}, // a deal without an id: the note alone
		{"", "dealsync 12", false},
	} {
		inv := model.Invoice{SourceDealID: c.deal}
		if got := quickbooks.NotesDeal(c.note, inv); got != c.want {
			t.Errorf("deal %q, note %q: %v, want %v", c.deal, c.note, got, c.want)
		}
	}
}

// Two deals of one new company at once: both look the name up, find
// nothing, and create it; QBO refuses the second name (error 6240), and
// that run takes the first one's customer instead of failing. A name that
// differs only in case is the same customer for QBO, and is found.
func TestCustomerCreatedMeanwhileIsTaken(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	var other string
	f.AfterQuery = func() {
		if other == "" {
			other = f.AddCustomer("Acme GmbH") // the other run's create lands first
		}
	}
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-b/customer")
	if err != nil || ref.ID != other || ref.Created {
		t.Fatalf("got %+v, %v; want the customer %s created meanwhile", ref, err, other)
	}
	if n, _ := f.Counts(); n != 1 {
		t.Errorf("%d customers, want 1", n)
	}
	f.AfterQuery = nil
	upper := f.AddCustomer("BETA AG")
	if ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Beta AG"}, "wf-c/customer"); err != nil || ref.ID != upper {
		t.Errorf("Beta AG against BETA AG: %+v, %v; want %s", ref, err, upper)
	}
}

// Two CRM companies with one name: QBO allows the name once, and the
// customer dealsync made for the first (its Notes name the company) is not
// the second's. The run fails with what to do, instead of invoicing the
// second company's deal to the first company.
func TestCustomerOfAnotherCRMCompanyIsNotTakenByName(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	first, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || !first.Created {
		t.Fatalf("first company: %+v %v", first, err)
	}
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Acme GmbH"}, "wf-2/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "C-1") || !strings.Contains(err.Error(), "C-2") {
		t.Fatalf("second company of the same name: %v; want a permanent error naming both companies", err)
	}
	if n, _ := f.Counts(); n != 1 {
		t.Errorf("%d customers, want 1", n)
	}
}

func TestRequestIDReplayWithoutDocNumber(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Reference = ""
	ref, _ := tg.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
	f.Fail("POST /invoice", qbofake.Fault{Status: http.StatusBadGateway, AfterWork: true})
	if _, err := tg.CreateInvoice(ctx, inv, ref, "k/invoice"); err == nil {
		t.Fatal("want the lost answer's error")
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "k/invoice"); err != nil {
		t.Fatal(err)
	}
	if f.InvoicePosts() != 1 {
		t.Fatalf("QBO processed %d invoice POSTs, want 1 (requestid replay)", f.InvoicePosts())
	}
}

func TestFaultsAndAuth(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	_, err := tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "404"}, "k")
	var api *connectors.APIError
	if !errors.As(err, &api) || !strings.Contains(api.Message, "Invalid Reference Id : Names element id 404 not found (code 2500)") {
		t.Fatalf("validation: %v", err)
	}
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Errorf("class %v", cl)
	}
	f.Fail("GET /query", qbofake.Fault{Status: http.StatusTooManyRequests})
	_, err = tg.FindOrCreateCustomer(ctx, inv.Customer, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Retry || !strings.Contains(err.Error(), "429") {
		t.Fatalf("429: %v", err)
	}
	// Access token revoked: one refresh, then on.
	f.RevokeAccessTokens()
	if _, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "k"); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	// Refresh token revoked too: a clear Unauthorized naming the company.
	f.RevokeAccessTokens()
	f.RevokeRefreshToken()
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Other"}, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || !strings.Contains(err.Error(), realm) {
		t.Fatalf("revoked: %v", err)
	}
	// The fix is in the target's settings, not the run's CRM connection's.
	if !strings.Contains(err.Error(), "the target's client_id") || strings.Contains(err.Error(), "connection") {
		t.Errorf("revoked: %v; want the target's settings named, not a connection", err)
	}
}

func TestKeysAndDocNumber(t *testing.T) {
	a, again, b := quickbooks.RequestID("a"), quickbooks.RequestID("a"), quickbooks.RequestID("b")
	if a == b || a != again || len(a) != 36 {
		t.Error("RequestID is not a stable UUID per key")
	}
	// QBO's DocNumber holds 21 characters: a longer reference keeps its
	// first 8 and a hash of the whole, so that two long references that
	// share a beginning still differ.
	long, other := "HUBSPOT-DEAL-1234567890123", "HUBSPOT-DEAL-1234567890124"
	n := quickbooks.DocNumber(long)
	if !regexp.MustCompile(`^HUBSPOT--[0-9a-f]{12}$`).MatchString(n) || len(n) != 21 {
		t.Errorf("DocNumber(%q) = %q, want its first 8 characters, a dash and 12 hex digits", long, n)
	}
	if m := quickbooks.DocNumber(other); m == n {
		t.Errorf("DocNumber gives %q for both %q and %q", n, long, other)
	}
	// A character that spans the 8th byte is left out whole, not cut.
	for _, ref := range []string{"Société Générale 2026-42", "日本語の取引先-2026-0042"} {
		if d := quickbooks.DocNumber(ref); !utf8.ValidString(d) || utf8.RuneCountInString(d) > 21 || !strings.HasPrefix(ref, strings.Split(d, "-")[0]) {
			t.Errorf("DocNumber(%q) = %q, want valid UTF-8 of at most 21 characters that begins the reference", ref, d)
		}
	}
	// The short form of earlier versions stays when the query can carry it
	// (their invoices are found by it): a character past Latin-1 beyond
	// the cut changes nothing; one within it gives a queryable form.
	if d := quickbooks.DocNumber("Müller’s Annual Contract 2024"); !strings.HasPrefix(d, "Müller-") || !quickbooks.Queryable(d) {
		t.Errorf("DocNumber of a long reference with ’ after the cut: %q, want the earlier form Müller-…", d)
	}
	if d := quickbooks.DocNumber("日本語の取引先-2026-0042"); !quickbooks.Queryable(d) {
		t.Errorf("DocNumber of a reference QBO's query cannot carry: %q is not queryable", d)
	}
	if s := quickbooks.DocNumber(" D-1001 "); s != "D-1001" {
		t.Errorf("a short reference: %q, want it as is (trimmed)", s)
	}
	if _, ok := connectors.LookupTarget("quickbooks"); !ok {
		t.Error("not registered")
	}
}

// A customer made outside dealsync (no CRM company in its Notes) that a
// company takes by name is claimed: the company's line goes at the top of
// its Notes, the rest kept, so that another CRM company of that name no
// longer takes it.
func TestCustomerTakenByNameIsClaimed(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	tg := newTargetIn(t, f, dir)
	ctx := context.Background()
	id := f.AddCustomer("Acme GmbH")
	f.SetNotes(id, "Key account, call Jo first")
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || ref.ID != id || ref.Created {
		t.Fatalf("got %+v, %v; want the existing customer %s", ref, err, id)
	}
	if got := f.Notes(id); got != "CRM company C-1\nKey account, call Jo first" {
		t.Errorf("Notes %q", got)
	}
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Acme GmbH"}, "wf-2/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "belongs to CRM company C-1, not C-2") {
		t.Fatalf("second company of the same name: %v", err)
	}
	// The claiming company finds it again, by name once the link is gone.
	if err := os.Remove(filepath.Join(dir, "links.json")); err != nil {
		t.Fatal(err)
	}
	queries := f.Calls("GET /query")
	again, err := newTargetIn(t, f, dir).FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-3/customer")
	if err != nil || again.ID != id || f.Calls("GET /query") != queries+1 {
		t.Fatalf("the claiming company again: %+v %v", again, err)
	}
	if got := f.Notes(id); got != "CRM company C-1\nKey account, call Jo first" {
		t.Errorf("Notes after the second lookup: %q (claimed twice?)", got)
	}
	// A person wrote above the line since: the customer is still C-1's.
	f.SetNotes(id, "Moved to Munich\nCRM company C-1\nKey account, call Jo first")
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Acme GmbH"}, "wf-4/customer"); err == nil ||
		!strings.Contains(err.Error(), "belongs to CRM company C-1") {
		t.Errorf("after an edit above the line: %v", err)
	}
	if n, _ := f.Counts(); n != 1 {
		t.Errorf("%d customers, want 1", n)
	}
}

// A claim QBO refuses as stale (someone edited the customer between the
// lookup and the claim) is read again and claimed on the new version, the
// edit kept.
func TestStaleClaimIsReadAgain(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	id := f.AddCustomer("Acme GmbH")
	edited := false
	f.AfterQuery = func() {
		if !edited {
			edited = true
			f.SetNotes(id, "edited meanwhile")
		}
	}
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || ref.ID != id {
		t.Fatalf("got %+v, %v; want %s", ref, err, id)
	}
	if got := f.Notes(id); got != "CRM company C-1\nedited meanwhile" {
		t.Fatalf("Notes %q", got)
	}
	queries := f.Calls("GET /query")
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-2/customer"); err != nil {
		t.Fatal(err)
	}
	if f.Calls("GET /query") != queries {
		t.Error("the claimed customer was not linked: the next deal looked it up again")
	}
}

// Two CRM companies of one name whose first deals run at the same moment
// both find the unclaimed customer; the one whose claim lands second reads
// it again, sees the other's line and fails naming both, instead of
// invoicing its deal to the other company's customer.
func TestClaimRaceIsLostCleanly(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	id := f.AddCustomer("Acme GmbH")
	claimed := false
	f.AfterQuery = func() {
		if !claimed {
			claimed = true
			f.SetNotes(id, "CRM company C-2") // the other company's claim lands first
		}
	}
	_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "belongs to CRM company C-2, not C-1") {
		t.Fatalf("the second claim: %v", err)
	}
	if got := f.Notes(id); got != "CRM company C-2" {
		t.Errorf("Notes %q", got)
	}
}

// A claim QBO refuses for good does not fail the run: the match is used
// for this invoice, unlinked, and the next deal looks it up and claims it.
// Notes without room for the line are not sent at all.
func TestRefusedClaimUsesTheMatch(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	id := f.AddCustomer("Acme GmbH")
	f.Fail("POST /customer", qbofake.Fault{Status: http.StatusBadRequest}, qbofake.Fault{Status: http.StatusBadRequest})
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || ref.ID != id {
		t.Fatalf("got %+v, %v; want %s", ref, err, id)
	}
	if got := f.Notes(id); got != "" {
		t.Fatalf("Notes %q after refused claims", got)
	}
	queries := f.Calls("GET /query")
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-2/customer"); err != nil {
		t.Fatal(err)
	}
	if f.Calls("GET /query") != queries+1 {
		t.Error("the unclaimed match was linked: the next deal did not look it up")
	}
	if got := f.Notes(id); got != "CRM company C-1" {
		t.Errorf("Notes after the next deal: %q", got)
	}

	full := f.AddCustomer("Full AG")
	f.SetNotes(full, strings.Repeat("x", 1010)) // the XSD's 1024 characters with the claim's line
	posts := f.Calls("POST /customer")
	if ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-9", Name: "Full AG"}, "wf-9/customer"); err != nil || ref.ID != full {
		t.Fatalf("full Notes: %+v %v", ref, err)
	}
	if f.Calls("POST /customer") != posts {
		t.Error("a claim that cannot fit was sent")
	}
}

// A claim whose token refresh the token endpoint refuses as a bad request
// (400 invalid_request: Permanent, not the refresh token's fault) was never
// sent, so it is not QBO refusing the claim: the customer is not read
// again and claimed once more, nor, should that claim be refused the same
// way, used unclaimed and unlinked. The token endpoint's refusal is the
// error, as it is; the run's retry claims the customer.
func TestTokenRefusalIsNotARefusedClaim(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	id := f.AddCustomer("Acme GmbH")
	// After each look-up, the claim's token is refused (401), and so is
	// the refresh that follows.
	f.AfterQuery = func() {
		f.Fail("POST /customer", qbofake.Fault{Status: http.StatusUnauthorized})
		f.Fail("POST /oauth2/v1/tokens/bearer", qbofake.Fault{Status: http.StatusBadRequest, OAuthError: "invalid_request"})
	}
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	var api *connectors.APIError
	if cl, _ := connectors.Classify(err); ref.ID != "" || !erpkit.IsTokenFailure(err) || !errors.As(err, &api) || api.Op != "refresh token" ||
		api.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid_request") || cl != connectors.Permanent {
		t.Fatalf("got %+v, %v (class %v); want no customer and the token endpoint's 400 invalid_request, Permanent", ref, err, cl)
	}
	if n := f.Calls("GET /query"); n != 1 {
		t.Errorf("%d look-ups; want the one before the claim, none after it got no token", n)
	}
	f.AfterQuery = nil
	ref, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || ref.ID != id || f.Notes(id) != "CRM company C-1" {
		t.Fatalf("retry: %+v, %v, Notes %q; want %s claimed", ref, err, f.Notes(id), id)
	}
}

// Free text that happens to start a later line with "CRM company" is not
// a claim: the customer is claimed as one made outside dealsync.
func TestFreeTextIsNotAClaim(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	id := f.AddCustomer("Acme GmbH")
	f.SetNotes(id, "Key account\nCRM company id is in HubSpot")
	ref, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || ref.ID != id {
		t.Fatalf("got %+v, %v; want %s", ref, err, id)
	}
	if got := f.Notes(id); got != "CRM company C-1\nKey account\nCRM company id is in HubSpot" {
		t.Errorf("Notes %q", got)
	}
}

// A deal without a CRM company id does not take a customer another CRM
// company has claimed (it was billed to it, silently).
func TestDealWithoutCompanyIDTakesNoClaimedCustomer(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-42", Name: "Acme GmbH"}, "wf-1/customer"); err != nil {
		t.Fatal(err)
	}
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Acme GmbH"}, "wf-2/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "belongs to CRM company C-42, and this deal has no CRM company id") {
		t.Fatalf("got %+v, %v; want a refusal naming C-42", ref, err)
	}
}

// A memo over QBO's 1000 characters (Finance.xsd, Invoice Msg) is refused
// before sending, so `mapping test` shows it; 1000 pass.
func TestMemoLongerThanQBOTakesIsRefused(t *testing.T) {
	tg := newTarget(t, newFake(t))
	inv := exampleInvoice()
	inv.Memo = strings.Repeat("ä", 1000)
	if _, err := tg.PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k"); err != nil {
		t.Fatalf("a memo of 1000 characters: %v", err)
	}
	inv.Memo += "x"
	_, err := tg.PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "the memo (CustomerMemo) has 1001 characters, QuickBooks takes at most 1000") {
		t.Fatalf("a memo of 1001 characters: %v", err)
	}
}

// A company whose name a QBO vendor (or employee) has cannot be created as
// a customer (display names are unique across them): the run fails for
// good with a message that says so, not QBO's bare duplicate-name fault.
func TestNameTakenByAVendorSaysSo(t *testing.T) {
	f := newFake(t)
	f.AddVendor("Acme GmbH")
	_, err := newTarget(t, f).FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "wf-1/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), `QBO refuses the name "Acme GmbH", which no active customer has: a vendor, an employee or an inactive customer uses it`) {
		t.Fatalf("got %v", err)
	}
}

// QBO bills nothing for a line without an item (Finance.xsd: it is
// "documentation" and its Amount is ignored), and an ItemRef must be an
// Item Id: both are refused before anything is sent, saying what to map.
func TestLinesNeedAnItemID(t *testing.T) {
	inv := exampleInvoice() // its second line has no item code
	if _, err := quickbooks.NewInvoice(inv, "58", quickbooks.Options{}); err == nil ||
		!strings.Contains(err.Error(), `lines[1] ("Onboarding") has no item`) || !strings.Contains(err.Error(), "default_item_id") {
		t.Errorf("a line without an item and no default_item_id: %v", err)
	}
	q, err := quickbooks.NewInvoice(inv, "58", quickbooks.Options{DefaultItemID: "1"})
	if err != nil || q.Line[1].SalesItemLineDetail.ItemRef == nil || q.Line[1].SalesItemLineDetail.ItemRef.Value != "1" {
		t.Fatalf("the default item: %+v %v", q.Line, err)
	}
	inv.Lines[0].ItemCode = "PRO-1Y" // a CRM's SKU, as the built-in mapping gives it
	tg := newTarget(t, newFake(t))
	_, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), `item_code "PRO-1Y" is not a QuickBooks Item Id`) {
		t.Errorf("a SKU as item_code: %v", err)
	}
}

// IntuitNamesTypes.xsd, Customer: a name must not contain a colon, and an
// e-mail address must contain "@" and ".". A colon fails the customer step
// before anything is sent, saying what to map; an address QBO would refuse
// is left out (the customer is still made). New customers get their
// address as ship-to address too.
func TestCustomerFieldsQBOWouldRefuse(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	c := exampleInvoice().Customer
	c.Name = "Re:Build Manufacturing"
	_, err := tg.FindOrCreateCustomer(context.Background(), c, "k1")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "has a colon") || !strings.Contains(err.Error(), "replace(deal.company.name") {
		t.Errorf("a name with a colon: %v", err)
	}
	if n, _ := f.Counts(); n != 0 {
		t.Errorf("%d customers made", n)
	}
	// A company linked before it was renamed so keeps its customer: the
	// name is not sent.
	c.Name = "Acme GmbH"
	linked, err := tg.FindOrCreateCustomer(context.Background(), c, "k2")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Acme: EMEA"
	if again, err := tg.FindOrCreateCustomer(context.Background(), c, "k3"); err != nil || again.ID != linked.ID {
		t.Errorf("a linked company renamed with a colon: %+v %v, want its customer %s", again, err, linked.ID)
	}

	c = exampleInvoice().Customer
	for _, tc := range []struct{ email, want string }{{" ap@acme.example ", "ap@acme.example"}, {"billing@acme", ""}, {"", ""}} {
		c.Email = tc.email
		got := quickbooks.NewCustomer(c)
		if (got.PrimaryEmailAddr == nil) != (tc.want == "") || (got.PrimaryEmailAddr != nil && got.PrimaryEmailAddr.Address != tc.want) {
			t.Errorf("e-mail %q: sent %+v, want %q", tc.email, got.PrimaryEmailAddr, tc.want)
		}
		if got.ShipAddr == nil || *got.ShipAddr != *got.BillAddr {
			t.Errorf("ship-to address %+v, want the bill-to address %+v", got.ShipAddr, got.BillAddr)
		}
	}
}

// global_tax_calculation is sent on every invoice when set (non-US
// companies: TaxExcluded), and not at all when unset (US companies);
// values that would have QBO read dealsync's net amounts as gross, or bill
// no tax, are refused at load.
func TestGlobalTaxCalculation(t *testing.T) {
	f := newFake(t)
	for _, c := range []struct{ set, want string }{{"", ""}, {"TaxExcluded", `"GlobalTaxCalculation":"TaxExcluded"`}} {
		cfg := quickbooks.DefaultConfig()
		cfg.RealmID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = realm, f.ClientID, secret.New(f.ClientSecret), secret.New("seed")
		cfg.TokenFile, cfg.LinkFile = filepath.Join(t.TempDir(), "tok.json"), filepath.Join(t.TempDir(), "links.json")
		cfg.BaseURL, cfg.TokenURL, cfg.DefaultItemID, cfg.GlobalTaxCalculation = f.URL, f.TokenURL(), "1", c.set
		tg, err := quickbooks.New(cfg, quickbooks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		req, err := tg.PlanInvoice(exampleInvoice(), connectors.CustomerRef{ID: "58"}, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(req.Body), "GlobalTaxCalculation"); got != (c.want != "") || (c.want != "" && !strings.Contains(string(req.Body), c.want)) {
			t.Errorf("global_tax_calculation %q: body %s", c.set, req.Body)
		}
	}
	for _, v := range []string{"TaxInclusive", "NotApplicable"} {
		if err := validator.New().Struct(quickbooks.Config{GlobalTaxCalculation: v}); err == nil || !strings.Contains(err.Error(), "GlobalTaxCalculation") {
			t.Errorf("%s: %v, want refused", v, err)
		}
	}
}

// QBO spreads an invoice's line discounts over all its lines: with lines
// of different tax rates, the tax it would compute is not the invoice's
// (19 % on 1000 − 100 and 7 % on 1000 is 241.00; spread, 247.00). Such an
// invoice is refused before anything is sent, naming the rates; one of a
// single rate goes through.
func TestDiscountsWithMixedTaxRatesAreRefused(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines = []model.InvoiceLine{
		{ItemCode: "17", Description: "Licence", Quantity: d("1"), UnitPrice: d("1000"), Discount: d("100"), TaxRate: d("19")},
		{ItemCode: "18", Description: "Books", Quantity: d("1"), UnitPrice: d("1000"), TaxRate: d("7")},
	}
	inv.ComputeTotals()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(fmt.Sprint(err), `"" at 19 % and "" at 7 %`) || f.InvoicePosts() != 0 {
		t.Fatalf("%v (class %v, %d posts); want a permanent refusal naming the rates, nothing sent", err, c, f.InvoicePosts())
	}
	// QBO taxes by the code it is sent, not the rate: one rate with two
	// codes (a mapping's default rate, codes per item) is refused too, as
	// QBO would tax the NON line's share of the discount at TAX's rate.
	inv.Lines[1].TaxRate = d("19")
	inv.Lines[0].TaxCode, inv.Lines[1].TaxCode = "TAX", "NON"
	inv.ComputeTotals()
	_, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(fmt.Sprint(err), `"TAX" at 19 % and "NON" at 19 %`) || f.InvoicePosts() != 0 {
		t.Fatalf("two tax codes: %v (class %v, %d posts); want a permanent refusal naming the codes", err, c, f.InvoicePosts())
	}
	inv.Lines[1].TaxCode = "TAX"
	if _, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice"); err != nil || f.InvoicePosts() != 1 {
		t.Fatalf("one tax code and rate: %v (%d posts)", err, f.InvoicePosts())
	}
}

// QBO computes the tax itself, by each line's tax code: when the TotalAmt
// it answers is not the invoice's total, the result carries a warning
// naming both; when they agree, none.
func TestATotalQuickBooksComputedOtherwiseIsAWarning(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines[0].TaxRate, inv.Lines[1].TaxRate = d("19"), d("19")
	inv.ComputeTotals()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	f.TaxRates = map[string]decimal.Decimal{"TAX": d("19")}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || res.Warning != "" {
		t.Fatalf("totals that agree (%s): %+v, %v; want no warning", inv.Total, res, err)
	}
	f.TaxRates = map[string]decimal.Decimal{"TAX": d("20")} // the company's code taxes at 20 %
	inv.Reference = "D-1002"
	res, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice-2")
	if err != nil || !strings.Contains(res.Warning, "not the invoice's EUR "+inv.Currency.Format(inv.Total)) ||
		!strings.Contains(res.Warning, "QuickBooks computed its own tax") {
		t.Fatalf("totals that differ: %+v, %v; want a warning naming both", res, err)
	}
}

// A company that numbers its invoices itself, whatever the request says
// (custom transaction numbers off, if QuickBooks does that): the invoice
// is made, and the result warns that no later run of the deal can find it
// by its number, saying what to turn on.
func TestAnInvoiceQuickBooksNumberedItselfIsAWarning(t *testing.T) {
	f := newFake(t)
	f.Renumber = func(string) string { return "1007" }
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || res.Number != "1007" || !strings.Contains(res.Warning, `"1007", not "`+quickbooks.DocNumber(inv.Reference)+`" as sent`) ||
		!strings.Contains(res.Warning, "custom transaction numbers") || strings.HasPrefix(res.Warning, ";") {
		t.Fatalf("%+v, %v; want the invoice numbered 1007 and a warning naming both numbers", res, err)
	}
}

// An invoice that leaves the tax to QuickBooks (no tax_rate: a US
// company's automated sales tax) is compared by its subtotal, the tax
// being QuickBooks' own: no warning on every such invoice.
func TestTaxLeftToQuickBooksIsNoWarning(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice() // no tax_rate
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	f.TaxRates = map[string]decimal.Decimal{"TAX": d("8.25")}
	if res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice"); err != nil || res.Warning != "" {
		t.Fatalf("tax left to QuickBooks: %+v, %v; want no warning", res, err)
	}
}

// An invoice that leaves the tax to QBO (no tax_rate: a US company's
// automated sales tax) is sent with its line discounts whatever its lines'
// tax codes: how QBO spreads the discount changes no figure of dealsync's.
func TestUntaxedDiscountsOverTwoTaxCodesAreSent(t *testing.T) {
	inv := exampleInvoice()
	inv.Lines[0].TaxCode, inv.Lines[1].TaxCode = "TAX", "NON"
	inv.ComputeTotals()
	q, err := quickbooks.NewInvoice(inv, "58", quickbooks.Options{DefaultItemID: "1"})
	if err != nil {
		t.Fatalf("untaxed lines of two tax codes with a discount: %v", err)
	}
	// The two sales lines, each with its tax code, then the discount.
	if len(q.Line) != 3 || q.Line[0].DetailType != "SalesItemLineDetail" || q.Line[1].DetailType != "SalesItemLineDetail" ||
		q.Line[2].DetailType != "DiscountLineDetail" || q.Line[2].Amount != "10.00" || !q.ApplyTaxAfterDiscount {
		t.Errorf("lines %+v, ApplyTaxAfterDiscount %v; want two sales lines and a discount line of 10.00, taxed after it", q.Line, q.ApplyTaxAfterDiscount)
	}
}

// QBO rounds a tax rate's tax on its lines' sum, dealsync per line: two
// lines of 10.03 at 19 % are 3.81 there, 1.91 + 1.91 here, which is no
// difference (a minor unit per taxed line); a rate QBO applies otherwise
// is one, also when the invoice is found again by its DocNumber.
func TestQuickBooksTotalsPerRate(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	f.TaxRates = map[string]decimal.Decimal{"TAX": d("19")}
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines = []model.InvoiceLine{
		{ItemCode: "17", Description: "A", Quantity: d("1"), UnitPrice: d("10.03"), TaxCode: "TAX", TaxRate: d("19")},
		{ItemCode: "17", Description: "B", Quantity: d("1"), UnitPrice: d("10.03"), TaxCode: "TAX", TaxRate: d("19")},
	}
	inv.ComputeTotals()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice"); err != nil || res.Warning != "" {
		t.Fatalf("tax rounded per rate (a cent less): %+v, %v; want no warning", res, err)
	}
	f.TaxRates = map[string]decimal.Decimal{"TAX": d("20")}
	inv.Reference = "D-2002"
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice-2")
	if err != nil || !strings.Contains(res.Warning, "QuickBooks' total of invoice") {
		t.Fatalf("a rate QBO applies otherwise: %+v, %v; want a warning", res, err)
	}
	again, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice-2-rerun")
	if err != nil || !again.Replayed || again.Warning != res.Warning {
		t.Fatalf("found again by its DocNumber: %+v, %v; want the replay with the same warning", again, err)
	}
}

// QBO's query language stops at characters past Latin-1 (a typographic
// apostrophe, an en dash: "Lexical error", error 4000) although its names
// hold them. A customer of such a name is searched by the longest part the
// query can carry and compared in full, page by page, so that it is found
// (not made twice, and not refused for good); a customer whose name
// differs only in such a character is not taken for it. An invoice whose
// reference has one gets a DocNumber the look-up can ask for.
func TestNamesTheQueryCannotCarry(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	decoy := f.AddCustomer("McDonald's Pty") // an ASCII apostrophe
	ours := f.AddCustomer("McDonald’s Pty")
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-9", Name: "McDonald’s Pty"}, "wf-9/customer")
	if err != nil || ref.ID != ours || ref.Created {
		t.Fatalf("McDonald’s Pty: %+v, %v; want customer %s (not the decoy %s)", ref, err, ours, decoy)
	}
	// More customers than one page shares the searchable part.
	for i := range 1200 {
		f.AddCustomer(fmt.Sprintf("Smith – Jones %d", i))
	}
	want := f.AddCustomer("Smith – Jones")
	ref, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-10", Name: "Smith – Jones"}, "wf-10/customer")
	if err != nil || ref.ID != want || ref.Created {
		t.Fatalf("Smith – Jones on the second page: %+v, %v; want customer %s", ref, err, want)
	}
	// A new one is made once: its next deal finds it by name.
	first, err := tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Women’s Health"}, "wf-11/customer")
	if err != nil || !first.Created {
		t.Fatalf("Women’s Health: %+v %v", first, err)
	}
	again, err := tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Women’s Health"}, "wf-12/customer")
	if err != nil || again.ID != first.ID || again.Created {
		t.Fatalf("Women’s Health again: %+v, %v; want %s", again, err, first.ID)
	}
	// An invoice whose reference the query cannot carry is found again.
	inv := exampleInvoice()
	inv.Reference = "Q4–2026"
	doc := quickbooks.DocNumber(inv.Reference)
	if !quickbooks.Queryable(doc) || len(doc) > 21 {
		t.Fatalf("DocNumber(%q) = %q: not queryable or longer than 21", inv.Reference, doc)
	}
	if _, err := tg.CreateInvoice(ctx, inv, first, "wf-11/invoice"); err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(ctx, inv, first, "wf-11b/invoice")
	if err != nil || !res.Replayed || res.Number != doc {
		t.Fatalf("again: %+v, %v; want the invoice %s found", res, err, doc)
	}
}

// A company id with spaces around it is the company's, trimmed: the
// customer made for "C-1 " is found again as C-1's once its link is lost
// (instead of "belongs to CRM company C-1, not C-1 ").
func TestCompanyIDIsTrimmed(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	dir := t.TempDir()
	made, err := newTargetIn(t, f, dir).FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1 ", Name: "Acme GmbH"}, "wf-1/customer")
	if err != nil || !made.Created {
		t.Fatalf("%+v %v", made, err)
	}
	if err := os.Remove(filepath.Join(dir, "links.json")); err != nil {
		t.Fatal(err)
	}
	found, err := newTargetIn(t, f, dir).FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1 ", Name: "Acme GmbH"}, "wf-2/customer")
	if err != nil || found.ID != made.ID || found.Created {
		t.Fatalf("without the link: %+v, %v; want %s", found, err, made.ID)
	}
}

// QBO computes a line's quantity × unit price to 2 decimals in every
// currency and checks the Amount against it: a line whose amount in the
// currency's own decimals differs (1.5 × 999 JPY: 1499 here, 1498.50
// there; 3 × 411.5223 KWD) is refused before sending, saying how to map
// it; one exact in both is sent. A description over QBO's 4000
// characters is refused too.
func TestLinesQBOWouldComputeOtherwiseAreRefused(t *testing.T) {
	line := func(cur model.Currency, qty, price string) model.Invoice {
		inv := exampleInvoice()
		inv.Currency = cur
		inv.Lines = inv.Lines[:1]
		inv.Lines[0].Quantity, inv.Lines[0].UnitPrice, inv.Lines[0].Discount = decimal.RequireFromString(qty), decimal.RequireFromString(price), decimal.Zero
		inv.ComputeTotals()
		return inv
	}
	opts := quickbooks.Options{DefaultItemID: "1"}
	for _, c := range []struct {
		cur        model.Currency
		qty, price string
		refused    string // "" for sent
	}{
		{"JPY", "1.5", "999", "1.5 × 999 is 1498.50 there, JPY 1499 here (0 decimals)"},
		{"JPY", "2", "999", ""},
		{"KWD", "3", "411.5223", "3 × 411.5223 is 1234.57 there, KWD 1234.567 here (3 decimals)"},
		{"KWD", "3", "411.52", ""},
		{"EUR", "1.5", "33.33", ""}, // 2 decimals: alike by construction
	} {
		_, err := quickbooks.NewInvoice(line(c.cur, c.qty, c.price), "58", opts)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s %s × %s: %v, want it sent", c.cur, c.qty, c.price, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused) || !strings.Contains(err.Error(), "round")):
			t.Errorf("%s %s × %s: %v, want it refused saying %q and how to round", c.cur, c.qty, c.price, err, c.refused)
		}
	}
	// A KWD discount of 3 decimals: QBO's discount line has 2.
	kwd := line("KWD", "1", "100")
	kwd.Lines[0].Discount = decimal.RequireFromString("10.025")
	kwd.ComputeTotals()
	if _, err := quickbooks.NewInvoice(kwd, "58", opts); err == nil || !strings.Contains(err.Error(), "the lines' discounts add up to KWD 10.025, which QuickBooks keeps to 2 decimals (10.03)") {
		t.Errorf("a KWD discount of 3 decimals: %v", err)
	}
	kwd.Lines[0].Discount = decimal.RequireFromString("10.02")
	kwd.ComputeTotals()
	if _, err := quickbooks.NewInvoice(kwd, "58", opts); err != nil {
		t.Errorf("a KWD discount of 2 decimals: %v", err)
	}
	inv := line("EUR", "1", "10")
	inv.Lines[0].Description = strings.Repeat("é", 4000)
	if _, err := quickbooks.NewInvoice(inv, "58", opts); err != nil {
		t.Errorf("a description of 4000 characters: %v", err)
	}
	inv.Lines[0].Description += "x"
	if _, err := quickbooks.NewInvoice(inv, "58", opts); err == nil || !strings.Contains(err.Error(), "lines[0]: the description has 4001 characters, QuickBooks takes at most 4000") {
		t.Errorf("a description of 4001 characters: %v", err)
	}
}

// The planned request (mapping test) says what a run decides from the
// company's preferences: without multi_currency, whether the body gets a
// CurrencyRef; with it, the body has it and no note is needed.
func TestPlanSaysWhatTheCompanysCurrencySettingDecides(t *testing.T) {
	f := newFake(t)
	inv := exampleInvoice()
	req, err := newTarget(t, f).PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k")
	if err != nil || strings.Contains(string(req.Body), "CurrencyRef") ||
		!strings.Contains(req.Note, `adds "CurrencyRef":{"value":"`+string(inv.Currency)+`"} to this body`) {
		t.Errorf("without multi_currency: %v, body %s, note %q; want no CurrencyRef and a note saying a run may add it", err, req.Body, req.Note)
	}
	cfg := quickbooks.DefaultConfig()
	dir := t.TempDir()
	cfg.RealmID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = realm, f.ClientID, secret.New(f.ClientSecret), secret.New("seed")
	cfg.TokenFile, cfg.LinkFile = filepath.Join(dir, "tok.json"), filepath.Join(dir, "links.json")
	cfg.BaseURL, cfg.TokenURL, cfg.DefaultItemID, cfg.MultiCurrency = f.URL, f.TokenURL(), "1", true
	tg, err := quickbooks.New(cfg, quickbooks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	req, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "58"}, "k")
	if err != nil || !strings.Contains(string(req.Body), `"CurrencyRef":{"value":"`+string(inv.Currency)+`"}`) || req.Note != "" {
		t.Errorf("with multi_currency: %v, body %s, note %q; want the CurrencyRef and no note", err, req.Body, req.Note)
	}
}

// A customer field longer than QBO takes (IntuitBaseTypes.xsd) fails the
// customer step before anything is sent, naming the field, its mapping key
// and the limit; one at the limit is created.
func TestCustomerFieldsQBOWouldRefuseAreRefusedFirst(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	c := model.Customer{ExternalID: "C-30", Name: "Thirty Ltd", Address: model.Address{City: "Berlin", PostalCode: strings.Repeat("9", 31)}}
	_, err := tg.FindOrCreateCustomer(context.Background(), c, "wf-30/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || err == nil ||
		!strings.Contains(err.Error(), "the customer's BillAddr.PostalCode (invoice.customer.address.postal_code) is 31 characters, and QuickBooks takes at most 30") {
		t.Fatalf("a postal code of 31 characters: %v (class %v)", err, cl)
	}
	c.Address.PostalCode = strings.Repeat("9", 30)
	if ref, err := tg.FindOrCreateCustomer(context.Background(), c, "wf-30/customer"); err != nil || ref.ID == "" {
		t.Fatalf("a postal code of 30 characters: %+v, %v", ref, err)
	}
}

// QuickBooks refuses a token for a company other than the one its
// authorization connected with 401 General Authentication Error (code
// 100), even a token just issued: the refusal says to check the target's
// realm_id first, as Xero's 403 says to check its tenant_id; a 401 said
// only to authorize the app again, which connects the same company and is
// refused the same way.
func TestAnotherCompanySaysToCheckRealmID(t *testing.T) {
	f := newFake(t)
	cfg := quickbooks.DefaultConfig()
	cfg.RealmID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = "4620816365000000000", f.ClientID, secret.New(f.ClientSecret), secret.New("seed")
	dir := t.TempDir()
	cfg.TokenFile, cfg.LinkFile = filepath.Join(dir, "tok.json"), filepath.Join(dir, "links.json")
	cfg.BaseURL, cfg.TokenURL = f.URL, f.TokenURL()
	// Built from a config, the advice names the settings by their config
	// keys (targets.<name>.realm_id), where an engineer edits them.
	other, err := quickbooks.New(cfg, quickbooks.Deps{ConfigKey: "targets.qbo-us", KeyVar: func(key string) string {
		return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
	var api *connectors.APIError
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || !errors.As(err, &api) || api.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another company: %v (class %v); want an Unauthorized 401", err, cl)
	}
	// ... with the variables that can set them, each in parentheses of
	// its own, never within others.
	for _, want := range []string{"QuickBooks company 4620816365000000000", "even after a refresh", "check targets.qbo-us.realm_id (or DEALSYNC_TARGETS_QBO_US_REALM_ID) first",
		"the realmId the authorization-code flow gave with the refresh token in targets.qbo-us.token_file (or DEALSYNC_TARGETS_QBO_US_TOKEN_FILE)", "General Authentication Error", "(code 100)",
		"if it is, authorize the app for the company again, by the authorization-code flow with targets.qbo-us.client_id (or DEALSYNC_TARGETS_QBO_US_CLIENT_ID), choosing that company, " +
			"and write the new refresh token into targets.qbo-us.token_file (or DEALSYNC_TARGETS_QBO_US_TOKEN_FILE) as"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("another company: %q lacks %q", err, want)
		}
	}
	// (QuickBooks' own answer follows the advice, in parentheses.)
	advice, _, _ := strings.Cut(err.Error(), " (AuthenticationFault")
	if d := wording.ParenDepth(advice); d > 1 {
		t.Errorf("another company: the advice %q nests parentheses %d deep", advice, d)
	}
	if n := f.Refreshes(); n != 2 {
		t.Errorf("%d refreshes; want the first token and one more after the 401", n)
	}
}

// QuickBooks' other refusals are told apart by the code of its fault:
// Accessing Wrong Cluster (130, 401) says to check base_url, Authorization
// Failure (120, 401) the user's access to the company, AuthorizationFailed
// (3100, 403) base_url and the app's scopes; none of them says realm_id
// first, which code 100 is about. An answer without a code (a proxy's)
// gets the general advice, naming realm_id and base_url.
func TestRefusalAdviceByFaultCode(t *testing.T) {
	type want struct{ has, hasNot []string }
	for _, c := range []struct {
		name   string
		faults []qbofake.Fault // a 401's twice: before and after the refresh
		status int
		want
	}{
		{"130", []qbofake.Fault{{WrongCluster: true}, {WrongCluster: true}}, http.StatusUnauthorized, want{
			[]string{"even after a refresh", "check targets.qbo.base_url first: QuickBooks answers Accessing Wrong Cluster (code 130)",
				"a production company is at https://quickbooks.api.intuit.com, a sandbox company at https://sandbox-quickbooks.api.intuit.com",
				"then that targets.qbo.realm_id is the realmId", "WrongClusterError", "(code 130)"},
			[]string{"realm_id first", "authorize the app"}}},
		{"120", []qbofake.Fault{{UserAccessLost: true}, {UserAccessLost: true}}, http.StatusUnauthorized, want{
			[]string{"check that the user who connected the app to the company still has access to it: QuickBooks answers Authorization Failure (code 120)",
				"if so, have a user of the company authorize the app for the company again, by the authorization-code flow with targets.qbo.client_id, choosing that company,",
				"targets.qbo.token_file", "AuthorizationFault: Authorization Failure"},
			[]string{"realm_id", "base_url"}}},
		{"3100", []qbofake.Fault{{AuthorizationFailed: true}}, http.StatusForbidden, want{
			[]string{"access denied for QuickBooks company " + realm, "check targets.qbo.base_url first: QuickBooks refuses (AuthorizationFailed, code 3100) a sandbox company's realm at the production host",
				"https://sandbox-quickbooks.api.intuit.com", "then the scopes of the app of targets.qbo.client_id: a token without com.intuit.quickbooks.accounting",
				"ApplicationAuthorizationFailed", "(code 3100)"},
			[]string{"realm_id", "the reverse", "production company's at the sandbox"}}},
		{"401 without a code", []qbofake.Fault{{Status: http.StatusUnauthorized}, {Status: http.StatusUnauthorized}}, http.StatusUnauthorized, want{
			[]string{"check targets.qbo.realm_id and targets.qbo.base_url first: realm_id must be the realmId the authorization-code flow gave with the refresh token in targets.qbo.token_file",
				"and base_url its environment's host (a production company is at https://quickbooks.api.intuit.com, a sandbox company at https://sandbox-quickbooks.api.intuit.com)",
				"if they are right, authorize the app for the company again"},
			[]string{"(code", "code 100", "code 130", "code 3100"}}},
		{"403 without a code", []qbofake.Fault{{Status: http.StatusForbidden}}, http.StatusForbidden, want{
			[]string{"check targets.qbo.realm_id and targets.qbo.base_url first", "then the scopes of the app of targets.qbo.client_id (com.intuit.quickbooks.accounting)",
				"and that the user who connected it still has access to the company"},
			[]string{"(code", "code 100", "code 130", "code 3100"}}},
	} {
		f := newFake(t)
		tg := newTargetWith(t, f, t.TempDir(), quickbooks.Deps{ConfigKey: "targets.qbo"})
		f.Fail("GET /query", c.faults...)
		_, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		var api *connectors.APIError
		if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || !errors.As(err, &api) || api.StatusCode != c.status {
			t.Errorf("%s: %v (class %v); want an Unauthorized %d", c.name, err, cl, c.status)
			continue
		}
		for _, w := range c.has {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, err, w)
			}
		}
		for _, w := range c.hasNot {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q has %q", c.name, err, w)
			}
		}
	}
}

// A refused ItemRef (QBO names the item's Id alone) says where the Id
// came from: the mapping's item_code or the target's default_item_id;
// other refusals do not.
func TestItemRefFaultSaysWhereTheIdComesFrom(t *testing.T) {
	for _, body := range []string{
		`{"Fault":{"Error":[{"Message":"Invalid Reference Id","Detail":"Invalid Reference Id : Item elements id 10 is invalid","code":"2500"}],"type":"ValidationFault"}}`,
		`{"Fault":{"Error":[{"Message":"Invalid Reference Id","Detail":"Invalid Reference Id : Item assigned to this transaction has been deleted","code":"2500"}],"type":"ValidationFault"}}`,
		`{"Fault":{"Error":[{"Message":"Invalid Reference Id","Detail":"","code":"2500","element":"Line.SalesItemLineDetail.ItemRef"}],"type":"ValidationFault"}}`,
	} {
		msg, _ := quickbooks.ErrorDetail(400, nil, []byte(body))
		if !strings.HasPrefix(msg, "ValidationFault: Invalid Reference Id") || !strings.Contains(msg, "; an invoice line's ItemRef is its item_code") ||
			!strings.Contains(msg, "lines.item_code") || !strings.Contains(msg, "default_item_id") {
			t.Errorf("%s:\n%s", body, msg)
		}
	}
	for _, body := range []string{
		`{"Fault":{"Error":[{"Message":"Invalid Reference Id","Detail":"Invalid Reference Id : Names element id 58 not found","code":"2500"}],"type":"ValidationFault"}}`,
		`{"Fault":{"Error":[{"Message":"Duplicate Document Number Error","Detail":"Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber=Item 7","code":"6140"}],"type":"ValidationFault"}}`,
	} {
		if msg, _ := quickbooks.ErrorDetail(400, nil, []byte(body)); strings.Contains(msg, "ItemRef") {
			t.Errorf("%s: %s", body, msg)
		}
	}
}
