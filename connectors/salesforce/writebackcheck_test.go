package salesforce

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/salesforce/salesforcefake"
	"github.com/dealsync/dealsync/secret"
)

func checkOrg(t *testing.T, f *salesforcefake.Server, mutate func(*Config)) connectors.WriteBackCheck {
	t.Helper()
	checks := apiSource(t, f, mutate).CheckWriteBack(context.Background())
	if len(checks) != 1 || checks[0].Account != orgA || checks[0].Where != "Salesforce org "+orgA {
		t.Fatalf("checks: %+v", checks)
	}
	return checks[0]
}

// The check describes the Opportunity once per org, in the source's API
// version, and sends nothing else; Text fields long enough pass.
func TestCheckWriteBackFieldsPresent(t *testing.T) {
	f := newFakeOrg(t)
	f.APIVersion = "v61.0"
	c := checkOrg(t, f, func(c *Config) { c.APIVersion = "v61.0" })
	if c.Err != nil || len(c.Problems) != 0 || !slices.Equal(c.Fields, salesforcefake.DefaultWriteBackFields) {
		t.Fatalf("check: %+v", c)
	}
	var api []string
	for _, r := range f.Requests() {
		if r.Path != "/services/oauth2/token" {
			api = append(api, r.Method+" "+r.Path)
		}
	}
	if !slices.Equal(api, []string{"GET /services/data/v61.0/sobjects/Opportunity/describe"}) {
		t.Errorf("requests: %v", api)
	}
	// Nothing configured: nothing asked.
	before := len(f.Requests())
	c = checkOrg(t, f, func(c *Config) { c.APIVersion = "v61.0"; c.WriteBack = WriteBackConfig{} })
	if c.Err != nil || len(c.Fields) != 0 || len(f.Requests()) != before {
		t.Errorf("no fields: %+v, %d requests", c, len(f.Requests())-before)
	}
}

// Each field the write-back would fail on is named with its setting and
// what to do: missing, spelt in another case, not updateable, of another
// type, too short, a restricted picklist without the status value.
func TestCheckWriteBackFindsFieldsTheWriteBackFailsOn(t *testing.T) {
	f := newFakeOrg(t)
	f.DeleteField("ERP_Invoice_URL__c")
	f.PutField(salesforcefake.Field{Name: "ERP_Invoice_Id__c", Length: 20})
	f.PutField(salesforcefake.Field{Name: "ERP_Invoice_Number__c", Type: "double"})
	f.PutField(salesforcefake.Field{Name: "ERP_Sync_Status__c", Type: "picklist", Picklist: []string{"Pending", "Done"}, Restricted: true})
	f.PutField(salesforcefake.Field{Name: "ERP_Link__c", Type: "url", ReadOnly: true})
	f.AddFields("ERP_Invoice_No__c")
	c := checkOrg(t, f, nil)
	if c.Err != nil || len(c.Problems) != 4 {
		t.Fatalf("check: %+v", c)
	}
	want := []struct{ setting, field, problem, fix string }{
		{"write_back.invoice_id_field", "ERP_Invoice_Id__c", "holds 20 characters, fewer than 36 (an ERP's invoice id can be a UUID", "make it at least 36 characters long"},
		{"write_back.invoice_number_field", "ERP_Invoice_Number__c", "is of type double, which cannot hold the invoice number", "create a Text field (Setup → Object Manager → Opportunity → Fields & Relationships → New: Text, length 255)"},
		{"write_back.invoice_url_field", "ERP_Invoice_URL__c", "is not a field of the Opportunity that the integration user can see", "Set Field-Level Security"},
		{"write_back.status_field", "ERP_Sync_Status__c", `is a restricted picklist without the value "synced", so Salesforce refuses it (values: Pending, Done)`, "add the value synced to the picklist"},
	}
	for i, w := range want {
		p := c.Problems[i]
		if p.Account != "Salesforce org "+orgA || p.Setting != w.setting || p.Field != w.field || !strings.Contains(p.Problem, w.problem) || !strings.Contains(p.Fix, w.fix) {
			t.Errorf("problem %d: %+v\nwant %+v", i, p, w)
		}
		// An id's length depends on the ERP (QuickBooks' are short): a
		// doubt, a warning; the others are refusals.
		if p.Doubt != (i == 0) {
			t.Errorf("problem %d: doubt %v, want %v", i, p.Doubt, i == 0)
		}
	}

	// A name in another letter case is the field (Salesforce takes either).
	c = checkOrg(t, f, func(c *Config) {
		c.WriteBack = WriteBackConfig{InvoiceIDField: "erp_invoice_no__c", InvoiceURLField: "ERP_Link__c", StatusField: "ERP_Sync_Status__c", StatusValue: "Done"}
	})
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0].Problem, "is not updateable by the integration user") {
		t.Errorf("case, read-only, a restricted picklist with the value: %+v", c.Problems)
	}
	if err := apiSource(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceIDField: "erp_invoice_no__c"} }).
		WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "42"}); err != nil {
		t.Errorf("a write-back naming the field in another letter case: %v", err)
	}

	// A picklist that is not restricted takes any status; not an invoice id.
	f.PutField(salesforcefake.Field{Name: "ERP_Sync_Status__c", Type: "picklist", Picklist: []string{"Pending"}})
	c = checkOrg(t, f, func(c *Config) {
		c.WriteBack = WriteBackConfig{InvoiceIDField: "ERP_Sync_Status__c", StatusField: "ERP_Sync_Status__c", StatusValue: "synced"}
	})
	if len(c.Problems) != 1 || c.Problems[0].Setting != "write_back.invoice_id_field" || !strings.Contains(c.Problems[0].Problem, "is of type picklist") {
		t.Errorf("an unrestricted picklist: %+v", c.Problems)
	}

	// The write-back fails as the check said: a UUID does not fit 20
	// characters.
	s := apiSource(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceIDField: "ERP_Invoice_Id__c"} })
	var api *connectors.APIError
	err := s.WriteBack(context.Background(), orgA, "0065w000023STAmAAO", connectors.InvoiceResult{InvoiceID: "ed255415-e141-4150-aab7-89c3bbbb851c"})
	if !errors.As(err, &api) || api.StatusCode != 400 || !strings.Contains(api.Message, "STRING_TOO_LONG") {
		t.Errorf("write-back of a UUID into 20 characters: %v", err)
	}
}

