package hubspot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http" for the config test
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

// badPropertyAnswer is HubSpot's 400 for a property the portal lacks.
const badPropertyAnswer = `{"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"erp_invoice_url\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"erp_invoice_url\",\"localizedErrorMessage\":\"Property \\\"erp_invoice_url\\\" does not exist\"}]","correlationId":"3a1f0d7e-0000-4000-8000-000000000000","category":"VALIDATION_ERROR"}`

// fakeHubSpot starts hubspotfake with portal 62515 (token) holding the
// deal of HubSpot's docs: a custom-pipeline stage, an unlabeled and a
// primary company, a line item listed twice, a null property.
func fakeHubSpot(t *testing.T, token string) *hubspotfake.Server {
	t.Helper()
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	t.Cleanup(func() { noLegacyCalls(t, f) })
	f.AddPortal("62515", token)
	props := hubspotfake.Props("amount", "12000.10", "closedate", "2026-11-20T23:15:00.000Z",
		"createdate", "2026-10-01T08:00:00.000Z", "deal_currency_code", "eur", "dealname", "Acme annual", "dealstage", "98765432",
		"hs_is_closed_won", "true", "hs_lastmodifieddate", "2026-11-20T23:15:01.000Z",
		"hubspot_owner_id", "910", "pipeline", "75e28846-ad0d-4be2-a027-5e1da6590b98")
	props["custom_po"] = nil
	f.PutDeal("62515", hubspotfake.Deal{ID: "1234567890", Properties: props,
		Companies: []hubspotfake.Association{{ID: "555", Type: "deal_to_company_unlabeled"}, {ID: "444", Type: "deal_to_company"}},
		LineItems: []hubspotfake.Association{{ID: "9001", Type: "deal_to_line_item"}, {ID: "9002", Type: "deal_to_line_item"}, {ID: "9001", Type: "deal_to_line_item"}},
	})
	f.PutCompany("62515", hubspotfake.Object{ID: "444", Properties: hubspotfake.Props("address", "Hauptstr. 1", "address2", "3. OG",
		"city", "Berlin", "country", "DE", "createdate", "2026-01-01T00:00:00Z", "domain", "acme.example",
		"name", "Acme GmbH", "state", "Berlin", "zip", "10115", "billing_email", "ap@acme.example", "vat_id", "DE123456789")})
	f.PutCompany("62515", hubspotfake.Object{ID: "555", Properties: hubspotfake.Props("name", "Not the primary one")})
	f.PutLineItem("62515", hubspotfake.Object{ID: "9001", Properties: hubspotfake.Props("name", "Pro plan, 1 year", "hs_sku", "PRO-1Y",
		"quantity", "2", "price", "6000.05", "discount", "5.00", "amount", "11990.10")})
	nine := hubspotfake.Props("name", "Onboarding", "hs_sku", "ONB", "quantity", "3", "price", "0.1", "hs_discount_percentage", "12.5", "amount", "0.2625")
	nine["discount"] = nil
	f.PutLineItem("62515", hubspotfake.Object{ID: "9002", Properties: nine})
	return f
}

