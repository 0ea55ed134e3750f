package netsuite_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/connectors/netsuite/netsuitefake"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

const (
	account = "1234567_SB1"
	client  = "c0ffee-client-id"
	certID  = "cert-Xy12"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is one 3072-bit key (NetSuite's smallest) for the whole package (key generation is slow).
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// writeKey stores key as a PKCS#8 PEM file, as openssl writes it.
func writeKey(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "private.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func setup(t *testing.T, key crypto.Signer, edit func(*netsuite.Config)) (*netsuitefake.Server, *netsuite.Target) {
	t.Helper()
	return setupDeps(t, key, edit, netsuite.Deps{})
}

// setupDeps is setup with the target's collaborators (a clock, a logger).
func setupDeps(t *testing.T, key crypto.Signer, edit func(*netsuite.Config), deps netsuite.Deps) (*netsuitefake.Server, *netsuite.Target) {
	t.Helper()
	fake := netsuitefake.New(account, client, certID, key.Public())
	t.Cleanup(fake.Close)
	cfg := netsuite.DefaultConfig()
	cfg.AccountID, cfg.ClientID, cfg.CertificateID = account, client, certID
	cfg.PrivateKey = secret.New("file:" + writeKey(t, key))
	cfg.BaseURL, cfg.TokenURL, cfg.AppURL = fake.URL, fake.TokenURL(), "https://1234567-sb1.app.netsuite.com"
	cfg.LinkFile = filepath.Join(t.TempDir(), "links.json")
	cfg.DefaultItemID, cfg.DiscountItemID = "5", "9"
	// The fake lists no currencies unless a test gives it some: a
	// single-currency account, in EUR as the example invoices are.
	cfg.BaseCurrency = "EUR"
	if edit != nil {
		edit(&cfg)
	}
	tg, err := netsuite.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return fake, tg
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func exampleInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "D-1001", SourceDealID: "D-1001", Memo: "Acme annual",
		Customer:  model.Customer{ExternalID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", TaxID: "DE123456789"},
		Currency:  "EUR",
		IssueDate: model.NewDate(2026, 11, 20), DueDate: model.NewDate(2026, 12, 20),
		Lines: []model.InvoiceLine{
			{ItemCode: "17", Description: "Pro plan, 1 year", Quantity: d("1"), UnitPrice: d("12000.00"), TaxCode: "8"},
			{Description: "Onboarding", Quantity: d("2.5"), UnitPrice: d("99.50"), Discount: d("10"), TaxCode: "11"},
		},
	}
	inv.ComputeTotals()
	return inv
}

func class(err error) connectors.Class {
	c, _ := connectors.Classify(err)
	return c
}

func TestCustomerAndInvoiceExactlyOnce(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()

	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil || !ref.Created || ref.ID == "" {
		t.Fatalf("create customer: %+v %v", ref, err)
	}
	cs := fake.Customers()
	if len(cs) != 1 || cs[0].ExternalID != "C-1" || cs[0].CompanyName != "Acme GmbH" || cs[0].Email != "ap@acme.example" || cs[0].ID != ref.ID {
		t.Fatalf("customers %+v", cs)
	}

	// The invoice upsert is rate-limited, then done but its answer lost.
	fake.Fail("PUT invoice",
		netsuitefake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "7"},
		netsuitefake.Fault{Status: http.StatusBadGateway, AfterWork: true})
	const key = "invoice/demo/D-1001/invoice"
	_, err = tg.CreateInvoice(ctx, inv, ref, key)
	if c, delay := connectors.Classify(err); c != connectors.RetryAfter || delay != 7*time.Second {
		t.Fatalf("429: %v (class %v, delay %v)", err, c, delay)
	}
	var api *connectors.APIError
	if !errors.As(err, &api) || !strings.Contains(api.Message, "CONCURRENCY_LIMIT_EXCEEDED") {
		t.Errorf("429 message: %v", err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, key)
	// A gateway's 502 to a write: NetSuite may have made the invoice, so
	// the retry comes after the time a call may take.
	if c, wait := connectors.Classify(err); c != connectors.RetryAfter || wait != netsuite.DefaultTimeout {
		t.Fatalf("lost answer: %v (class %v, wait %v), want retried after %v", err, c, wait, netsuite.DefaultTimeout)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, key)
	if err != nil || !res.Replayed {
		t.Fatalf("retry: %+v %v", res, err)
	}
	invs := fake.Invoices()
	if len(invs) != 1 || fake.InvoiceUpserts() != 1 {
		t.Fatalf("NetSuite has %d invoices after %d upserts, want 1 and 1", len(invs), fake.InvoiceUpserts())
	}
	got := invs[0]
	if res.InvoiceID != got.ID || res.Number != got.TranID || got.ExternalID != netsuite.InvoiceExternalID(key) || got.Lines != 3 ||
		res.URL != "https://1234567-sb1.app.netsuite.com/app/accounting/transactions/custinvc.nl?id="+got.ID {
		t.Errorf("result %+v, invoice %+v", res, got)
	}
	var body netsuite.Invoice
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatal(err)
	}
	items := body.Item.Items
	if body.Entity.ID != ref.ID || body.TranDate != "2026-11-20" || body.DueDate != "2026-12-20" || body.OtherRefNum != "D-1001" ||
		body.Memo != "Acme annual" || body.Currency != nil || len(items) != 3 ||
		items[0].Item.ID != "17" || items[0].Rate != "12000" || items[0].Quantity != "1" || items[0].TaxCode == nil || items[0].TaxCode.ID != "8" ||
		items[1].Item.ID != "5" || items[1].Quantity != "2.5" || items[1].Rate != "99.5" || items[1].TaxCode == nil || items[1].TaxCode.ID != "11" ||
		// The discount line is taxed as the line it discounts, not as the
		// discount item's default code.
		items[2].Item.ID != "9" || items[2].Rate != "-10.00" || items[2].Quantity != "" || items[2].TaxCode == nil || items[2].TaxCode.ID != "11" {
		t.Errorf("body %s", got.Body)
	}

	// A fresh attempt with the same key (a re-run of the workflow) finds
	// the invoice by its external id and does not upsert again.
	res2, err := tg.CreateInvoice(ctx, inv, ref, key)
	if err != nil || !res2.Replayed || res2.InvoiceID != got.ID || res2.Number != got.TranID || fake.InvoiceUpserts() != 1 {
		t.Fatalf("re-run: %+v %v, upserts %d", res2, err, fake.InvoiceUpserts())
	}
	// A re-run after the deal's company changed: the step's invoice bills
	// another customer, and is not reported as this deal's.
	other := connectors.CustomerRef{ID: ref.ID + "0"}
	if res3, err := tg.CreateInvoice(ctx, inv, other, key); !errors.Is(err, connectors.ErrPermanent) ||
		!strings.Contains(err.Error(), "bills customer "+ref.ID+", not "+other.ID) || fake.InvoiceUpserts() != 1 {
		t.Fatalf("re-run for another customer: %+v %v, upserts %d", res3, err, fake.InvoiceUpserts())
	}
	// One token for all of it.
	if n := fake.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// NetSuite's upsert is idempotent by itself: the same PUT twice leaves one
// record, answered 204 with the same Location, and (replace=item) one copy
// of its item lines. The same PUT without replace appends them again.
func TestFakeUpsertIsIdempotent(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-9", Name: "Nine Ltd"}, "k/customer")
	if err != nil {
		t.Fatal(err)
	}
	// Make a token for raw calls through the target's own client: plan
	// the request, then send it twice with a fresh token.
	req, err := tg.PlanInvoice(exampleInvoice(), ref, "k/invoice")
	if err != nil {
		t.Fatal(err)
	}
	tok := rawToken(t, fake)
	var locs []string
	for i := 0; i < 2; i++ {
		hr, _ := http.NewRequest(req.Method, req.URL, strings.NewReader(string(req.Body)))
		hr.Header = req.Header.Clone()
		hr.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("upsert %d: %d", i, resp.StatusCode)
		}
		locs = append(locs, resp.Header.Get("Location"))
	}
	if _, n := fake.Counts(); n != 1 || locs[0] != locs[1] || !strings.Contains(locs[0], "/services/rest/record/v1/invoice/") {
		t.Fatalf("%d invoices, locations %q", n, locs)
	}
	if lines := fake.Invoices()[0].Lines; lines != 3 {
		t.Fatalf("%d item lines after the same upsert twice, want 3", lines)
	}
	appending, _, _ := strings.Cut(req.URL, "?")
	hr, _ := http.NewRequest(req.Method, appending, strings.NewReader(string(req.Body)))
	hr.Header = req.Header.Clone()
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if lines := fake.Invoices()[0].Lines; resp.StatusCode != http.StatusNoContent || lines != 6 {
		t.Fatalf("upsert without replace: %d, %d item lines; want 204 and 6 (NetSuite appends them)", resp.StatusCode, lines)
	}
}

// Two attempts of one invoice overlap (the first still running inside
// NetSuite when its activity times out): the second's look-up by external
// id finds nothing, then the first's upsert lands, then the second upserts
// as well. NetSuite updates the invoice the first made; replace=item keeps
// its item lines once instead of appending a second copy.
func TestRacingInvoiceAttemptsKeepTheLinesOnce(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	const key = "invoice/demo/D-1001/invoice"
	var (
		mu       sync.Mutex
		raced    bool
		first    connectors.InvoiceResult
		firstErr error
	)
	fake.AfterGet(func(recordType string) {
		mu.Lock()
		again := raced
		raced = raced || recordType == "invoice"
		mu.Unlock()
		if recordType != "invoice" || again {
			return
		}
		// The second attempt's look-up has found nothing: the first
		// attempt's upsert lands before that answer does.
		res, err := tg.CreateInvoice(ctx, inv, ref, key)
		mu.Lock()
		first, firstErr = res, err
		mu.Unlock()
	})
	second, err := tg.CreateInvoice(ctx, inv, ref, key)
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil || err != nil || !raced || fake.InvoiceUpserts() != 2 {
		t.Fatalf("attempts: %v, %v (raced %v, %d upserts); want two upserts", firstErr, err, raced, fake.InvoiceUpserts())
	}
	invs := fake.Invoices()
	if len(invs) != 1 || first.InvoiceID != invs[0].ID || second.InvoiceID != invs[0].ID {
		t.Fatalf("invoices %+v, attempts %+v and %+v; want one invoice", invs, first, second)
	}
	if invs[0].Lines != 3 {
		t.Errorf("the invoice has %d item lines after two racing upserts, want 3 (one copy)", invs[0].Lines)
	}
}

// Every sublist of the invoice body is named in the upsert's replace
// parameter: one that is not would have its lines appended by an upsert
// that meets the invoice of a racing attempt.
func TestInvoiceSublistsAreReplaced(t *testing.T) {
	replaced := strings.Split(netsuite.InvoiceSublists, ",")
	typ := reflect.TypeFor[netsuite.Invoice]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !strings.HasPrefix(f.Type.Name(), "Sublist[") {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !slices.Contains(replaced, name) {
			t.Errorf("sublist %s (%s) is not in InvoiceSublists %q", f.Name, name, netsuite.InvoiceSublists)
		}
	}
	if !slices.Contains(replaced, "item") {
		t.Errorf("InvoiceSublists %q does not name item", netsuite.InvoiceSublists)
	}
}

// rawToken gets an access token from the fake with a correct assertion.
func rawToken(t *testing.T, fake *netsuitefake.Server) string {
	t.Helper()
	now := time.Now()
	jwt, err := netsuite.SignAssertion(netsuite.Assertion{Issuer: client, Scope: "rest_webservices", Audience: fake.TokenURL(),
		IssuedAt: now.Unix(), Expires: now.Add(time.Minute).Unix()}, "PS256", certID, testRSAKey(t))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(fake.TokenURL(), map[string][]string{"grant_type": {"client_credentials"},
		"client_assertion_type": {netsuite.ClientAssertionType}, "client_assertion": {jwt}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || raw["access_token"] == "" || raw["expires_in"] != "3600" {
		t.Fatalf("token answer %v %v", raw, err)
	}
	return raw["access_token"]
}

func TestMatchingRules(t *testing.T) {
	ctx := context.Background()
	t.Run("external id", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		id := fake.AddCustomer(netsuitefake.Customer{ExternalID: "C-1", CompanyName: "Acme (renamed)"})
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if err != nil || ref.ID != id || ref.Created {
			t.Fatalf("%+v %v", ref, err)
		}
		if fake.Calls("POST suiteql") != 0 {
			t.Error("searched although the external id matched")
		}
	})
	t.Run("a company without a CRM id keeps its run's external id", func(t *testing.T) {
		// A later run of the deal whose company was renamed: the customer
		// key's digest differs, the external id (from the run's key) not,
		// so the customer made by the first run is found, not made again.
		fake, tg := setup(t, testRSAKey(t), nil)
		const run = "invoice/demo/D-77/customer"
		first := model.Customer{Name: "Walk-in Shop"}
		ref, err := tg.FindOrCreateCustomer(ctx, first, connectors.CustomerKey(run, first))
		if err != nil || !ref.Created {
			t.Fatalf("first run: %+v %v", ref, err)
		}
		renamed := model.Customer{Name: "Walk-in Shop Ltd"}
		again, err := tg.FindOrCreateCustomer(ctx, renamed, connectors.CustomerKey(run, renamed))
		if err != nil || again.ID != ref.ID || len(fake.Customers()) != 1 {
			t.Errorf("later run, renamed: %+v %v, %d customers; want %s found by its external id", again, err, len(fake.Customers()), ref.ID)
		}
	})
	t.Run("prefix", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.CustomerExternalIDPrefix = "hubspot-" })
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "4711", Name: "Prefixed AG"}, "k")
		if err != nil || !ref.Created || fake.Customers()[0].ExternalID != "hubspot-4711" {
			t.Fatalf("%+v %v %+v", ref, err, fake.Customers())
		}
	})
	t.Run("tax id", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH", TaxNumber: "DE999", ExternalID: "other-system-1"})
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "ACME Germany", TaxNumber: "DE123456789"})
		ref, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if err != nil || ref.ID != id || ref.Created {
			t.Fatalf("%+v %v", ref, err)
		}
		// Claimed: its external id is the company's now, and another
		// company with the same tax id does not take it.
		if c := customerOf(fake, id); c.ExternalID != "C-1" || c.CompanyName != "ACME Germany" {
			t.Fatalf("customer after the match: %+v; want external id C-1", c)
		}
		other := exampleInvoice().Customer
		other.ExternalID, other.Name = "C-2", "Acme Zwei"
		ref2, err := tg.FindOrCreateCustomer(ctx, other, "k2")
		if err != nil || ref2.ID == id || !ref2.Created {
			t.Fatalf("second company with the tax id: %+v %v; want a new customer, not %s", ref2, err, id)
		}
	})
	t.Run("a claim NetSuite refuses leaves the match standing, unclaimed and unlinked", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		fake.Fail("PATCH customer", netsuitefake.Fault{Status: http.StatusBadRequest})
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if err != nil || ref.ID != id || customerOf(fake, id).ExternalID != "" || fake.Calls("PATCH customer") != 1 {
			t.Fatalf("got %+v, %v; want %s taken, unclaimed after one refused claim", ref, err, id)
		}
		// Not linked: the company's next deal looks it up (and claims it) afresh.
		again, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k2")
		if err != nil || again.ID != id || fake.Calls("PATCH customer") != 2 || customerOf(fake, id).ExternalID != "C-1" {
			t.Fatalf("next deal: %+v, %v (%d claims); want %s claimed now", again, err, fake.Calls("PATCH customer"), id)
		}
	})
	t.Run("a claim whose answer is lost: the retry finds the customer by its external id", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		fake.Fail("PATCH customer", netsuitefake.Fault{Status: http.StatusServiceUnavailable, AfterWork: true})
		c := model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}
		if _, err := tg.FindOrCreateCustomer(ctx, c, "k"); class(err) != connectors.RetryAfter {
			t.Fatalf("lost claim: %v; want it retried after the target's timeout (a 503 without Retry-After to a write)", err)
		}
		ref, err := tg.FindOrCreateCustomer(ctx, c, "k")
		if err != nil || ref.ID != id || fake.Calls("PATCH customer") != 1 || customerOf(fake, id).ExternalID != "C-1" {
			t.Fatalf("retry: %+v %v (%d claims); want %s claimed once", ref, err, fake.Calls("PATCH customer"), id)
		}
	})
	t.Run("two with the tax id", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "A", TaxNumber: "DE123456789"})
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "B", TaxNumber: "DE123456789"})
		_, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "2 customers") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("exact name only", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "acme gmbh"})
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH & Co. KG"})
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH", Inactive: true})
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if err != nil || ref.ID != id || ref.Created || customerOf(fake, id).ExternalID != "C-1" {
			t.Fatalf("%+v %v; want %s, claimed", ref, err, id)
		}
	})
	t.Run("name of another company", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		fake.AddCustomer(netsuitefake.Customer{CompanyName: "O'Brien & Sons", ExternalID: "C-77"})
		_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "O'Brien & Sons"}, "k")
		if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "C-77") {
			t.Fatalf("%v", err)
		}
		if c, _ := fake.Counts(); c != 1 {
			t.Errorf("%d customers, want no new one", c)
		}
	})
	t.Run("link store", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k1")
		if err != nil {
			t.Fatal(err)
		}
		before, searches := fake.Calls("GET customer"), fake.Calls("POST suiteql")
		again, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k2")
		// One read of the linked customer, to check it is still there
		// and active; no look-up by external id, tax id or name.
		if err != nil || again.ID != ref.ID || again.Created || fake.Calls("GET customer") != before+1 || fake.Calls("POST suiteql") != searches {
			t.Fatalf("%+v %v; %d reads, %d searches", again, err, fake.Calls("GET customer")-before, fake.Calls("POST suiteql")-searches)
		}
	})
	// A link to a customer since deleted or made inactive is forgotten, and
	// the company's customer looked up afresh, instead of every invoice of
	// the company being refused with NetSuite's "Invalid value … 'entity'".
	t.Run("stale link", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			stale   func(*netsuitefake.Server, string)
			wantNew bool
		}{
			{"deleted", func(f *netsuitefake.Server, id string) { f.DeleteCustomer(id) }, true},
			{"inactive, its external id cleared", func(f *netsuitefake.Server, id string) {
				f.EditCustomer(id, func(c *netsuitefake.Customer) { c.Inactive, c.ExternalID = true, "" })
			}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fake, tg := setup(t, testRSAKey(t), nil)
				first, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k1")
				if err != nil {
					t.Fatal(err)
				}
				tc.stale(fake, first.ID)
				again, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k2")
				if err != nil || again.ID == first.ID || again.Created != tc.wantNew {
					t.Fatalf("after the linked customer went: %+v %v", again, err)
				}
				// The new customer is linked in the old one's place.
				third, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k3")
				if err != nil || third.ID != again.ID || third.Created {
					t.Fatalf("the next deal: %+v %v, want %s", third, err, again.ID)
				}
			})
		}
		t.Run("inactive, its external id kept", func(t *testing.T) {
			fake, tg := setup(t, testRSAKey(t), nil)
			first, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k1")
			if err != nil {
				t.Fatal(err)
			}
			fake.EditCustomer(first.ID, func(c *netsuitefake.Customer) { c.Inactive = true })
			_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-5", Name: "Five"}, "k2")
			if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "inactive") || !strings.Contains(err.Error(), first.ID) {
				t.Fatalf("want the inactive customer named: %v", err)
			}
			if n, _ := fake.Counts(); n != 1 {
				t.Errorf("%d customers, want no new one", n)
			}
		})
	})
	t.Run("no company id", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		// The create's answer is lost; the retry with the same key finds it.
		fake.Fail("PUT customer", netsuitefake.Fault{Status: http.StatusInternalServerError, AfterWork: true})
		c := model.Customer{Name: "Walk-in Customer"}
		if _, err := tg.FindOrCreateCustomer(ctx, c, "wf/customer"); class(err) != connectors.Retry {
			t.Fatalf("lost answer: %v", err)
		}
		ref, err := tg.FindOrCreateCustomer(ctx, c, "wf/customer")
		if n, _ := fake.Counts(); err != nil || n != 1 || ref.ID != fake.Customers()[0].ID {
			t.Fatalf("%+v %v, %d customers", ref, err, n)
		}
	})
	t.Run("no company id, a later deal", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		c := model.Customer{Name: "Walk-in Customer"}
		first, err := tg.FindOrCreateCustomer(ctx, c, "invoice/hs/62515/D-1/customer")
		if err != nil || !first.Created || !strings.HasPrefix(fake.Customers()[0].ExternalID, "dealsync-invoice_") {
			t.Fatalf("first deal: %+v %v %+v", first, err, fake.Customers())
		}
		// The next deal of the same id-less company (another key) takes it
		// instead of being refused as a name another record claims.
		second, err := tg.FindOrCreateCustomer(ctx, c, "invoice/hs/62515/D-2/customer")
		if n, _ := fake.Counts(); err != nil || second.ID != first.ID || second.Created || n != 1 || fake.Calls("PATCH customer") != 0 {
			t.Fatalf("second deal: %+v %v, %d customers, %d claims; want %s, unclaimed", second, err, n, fake.Calls("PATCH customer"), first.ID)
		}
		// A company with an id is still not given that customer by name.
		if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-9", Name: "Walk-in Customer"}, "invoice/hs/62515/D-3/customer"); class(err) != connectors.Permanent {
			t.Fatalf("a company with an id: %v, want the name refused as another record's", err)
		}
	})
}

