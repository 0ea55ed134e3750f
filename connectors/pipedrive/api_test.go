package pipedrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http" for the config test
	"github.com/dealsync/dealsync/connectors/pipedrive/pipedrivefake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Records shaped as in Pipedrive's API v2 reference (openapi-v2.yaml).
const (
	dealRecord = `{"id":213973,"title":"Acme annual","owner_id":12597982,"person_id":176578,"org_id":5063,
 "pipeline_id":50,"stage_id":428,"value":12000.1,"currency":"eur","add_time":"2026-01-01T10:00:00Z","update_time":"2026-01-14T18:16:56Z",
 "stage_change_time":"2026-01-14T18:16:56Z","is_deleted":false,"is_archived":false,"status":"won","probability":null,"lost_reason":null,
 "visible_to":3,"close_time":"2026-01-14T18:16:56Z","won_time":"2026-01-14T23:30:00Z","lost_time":null,"expected_close_date":"2026-01-31",
 "label_ids":[],"origin":"ManuallyCreated","origin_id":null,"channel":null,"channel_id":null,"custom_fields":{"d1f0aa3f0c5e4b2a9c8e7d6c5b4a3f2e1d0c9b8a":"PO-77"}}`
	orgRecord = `{"id":5063,"name":"Acme GmbH","owner_id":1,"add_time":"2026-01-01T10:00:00Z","update_time":"2026-01-01T10:00:00Z",
 "is_deleted":false,"visible_to":3,"address":{"value":"Hauptstr. 1, 10115 Berlin, Germany","country":"DE","admin_area_level_1":"Berlin",
 "admin_area_level_2":null,"locality":"Berlin","sublocality":null,"route":"Hauptstr.","street_number":"1","subpremise":"3. OG","postal_code":"10115"},
 "label_ids":[],"custom_fields":{"aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11":"ap@acme.example","bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22":"DE123456789"}}`
	product1 = `{"id":1,"sum":11990.1,"tax":19,"deal_id":213973,"name":"Pro plan, 1 year","product_id":501,"product_variation_id":null,"order_nr":1,
  "add_time":"2026-01-01 10:00:00","update_time":"2026-01-01 10:00:00","comments":"","currency":"EUR","discount":10,"discount_type":"amount",
  "quantity":2,"item_price":6000.05,"tax_method":"exclusive","is_enabled":true,"billing_frequency":"one-time","billing_frequency_cycles":null,"billing_start_date":null}`
	product2 = `{"id":2,"sum":0.2625,"tax":7,"deal_id":213973,"name":"Onboarding","product_id":502,"order_nr":2,"comments":null,"currency":"EUR",
  "discount":12.5,"discount_type":"percentage","quantity":3,"item_price":0.1,"tax_method":"none","is_enabled":true}`
	product3 = `{"id":3,"sum":100,"tax":0,"deal_id":213973,"name":"Disabled add-on","product_id":503,"order_nr":3,"currency":"EUR",
  "discount":0,"discount_type":"percentage","quantity":1,"item_price":100,"tax_method":"none","is_enabled":false}`
)

// Write-back custom field keys.
var writeBackFields = []string{"f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1", "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2",
	"f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3", "f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4"}

// fakePipedrive starts pipedrivefake with company 6083095 (token) holding
// the reference's deal, organization and products; its products come in
// two pages.
func fakePipedrive(t *testing.T, token string) *pipedrivefake.Server {
	t.Helper()
	f := pipedrivefake.New()
	t.Cleanup(f.Close)
	f.ProductsPageSize = 1
	const c = "6083095"
	f.AddCompany(c, token)
	f.AddDealFields(c, writeBackFields...)
	f.PutDeal(c, pipedrivefake.ParseRecord(dealRecord))
	f.PutOrganization(c, pipedrivefake.ParseRecord(orgRecord))
	f.PutDealProducts(c, "213973", pipedrivefake.ParseRecord(product1), pipedrivefake.ParseRecord(product2), pipedrivefake.ParseRecord(product3))
	f.PutProducts(c, pipedrivefake.ParseRecord(`{"id":502,"name":"Onboarding","code":"ONB","unit":"h","tax":0,"is_deleted":false}`),
		pipedrivefake.ParseRecord(`{"id":501,"name":"Pro plan","code":"PRO-1Y","unit":"","tax":19,"is_deleted":false}`))
	return f
}

func apiSource(t *testing.T, base string, mutate func(*Config)) *Source {
	return testSource(t, func(c *Config) {
		c.BaseURL = base
		c.Fetch = FetchConfig{OrganizationEmailField: "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11", OrganizationTaxIDField: "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22"}
		c.WriteBack = WriteBackConfig{InvoiceIDField: "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1", InvoiceNumberField: "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2",
			InvoiceURLField: "f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3", StatusField: "f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4", StatusValue: "synced"}
		if mutate != nil {
			mutate(c)
		}
	})
}

// The street line is the address as written when its first part holds
// the route and the number (the number first in the US, after in
// Germany), else the route and the number.
func TestStreetLine(t *testing.T) {
	for _, c := range []struct{ value, route, number, want string }{
		{"123 Main St, Springfield, IL 62701, USA", "Main St", "123", "123 Main St"},
		{"Hauptstr. 1, 10115 Berlin, Germany", "Hauptstr.", "1", "Hauptstr. 1"},
		{"Springfield", "Main St", "123", "Main St 123"},
		{"", "", "", ""},
	} {
		if got := streetLine(c.value, c.route, c.number); got != c.want {
			t.Errorf("streetLine(%q, %q, %q) = %q, want %q", c.value, c.route, c.number, got, c.want)
		}
	}
}