func apiSource(t *testing.T, baseURL string, mutate func(*Config)) *Source {
	return testSource(t, func(c *Config) {
		c.BaseURL = baseURL
		c.WonStages = []string{"98765432"}
		c.Fetch.CompanyEmailProperty = "billing_email"
		c.Fetch.CompanyTaxIDProperty = "vat_id"
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestFetchDeal(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "62515", "1234567890")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	// RawFields (config check's warning of a mapping's deal.raw key that
	// is never there) lists every key a fetched deal has.
	for k := range d.Raw {
		if !slices.Contains(s.RawFields().Exact, k) {
			t.Errorf("deal.raw[%q] is fetched but not in RawFields %v", k, s.RawFields().Exact)
		}
	}
	if len(d.Raw) == 0 {
		t.Error("no deal.raw fetched")
	}
	if d.ID != "1234567890" || d.Name != "Acme annual" || d.Stage != StageWon || d.Currency != "EUR" || d.Owner != "910" {
		t.Errorf("deal header: %+v", d)
	}
	if !d.Amount.Valid || d.Amount.Decimal.String() != "12000.1" || d.CloseDate.String() != "2026-11-20" {
		t.Errorf("amount %v close %s", d.Amount, d.CloseDate)
	}
	// closedate is a datetime: the moment is kept, for a mapping's time_zone.
	if want := time.Date(2026, 11, 20, 23, 15, 0, 0, time.UTC); !d.CloseTime.Equal(want) {
		t.Errorf("CloseTime = %v, want %v", d.CloseTime, want)
	}
	if string(d.Raw["dealstage"]) != `"98765432"` || string(d.Raw["pipeline"]) != `"75e28846-ad0d-4be2-a027-5e1da6590b98"` {
		t.Errorf("Raw: %v", d.Raw)
	}
	c := d.Company
	if c.ID != "444" || c.Name != "Acme GmbH" || c.Email != "ap@acme.example" || c.TaxID != "DE123456789" ||
		c.Address.Line1 != "Hauptstr. 1" || c.Address.Line2 != "3. OG" || c.Address.City != "Berlin" ||
		c.Address.Region != "Berlin" || c.Address.PostalCode != "10115" || c.Address.Country != "DE" {
		t.Errorf("company: %+v", c)
	}
	if len(d.LineItems) != 2 {
		t.Fatalf("line items: %+v", d.LineItems)
	}
	l0, l1 := d.LineItems[0], d.LineItems[1]
	if l0.SKU != "PRO-1Y" || l0.Description != "Pro plan, 1 year" || l0.Quantity.String() != "2" ||
		l0.UnitPrice.String() != "6000.05" || l0.Discount.String() != "10" || !l0.DiscountPercent.IsZero() {
		t.Errorf("line 0 (unit discount 5.00 x 2): %+v", l0)
	}
	if l1.SKU != "ONB" || l1.Quantity.String() != "3" || l1.UnitPrice.String() != "0.1" ||
		!l1.Discount.IsZero() || l1.DiscountPercent.String() != "12.5" {
		t.Errorf("line 1: %+v", l1)
	}
	// Exact: 3 x 0.1 is 0.3, not 0.30000000000000004.
	if got := l1.Quantity.Mul(l1.UnitPrice).String(); got != "0.3" {
		t.Errorf("3 x 0.1 = %s", got)
	}

	log := f.Requests()
	if len(log) != 3 {
		t.Fatalf("requests: %+v", log)
	}
	for _, r := range log {
		if r.Auth != "Bearer pat-na1-62515" {
			t.Errorf("%s %s: Authorization %q", r.Method, r.Path, r.Auth)
		}
		if len(r.Body) > 0 && r.ContentType != "application/json" {
			t.Errorf("%s %s: Content-Type %q", r.Method, r.Path, r.ContentType)
		}
	}
	get := log[0]
	if get.Method != http.MethodGet || get.Path != "/crm/objects/2026-03/0-3/1234567890" {
		t.Errorf("deal read: %s %s", get.Method, get.Path)
	}
	q, _ := url.ParseQuery(get.Query)
	props := strings.Split(q.Get("properties"), ",")
	for _, p := range []string{"dealname", "dealstage", "amount", "closedate", "deal_currency_code", "hubspot_owner_id"} {
		if !contains(props, p) {
			t.Errorf("properties= lacks %s: %v", p, props)
		}
	}
	if q.Get("associations") != "companies,line_items" {
		t.Errorf("associations = %q", q.Get("associations"))
	}
	comp := log[1]
	if comp.Path != "/crm/objects/2026-03/companies/batch/read" || !reflect.DeepEqual(comp.JSON()["inputs"], []any{map[string]any{"id": "444"}}) {
		t.Errorf("company batch read: %+v", comp)
	}
	if _, ok := comp.JSON()["propertiesWithHistory"]; !ok {
		t.Errorf("batch read without propertiesWithHistory (required by the spec): %s", comp.Body)
	}
	if cp := toStrings(comp.JSON()["properties"]); !contains(cp, "billing_email") || !contains(cp, "vat_id") {
		t.Errorf("company properties: %v", cp)
	}
	li := log[2]
	if li.Path != "/crm/objects/2026-03/line_items/batch/read" ||
		!reflect.DeepEqual(li.JSON()["inputs"], []any{map[string]any{"id": "9001"}, map[string]any{"id": "9002"}}) {
		t.Errorf("line item batch read (deduplicated ids): %+v", li)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			s, _ := e.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestFetchDealErrors(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	ctx := context.Background()

	_, err := s.FetchDeal(ctx, "62515", "1")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 404 || api.Service != "hubspot" ||
		!strings.Contains(api.Message, "Object not found") || !strings.Contains(api.Message, "OBJECT_NOT_FOUND") {
		t.Fatalf("404: got %#v", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Permanent {
		t.Errorf("404 classified %v", c)
	}
	if _, err := s.FetchDeal(ctx, "777", "1234567890"); !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Errorf("unknown portal: got %v", err)
	}
	if _, err := s.FetchDeal(ctx, "62515", "12/../34"); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("bad deal id: got %v", err)
	}
	// The other portal's token is not accepted by this fake: 401.
	_, err = s.FetchDeal(ctx, "5799819", "1234567890")
	if !errors.As(err, &api) || api.StatusCode != 401 {
		t.Fatalf("401: got %v", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Unauthorized {
		t.Errorf("401 classified %v", c)
	}
	// It names the setting and what to do.
	if !strings.Contains(err.Error(), "HubSpot refused the private app's access token of portal 5799819, the source's accounts.5799819.access_token: it was rotated") ||
		!strings.Contains(err.Error(), "dealsync runs retry") {
		t.Errorf("401 says neither the setting nor what to do: %v", err)
	}
	// Built from a config, by its config key, where an engineer edits it,
	// with the variable that can set it, in parentheses not within others.
	built := testSourceIn(t, connectors.Env{ConfigKey: "connections.hubspot-eu.source", KeyVar: envVar}, func(c *Config) { c.BaseURL = f.URL })
	_, err = built.FetchDeal(ctx, "5799819", "1234567890")
	if err == nil || !strings.Contains(err.Error(), "HubSpot refused the private app's access token of portal 5799819, connections.hubspot-eu.source.accounts.5799819.access_token "+
		"(or DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_ACCOUNTS_5799819_ACCESS_TOKEN): it was rotated") || wording.ParenDepth(err.Error()) > 1 {
		t.Errorf("401 of a source built from a config: %v", err)
	}
}

func TestFetchDealFollowsPagedAssociations(t *testing.T) {
	var assocCalls []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crm/objects/2026-03/0-3/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"1","properties":{"dealstage":"closedwon"},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","archived":false,
 "associations":{"companies":{"results":[{"id":"444","type":"deal_to_company_unlabeled"}],"paging":{"next":{"after":"MQ==","link":"?after=MQ=="}}},
  "line items":{"results":[{"id":"9001","type":"deal_to_line_item"}],"paging":{"next":{"after":"MQ==","link":"?after=MQ=="}}}}}`)
	})
	mux.HandleFunc("GET /crm/objects/2026-03/0-3/1/associations/{type}", func(w http.ResponseWriter, r *http.Request) {
		assocCalls = append(assocCalls, r.PathValue("type")+"?"+r.URL.RawQuery)
		switch r.PathValue("type") + "/" + r.URL.Query().Get("after") {
		case "companies/":
			_, _ = io.WriteString(w, `{"results":[{"toObjectId":444,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":341,"label":null}]},
 {"toObjectId":9007199254740993,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":341,"label":null},{"category":"HUBSPOT_DEFINED","typeId":5,"label":"Primary"}]}]}`)
		case "line_items/":
			_, _ = io.WriteString(w, `{"results":[{"toObjectId":9001,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":19,"label":null}]}],
 "paging":{"next":{"after":"OTAwMQ==","link":"https://api.hubapi.com/crm/objects/2026-03/0-3/1/associations/line_items?after=OTAwMQ=="}}}`)
		case "line_items/OTAwMQ==":
			_, _ = io.WriteString(w, `{"results":[{"toObjectId":9002,"associationTypes":[{"category":"HUBSPOT_DEFINED","typeId":19,"label":null}]}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	var companyIDs, itemIDs any
	mux.HandleFunc("POST /crm/objects/2026-03/{type}/batch/read", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.PathValue("type") == "companies" {
			companyIDs = body["inputs"]
			_, _ = io.WriteString(w, `{"status":"COMPLETE","results":[{"id":"9007199254740993","properties":{"name":"Primary Co"}}]}`)
			return
		}
		itemIDs = body["inputs"]
		_, _ = io.WriteString(w, `{"status":"COMPLETE","results":[{"id":"9001","properties":{"quantity":"1","price":"1"}},{"id":"9002","properties":{"quantity":"2","price":"3"}}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)
	d, err := s.FetchDeal(context.Background(), "62515", "1")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	if d.Company.ID != "9007199254740993" || d.Company.Name != "Primary Co" || len(d.LineItems) != 2 {
		t.Fatalf("deal: %+v", d)
	}
	if !reflect.DeepEqual(companyIDs, []any{map[string]any{"id": "9007199254740993"}}) ||
		!reflect.DeepEqual(itemIDs, []any{map[string]any{"id": "9001"}, map[string]any{"id": "9002"}}) {
		t.Fatalf("batch inputs: %v / %v", companyIDs, itemIDs)
	}
	want := []string{"companies?limit=500", "line_items?limit=500", "line_items?after=OTAwMQ%3D%3D&limit=500"}
	if !reflect.DeepEqual(assocCalls, want) {
		t.Fatalf("associations calls %q, want %q", assocCalls, want)
	}
}

func TestWriteBack(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	res := connectors.InvoiceResult{InvoiceID: "ed255415-e141-4150-aab7-89c3bbbb851c", Number: "INV-0007", URL: "https://erp.example/invoices/7"}
	if err := s.WriteBack(context.Background(), "62515", "1234567890", res); err != nil {
		t.Fatalf("WriteBack: %v", err)
	}
	log := f.Requests()
	if len(log) != 1 {
		t.Fatalf("requests: %+v", log)
	}
	got := log[0]
	want := map[string]any{"properties": map[string]any{
		"erp_invoice_id":     "ed255415-e141-4150-aab7-89c3bbbb851c",
		"erp_invoice_number": "INV-0007",
		"erp_invoice_url":    "https://erp.example/invoices/7",
		"erp_sync_status":    "synced",
	}}
	if got.Method != "PATCH" || got.Path != "/crm/objects/2026-03/0-3/1234567890" || !reflect.DeepEqual(got.JSON(), want) || got.ContentType != "application/json" {
		t.Fatalf("got %s %s %s (%s)", got.Method, got.Path, got.Body, got.ContentType)
	}
	if d, _ := f.Deal("62515", "1234567890"); f.WriteBacks("62515", "1234567890") != 1 || *d.Properties["erp_invoice_number"] != "INV-0007" {
		t.Fatalf("the fake did not record the write-back: %d", f.WriteBacks("62515", "1234567890"))
	}

	// Configured names; empty values and empty names are left out.
	f.AddDealProperties("62515", "invoice_no", "sync")
	s = apiSource(t, f.URL, func(c *Config) {
		c.WriteBack = WriteBackConfig{InvoiceNumberProperty: "invoice_no", StatusProperty: "sync", StatusValue: "done"}
	})
	f.ResetRequests()
	if err := s.WriteBack(context.Background(), "62515", "1234567890", connectors.InvoiceResult{InvoiceID: "x", Number: "7"}); err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"properties": map[string]any{"invoice_no": "7", "sync": "done"}}
	if log := f.Requests(); len(log) != 1 || !reflect.DeepEqual(log[0].JSON(), want) {
		t.Fatalf("configured names: %+v", log)
	}
	// Nothing configured: no request.
	s = apiSource(t, f.URL, func(c *Config) { c.WriteBack = WriteBackConfig{} })
	f.ResetRequests()
	if err := s.WriteBack(context.Background(), "62515", "1234567890", res); err != nil || len(f.Requests()) != 0 {
		t.Fatalf("no properties: err %v, %d requests", err, len(f.Requests()))
	}
	// A property the portal does not have: HubSpot's 400, with its name.
	s = apiSource(t, f.URL, func(c *Config) { c.WriteBack = WriteBackConfig{InvoiceURLProperty: "erp_link"} })
	var api *connectors.APIError
	if err := s.WriteBack(context.Background(), "62515", "1234567890", res); !errors.As(err, &api) || api.StatusCode != 400 || api.Field != "erp_link" {
		t.Fatalf("unknown property: %v", err)
	}
}

func TestWriteBackErrors(t *testing.T) {
	var answer atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch answer.Load() {
		case 0:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, badPropertyAnswer)
		case 1:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"SECONDLY","category":"RATE_LIMITS"}`)
		case 2:
			w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
			w.Header().Set("X-HubSpot-RateLimit-Remaining", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"TEN_SECONDLY_ROLLING","category":"RATE_LIMITS"}`)
		case 4:
			// The daily limit, its 10-second window not spent.
			w.Header().Set("X-HubSpot-RateLimit-Daily-Remaining", "0")
			w.Header().Set("X-HubSpot-RateLimit-Remaining", "99")
			w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"DAILY","category":"RATE_LIMITS"}`)
		case 6:
			// A rolling limit's 429 whose X-HubSpot-RateLimit-Remaining is
			// not 0 (or absent): the window is waited all the same.
			w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
			w.Header().Set("X-HubSpot-RateLimit-Remaining", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"TEN_SECONDLY_ROLLING","category":"RATE_LIMITS"}`)
		case 7:
			w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "1000")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"SECONDLY","category":"RATE_LIMITS"}`)
		case 8:
			// No window named: the policy's backoff.
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"SECONDLY","category":"RATE_LIMITS"}`)
		case 5:
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"x",`+
				`"errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.deals.write"]}}],"category":"MISSING_SCOPES"}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `<html>bad gateway</html>`)
		}
	}))
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)
	res := connectors.InvoiceResult{InvoiceID: "i", Number: "n"}
	write := func() *connectors.APIError {
		t.Helper()
		err := s.WriteBack(context.Background(), "62515", "1234567890", res)
		var api *connectors.APIError
		if !errors.As(err, &api) {
			t.Fatalf("got %v, want *APIError", err)
		}
		return api
	}

	api := write()
	if api.StatusCode != 400 || api.Field != "erp_invoice_url" || !strings.Contains(api.Message, "does not exist") || api.Op != "write back" {
		t.Errorf("400: %#v", api)
	}
	// HubSpot's support asks for the error's correlationId.
	if !strings.Contains(api.Message, "correlationId 3a1f0d7e-0000-4000-8000-000000000000") {
		t.Errorf("400 without its correlationId: %s", api.Message)
	}
	if c, _ := connectors.Classify(api); c != connectors.Permanent {
		t.Errorf("400 classified %v", c)
	}
	answer.Store(1)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.RetryAfter || d != 3*time.Second {
		t.Errorf("429 Retry-After: %v %v (%#v)", c, d, api)
	}
	answer.Store(2)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.RetryAfter || d != 10*time.Second || !strings.Contains(api.Message, "RATE_LIMITS") {
		t.Errorf("429 rolling window: %v %v (%#v)", c, d, api)
	}
	answer.Store(3)
	api = write()
	if c, _ := connectors.Classify(api); c != connectors.Retry || api.StatusCode != 502 || !strings.Contains(api.Message, "bad gateway") {
		t.Errorf("502: %v (%#v)", c, api)
	}
	// The daily limit is waited out an hour at a time (it was retried at
	// the policy's backoff until the portal's midnight), and says so.
	answer.Store(4)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.RetryAfter || d != time.Hour || !strings.Contains(api.Message, "policy DAILY") {
		t.Errorf("429 daily limit: %v %v (%#v)", c, d, api)
	}
	// A missing scope is named.
	answer.Store(5)
	api = write()
	if c, _ := connectors.Classify(api); c != connectors.Unauthorized || !strings.Contains(api.Message, "required scopes: crm.objects.deals.write") {
		t.Errorf("403 MISSING_SCOPES: %v (%#v)", c, api)
	}
	// Any rolling limit's 429 waits the window it names, whatever
	// X-HubSpot-RateLimit-Remaining says.
	answer.Store(6)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.RetryAfter || d != 10*time.Second {
		t.Errorf("429 rolling window, Remaining 3: %v %v (%#v)", c, d, api)
	}
	answer.Store(7)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.RetryAfter || d != time.Second {
		t.Errorf("429 secondly window, no Remaining: %v %v (%#v)", c, d, api)
	}
	answer.Store(8)
	api = write()
	if c, d := connectors.Classify(api); c != connectors.Retry || d != 0 {
		t.Errorf("429 naming no window: %v %v (%#v)", c, d, api)
	}
}

