package xero_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	_ "github.com/dealsync/dealsync/connectors/generic" // source "generic" for the config test
	"github.com/dealsync/dealsync/connectors/xero"
	"github.com/dealsync/dealsync/connectors/xero/xerofake"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

const tenant = "11111111-2222-3333-4444-555555555555"

type env struct {
	fake      *xerofake.Server
	target    *xero.Target
	tokenFile string
	linkFile  string
	cfg       xero.Config
}

func setup(t *testing.T, mod func(*xero.Config)) *env {
	t.Helper()
	fake := xerofake.New(tenant, "seed-refresh")
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	cfg := xero.DefaultConfig()
	cfg.TenantID = tenant
	cfg.ClientID = fake.ClientID
	cfg.ClientSecret = secret.New(fake.ClientSecret)
	cfg.RefreshToken = secret.New("seed-refresh")
	cfg.TokenFile = filepath.Join(dir, "xero-token.json")
	cfg.BaseURL = fake.URL
	cfg.TokenURL = fake.TokenURL()
	if mod != nil {
		mod(&cfg)
	}
	tg, err := xero.New(cfg, xero.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, target: tg, tokenFile: cfg.TokenFile, linkFile: cfg.LinkFile, cfg: cfg}
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func exampleInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "D-1001",
		Customer:  model.Customer{ExternalID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", TaxID: "DE123456789"},
		Currency:  "EUR",
		IssueDate: model.NewDate(2026, 11, 20),
		DueDate:   model.NewDate(2026, 12, 20),
		Lines: []model.InvoiceLine{
			{ItemCode: "PRO-1Y", Description: "Pro plan, 1 year", Quantity: d("1"), UnitPrice: d("12000.00"), AccountCode: "200", TaxCode: "OUTPUT2", TaxRate: d("19")},
			{Description: "Onboarding", Quantity: d("2.5"), UnitPrice: d("99.1234"), Discount: d("10"), AccountCode: "200"},
		},
	}
	inv.ComputeTotals()
	return inv
}

func TestFindOrCreateThenInvoiceOnce(t *testing.T) {
	e := setup(t, func(c *xero.Config) { c.LinkFile = filepath.Join(filepath.Dir(c.TokenFile), "links.json") })
	ctx := context.Background()
	inv := exampleInvoice()
	key := "invoice/demo/D-1001"

	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, key+"/customer")
	if err != nil {
		t.Fatal(err)
	}
	if !ref.Created || ref.ID == "" {
		t.Fatalf("ref = %+v, want a created contact", ref)
	}
	res, err := e.target.CreateInvoice(ctx, inv, ref, key+"/invoice")
	if err != nil {
		t.Fatal(err)
	}
	if res.InvoiceID == "" || res.Number != "INV-0001" || res.Replayed || !strings.Contains(res.URL, res.InvoiceID) {
		t.Fatalf("res = %+v", res)
	}

	// The same deal again (a re-run): no new contact, no new invoice.
	ref2, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, key+"/customer")
	if err != nil || ref2.ID != ref.ID || ref2.Created {
		t.Fatalf("second find = %+v, %v; want %s found", ref2, err, ref.ID)
	}
	res2, err := e.target.CreateInvoice(ctx, inv, ref2, key+"/invoice")
	if err != nil || res2.InvoiceID != res.InvoiceID || !res2.Replayed {
		t.Fatalf("second create = %+v, %v", res2, err)
	}
	if c, i := e.fake.Counts(); c != 1 || i != 1 {
		t.Fatalf("fake has %d contacts, %d invoices; want 1, 1", c, i)
	}
	// The link file made the second find search nothing.
	if n := e.fake.Calls("GET /Contacts"); n != 3 {
		t.Errorf("GET /Contacts calls = %d, want 3 (number, tax, name on the first find only)", n)
	}

	// The body Xero got: vendor fields from the canonical invoice.
	var got xero.InvoicesBody
	if err := json.Unmarshal(e.fake.Invoices[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	x := got.Invoices[0]
	if x.Type != "ACCREC" || x.Contact.ContactID != ref.ID || x.CurrencyCode != "EUR" || x.Date != "2026-11-20" ||
		x.DueDate != "2026-12-20" || x.Reference != "D-1001" || x.Status != "DRAFT" || x.LineAmountTypes != "Exclusive" {
		t.Errorf("invoice header = %+v", x)
	}
	l0, l1 := x.LineItems[0], x.LineItems[1]
	if l0.ItemCode != "PRO-1Y" || l0.AccountCode != "200" || l0.TaxType != "OUTPUT2" || l0.UnitAmount != "12000.00" || l0.Quantity != "1" {
		t.Errorf("line 0 = %+v", l0)
	}
	if l1.Quantity != "2.5" || l1.UnitAmount != "99.1234" || l1.DiscountAmount != "10.00" || l1.ItemCode != "" {
		t.Errorf("line 1 = %+v", l1)
	}
}

func TestContactMatchingRules(t *testing.T) {
	ctx := context.Background()
	t.Run("contact number first", func(t *testing.T) {
		e := setup(t, nil)
		want := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme (renamed in Xero)"})
		e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH", TaxNumber: "DE123456789"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want || ref.Created {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
	})
	t.Run("then tax number, and the contact is claimed", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		want := e.fake.AddContact(xerofake.Contact{Name: "ACME Deutschland", TaxNumber: "DE123456789", EmailAddress: "ap@acme.example"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
		if c := e.fake.Contact(want); c.ContactNumber != "C-1" || c.Name != "ACME Deutschland" || c.EmailAddress != "ap@acme.example" {
			t.Fatalf("contact after the match: %+v; want ContactNumber C-1 and the rest unchanged", c)
		}
		// Another CRM company with the same tax number no longer takes it.
		other := exampleInvoice().Customer
		other.ExternalID, other.Name = "C-2", "Acme Zwei"
		ref2, err := e.target.FindOrCreateCustomer(ctx, other, "k2")
		if err != nil || ref2.ID == want || !ref2.Created {
			t.Fatalf("second company with the tax number: %+v, %v; want a new contact, not %s", ref2, err, want)
		}
	})
	t.Run("a claim whose answer is lost: the retry finds the contact by its new ContactNumber", func(t *testing.T) {
		e := setup(t, nil)
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		e.fake.Fail("POST /Contacts/"+want, xerofake.Fault{Status: http.StatusServiceUnavailable, AfterWork: true})
		c := exampleInvoice().Customer
		c.TaxID = ""
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.RetryAfter {
			t.Fatalf("lost claim: %v; want a retryable error, after the target's timeout (a 503 without Retry-After to a write)", err)
		}
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || e.fake.Contact(want).ContactNumber != "C-1" {
			t.Fatalf("retry: %+v, %v; want %s claimed", ref, err, want)
		}
	})
	t.Run("then exact name, never fuzzy", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH & Co"})
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		c := exampleInvoice().Customer
		c.TaxID = ""
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || e.fake.Contact(want).ContactNumber != "C-1" {
			t.Fatalf("got %+v, %v; want %s, claimed", ref, err, want)
		}
	})
	t.Run("a claim Xero refuses leaves the match standing, unclaimed and unlinked", func(t *testing.T) {
		e := setup(t, func(c *xero.Config) { c.LinkFile = filepath.Join(filepath.Dir(c.TokenFile), "links.json") })
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		e.fake.Fail("POST /Contacts/"+want, xerofake.Fault{Status: http.StatusBadRequest})
		c := exampleInvoice().Customer
		c.TaxID = ""
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || e.fake.Contact(want).ContactNumber != "" || e.fake.Calls("POST /Contacts/"+want) != 1 {
			t.Fatalf("got %+v, %v; want %s taken, unclaimed after one refused claim", ref, err, want)
		}
		// Not linked: the company's next deal looks it up (and claims it) afresh.
		again, err := e.target.FindOrCreateCustomer(ctx, c, "k2")
		if err != nil || again.ID != want || e.fake.Calls("POST /Contacts/"+want) != 2 || e.fake.Contact(want).ContactNumber != "C-1" {
			t.Fatalf("next deal: %+v, %v (%d claims); want %s claimed now", again, err, e.fake.Calls("POST /Contacts/"+want), want)
		}
	})
	t.Run("a contact a person made between the lookup and the create is claimed", func(t *testing.T) {
		e := setup(t, nil)
		var made string
		e.fake.AfterContactsQuery = func() {
			if made == "" && e.fake.Calls("GET /Contacts") == 3 { // ContactNumber, TaxNumber, Name
				made = e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
			}
		}
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || made == "" || ref.ID != made || ref.Created || e.fake.Contact(made).ContactNumber != "C-1" {
			t.Fatalf("got %+v, %v; want %q, claimed", ref, err, made)
		}
	})
	t.Run("a contact found by its ContactNumber is not written to", func(t *testing.T) {
		e := setup(t, nil)
		want := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme GmbH"})
		if ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k"); err != nil || ref.ID != want {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
		if n := e.fake.Calls("POST /Contacts/" + want); n != 0 {
			t.Errorf("%d updates of the contact, want none", n)
		}
	})
	t.Run("a name another company claims is not taken", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH", ContactNumber: "C-999"})
		c := exampleInvoice().Customer
		c.TaxID = ""
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "C-999") {
			t.Fatalf("err = %v; want a permanent error naming C-999", err)
		}
	})
	t.Run("ambiguous tax number", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "A", TaxNumber: "DE123456789"})
		e.fake.AddContact(xerofake.Contact{Name: "B", TaxNumber: "DE123456789"})
		_, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
			t.Fatalf("err = %v; want permanent", err)
		}
	})
	t.Run("archived contacts are ignored by tax number and name", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH", TaxNumber: "DE123456789", ContactStatus: "ARCHIVED"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || !ref.Created {
			t.Fatalf("got %+v, %v; want a new contact", ref, err)
		}
	})
}