func TestErrors(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()

	// Validation: the vendor's message and element, not retried.
	_, err := tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "4040"}, "k/invoice")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 400 || api.Field != "entity" ||
		!strings.Contains(api.Message, "Invalid value for the resource or sub-resource field 'entity'") || !strings.Contains(api.Message, "INVALID_VALUE") {
		t.Fatalf("validation: %v", err)
	}
	if class(err) != connectors.Permanent {
		t.Errorf("validation class %v", class(err))
	}
	fake.Items = map[string]bool{"17": true}
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(ctx, inv, ref, "k/invoice")
	if !errors.As(err, &api) || api.Field != "item.items[1].item" || class(err) != connectors.Permanent {
		t.Fatalf("bad item: %v", err)
	}
	fake.Items = nil

	// 5xx: retried with backoff.
	fake.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusServiceUnavailable})
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Two"}, "k2")
	if class(err) != connectors.Retry || !errors.As(err, &api) || api.StatusCode != 503 {
		t.Fatalf("503: %v", err)
	}

	// A mapping that cannot become a NetSuite invoice: permanent, nothing sent.
	bad := inv
	bad.Lines = []model.InvoiceLine{{Description: "x", Quantity: d("1"), UnitPrice: d("1"), Discount: d("1")}}
	tg2 := func() *netsuite.Target {
		_, t2 := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.DiscountItemID = "" })
		return t2
	}()
	if _, err := tg2.CreateInvoice(ctx, bad, ref, "k3"); class(err) != connectors.Permanent || !strings.Contains(err.Error(), "discount_item_id") {
		t.Fatalf("unmappable: %v", err)
	}
}