// A company or line item the deal is associated with that the batch read
// does not return (HubSpot's 207 OBJECT_NOT_FOUND: deleted between the
// deal's read and the batch read) fails the fetch with a retryable error,
// not for good: the retry reads the associations again.
func TestFetchDealAssociatedObjectNotReturnedIsRetried(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	won := "closedwon"
	deal := func(company string, items ...string) {
		d := hubspotfake.Deal{ID: "78", Properties: map[string]*string{"dealstage": &won},
			Companies: []hubspotfake.Association{{ID: company, Type: "deal_to_company"}}}
		for _, id := range items {
			d.LineItems = append(d.LineItems, hubspotfake.Association{ID: id, Type: "deal_to_line_item"})
		}
		f.PutDeal("62515", d)
	}
	for _, tc := range []struct {
		name, company string
		items         []string
		want          string
	}{
		{"company", "446", []string{"9001"}, "company 446"},
		{"line item", "444", []string{"9001", "9999"}, "line item 9999"},
	} {
		deal(tc.company, tc.items...)
		_, err := s.FetchDeal(context.Background(), "62515", "78")
		if err == nil {
			t.Fatalf("%s not returned: no error", tc.name)
		}
		if c, _ := connectors.Classify(err); c != connectors.Retry || errors.Is(err, connectors.ErrPermanent) {
			t.Errorf("%s not returned: classified %v (%v); want Retry", tc.name, c, err)
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "did not return") {
			t.Errorf("%s not returned: %v; want it named", tc.name, err)
		}
	}
	// Once the association is gone too, the retry reads the deal.
	deal("444", "9001")
	if d, err := s.FetchDeal(context.Background(), "62515", "78"); err != nil || d.Company.ID != "444" || len(d.LineItems) != 1 {
		t.Fatalf("after the association went: %+v, %v", d, err)
	}
}