// A person merges dealsync's contact of a company into another one in
// Xero: Xero archives it (MergedToContactID set, left out of GET /Contacts
// unless includeArchived=true) and the destination keeps its own name and
// no ContactNumber. Without a link file the company's next deal must bill
// the destination (and claim it), not create the company again and undo
// the merge; an archived contact that was not merged fails the run, naming
// it, rather than be replaced.
func TestMergedOrArchivedContactIsNotCreatedAgain(t *testing.T) {
	ctx := context.Background()
	// made is the company's contact, as dealsync's first deal of it made it.
	made := func(t *testing.T, e *env, c model.Customer) string {
		t.Helper()
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "first/customer")
		if err != nil || !ref.Created {
			t.Fatalf("first deal: %+v, %v", ref, err)
		}
		return ref.ID
	}
	// A quoted company id is looked up with searchTerm, not where.
	for _, id := range []string{"C-1", `C-"1"`} {
		t.Run("merged into a contact without ContactNumber: billed there, and claimed "+id, func(t *testing.T) {
			e := setup(t, nil)
			inv := exampleInvoice()
			inv.Customer.ExternalID = id
			source := made(t, e, inv.Customer)
			first, err := e.target.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: source}, "first/invoice")
			if err != nil {
				t.Fatal(err)
			}
			into := e.fake.AddContact(xerofake.Contact{Name: "ACME Deutschland"})
			e.fake.Merge(source, into)

			ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "second/customer")
			if err != nil || ref.ID != into || ref.Created {
				t.Fatalf("after the merge: %+v, %v; want the destination %s", ref, err, into)
			}
			if got := e.fake.Contact(into); got.ContactNumber != id || got.Name != "ACME Deutschland" {
				t.Errorf("destination after the match: %+v; want ContactNumber %s, its name kept", got, id)
			}
			if n, _ := e.fake.Counts(); n != 2 || e.fake.Calls("PUT /Contacts") != 1 {
				t.Fatalf("%d contacts, %d creates; want 2, 1 (the company not created again)", n, e.fake.Calls("PUT /Contacts"))
			}
			// The first deal again: its invoice moved with the merge.
			again, err := e.target.CreateInvoice(ctx, inv, ref, "again/invoice")
			if err != nil || again.InvoiceID != first.InvoiceID || !again.Replayed {
				t.Fatalf("re-run of the first deal: %+v, %v; want %s replayed", again, err, first.InvoiceID)
			}
			// A new deal of the company is billed to the destination.
			next := exampleInvoice()
			next.Customer.ExternalID, next.Reference = id, "D-1002"
			res, err := e.target.CreateInvoice(ctx, next, ref, "second/invoice")
			if err != nil || res.Replayed || e.fake.Invoices[1].ContactID != into {
				t.Fatalf("next deal: %+v, %v; want a new invoice billed to %s", res, err, into)
			}
			// Claimed: the deal after that finds it by ContactNumber.
			byID := func() int { return e.fake.Calls("GET /Contacts/"+source) + e.fake.Calls("GET /Contacts/"+into) }
			fetched := byID()
			if ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "third/customer"); err != nil || ref.ID != into {
				t.Fatalf("third deal: %+v, %v; want %s", ref, err, into)
			}
			if n := byID(); n != fetched {
				t.Errorf("%d more fetches by id; want none once the destination is claimed", n-fetched)
			}
		})
	}
	t.Run("merged on: the last destination is taken", func(t *testing.T) {
		e := setup(t, nil)
		c := exampleInvoice().Customer
		source := made(t, e, c)
		between := e.fake.AddContact(xerofake.Contact{Name: "Acme Group"})
		into := e.fake.AddContact(xerofake.Contact{Name: "Acme Holding"})
		e.fake.Merge(source, between)
		e.fake.Merge(between, into)
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "second/customer")
		if err != nil || ref.ID != into || e.fake.Contact(into).ContactNumber != "C-1" {
			t.Fatalf("got %+v, %v; want %s, claimed", ref, err, into)
		}
	})
	t.Run("an active contact with the ContactNumber wins over an archived one", func(t *testing.T) {
		e := setup(t, nil)
		old := e.fake.AddContact(xerofake.Contact{Name: "Acme Alt", ContactNumber: "C-1"})
		e.fake.Merge(old, e.fake.AddContact(xerofake.Contact{Name: "Other"}))
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH", ContactNumber: "C-1"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
	})
	t.Run("merged into another company's contact: refused, naming both", func(t *testing.T) {
		e := setup(t, nil)
		c := exampleInvoice().Customer
		source := made(t, e, c)
		into := e.fake.AddContact(xerofake.Contact{Name: "Beta Ltd", ContactNumber: "C-2"})
		e.fake.Merge(source, into)
		_, err := e.target.FindOrCreateCustomer(ctx, c, "second/customer")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
			t.Fatalf("err = %v; want permanent", err)
		}
		for _, want := range []string{source, into, `"Acme GmbH"`, `"Beta Ltd"`, `"C-1"`, `"C-2"`, "merged", "restore"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if e.fake.Contact(into).ContactNumber != "C-2" || e.fake.Calls("PUT /Contacts") != 1 || e.fake.Calls("POST /Contacts/"+into) != 0 {
			t.Errorf("the other company's contact was written to, or the company created again")
		}
	})
	t.Run("archived, not merged: refused, naming it and what to do", func(t *testing.T) {
		e := setup(t, nil)
		c := exampleInvoice().Customer
		old := e.fake.AddContact(xerofake.Contact{Name: "Acme Alt", ContactNumber: "C-1", ContactStatus: "ARCHIVED"})
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
			t.Fatalf("err = %v; want permanent", err)
		}
		for _, want := range []string{old, `"Acme Alt"`, `"C-1"`, "archived", "restore", "Contact Code", "retry"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if e.fake.Calls("PUT /Contacts") != 0 {
			t.Errorf("the company was created again")
		}
	})
	t.Run("merged into a contact archived since: refused, naming it", func(t *testing.T) {
		e := setup(t, nil)
		c := exampleInvoice().Customer
		source := made(t, e, c)
		into := e.fake.AddContact(xerofake.Contact{Name: "Acme Holding"})
		e.fake.Merge(source, into)
		e.fake.Archive(into)
		_, err := e.target.FindOrCreateCustomer(ctx, c, "second/customer")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), into) || !strings.Contains(err.Error(), `"Acme Holding"`) {
			t.Fatalf("err = %v; want a permanent error naming %s", err, into)
		}
		if e.fake.Calls("PUT /Contacts") != 1 {
			t.Errorf("the company was created again")
		}
	})
	t.Run("merged into different contacts: refused, naming them", func(t *testing.T) {
		e := setup(t, nil)
		a := e.fake.AddContact(xerofake.Contact{Name: "Acme Alt", ContactNumber: "C-1"})
		b := e.fake.AddContact(xerofake.Contact{Name: "Acme Neu", ContactNumber: "C-1"})
		x := e.fake.AddContact(xerofake.Contact{Name: "Acme X"})
		y := e.fake.AddContact(xerofake.Contact{Name: "Acme Y"})
		e.fake.Merge(a, x)
		e.fake.Merge(b, y)
		_, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
			t.Fatalf("err = %v; want permanent", err)
		}
		for _, want := range []string{a, b, x, y, "different contacts"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if e.fake.Calls("PUT /Contacts") != 0 || e.fake.Contact(x).ContactNumber != "" || e.fake.Contact(y).ContactNumber != "" {
			t.Errorf("a contact was created or claimed")
		}
	})
	t.Run("merges in a loop: refused", func(t *testing.T) {
		e := setup(t, nil)
		a := e.fake.AddContact(xerofake.Contact{Name: "Acme Alt", ContactNumber: "C-1"})
		b := e.fake.AddContact(xerofake.Contact{Name: "Acme Neu"})
		e.fake.Merge(a, b)
		e.fake.Merge(b, a)
		_, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), a) {
			t.Fatalf("err = %v; want a permanent error naming %s", err, a)
		}
	})
	t.Run("a stored link still wins", func(t *testing.T) {
		e := setup(t, withLinks)
		c := exampleInvoice().Customer
		source := made(t, e, c)
		e.fake.Merge(source, e.fake.AddContact(xerofake.Contact{Name: "ACME Deutschland"}))
		if ref, err := e.target.FindOrCreateCustomer(ctx, c, "second/customer"); err != nil || ref.ID != source {
			t.Fatalf("got %+v, %v; want the linked %s", ref, err, source)
		}
	})
}

// Xero's where literals may hold " AND ": a Reference with one is looked
// up with where like any other (Xero parses the literal whole), and found
// again on a re-run; so is a company name with one (looked up with
// searchTerm, as every name is).
func TestAndInsideWhereLiteralsIsFound(t *testing.T) {
	ctx := context.Background()
	noSearchTerm := func(t *testing.T, e *env) {
		t.Helper()
		for _, u := range e.fake.URLs {
			if strings.HasPrefix(u, "GET /Invoices") && strings.Contains(u, "searchTerm") {
				t.Errorf("%s: want the where look-up", u)
			}
		}
	}
	t.Run("invoice reference", func(t *testing.T) {
		e := setup(t, nil)
		inv := exampleInvoice()
		inv.Reference = "Smith AND Sons"
		ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
		if err != nil {
			t.Fatal(err)
		}
		first, err := e.target.CreateInvoice(ctx, inv, ref, "wf/invoice")
		if err != nil {
			t.Fatalf("first create: %v", err)
		}
		// Another run of the deal after Xero forgot the key.
		res, err := e.target.CreateInvoice(ctx, inv, ref, "wf2/invoice")
		if err != nil || res.InvoiceID != first.InvoiceID || !res.Replayed {
			t.Fatalf("second create = %+v, %v; want %s replayed", res, err, first.InvoiceID)
		}
		if _, n := e.fake.Counts(); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
		noSearchTerm(t, e)
	})
	t.Run("company name", func(t *testing.T) {
		e := setup(t, nil)
		c := model.Customer{Name: "Smith AND Sons Ltd"}
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "wf/customer")
		if err != nil || !ref.Created {
			t.Fatalf("first find = %+v, %v", ref, err)
		}
		again, err := e.target.FindOrCreateCustomer(ctx, c, "wf2/customer")
		if err != nil || again.ID != ref.ID || again.Created {
			t.Fatalf("second find = %+v, %v; want %s", again, err, ref.ID)
		}
	})
}