func TestTokens(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	c := model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}
	if _, err := tg.FindOrCreateCustomer(ctx, c, "k"); err != nil {
		t.Fatal(err)
	}
	// The access token expires (or is revoked): one new token, then on.
	fake.ExpireAccessTokens()
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "Two"}, "k2"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := fake.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
	// The certificate is revoked: a clear, non-retryable error naming the account.
	fake.RevokeCertificate()
	fake.ExpireAccessTokens()
	_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-3", Name: "Three"}, "k3")
	if class(err) != connectors.Unauthorized || !strings.Contains(err.Error(), "NetSuite account "+account) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("revoked: %v", err)
	}
	// The token endpoint is overloaded: retried, not a credentials problem.
	fake2, tg2 := setup(t, testRSAKey(t), nil)
	fake2.Fail("POST token", netsuitefake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3"})
	_, err = tg2.FindOrCreateCustomer(ctx, c, "k")
	if cl, delay := connectors.Classify(err); cl != connectors.RetryAfter || delay != 3*time.Second {
		t.Fatalf("token 429: %v", err)
	}
	if _, err := tg2.FindOrCreateCustomer(ctx, c, "k"); err != nil {
		t.Fatal(err)
	}
}

// A token the API keeps refusing after a new one (the role lost its
// login permission, say): exactly one new token, then Unauthorized naming
// the account.
func TestUnauthorizedAfterNewToken(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "A"}, "k"); err != nil {
		t.Fatal(err)
	}
	fake.RefuseLogins()
	_, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-2", Name: "B"}, "k2")
	if class(err) != connectors.Unauthorized || !strings.Contains(err.Error(), "NetSuite account "+account) ||
		!strings.Contains(err.Error(), "INVALID_LOGIN") {
		t.Fatalf("%v", err)
	}
	// Client credentials have no consent to renew: the message points at
	// where NetSuite says why.
	if !strings.Contains(err.Error(), "Login Audit Trail") || strings.Contains(err.Error(), "re-authorize") {
		t.Errorf("advice: %v", err)
	}
	if n := fake.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (one new token, no more)", n)
	}
}