func TestOAuthRefreshToken(t *testing.T) {
	var tokenCalls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/2026-03/token", func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		_ = r.ParseForm()
		f := r.PostForm
		if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-1" || f.Get("client_id") != "cid" || f.Get("client_secret") != "csec" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			// The 2026-03 endpoint's answer: RFC 6749's fields, and HubSpot's
			// own kept beside them.
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"refresh token is invalid, expired or revoked","status":"BAD_REFRESH_TOKEN","message":"refresh token is invalid, expired or revoked","correlationId":"x"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		_, _ = io.WriteString(w, `{"token_type":"bearer","refresh_token":"rt-1","access_token":"oauth-at-1","expires_in":1800}`)
	})
	mux.HandleFunc("PATCH /crm/objects/2026-03/0-3/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer oauth-at-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"id":"1","properties":{},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","archived":false}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mk := func(refresh string) *Source {
		return apiSource(t, srv.URL, func(c *Config) {
			c.TokenURL = srv.URL + "/oauth/2026-03/token"
			c.Accounts = map[string]Account{"62515": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"), RefreshToken: secret.New(refresh)}}}
		})
	}
	s := mk("rt-1")
	for range 3 {
		if err := s.WriteBack(context.Background(), "62515", "1", connectors.InvoiceResult{InvoiceID: "i"}); err != nil {
			t.Fatalf("WriteBack with OAuth: %v", err)
		}
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times for 3 requests, want 1 (cached)", n)
	}
	err := mk("revoked").WriteBack(context.Background(), "62515", "1", connectors.InvoiceResult{InvoiceID: "i"})
	var api *connectors.APIError
	if cl, _ := connectors.Classify(err); !errors.As(err, &api) || api.Op != "oauth token" || api.StatusCode != 400 || !strings.Contains(api.Message, "refresh token is invalid, expired or revoked") || cl != connectors.Unauthorized {
		t.Fatalf("revoked refresh token: got %v", err)
	}
}