func TestLostAnswersAreReplayedByIdempotencyKey(t *testing.T) {
	// check_reference off: only Xero's Idempotency-Key prevents the duplicate.
	e := setup(t, func(c *xero.Config) { c.CheckReference = false })
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	e.fake.Fail("PUT /Invoices", xerofake.Fault{Status: http.StatusBadGateway, AfterWork: true})
	_, err = e.target.CreateInvoice(ctx, inv, ref, "wf/invoice")
	// A gateway's 502 to a write: Xero may have made the invoice, so the
	// retry comes after the time a call may take.
	if cl, wait := connectors.Classify(err); cl != connectors.RetryAfter || wait != xero.DefaultConfig().Timeout {
		t.Fatalf("lost answer: err = %v (class %v, wait %v), want retried after %v", err, cl, wait, xero.DefaultConfig().Timeout)
	}
	res, err := e.target.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || res.InvoiceID != e.fake.LastInvoiceID {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if _, n := e.fake.Counts(); n != 1 {
		t.Fatalf("%d invoices, want 1", n)
	}
	if e.fake.InvoicePuts != 1 {
		t.Fatalf("Xero processed %d PUTs, want 1 (the retry is a replay)", e.fake.InvoicePuts)
	}
}

func TestReRunAfterKeyExpiryFindsInvoiceByReference(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, _ := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	first, err := e.target.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil {
		t.Fatal(err)
	}
	// A different key (as if Xero had forgotten the first): the Reference
	// check still finds the invoice.
	again, err := e.target.CreateInvoice(ctx, inv, ref, "wf/invoice-other-key")
	if err != nil || again.InvoiceID != first.InvoiceID || !again.Replayed {
		t.Fatalf("again = %+v, %v", again, err)
	}
}

// Xero's where syntax cannot hold a double quote (no escapes: 400
// QueryParseException), so a company named with one, or a deal reference
// with one, is looked for with searchTerm: found again on a re-run instead
// of failing every attempt.
func TestQuotesInNamesAndReferencesAreFound(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Reference = `D-"7"\b`
	inv.Customer = model.Customer{ExternalID: `C-"9"`, Name: `Acme "Bolts" \ Ltd`}
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil || !ref.Created {
		t.Fatalf("first find = %+v, %v", ref, err)
	}
	first, err := e.target.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil {
		t.Fatal(err)
	}
	// Another run of the deal (keys forgotten, no link file): the contact
	// by its number, then the invoice by its reference.
	again, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf2/customer")
	if err != nil || again.ID != ref.ID || again.Created {
		t.Fatalf("second find = %+v, %v; want %s found", again, err, ref.ID)
	}
	res, err := e.target.CreateInvoice(ctx, inv, again, "wf2/invoice")
	if err != nil || res.InvoiceID != first.InvoiceID || !res.Replayed {
		t.Fatalf("second create = %+v, %v", res, err)
	}
	// By name alone (a company without a CRM id).
	byName := model.Customer{Name: `"Quoted" Co`}
	made, err := e.target.FindOrCreateCustomer(ctx, byName, "wf3/customer")
	if err != nil || !made.Created {
		t.Fatalf("create by name = %+v, %v", made, err)
	}
	if got, err := e.target.FindOrCreateCustomer(ctx, byName, "wf4/customer"); err != nil || got.ID != made.ID || got.Created {
		t.Fatalf("find by name = %+v, %v; want %s", got, err, made.ID)
	}
	if c, i := e.fake.Counts(); c != 2 || i != 1 {
		t.Fatalf("fake has %d contacts, %d invoices; want 2, 1", c, i)
	}
}

func TestRateLimitCarriesRetryAfterAndProblem(t *testing.T) {
	e := setup(t, nil)
	e.fake.Fail("GET /Contacts", xerofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7", Problem: "minute"})
	_, err := e.target.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
	cl, delay := connectors.Classify(err)
	if cl != connectors.RetryAfter || delay != 7*time.Second {
		t.Fatalf("Classify = %v, %v; want RetryAfter 7s (err %v)", cl, delay, err)
	}
	if !strings.Contains(err.Error(), "rate limit hit: minute") || !strings.Contains(err.Error(), "X-DayLimit-Remaining=4321") {
		t.Errorf("message %q does not say which limit", err)
	}
	// Without Retry-After, the minute limit's reset is the delay.
	e.fake.Fail("GET /Contacts", xerofake.Fault{Status: http.StatusTooManyRequests, Problem: "minute"})
	_, err = e.target.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
	if cl, delay := connectors.Classify(err); cl != connectors.RetryAfter || delay != time.Minute {
		t.Fatalf("Classify = %v, %v; want RetryAfter 1m", cl, delay)
	}
	// 5xx: plain retry.
	e.fake.Fail("GET /Contacts", xerofake.Fault{Status: http.StatusServiceUnavailable})
	_, err = e.target.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Retry {
		t.Fatalf("503: class %v, want Retry", cl)
	}
}

func TestValidationErrorCarriesXeroMessage(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines[0].AccountCode = "999"
	ref, _ := e.target.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
	_, err := e.target.CreateInvoice(ctx, inv, ref, "k/invoice")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 400 {
		t.Fatalf("err = %v, want a 400 APIError", err)
	}
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Errorf("class %v, want Permanent", cl)
	}
	if !strings.Contains(api.Message, "Account code '999' is not a valid code") || api.Field != "Elements[0]" {
		t.Errorf("message %q field %q", api.Message, api.Field)
	}
}

func TestNoAccountOrItemCodeIsPermanentBeforeSending(t *testing.T) {
	e := setup(t, nil)
	inv := exampleInvoice()
	inv.Lines[1].AccountCode = ""
	_, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k")
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "default_account_code") {
		t.Fatalf("err = %v", err)
	}
	e2 := setup(t, func(c *xero.Config) { c.DefaultAccountCode = "200" })
	if _, err := e2.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k"); err != nil {
		t.Fatalf("with default_account_code: %v", err)
	}
}

// Xero keeps a unit price to 4 decimals (unitdp=4): a finer one would
// make Xero book another line amount than the one validated here, so it is
// refused before sending, naming the line; 4 decimals go through.
func TestUnitPriceFinerThanXeroKeepsIsPermanent(t *testing.T) {
	e := setup(t, nil)
	inv := exampleInvoice()
	inv.Lines[0].UnitPrice = decimal.RequireFromString("0.123456")
	inv.ComputeTotals()
	_, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k")
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "lines[0]") || !strings.Contains(err.Error(), "0.123456") {
		t.Fatalf("err = %v, want a permanent error naming lines[0] and its price", err)
	}
	inv.Lines[0].UnitPrice = decimal.RequireFromString("0.1235")
	inv.ComputeTotals()
	if _, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k"); err != nil {
		t.Fatalf("4 decimals: %v", err)
	}

	// The quantity too: Xero keeps 4 decimals of it.
	inv.Lines[1].Quantity = decimal.RequireFromString("0.33333")
	inv.ComputeTotals()
	_, err = e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k")
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "lines[1]: quantity 0.33333") {
		t.Fatalf("err = %v, want a permanent error naming lines[1] and its quantity", err)
	}
}

// dealsync adds a line's tax_rate on top of its net price: with
// line_amount_types Inclusive (Xero takes the price as including tax) or
// NoTax, Xero would bill another total, so such a line is refused before
// sending; lines without a tax_rate go through (Xero applies the tax type).
func TestTaxRateWithNonExclusiveLineAmountsIsPermanent(t *testing.T) {
	for _, types := range []string{"Inclusive", "NoTax"} {
		e := setup(t, func(c *xero.Config) { c.LineAmountTypes = types })
		inv := exampleInvoice()
		for i := range inv.Lines {
			inv.Lines[i].TaxRate = decimal.Zero
		}
		inv.Lines[1].TaxRate = decimal.RequireFromString("19")
		inv.ComputeTotals()
		_, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k")
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "lines[1]: tax_rate 19%") || !strings.Contains(err.Error(), types) {
			t.Fatalf("%s: err = %v, want a permanent error naming lines[1], its tax rate and %s", types, err, types)
		}
		for i := range inv.Lines {
			inv.Lines[i].TaxRate = decimal.Zero
		}
		inv.ComputeTotals()
		if _, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k"); err != nil {
			t.Fatalf("%s without tax rates: %v", types, err)
		}
	}
	e := setup(t, nil)
	inv := exampleInvoice()
	inv.Lines[1].TaxRate = decimal.RequireFromString("19")
	inv.ComputeTotals()
	if _, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "x"}, "k"); err != nil {
		t.Fatalf("Exclusive with a tax rate: %v", err)
	}
}

func TestTokenRotationIsStoredBeforeUse(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	if _, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k"); err != nil {
		t.Fatal(err)
	}
	stored, err := (&erpkit.FileTokenStore{Path: e.tokenFile}).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stored.RefreshToken != e.fake.RefreshToken() || stored.RefreshToken == "seed-refresh" {
		t.Fatalf("stored refresh token %q, Xero's current one %q", stored.RefreshToken, e.fake.RefreshToken())
	}
	if fi, err := os.Stat(e.tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi, err)
	}
	// A new process (new Target, same token file) uses the stored token,
	// not the now-dead seed: no refresh needed while it is valid.
	before := e.fake.Refreshes
	t2, err := xero.New(e.cfg, xero.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t2.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k"); err != nil {
		t.Fatal(err)
	}
	if e.fake.Refreshes != before {
		t.Errorf("a valid stored token was refreshed again")
	}
}

func TestUnauthorizedRefreshesOnceThenNamesTheConnection(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	c := exampleInvoice().Customer
	if _, err := e.target.FindOrCreateCustomer(ctx, c, "k"); err != nil {
		t.Fatal(err)
	}
	// Xero revokes the access token early: one refresh, then success.
	e.fake.RevokeAccessTokens()
	before := e.fake.Refreshes
	if _, err := e.target.FindOrCreateCustomer(ctx, c, "k"); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if e.fake.Refreshes != before+1 {
		t.Fatalf("refreshes = %d, want %d", e.fake.Refreshes, before+1)
	}
	// The app is disconnected: the refresh token is dead too.
	e.fake.RevokeAccessTokens()
	setDead(t, e)
	_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized {
		t.Fatalf("err = %v (class %v), want Unauthorized", err, cl)
	}
	// The fix is in the target's settings: the step's failure names the
	// run's CRM connection, which is not the one to authorize again.
	if !strings.Contains(err.Error(), tenant) || !strings.Contains(err.Error(), "run the authorization-code flow again with the target's client_id") ||
		!strings.Contains(err.Error(), "the target's token_file "+e.tokenFile) || strings.Contains(err.Error(), "connection") {
		t.Errorf("message %q does not name the tenant and the fix in the target's settings", err)
	}
}

// Xero answers 403 AuthorizationUnsuccessful to a Xero-Tenant-Id that the
// authorization behind the token did not connect: the refusal says to
// check the target's tenant_id first, then the app's scopes.
// Built from a config (through the registry, as the processes build it),
// the advice names the settings by their config keys, where an engineer
// edits them: targets.<name>.tenant_id.
func TestAnotherTenantSaysToCheckTenantID(t *testing.T) {
	const other = "99999999-2222-3333-4444-555555555555"
	e := setup(t, func(cfg *xero.Config) { cfg.TenantID = other })
	spec, ok := connectors.LookupTarget("xero")
	if !ok {
		t.Fatal("xero is not registered")
	}
	// Another fake: each rotates its refresh token.
	built, err := spec.Build(setup(t, func(cfg *xero.Config) { cfg.TenantID = other }).cfg, connectors.Env{ConfigKey: "targets.books"})
	if err != nil {
		t.Fatal(err)
	}
	for whose, tg := range map[string]connectors.Target{"the target's ": e.target, "targets.books.": built} {
		_, err := tg.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized {
			t.Fatalf("err = %v (class %v), want Unauthorized", err, cl)
		}
		for _, want := range []string{"HTTP 403", "access denied for Xero tenant " + other, "check " + whose + "tenant_id first",
			"the refresh token in " + whose + "token_file did not connect", "GET https://api.xero.com/connections",
			"scopes of the app of " + whose + "client_id", "AuthorizationUnsuccessful"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
	}
}

// setDead spends Xero's current refresh token from outside, as another
// installation would, so the target's one is rejected (invalid_grant).
func setDead(t *testing.T, e *env) {
	t.Helper()
	cfg := &oauth2.Config{ClientID: e.fake.ClientID, ClientSecret: e.fake.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: e.fake.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	if _, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: e.fake.RefreshToken()}).Token(); err != nil {
		t.Fatal(err)
	}
}

type failingStore struct {
	erpkit.TokenStore
	fail      bool
	failTimes int // fail this many saves, then succeed
	saves     int
}

func (f *failingStore) Save(ctx context.Context, tok *oauth2.Token) error {
	if f.fail {
		return errors.New("disk full")
	}
	if f.failTimes > 0 {
		f.failTimes--
		return errors.New("disk busy")
	}
	f.saves++
	return f.TokenStore.Save(ctx, tok)
}

// A save that fails once is retried at once, under the refresh lock, so
// the rotated token is on disk before anyone else refreshes.
func TestTransientSaveFailureIsRetried(t *testing.T) {
	fake := xerofake.New(tenant, "seed-refresh")
	defer fake.Close()
	store := &failingStore{TokenStore: &erpkit.FileTokenStore{Path: filepath.Join(t.TempDir(), "tok.json")}, failTimes: 1}
	tg := targetWithStore(t, fake, store)
	if _, err := tg.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k"); err != nil {
		t.Fatalf("one failed save should not fail the call: %v", err)
	}
	if fake.Refreshes != 1 || store.saves != 1 || store.failTimes != 0 {
		t.Fatalf("refreshes %d saves %d failures left %d, want 1, 1, 0", fake.Refreshes, store.saves, store.failTimes)
	}
}