// A 403 (a SuiteQL look-up of a role without SuiteAnalytics Workbook, say)
// names the permissions the role needs, not an OAuth app's scopes.
func TestForbiddenNamesTheRolesPermissions(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	fake.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusForbidden})
	_, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "A", TaxID: "DE1"}, "k")
	if class(err) != connectors.Unauthorized || !strings.Contains(err.Error(), "SuiteAnalytics Workbook") || strings.Contains(err.Error(), "scopes") {
		t.Fatalf("%v (%v)", err, class(err))
	}
}

func TestES256(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fake, tg := setup(t, key, nil)
	if _, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "EC"}, "k"); err != nil {
		t.Fatal(err)
	}
	if fake.TokenRequests() != 1 {
		t.Fatal("no token")
	}
	// An RSA-only algorithm with an EC key is refused at start.
	cfg := netsuite.DefaultConfig()
	cfg.AccountID, cfg.ClientID, cfg.CertificateID, cfg.Algorithm = account, client, certID, "PS256"
	cfg.PrivateKey = secret.New("file:" + writeKey(t, key))
	if _, err := netsuite.New(cfg, netsuite.Deps{}); err == nil || !strings.Contains(err.Error(), "PS256") {
		t.Fatalf("PS256 with an EC key: %v", err)
	}
}

