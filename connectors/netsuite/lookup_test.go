package netsuite_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/connectors/netsuite/netsuitefake"
	"github.com/dealsync/dealsync/model"
)

// SuiteQL answers a page at a time (hasMore): the customer a rule takes
// may be behind rows that other records claim, on a later page. Read as
// "none", the company would get a second customer. The pages must be of
// one order (ORDER BY id), or they may skip and repeat rows: the fake
// refuses a later page of a query without it, so these cases check that
// too.
func TestCustomerLookUpReadsEveryPage(t *testing.T) {
	ctx := context.Background()
	claimedNamed := func(fake *netsuitefake.Server, n int, name string) {
		for i := range n {
			fake.AddCustomer(netsuitefake.Customer{CompanyName: name, ExternalID: fmt.Sprintf("other-%d", i)})
		}
	}
	t.Run("more than 50 of the name claimed by others, then the company's", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		claimedNamed(fake, 51, "Acme GmbH")
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if err != nil || ref.ID != id || ref.Created || customerOf(fake, id).ExternalID != "C-1" {
			t.Fatalf("%+v, %v; want %s, claimed", ref, err, id)
		}
	})
	t.Run("more than 50 with the tax id claimed by others, then the company's", func(t *testing.T) {
		// Taken for "none", the tax-id rule would fall through to the
		// name rule, which finds nothing: a duplicate customer.
		fake, tg := setup(t, testRSAKey(t), nil)
		for i := range 51 {
			fake.AddCustomer(netsuitefake.Customer{CompanyName: fmt.Sprint("Other ", i), TaxNumber: "DE123456789", ExternalID: fmt.Sprint("other-", i)})
		}
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "ACME Germany", TaxNumber: "DE123456789"})
		ref, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if n := len(fake.Customers()); err != nil || ref.ID != id || ref.Created || n != 52 {
			t.Fatalf("%+v, %v, %d customers; want %s by tax id, no new one", ref, err, n, id)
		}
	})

	defer netsuite.SetCustomerPage(5)()
	t.Run("name, on the third page", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		claimedNamed(fake, 12, "Acme GmbH")
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		before := fake.Calls("POST suiteql")
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if n := len(fake.Customers()); err != nil || ref.ID != id || ref.Created || n != 13 {
			t.Fatalf("%+v, %v, %d customers; want %s, no new one", ref, err, n, id)
		}
		if n := fake.Calls("POST suiteql") - before; n != 3 {
			t.Errorf("%d queries, want 3 pages of 5", n)
		}
	})
	t.Run("tax id, on the second page", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		for i := range 5 {
			fake.AddCustomer(netsuitefake.Customer{CompanyName: fmt.Sprint("Other ", i), TaxNumber: "DE123456789", ExternalID: fmt.Sprint("other-", i)})
		}
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "ACME Germany", TaxNumber: "DE123456789"})
		ref, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != id || ref.Created {
			t.Fatalf("%+v, %v; want %s by tax id", ref, err, id)
		}
	})
	t.Run("two of the name, on two pages", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		claimedNamed(fake, 4, "Acme GmbH")
		a := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		b := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
			t.Fatalf("%v; want both refused as ambiguous, not the first taken", err)
		}
	})
	t.Run("two found: no more pages are read", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		claimedNamed(fake, 20, "Acme GmbH")
		before := fake.Calls("POST suiteql")
		_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "at least 2 customers") {
			t.Fatalf("%v; want at least 2 refused", err)
		}
		if n := fake.Calls("POST suiteql") - before; n != 1 {
			t.Errorf("%d queries, want 1", n)
		}
	})
	t.Run("more pages than are read", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		claimedNamed(fake, 5*netsuite.MaxCustomerPages+1, "Acme GmbH")
		before := fake.Calls("POST suiteql")
		_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "more than") || !strings.Contains(err.Error(), `"C-1"`) {
			t.Fatalf("%v; want a permanent failure saying to set the customer's external id", err)
		}
		if n := fake.Calls("POST suiteql") - before; n != netsuite.MaxCustomerPages {
			t.Errorf("%d queries, want %d", n, netsuite.MaxCustomerPages)
		}
		if fake.Calls("PUT customer") != 0 {
			t.Error("a customer was made although the look-up did not read every match")
		}
	})
}

