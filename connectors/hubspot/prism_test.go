package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit/speccheck"
)

// dealsync's requests checked against HubSpot's own 2026-03 deals spec
// (the version the source calls, APIVersion) through Prism
// (../shared/specs/PRISM.md): the spec, normalized for Prism at test time
// by specs/tools/normalize_hubspot.py, answers 200 to a valid request and
// 422 with an sl-violations header to an invalid one, and 404 to a path it
// does not have.
//
// Needs the prism CLI ($PRISM_BIN or `prism` on PATH, see
// speccheck.PrismBin) and python3; skipped when they or ../shared/specs
// are absent.

func TestWriteBackAgainstHubSpotSpec(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prism")
	}
	spec := speccheck.NormalizeHubSpot(t, speccheck.File(t, "hubspot/deals-"+APIVersion+".json"), t.TempDir())
	base := speccheck.Prism(t, spec, 90*time.Second)
	client := &http.Client{Timeout: 20 * time.Second}

	// Control: the spec really is enforced on this server.
	for name, body := range map[string]string{
		"no properties":     `{"props":{"erp_invoice_id":"x"}}`,
		"non-string values": `{"properties":{"amount":12000,"erp_synced":true,"closedate":null}}`,
	} {
		req, _ := http.NewRequest(http.MethodPatch, base+dealPath("1234567890"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer pat-na1-test")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("control %s: %v", name, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 422 || resp.Header.Get("sl-violations") == "" {
			t.Fatalf("control %s: status %d, sl-violations %q: prism is not validating", name, resp.StatusCode, resp.Header.Get("sl-violations"))
		}
	}
	// Control: a path the spec does not have is not answered (a legacy
	// one), so every request below is at a path of the 2026-03 spec.
	req, _ := http.NewRequest(http.MethodPatch, base+"/crm/v3/objects/0-3/1234567890", strings.NewReader(`{"properties":{"erp_invoice_id":"x"}}`))
	req.Header.Set("Authorization", "Bearer pat-na1-test")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := client.Do(req); err != nil {
		t.Fatalf("control legacy path: %v", err)
	} else if _ = resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("control legacy path: status %d, want 404: prism answers paths the spec does not have", resp.StatusCode)
	}

	// dealsync's write-backs, default and configured property names, with
	// every InvoiceResult shape.
	results := []connectors.InvoiceResult{
		{InvoiceID: "ed255415-e141-4150-aab7-89c3bbbb851c", Number: "INV-0007", URL: "https://erp.example/invoices/7"},
		{InvoiceID: "42"},
		{InvoiceID: "42", Number: "2026-0001", Replayed: true},
	}
	for _, mutate := range []func(*Config){
		nil,
		func(c *Config) {
			c.WriteBack = WriteBackConfig{InvoiceNumberProperty: "invoice_no", StatusProperty: "sync", StatusValue: "ok"}
		},
	} {
		s := apiSource(t, base, mutate)
		s.client = &http.Client{Transport: &violationCheck{t: t}, Timeout: 20 * time.Second}
		for _, r := range results {
			if err := s.WriteBack(context.Background(), "62515", "1234567890", r); err != nil {
				var api *connectors.APIError
				if errors.As(err, &api) {
					t.Errorf("WriteBack(%+v) rejected by the spec: %v", r, api)
				} else {
					t.Errorf("WriteBack(%+v): %v", r, err)
				}
			}
		}
	}
	// The read side: our batch read body passes the spec's
	// BatchReadInputSimplePublicObjectId (the deals spec has the batch read
	// of deals; companies and line items take the same input in their
	// 2026-03 specs), and the spec's example answers decode into what
	// FetchDeal reads.
	s := apiSource(t, base, nil)
	s.client = &http.Client{Transport: &violationCheck{t: t}, Timeout: 20 * time.Second}
	acc := s.accounts["62515"]
	if _, err := s.batchRead(context.Background(), acc, dealObjectType, []string{"1", "2"}, dealProperties); err != nil {
		t.Errorf("batch read rejected by the spec: %v", err)
	}
	// The search of won deals (`dealsync deals sync`): its body passes the
	// spec's PublicObjectSearchRequest, and its answer is read. The 2026-03
	// spec has no example deal (v3's had deal 512): Prism answers with its
	// schema's placeholders, a deal whose id is "string", which
	// ListWonDeals refuses, once the page is read, as not after the last id
	// listed. An answer with examples pages on for ever, with deals
	// ListWonDeals may pass over: the search then ends at the request for a
	// third page, which shows the first two were taken and the cursor
	// followed.
	stop := errors.New("first deal read")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The search sorts by id with a sort object, as HubSpot's guide and API
	// take it; the spec types a sort as a string (HubSpot's clients work
	// around it), so the sort is checked here and handed to Prism as the
	// spec types it.
	pages := &pageLimit{next: &sortAsSpecTyped{t: t, next: &violationCheck{t: t}}, path: dealSearchPath, limit: 2}
	s.client = &http.Client{Transport: pages, Timeout: 20 * time.Second}
	err := s.ListWonDeals(ctx, "62515", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		func(connectors.WonDeal) error { return stop })
	placeholder := err != nil && strings.Contains(err.Error(), `answered deal "string" after deal 0`)
	if !errors.Is(err, stop) && !errors.Is(err, errPageLimit) && !placeholder {
		t.Errorf("search of won deals: %v; want its first deal, a third page asked for, or the placeholder deal read", err)
	}
	if pages.answered == 0 || pages.answered > 2 {
		t.Errorf("%d search pages answered, want 1 (its first deal read) or 2", pages.answered)
	}
	s.client = &http.Client{Transport: &violationCheck{t: t}, Timeout: 20 * time.Second}
	var deal object
	if err := s.call(context.Background(), acc, "fetch deal", http.MethodGet,
		dealPath("1234567890")+"?properties=dealname&associations=companies,line_items&archived=false", nil, &deal); err != nil {
		t.Errorf("GET deal: %v", err)
	} else if deal.ID == "" || len(deal.Properties) == 0 {
		t.Errorf("GET deal example did not decode: %+v", deal)
	}
}