// targetWithStore is a Xero target of fake, seeded with its refresh token
// "seed-refresh", keeping its tokens in store.
func targetWithStore(t *testing.T, fake *xerofake.Server, store erpkit.TokenStore) *xero.Target {
	t.Helper()
	cfg := xero.DefaultConfig()
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = tenant, fake.ClientID, secret.New(fake.ClientSecret), secret.New("seed-refresh")
	cfg.BaseURL, cfg.TokenURL = fake.URL, fake.TokenURL()
	tg, err := xero.New(cfg, xero.Deps{Tokens: store})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestTokenNotUsedUntilSaved(t *testing.T) {
	fake := xerofake.New(tenant, "seed-refresh")
	defer fake.Close()
	store := &failingStore{TokenStore: &erpkit.FileTokenStore{Path: filepath.Join(t.TempDir(), "tok.json")}, fail: true}
	tg := targetWithStore(t, fake, store)
	_, err := tg.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the save failure", err)
	}
	if cl, _ := connectors.Classify(err); cl != connectors.Retry {
		t.Errorf("save failure class %v, want Retry", cl)
	}
	if n := len(fake.Requests); n != 0 {
		t.Fatalf("%d API calls made with an unsaved token", n)
	}
	// The disk recovers: the rotated token kept in memory is saved and
	// used; no second refresh (the seed is dead by now).
	store.fail = false
	if _, err := tg.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k"); err != nil {
		t.Fatal(err)
	}
	if fake.Refreshes != 1 || store.saves != 1 {
		t.Fatalf("refreshes %d saves %d, want 1 and 1", fake.Refreshes, store.saves)
	}
}

func TestPlanInvoiceMasksTokenAndDerivesKey(t *testing.T) {
	e := setup(t, nil)
	inv := exampleInvoice()
	req, err := e.target.PlanInvoice(inv, connectors.CustomerRef{ID: "a3675fc4-f8dd-4f03-ba5b-f1870566bcd7"}, "invoice/demo/D-1001/invoice")
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "PUT" || req.URL != e.fake.URL+"/Invoices?summarizeErrors=true&unitdp=4" {
		t.Errorf("request %s %s", req.Method, req.URL)
	}
	if req.Header.Get("Authorization") != "Bearer "+erpkit.Mask || req.Header.Get("Xero-Tenant-Id") != tenant ||
		req.Header.Get("Idempotency-Key") != "invoice/demo/D-1001/invoice" {
		t.Errorf("headers %v", req.Header)
	}
	if e.fake.Refreshes != 0 || len(e.fake.Requests) != 0 {
		t.Errorf("PlanInvoice sent something")
	}
	long := "invoice/" + strings.Repeat("very-long-connection-name", 6) + "/D-1/invoice"
	k := xero.IdempotencyKey(long)
	if len(k) > 128 || k == long || k != xero.IdempotencyKey(long) {
		t.Errorf("derived key %q (%d)", k, len(k))
	}
	if xero.IdempotencyKey(long+"x") == k {
		t.Errorf("different keys derive the same value")
	}
}

func TestRegisteredWithDefaults(t *testing.T) {
	spec, ok := connectors.LookupTarget("xero")
	if !ok {
		t.Fatal("xero is not registered")
	}
	cfg, ok := spec.NewConfig().(*xero.Config)
	if !ok || cfg.BaseURL != xero.DefaultBaseURL || cfg.Status != "DRAFT" || !cfg.CheckReference {
		t.Fatalf("NewConfig = %#v", spec.NewConfig())
	}
	if _, err := spec.Build(cfg, connectors.Env{}); err == nil {
		t.Error("Build without tenant_id/client_id: want an error")
	}
}

