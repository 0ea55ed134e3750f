package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
)

// `config check --crm` asks each CRM account, reading only, whether the
// write-back's deal fields exist and can be written, before any invoice
// is made: each one a CRM would refuse is named with its account, setting
// and fix (exit 1); a CRM that does not answer, or refuses the check, is
// named as such (exit 1). Without --crm no CRM is asked anything.
func TestConfigCheckCRM(t *testing.T) {
	ctx := context.Background()
	const (
		portal  = "62515"
		company = "6083095"
		org     = "00D5w000004qGTOEA2"
		pdKey   = "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"
		pdState = "f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4"
		pdVAT   = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
	)
	hs := hubspotfake.New()
	defer hs.Close()
	hs.AddPortal(portal, "pat-na1-62515")
	pd := pipedrivefake.New()
	defer pd.Close()
	pd.AddCompany(company, "pd-token")
	pd.AddDealFields(company, pdKey, pdState)
	pd.PutOrganizationField(company, pipedrivefake.DealField{Key: pdVAT, Name: "VAT ID"})
	sf := salesforcefake.New(org, "cid", "csecret")
	defer sf.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  hs:
    target: erp
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      base_url: %q
      client_secret: hubspot-client-secret
      accounts:
        %q: {access_token: pat-na1-62515}
  pd:
    target: erp
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      base_url: %q
      webhook_user: dealsync
      webhook_password: correct-horse
      write_back: {invoice_id_field: %s, status_field: %s}
      fetch: {organization_tax_id_field: %s}
      accounts:
        %q: {api_token: pd-token}
  sf:
    target: erp
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: 0123456789abcdef0123456789abcdef
      accounts:
        %q: {instance_url: %q, client_id: cid, client_secret: csecret}
  shop:
    target: erp
    source: {type: generic, secret: "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="}
  inhouse:
    target: erp
    source:
      type: generic
      secret: "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
      write_back: {url: "http://127.0.0.1:9/dealsync/invoices?token=hush"}
`, hs.URL, portal, pd.URL, pdKey, pdState, pdVAT, company, org, sf.URL))

	// Without --crm, no CRM is asked anything.
	out, err := runOut(ctx, "--config", cfg, "config", "check")
	if err != nil || strings.Contains(out, "crm:") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	// It says where a generic source writes back (and nothing of the
	// URL's query).
	if want := "result written back: a POST to http://127.0.0.1:9/dealsync/invoices signed the Standard Webhooks way with the source's secret\n"; !strings.Contains(out, want) ||
		strings.Contains(out, "hush") {
		t.Errorf("config check lacks %q:\n%s", want, out)
	}
	if n := len(hs.Requests()) + len(pd.Requests()) + len(sf.Requests()); n != 0 {
		t.Fatalf("config check without --crm sent %d requests to the CRMs", n)
	}

	out, err = runOut(ctx, "--config", cfg, "config", "check", "--crm")
	if err != nil {
		t.Fatalf("config check --crm: %v\n%s", err, out)
	}
	for _, want := range []string{
		"crm: connection hs: HubSpot portal 62515: write-back fields ok (erp_invoice_id, erp_invoice_number, erp_invoice_url, erp_sync_status)\n",
		"crm: connection pd: Pipedrive company 6083095: write-back fields ok (" + pdKey + ", " + pdState + ")\n",
		"crm: connection pd: Pipedrive company 6083095: fetch fields ok (" + pdVAT + ")\n",
		"crm: connection sf: Salesforce org 00d5w000004qgtoea2: write-back fields ok (ERP_Invoice_Id__c, ERP_Invoice_Number__c, ERP_Invoice_URL__c, ERP_Sync_Status__c)\n",
		"crm: connection shop: the generic source writes nothing back (source.write_back.url is not set)\n",
		"crm: connection inhouse: the generic source writes back a POST to http://127.0.0.1:9/dealsync/invoices signed the Standard Webhooks way with the source's secret; not checked (the check would have to send a delivery)\n",
		"\nok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A fetch field the company does not have: named, with the field it
	// may mean, exit 1.
	pd.PutOrganizationField(company, pipedrivefake.DealField{Key: pdVAT, Name: "VAT ID (old)", Type: "enum", Options: []string{"none"}})
	out, err = runOut(ctx, "--config", cfg, "config", "check", "--crm")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 fetch field(s) a CRM does not have as configured (listed above): each says what it breaks") ||
		strings.Contains(err.Error(), "write-back field(s)") {
		t.Fatalf("a fetch field: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if want := `crm: connection pd: Pipedrive company 6083095: fetch.organization_tax_id_field "` + pdVAT + `" is the field "VAT ID (old)" of type enum (Single option)`; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	pd.PutOrganizationField(company, pipedrivefake.DealField{Key: pdVAT, Name: "VAT ID"})

	// Fields each CRM would refuse: named, exit 1.
	hs.DeleteDealProperty(portal, "erp_invoice_url")
	pd.PutDealField(company, pipedrivefake.DealField{Key: pdState, Name: "ERP status", Type: "enum", Options: []string{"synced"}})
	sf.PutField(salesforcefake.Field{Name: "ERP_Invoice_Id__c", Length: 18})
	out, err = runOut(ctx, "--config", cfg, "config", "check", "--crm")
	if exitCode(err) != 1 || strings.Contains(out, "\nok\n") || !strings.Contains(err.Error(), "2 write-back field(s) a CRM would refuse") {
		t.Fatalf("refused fields: exit %d, %v\n%s", exitCode(err), err, out)
	}
	for _, want := range []string{
		`crm: connection hs: HubSpot portal 62515: write_back.invoice_url_property "erp_invoice_url" does not exist in the portal: create it: Settings → Properties → Deal, single-line text`,
		`crm: connection pd: Pipedrive company 6083095: write_back.status_field "` + pdState + `" is the field "ERP status" of type enum (Single option)`,
		// A short id field depends on the ERP's ids: a warning, not a
		// refusal (counted above as 2).
		`crm: connection sf: warning: Salesforce org 00d5w000004qgtoea2: write_back.invoice_id_field "ERP_Invoice_Id__c" holds 18 characters, fewer than 36`,
		"depending on the ERP's values",
		"crm: connection sf: Salesforce org 00d5w000004qgtoea2: write-back fields ok but for the warnings above",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	hs.AddDealProperties(portal, "erp_invoice_url")
	pd.AddDealFields(company, pdState)
	// A warning alone does not fail the check.
	out, err = runOut(ctx, "--config", cfg, "config", "check", "--crm")
	if err != nil || !strings.Contains(out, "crm: connection sf: warning: ") || !strings.Contains(out, "\nok\n") {
		t.Fatalf("a warning alone: %v\n%s", err, out)
	}
	sf.AddFields("ERP_Invoice_Id__c")

	// A CRM that does not answer, and one that refuses the check's scope.
	hs.FailProperties(hubspotfake.Fault{Status: http.StatusForbidden, Body: `{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"x",` +
		`"errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.schemas.deals.read"]}}],"category":"MISSING_SCOPES"}`})
	pd.FailDealFields(pipedrivefake.Fault{Status: http.StatusServiceUnavailable})
	// The company's fetch fields are not answered either: one account.
	pd.FailOrganizationFields(pipedrivefake.Fault{Status: http.StatusServiceUnavailable})
	out, err = runOut(ctx, "--config", cfg, "config", "check", "--crm")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "1 CRM account(s) did not answer") || !strings.Contains(err.Error(), "1 CRM account(s) refused the check") ||
		strings.Contains(err.Error(), "would refuse") {
		t.Fatalf("unanswered and refused: exit %d, %v\n%s", exitCode(err), err, out)
	}
	for _, want := range []string{
		"crm: connection hs: HubSpot portal 62515 refused the check: hubspot read deal property: HTTP 403",
		"needs the scope crm.schemas.deals.read",
		"crm: connection pd: Pipedrive company 6083095 did not answer: pipedrive list deal fields: HTTP 503",
		"its write-back fields are not checked",
		"crm: connection pd: Pipedrive company 6083095 did not answer: pipedrive list organization fields: HTTP 503",
		"its fetch fields are not checked",
		"crm: connection sf: Salesforce org 00d5w000004qgtoea2: write-back fields ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Nothing was written to a CRM.
	if hs.TotalWriteBacks()+pd.TotalWriteBacks()+sf.TotalWriteBacks() != 0 {
		t.Error("the check wrote back")
	}
	for _, r := range hs.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("HubSpot was sent %s %s", r.Method, r.Path)
		}
	}
	for _, r := range pd.Requests() {
		if r.Method != http.MethodGet {
			t.Errorf("Pipedrive was sent %s %s", r.Method, r.Path)
		}
	}
	for _, r := range sf.Requests() {
		if r.Method != http.MethodGet && r.Path != "/services/oauth2/token" {
			t.Errorf("Salesforce was sent %s %s", r.Method, r.Path)
		}
	}
}

// A CRM source's base_url (or instance_url) that already has the CRM's
// API path (…/crm/v3, …/api/v2, …/services/data/v62.0, as the vendors'
// references write the base) fails `config check`, naming the connection,
// the key and the fix: it passed, and every later check blamed the 404s
// of the doubled path on something else (a write-back property that does
// not exist, a deal that is not there).
func TestConfigCheckRefusesABaseURLWithTheAPIPath(t *testing.T) {
	cfg := writeConfig(t, `
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  hs:
    target: erp
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      base_url: http://127.0.0.1:9/crm/v3
      client_secret: hubspot-client-secret
      accounts:
        "62515": {access_token: pat-na1-62515}
  pd:
    target: erp
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      base_url: http://127.0.0.1:9/api/v2
      webhook_user: dealsync
      webhook_password: correct-horse
      accounts:
        "6083095": {api_token: pd-token}
  sf:
    target: erp
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: 0123456789abcdef0123456789abcdef
      accounts:
        00D5w000004qGTOEA2: {instance_url: "https://acme.my.salesforce.com/services/data/v62.0", client_id: cid, client_secret: csecret}