func TestFetchDeal(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "213973")
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
	if d.ID != "213973" || d.Name != "Acme annual" || d.Stage != "won" || d.Currency != "EUR" || d.Owner != "12597982" ||
		d.Amount.Decimal.String() != "12000.1" || d.CloseDate.String() != "2026-01-14" {
		t.Errorf("deal: %+v", d)
	}
	if want := time.Date(2026, 1, 14, 23, 30, 0, 0, time.UTC); !d.CloseTime.Equal(want) {
		t.Errorf("CloseTime = %v, want won_time %v", d.CloseTime, want)
	}
	if string(d.Raw["stage_id"]) != `428` || string(d.Raw["org_id"]) != `5063` || !strings.Contains(string(d.Raw["custom_fields"]), "PO-77") {
		t.Errorf("Raw: %v", d.Raw)
	}
	c := d.Company
	if c.ID != "5063" || c.Name != "Acme GmbH" || c.Email != "ap@acme.example" || c.TaxID != "DE123456789" ||
		c.Address.Line1 != "Hauptstr. 1" || c.Address.Line2 != "3. OG" || c.Address.City != "Berlin" || c.Address.PostalCode != "10115" ||
		c.Address.Region != "Berlin" || c.Address.Country != "DE" {
		t.Errorf("company: %+v", c)
	}
	if len(d.LineItems) != 2 {
		t.Fatalf("line items (disabled one left out): %+v", d.LineItems)
	}
	l0, l1 := d.LineItems[0], d.LineItems[1]
	if l0.SKU != "PRO-1Y" || l0.Description != "Pro plan, 1 year" || l0.Quantity.String() != "2" || l0.UnitPrice.String() != "6000.05" ||
		l0.Discount.String() != "10" || !l0.DiscountPercent.IsZero() {
		t.Errorf("line 0 (amount discount): %+v", l0)
	}
	if l1.SKU != "ONB" || l1.Quantity.String() != "3" || l1.UnitPrice.String() != "0.1" || !l1.Discount.IsZero() || l1.DiscountPercent.String() != "12.5" {
		t.Errorf("line 1 (percentage discount): %+v", l1)
	}
	// Pipedrive's rate per line: the product's tax, 0 for tax_method
	// none (no tax added, whatever rate the product keeps).
	if !l0.TaxRate.Valid || l0.TaxRate.Decimal.String() != "19" || !l1.TaxRate.Valid || !l1.TaxRate.Decimal.IsZero() {
		t.Errorf("tax rates: %v and %v, want 19 (exclusive) and 0 (none)", l0.TaxRate, l1.TaxRate)
	}
	var paths []string
	for _, r := range f.Requests() {
		paths = append(paths, r.Method+" "+r.Path+"?"+r.Query)
		if r.Token != "token-6083095" {
			t.Errorf("%s without x-api-token", r.Path)
		}
	}
	want := []string{
		"GET /api/v2/deals/213973?",
		"GET /api/v2/organizations/5063?",
		"GET /api/v2/deals/213973/products?limit=500&sort_by=order_nr",
		"GET /api/v2/deals/213973/products?cursor=eyJpZCI6MX0&limit=500&sort_by=order_nr",
		"GET /api/v2/deals/213973/products?cursor=eyJpZCI6Mn0&limit=500&sort_by=order_nr",
		"GET /api/v2/deals/213973/discounts?",
		"GET /api/v2/products?ids=501%2C502&limit=100",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("requests:\n got %q\nwant %q", paths, want)
	}
}

