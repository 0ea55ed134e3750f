package xero_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit/speccheck"
	"github.com/dealsync/dealsync/connectors/xero"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// exampleInvoices are the invoices the contract test sends: the repo's
// example deal through the default mapping, and hand-made ones covering
// discounts, 4-decimal unit prices, tax codes, zero-decimal currencies
// and customers with and without an address.
func exampleInvoices(t *testing.T) map[string]model.Invoice {
	t.Helper()
	out := map[string]model.Invoice{"two lines, discount, tax code": exampleInvoice()}

	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "closed-won.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev model.DealEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	inv, err := mapping.Default{PaymentTermsDays: 30}.Map(ev)
	if err != nil {
		t.Fatal(err)
	}
	inv.ComputeTotals()
	out["examples/closed-won.json, default mapping"] = inv

	jpy := model.Invoice{
		Reference: "D-2002", Currency: "JPY",
		Customer: model.Customer{ExternalID: "C-2", Name: "Yamada KK",
			Address: model.Address{Line1: "1-1 Marunouchi", City: "Tokyo", PostalCode: "100-0005", Country: "JP"}},
		IssueDate: model.NewDate(2026, 1, 5), DueDate: model.NewDate(2026, 2, 4),
		Lines: []model.InvoiceLine{{Description: "Seats", Quantity: d("12"), UnitPrice: d("1500"), AccountCode: "200", TaxCode: "NONE"}},
	}
	jpy.ComputeTotals()
	out["JPY, no tax, address"] = jpy
	return out
}

// TestContractXeroSchema sends every request the target builds to Prism
// running Xero's own OpenAPI (request schemas inlined so that Prism really
// validates bodies; see specs/PRISM.md) and requires them to validate. A
// deliberately bad body must be rejected, or the check proves nothing.
func TestContractXeroSchema(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prism")
	}
	full := speccheck.File(t, "xero/xero_accounting.yaml")
	speccheck.PrismBin(t)
	spec := speccheck.Derive(t, full, t.TempDir(), "PUT /Invoices", "PUT /Contacts", "POST /Contacts/{ContactID}")
	base := speccheck.Prism(t, spec, 3*time.Minute)

	cfg := xero.DefaultConfig()
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret = "00000000-0000-0000-0000-000000000000", "id", secret.New("s")
	cfg.TokenFile = filepath.Join(t.TempDir(), "tok.json")
	cfg.BaseURL = base
	cfg.DefaultAccountCode = "200"
	tg, err := xero.New(cfg, xero.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	contact := connectors.CustomerRef{ID: "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"}

	send := func(t *testing.T, req connectors.Request) (*http.Response, string) {
		t.Helper()
		r, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header = req.Header.Clone()
		resp, err := speccheck.Client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp, resp.Header.Get("sl-violations")
	}

	for name, inv := range exampleInvoices(t) {
		t.Run("invoice "+name, func(t *testing.T) {
			req, err := tg.PlanInvoice(inv, contact, "invoice/demo/"+inv.Reference+"/invoice")
			if err != nil {
				t.Fatal(err)
			}
			resp, violations := send(t, req)
			if resp.StatusCode != http.StatusOK || violations != "" {
				t.Fatalf("Xero's schema rejects the invoice: HTTP %d %s\nbody: %s", resp.StatusCode, violations, req.Body)
			}
		})
		t.Run("contact "+name, func(t *testing.T) {
			body, _ := json.Marshal(xero.ContactsBody{Contacts: []xero.Contact{xero.NewContact(inv.Customer)}})
			req, _ := tg.PlanInvoice(inv, contact, "k") // for the headers
			req.URL, req.Body = base+"/Contacts?summarizeErrors=true", body
			resp, violations := send(t, req)
			if resp.StatusCode != http.StatusOK || violations != "" {
				t.Fatalf("Xero's schema rejects the contact: HTTP %d %s\nbody: %s", resp.StatusCode, violations, body)
			}
		})
	}

	t.Run("claim of a matched contact", func(t *testing.T) {
		body, _ := json.Marshal(xero.ContactClaimsBody{Contacts: []xero.ContactClaim{{ContactID: contact.ID, ContactNumber: "C-1"}}})
		req, _ := tg.PlanInvoice(exampleInvoice(), contact, "k") // for the headers
		req.Method, req.URL, req.Body = http.MethodPost, base+"/Contacts/"+contact.ID+"?summarizeErrors=true", body
		resp, violations := send(t, req)
		if resp.StatusCode != http.StatusOK || violations != "" {
			t.Fatalf("Xero's schema rejects the claim: HTTP %d %s\nbody: %s", resp.StatusCode, violations, body)
		}
	})
	t.Run("a bad body is rejected (the validator is live)", func(t *testing.T) {
		req, _ := tg.PlanInvoice(exampleInvoice(), contact, "k")
		var b map[string][]map[string]any
		_ = json.Unmarshal(req.Body, &b)
		b["Invoices"][0]["Type"] = "SALES_INVOICE"
		b["Invoices"][0]["CurrencyCode"] = "usd"
		req.Body, _ = json.Marshal(b)
		resp, violations := send(t, req)
		if resp.StatusCode != http.StatusBadRequest || violations == "" {
			t.Fatalf("bad body: HTTP %d, sl-violations %q; want 400 with violations", resp.StatusCode, violations)
		}
		req.URL, req.Body = base+"/Contacts", []byte(`{"Contacts":[{"Name":"x","ContactStatus":"BOGUS","Addresses":{}}]}`)
		resp, violations = send(t, req)
		if resp.StatusCode != http.StatusBadRequest || violations == "" {
			t.Fatalf("bad contact: HTTP %d, sl-violations %q; want 400 with violations", resp.StatusCode, violations)
		}
	})
}
