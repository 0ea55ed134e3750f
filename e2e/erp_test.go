package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/netsuite"
	"github.com/dealsync/dealsync/connectors/netsuite/netsuitefake"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/connectors/quickbooks/qbofake"
	"github.com/dealsync/dealsync/connectors/xero"
	"github.com/dealsync/dealsync/connectors/xero/xerofake"
	"github.com/dealsync/dealsync/secret"
	"github.com/dealsync/dealsync/workflows"
)

// useTarget points connection demo at a target of type typ with spec.
func useTarget(name, typ string, spec any) func(*config.Config) {
	return func(cfg *config.Config) {
		if cfg.Targets == nil {
			cfg.Targets = map[string]config.Component{}
		}
		cfg.Targets[name] = config.Component{Type: typ, Spec: spec}
		c := cfg.Connections["demo"]
		c.Target = name
		cfg.Connections["demo"] = c
	}
}

// One deal through the whole stack into a fake Xero that rate-limits and
// loses an answer: one contact and one invoice, however often the deal is
// delivered; a second deal of the same company reuses the contact.
func TestXeroEndToEnd(t *testing.T) {
	const tenant = "11111111-2222-3333-4444-555555555555"
	fake := xerofake.New(tenant, "seed-refresh")
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	xc := xero.DefaultConfig()
	xc.TenantID, xc.ClientID, xc.ClientSecret = tenant, fake.ClientID, secret.New(fake.ClientSecret)
	xc.RefreshToken = secret.New("seed-refresh")
	xc.TokenFile = filepath.Join(dir, "xero-token.json")
	xc.LinkFile = filepath.Join(dir, "xero-links.json")
	xc.BaseURL, xc.TokenURL = fake.URL, fake.TokenURL()
	xc.Timeout = erpTimeout
	s := startStack(t, stackOptions{mutate: useTarget("xero", "xero", &xc)})

	fake.Fail("PUT /Invoices",
		xerofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Problem: "minute"},
		xerofake.Fault{Status: http.StatusBadGateway, AfterWork: true})

	body := event("evt_x1", "D-X1", nil)
	first := s.deliverTimes(t, delivery{body: body, msgID: "msg_x1"}, 3)
	if first != workflows.WorkflowID("demo", "D-X1") {
		t.Fatalf("workflow id %q", first)
	}
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, first, &out); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if contacts, invoices := fake.Counts(); contacts != 1 || invoices != 1 {
		t.Fatalf("Xero has %d contacts and %d invoices, want 1 and 1", contacts, invoices)
	}
	// The faults did happen: the 429, then the processed call whose answer
	// was lost (the retry finds that invoice instead of sending it again).
	if n := fake.Calls("PUT /Invoices"); n != 2 || fake.InvoicePuts != 1 {
		t.Fatalf("%d invoice PUTs sent and %d processed, want 2 (429, lost answer) and 1", n, fake.InvoicePuts)
	}
	if out.InvoiceID != fake.LastInvoiceID || out.CustomerID == "" {
		t.Fatalf("result %+v, Xero's invoice %s", out, fake.LastInvoiceID)
	}

	// Another deal of the same company: same contact, found by the link.
	body2 := event("evt_x2", "D-X2", func(deal map[string]any) {
		deal["company"] = map[string]any{"id": "C-D-X1", "name": "Acme GmbH", "email": "ap@acme.example"}
	})
	out2 := s.invoiceDeal(t, delivery{body: body2, msgID: "msg_x2"})
	if contacts, invoices := fake.Counts(); contacts != 1 || invoices != 2 || out2.CustomerID != out.CustomerID {
		t.Fatalf("after the second deal: %d contacts, %d invoices, customer %s vs %s", contacts, invoices, out2.CustomerID, out.CustomerID)
	}
}

// netsuiteKey makes an RSA key and writes it as the PEM file NetSuite's
// setup guide has openssl write; the fake gets the certificate's public key.
func netsuiteKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "netsuite-private.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path
}