func TestFetchDealErrors(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, f.URL, nil)
	_, err := s.FetchDeal(context.Background(), "6083095", "1")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != 404 || api.Message != "Deal not found" || api.Service != "pipedrive" {
		t.Fatalf("404: %#v", err)
	}
	_, err = s.FetchDeal(context.Background(), "15747575", "213973")
	if !errors.As(err, &api) || api.StatusCode != 401 || api.Message != "unauthorized access" ||
		!strings.Contains(err.Error(), "accounts.15747575.api_token") || !strings.Contains(err.Error(), "dealsync runs retry") {
		t.Fatalf("401: %v; want the API error, naming the account's api_token and what to do", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Unauthorized {
		t.Errorf("401: class %v, want Unauthorized", c)
	}
	// Built from a config, by its config key, where an engineer edits it,
	// with the variable that can set it, in parentheses not within others.
	built := testSourceIn(t, connectors.Env{ConfigKey: "connections.pd.source", KeyVar: func(key string) string {
		return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
	}}, func(c *Config) { c.BaseURL = f.URL })
	_, err = built.FetchDeal(context.Background(), "15747575", "213973")
	if err == nil || !strings.Contains(err.Error(), "Pipedrive refused the API token of company 15747575, connections.pd.source.accounts.15747575.api_token "+
		"(or DEALSYNC_CONNECTIONS_PD_SOURCE_ACCOUNTS_15747575_API_TOKEN): it was regenerated") || wording.ParenDepth(err.Error()) > 1 {
		t.Errorf("401 of a source built from a config: %v", err)
	}
	if _, err := s.FetchDeal(context.Background(), "42", "213973"); !errors.Is(err, connectors.ErrUnknownAccount) {
		t.Fatalf("unknown company: %v", err)
	}
	if _, err := s.FetchDeal(context.Background(), "6083095", "../users"); !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestWriteBack(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	s := apiSource(t, f.URL, nil)
	res := connectors.InvoiceResult{InvoiceID: "inv-9", Number: "INV-0007", URL: "https://erp.example/i/9"}
	if err := s.WriteBack(context.Background(), "6083095", "213973", res); err != nil {
		t.Fatalf("WriteBack: %v", err)
	}
	// The deal is read first (is it archived?), then written.
	log := f.Requests()
	if len(log) != 2 || log[0].Method != "GET" || log[0].Path != "/api/v2/deals/213973" {
		t.Fatalf("requests %+v; want GET /api/v2/deals/213973, then the PATCH", log)
	}
	got := log[1]
	want := map[string]any{"custom_fields": map[string]any{
		"f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1": "inv-9",
		"f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2": "INV-0007",
		"f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3": "https://erp.example/i/9",
		"f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4": "synced",
	}}
	if got.Method != "PATCH" || got.Path != "/api/v2/deals/213973" || !reflect.DeepEqual(got.JSON(), want) {
		t.Fatalf("got %s %s %s", got.Method, got.Path, got.Body)
	}
	if d, _ := f.Deal("6083095", "213973"); f.WriteBacks("6083095", "213973") != 1 ||
		d["custom_fields"].(map[string]any)["f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2"] != "INV-0007" {
		t.Fatalf("the fake did not record the write-back: %v", d)
	}
	// No field configured: nothing sent.
	s = apiSource(t, f.URL, func(c *Config) { c.WriteBack = WriteBackConfig{} })
	f.ResetRequests()
	if err := s.WriteBack(context.Background(), "6083095", "213973", res); err != nil || len(f.Requests()) != 0 {
		t.Fatalf("nothing configured: %v, %d requests", err, len(f.Requests()))
	}
}

func TestWriteBackErrors(t *testing.T) {
	var answer atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet { // the read before the write-back: a deal not archived
			_, _ = io.WriteString(w, `{"success":true,"data":{"id":213973,"status":"won","is_archived":false,"archive_time":null}}`)
			return
		}
		switch answer.Load() {
		case 0:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"success":false,"error":"Invalid custom field value for 'f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3'","error_info":"Please check developers.pipedrive.com for more information about Pipedrive API.","data":null,"additional_data":null}`)
		case 1:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"success":false,"error":"Request over limit","error_info":"Please check developers.pipedrive.com"}`)
		case 2:
			w.Header().Set("X-RateLimit-Reset", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"success":false,"error":"Request over limit"}`)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `upstream unavailable`)
		}
	}))
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)
	write := func() *connectors.APIError {
		t.Helper()
		var api *connectors.APIError
		if err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{InvoiceID: "i"}); !errors.As(err, &api) {
			t.Fatalf("got %v", err)
		}
		return api
	}
	if api := write(); api.StatusCode != 400 || api.Field != "f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3" || !strings.Contains(api.Message, "Invalid custom field") {
		t.Errorf("400: %#v", api)
	}
	answer.Store(1)
	if c, d := connectors.Classify(write()); c != connectors.RetryAfter || d != 2*time.Second {
		t.Errorf("429 Retry-After: %v %v", c, d)
	}
	answer.Store(2)
	if c, d := connectors.Classify(write()); c != connectors.RetryAfter || d != 7*time.Second {
		t.Errorf("429 X-RateLimit-Reset: %v %v", c, d)
	}
	answer.Store(3)
	if api := write(); api.StatusCode != 503 || api.Message != "upstream unavailable" {
		t.Errorf("503: %#v", api)
	} else if c, _ := connectors.Classify(api); c != connectors.Retry {
		t.Errorf("503 classified %v", c)
	}
}

// A 429 that says the daily budget is spent waits until the next midnight
// UTC, at most an hour, not the 2-second window of X-RateLimit-Reset.
func TestDailyBudgetSpentWaitsForTheNextDay(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tokenBudget := http.Header{"X-Daily-Ratelimit-Token-Remaining": {"0"}, "X-Ratelimit-Reset": {"2"}}
	requestsLeft := http.Header{"X-Daily-Requests-Left": {"0"}, "X-Ratelimit-Reset": {"2"}}
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
		now    time.Time
		want   time.Duration
		daily  string // the header the message names; "" for a burst limit
	}{
		{"token budget, midday", http.MethodGet, tokenBudget, at("2026-03-10T10:00:00Z"), time.Hour, "x-daily-ratelimit-token-remaining"},
		{"token budget, before midnight UTC", http.MethodPatch, tokenBudget, at("2026-03-10T23:40:00Z"), 20 * time.Minute, "x-daily-ratelimit-token-remaining"},
		{"token budget, half a second before midnight", http.MethodGet, tokenBudget, at("2026-03-10T23:59:59.5Z"), 500 * time.Millisecond, "x-daily-ratelimit-token-remaining"},
		{"token budget, at midnight UTC", http.MethodGet, tokenBudget, at("2026-03-11T00:00:00Z"), time.Hour, "x-daily-ratelimit-token-remaining"},
		{"token budget, midnight UTC is not the local one", http.MethodGet, tokenBudget, at("2026-03-11T01:30:00+02:00"), 30 * time.Minute, "x-daily-ratelimit-token-remaining"},
		{"token budget, a longer Retry-After", http.MethodGet,
			http.Header{"X-Daily-Ratelimit-Token-Remaining": {"0"}, "Retry-After": {"7200"}}, at("2026-03-10T10:00:00Z"), 2 * time.Hour, "x-daily-ratelimit-token-remaining"},
		{"token budget, a shorter Retry-After", http.MethodGet,
			http.Header{"X-Daily-Ratelimit-Token-Remaining": {"0"}, "Retry-After": {"2"}}, at("2026-03-10T10:00:00Z"), time.Hour, "x-daily-ratelimit-token-remaining"},
		{"POST/PUT requests of the day, a write", http.MethodPatch, requestsLeft, at("2026-03-10T10:00:00Z"), time.Hour, "x-daily-requests-left"},
		{"POST/PUT requests of the day, a read", http.MethodGet, requestsLeft, at("2026-03-10T10:00:00Z"), 2 * time.Second, ""},
		{"budget left: the burst window", http.MethodGet,
			http.Header{"X-Daily-Ratelimit-Token-Remaining": {"1500"}, "X-Daily-Requests-Left": {"9"}, "X-Ratelimit-Reset": {"2"}}, at("2026-03-10T10:00:00Z"), 2 * time.Second, ""},
		{"no daily header: the burst window", http.MethodPatch, http.Header{"X-Ratelimit-Reset": {"2"}}, at("2026-03-10T23:59:00Z"), 2 * time.Second, ""},
	} {
		resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: tc.header, Request: &http.Request{Method: tc.method}}
		e := apiErrorAt("write back", resp, []byte(`{"success":false,"error":"Request over limit"}`), tc.now)
		c, d := connectors.Classify(e)
		if c != connectors.RetryAfter || d != tc.want {
			t.Errorf("%s: %v %v, want a retry after %v", tc.name, c, d, tc.want)
		}
		if said := strings.Contains(e.Message, "daily API budget is spent"); said != (tc.daily != "") || said && !strings.Contains(e.Message, tc.daily+" 0") {
			t.Errorf("%s: message %q", tc.name, e.Message)
		}
	}
}

// Through the client: the wait is at most an hour, and more than the
// 2-second window.
func TestDailyBudgetSpentThroughTheAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-ratelimit-reset", "2")
		w.Header().Set("x-daily-ratelimit-token-remaining", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"success":false,"error":"Request over limit","error_info":"Please check developers.pipedrive.com"}`)
	}))
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)
	_, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if c, d := connectors.Classify(err); c != connectors.RetryAfter || d <= 2*time.Second || d > time.Hour ||
		!strings.Contains(err.Error(), "daily API budget is spent") {
		t.Fatalf("got %v (%v after %v)", err, c, d)
	}
}

