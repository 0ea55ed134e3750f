package pipedrive

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit/speccheck"
)

// The API v2 calls checked against Pipedrive's own OpenAPI v2 document
// (../shared/specs/pipedrive) through Prism: the write-back body must pass
// request validation, and the spec's example answers must decode into what
// FetchDeal reads. Prism serves the spec's paths at "/", without the
// server's /api/v2 prefix, so a small proxy strips it.
//
// Needs the prism CLI ($PRISM_BIN or `prism` on PATH, see
// speccheck.PrismBin); skipped when it or the spec is absent.

func TestAPIAgainstPipedriveSpec(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prism")
	}
	spec := speccheck.File(t, "pipedrive/pipedrive-openapi-v2.yaml")
	prism := speccheck.Prism(t, spec, 90*time.Second)
	target, _ := url.Parse(prism)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("x-api-token"); h == "" {
			t.Errorf("%s %s without x-api-token", r.Method, r.URL.Path)
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/api/v2")
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	client := &http.Client{Timeout: 30 * time.Second}

	// Control: the request schema is enforced.
	req, _ := http.NewRequest(http.MethodPatch, front.URL+"/api/v2/deals/213973", strings.NewReader(`{"value":"abc"}`))
	req.Header.Set("x-api-token", "t")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// The spec declares no error response for this operation, so Prism
	// answers with its own problem document naming the violation.
	if resp.StatusCode != 422 || !strings.Contains(string(body)+resp.Header.Get("sl-violations"), "value must be number") {
		t.Fatalf("control: status %d, body %s: prism is not validating", resp.StatusCode, body)
	}

	s := apiSource(t, front.URL, nil)
	s.client = &http.Client{Transport: &violationCheck{t: t}, Timeout: 30 * time.Second}
	ctx := context.Background()
	for _, r := range []connectors.InvoiceResult{
		{InvoiceID: "inv-9", Number: "INV-0007", URL: "https://erp.example/i/9"},
		{InvoiceID: "42"},
	} {
		if err := s.WriteBack(ctx, "6083095", "213973", r); err != nil {
			var api *connectors.APIError
			if errors.As(err, &api) {
				t.Errorf("WriteBack(%+v) rejected by the spec: %v", r, api)
			} else {
				t.Errorf("WriteBack(%+v): %v", r, err)
			}
		}
	}

	// The spec's example answers decode into what FetchDeal reads.
	acc := s.accounts["6083095"]
	var deal pdDeal
	if _, err := s.call(ctx, acc, "fetch deal", http.MethodGet, "/api/v2/deals/213973", nil, &deal); err != nil || deal.ID == "" || deal.Title == "" || deal.Value == "" || deal.OrgID == "" {
		t.Errorf("deal example: %v %+v", err, deal)
	}
	var org pdOrg
	if _, err := s.call(ctx, acc, "fetch organization", http.MethodGet, "/api/v2/organizations/1", nil, &org); err != nil || org.Name == "" || org.Address == nil || org.Address.PostalCode == "" {
		t.Errorf("organization example: %v %+v", err, org)
	}
	var items []pdDealProduct
	env, err := s.call(ctx, acc, "fetch deal products", http.MethodGet, "/api/v2/deals/213973/products?limit=500&sort_by=order_nr", nil, &items)
	if err != nil || len(items) == 0 || items[0].ItemPrice == "" || items[0].Quantity == "" || items[0].DiscountType == "" ||
		items[0].Tax == "" || items[0].TaxMethod == "" || items[0].BillingFrequency == "" || env.AdditionalData.NextCursor == nil {
		t.Errorf("deal products example: %v %+v", err, items)
	}
	// The deleted deals lookup's query (ids, status=deleted) is one the spec takes.
	if _, _, err := s.deletedDeal(ctx, acc, "213973"); err != nil {
		t.Errorf("deleted deals lookup: %v", err)
	}
	var discounts []pdDiscount
	if _, err := s.call(ctx, acc, "fetch deal discounts", http.MethodGet, "/api/v2/deals/213973/discounts", nil, &discounts); err != nil ||
		len(discounts) == 0 || discounts[0].Type == "" || discounts[0].Amount == "" || discounts[0].Description == "" {
		t.Errorf("deal discounts example: %v %+v", err, discounts)
	}
	var prods []pdProduct
	if _, err := s.call(ctx, acc, "fetch products", http.MethodGet, "/api/v2/products?ids=1&limit=100", nil, &prods); err != nil || len(prods) == 0 || prods[0].ID == "" {
		t.Errorf("products example: %v %+v", err, prods)
	}
	// The write-back check's listing of deal fields: its query is one the
	// spec takes, and the example answer decodes into what the check reads
	// (Prism's example always has a next cursor, so one page is read).
	var fields []pdDealField
	if env, err := s.call(ctx, acc, "list deal fields", http.MethodGet, "/api/v2/dealFields?limit=500", nil, &fields); err != nil || len(fields) < 3 ||
		fields[0].FieldCode != "title" || fields[0].FieldType != "varchar" || fields[0].IsCustomField ||
		fields[2].FieldType != "enum" || !fields[2].IsCustomField || env.AdditionalData.NextCursor == nil {
		t.Errorf("deal fields example: %v %+v", err, fields)
	}
}

// violationCheck fails the test if Prism reports any violation.
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