// An RSASSA-PSS private key, as Oracle's guide makes it (openssl
// -newkey rsa-pss: PKCS#8 with the id-RSASSA-PSS algorithm, which Go's
// parser does not know), signs the token request; an RSA key of another
// size than NetSuite accepts (3072 or 4096 bits) is refused at start,
// saying so.
func TestRSAPSSKeysAndKeySizes(t *testing.T) {
	key := testRSAKey(t)
	inner := x509.MarshalPKCS1PrivateKey(key)
	der, err := asn1.Marshal(struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}}, inner})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pss.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	fake, tg := setup(t, key, func(c *netsuite.Config) { c.PrivateKey = secret.New("file:" + path) })
	if _, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "PSS"}, "k"); err != nil || fake.TokenRequests() != 1 {
		t.Fatalf("with an RSASSA-PSS key: %v after %d token requests", err, fake.TokenRequests())
	}

	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := netsuite.DefaultConfig()
	cfg.AccountID, cfg.ClientID, cfg.CertificateID = account, client, certID
	cfg.PrivateKey = secret.New("file:" + writeKey(t, small))
	if _, err := netsuite.New(cfg, netsuite.Deps{}); err == nil || !strings.Contains(err.Error(), "the RSA key has 2048 bits; NetSuite accepts 3072 or 4096") {
		t.Fatalf("a 2048-bit key: %v, want it refused naming the sizes NetSuite accepts", err)
	}
}

// The plan says what a run decides from the account's currencies: without
// currency_ids, whether the body gets a currency; with them, the body has
// it and no note is needed.
func TestPlanSaysWhatTheAccountsCurrenciesDecide(t *testing.T) {
	inv := exampleInvoice()
	_, tg := setup(t, testRSAKey(t), nil)
	req, err := tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k")
	if err != nil || strings.Contains(string(req.Body), `"currency"`) || !strings.Contains(req.Note, "a run reads the account's currencies first") {
		t.Errorf("without currency_ids: %v, body %s, note %q", err, req.Body, req.Note)
	}
	_, tg = setup(t, testRSAKey(t), func(c *netsuite.Config) { c.CurrencyIDs = map[string]string{string(inv.Currency): "4", "USD": "1"} })
	req, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k")
	if err != nil || !strings.Contains(string(req.Body), `"currency":{"id":"4"}`) || req.Note != "" {
		t.Errorf("with currency_ids: %v, body %s, note %q; want the currency and no note", err, req.Body, req.Note)
	}
}

func TestPlanInvoiceMasksSecrets(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	req, err := tg.PlanInvoice(exampleInvoice(), connectors.CustomerRef{ID: "42"}, "invoice/demo/D-1001/invoice")
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPut || req.URL != fake.URL+"/services/rest/record/v1/invoice/eid:"+netsuite.InvoiceExternalID("invoice/demo/D-1001/invoice")+"?replace=item" {
		t.Errorf("request %s %s", req.Method, req.URL)
	}
	if req.Header.Get("Authorization") != "Bearer ********" {
		t.Errorf("authorization %q", req.Header.Get("Authorization"))
	}
	all, _ := json.Marshal(req)
	if strings.Contains(string(all), "PRIVATE KEY") || strings.Contains(string(all), "ns-access") {
		t.Errorf("plan leaks a secret: %s", all)
	}
	if fake.TokenRequests() != 0 || fake.Calls("PUT invoice") != 0 {
		t.Error("planning sent requests")
	}
}

func TestExternalIDs(t *testing.T) {
	key := "invoice/demo/D-1001/invoice"
	eid := netsuite.InvoiceExternalID(key)
	if eid != netsuite.InvoiceExternalID(key) || eid == netsuite.InvoiceExternalID("invoice/demo/D-1002/invoice") || len(eid) > netsuite.MaxExternalID {
		t.Fatalf("InvoiceExternalID(%q) = %q", key, eid)
	}
	for _, r := range eid {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			t.Fatalf("%q has %q", eid, r)
		}
	}
	long := strings.Repeat("x", 100) + "/invoice"
	if e := netsuite.InvoiceExternalID(long); len(e) > netsuite.MaxExternalID || e == netsuite.InvoiceExternalID(strings.Repeat("x", 100)+"/customer") {
		t.Errorf("long key: %q", e)
	}
	if netsuite.ExternalID("C-1") != "C-1" {
		t.Error("a legal company id is not kept as it is")
	}
	if netsuite.AccountHost("1234567_SB1") != "1234567-sb1" {
		t.Error("AccountHost")
	}
	spec, ok := connectors.LookupTarget("netsuite")
	if !ok {
		t.Fatal("not registered")
	}
	if _, ok := spec.NewConfig().(*netsuite.Config); !ok {
		t.Error("NewConfig")
	}
}

// customerOf is the fake's customer with the internal id.
func customerOf(f *netsuitefake.Server, id string) netsuitefake.Customer {
	for _, c := range f.Customers() {
		if c.ID == id {
			return c
		}
	}
	return netsuitefake.Customer{}
}

// An item is an internal id: a line without one, or with a CRM's SKU as
// its item code, is refused before anything is sent, saying what to map.
func TestLinesNeedAnItemsInternalID(t *testing.T) {
	_, tg := setup(t, testRSAKey(t), func(c *netsuite.Config) { c.DefaultItemID = "" })
	inv := exampleInvoice()
	inv.Lines[0].ItemCode = "PRO-1Y"
	_, err := tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k")
	if err == nil || !strings.Contains(err.Error(), `lines[0]: item_code "PRO-1Y" is not a NetSuite internal id`) {
		t.Errorf("a SKU as item_code: %v", err)
	}
	inv.Lines[0].ItemCode = ""
	_, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k")
	if err == nil || !strings.Contains(err.Error(), "lines[0]: NetSuite needs an item") {
		t.Errorf("no item and no default_item_id: %v", err)
	}
	// A tax code's name where its internal id is wanted is refused before
	// anything is sent (NetSuite answered "Invalid value" at run time).
	inv.Lines[0].ItemCode, inv.Lines[0].TaxCode = "17", "VAT19"
	_, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k")
	if err == nil || !strings.Contains(err.Error(), `lines[0]: tax_code "VAT19" is not a NetSuite internal id`) {
		t.Errorf("a tax code's name as tax_code: %v", err)
	}
	inv.Lines[0].TaxCode = "8"
	inv.Lines = inv.Lines[:1]
	if _, err = tg.PlanInvoice(inv, connectors.CustomerRef{ID: "42"}, "k"); err != nil {
		t.Errorf("a tax code's internal id: %v", err)
	}
}

// The company's customer (by its external id) is inactive: NetSuite would
// refuse the invoice naming only the field, so the customer step fails
// saying which customer and what to do.
func TestInactiveCustomerOfTheCompanyIsNamed(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	c := exampleInvoice().Customer
	id := fake.AddCustomer(netsuitefake.Customer{CompanyName: c.Name, ExternalID: tg.CustomerExternalID(c.ExternalID), Inactive: true})
	_, err := tg.FindOrCreateCustomer(context.Background(), c, "invoice/demo/D-1001/customer")
	if class(err) != connectors.Permanent || !strings.Contains(err.Error(), "customer "+id) || !strings.Contains(err.Error(), "inactive") {
		t.Fatalf("%v; want a permanent error naming inactive customer %s", err, id)
	}
	if n := len(fake.Customers()); n != 1 {
		t.Fatalf("%d customers, want the inactive one only", n)
	}
}