func TestConfigFileSelectsXero(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XERO_TEST_SECRET", "s3cret")
	file := filepath.Join(dir, "dealsync.yaml")
	yaml := `
targets:
  books:
    type: xero
    tenant_id: ` + tenant + `
    client_id: abc
    client_secret: env:XERO_TEST_SECRET
    token_file: ` + filepath.Join(dir, "tok.json") + `
    status: AUTHORISED
    default_account_code: "200"
connections:
  demo:
    source: {type: generic, secret: whsec_ZGVhbHN5bmMtZGV2LXNlY3JldC1ub3QtZm9yLXByb2Q=}
    target: books
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	xc, ok := cfg.Targets["books"].Spec.(*xero.Config)
	if !ok || xc.Status != "AUTHORISED" || xc.DefaultAccountCode != "200" || xc.BaseURL != xero.DefaultBaseURL {
		t.Fatalf("spec = %#v", cfg.Targets["books"].Spec)
	}
	bad := strings.Replace(yaml, "status: AUTHORISED", "status: OPEN", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(file); err == nil || !strings.Contains(err.Error(), "targets.books.status") {
		t.Fatalf("bad status: %v", err)
	}
}

// link is the contact id the link file holds for CRM company externalID.
func (e *env) link(t *testing.T, externalID string) (string, bool) {
	t.Helper()
	id, ok, err := (&erpkit.FileLinkStore{Path: e.linkFile}).Get(context.Background(), "xero/"+tenant+"/"+externalID)
	if err != nil {
		t.Fatal(err)
	}
	return id, ok
}

func withLinks(c *xero.Config) { c.LinkFile = filepath.Join(filepath.Dir(c.TokenFile), "links.json") }

// Xero's summarizeErrors defaults to false: a contact or invoice that fails
// validation is then answered 200, flagged (HasValidationErrors / HasErrors,
// ValidationErrors) and with the all-zero id. The target asks
// summarizeErrors=true (a 400 instead), and refuses such an element
// anyway, so the zero id is never taken for a contact. Each case runs with
// Xero honouring the parameter and with mixed answers regardless.
func TestValidationFailuresAreNeverTakenForSavedObjects(t *testing.T) {
	ctx := context.Background()
	for _, mixed := range []bool{false, true} {
		name := "summarizeErrors honoured"
		if mixed {
			name = "mixed 200 answers"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("a refused create falls back to the contact made meanwhile", func(t *testing.T) {
				e := setup(t, withLinks)
				e.fake.MixedAnswers = mixed
				var made string
				e.fake.AfterContactsQuery = func() {
					if made == "" && e.fake.Calls("GET /Contacts") == 3 { // ContactNumber, TaxNumber, Name
						made = e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
					}
				}
				inv := exampleInvoice()
				ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
				if err != nil || made == "" || ref.ID != made || ref.Created {
					t.Fatalf("got %+v, %v; want %q (not %s)", ref, err, made, xerofake.ZeroID)
				}
				if id, _ := e.link(t, "C-1"); id != made {
					t.Fatalf("link file holds %q, want %q", id, made)
				}
				if c := e.fake.Contact(made); c.ContactNumber != "C-1" {
					t.Errorf("contact made meanwhile not claimed: %+v", c)
				}
				// The company's invoices go through.
				if _, err := e.target.CreateInvoice(ctx, inv, ref, "k/invoice"); err != nil {
					t.Fatalf("invoice: %v", err)
				}
			})
			t.Run("a refused create with nothing to fall back on fails with Xero's message", func(t *testing.T) {
				e := setup(t, withLinks)
				e.fake.MixedAnswers = mixed
				e.fake.Fail("PUT /Contacts", xerofake.Fault{Validation: "Email address must be valid."})
				_, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
				var api *connectors.APIError
				if !errors.As(err, &api) || api.StatusCode != http.StatusBadRequest || !strings.Contains(api.Message, "Email address must be valid.") {
					t.Fatalf("err = %v; want a 400 APIError with Xero's message", err)
				}
				if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
					t.Errorf("class %v, want Permanent", cl)
				}
				if id, ok := e.link(t, "C-1"); ok {
					t.Errorf("link file holds %q after a failed create", id)
				}
			})
			t.Run("a refused claim is not linked", func(t *testing.T) {
				e := setup(t, withLinks)
				e.fake.MixedAnswers = mixed
				want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
				e.fake.Fail("POST /Contacts/"+want, xerofake.Fault{Validation: "The contact could not be updated."})
				c := exampleInvoice().Customer
				c.TaxID = ""
				ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
				if err != nil || ref.ID != want {
					t.Fatalf("got %+v, %v; want %s used unclaimed", ref, err, want)
				}
				if id, ok := e.link(t, "C-1"); ok {
					t.Errorf("link file holds %q after a refused claim; want none, so the next deal claims afresh", id)
				}
			})
			t.Run("a refused invoice fails with Xero's message", func(t *testing.T) {
				e := setup(t, nil)
				e.fake.MixedAnswers = mixed
				inv := exampleInvoice()
				inv.Lines[0].AccountCode = "999"
				ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
				if err != nil {
					t.Fatal(err)
				}
				_, err = e.target.CreateInvoice(ctx, inv, ref, "k/invoice")
				var api *connectors.APIError
				if !errors.As(err, &api) || api.StatusCode != http.StatusBadRequest || !strings.Contains(api.Message, "Account code '999'") {
					t.Fatalf("err = %v; want a 400 APIError with Xero's message", err)
				}
				// Honoured, Xero's 400 names the element (errorDetail); mixed,
				// the flagged element of the 200 is refused.
				if want := map[bool]string{false: "Elements[0]", true: "Invoices[0]"}[mixed]; api.Field != want {
					t.Errorf("field %q, want %q", api.Field, want)
				}
				if _, n := e.fake.Counts(); n != 0 {
					t.Errorf("%d invoices", n)
				}
			})
		})
	}
	t.Run("a link to the all-zero id, made by an older version, is looked up afresh", func(t *testing.T) {
		e := setup(t, withLinks)
		if err := (&erpkit.FileLinkStore{Path: e.linkFile}).Put(ctx, "xero/"+tenant+"/C-1", xerofake.ZeroID); err != nil {
			t.Fatal(err)
		}
		want := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme GmbH"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
		if id, _ := e.link(t, "C-1"); id != want {
			t.Errorf("link file holds %q, want %q", id, want)
		}
	})
	t.Run("every write asks summarizeErrors=true", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "Other", TaxNumber: "DE123456789"}) // claimed by tax number
		inv := exampleInvoice()
		ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
		if err != nil {
			t.Fatal(err)
		}
		other := inv.Customer
		other.ExternalID, other.Name, other.TaxID = "C-2", "Zweite GmbH", ""
		if _, err := e.target.FindOrCreateCustomer(ctx, other, "k2/customer"); err != nil { // created
			t.Fatal(err)
		}
		if _, err := e.target.CreateInvoice(ctx, inv, ref, "k/invoice"); err != nil {
			t.Fatal(err)
		}
		writes := 0
		for _, u := range e.fake.URLs {
			if strings.HasPrefix(u, "PUT ") || strings.HasPrefix(u, "POST ") {
				writes++
				if !strings.Contains(u, "summarizeErrors=true") {
					t.Errorf("%s: no summarizeErrors=true", u)
				}
			}
		}
		if writes != 3 {
			t.Errorf("%d writes (%v), want 3: claim, create contact, create invoice", writes, e.fake.URLs)
		}
	})
}

// Xero contact names are unique regardless of case: "ACME GmbH" in Xero
// refuses a new "Acme GmbH", so it is the company's contact.
func TestContactNameMatchesIgnoringCase(t *testing.T) {
	ctx := context.Background()
	c := exampleInvoice().Customer
	c.TaxID = ""
	t.Run("found by name and claimed", func(t *testing.T) {
		e := setup(t, withLinks)
		want := e.fake.AddContact(xerofake.Contact{Name: "ACME GmbH"})
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || ref.Created {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
		if got := e.fake.Contact(want); got.ContactNumber != "C-1" || got.Name != "ACME GmbH" {
			t.Errorf("contact after the match: %+v; want ContactNumber C-1, name unchanged", got)
		}
		if id, _ := e.link(t, "C-1"); id != want {
			t.Errorf("link %q, want %q", id, want)
		}
		if n, _ := e.fake.Counts(); n != 1 || e.fake.Calls("PUT /Contacts") != 0 {
			t.Errorf("%d contacts, %d creates; want 1, 0", n, e.fake.Calls("PUT /Contacts"))
		}
	})
	t.Run("made meanwhile, taken after the refused create", func(t *testing.T) {
		e := setup(t, nil)
		var made string
		e.fake.AfterContactsQuery = func() {
			if made == "" && e.fake.Calls("GET /Contacts") == 2 { // ContactNumber, Name
				made = e.fake.AddContact(xerofake.Contact{Name: "acme gmbh"})
			}
		}
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || made == "" || ref.ID != made || ref.Created {
			t.Fatalf("got %+v, %v; want %q", ref, err, made)
		}
	})
	t.Run("another company's contact is still refused, naming it", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "ACME GMBH", ContactNumber: "C-999"})
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), "C-999") {
			t.Fatalf("err = %v; want a permanent error naming C-999", err)
		}
	})
}

// Two contacts with the company's tax number: the error tells the operator
// what Xero's UI can do (ContactNumber is read only there), and keeps the
// tax number, the contacts and the company.
func TestAmbiguousTaxNumberSaysWhatToDoInXero(t *testing.T) {
	ctx := context.Background()
	for _, id := range []string{"C-1", strings.Repeat("x", 51)} {
		e := setup(t, nil)
		a := e.fake.AddContact(xerofake.Contact{Name: "Acme Deutschland", TaxNumber: "DE123456789"})
		b := e.fake.AddContact(xerofake.Contact{Name: "Acme Holding", TaxNumber: "DE123456789"})
		c := exampleInvoice().Customer
		c.ExternalID = id
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
			t.Fatalf("err = %v; want permanent", err)
		}
		msg := err.Error()
		for _, want := range []string{"2 active contacts", `"DE123456789"`, a, b, `"Acme Deutschland"`, `"Acme Holding"`,
			`"` + id + `"`, "Acme GmbH", "remove or correct the tax number", "merge"} {
			if !strings.Contains(msg, want) {
				t.Errorf("company %.10s…: message %q lacks %q", id, msg, want)
			}
		}
		if strings.Contains(msg, "ContactNumber to") || strings.Contains(msg, `""`) {
			t.Errorf("message %q asks for what Xero's UI cannot do", msg)
		}
	}
}

// A contact made meanwhile makes Xero refuse the create (400: the name is
// taken); when the look-up that follows fails for a passing reason (an
// outage, a rate limit), that failure is the error, retried, not Xero's
// 400, which would fail the run for good over a contact that exists. The
// retry takes the contact.
func TestFailedLookUpAfterRefusedCreateIsRetried(t *testing.T) {
	ctx := context.Background()
	c := exampleInvoice().Customer
	c.TaxID = ""
	for _, fault := range []xerofake.Fault{
		{Status: http.StatusServiceUnavailable},
		{Status: http.StatusTooManyRequests, RetryAfter: "7", Problem: "minute"},
	} {
		t.Run(http.StatusText(fault.Status), func(t *testing.T) {
			e := setup(t, nil)
			var made string
			e.fake.AfterContactsQuery = func() {
				if made == "" && e.fake.Calls("GET /Contacts") == 2 { // ContactNumber, Name
					made = e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
					e.fake.Fail("GET /Contacts", fault) // the look-up after the refused create
				}
			}
			_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
			var api *connectors.APIError
			if !errors.As(err, &api) || api.StatusCode != fault.Status || api.Op != "find contact" {
				t.Fatalf("err = %v; want the look-up's HTTP %d", err, fault.Status)
			}
			if cl, _ := connectors.Classify(err); cl == connectors.Permanent {
				t.Fatalf("err = %v is permanent; want it retried", err)
			}
			if e.fake.Calls("PUT /Contacts") != 1 {
				t.Fatalf("%d creates, want the one refused", e.fake.Calls("PUT /Contacts"))
			}
			ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
			if err != nil || ref.ID != made || ref.Created {
				t.Fatalf("retry: %+v, %v; want %s", ref, err, made)
			}
		})
	}
}

// A write whose token refresh the token endpoint refuses as a bad request
// (400 invalid_request: Permanent, not the refresh token's fault) was never
// sent, so the 400 is not Xero's answer to it: a create is not taken as
// refused for a name a contact made meanwhile holds (no look-up again),
// and a claim is not taken as refused for good (the match used unclaimed
// and unlinked). Both report the token endpoint's refusal as it is.
func TestTokenRefusalIsNotARefusedWrite(t *testing.T) {
	ctx := context.Background()
	c := exampleInvoice().Customer
	c.TaxID = ""
	// refuseNextRefresh makes the token endpoint refuse the next refresh
	// once the first look-up is answered (the first refresh is past).
	refuseNextRefresh := func(e *env) {
		queued := false
		e.fake.AfterContactsQuery = func() {
			if !queued {
				queued = true
				e.fake.Fail("POST /connect/token", xerofake.Fault{Status: http.StatusBadRequest, OAuthError: "invalid_request"})
			}
		}
	}
	tokenRefused := func(t *testing.T, err error) {
		t.Helper()
		var api *connectors.APIError
		if cl, _ := connectors.Classify(err); !erpkit.IsTokenFailure(err) || !errors.As(err, &api) || api.Op != "refresh token" ||
			api.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid_request") || cl != connectors.Permanent {
			t.Fatalf("err = %v (class %v); want the token endpoint's 400 invalid_request, Permanent", err, cl)
		}
	}
	t.Run("create", func(t *testing.T) {
		e := setup(t, nil)
		refuseNextRefresh(e)
		e.fake.Fail("PUT /Contacts", xerofake.Fault{Status: http.StatusUnauthorized}) // the create's token is refused: one refresh
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		tokenRefused(t, err)
		if n := e.fake.Calls("GET /Contacts"); n != 2 { // ContactNumber, Name
			t.Errorf("%d look-ups; want the 2 before the create, none after it got no token", n)
		}
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || !ref.Created {
			t.Fatalf("retry: %+v, %v; want the contact created", ref, err)
		}
	})
	t.Run("claim", func(t *testing.T) {
		e := setup(t, func(c *xero.Config) { c.LinkFile = filepath.Join(filepath.Dir(c.TokenFile), "links.json") })
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		refuseNextRefresh(e)
		e.fake.Fail("POST /Contacts/"+want, xerofake.Fault{Status: http.StatusUnauthorized})
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if ref.ID != "" {
			t.Fatalf("got %+v; want no contact while the claim could not be sent", ref)
		}
		tokenRefused(t, err)
		ref, err = e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || e.fake.Contact(want).ContactNumber != "C-1" {
			t.Fatalf("retry: %+v, %v; want %s claimed", ref, err, want)
		}
	})
}

// A later run of a deal whose company changed in the CRM after its invoice
// was made: that invoice, billed to the old company's contact, is neither
// reported as the deal's nor joined by a second one; the run fails for
// good, naming the invoice, both contacts and what to do, whether the
// look-up by Reference finds it or Xero answers the step's key with it.
func TestInvoiceOfTheDealBilledToAnotherContactIsRefused(t *testing.T) {
	ctx := context.Background()
	// invoiced makes the deal's invoice for Acme under "wf/invoice".
	invoiced := func(t *testing.T, e *env) (model.Invoice, connectors.CustomerRef, connectors.InvoiceResult) {
		t.Helper()
		inv := exampleInvoice()
		acme, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
		if err != nil {
			t.Fatal(err)
		}
		made, err := e.target.CreateInvoice(ctx, inv, acme, "wf/invoice")
		if err != nil {
			t.Fatal(err)
		}
		return inv, acme, made
	}
	// changed makes the deal's invoice for Acme, then returns the deal
	// billed to Beta AG, its company now, and Beta's contact.
	changed := func(t *testing.T, e *env) (model.Invoice, connectors.CustomerRef, connectors.InvoiceResult, connectors.CustomerRef) {
		t.Helper()
		inv, acme, made := invoiced(t, e)
		inv.Customer = model.Customer{ExternalID: "C-2", Name: "Beta AG"}
		beta, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer-beta")
		if err != nil || beta.ID == acme.ID {
			t.Fatalf("Beta's contact: %+v, %v", beta, err)
		}
		return inv, beta, made, acme
	}
	for _, c := range []struct {
		name, key      string
		checkReference bool
		advice         string
	}{
		{"found by Reference, key forgotten", "wf/invoice-forgotten", true, "void invoice INV-0001 and retry the run"},
		{"found by Reference, key remembered", "wf/invoice", true, "void invoice INV-0001 and retry the run"},
		// What is certain is that the answer is not the invoice sent; an
		// earlier request of the key is one cause, a proxy or a mock that
		// answers fixed data (even to a first attempt) another.
		{"answered to the key", "wf/invoice", false, "once Xero has forgotten the key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t, func(cfg *xero.Config) { cfg.CheckReference = c.checkReference })
			if on, setting := e.target.LooksUpInvoicesByReference(); on != c.checkReference || setting != "check_reference" {
				t.Errorf("LooksUpInvoicesByReference() = %v, %q; want %v, check_reference", on, setting, c.checkReference)
			}
			inv, beta, made, acme := changed(t, e)
			res, err := e.target.CreateInvoice(ctx, inv, beta, c.key)
			if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent {
				t.Fatalf("got %+v, %v; want a permanent error", res, err)
			}
			for _, want := range []string{"INV-0001", made.InvoiceID, `"D-1001"`, acme.ID, `"Acme GmbH"`, beta.ID, `"Beta AG"`, c.advice, "by hand"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			if _, n := e.fake.Counts(); n != 1 {
				t.Errorf("%d invoices, want the first one only", n)
			}
			// Only the key's answer is what an earlier request made:
			// the step must not say this attempt made the invoice.
			if byKey := !c.checkReference; connectors.IsEarlierAnswer(err) != byKey {
				t.Errorf("IsEarlierAnswer = %v, want %v", connectors.IsEarlierAnswer(err), byKey)
			}
			if !c.checkReference {
				for _, want := range []string{"Xero answered this step's Idempotency-Key with invoice INV-0001", "not with the invoice this request sent",
					"either an earlier request with that key made it", "or what answers at the target's base_url is not Xero's API itself (a proxy or a mock answering fixed data)"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message %q lacks %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "made by an earlier request") {
					t.Errorf("message %q says as certain that an earlier request made the invoice", err)
				}
			}
		})
	}
	t.Run("a voided invoice listed all the same is not the deal's", func(t *testing.T) {
		e := setup(t, nil)
		e.fake.ListsEveryStatus = true
		inv, acme, made := invoiced(t, e)
		e.fake.SetInvoiceStatus(made.InvoiceID, "VOIDED")
		res, err := e.target.CreateInvoice(ctx, inv, acme, "wf/invoice-forgotten")
		if err != nil || res.Replayed || res.InvoiceID == made.InvoiceID {
			t.Fatalf("got %+v, %v; want a new invoice, not the voided %s", res, err, made.InvoiceID)
		}
	})
	t.Run("voided, it no longer counts; the new one is the deal's from then on", func(t *testing.T) {
		for _, listsEveryStatus := range []bool{false, true} {
			e := setup(t, nil)
			e.fake.ListsEveryStatus = listsEveryStatus
			inv, beta, made, _ := changed(t, e)
			e.fake.SetInvoiceStatus(made.InvoiceID, "VOIDED")
			res, err := e.target.CreateInvoice(ctx, inv, beta, "wf/invoice-forgotten")
			if err != nil || res.Replayed || res.InvoiceID == made.InvoiceID {
				t.Fatalf("lists every status %v: %+v, %v; want a new invoice", listsEveryStatus, res, err)
			}
			// Should the old one stand again, the deal's own invoice is taken.
			e.fake.SetInvoiceStatus(made.InvoiceID, "AUTHORISED")
			again, err := e.target.CreateInvoice(ctx, inv, beta, "wf/invoice-forgotten-again")
			if err != nil || !again.Replayed || again.InvoiceID != res.InvoiceID {
				t.Errorf("lists every status %v: %+v, %v; want %s replayed", listsEveryStatus, again, err, res.InvoiceID)
			}
		}
	})
}

// Two or more live invoices with the deal's Reference billed to the deal's
// contact: nothing but the Reference ties an invoice to the deal, so the
// run fails for good, naming the Reference and the invoices (the first
// five, and how many more), and saying what to do in Xero, rather than
// take the first Xero lists (perhaps another deal's) or make another one.
// Voided and deleted invoices, and another contact's, do not count.
func TestSeveralInvoicesOfTheDealsReferenceAreRefused(t *testing.T) {
	ctx := context.Background()
	// A reference with a double quote is looked for with searchTerm.
	for _, reference := range []string{"D-1001", `D-"7"`} {
		t.Run("two, reference "+reference, func(t *testing.T) {
			e := setup(t, nil)
			inv := exampleInvoice()
			inv.Reference = reference
			acme, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
			if err != nil {
				t.Fatal(err)
			}
			made, err := e.target.CreateInvoice(ctx, inv, acme, "wf/invoice")
			if err != nil {
				t.Fatal(err)
			}
			// A second invoice with the Reference, billed to Acme, made in
			// Xero: a copy, or another deal's whose mapping wrote the same.
			other := e.fake.AddInvoice(xerofake.Invoice{Reference: reference, ContactID: acme.ID})
			for _, key := range []string{"wf/invoice", "wf-rerun/invoice"} {
				res, err := e.target.CreateInvoice(ctx, inv, acme, key)
				if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || res.InvoiceID != "" {
					t.Fatalf("key %s: got %+v, %v (class %v); want a permanent refusal, neither %s nor %s taken", key, res, err, cl, made.InvoiceID, other)
				}
				for _, want := range []string{fmt.Sprintf("%q", reference), "2 invoices", "INV-0001 (InvoiceID " + made.InvoiceID + ")", "INV-0002 (InvoiceID " + other + ")",
					acme.ID, `"Acme GmbH"`, "does not guess", "void or delete those that are not the deal's", "invoice.reference unique per deal", "retry the run"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message %q lacks %q", err, want)
					}
				}
			}
			if _, n := e.fake.Counts(); n != 2 || e.fake.InvoicePuts != 1 {
				t.Errorf("%d invoices, %d PUTs; want 2 and 1 (none made)", n, e.fake.InvoicePuts)
			}
		})
	}
	t.Run("six: five named, and how many more", func(t *testing.T) {
		e := setup(t, nil)
		inv := exampleInvoice()
		acme, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for range 6 {
			ids = append(ids, e.fake.AddInvoice(xerofake.Invoice{Reference: inv.Reference, ContactID: acme.ID}))
		}
		_, err = e.target.CreateInvoice(ctx, inv, acme, "wf/invoice")
		if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent {
			t.Fatalf("got %v (class %v); want a permanent refusal", err, cl)
		}
		for _, want := range []string{"6 invoices", ids[0], ids[4], "INV-0005", "and 1 more"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
		if strings.Contains(err.Error(), ids[5]) || strings.Contains(err.Error(), "INV-0006") {
			t.Errorf("message %q names the sixth invoice; want five named", err)
		}
		if e.fake.InvoicePuts != 0 {
			t.Errorf("%d PUTs, want none", e.fake.InvoicePuts)
		}
	})
	t.Run("voided, deleted and another contact's do not count", func(t *testing.T) {
		for _, listsEveryStatus := range []bool{false, true} {
			e := setup(t, nil)
			e.fake.ListsEveryStatus = listsEveryStatus
			inv := exampleInvoice()
			acme, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
			if err != nil {
				t.Fatal(err)
			}
			made, err := e.target.CreateInvoice(ctx, inv, acme, "wf/invoice")
			if err != nil {
				t.Fatal(err)
			}
			beta := e.fake.AddContact(xerofake.Contact{Name: "Beta AG"})
			e.fake.AddInvoice(xerofake.Invoice{Reference: inv.Reference, ContactID: acme.ID, Status: "VOIDED"})
			e.fake.AddInvoice(xerofake.Invoice{Reference: inv.Reference, ContactID: acme.ID, Status: "DELETED"})
			e.fake.AddInvoice(xerofake.Invoice{Reference: inv.Reference, ContactID: beta})
			res, err := e.target.CreateInvoice(ctx, inv, acme, "wf-rerun/invoice")
			if err != nil || !res.Replayed || res.InvoiceID != made.InvoiceID || e.fake.InvoicePuts != 1 {
				t.Fatalf("lists every status %v: got %+v, %v (%d PUTs); want %s replayed", listsEveryStatus, res, err, e.fake.InvoicePuts, made.InvoiceID)
			}
		}
	})
}

// Xero refuses an e-mail address with umlauts ("umlauts not supported"),
// and one that is not a valid address: such an address ("n/a", a list of
// two) is left out of the contact, not sent to fail every deal of the
// company; one ASCII address is sent as it is.
func TestContactEmailXeroWouldRefuseIsLeftOut(t *testing.T) {
	for email, want := range map[string]string{
		"info@müller.de": "", " ap@acme.example ": "ap@acme.example",
		"n/a": "", "a@x.de; b@x.de": "", "a@x.de, b@x.de": "", "Acme AP <ap@acme.example>": "", "ap@localhost": "", "ap@acme": "",
	} {
		if got := xero.NewContact(model.Customer{Name: "Müller GmbH", Email: email}).EmailAddress; got != want {
			t.Errorf("%q: EmailAddress %q, want %q", email, got, want)
		}
	}
}

// A new contact with a field longer than Xero takes (a CRM's country name
// of 52 characters, Country takes 50) fails the customer step for good
// before anything is sent, naming the field, the mapping key and the fix;
// at the limit it is sent.
func TestContactFieldLongerThanXeroTakesIsRefused(t *testing.T) {
	ctx := context.Background()
	e := setup(t, nil)
	c := model.Customer{ExternalID: "C-UK", Name: "Crown Ltd", Address: model.Address{Country: "United Kingdom of Great Britain and Northern Ireland"}}
	_, err := e.target.FindOrCreateCustomer(ctx, c, "wf/customer")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent ||
		!strings.Contains(fmt.Sprint(err), "Country (invoice.customer.address.country) is 52 characters, and Xero takes at most 50: map a country code") {
		t.Fatalf("%v (class %v); want a permanent refusal naming Country", err, cl)
	}
	if n, _ := e.fake.Counts(); n != 0 {
		t.Errorf("%d contacts made, want none", n)
	}
	c.Address.Country = strings.Repeat("é", 50)
	if _, err := e.target.FindOrCreateCustomer(ctx, c, "wf/customer"); err != nil {
		t.Errorf("a country of 50 characters: %v", err)
	}
}

// Xero computes the tax itself, by each line's tax type, and to 2
// decimals in every currency: when the total of the invoice it made is not
// the invoice's, the result carries a warning naming both (for the run to
// show); when they agree, none. A JPY invoice whose tax has a fraction of
// a yen differs (1234 at 10 %: Xero bills 1357.40, dealsync 1357).
func TestATotalXeroComputedOtherwiseIsAWarning(t *testing.T) {
	e := setup(t, nil)
	e.fake.TaxRates = map[string]decimal.Decimal{"OUTPUT2": d("19"), "OUTPUT": d("10")}
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.target.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || res.Warning != "" {
		t.Fatalf("totals that agree (%s): %+v, %v; want no warning", inv.Total, res, err)
	}
	jpy := model.Invoice{Reference: "D-1002", Customer: inv.Customer, Currency: "JPY", IssueDate: inv.IssueDate, DueDate: inv.DueDate,
		Lines: []model.InvoiceLine{{Description: "Seat", Quantity: d("1"), UnitPrice: d("1234"), AccountCode: "200", TaxCode: "OUTPUT", TaxRate: d("10")}}}
	jpy.ComputeTotals()
	res, err = e.target.CreateInvoice(ctx, jpy, ref, "invoice/demo/D-1002/invoice")
	if err != nil || !strings.Contains(res.Warning, "is JPY 1357.4, not the invoice's JPY 1357:") {
		t.Fatalf("a JPY tax with a fraction of a yen: %+v, %v; want a warning naming both totals", res, err)
	}
	if !strings.Contains(res.Warning, "2 decimals in every currency") {
		t.Errorf("warning %q does not say why", res.Warning)
	}
}

// The warning of a total Xero computed otherwise is logged with what the
// step put into its context (connectors.WithLogAttrs: the run it belongs
// to), which the target itself does not know.
func TestTheTotalsWarningNamesTheStepsRun(t *testing.T) {
	e := setup(t, nil)
	e.fake.TaxRates = map[string]decimal.Decimal{"OUTPUT": d("10")}
	var out bytes.Buffer
	tg, err := xero.New(e.cfg, xero.Deps{Logger: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := connectors.WithLogAttrs(context.Background(), "deal_id", "D-1002", "workflow_id", "invoice/demo/D-1002")
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1002/customer")
	if err != nil {
		t.Fatal(err)
	}
	jpy := model.Invoice{Reference: "D-1002", Customer: inv.Customer, Currency: "JPY", IssueDate: inv.IssueDate, DueDate: inv.DueDate,
		Lines: []model.InvoiceLine{{Description: "Seat", Quantity: d("1"), UnitPrice: d("1234"), AccountCode: "200", TaxCode: "OUTPUT", TaxRate: d("10")}}}
	jpy.ComputeTotals()
	if _, err := tg.CreateInvoice(ctx, jpy, ref, "invoice/demo/D-1002/invoice"); err != nil {
		t.Fatal(err)
	}
	if line := out.String(); !strings.Contains(line, `msg="invoice total differs in the ERP"`) || !strings.Contains(line, "deal_id=D-1002 workflow_id=invoice/demo/D-1002") {
		t.Errorf("the log:\n%s\nwant the totals warning with the step's attributes", line)
	}
}

// Xero rounds a line's quantity × unit price, and its discount, to 2
// decimals in every currency: a JPY line of 1.5 × 999 yen is 1498.50
// there and 1499 in dealsync, a KWD line of 10.125 is 10.13 there. Such
// an invoice is refused before anything is sent, naming the line, both
// amounts and what to change in the mapping, rather than made with
// another amount than the deal's; lines exact in both go through.
func TestALineXeroWouldAmountOtherwiseIsRefusedBeforeSending(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	invoice := func(ref string, cur model.Currency, lines ...model.InvoiceLine) model.Invoice {
		x := model.Invoice{Reference: ref, Customer: inv.Customer, Currency: cur, IssueDate: inv.IssueDate, DueDate: inv.DueDate, Lines: lines}
		x.ComputeTotals()
		return x
	}
	seat := func(q, p, discount string) model.InvoiceLine {
		return model.InvoiceLine{Description: "Seat", Quantity: d(q), UnitPrice: d(p), Discount: d(discount), AccountCode: "200"}
	}
	for _, c := range []struct {
		name string
		inv  model.Invoice
		want string
	}{
		{"JPY, a fraction of a yen", invoice("D-1003", "JPY", seat("2", "500", "0"), seat("1.5", "999", "0")),
			`lines[1]: amount differs in Xero, which rounds a line's amount to 2 decimals in every currency: 1.5 × 999 is 1498.50 there, JPY 1499 here (0 decimals), so Xero would bill another amount than the invoice's; make quantity × unit price exact in JPY, e.g. unit_price: round_currency(x, "JPY") with a whole quantity`},
		{"KWD, a third decimal", invoice("D-1004", "KWD", seat("1", "10.125", "0")),
			`lines[0]: amount differs in Xero, which rounds a line's amount to 2 decimals in every currency: 1 × 10.125 is 10.13 there, KWD 10.125 here (3 decimals), so Xero would bill another amount than the invoice's; make quantity × unit price, and the discount, exact to 2 decimals (e.g. a whole quantity and unit_price: round_to(x, 2)), or bill this customer in another currency`},
		{"KWD, a discount's third decimal", invoice("D-1005", "KWD", seat("1", "10.12", "1.005")),
			`lines[0]: amount differs in Xero, which rounds a line's amount to 2 decimals in every currency: 1 × 10.12 less 1.005 is 9.11 there, KWD 9.115 here (3 decimals)`},
	} {
		_, err := e.target.CreateInvoice(ctx, c.inv, ref, "invoice/demo/"+c.inv.Reference+"/invoice")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
		if !errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("%s: %v is not a permanent failure", c.name, err)
		}
	}
	if _, n := e.fake.Counts(); n != 0 {
		t.Fatalf("%d invoices made, want none: the refusals come before sending", n)
	}
	// A run under way whose earlier attempt made such an invoice (before
	// the refusal) finds it by its Reference, as a replay.
	made := invoice("D-1009", "JPY", seat("2", "500", "0"))
	first, err := e.target.CreateInvoice(ctx, made, ref, "invoice/demo/D-1009/invoice")
	if err != nil {
		t.Fatal(err)
	}
	again := invoice("D-1009", "JPY", seat("1.5", "999", "0"))
	if res, err := e.target.CreateInvoice(ctx, again, ref, "invoice/demo/D-1009/invoice"); err != nil || res.InvoiceID != first.InvoiceID || !res.Replayed {
		t.Errorf("the deal's invoice made before: %+v, %v; want it found (%s), replayed", res, err, first.InvoiceID)
	}
	for _, x := range []model.Invoice{
		invoice("D-1006", "JPY", seat("3", "999", "149.85")), // 149.85 off 2997: the discount rounded to the yen (150), 2847 in both
		invoice("D-1007", "KWD", seat("2", "10.12", "0.5")),
		invoice("D-1008", "EUR", seat("1.5", "0.333", "0")), // 2 decimals: Xero's and the invoice's rounding agree
	} {
		if _, err := e.target.CreateInvoice(ctx, x, ref, "invoice/demo/"+x.Reference+"/invoice"); err != nil {
			t.Errorf("%s in %s, exact in both: %v", x.Reference, x.Currency, err)
		}
	}
}

