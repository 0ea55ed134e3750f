package hubspot

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
)

// checkOne runs CheckWriteBack with portal 62515 only and returns its check.
func checkOne(t *testing.T, f *hubspotfake.Server, mutate func(*Config)) connectors.WriteBackCheck {
	t.Helper()
	s := apiSource(t, f.URL, func(c *Config) {
		c.Accounts = map[string]Account{"62515": c.Accounts["62515"]}
		if mutate != nil {
			mutate(c)
		}
	})
	checks := s.CheckWriteBack(context.Background())
	if len(checks) != 1 || checks[0].Account != "62515" || checks[0].Where != "HubSpot portal 62515" {
		t.Fatalf("checks: %+v", checks)
	}
	return checks[0]
}

// The check reads each configured property's definition, and nothing
// else; properties that exist as single-line text pass.
func TestCheckWriteBackPropertiesPresent(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.AddPortal("5799819", "pat-na1-5799819")
	s := apiSource(t, f.URL, nil)
	f.ResetRequests()
	checks := s.CheckWriteBack(context.Background())
	if len(checks) != 2 || checks[0].Account != "5799819" || checks[1].Account != "62515" {
		t.Fatalf("checks: %+v", checks)
	}
	for _, c := range checks {
		if c.Err != nil || len(c.Problems) != 0 || !slices.Equal(c.Fields, hubspotfake.DefaultWriteBackProperties) {
			t.Errorf("%s: %+v", c.Where, c)
		}
	}
	reqs := f.Requests()
	if len(reqs) != 8 {
		t.Fatalf("%d requests, want 4 per portal: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/crm/properties/2026-03/deals/erp_") {
			t.Errorf("the check sent %s %s: it only reads property definitions", r.Method, r.Path)
		}
	}

	// Nothing configured: nothing asked.
	f.ResetRequests()
	c := checkOne(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{} })
	if c.Err != nil || len(c.Problems) != 0 || len(c.Fields) != 0 || len(f.Requests()) != 0 {
		t.Errorf("no properties: %+v, %d requests", c, len(f.Requests()))
	}
}

// A property the portal does not have, one whose value is read-only and
// one of another type are each named with their setting and what to do;
// the write-back would fail on each of them.
func TestCheckWriteBackFindsPropertiesTheWriteBackFailsOn(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.DeleteDealProperty("62515", "erp_invoice_url")
	f.PutDealProperty("62515", hubspotfake.DealProperty{Name: "erp_invoice_id", Type: "number", FieldType: "number"})
	f.PutDealProperty("62515", hubspotfake.DealProperty{Name: "erp_sync_status", Type: "enumeration", FieldType: "select", Options: []string{"pending", "done"}})
	c := checkOne(t, f, func(c *Config) { c.WriteBack.InvoiceNumberProperty = "hs_object_id" })
	if c.Err != nil || len(c.Problems) != 4 {
		t.Fatalf("check: %+v", c)
	}
	want := []struct{ setting, field, problem, fix string }{
		// A number property takes numeric ids (QuickBooks'), not Xero's:
		// a doubt (a warning), not a refusal.
		{"write_back.invoice_id_property", "erp_invoice_id", "is of type number: HubSpot refuses an invoice id or number that is not a number", "Settings → Properties → Deal, single-line text"},
		{"write_back.invoice_number_property", "hs_object_id", "is read-only", "create a custom deal property"},
		{"write_back.invoice_url_property", "erp_invoice_url", "does not exist in the portal", "create it: Settings → Properties → Deal, single-line text, internal name erp_invoice_url"},
		{"write_back.status_property", "erp_sync_status", `without the option "synced"`, "set write_back.status_value to one of its options"},
	}
	for i, w := range want {
		p := c.Problems[i]
		if p.Account != "HubSpot portal 62515" || p.Setting != w.setting || p.Field != w.field || !strings.Contains(p.Problem, w.problem) || !strings.Contains(p.Fix, w.fix) {
			t.Errorf("problem %d: %+v\nwant %+v", i, p, w)
		}
		if s := p.String(); !strings.HasPrefix(s, "HubSpot portal 62515: "+w.setting+` "`+w.field+`" `) {
			t.Errorf("problem %d reads %q", i, s)
		}
	}
	for i, p := range c.Problems {
		if p.Doubt != (i == 0) {
			t.Errorf("problem %d: doubt %v, want %v", i, p.Doubt, i == 0)
		}
	}
	// A checkbox holds a status of true or false.
	f.PutDealProperty("62515", hubspotfake.DealProperty{Name: "erp_sync_status", Type: "bool", FieldType: "booleancheckbox"})
	if c := checkOne(t, f, func(c *Config) { c.WriteBack.StatusValue = "true" }); slices.ContainsFunc(c.Problems, func(p connectors.WriteBackProblem) bool { return p.Field == "erp_sync_status" }) {
		t.Errorf("a checkbox with status_value true: %+v", c.Problems)
	}
	if !strings.Contains(c.Problems[3].Problem, "options: pending, done") {
		t.Errorf("the enumeration's options are not named: %s", c.Problems[3].Problem)
	}

	// The write-back fails on them as the check said (the fake refuses
	// as HubSpot does).
	s := apiSource(t, f.URL, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceNumberProperty: "hs_object_id"} })
	var api *connectors.APIError
	if err := s.WriteBack(context.Background(), "62515", "1234567890", connectors.InvoiceResult{InvoiceID: "1", Number: "INV-1"}); !errors.As(err, &api) || api.StatusCode != 400 {
		t.Errorf("write-back of a read-only property: %v", err)
	}

	// A status enumeration that has the status value as an option holds it.
	f.PutDealProperty("62515", hubspotfake.DealProperty{Name: "erp_sync_status", Type: "enumeration", FieldType: "select", Options: []string{"pending", "synced"}})
	c = checkOne(t, f, func(c *Config) {
		c.WriteBack = WriteBackConfig{StatusProperty: "erp_sync_status", StatusValue: "synced"}
	})
	if c.Err != nil || len(c.Problems) != 0 {
		t.Errorf("an enumeration with the status value: %+v", c)
	}
	// ... but not the invoice id.
	c = checkOne(t, f, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceIDProperty: "erp_sync_status"} })
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0].Problem, "is of type enumeration") {
		t.Errorf("an enumeration for the invoice id: %+v", c)
	}
}