// An upsert NetSuite refuses while its record exists under its external id
// (another attempt of the step, still saving when this one looked, made
// it: NetSuite refuses the second create): the record is the step's, so
// the step succeeds with it instead of failing with the invoice made.
func TestRefusedUpsertWhoseRecordExists(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	fake.Fail("PUT invoice", netsuitefake.Fault{Status: http.StatusBadRequest, AfterWork: true})
	res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if invs := fake.Invoices(); err != nil || len(invs) != 1 || res.InvoiceID != invs[0].ID {
		t.Fatalf("%+v, %v; invoices %+v: want the one made", res, err, invs)
	}
	// Refused without a record: the refusal stands.
	fake.Fail("PUT invoice", netsuitefake.Fault{Status: http.StatusBadRequest})
	if _, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1002/invoice"); class(err) != connectors.Permanent {
		t.Fatalf("a refusal without a record: %v", err)
	}
}

// A 404 of the token endpoint (a gateway that lost the route, say) is not
// NetSuite's "no such record": the look-up was never sent. Taken for one,
// CreateInvoice would write the step's invoice without checking the one an
// earlier attempt made (and whom it bills), and FindOrCreateCustomer would
// go on to search and create; both report the token endpoint's failure
// instead, as it is (a 404: Permanent), and send nothing more.
func TestTokenEndpoint404IsNotARecordNotFound(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	tokenRefused := func(t *testing.T, err error) {
		t.Helper()
		var api *connectors.APIError
		if !erpkit.IsTokenFailure(err) || !errors.As(err, &api) || api.StatusCode != http.StatusNotFound || api.Op != "get token" || class(err) != connectors.Permanent {
			t.Fatalf("%v (class %v); want the token endpoint's 404, Permanent", err, class(err))
		}
	}

	fake.ExpireAccessTokens()
	fake.Fail("POST token", netsuitefake.Fault{Status: http.StatusNotFound})
	_, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	tokenRefused(t, err)
	if n := fake.Calls("PUT invoice"); n != 0 {
		t.Errorf("%d invoice upserts after the look-up got no token; want none", n)
	}

	queries := fake.Calls("POST suiteql")
	fake.ExpireAccessTokens()
	fake.Fail("POST token", netsuitefake.Fault{Status: http.StatusNotFound})
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-9", Name: "Nine"}, "invoice/demo/D-1009/customer")
	tokenRefused(t, err)
	if n, c := fake.Calls("POST suiteql")-queries, fake.Calls("PUT customer"); n != 0 || c != 1 {
		t.Errorf("%d searches and %d customer upserts in all after the look-up got no token; want no search and only the first customer's upsert", n, c)
	}

	// The token endpoint back: the invoice is made, once.
	res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || res.InvoiceID == "" || len(fake.Invoices()) != 1 {
		t.Fatalf("%+v, %v; want the invoice", res, err)
	}
}

// A write whose token the token endpoint refuses as a bad request (400,
// Permanent) was never sent: it is not NetSuite refusing the write. A
// claim is not taken as refused for good (the match used unclaimed and
// unlinked), and an upsert does not look for the record another attempt
// may have made; both report the token endpoint's refusal as it is.
func TestTokenRefusalIsNotARefusedWrite(t *testing.T) {
	ctx := context.Background()
	tokenRefused := func(t *testing.T, err error) {
		t.Helper()
		var api *connectors.APIError
		if !erpkit.IsTokenFailure(err) || !errors.As(err, &api) || api.StatusCode != http.StatusBadRequest || api.Op != "get token" || class(err) != connectors.Permanent {
			t.Fatalf("%v (class %v); want the token endpoint's 400, Permanent", err, class(err))
		}
	}
	t.Run("claim", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		if _, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-0", Name: "Zero"}, "k0"); err != nil {
			t.Fatal(err)
		}
		id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
		// The claim is answered 401; the new token it asks for, 400.
		fake.Fail("PATCH customer", netsuitefake.Fault{Status: http.StatusUnauthorized})
		fake.Fail("POST token", netsuitefake.Fault{Status: http.StatusBadRequest})
		ref, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if ref.ID != "" {
			t.Fatalf("got %+v; want no customer while the claim could not be sent", ref)
		}
		tokenRefused(t, err)
		// Retried with the token endpoint back: claimed and linked.
		again, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "C-1", Name: "Acme GmbH"}, "k")
		if err != nil || again.ID != id || customerOf(fake, id).ExternalID != "C-1" {
			t.Fatalf("retry: %+v, %v; want %s claimed", again, err, id)
		}
	})
	t.Run("upsert", func(t *testing.T) {
		fake, tg := setup(t, testRSAKey(t), nil)
		inv := exampleInvoice()
		ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
		if err != nil {
			t.Fatal(err)
		}
		fake.Fail("PUT invoice", netsuitefake.Fault{Status: http.StatusUnauthorized})
		fake.Fail("POST token", netsuitefake.Fault{Status: http.StatusBadRequest})
		_, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
		tokenRefused(t, err)
		if n := fake.Calls("GET invoice"); n != 1 {
			t.Errorf("%d invoice reads; want only the look-up before the upsert, none for a refusal that was the token endpoint's", n)
		}
		if res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice"); err != nil || len(fake.Invoices()) != 1 {
			t.Fatalf("retry: %+v, %v; want the invoice", res, err)
		}
	})
}

// NetSuite computes the tax itself (its REST API supports only SuiteTax,
// whose engine decides): when the total of the invoice it made is not the
// invoice's, the result carries a warning naming both, for the run to
// show; when they agree, none.
func TestATotalNetSuiteComputedOtherwiseIsAWarning(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines[0].TaxRate = d("19")
	inv.ComputeTotals()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	fake.TaxRates = map[string]decimal.Decimal{"8": d("19")}
	res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || res.Warning != "" {
		t.Fatalf("totals that agree (%s): %+v, %v; want no warning", inv.Total, res, err)
	}
	fake.TaxRates = map[string]decimal.Decimal{"8": d("20")} // the account taxes the line at 20 %
	res, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1002/invoice")
	if err != nil || !strings.Contains(res.Warning, "is EUR 14638.75, not the invoice's EUR 14518.75") ||
		!strings.Contains(res.Warning, "NetSuite computed its own tax") {
		t.Fatalf("totals that differ: %+v, %v; want a warning naming both", res, err)
	}
}