// Xero's figures as a real organisation makes them: a line without a tax
// type takes its account's (a warning when the mapping gave it no
// tax_rate beside a taxed line), an invoice found again (the create's
// answer lost) is compared too, and Inclusive line amounts are compared
// by the gross Total (Xero's SubTotal is net of the included tax).
func TestXeroTotalsAsTheOrganisationMakesThem(t *testing.T) {
	e := setup(t, nil)
	e.fake.TaxRates = map[string]decimal.Decimal{"OUTPUT2": d("19")}
	e.fake.AccountTaxTypes = map[string]string{"200": "OUTPUT2"}
	ctx := context.Background()
	inv := exampleInvoice() // line 1: account 200, no tax type, no tax_rate
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.target.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || !strings.Contains(res.Warning, "Xero's total of invoice") {
		t.Fatalf("a line Xero taxes by its account's default: %+v, %v; want a warning", res, err)
	}
	// Found again by its reference (a re-run): the same warning.
	again, err := e.target.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice-rerun")
	if err != nil || !again.Replayed || again.Warning != res.Warning {
		t.Fatalf("the invoice found again: %+v, %v; want the replay with the same warning", again, err)
	}

	inc := setup(t, func(c *xero.Config) { c.LineAmountTypes = "Inclusive" })
	inc.fake.TaxRates = map[string]decimal.Decimal{"OUTPUT2": d("20")}
	gross := model.Invoice{Reference: "D-1004", Customer: inv.Customer, Currency: "EUR", IssueDate: inv.IssueDate, DueDate: inv.DueDate,
		Lines: []model.InvoiceLine{{Description: "Seat", Quantity: d("1"), UnitPrice: d("100"), AccountCode: "200", TaxCode: "OUTPUT2"}}}
	gross.ComputeTotals()
	cref, err := inc.target.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1004/customer")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := inc.target.CreateInvoice(ctx, gross, cref, "invoice/demo/D-1004/invoice"); err != nil || res.Warning != "" {
		t.Fatalf("Inclusive amounts (Total 100.00, SubTotal 83.33): %+v, %v; want no warning", res, err)
	}
}

