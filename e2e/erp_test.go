package e2e

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/dealsync/dealsync/config"
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
	// dataDir: the in-memory Temporal store currently fails to start in
	// this harness ("table namespaces already exists"); a file store works.
	s := startStack(t, stackOptions{mutate: useTarget("xero", "xero", &xc), dataDir: t.TempDir()})

	fake.Fail("PUT /Invoices",
		xerofake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Problem: "minute"},
		xerofake.Fault{Status: http.StatusBadGateway, AfterWork: true})

	body := event("evt_x1", "D-X1", nil)
	var first string
	for i := 0; i < 3; i++ {
		r := s.send(t, delivery{body: body, msgID: "msg_x1"})
		if r.status != http.StatusAccepted || len(r.parsed.Results) != 1 {
			t.Fatalf("delivery %d: %d %s", i, r.status, r.body)
		}
		if i == 0 {
			first = r.parsed.Results[0].WorkflowID
		}
	}
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
	if out.InvoiceID != fake.LastInvoiceID || out.CustomerID == "" {
		t.Fatalf("result %+v, Xero's invoice %s", out, fake.LastInvoiceID)
	}

	// Another deal of the same company: same contact, found by the link.
	body2 := event("evt_x2", "D-X2", func(deal map[string]any) {
		deal["company"] = map[string]any{"id": "C-D-X1", "name": "Acme GmbH", "email": "ap@acme.example"}
	})
	r := s.send(t, delivery{body: body2, msgID: "msg_x2"})
	if r.status != http.StatusAccepted {
		t.Fatalf("second deal: %d %s", r.status, r.body)
	}
	var out2 workflows.InvoiceDealResult
	if err := s.waitRun(t, r.parsed.Results[0].WorkflowID, &out2); err != nil {
		t.Fatalf("second run failed: %v", err)
	}
	if contacts, invoices := fake.Counts(); contacts != 1 || invoices != 2 || out2.CustomerID != out.CustomerID {
		t.Fatalf("after the second deal: %d contacts, %d invoices, customer %s vs %s", contacts, invoices, out2.CustomerID, out.CustomerID)
	}
}