// Refused credentials are a refusal of the check; an org that does not
// answer is told apart from it.
func TestCheckWriteBackRefusedOrCRMDown(t *testing.T) {
	f := newFakeOrg(t)
	c := checkOrg(t, f, func(c *Config) {
		c.Accounts = map[string]Account{orgA: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("wrong")}}
	})
	if c.Err == nil || c.Unanswered() || !strings.Contains(c.Err.Error(), "invalid_client") {
		t.Errorf("wrong client secret: %+v", c)
	}
	f.FailDescribes(salesforcefake.Fault{Status: http.StatusServiceUnavailable})
	c = checkOrg(t, f, nil)
	if c.Err == nil || !c.Unanswered() || len(c.Problems) != 0 || !strings.Contains(c.Err.Error(), "describe opportunity: HTTP 503") {
		t.Errorf("503: %+v", c)
	}
	f.Close()
	c = checkOrg(t, f, nil)
	if c.Err == nil || !c.Unanswered() {
		t.Errorf("connection refused: %+v", c)
	}
}

// Credentials that log into another org than the key's (the token's id
// names it) fail the check of that key, a refusal (not a CRM that did not
// answer), naming both orgs, where the
// other org's fields passed it before; a key of the credentials' org, in
// 18 characters or as a 15-character key lower-cased, passes.
func TestCheckWriteBackNamesTheOrgTheCredentialsLogInto(t *testing.T) {
	const other = "00D5w000009zZZZEA2"
	f := salesforcefake.New(other, "cid-a", "cs-a")
	t.Cleanup(f.Close)
	c := checkOrg(t, f, nil)
	if c.Err == nil || !strings.Contains(c.Err.Error(), "log into Salesforce org "+other+", not "+orgA) || len(c.Problems) != 0 || c.Unanswered() {
		t.Fatalf("check: %+v; want it refused, naming both orgs", c)
	}
	for _, key := range []string{strings.ToLower(other), strings.ToLower(other[:15])} {
		s := testSource(t, func(c *Config) {
			c.Accounts = map[string]Account{key: {InstanceURL: f.URL, ClientID: "cid-a", ClientSecret: secret.New("cs-a")}}
		})
		if checks := s.CheckWriteBack(context.Background()); len(checks) != 1 || checks[0].Err != nil {
			t.Errorf("key %s: %+v; want the org's check to pass", key, checks)
		}
	}
}