// highVolume is a target on an organisation with very many contacts,
// whose log is kept.
func highVolume(t *testing.T, mod func(*xero.Config)) (*env, *bytes.Buffer) {
	t.Helper()
	e := setup(t, mod)
	e.fake.HighVolume = true
	var logs bytes.Buffer
	tg, err := xero.New(e.cfg, xero.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.target = tg
	return e, &logs
}

// On an organisation with very many contacts Xero refuses a where filter it
// has not optimised (ContactNumber, TaxNumber) with 400 HighVolumeException.
// The ContactNumber rule searches instead (searchTerm, compared exactly);
// the TaxNumber rule, which no search covers, is skipped with a warning
// (once) and the name rule applies.
func TestHighVolumeOrganisation(t *testing.T) {
	ctx := context.Background()
	t.Run("contact number", func(t *testing.T) {
		e, _ := highVolume(t, nil)
		// Found by the search too, but not the company's.
		e.fake.AddContact(xerofake.Contact{Name: "Other", ContactNumber: "C-10", EmailAddress: "c-1@other.example"})
		want := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme (renamed in Xero)"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want || ref.Created {
			t.Fatalf("got %+v, %v; want %s", ref, err, want)
		}
		for _, u := range e.fake.URLs {
			if strings.Contains(u, "where=") {
				t.Errorf("%s: a where filter on a high-volume organisation", u)
			}
		}
	})
	t.Run("tax number: skipped with a warning, the name rule applies", func(t *testing.T) {
		e, logs := highVolume(t, nil)
		e.fake.AddContact(xerofake.Contact{Name: "ACME Deutschland", TaxNumber: "DE123456789"}) // only the tax number matches it
		want := e.fake.AddContact(xerofake.Contact{Name: "Acme GmbH"})
		ref, err := e.target.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != want || ref.Created {
			t.Fatalf("got %+v, %v; want %s by its name", ref, err, want)
		}
		if !strings.Contains(logs.String(), "tax-number rule is skipped") || !strings.Contains(logs.String(), "HighVolumeException") {
			t.Errorf("log %q: want the skipped rule named", logs)
		}
		taxLookUps := func() (n int) {
			for _, u := range e.fake.URLs {
				if strings.Contains(u, "TaxNumber") {
					n++
				}
			}
			return n
		}
		// Another company: the rule is not tried again, nor warned of.
		before := taxLookUps()
		other := exampleInvoice().Customer
		other.ExternalID, other.Name, other.TaxID = "C-2", "Beta Ltd", "DE999999999"
		if ref, err := e.target.FindOrCreateCustomer(ctx, other, "k2"); err != nil || !ref.Created {
			t.Fatalf("another company: %+v, %v; want it created", ref, err)
		}
		if n := taxLookUps() - before; n != 0 || strings.Count(logs.String(), "tax-number rule is skipped") != 1 {
			t.Errorf("%d more tax-number look-ups, %d warnings; want none more, one", n, strings.Count(logs.String(), "tax-number rule is skipped"))
		}
	})
}

// searchTerm matches substrings, so a look-up may be answered over many
// pages: every page is read (up to a bound), whether Xero's answer says how
// many there are or not, and the contact on the last one is found, not
// created again. Past the bound a ContactNumber look-up asks the exact
// filter; only where Xero refuses that filter (a very large organisation)
// does it fail for good, naming the value, rather than create a second
// contact beside one it did not read.
func TestContactSearchReadsEveryPage(t *testing.T) {
	ctx := context.Background()
	c := exampleInvoice().Customer
	c.TaxID = ""
	for _, unpaginated := range []bool{false, true} {
		t.Run(fmt.Sprintf("contact number, pagination left out %v", unpaginated), func(t *testing.T) {
			e := setup(t, nil)
			e.fake.Unpaginated = unpaginated
			for i := range 250 {
				e.fake.AddContact(xerofake.Contact{Name: fmt.Sprintf("Decoy %d", i), ContactNumber: fmt.Sprintf("C-1%03d", i)})
			}
			want := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme (renamed in Xero)"})
			ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
			if err != nil || ref.ID != want || ref.Created {
				t.Fatalf("got %+v, %v; want %s, on the third page", ref, err, want)
			}
			if n := e.fake.Calls("GET /Contacts"); n != 3 {
				t.Errorf("%d look-ups, want 3 pages", n)
			}
		})
	}
	t.Run("name", func(t *testing.T) {
		e := setup(t, nil)
		for i := range 150 {
			e.fake.AddContact(xerofake.Contact{Name: fmt.Sprintf("Acme GmbH Filiale %d", i)})
		}
		want := e.fake.AddContact(xerofake.Contact{Name: "ACME GMBH"})
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != want || ref.Created || e.fake.Contact(want).ContactNumber != "C-1" {
			t.Fatalf("got %+v, %v; want %s, claimed", ref, err, want)
		}
	})
	// Past the bound the exact filter decides: it finds the contact among
	// those left unread, or says there is none (a short number such as a
	// Pipedrive id is in many contacts of an ordinary organisation).
	t.Run("more than are read: the exact filter decides", func(t *testing.T) {
		for _, held := range []bool{true, false} {
			e := setup(t, nil)
			for i := range 1001 {
				e.fake.AddContact(xerofake.Contact{Name: fmt.Sprintf("Decoy %d", i), ContactNumber: fmt.Sprintf("C-1%04d", i)})
			}
			want := ""
			if held {
				want = e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme (renamed in Xero)"})
			}
			ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
			if err != nil || ref.Created == held || (held && ref.ID != want) {
				t.Fatalf("held %v: got %+v, %v; want the held contact %q found, or a new one", held, ref, err, want)
			}
			if n := e.fake.Calls("GET /Contacts"); n < 11 {
				t.Errorf("held %v: %d look-ups, want 10 pages and the exact filter", held, n)
			}
		}
	})
	// The company's contact, merged into another and so archived, among
	// those left unread: the exact filter asks for archived contacts too,
	// and the merge is followed, not undone by a new contact.
	t.Run("more than are read: a merged contact found by the exact filter", func(t *testing.T) {
		e := setup(t, nil)
		for i := range 1001 {
			e.fake.AddContact(xerofake.Contact{Name: fmt.Sprintf("Decoy %d", i), ContactNumber: fmt.Sprintf("C-1%04d", i)})
		}
		source := e.fake.AddContact(xerofake.Contact{ContactNumber: "C-1", Name: "Acme (merged away)"})
		into := e.fake.AddContact(xerofake.Contact{Name: "ACME Deutschland"})
		e.fake.Merge(source, into)
		ref, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != into || ref.Created {
			t.Fatalf("got %+v, %v; want the merge's destination %s", ref, err, into)
		}
	})
	// On an organisation too large for the exact filter, the look-up fails
	// for good, naming the value, rather than create a second contact
	// beside one it did not read.
	t.Run("more than are read, high volume: refused, naming the value", func(t *testing.T) {
		e := setup(t, nil)
		for i := range 1001 {
			e.fake.AddContact(xerofake.Contact{Name: fmt.Sprintf("Decoy %d", i), ContactNumber: fmt.Sprintf("C-1%04d", i)})
		}
		e.fake.HighVolume = true
		_, err := e.target.FindOrCreateCustomer(ctx, c, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), `"C-1"`) || !strings.Contains(err.Error(), "link_file") ||
			!strings.Contains(err.Error(), "HighVolumeException") {
			t.Fatalf("err = %v; want a permanent error naming C-1, link_file and why the exact filter did not answer", err)
		}
		if e.fake.Calls("PUT /Contacts") != 0 {
			t.Errorf("%d creates, want none", e.fake.Calls("PUT /Contacts"))
		}
	})
}