// NetSuite validates a customer's email: a CRM value that is not one
// address ("n/a", a list of two) made the customer upsert fail (400), and
// with it every deal of the company. Such a value is left out of the new
// customer, with a warning; one address is sent as it is.
func TestCustomerEmailNetSuiteWouldRefuseIsLeftOut(t *testing.T) {
	for email, want := range map[string]string{
		" ap@acme.example ": "ap@acme.example", "": "",
		"n/a": "", "a@x.de; b@x.de": "", "a@x.de, b@x.de": "", "Acme AP <ap@acme.example>": "", "ap@localhost": "", "ap@acme": "",
		"info@müller.de": "", "jörg@acme.example": "",
	} {
		if got := netsuite.NewCustomer(model.Customer{Name: "Acme GmbH", Email: email}, "", "").Email; got != want {
			t.Errorf("%q: email %q, want %q", email, got, want)
		}
	}
	var logs bytes.Buffer
	fake, tg := setupDeps(t, testRSAKey(t), nil, netsuite.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := exampleInvoice().Customer
	c.Email = "ap@acme.example, billing@acme.example"
	ref, err := tg.FindOrCreateCustomer(context.Background(), c, "invoice/demo/D-1001/customer")
	if err != nil || !ref.Created {
		t.Fatalf("%+v, %v; want the customer made without the e-mail address", ref, err)
	}
	if got := customerOf(fake, ref.ID); got.CompanyName != "Acme GmbH" || got.Email != "" {
		t.Errorf("customer %+v, want no email", got)
	}
	if !strings.Contains(logs.String(), "e-mail address is not one address NetSuite would take") {
		t.Errorf("no warning logged: %s", logs.String())
	}
}

// NetSuite taxes a line's discount (a line of the discount item) apart
// from the line, rounding both, where dealsync rounds the tax of the
// discounted amount once: 10.05 less 0.04 at 10 % is 10.01 + 1.00 in
// dealsync, 10.05 + 1.01 − 0.04 − 0.00 in NetSuite. A minor unit per taxed
// discounted line is no difference; more still is.
func TestADiscountTaxedApartIsNotADifference(t *testing.T) {
	fake, tg := setup(t, testRSAKey(t), nil)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Lines = []model.InvoiceLine{{ItemCode: "17", Description: "Pro", Quantity: d("1"), UnitPrice: d("10.05"), Discount: d("0.04"), TaxRate: d("10"), TaxCode: "8"}}
	inv.ComputeTotals()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
	if err != nil {
		t.Fatal(err)
	}
	fake.TaxRates = map[string]decimal.Decimal{"8": d("10")}
	res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
	if err != nil || res.Warning != "" {
		t.Fatalf("%+v, %v; want no warning", res, err)
	}
	if got := fake.Invoices()[0].Total; !got.Equal(d("11.02")) || !inv.Total.Equal(d("11.01")) {
		t.Fatalf("NetSuite's total %s, the invoice's %s: the test wants them a cent apart", got, inv.Total)
	}
	fake.TaxRates = map[string]decimal.Decimal{"8": d("11")} // 11.12: not a rounding
	res, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1002/invoice")
	if err != nil || !strings.Contains(res.Warning, "is EUR 11.12, not the invoice's EUR 11.01") {
		t.Fatalf("%+v, %v; want a warning", res, err)
	}
}

// A worker whose clock is ahead makes assertions whose iat lies in
// NetSuite's future, and NetSuite answers 400 invalid_request: not bad
// credentials (the advice to check client_id and the certificate sent
// operators the wrong way), but a request to mend, so Permanent, with
// NetSuite's error and the clock named. invalid_grant stays Unauthorized
// (TestTokens).
func TestTokenRefusedForTheClockIsNotACredentialsProblem(t *testing.T) {
	var ahead atomic.Bool
	now := func() time.Time {
		if ahead.Load() {
			return time.Now().Add(10 * time.Minute)
		}
		return time.Now()
	}
	ctx := context.Background()
	t.Run("no token", func(t *testing.T) {
		ahead.Store(true)
		defer ahead.Store(false)
		_, tg := setupDeps(t, testRSAKey(t), nil, netsuite.Deps{Now: now})
		_, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
		var api *connectors.APIError
		if class(err) != connectors.Permanent || !errors.As(err, &api) || api.Credentials {
			t.Fatalf("%v (class %v); want Permanent, not a credentials error", err, class(err))
		}
		for _, want := range []string{"NetSuite account " + account, "invalid_request", "iat must not be in the future", "clock", "NTP"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v; want it to say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "check client_id") {
			t.Errorf("%v; blames the credentials", err)
		}
	})
	t.Run("no token for the currency query", func(t *testing.T) {
		// A token refused on the way to the account's currencies is not
		// an account whose currency list cannot be read.
		fake, tg := setupDeps(t, testRSAKey(t), func(c *netsuite.Config) { c.BaseCurrency = "" }, netsuite.Deps{Now: now})
		fake.SetCurrencies(map[string]string{"1": "EUR", "2": "USD"}, "1")
		inv := exampleInvoice()
		ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "invoice/demo/D-1001/customer")
		if err != nil {
			t.Fatal(err)
		}
		fake.AfterGet(func(typ string) {
			if typ == "invoice" && !ahead.Load() {
				ahead.Store(true)
				fake.ExpireAccessTokens()
			}
		})
		_, err = tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
		if err == nil || !strings.Contains(err.Error(), "invalid_request") || strings.Contains(err.Error(), "base_currency") {
			t.Fatalf("%v; want the token's refusal", err)
		}
		fake.AfterGet(nil)
		ahead.Store(false)
		res, err := tg.CreateInvoice(ctx, inv, ref, "invoice/demo/D-1001/invoice")
		if err != nil || res.InvoiceID == "" || fake.Invoices()[0].Currency != "1" {
			t.Fatalf("with the clock set right: %+v, %v; want the invoice, in EUR", res, err)
		}
	})
}