// An upsert NetSuite refuses, whose follow-up read by external id fails
// for a passing reason (429): whether another attempt made the record is
// not known, so the step is retried (and the retry finds the invoice),
// not failed as a refusal that made nothing.
func TestRefusedUpsertWhoseReadFails(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	// The look-up finds nothing; the upsert is refused although the
	// invoice is made (another attempt's save committing); the read of it
	// is answered 429.
	var once atomic.Bool
	fake.AfterGet(func(typ string) {
		if typ == "invoice" && once.CompareAndSwap(false, true) {
			fake.Fail("GET invoice", netsuitefake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "2"})
		}
	})
	fake.Fail("PUT invoice", netsuitefake.Fault{Status: http.StatusBadRequest, AfterWork: true})
	// The step may have made the invoice: not "nothing sent", whatever
	// the read's 429 says of itself.
	tracked, wrote := connectors.TrackWrites(ctx)
	_, err = tg.CreateInvoice(tracked, inv, ref, "invoice/demo/D-1001/invoice")
	var api *connectors.APIError
	if cl, _ := connectors.Classify(err); cl != connectors.RetryAfter || !errors.As(err, &api) || api.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(err.Error(), "HTTP 400") || !wrote() {
		t.Fatalf("%v (class %v, wrote %v); want the read's 429, retried, naming the refusal, and the step marked as one that may have written", err, cl, wrote())
	}
	fake.AfterGet(nil)
	res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if invs := fake.Invoices(); err != nil || !res.Replayed || len(invs) != 1 || res.InvoiceID != invs[0].ID {
		t.Fatalf("retry: %+v, %v, invoices %+v; want the one made, replayed", res, err, invs)
	}
}

// A refused upsert whose record another attempt made is vetted as the
// look-up before the upsert vets it: an invoice that bills another
// customer (the deal's company changed between two attempts) is not
// reported as the deal's, and a customer that is inactive is named.
func TestRefusedUpsertWhoseRecordIsNotTheStepsOwn(t *testing.T) {
	ctx := context.Background()
	t.Run("invoice of another customer", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		inv := exampleInvoice()
		ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
		if err != nil {
			t.Fatal(err)
		}
		other, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Other AG"}, "invoice/demo/D-1001/customer2")
		if err != nil {
			t.Fatal(err)
		}
		const key = "invoice/demo/D-1001/invoice"
		// Between this attempt's look-up and its upsert, another attempt
		// (of the run before the company changed) makes the invoice for
		// the other customer; NetSuite refuses this attempt's upsert.
		var once atomic.Bool
		fake.AfterGet(func(typ string) {
			if typ == "invoice" && once.CompareAndSwap(false, true) {
				if _, err := tg.CreateInvoice(ctx, inv, other, key); err != nil {
					t.Errorf("the other attempt: %v", err)
				}
				fake.Fail("PUT invoice", netsuitefake.Fault{Status: http.StatusBadRequest})
			}
		})
		res, err := tg.CreateInvoice(ctx, inv, ref, key)
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "bills customer "+other.ID+", not "+ref.ID) {
			t.Fatalf("%+v, %v; want a permanent failure naming customers %s and %s", res, err, other.ID, ref.ID)
		}
	})
	t.Run("inactive customer", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		c := model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}
		eid := tg.CustomerExternalID(c.ExternalID)
		var once atomic.Bool
		fake.AfterGet(func(typ string) {
			if typ == "customer" && once.CompareAndSwap(false, true) {
				fake.AddCustomer(netsuitefake.Customer{CompanyName: c.Name, ExternalID: eid, Inactive: true})
				fake.Fail("PUT customer", netsuitefake.Fault{Status: http.StatusBadRequest})
			}
		})
		ref, err := tg.FindOrCreateCustomer(ctx, c, "invoice/demo/D-1001/customer")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "inactive") {
			t.Fatalf("%+v, %v; want the inactive customer named", ref, err)
		}
	})
}

// The token request carries the signed client assertion: it follows no
// redirect (Go's client would post it again where a 307 or 308 points,
// another host included), and a redirect fails the run saying where it
// points, without its query.
func TestTokenRequestFollowsNoRedirect(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var reached atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"stolen","expires_in":"3600","token_type":"bearer"}`))
			}))
			t.Cleanup(elsewhere.Close)
			redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/token?k=S3cret", status)
			}))
			t.Cleanup(redirect.Close)
			fake, tg := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.TokenURL = redirect.URL + netsuite.TokenPath })
			_, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
			if n := reached.Load(); n != 0 {
				t.Fatalf("the redirect was followed (%d requests elsewhere): %v", n, err)
			}
			if class(err) != connectors.Permanent || !erpkit.IsTokenFailure(err) || !strings.Contains(err.Error(), "redirect") ||
				!strings.Contains(err.Error(), elsewhere.URL+"/token") || strings.Contains(err.Error(), "S3cret") {
				t.Fatalf("%v (class %v); want a permanent token failure naming where it points, without its query", err, class(err))
			}
			if n := fake.Calls("GET customer") + fake.Calls("POST suiteql"); n != 0 {
				t.Errorf("%d API calls without a token", n)
			}
		})
	}
}