// Xero refuses a create whose name an active contact holds in some case or
// spelling the look-up does not find: the error names the contact name and
// says what to do, rather than pass on Xero's bare message.
func TestNameTakenButNotFoundSaysWhatToDo(t *testing.T) {
	e := setup(t, withLinks)
	e.fake.Fail("PUT /Contacts", xerofake.Fault{Validation: "The contact name Acme GmbH is already assigned to another contact. The contact name must be unique across all active contacts."})
	_, err := e.target.FindOrCreateCustomer(context.Background(), exampleInvoice().Customer, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Fatalf("err = %v; want permanent", err)
	}
	for _, want := range []string{`"Acme GmbH"`, `"C-1"`, "already assigned", "rename", `"xero/` + tenant + `/C-1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

// Xero rotates refresh tokens: targets authorised in one consent flow (one
// client_id and refresh_token, several organisations) must share one
// token_file, or the first to refresh strands the others. The config
// refuses them with different ones.
func TestOneAuthorisationSharesOneTokenFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XERO_TEST_SECRET", "s3cret")
	t.Setenv("XERO_TEST_REFRESH", "rt-1")
	t.Setenv("XERO_TEST_REFRESH_OTHER", "rt-2")
	write := func(t *testing.T, clientB, refreshB, fileB string) error {
		t.Helper()
		file := filepath.Join(dir, "dealsync.yaml")
		yaml := `
targets:
  books_de:
    type: xero
    tenant_id: ` + tenant + `
    client_id: abc
    client_secret: env:XERO_TEST_SECRET
    refresh_token: env:XERO_TEST_REFRESH
    token_file: ` + filepath.Join(dir, "xero.token.json") + `
  books_uk:
    type: xero
    tenant_id: 22222222-2222-3333-4444-555555555555
    client_id: ` + clientB + `
    client_secret: env:XERO_TEST_SECRET
    refresh_token: ` + refreshB + `
    token_file: ` + filepath.Join(dir, fileB) + `
connections:
  demo:
    source: {type: generic, secret: whsec_ZGVhbHN5bmMtZGV2LXNlY3JldC1ub3QtZm9yLXByb2Q=}
    target: books_de
`
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(file)
		return err
	}
	for _, refresh := range []string{"env:XERO_TEST_REFRESH", "rt-1"} {
		err := write(t, "abc", refresh, "xero-uk.token.json")
		if err == nil || !strings.Contains(err.Error(), "targets.books_uk.token_file") || !strings.Contains(err.Error(), "share one token_file") ||
			!strings.Contains(err.Error(), `"books_de"`) || strings.Contains(err.Error(), "rt-1") {
			t.Errorf("refresh_token %s, another token_file: %v; want targets.books_uk.token_file refused, without the token", refresh, err)
		}
	}
	for name, args := range map[string][3]string{
		"one token_file":        {"abc", "env:XERO_TEST_REFRESH", "./xero.token.json"},
		"another refresh_token": {"abc", "env:XERO_TEST_REFRESH_OTHER", "xero-uk.token.json"},
		"another client":        {"def", "env:XERO_TEST_REFRESH", "xero-uk.token.json"},
	} {
		if err := write(t, args[0], args[1], args[2]); err != nil {
			t.Errorf("%s: %v; want the config taken", name, err)
		}
	}
}

// A base_url Xero's target refuses is named without the credential it may
// hold (user info, a query), and one url.Parse refuses not at all.
func TestBaseURLErrorsShowNoCredential(t *testing.T) {
	for raw, want := range map[string]string{
		"ftp://u:S3cretPass@api.xero.com/api.xro/2.0?k=S3cretPass": `base_url "ftp://api.xero.com/api.xro/2.0" is not an http(s) URL`,
		"https://u:S3cretPass/x@api.xero.com":                      "base_url is not a valid URL",
		// Xero's host with another path than its API's: every call would
		// answer 404.
		"https://api.xero.com":                      `base_url "https://api.xero.com": Xero's Accounting API is https://api.xero.com/api.xro/2.0`,
		"https://API.xero.com/api.xro/2.0/Invoices": `base_url "https://API.xero.com/api.xro/2.0/Invoices": Xero's Accounting API is https://api.xero.com/api.xro/2.0`,
	} {
		cfg := xero.DefaultConfig()
		cfg.TenantID, cfg.ClientID, cfg.ClientSecret = "t", "c", secret.New("s")
		cfg.TokenFile = filepath.Join(t.TempDir(), "token.json")
		cfg.BaseURL = raw
		_, err := xero.New(cfg, xero.Deps{})
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), want) {
			t.Errorf("base_url %s: %v; want it to say %s, without the credential", raw, err, want)
		}
	}
	// Xero's API, with or without a trailing slash, and a mock's host with
	// any path, are taken.
	for _, raw := range []string{"https://api.xero.com/api.xro/2.0/", "http://127.0.0.1:38011", "http://mock.test/xero"} {
		cfg := xero.DefaultConfig()
		cfg.TenantID, cfg.ClientID, cfg.ClientSecret = "t", "c", secret.New("s")
		cfg.TokenFile = filepath.Join(t.TempDir(), "token.json")
		cfg.BaseURL = raw
		if _, err := xero.New(cfg, xero.Deps{}); err != nil {
			t.Errorf("base_url %s: %v; want it taken", raw, err)
		}
	}
}

// An answer to the invoice look-up that Xero paged (its pagination says
// there is more) is refused, not read as every match: the deal's other
// invoice could be on the page not read.
func TestPagedInvoiceLookUpIsRefused(t *testing.T) {
	ctx := context.Background()
	var acmeID atomic.Value
	e := setup(t, func(cfg *xero.Config) {
		upstream, _ := url.Parse(cfg.BaseURL)
		proxy := httputil.NewSingleHostReverseProxy(upstream)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Invoices") {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"pagination":{"page":1,"pageSize":100,"pageCount":2,"itemCount":101},"Invoices":[{"InvoiceID":"00000000-0000-0000-0000-000000000001","InvoiceNumber":"INV-0099","Reference":"D-1001","Type":"ACCREC","Status":"AUTHORISED","Contact":{"ContactID":%q}}]}`, acmeID.Load())
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		cfg.BaseURL = srv.URL
	})
	inv := exampleInvoice()
	acme, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	acmeID.Store(acme.ID)
	res, err := e.target.CreateInvoice(ctx, inv, acme, "wf/invoice")
	if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || res.InvoiceID != "" || !strings.Contains(err.Error(), "page 1 of 2") {
		t.Fatalf("got %+v, %v (class %v); want a permanent refusal naming the pages", res, err, cl)
	}
	if e.fake.InvoicePuts != 0 {
		t.Errorf("%d invoices PUT; want none", e.fake.InvoicePuts)
	}
}

// A company whose linked contact is archived since (archived by a person,
// or merged into another) has its invoice refused by Xero: the link is
// forgotten, and the error says to retry, which matches the company
// afresh (a merge is followed through its ContactNumber); before, every
// invoice of the company was refused until someone edited the link file.
// A refusal for an archived contact that is not the linked one keeps the
// link, and the message is Xero's.
func TestArchivedLinkedContactIsForgotten(t *testing.T) {
	ctx := context.Background()
	e := setup(t, withLinks)
	inv := exampleInvoice()
	ref, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "first/customer")
	if err != nil {
		t.Fatal(err)
	}
	into := e.fake.AddContact(xerofake.Contact{Name: "Acme Holding"})
	e.fake.Merge(ref.ID, into)
	// The link still gives the merged-away contact.
	if again, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "second/customer"); err != nil || again.ID != ref.ID {
		t.Fatalf("linked: %+v, %v", again, err)
	}
	_, err = e.target.CreateInvoice(ctx, inv, ref, "second/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Fatalf("err = %v; want permanent", err)
	}
	for _, want := range []string{"has been archived", ref.ID, "link is forgotten", "dealsync runs retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	// The retry's customer step follows the merge; its invoice goes out.
	next, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "retry/customer")
	if err != nil || next.ID != into {
		t.Fatalf("after the link was forgotten: %+v, %v; want %s", next, err, into)
	}
	if res, err := e.target.CreateInvoice(ctx, inv, next, "retry/invoice"); err != nil || e.fake.Invoices[len(e.fake.Invoices)-1].ContactID != into {
		t.Fatalf("retry: %+v, %v", res, err)
	}

	// The archived refusal answered for a contact that is active (Xero
	// replaying an earlier answer of the step's Idempotency-Key): the link
	// to the active contact is kept.
	e.fake.Fail("PUT /Invoices", xerofake.Fault{Validation: "The contact with the specified contact details has been archived. The contact must be un-archived before creating new invoices or credit notes."})
	later := exampleInvoice()
	later.Reference = "D-1002"
	if _, err := e.target.CreateInvoice(ctx, later, next, "replayed/invoice"); err == nil || strings.Contains(err.Error(), "forgotten") {
		t.Errorf("a replayed refusal for an active contact: %v", err)
	}
	if kept, err := e.target.FindOrCreateCustomer(ctx, inv.Customer, "after-replay/customer"); err != nil || kept.ID != into {
		t.Errorf("the link to the active contact: %+v, %v; want %s", kept, err, into)
	}

	// An archived contact the link does not give: Xero's message alone.
	other := exampleInvoice()
	other.Customer.ExternalID, other.Reference = "C-9", "D-9"
	archived := e.fake.AddContact(xerofake.Contact{Name: "Old Ltd", ContactStatus: "ARCHIVED"})
	_, err = e.target.CreateInvoice(ctx, other, connectors.CustomerRef{ID: archived}, "other/invoice")
	if err == nil || !strings.Contains(err.Error(), "has been archived") || strings.Contains(err.Error(), "forgotten") {
		t.Errorf("an unlinked archived contact: %v", err)
	}
}