func TestRegisteredAndLoadedFromConfig(t *testing.T) {
	spec, ok := connectors.LookupSource("hubspot")
	if !ok {
		t.Fatal("hubspot is not registered")
	}
	dir := t.TempDir()
	t.Setenv("DEALSYNC_TEST_HUBSPOT_SECRET", "from-env")
	t.Setenv("DEALSYNC_TEST_HUBSPOT_PREVIOUS", "previous-from-env")
	yaml := `
targets:
  erp:
    type: http
    base_url: http://127.0.0.1:9/
connections:
  crm:
    target: erp
    trigger:
      won_stages: [closedwon]
    source:
      type: hubspot
      client_secret: env:DEALSYNC_TEST_HUBSPOT_SECRET
      previous_client_secret: env:DEALSYNC_TEST_HUBSPOT_PREVIOUS
      won_stages: ["98765432"]
      legacy_signatures: [v2]
      fetch:
        company_email_property: billing_email
      write_back:
        invoice_url_property: ""
        status_value: done
      accounts:
        "62515":
          access_token: pat-na1-secret-token
          client_secret: private-app-secret
          previous_client_secret: private-app-previous
          won_stages: [1f4f1ec1-8174-49f3-a112-4eaa4748e38e]
        "4294967297":
          oauth:
            client_id: cid
            client_secret: csec
            refresh_token: rt
`
	path := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	c, ok := cfg.Connections["crm"].Source.Spec.(*Config)
	if !ok {
		t.Fatalf("Spec is %T", cfg.Connections["crm"].Source.Spec)
	}
	if c.Tolerance != DefaultTolerance || c.BaseURL != DefaultBaseURL || c.WriteBack.InvoiceNumberProperty != "erp_invoice_number" ||
		c.WriteBack.InvoiceURLProperty != "" || c.WriteBack.StatusValue != "done" || c.Fetch.CompanyEmailProperty != "billing_email" ||
		c.Fetch.CurrencyProperty != "deal_currency_code" || len(c.Accounts) != 2 || c.Accounts["4294967297"].OAuth == nil ||
		!reflect.DeepEqual(c.LegacySignatures, []string{"v2"}) || c.PreviousClientSecret.Describe() != "env:DEALSYNC_TEST_HUBSPOT_PREVIOUS" ||
		c.Accounts["62515"].PreviousClientSecret.IsZero() {
		t.Fatalf("decoded config: %+v", c)
	}
	src, err := spec.Build(c, connectors.Env{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	s := src.(*Source)
	evs, err := s.Parse(&connectors.Webhook{Body: []byte(capturedDealstage)})
	if !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Fatalf("portal 5799819 is not configured: got %v %v", evs, err)
	}
	body := strings.Replace(capturedDealstage, `"portalId":5799819`, `"portalId":62515`, 1)
	if evs, err := s.Parse(&connectors.Webhook{Body: []byte(body)}); err != nil || evs[0].Deal.Stage != StageWon {
		t.Fatalf("account won_stages from YAML: %v %+v", err, evs)
	}
	// Both previous secrets from YAML verify, the portal's for its portal.
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	for _, sec := range []string{"previous-from-env", "private-app-previous"} {
		w := &connectors.Webhook{Method: "POST", URL: oursURI, Body: []byte(body), Received: now,
			Header: http.Header{HeaderSignatureV3: {SignV3(sec, "POST", oursURI, []byte(body), ts)}, HeaderTimestamp: {ts}}}
		if err := s.Verify(w); err != nil {
			t.Errorf("delivery signed with the previous secret %s from YAML: %v", sec, err)
		}
	}

	// Validation at load: a bad legacy scheme, a missing oauth key and a
	// previous secret that does not resolve.
	bad := strings.Replace(yaml, "legacy_signatures: [v2]", "legacy_signatures: [v3]", 1)
	bad = strings.Replace(bad, "            refresh_token: rt\n", "", 1)
	bad = strings.Replace(bad, "env:DEALSYNC_TEST_HUBSPOT_PREVIOUS", "env:DEALSYNC_TEST_HUBSPOT_UNSET_PREVIOUS", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path)
	if err == nil || !strings.Contains(err.Error(), "legacy_signatures") || !strings.Contains(err.Error(), "refresh_token") ||
		!strings.Contains(err.Error(), "source.previous_client_secret") {
		t.Fatalf("invalid config: got %v", err)
	}
	if strings.Contains(err.Error(), "pat-na1-secret-token") {
		t.Fatalf("config error leaks a token: %v", err)
	}
}

// A date property is midnight UTC of its date (HubSpot shows it as that
// date in every time zone); a datetime is a moment.
func TestParseHubSpotDate(t *testing.T) {
	for _, tc := range []struct {
		in, date string
		moment   time.Time
	}{
		{"1796083200000", "2026-12-01", time.Time{}}, // midnight UTC: a date
		{"2026-12-01T00:00:00.000Z", "2026-12-01", time.Time{}},
		{"2026-12-01", "2026-12-01", time.Time{}},
		{"1796081400000", "2026-11-30", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)},
		{"2026-11-30T23:30:00.000Z", "2026-11-30", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)},
		{"2026-12-01T08:30:00+09:00", "2026-11-30", time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)},
	} {
		d, at, err := parseHubSpotDate(tc.in)
		if err != nil || d.String() != tc.date || !at.Equal(tc.moment) {
			t.Errorf("%s: %s %v %v, want %s %v", tc.in, d, at, err, tc.date, tc.moment)
		}
	}
}