// A 402 (the company's account not open) fails for good and says what
// to do; a 403 that is not JSON is a proxy's or a CDN's page, retried
// with backoff, while Pipedrive's own (JSON) 403 stays a refusal.
func TestPaymentRequiredAndForbiddenPages(t *testing.T) {
	var answer atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch answer.Load() {
		case 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPaymentRequired)
			_, _ = io.WriteString(w, `{"success":false,"error":"Payment required","error_info":"Please check developers.pipedrive.com for more information about Pipedrive API.","data":null,"additional_data":null}`)
		case 1:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Access denied</title></head><body>Access denied</body></html>")
		case 2:
			w.WriteHeader(http.StatusForbidden)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"success":false,"error":"You do not have permissions to perform this action.","error_info":"Please check developers.pipedrive.com","data":null}`)
		}
	}))
	defer srv.Close()
	s := apiSource(t, srv.URL, nil)
	fetch := func() (connectors.Class, error) {
		t.Helper()
		_, err := s.FetchDeal(context.Background(), "6083095", "213973")
		var api *connectors.APIError
		if !errors.As(err, &api) {
			t.Fatalf("got %v, want an APIError", err)
		}
		c, _ := connectors.Classify(err)
		return c, err
	}
	if c, err := fetch(); c != connectors.Permanent ||
		!strings.Contains(err.Error(), "HTTP 402: Payment required") ||
		!strings.Contains(err.Error(), "account of company 6083095 is not open (possible reason: trial expired, payment details not entered)") ||
		!strings.Contains(err.Error(), "Settings > Billing") || !strings.Contains(err.Error(), "dealsync runs retry") {
		t.Errorf("402: %v (%v)", err, c)
	}
	for _, n := range []int32{1, 2} {
		answer.Store(n)
		if c, err := fetch(); c != connectors.Retry || !strings.Contains(err.Error(), "HTTP 403 that is not Pipedrive's JSON answer") {
			t.Errorf("403 page %d: %v (%v)", n, err, c)
		}
	}
	answer.Store(3)
	if c, err := fetch(); c != connectors.Unauthorized || !strings.Contains(err.Error(), "HTTP 403: You do not have permissions") {
		t.Errorf("403 JSON: %v (%v)", err, c)
	}
}

func TestOAuthUsesAPIDomain(t *testing.T) {
	f := fakePipedrive(t, "oauth-at")
	var tokenCalls atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		user, pass, ok := r.BasicAuth()
		_ = r.ParseForm()
		if !ok || user != "cid" || pass != "csec" || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "rt" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"success":false,"message":"Invalid client credentials","error":"unauthorized"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"oauth-at","token_type":"Bearer","refresh_token":"rt","scope":"deals:full,base","expires_in":3599,"api_domain":"`+f.URL+`"}`)
	}))
	defer tokens.Close()
	s := testSource(t, func(c *Config) {
		c.BaseURL = "http://127.0.0.1:9" // not used for OAuth accounts
		c.TokenURL = tokens.URL
		c.WriteBack = WriteBackConfig{InvoiceNumberField: "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2", StatusValue: "synced"}
		c.Accounts = map[string]Account{"6083095": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"), RefreshToken: secret.New("rt"),
			TokenFile: filepath.Join(t.TempDir(), "pd-token.json")}}}
	})
	for range 2 {
		if err := s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{Number: "7"}); err != nil {
			t.Fatalf("WriteBack: %v", err)
		}
	}
	// Each write-back reads the deal, then writes it: 4 requests.
	if log := f.Requests(); tokenCalls.Load() != 1 || len(log) != 4 || log[0].Auth != "Bearer oauth-at" || log[0].Token != "" || log[3].Auth != "Bearer oauth-at" {
		t.Fatalf("token calls %d, requests %+v", tokenCalls.Load(), log)
	}
}