// itemsConfig is a config file whose demo connection maps its deals' SKU
// to the ERP's item id with a lookup table, as QuickBooks and NetSuite need
// (the built-in mapping passes the SKU on).
func itemsConfig(t *testing.T, sku, itemID string) string {
	t.Helper()
	return itemsConfigWith(t, sku, itemID, "")
}

// itemsConfigWith is itemsConfig with more fields of the lines (YAML
// lines indented by four spaces).
func itemsConfigWith(t *testing.T, sku, itemID, lines string) string {
	t.Helper()
	dir := t.TempDir()
	mp := filepath.Join(dir, "erp-items.yaml")
	if err := os.WriteFile(mp, []byte(`name: erp-items
lookups:
  items:
    missing: error
    entries: {"`+sku+`": "`+itemID+`"}
invoice:
  lines:
    item_code: 'lookup("items", item.sku)'
`+lines), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(cfg, []byte("mappings:\n  files: ["+mp+"]\nconnections:\n  demo:\n    mapping: erp-items\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// erpTimeout is the ERP fakes' per-call timeout here: a write whose answer
// is lost is retried after it, and the tests need not wait the default 30 s.
const erpTimeout = 2 * time.Second

// One deal through the whole stack into a fake NetSuite that rate-limits
// the invoice upsert and then loses the answer of the one that worked:
// one customer and one invoice, however often the deal is delivered; a
// second deal of the same company reuses the customer.
func TestNetSuiteEndToEnd(t *testing.T) {
	const account, clientID, certID = "1234567_SB1", "ns-client-id", "ns-cert-1"
	key, keyFile := netsuiteKey(t)
	fake := netsuitefake.New(account, clientID, certID, key.Public())
	t.Cleanup(fake.Close)
	nc := netsuite.DefaultConfig()
	nc.AccountID, nc.ClientID, nc.CertificateID = account, clientID, certID
	nc.PrivateKey = secret.New("file:" + keyFile)
	nc.BaseURL, nc.TokenURL = fake.URL, fake.TokenURL()
	nc.LinkFile = filepath.Join(t.TempDir(), "netsuite-links.json")
	nc.Timeout = erpTimeout
	nc.BaseCurrency = "EUR" // the fake lists no currencies: a single-currency account
	// Lines taxed at 19 % under tax code 8, which the account's engine
	// taxes at 19 % too (until the second deal).
	fake.TaxRates = map[string]decimal.Decimal{"8": decimal.RequireFromString("19")}
	lines := "    tax_code: '\"8\"'\n    tax_rate: 'dec(\"19\")'\n"
	s := startStack(t, stackOptions{configFile: itemsConfigWith(t, "PRO-1Y", "17", lines), mutate: useTarget("netsuite", "netsuite", &nc)})

	fake.Fail("PUT invoice",
		netsuitefake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"},
		netsuitefake.Fault{Status: http.StatusBadGateway, AfterWork: true})

	body := event("evt_n1", "D-N1", nil)
	first := s.deliverTimes(t, delivery{body: body, msgID: "msg_n1"}, 3)
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, first, &out); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	customers, invoices := fake.Customers(), fake.Invoices()
	if len(customers) != 1 || len(invoices) != 1 {
		t.Fatalf("NetSuite has %d customers and %d invoices, want 1 and 1", len(customers), len(invoices))
	}
	if n := fake.Calls("PUT invoice"); n != 2 || fake.InvoiceUpserts() != 1 {
		t.Fatalf("%d invoice upserts sent and %d processed, want 2 (429, lost answer) and 1", n, fake.InvoiceUpserts())
	}
	inv, cu := invoices[0], customers[0]
	if out.InvoiceID != inv.ID || out.CustomerID != cu.ID || inv.Entity != cu.ID || cu.ExternalID != "C-D-N1" || inv.OtherRefNum == "" {
		t.Fatalf("result %+v; customer %+v; invoice %+v", out, cu, inv)
	}
	// The deal's SKU went through the mapping's lookup table to the item.
	if !strings.Contains(string(inv.Body), `"item":{"id":"17"}`) {
		t.Errorf("invoice without the mapped item: %s", inv.Body)
	}
	if out.Warning != "" {
		t.Errorf("a total NetSuite computed as the invoice did: warning %q", out.Warning)
	}

	body2 := event("evt_n2", "D-N2", func(deal map[string]any) {
		deal["company"] = map[string]any{"id": "C-D-N1", "name": "Acme GmbH", "email": "ap@acme.example"}
	})
	// The account's tax engine now taxes code 8 at 20 %, not the
	// mapping's 19 %: the run completes with a warning naming both totals.
	fake.TaxRates = map[string]decimal.Decimal{"8": decimal.RequireFromString("20")}
	out2 := s.invoiceDeal(t, delivery{body: body2, msgID: "msg_n2"})
	if c, n := fake.Counts(); c != 1 || n != 2 || out2.CustomerID != out.CustomerID || out2.InvoiceID == out.InvoiceID {
		t.Fatalf("after the second deal: %d customers, %d invoices, %+v vs %+v", c, n, out2, out)
	}
	if !strings.Contains(out2.Warning, "is EUR 14400.00, not the invoice's EUR 14280.00") {
		t.Errorf("a total NetSuite taxed otherwise: warning %q, want one naming both totals", out2.Warning)
	}
}

// The same for QuickBooks Online: a 429, then an invoice POST whose answer
// is lost; requestid and the DocNumber check keep it to one invoice.
func TestQuickBooksEndToEnd(t *testing.T) {
	const realm = "9130355555555555"
	fake := qbofake.New(realm, "seed-refresh")
	fake.HomeCurrency = "EUR" // the deals' currency
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	qc := quickbooks.DefaultConfig()
	qc.RealmID, qc.ClientID, qc.ClientSecret = realm, fake.ClientID, secret.New(fake.ClientSecret)
	qc.RefreshToken = secret.New("seed-refresh")
	qc.TokenFile = filepath.Join(dir, "qbo-token.json")
	qc.LinkFile = filepath.Join(dir, "qbo-links.json")
	qc.BaseURL, qc.TokenURL = fake.URL, fake.TokenURL()
	qc.DefaultItemID = "1"
	qc.Timeout = erpTimeout
	s := startStack(t, stackOptions{configFile: itemsConfig(t, "PRO-1Y", "17"), mutate: useTarget("qbo", "quickbooks", &qc)})

	fake.Fail("POST /invoice",
		qbofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"},
		qbofake.Fault{Status: http.StatusBadGateway, AfterWork: true})

	body := event("evt_q1", "D-Q1", nil)
	first := s.deliverTimes(t, delivery{body: body, msgID: "msg_q1"}, 3)
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, first, &out); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if customers, invoices := fake.Counts(); customers != 1 || invoices != 1 {
		t.Fatalf("QBO has %d customers and %d invoices, want 1 and 1", customers, invoices)
	}
	if n := fake.Calls("POST /invoice"); n != 2 || fake.InvoicePosts() != 1 {
		t.Fatalf("%d invoice POSTs sent and %d processed, want 2 (429, lost answer) and 1", n, fake.InvoicePosts())
	}
	if _, ok := fake.Invoices()[out.InvoiceID]; !ok || out.CustomerID == "" {
		t.Fatalf("result %+v, QBO's invoices %v", out, fake.Invoices())
	}
	// The deal's SKU went through the mapping's lookup table to the Item Id.
	for _, body := range fake.InvoiceBodies() {
		if !strings.Contains(string(body), `"ItemRef":{"value":"17"}`) {
			t.Errorf("invoice POST without the mapped item: %s", body)
		}
	}
}