// A deal merged into another is answered by HubSpot with that deal (its
// own id): the fetch reports the merged-away deal as StageMerged, naming
// the deal it went into, so that two won deals merged while their runs
// settle do not each invoice the merged deal. The merged deal itself
// fetches as before.
func TestFetchDealMergedIntoAnother(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	f.MergeDeal("62515", "111", "1234567890")
	d, err := s.FetchDeal(context.Background(), "62515", "111")
	if err != nil || d.ID != "111" || d.Stage != StageMerged || string(d.Raw["merged_into"]) != `"1234567890"` || len(d.LineItems) != 0 || d.Amount.Valid {
		t.Fatalf("a merged-away deal: %+v, %v; want stage %q naming the deal it went into", d, err, StageMerged)
	}
	if d, err := s.FetchDeal(context.Background(), "62515", "1234567890"); err != nil || d.Stage != StageWon {
		t.Fatalf("the merged deal: %+v, %v", d, err)
	}
}

// The company billed is the deal's Primary one, else its only one; a deal
// with several companies and none Primary fails for good naming them (the
// first listed was billed, silently: a reseller, say).
func TestFetchDealWithoutAPrimaryCompany(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	won := "closedwon"
	deal := func(companies ...hubspotfake.Association) {
		f.PutDeal("62515", hubspotfake.Deal{ID: "77", Properties: map[string]*string{"dealstage": &won}, Companies: companies})
	}
	deal(hubspotfake.Association{ID: "444", Type: "deal_to_company_unlabeled"})
	if d, err := s.FetchDeal(context.Background(), "62515", "77"); err != nil || d.Company.ID != "444" {
		t.Errorf("one unlabeled company: %+v, %v; want it billed", d.Company, err)
	}
	deal(hubspotfake.Association{ID: "555", Type: "deal_to_company_unlabeled"}, hubspotfake.Association{ID: "444", Type: "deal_to_company_unlabeled"})
	_, err := s.FetchDeal(context.Background(), "62515", "77")
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "2 companies are associated (555, 444) and none is the Primary one") {
		t.Errorf("two unlabeled companies: %v; want a refusal naming them", err)
	}
	deal(hubspotfake.Association{ID: "555", Type: "deal_to_company_unlabeled"}, hubspotfake.Association{ID: "444", Type: "deal_to_company"})
	if d, err := s.FetchDeal(context.Background(), "62515", "77"); err != nil || d.Company.ID != "444" {
		t.Errorf("a Primary among two: %+v, %v; want the Primary billed", d.Company, err)
	}
}