// rotatingTokens is a token endpoint that replaces the refresh token on
// every refresh and refuses a spent one (invalid_grant), in Pipedrive's
// answer format.
type rotatingTokens struct {
	*httptest.Server
	mu    sync.Mutex
	next  map[string]int // live refresh token → generation
	calls int
}

func newRotatingTokens(t *testing.T, seed, apiDomain string) *rotatingTokens {
	rt := &rotatingTokens{next: map[string]int{seed: 1}}
	rt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		rt.mu.Lock()
		defer rt.mu.Unlock()
		rt.calls++
		w.Header().Set("Content-Type", "application/json")
		gen, ok := rt.next[r.PostForm.Get("refresh_token")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"success":false,"message":"Invalid grant: refresh token is invalid","error":"invalid_grant"}`)
			return
		}
		delete(rt.next, r.PostForm.Get("refresh_token"))
		rt.next[fmt.Sprintf("rt%d", gen+1)] = gen + 1
		_, _ = fmt.Fprintf(w, `{"access_token":"at%d","token_type":"Bearer","refresh_token":"rt%d","expires_in":3599,"api_domain":%q}`, gen, gen+1, apiDomain)
	}))
	t.Cleanup(rt.Close)
	return rt
}

func (rt *rotatingTokens) callCount() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.calls
}

// The token (and the company's api_domain) is kept in token_file: a
// restarted process, whose config still holds the install's refresh token
// that the endpoint has since replaced, goes on with the stored one; a
// token the API revokes early is refreshed and the request sent again.
func TestOAuthTokenSurvivesARestartAndARevocation(t *testing.T) {
	f := fakePipedrive(t, "at1")
	tokens := newRotatingTokens(t, "rt-install", f.URL)
	file := filepath.Join(t.TempDir(), "pd-token.json")
	newSource := func() *Source {
		return testSourceIn(t, connectors.Env{ConfigKey: "connections.pd.source"}, func(c *Config) {
			c.BaseURL = "http://127.0.0.1:9" // not used for OAuth accounts
			c.TokenURL = tokens.URL
			c.WriteBack = WriteBackConfig{InvoiceNumberField: "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2", StatusValue: "synced"}
			c.Accounts = map[string]Account{"6083095": {OAuth: &OAuth{ClientID: "cid", ClientSecret: secret.New("csec"),
				RefreshToken: secret.New("rt-install"), TokenFile: file}}}
		})
	}
	write := func(s *Source) error {
		return s.WriteBack(context.Background(), "6083095", "213973", connectors.InvoiceResult{Number: "7"})
	}
	if err := write(newSource()); err != nil {
		t.Fatalf("first process: %v", err)
	}
	if n := tokens.callCount(); n != 1 {
		t.Fatalf("token calls after the first write-back: %d, want 1", n)
	}
	raw, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(raw), `"rt2"`) || !strings.Contains(string(raw), f.URL) {
		t.Fatalf("token file after the first refresh: %s (%v); want refresh token rt2 and the api_domain", raw, err)
	}

	restarted := newSource()
	if err := write(restarted); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if n := tokens.callCount(); n != 1 {
		t.Errorf("a restart refreshed again (%d token calls): the stored access token is still valid", n)
	}

	f.RevokeToken("at1")
	f.AddCompany("6083095", "at2")
	if err := write(restarted); err != nil {
		t.Fatalf("after the access token was revoked: %v", err)
	}
	if n := tokens.callCount(); n != 2 {
		t.Errorf("token calls: %d, want 2 (one refresh with the stored rt2)", n)
	}
	var auths []string
	for _, r := range f.Requests() {
		auths = append(auths, r.Auth)
	}
	// Each write-back reads the deal (is it archived?), then writes it.
	if want := []string{"Bearer at1", "Bearer at1", "Bearer at1", "Bearer at1", "Bearer at1", "Bearer at2", "Bearer at2"}; !slices.Equal(auths, want) {
		t.Errorf("API requests authorized with %v, want %v (two write-backs, the revoked token's 401 on the third's read, then the retry and its write)", auths, want)
	}

	// The install's refresh token was spent long ago: a process without the
	// file gets the endpoint's refusal, named, not a retry loop.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	err = write(newSource())
	var apiErr *connectors.APIError
	// Unauthorized (a person must act), with the status the endpoint
	// answered (the fake's 400 invalid_grant), not one made up.
	if c, _ := connectors.Classify(err); !errors.As(err, &apiErr) || c != connectors.Unauthorized || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "Invalid grant") {
		t.Fatalf("with a spent refresh token: %v (class %v); want unauthorized, the endpoint's 400 and its message", err, c)
	}
	// ... saying where to put a new one, by the config keys of the
	// company's oauth settings.
	if key := "connections.pd.source.accounts.6083095.oauth."; !strings.Contains(err.Error(), "write the new refresh token into "+key+"token_file "+file) ||
		!strings.Contains(err.Error(), "with "+key+"refresh_token set to the new token") {
		t.Errorf("with a spent refresh token: %v; want the company's token_file and refresh_token named by their config keys", err)
	}
}

func TestRegisteredAndLoadedFromConfig(t *testing.T) {
	spec, ok := connectors.LookupSource("pipedrive")
	if !ok {
		t.Fatal("pipedrive is not registered")
	}
	yaml := `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:9/"}
connections:
  pd:
    target: erp
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      webhook_user: dealsync
      webhook_password: env:DEALSYNC_TEST_PD_PASS
      previous_webhook_user: dealsync-old
      previous_webhook_password: env:DEALSYNC_TEST_PD_PREVIOUS_PASS
      write_back:
        invoice_number_field: f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2
      accounts:
        "6083095":
          api_token: env:DEALSYNC_TEST_PD_TOKEN
          webhook_user: company-user
          webhook_password: company-pass
          previous_webhook_user: company-user
          previous_webhook_password: company-old-pass
`
	t.Setenv("DEALSYNC_TEST_PD_PASS", hookPass)
	t.Setenv("DEALSYNC_TEST_PD_PREVIOUS_PASS", "old-pass")
	t.Setenv("DEALSYNC_TEST_PD_TOKEN", "tok")
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	src, err := spec.Build(cfg.Connections["pd"].Source.Spec, connectors.Env{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	for _, auth := range []string{basic(hookUser, hookPass), basic("dealsync-old", "old-pass"), basic("company-user", "company-old-pass")} {
		if err := src.Verify(delivery(changeStage, auth)); err != nil {
			t.Fatalf("Verify with the loaded credentials: %v", err)
		}
	}
	if got := src.(*Source).write.StatusValue; got != "synced" {
		t.Errorf("default status value %q", got)
	}
	bad := strings.Replace(yaml, "          api_token: env:DEALSYNC_TEST_PD_TOKEN\n", "          api_tokn: x\n", 1)
	bad = strings.Replace(bad, "env:DEALSYNC_TEST_PD_PREVIOUS_PASS", "env:DEALSYNC_TEST_PD_UNSET_PREVIOUS_PASS", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "api_tokn") ||
		!strings.Contains(err.Error(), "source.previous_webhook_password") {
		t.Fatalf("typo in key, unresolvable previous_webhook_password: got %v", err)
	}
}

// A deal Pipedrive marks deleted (deleted, or merged into another deal,
// and kept 30 days with its status) is no longer won, whatever its status.
// A discount on the whole deal (Pipedrive takes it off the value of the
// deal's products) fails the fetch for good, naming the discounts and what
// to change: the product lines without it would bill more than the deal.
// A deal without products, invoiced at its value, is not asked about
// discounts (Pipedrive's discounts do not change the value of such a deal).
func TestFetchDealRefusesDiscountsOnTheWholeDeal(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.PutDealDiscounts("6083095", "213973",
		pipedrivefake.ParseRecord(`{"id":"30195b0e-7577-4f52-a5cf-f3ee39b9d1e0","description":"Loyalty","amount":10,"type":"percentage","deal_id":213973}`),
		pipedrivefake.ParseRecord(`{"id":"7f1c2d3e-0000-4000-8000-000000000001","description":"Goodwill","amount":250.5,"type":"amount","deal_id":213973}`))
	s := apiSource(t, f.URL, nil)
	_, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a deal with discounts on the whole deal: %v, want ErrPermanent", err)
	}
	for _, want := range []string{"deal 213973 has 2 discount(s) on the whole deal", `"Loyalty" (10% off)`, `"Goodwill" (250.5 off)`,
		"Move the discount onto the deal's products", "dealsync runs retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	f.PutDealDiscounts("6083095", "213973")
	if _, err := s.FetchDeal(context.Background(), "6083095", "213973"); err != nil {
		t.Fatalf("discounts removed: %v", err)
	}

	f.PutDeal("6083095", pipedrivefake.ParseRecord(`{"id":180,"title":"Value only","status":"won","value":"500","currency":"EUR","org_id":5063}`))
	f.PutDealDiscounts("6083095", "180", pipedrivefake.ParseRecord(`{"id":"d-1","description":"Loyalty","amount":10,"type":"percentage","deal_id":180}`))
	d, err := s.FetchDeal(context.Background(), "6083095", "180")
	if err != nil || d.Amount.Decimal.String() != "500" || len(d.LineItems) != 0 {
		t.Fatalf("a deal without products: %+v, %v; want its value, 500", d, err)
	}
	for _, r := range f.Requests() {
		if r.Path == "/api/v2/deals/180/discounts" {
			t.Errorf("asked for the discounts of a deal without products")
		}
	}
}

func TestFetchDealMarkedDeleted(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	rec := pipedrivefake.ParseRecord(dealRecord)
	rec["is_deleted"] = true
	f.PutDeal("6083095", rec)
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if err != nil || d.Stage != StageDeleted {
		t.Fatalf("a won deal marked deleted: stage %q, %v; want %q", d.Stage, err, StageDeleted)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("%d requests for a deleted deal, want 1: its organization and products are not read", n)
	}
}

// A deleted deal (deleted, or merged into another deal) is answered 404 by
// GET /api/v2/deals/{id}; Pipedrive keeps it 30 days, listed with
// status=deleted. FetchDeal finds it there (or among the archived deleted
// deals) and reports it deleted, not won: its run ends DealNotWon instead
// of failing on the 404. A deal in neither list keeps the 404, naming what
// to check; a lookup that is not answered now is retried.
func TestFetchDealDeletedIsFoundAmongTheDeletedDeals(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.DeleteDeal("6083095", "213973")
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if err != nil || d.Stage != StageDeleted || d.ID != "213973" || d.Name != "Acme annual" || len(d.LineItems) != 0 {
		t.Fatalf("a deleted won deal: %+v, %v; want stage %q", d, err, StageDeleted)
	}
	var paths []string
	for _, r := range f.Requests() {
		paths = append(paths, r.Method+" "+r.Path+"?"+r.Query)
	}
	if want := []string{"GET /api/v2/deals/213973?", "GET /api/v2/deals?ids=213973&status=deleted"}; !slices.Equal(paths, want) {
		t.Errorf("requests:\n got %q\nwant %q", paths, want)
	}

	rec := pipedrivefake.ParseRecord(dealRecord)
	rec["id"], rec["is_archived"] = json.Number("214000"), true
	f.PutDeal("6083095", rec)
	f.DeleteDeal("6083095", "214000")
	if d, err := s.FetchDeal(context.Background(), "6083095", "214000"); err != nil || d.Stage != StageDeleted {
		t.Errorf("a deleted archived deal: stage %q, %v; want %q", d.Stage, err, StageDeleted)
	}

	f.ResetRequests()
	_, err = s.FetchDeal(context.Background(), "6083095", "999")
	var api *connectors.APIError
	if c, _ := connectors.Classify(err); !errors.As(err, &api) || api.StatusCode != 404 || api.Message != "Deal not found" || c != connectors.Permanent {
		t.Fatalf("an unknown deal: %v; want the 404, not retried", err)
	}
	for _, want := range []string{"deal 999 is neither among the company's deals nor among those deleted", "can see every deal"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(f.Requests()); n != 3 {
		t.Errorf("%d requests for an unknown deal, want 3 (the deal, the deleted deals, the archived deleted deals)", n)
	}

	// The lookup answered 503: not known yet, so retried; answered 400:
	// the 404 stands.
	var listStatus atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v2/deals" {
			w.WriteHeader(int(listStatus.Load()))
			_, _ = io.WriteString(w, `{"success":false,"error":"list refused"}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"success":false,"error":"Deal not found"}`)
	}))
	defer srv.Close()
	s = apiSource(t, srv.URL, nil)
	listStatus.Store(http.StatusServiceUnavailable)
	_, err = s.FetchDeal(context.Background(), "6083095", "213973")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "list refused") {
		t.Errorf("the lookup answered 503: %v (%v); want its error, retried", err, c)
	}
	listStatus.Store(http.StatusBadRequest)
	_, err = s.FetchDeal(context.Background(), "6083095", "213973")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !errors.As(err, &api) || api.StatusCode != 404 || !strings.Contains(err.Error(), "list refused") {
		t.Errorf("the lookup answered 400: %v (%v); want the 404, naming the lookup's error", err, c)
	}
}

// Recurring products (billing_frequency other than one-time: Growth plans
// and above) fail the fetch for good, each named with its schedule, with
// what to change: dealsync's one invoice would bill each once, as if
// one-time. A disabled one is not billed and not named; one-time products,
// or products without a billing_frequency (plans without recurring
// products), are invoiced.
func TestFetchDealRefusesRecurringProducts(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.PutDealProducts("6083095", "213973", pipedrivefake.ParseRecord(product1), pipedrivefake.ParseRecord(product2),
		pipedrivefake.ParseRecord(`{"id":4,"deal_id":213973,"name":"Pro monthly","product_id":501,"order_nr":3,"quantity":1,"item_price":100,
  "discount":0,"discount_type":"percentage","tax_method":"none","is_enabled":true,"billing_frequency":"monthly","billing_frequency_cycles":12,"billing_start_date":"2026-02-01"}`),
		pipedrivefake.ParseRecord(`{"id":5,"deal_id":213973,"name":"Support","product_id":502,"order_nr":4,"quantity":1,"item_price":50,
  "discount":0,"discount_type":"percentage","tax_method":"none","is_enabled":true,"billing_frequency":"annually","billing_frequency_cycles":null,"billing_start_date":null}`),
		pipedrivefake.ParseRecord(`{"id":6,"deal_id":213973,"name":"Old add-on","product_id":502,"order_nr":5,"quantity":1,"item_price":5,
  "discount":0,"discount_type":"percentage","tax_method":"none","is_enabled":false,"billing_frequency":"weekly","billing_frequency_cycles":4}`))
	s := apiSource(t, f.URL, nil)
	_, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if !errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("a deal with recurring products: %v, want ErrPermanent", err)
	}
	for _, want := range []string{"deal 213973 has 2 recurring product(s)",
		`"Pro monthly" (product line 4, billing_frequency monthly, 12 cycles, from 2026-02-01)`,
		`"Support" (product line 5, billing_frequency annually, until cancelled)`,
		"would bill each recurring product once", "set the product's billing frequency to One-time in Pipedrive", "dealsync runs retry"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Old add-on") {
		t.Errorf("error %q names a disabled product", err)
	}

	f.PutDealProducts("6083095", "213973", pipedrivefake.ParseRecord(product1), pipedrivefake.ParseRecord(product2))
	if d, err := s.FetchDeal(context.Background(), "6083095", "213973"); err != nil || len(d.LineItems) != 2 {
		t.Fatalf("one-time products (and one without billing_frequency): %v, %d lines", err, len(d.LineItems))
	}
}

// Products are invoiced in the order the deal shows them (order_nr), not
// in the order they were added (the API's default, by id).
func TestFetchDealKeepsTheDealsProductOrder(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	first := pipedrivefake.ParseRecord(product2)
	first["order_nr"] = json.Number("1")
	second := pipedrivefake.ParseRecord(product1)
	second["order_nr"] = json.Number("2")
	f.PutDealProducts("6083095", "213973", second, first) // ids 1, 2
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "213973")
	if err != nil || len(d.LineItems) != 2 {
		t.Fatalf("FetchDeal: %v, %+v", err, d.LineItems)
	}
	if got := []string{d.LineItems[0].Description, d.LineItems[1].Description}; !slices.Equal(got, []string{"Onboarding", "Pro plan, 1 year"}) {
		t.Errorf("lines %q, want the deal's order (order_nr): Onboarding, then Pro plan, 1 year", got)
	}
}

// A deal with a contact person and no organization (a private customer)
// is billed to the person: its name and primary e-mail, under a company id
// of its own ("person-<id>": person and organization ids are two
// sequences). The organization, when there is one, is billed as before.
func TestFetchDealOfAPersonWithoutOrganization(t *testing.T) {
	f := fakePipedrive(t, "token-6083095")
	f.PutDeal("6083095", pipedrivefake.ParseRecord(`{"id":178,"title":"Jane's order","status":"won","value":"12000.1","currency":"EUR",
 "org_id":null,"person_id":179,"won_time":"2026-01-14T23:30:00Z","custom_fields":{}}`))
	f.PutDealProducts("6083095", "178")
	f.PutPerson("6083095", pipedrivefake.ParseRecord(`{"id":179,"name":"Jane Doe","emails":[{"value":"jane@work.example","primary":false,"label":"work"},{"value":"jane@home.example","primary":true,"label":"home"}]}`))
	s := apiSource(t, f.URL, nil)
	d, err := s.FetchDeal(context.Background(), "6083095", "178")
	if err != nil {
		t.Fatalf("FetchDeal: %v", err)
	}
	if c := d.Company; c.ID != "person-179" || c.Name != "Jane Doe" || c.Email != "jane@home.example" {
		t.Errorf("company %+v, want the person", c)
	}
}

// A deal without custom fields (Pipedrive answers {} or leaves the key
// out) still has deal.raw["custom_fields"], an empty object, so the
// snippet docs/connectors/crm.md gives for a field that may be empty reads
// "" rather than failing the run on fromJSON of a missing key.
func TestFetchDealWithoutCustomFieldsReadsTheDocsSnippet(t *testing.T) {
	const key = "d1f0aa3f0c5e4b2a9c8e7d6c5b4a3f2e1d0c9b8a"
	m, err := mapping.Parse("po.yaml", []byte("name: po\ninvoice:\n  memo: '\"PO \" + coalesce(fromJSON(deal.raw[\"custom_fields\"])[\""+key+"\"], \"\")'\n"))
	if err != nil {
		t.Fatalf("the docs' snippet does not load: %v", err)
	}
	for _, c := range []struct{ name, record, memo string }{
		{"custom fields {}", strings.Replace(dealRecord, `{"`+key+`":"PO-77"}`, `{}`, 1), "PO "},
		{"no custom_fields key", strings.Replace(dealRecord, `,"custom_fields":{"`+key+`":"PO-77"}`, ``, 1), "PO "},
		{"the field set", dealRecord, "PO PO-77"},
	} {
		if (c.record == dealRecord) != (c.memo == "PO PO-77") {
			t.Fatalf("%s: the record was not changed", c.name)
		}
		f := fakePipedrive(t, "token-6083095")
		f.PutDeal("6083095", pipedrivefake.ParseRecord(c.record))
		s := apiSource(t, f.URL, nil)
		d, err := s.FetchDeal(context.Background(), "6083095", "213973")
		if err != nil {
			t.Fatalf("%s: FetchDeal: %v", c.name, err)
		}
		inv, err := m.Map(model.DealEvent{Deal: d})
		if err != nil {
			t.Errorf("%s: Map: %v", c.name, err)
			continue
		}
		if inv.Memo != c.memo {
			t.Errorf("%s: memo %q, want %q", c.name, inv.Memo, c.memo)
		}
	}
}

// A custom field read as text: a string, a number as written (a tax number
// kept in a numerical field), or a typed field's value; nothing else.
func TestCustomText(t *testing.T) {
	fields := map[string]json.RawMessage{
		"text": json.RawMessage(`" DE123 "`), "number": json.RawMessage(`12345678901`), "typed": json.RawMessage(`{"value":12345}`),
		"typed_text": json.RawMessage(`{"value":"PO-7"}`), "null": json.RawMessage(`null`), "list": json.RawMessage(`[1,2]`),
	}
	for key, want := range map[string]string{"text": "DE123", "number": "12345678901", "typed": "12345", "typed_text": "PO-7", "null": "", "list": "", "missing": ""} {
		if got := customText(fields, key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}

// meta.timestamp forms: RFC 3339, its offset without a colon, Pipedrive's
// "2006-01-02 15:04:05" (UTC), Unix seconds and milliseconds.
func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 1, 14, 18, 16, 56, 0, time.UTC)
	for _, s := range []string{"2026-01-14T18:16:56Z", "2026-01-14T19:16:56+01:00", "2026-01-14T18:16:56+0000", "2026-01-14T19:16:56.000+0100",
		"2026-01-14 18:16:56", "1768414616", "1768414616000"} {
		got, err := parseTimestamp(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := parseTimestamp("yesterday"); err == nil {
		t.Error("yesterday is a timestamp")
	}
}