// The default tax_id_field, vatregnumber, is the legacy tax field; an
// account without such a customer column (SuiteTax keeps tax numbers in
// the Tax Registrations sublist) refuses the query (400), which failed
// every new company with a tax id. The tax-id rule is skipped then, with a
// warning, and the name rule applies; other refusals of the query stand.
func TestTaxIDColumnTheAccountDoesNotHave(t *testing.T) {
	var logs bytes.Buffer
	fake, tg := setupDeps(t, testRSAKey(t), nil, netsuite.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	fake.HideColumns("vatregnumber")
	ctx := context.Background()
	id := fake.AddCustomer(netsuitefake.Customer{CompanyName: "Acme GmbH"})
	ref, err := tg.FindOrCreateCustomer(ctx, exampleInvoice().Customer, "k")
	if err != nil || ref.ID != id || ref.Created {
		t.Fatalf("%+v, %v; want %s by name", ref, err, id)
	}
	if !strings.Contains(logs.String(), "tax-id rule is skipped") || !strings.Contains(logs.String(), "vatregnumber") {
		t.Errorf("no warning naming the column: %s", logs.String())
	}
	other := exampleInvoice().Customer
	other.ExternalID, other.Name = "C-2", "Zwei GmbH"
	queries := fake.Calls("POST suiteql")
	if ref, err := tg.FindOrCreateCustomer(ctx, other, "k2"); err != nil || !ref.Created {
		t.Fatalf("a new company: %+v, %v; want it made", ref, err)
	}
	// The rule is off from the first refusal on: the next company's look-up
	// asks by name alone, and the warning is not given again.
	if n := fake.Calls("POST suiteql") - queries; n != 1 || strings.Count(logs.String(), "tax-id rule is skipped") != 1 {
		t.Errorf("the next company: %d queries (want 1, by name), warnings:\n%s", n, logs.String())
	}
	// Another refusal of a query stands (a new target: the rule is on).
	fake, tg = setupDeps(t, testRSAKey(t), nil, netsuite.Deps{})
	fake.Fail("POST suiteql", netsuitefake.Fault{Status: http.StatusBadRequest})
	other.ExternalID, other.Name = "C-3", "Drei GmbH"
	if _, err := tg.FindOrCreateCustomer(ctx, other, "k3"); class(err) != connectors.Permanent {
		t.Fatalf("another refusal of the query: %v; want it to stand", err)
	}
	// Only NetSuite's "Field '…' … was not found" of that column skips the
	// rule: another 400 that echoes the column's name stands.
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"Invalid search query. Search error occurred: Field 'vatregnumber' for record 'customer' was not found.", true},
		{"Invalid search query. Search error occurred: Field 'VATREGNUMBER' for record 'customer' was not found.", true},
		{"Invalid search query. Detailed unprocessed description follows. Search error occurred: Unknown identifier 'vatregnumber'. Available identifiers are: {customer=customer}.", true},
		{"Invalid search query: unexpected token near vatregnumber = 'x'", false},
		{"Invalid search query. Search error occurred: Field 'custentity_vat' for record 'customer' was not found. (vatregnumber)", false},
	} {
		err := &connectors.APIError{Service: "netsuite", Op: "find customer", StatusCode: http.StatusBadRequest, Message: c.msg}
		if got := netsuite.UnknownColumn(err, "vatregnumber"); got != c.want {
			t.Errorf("%q: unknown column %v, want %v", c.msg, got, c.want)
		}
	}
}

// A base_url refused for its scheme or host, or one that does not parse,
// is named without the credential it may hold (user info, a query): the
// error reaches stderr and the container's logs.
func TestBaseURLErrorsShowNoCredential(t *testing.T) {
	key := testRSAKey(t)
	for raw, want := range map[string]string{
		"ftp://ns:S3cretPass@1234567.suitetalk.api.netsuite.com/x?k=S3cretPass": `base_url "ftp://1234567.suitetalk.api.netsuite.com/x" is not an http(s) URL`,
		"https://ns:S3cretPass@?k=S3cretPass":                                   `base_url "https:" is not an http(s) URL`,
		"https://ns:S3cretPass/x@1234567.suitetalk.api.netsuite.com":            "base_url is not a valid URL",
		"https://1234567.suitetalk.api.netsuite.com/%zz?k=S3cretPass":           "base_url is not a valid URL",
	} {
		cfg := netsuite.DefaultConfig()
		cfg.AccountID, cfg.ClientID, cfg.CertificateID = account, client, certID
		cfg.PrivateKey = secret.New("file:" + writeKey(t, key))
		cfg.BaseURL = raw
		_, err := netsuite.New(cfg, netsuite.Deps{})
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), want) {
			t.Errorf("base_url %s: %v; want it to say %s, without the credential", raw, err, want)
		}
	}
}

// A base_url that already has the REST API's path (NetSuite's REST API
// guide writes the base of its records as
// https://<account>.suitetalk.api.netsuite.com/services/rest/record/v1) is
// refused at load, saying to give the host alone: the target adds
// /services/rest/… itself, and every call would answer 404. A proxy's
// own path prefix is taken.
func TestBaseURLWithTheAPIPathIsRefused(t *testing.T) {
	key := testRSAKey(t)
	for raw, want := range map[string]string{
		"https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1": `netsuite: base_url "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1" ` +
			`already has the API path "/services/rest/record/v1": dealsync adds /services/rest/… itself; give the host alone, e.g. https://1234567-sb1.suitetalk.api.netsuite.com`,
		"http://127.0.0.1:9/Services/REST/":               `already has the API path "/Services/REST"`,
		"https://1234567-sb1.suitetalk.api.netsuite.com/": "",
		"https://gateway.example/netsuite":                "",
		"https://gateway.example/services/restful":        "",
	} {
		cfg := netsuite.DefaultConfig()
		cfg.AccountID, cfg.ClientID, cfg.CertificateID = account, client, certID
		cfg.PrivateKey = secret.New("file:" + writeKey(t, key))
		cfg.BaseURL = raw
		_, err := netsuite.New(cfg, netsuite.Deps{})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("base_url %s: %v; want %q", raw, err, want)
		}
	}
}

// An error in the request's URL names it as the element, as NetSuite
// answers one (o:errorUrl, beside o:errorPath for the body's).
func TestErrorDetailNamesTheURL(t *testing.T) {
	body := `{"type":"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1","title":"Bad Request","status":400,
	  "o:errorDetails":[{"detail":"Invalid record instance identifier '000'. Provide a valid record instance ID.",
	  "o:errorUrl":"/services/rest/record/v1/customer/000","o:errorCode":"INVALID_ID"}]}`
	msg, field := netsuite.ReadErrorDetail(400, nil, []byte(body))
	if field != "URL /services/rest/record/v1/customer/000" || !strings.Contains(msg, "Invalid record instance identifier '000'") || !strings.Contains(msg, "INVALID_ID") {
		t.Errorf("message %q, element %q", msg, field)
	}
}

// A client assertion the token endpoint refuses (a certificate id that
// is not the mapping's) names the settings to check; built from a config,
// by their config keys (targets.<name>.certificate_id), where an engineer
// edits them.
func TestRefusedAssertionNamesTheSettings(t *testing.T) {
	for configKey, want := range map[string]string{
		"":             "check the target's client_id and certificate_id, and that the certificate's OAuth 2.0 client credentials mapping is not revoked or expired",
		"targets.ns-1": "check targets.ns-1.client_id and targets.ns-1.certificate_id, and that the certificate's OAuth 2.0 client credentials mapping",
	} {
		_, tg := setupDeps(t, testRSAKey(t), func(cfg *netsuite.Config) { cfg.CertificateID = "another-certificate" }, netsuite.Deps{ConfigKey: configKey})
		_, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "A"}, "k")
		if class(err) != connectors.Unauthorized || !strings.Contains(err.Error(), "the token endpoint refused the client assertion") || !strings.Contains(err.Error(), want) {
			t.Errorf("config key %q: %v (%v); want %q", configKey, err, class(err), want)
		}
	}
}