// violationCheck fails the test if Prism reports any violation, even one
// that does not change the status.
type violationCheck struct{ t *testing.T }

func (v *violationCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		if h := resp.Header.Get("sl-violations"); h != "" {
			v.t.Errorf("%s %s: sl-violations %s", r.Method, r.URL.Path, h)
		}
	}
	return resp, err
}

// sortAsSpecTyped checks that a deal search sorts by hs_object_id
// ascending, in the sort object of HubSpot's guide, and passes the request
// on with that sort as the spec types it: a string, the property's name.
type sortAsSpecTyped struct {
	t    *testing.T
	next http.RoundTripper
}

func (s *sortAsSpecTyped) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.Path != dealSearchPath {
		return s.next.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if got, want := string(req["sorts"]), `[{"propertyName":"hs_object_id","direction":"ASCENDING"}]`; got != want {
		s.t.Errorf("search sorts %s, want %s", got, want)
	}
	req["sorts"] = json.RawMessage(`["hs_object_id"]`)
	if body, err = json.Marshal(req); err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return s.next.RoundTrip(r)
}

// errPageLimit is pageLimit's refusal of a page past its limit.
var errPageLimit = errors.New("page limit reached")

// pageLimit passes the first limit requests to path on to next, counting
// those answered 2xx, and refuses any later one with errPageLimit.
type pageLimit struct {
	next     http.RoundTripper
	path     string
	limit    int
	sent     int
	answered int
}

func (p *pageLimit) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != p.path {
		return p.next.RoundTrip(r)
	}
	if p.sent++; p.sent > p.limit {
		return nil, errPageLimit
	}
	resp, err := p.next.RoundTrip(r)
	if err == nil && resp.StatusCode/100 == 2 {
		p.answered++
	}
	return resp, err
}