// An OAuth portal's access token refused before its expiry (a 401:
// revoked, or a clock that stepped) is dropped and a new one asked for,
// once, before the call fails: it failed the run as unauthorized.
func TestOAuthAccessTokenRefusedIsRenewedOnce(t *testing.T) {
	var tokenCalls, patches atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/2026-03/token", func(w http.ResponseWriter, r *http.Request) {
		n := tokenCalls.Add(1)
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		_, _ = fmt.Fprintf(w, `{"token_type":"bearer","refresh_token":"rt-1","access_token":"oauth-at-%d","expires_in":1800}`, n)
	})
	mux.HandleFunc("PATCH /crm/objects/2026-03/0-3/{id}", func(w http.ResponseWriter, r *http.Request) {
		patches.Add(1)
		if r.Header.Get("Authorization") == "Bearer oauth-at-1" || r.PathValue("id") == "401" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"status":"error","message":"The OAuth token used to make this call expired.","category":"EXPIRED_AUTHENTICATION"}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"1","properties":{}}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	oauth := func(c *Config) {
		c.BaseURL = srv.URL
		c.TokenURL = srv.URL + "/oauth/2026-03/token"
		c.Accounts = map[string]Account{"62515": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"), RefreshToken: secret.New("rt-1")}}}
	}
	s := apiSource(t, srv.URL, oauth)
	if err := s.WriteBack(context.Background(), "62515", "1", connectors.InvoiceResult{InvoiceID: "i"}); err != nil || tokenCalls.Load() != 2 || patches.Load() != 2 {
		t.Fatalf("a refused access token: %v after %d token requests and %d calls; want it renewed once and the call made", err, tokenCalls.Load(), patches.Load())
	}
	// A 401 that a new token does not cure is the answer: once, not a loop.
	tokenCalls.Store(0)
	patches.Store(0)
	err := s.WriteBack(context.Background(), "62515", "401", connectors.InvoiceResult{InvoiceID: "i"})
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || patches.Load() != 2 || tokenCalls.Load() != 1 {
		t.Errorf("a 401 a new token does not cure: %v (class %v) after %d calls and %d token requests; want unauthorized after 2 and 1", err, cl, patches.Load(), tokenCalls.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "HubSpot refused portal 62515's OAuth access token, one just refreshed too, of the app set in the source's accounts.62515.oauth: check") ||
		!strings.Contains(err.Error(), "that the source's accounts.62515.oauth.client_id and accounts.62515.oauth.client_secret are that app's") {
		t.Errorf("a 401 a new token does not cure does not name the setting: %v", err)
	}
	// Built from a config, by their config keys, where an engineer edits
	// them, with the variables that can set them (not the block's: no
	// variable sets a block), in parentheses not within others.
	built := testSourceIn(t, connectors.Env{ConfigKey: "connections.hubspot-eu.source", KeyVar: envVar}, oauth)
	err = built.WriteBack(context.Background(), "62515", "401", connectors.InvoiceResult{InvoiceID: "i"})
	const keys = "connections.hubspot-eu.source.accounts.62515.oauth"
	const vars = "DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_ACCOUNTS_62515_OAUTH"
	if err == nil || !strings.Contains(err.Error(), "one just refreshed too, of the app set in "+keys+" (or "+vars+"): check that the app is still installed "+
		"in the portal and that "+keys+".client_id (or "+vars+"_CLIENT_ID) and "+keys+".client_secret (or "+vars+"_CLIENT_SECRET) are that app's") || wording.ParenDepth(err.Error()) > 1 {
		t.Errorf("a 401 of a source built from a config: %v", err)
	}
}

// A token endpoint that redirects is not followed (the client secret and
// refresh token are in the body): the write-back fails for good, naming
// where it pointed without its query, and nothing reaches that address.
func TestOAuthTokenRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"bearer","refresh_token":"rt-1","access_token":"at","expires_in":1800}`)
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/oauth/2026-03/token?key=csec", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s := apiSource(t, srv.URL, func(c *Config) {
		c.TokenURL = srv.URL + "/oauth/2026-03/token"
		c.Accounts = map[string]Account{"62515": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"), RefreshToken: secret.New("rt-1")}}}
	})
	err := s.WriteBack(context.Background(), "62515", "1", connectors.InvoiceResult{InvoiceID: "i"})
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || elsewhere.Load() != 0 ||
		!strings.Contains(fmt.Sprint(err), "redirect (to "+other.URL+"/oauth/2026-03/token)") || strings.Contains(fmt.Sprint(err), "csec") {
		t.Errorf("%v (class %v), %d requests where it pointed; want a permanent refusal naming %s/oauth/2026-03/token, none there", err, cl, elsewhere.Load(), other.URL)
	}
}

// A won deal deleted in HubSpot while its run settles (a duplicate, say)
// is answered 404 and kept archived: the fetch finds it there and reports
// it as StageDeleted, with its own fields and stage id but neither its
// company nor its line items, so that its run ends DealNotWon rather than
// failing CRMRejected. A merged-away deal whose surviving deal was
// deleted is still reported merged; an id found nowhere keeps the 404.
func TestFetchDealDeleted(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	s := apiSource(t, f.URL, nil)
	ctx := context.Background()
	f.MergeDeal("62515", "111", "1234567890")
	f.DeleteDeal("62515", "1234567890")
	f.ResetRequests()

	d, err := s.FetchDeal(ctx, "62515", "1234567890")
	if err != nil || d.ID != "1234567890" || d.Stage != StageDeleted || d.Stage == s.WonStage() || d.Name != "Acme annual" ||
		string(d.Raw["dealstage"]) != `"98765432"` || d.Company.ID != "" || len(d.LineItems) != 0 || d.Amount.Decimal.String() != "12000.1" {
		t.Fatalf("a deleted won deal: %+v, %v; want stage %q with its own fields only", d, err, StageDeleted)
	}
	var lookups int
	for _, r := range f.Requests() {
		q, _ := url.ParseQuery(r.Query)
		if r.Path == "/crm/objects/2026-03/0-3/1234567890" && q.Get("archived") == "true" {
			lookups++
		}
		if r.Method == http.MethodPost || strings.HasPrefix(r.Path, "/crm/pipelines/") {
			t.Errorf("%s %s read for a deleted deal", r.Method, r.Path)
		}
	}
	if lookups != 1 {
		t.Errorf("%d look-ups among the archived deals, want 1", lookups)
	}

	d, err = s.FetchDeal(ctx, "62515", "111")
	if err != nil || d.Stage != StageMerged || string(d.Raw["merged_into"]) != `"1234567890"` {
		t.Errorf("merged into a deal deleted since: %+v, %v; want stage %q", d, err, StageMerged)
	}

	_, err = s.FetchDeal(ctx, "62515", "42")
	var api *connectors.APIError
	if c, _ := connectors.Classify(err); !errors.As(err, &api) || api.StatusCode != http.StatusNotFound || c != connectors.Permanent ||
		!strings.Contains(err.Error(), "nor among its deleted ones") {
		t.Errorf("a deal neither stored nor deleted: %v (class %v); want the 404, permanent", err, c)
	}
}

// When the look-up among the deleted deals fails, a failure that is
// retried is the fetch's (asked again on the retry), and a refused one
// leaves the 404.
func TestFetchDealDeletedLookupFails(t *testing.T) {
	var status atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crm/objects/2026-03/0-3/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("archived") != "true" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"status":"error","message":"Object not found.","category":"OBJECT_NOT_FOUND"}`)
			return
		}
		if status.Load() == http.StatusOK {
			// Found, but not archived: restored between the two reads.
			_, _ = io.WriteString(w, `{"id":"7","properties":{"dealstage":"closedwon"},"archived":false}`)
			return
		}
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, `{"status":"error","message":"injected","category":"ERROR"}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)

	status.Store(http.StatusBadGateway)
	_, err := s.FetchDeal(context.Background(), "62515", "7")
	var api *connectors.APIError
	if c, _ := connectors.Classify(err); c != connectors.Retry || !errors.As(err, &api) || api.StatusCode != http.StatusBadGateway {
		t.Errorf("look-up not answered: %v (class %v); want it retried", err, c)
	}
	status.Store(http.StatusBadRequest)
	_, err = s.FetchDeal(context.Background(), "62515", "7")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !errors.As(err, &api) || api.StatusCode != http.StatusNotFound {
		t.Errorf("look-up refused: %v (class %v); want the 404", err, c)
	}
	// The token refused on the look-up: CRMUnauthorized, as the deal's
	// own read would have been.
	status.Store(http.StatusUnauthorized)
	_, err = s.FetchDeal(context.Background(), "62515", "7")
	if c, _ := connectors.Classify(err); c != connectors.Unauthorized {
		t.Errorf("look-up unauthorized: %v (class %v); want Unauthorized", err, c)
	}
	// Found among the archived deals but not archived (restored between
	// the reads): neither deleted nor the 404; read again.
	status.Store(http.StatusOK)
	d, err := s.FetchDeal(context.Background(), "62515", "7")
	if c, _ := connectors.Classify(err); err == nil || c != connectors.Retry || d.Stage == StageDeleted {
		t.Errorf("deal restored between the reads: %+v, %v (class %v); want a retried error", d, err, c)
	}
}

// A line item priced in another currency than the deal's fails the fetch,
// naming it, rather than being billed as the deal's currency at its
// figures; one in the deal's currency (any letter case) is taken.
func TestFetchDealRefusesALineItemInAnotherCurrency(t *testing.T) {
	for _, tc := range []struct{ currency, wantErr string }{
		{"EUR", ""},
		{"eur", ""},
		{"USD", `deal 1234567890 line item 9002 ("Onboarding") is priced in USD but the deal is in EUR`},
	} {
		f := fakeHubSpot(t, "pat-na1-62515")
		nine := hubspotfake.Props("name", "Onboarding", "hs_sku", "ONB", "quantity", "3", "price", "0.1", "amount", "0.3",
			"hs_line_item_currency_code", tc.currency)
		f.PutLineItem("62515", hubspotfake.Object{ID: "9002", Properties: nine})
		d, err := apiSource(t, f.URL, nil).FetchDeal(context.Background(), "62515", "1234567890")
		if tc.wantErr == "" {
			if err != nil || len(d.LineItems) != 2 {
				t.Errorf("%s: %v, %d lines", tc.currency, err, len(d.LineItems))
			}
			continue
		}
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v; want a permanent error saying %q", tc.currency, err, tc.wantErr)
		}
	}
}

// HubSpot retires its v1 OAuth token endpoint on 16 February 2027: the
// default is the 2026-03 one, and a token_url that still names v1 is
// warned of at start when a portal refreshes its token with OAuth (a
// private app's token is not refreshed: no warning).
func TestLegacyTokenURLIsWarnedOf(t *testing.T) {
	if !strings.HasSuffix(DefaultConfig().TokenURL, "/oauth/2026-03/token") {
		t.Errorf("default token_url %s, want HubSpot's 2026-03 endpoint", DefaultConfig().TokenURL)
	}
	oauthAccount := map[string]Account{"62515": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"), RefreshToken: secret.New("rt")}}}
	for _, c := range []struct {
		name     string
		tokenURL string
		accounts map[string]Account
		warned   bool
	}{
		{"v1 with OAuth", "https://api.hubapi.com/oauth/v1/token", oauthAccount, true},
		{"v1 with a trailing slash", "https://api.hubapi.com/oauth/v1/token/", oauthAccount, true},
		{"default with OAuth", "", oauthAccount, false},
		{"v1 with a private app's token", "https://api.hubapi.com/oauth/v1/token", nil, false},
	} {
		var logs strings.Builder
		cfg := DefaultConfig()
		cfg.ClientSecret = secret.New(oursSecret)
		cfg.TokenURL = c.tokenURL
		cfg.Accounts = c.accounts
		if cfg.Accounts == nil {
			cfg.Accounts = map[string]Account{"62515": {AccessToken: secret.New("pat-na1-62515")}}
		}
		if _, err := New(cfg, connectors.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
			t.Fatalf("%s: New: %v", c.name, err)
		}
		got := strings.Contains(logs.String(), "retires on 16 February 2027") && strings.Contains(logs.String(), "portals=[62515]")
		if got != c.warned {
			t.Errorf("%s: warned %v, want %v; log %q", c.name, got, c.warned, logs.String())
		}
	}
}

// A write-back answered with another deal (HubSpot answers a merged-away
// id with the deal it went into, as a GET does) is logged as a warning
// naming both deals: the invoice may have been written onto the other
// deal. Not a failure: a mock of the API (Prism) answers its example's
// id, and whether HubSpot's PATCH follows a merge is not verified.
func TestWriteBackAnsweredWithAnotherDeal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := "999"
		switch {
		case strings.HasSuffix(r.URL.Path, "/123"):
			id = "123"
		case strings.HasSuffix(r.URL.Path, "/789"):
			return // 200 with no body: HubSpot's success all the same
		}
		_, _ = io.WriteString(w, `{"id":"`+id+`","properties":{},"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z","archived":false}`)
	}))
	defer srv.Close()
	var logs strings.Builder
	s := apiSource(t, srv.URL, nil)
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	if err := s.WriteBack(context.Background(), "62515", "123", connectors.InvoiceResult{InvoiceID: "INV-1"}); err != nil || logs.Len() != 0 {
		t.Fatalf("answered with the deal itself: %v, log %q", err, logs.String())
	}
	if err := s.WriteBack(context.Background(), "62515", "456", connectors.InvoiceResult{InvoiceID: "INV-2"}); err != nil {
		t.Fatalf("answered with another deal: %v, want a warning only", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "deal_id=456 answered_deal_id=999 invoice_id=INV-2") {
		t.Errorf("log %q, want a warning naming both deals and the invoice", got)
	}
	if err := s.WriteBack(context.Background(), "62515", "789", connectors.InvoiceResult{InvoiceID: "INV-3"}); err != nil || strings.Contains(logs.String(), "deal_id=789") {
		t.Errorf("a success answer without a body: %v, log %q; want success, no warning", err, logs.String())
	}
}