// The properties API needs crm.schemas.deals.read: a portal whose app
// lacks it refuses the check, and the error says the check needs the
// scope (not the write-back).
func TestCheckWriteBackWithoutTheSchemasScope(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.FailProperties(hubspotfake.Fault{Status: http.StatusForbidden, Body: `{"status":"error","message":"This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.","correlationId":"x",` +
		`"errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.schemas.deals.read"]}}],"links":{"scopes":"https://developers.hubspot.com/scopes"},"category":"MISSING_SCOPES"}`})
	c := checkOne(t, f, nil)
	if c.Err == nil || len(c.Problems) != 0 || c.Unanswered() {
		t.Fatalf("check: %+v (unanswered %v)", c, c.Unanswered())
	}
	msg := c.Err.Error()
	for _, want := range []string{"HTTP 403", "MISSING_SCOPES", "the check reads the deal properties' definitions", "needs the scope crm.schemas.deals.read",
		"This is the check's own scope: the write-back needs crm.objects.deals.write only"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	// One refusal stops the portal's check: the other properties are not
	// asked for.
	if n := f.Count(http.MethodGet, "/crm/properties/"); n != 1 {
		t.Errorf("%d property reads after a refusal", n)
	}
}

// A HubSpot that does not answer (5xx, connection refused) is told from
// one that refuses: the fields are not judged.
func TestCheckWriteBackCRMDown(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.FailProperties(hubspotfake.Fault{Status: http.StatusServiceUnavailable})
	c := checkOne(t, f, nil)
	if c.Err == nil || !c.Unanswered() || len(c.Problems) != 0 || !strings.Contains(c.Err.Error(), "read deal property: HTTP 503") {
		t.Errorf("503: %+v", c)
	}
	url := f.URL
	f.Close()
	s := apiSource(t, url, nil)
	for _, c := range s.CheckWriteBack(context.Background()) {
		if c.Err == nil || !c.Unanswered() || len(c.Problems) != 0 {
			t.Errorf("connection refused: %+v", c)
		}
	}
	// A context that ends stops the check too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range s.CheckWriteBack(ctx) {
		if !errors.Is(c.Err, context.Canceled) || !c.Unanswered() {
			t.Errorf("cancelled: %+v", c)
		}
	}
}
