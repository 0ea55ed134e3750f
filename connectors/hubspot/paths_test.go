package hubspot

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/secret"
)

// noLegacyCalls fails the test if the source called one of HubSpot's
// legacy CRM APIs (/crm/v3/…, /crm/v4/…), which the fake refuses.
func noLegacyCalls(t *testing.T, f *hubspotfake.Server) {
	t.Helper()
	for _, r := range f.LegacyRequests() {
		t.Errorf("%s %s: a legacy HubSpot API path, support for which ends in 2027; the source calls the %s APIs", r.Method, r.Path, APIVersion)
	}
}

// Every call of the source goes to HubSpot's 2026-03 APIs, at the path
// HubSpot's 2026-03 specs give it: the deal read with its associations,
// the associations API past the embedded page, the batch reads, the
// pipelines, the look-up among deleted deals, the search of won deals,
// the write-back and the check of the write-back properties.
func TestCallsThe202603APIs(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.SetEmbeddedAssociationLimit(1)
	// The deal's stage, not in won_stages, is looked up in the pipelines.
	s := apiSource(t, f.URL, func(c *Config) { c.WonStages = nil })
	ctx := context.Background()

	d, err := s.FetchDeal(ctx, "62515", "1234567890")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	// Read past the embedded page, through the associations API.
	if d.Company.ID != "444" || len(d.LineItems) != 2 {
		t.Errorf("deal read with its associations paged: company %q, %d line items", d.Company.ID, len(d.LineItems))
	}
	if _, err := s.FetchDeal(ctx, "62515", "404"); err == nil {
		t.Errorf("FetchDeal of an unknown deal: no error")
	}
	err = s.ListWonDeals(ctx, "62515", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(connectors.WonDeal) error { return nil })
	if err != nil {
		t.Errorf("ListWonDeals: %v", err)
	}
	if err := s.WriteBack(ctx, "62515", "1234567890", connectors.InvoiceResult{InvoiceID: "42"}); err != nil {
		t.Errorf("WriteBack: %v", err)
	}
	for _, c := range s.CheckWriteBack(ctx) {
		if c.Account == "62515" && c.Err != nil {
			t.Errorf("CheckWriteBack: %v", c.Err)
		}
	}

	want := map[string]bool{
		"GET /crm/objects/2026-03/0-3/1234567890":                         true, // with associations, then archived=true for 404
		"GET /crm/objects/2026-03/0-3/404":                                true,
		"GET /crm/objects/2026-03/0-3/1234567890/associations/companies":  true,
		"GET /crm/objects/2026-03/0-3/1234567890/associations/line_items": true,
		"POST /crm/objects/2026-03/companies/batch/read":                  true,
		"POST /crm/objects/2026-03/line_items/batch/read":                 true,
		"GET /crm/pipelines/2026-03/deals":                                true,
		"POST /crm/objects/2026-03/0-3/search":                            true,
		"PATCH /crm/objects/2026-03/0-3/1234567890":                       true,
	}
	seen := map[string]bool{}
	for _, r := range f.Requests() {
		call := r.Method + " " + r.Path
		seen[call] = true
		if !want[call] && !strings.HasPrefix(call, "GET /crm/properties/2026-03/deals/") {
			t.Errorf("unexpected call %s", call)
		}
	}
	for call := range want {
		if !seen[call] {
			t.Errorf("no call %s", call)
		}
	}
	if !seen["GET /crm/properties/2026-03/deals/erp_invoice_id"] {
		t.Errorf("the write-back check did not read GET /crm/properties/2026-03/deals/erp_invoice_id: %v", seen)
	}
}

// The fake refuses HubSpot's legacy paths, so that a call the source
// makes to one fails the tests.
func TestFakeRefusesLegacyPaths(t *testing.T) {
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	f.PutDeal("62515", hubspotfake.Deal{ID: "1", Properties: hubspotfake.Props("dealname", "x")})
	for _, path := range []string{"/crm/v3/objects/deals/1", "/crm/v4/objects/deals/1/associations/companies", "/crm/v3/pipelines/deals",
		"/crm/v3/properties/deals/dealname", "/crm/objects/2026-03/0-3/1"} {
		req, _ := http.NewRequest(http.MethodGet, f.URL+path, nil)
		req.Header.Set("Authorization", "Bearer pat-na1-62515")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		legacy := !strings.Contains(path, "2026-03")
		if legacy != (resp.StatusCode == http.StatusNotFound) {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if n := len(f.LegacyRequests()); n != 4 {
		t.Errorf("%d legacy requests listed, want 4", n)
	}
}

// A base_url that already has an API path of HubSpot's (…/crm/v3, as
// HubSpot's reference pages write the v3 endpoints) is refused at load,
// naming the key and saying to give the host alone: the source adds
// /crm/…/2026-03/… itself, and every call went to /crm/v3/crm/…, answered
// 404, which each check then blamed on something else (a write-back
// property that "does not exist", a deal "neither among the portal's deals
// nor among its deleted ones"). A proxy's own path prefix is taken, and
// the value is shown without its credentials.
func TestBaseURLWithTheAPIPathIsRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:9/crm/v3": `hubspot source: base_url "http://127.0.0.1:9/crm/v3" already has the API path "/crm/v3": ` +
			`dealsync adds the API paths (/crm/objects/2026-03/…, /crm/properties/2026-03/…, /crm/pipelines/2026-03/…) itself; give the host alone, e.g. https://api.hubapi.com`,
		"https://api.hubapi.com/crm/v3/objects/deals":           `already has the API path "/crm/v3/objects/deals"`,
		"https://api.hubapi.com/CRM/V4/":                        `already has the API path "/CRM/V4/"`,
		"https://api.hubapi.com/crm/objects/2026-03":            `already has the API path "/crm/objects/2026-03"`,
		"https://gateway.example/hubspot/crm/properties":        `already has the API path "/crm/properties"`,
		"https://u:S3cret@api.hubapi.com/crm/v3?hapikey=S3cret": `base_url "https://api.hubapi.com/crm/v3" already has the API path "/crm/v3"`,
		"https://api.hubapi.com":                                "",
		"https://api.hubapi.com/":                               "",
		"https://gateway.example/hubspot":                       "",
		"https://gateway.example/crm/hubspot":                   "",
		"http://127.0.0.1:9/crmv3":                              "",
	} {
		cfg := DefaultConfig()
		cfg.ClientSecret = secret.New(oursSecret)
		cfg.Accounts = map[string]Account{"62515": {AccessToken: secret.New("pat-na1-62515")}}
		cfg.BaseURL = raw
		_, err := New(cfg, connectors.Env{})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("base_url %s: %v; want %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "S3cret") {
			t.Errorf("base_url %s: the error shows the credential: %v", raw, err)
		}
	}
}