`)
	out, err := runOut(context.Background(), "--config", cfg, "config", "check")
	if exitCode(err) != 1 || strings.Contains(out, "\nok\n") {
		t.Fatalf("exit %d, %v\n%s", exitCode(err), err, out)
	}
	for _, want := range []string{
		`connections.hs.source: hubspot source: base_url "http://127.0.0.1:9/crm/v3" already has the API path "/crm/v3": dealsync adds the API paths (/crm/objects/2026-03/…`,
		"give the host alone, e.g. https://api.hubapi.com",
		`connections.pd.source: pipedrive source: base_url "http://127.0.0.1:9/api/v2" already has the API path "/api/v2": dealsync adds /api/v2/… itself; give the host alone, e.g. https://api.pipedrive.com`,
		`connections.sf.source: salesforce source: accounts.00d5w000004qgtoea2.instance_url "https://acme.my.salesforce.com/services/data/v62.0" already has the API path "/services/data/v62.0"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The help of config check says what the fetch-field check names as it
// does it: a Pipedrive organization field whose value is neither text nor
// a number (a Numerical field, a tax number kept as one, passes).
func TestConfigCheckHelpSaysWhatTheFetchFieldCheckNames(t *testing.T) {
	check, _, err := newRoot().Find([]string{"config", "check"})
	if err != nil {
		t.Fatal(err)
	}
	if long := strings.Join(strings.Fields(check.Long), " "); !strings.Contains(long, "or fetch.organization_tax_id_field that is not the key of a custom one "+
		"(saying which field it may have meant: the one whose name it is, or whose key or name it is a typo of) or whose value is not text or a number, "+
		"as such a field is read empty from every deal") {
		t.Errorf("config check's help:\n%s", check.Long)
	}
}
