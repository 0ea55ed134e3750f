package quickbooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/quickbooks"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

const realm = "9130355555555555"

// fakeQBO follows QBO's documented behaviour: bearer tokens, the
// refresh-token grant with rotation, requestid replays, the query
// endpoint, unique DisplayNames, Fault bodies with element names.
type fakeQBO struct {
	*httptest.Server
	mu        sync.Mutex
	refresh   string
	access    map[string]bool
	seq       int
	customers map[string]string // Id → DisplayName
	invoices  map[string]string // Id → DocNumber
	bodies    [][]byte
	requests  map[string][]byte // requestid → answer
	faults    []int             // statuses to answer the next invoice POSTs with, after the work
	pre       []int             // statuses to answer the next API calls with, before the work
	posts     int
	refreshes int
}

func newFake(t *testing.T) *fakeQBO {
	f := &fakeQBO{refresh: "seed", access: map[string]bool{}, customers: map[string]string{}, invoices: map[string]string{}, requests: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v1/tokens/bearer", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		if id, sec, ok := r.BasicAuth(); !ok || id != "cid" || sec != "csecret" || r.PostForm.Get("refresh_token") != f.refresh {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		f.seq++
		f.refreshes++
		f.refresh = fmt.Sprintf("rt-%d", f.seq)
		at := fmt.Sprintf("at-%d", f.seq)
		f.access[at] = true
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": f.refresh, "token_type": "bearer", "expires_in": 3600, "x_refresh_token_expires_in": 8726400})
	})
	mux.HandleFunc("/v3/company/"+realm+"/", f.api)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func fault(w http.ResponseWriter, status int, typ, msg, detail, element string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"Fault": map[string]any{"Error": []any{map[string]string{
		"Message": msg, "Detail": detail, "code": "6000", "element": element}}, "type": typ}, "time": "2026-11-27T04:00:00.000-08:00"})
}

var whereEq = regexp.MustCompile(`where (\w+) = '((?:[^'\\]|\\.)*)'$`)

func (f *fakeQBO) api(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	ok := f.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	var pre int
	if len(f.pre) > 0 {
		pre, f.pre = f.pre[0], f.pre[1:]
	}
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}`))
		return
	}
	if pre != 0 {
		fault(w, pre, "SERVICE", "Throttle exceeded", "", "")
		return
	}
	if r.URL.Query().Get("minorversion") == "" {
		fault(w, 400, "ValidationFault", "minorversion missing", "", "")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v3/company/"+realm)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && path == "/query":
		m := whereEq.FindStringSubmatch(r.URL.Query().Get("query"))
		if m == nil {
			fault(w, 400, "ValidationFault", "QueryParserError", "bad query", "")
			return
		}
		val := strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[2])
		f.mu.Lock()
		defer f.mu.Unlock()
		resp := map[string]any{}
		if strings.Contains(r.URL.Query().Get("query"), "from Customer") {
			var out []map[string]string
			for id, n := range f.customers {
				if strings.EqualFold(n, val) {
					out = append(out, map[string]string{"Id": id, "DisplayName": n})
				}
			}
			if out != nil {
				resp["Customer"] = out
			}
		} else {
			var out []map[string]string
			for id, n := range f.invoices {
				if n == val {
					out = append(out, map[string]string{"Id": id, "DocNumber": n})
				}
			}
			if out != nil {
				resp["Invoice"] = out
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"QueryResponse": resp})
	case r.Method == "POST" && (path == "/customer" || path == "/invoice"):
		rid := r.URL.Query().Get("requestid")
		f.mu.Lock()
		if prev, ok := f.requests[rid]; ok && rid != "" {
			f.mu.Unlock()
			_, _ = w.Write(prev)
			return
		}
		f.mu.Unlock()
		var body map[string]any
		raw := json.RawMessage{}
		_ = json.NewDecoder(r.Body).Decode(&raw)
		_ = json.Unmarshal(raw, &body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.seq++
		id := fmt.Sprint(f.seq)
		var answer []byte
		if path == "/customer" {
			name, _ := body["DisplayName"].(string)
			for _, n := range f.customers {
				if strings.EqualFold(n, name) {
					fault(w, 400, "ValidationFault", "Duplicate Name Exists Error", "The name supplied already exists. : Another customer, vendor or employee is already using this name.", "")
					return
				}
			}
			f.customers[id] = name
			answer, _ = json.Marshal(map[string]any{"Customer": map[string]string{"Id": id, "DisplayName": name}})
		} else {
			f.posts++
			cref, _ := body["CustomerRef"].(map[string]any)
			if _, ok := f.customers[fmt.Sprint(cref["value"])]; !ok {
				fault(w, 400, "ValidationFault", "Invalid Reference Id", "Invalid Reference Id : Customer assigned to this transaction has been deleted.", "CustomerRef")
				return
			}
			doc, _ := body["DocNumber"].(string)
			f.invoices[id] = doc
			f.bodies = append(f.bodies, raw)
			answer, _ = json.Marshal(map[string]any{"Invoice": map[string]string{"Id": id, "DocNumber": doc}})
		}
		if rid != "" {
			f.requests[rid] = answer
		}
		if len(f.faults) > 0 && path == "/invoice" {
			st := f.faults[0]
			f.faults = f.faults[1:]
			w.WriteHeader(st)
			return
		}
		_, _ = w.Write(answer)
	default:
		http.NotFound(w, r)
	}
}

func newTarget(t *testing.T, f *fakeQBO) *quickbooks.Target {
	dir := t.TempDir()
	cfg := quickbooks.DefaultConfig()
	cfg.RealmID, cfg.ClientID, cfg.ClientSecret, cfg.RefreshToken = realm, "cid", secret.New("csecret"), secret.New("seed")
	cfg.TokenFile, cfg.LinkFile = filepath.Join(dir, "tok.json"), filepath.Join(dir, "links.json")
	cfg.BaseURL, cfg.TokenURL = f.URL, f.URL+"/oauth2/v1/tokens/bearer"
	cfg.DefaultItemID = "1"
	tg, err := quickbooks.New(cfg, quickbooks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func exampleInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "D-1001", SourceDealID: "D-1001", Memo: "Acme annual",
		Customer:  model.Customer{ExternalID: "C-1", Name: "Acme GmbH", Email: "ap@acme.example", Address: model.Address{Line1: "Main St 1", City: "Berlin", Region: "BE", PostalCode: "10115", Country: "DE"}},
		Currency:  "EUR",
		IssueDate: model.NewDate(2026, 11, 20), DueDate: model.NewDate(2026, 12, 20),
		Lines: []model.InvoiceLine{
			{ItemCode: "17", Description: "Pro plan, 1 year", Quantity: d("1"), UnitPrice: d("12000.00"), TaxCode: "TAX"},
			{Description: "Onboarding", Quantity: d("2.5"), UnitPrice: d("99.50"), Discount: d("10")},
		},
	}
	inv.ComputeTotals()
	return inv
}

func TestCustomerAndInvoiceExactlyOnce(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	ref, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil || !ref.Created {
		t.Fatalf("%+v %v", ref, err)
	}
	// Renamed in QBO: the link still finds it.
	f.mu.Lock()
	f.customers[ref.ID] = "Acme GmbH (Berlin)"
	f.mu.Unlock()
	again, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "wf2/customer")
	if err != nil || again.ID != ref.ID || again.Created {
		t.Fatalf("by link: %+v %v", again, err)
	}
	// Lost answer, then retry with the same key: requestid replays.
	f.faults = []int{http.StatusServiceUnavailable}
	_, err = tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if cl, _ := connectors.Classify(err); cl != connectors.Retry {
		t.Fatalf("lost answer: %v", err)
	}
	res, err := tg.CreateInvoice(ctx, inv, ref, "wf/invoice")
	if err != nil || !res.Replayed || res.Number != "D-1001" {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if f.posts != 1 || len(f.invoices) != 1 {
		t.Fatalf("posts %d invoices %d, want 1 and 1", f.posts, len(f.invoices))
	}
	var body quickbooks.Invoice
	if err := json.Unmarshal(f.bodies[0], &body); err != nil {
		t.Fatal(err)
	}
	if body.CustomerRef.Value != ref.ID || body.TxnDate != "2026-11-20" || len(body.Line) != 3 ||
		body.Line[0].SalesItemLineDetail.ItemRef.Value != "17" || body.Line[0].SalesItemLineDetail.TaxCodeRef.Value != "TAX" ||
		body.Line[1].SalesItemLineDetail.ItemRef.Value != "1" || body.Line[1].Amount != "248.75" ||
		body.Line[2].DetailType != "DiscountLineDetail" || body.Line[2].Amount != "10.00" {
		t.Errorf("body %s", f.bodies[0])
	}
}

func TestRequestIDReplayWithoutDocNumber(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	inv.Reference = ""
	ref, _ := tg.FindOrCreateCustomer(ctx, inv.Customer, "k/customer")
	f.faults = []int{http.StatusBadGateway}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "k/invoice"); err == nil {
		t.Fatal("want the lost answer's error")
	}
	if _, err := tg.CreateInvoice(ctx, inv, ref, "k/invoice"); err != nil {
		t.Fatal(err)
	}
	if f.posts != 1 {
		t.Fatalf("QBO processed %d invoice POSTs, want 1 (requestid replay)", f.posts)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	f := newFake(t)
	tg := newTarget(t, f)
	ctx := context.Background()
	inv := exampleInvoice()
	_, err := tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "404"}, "k")
	var api *connectors.APIError
	if !errors.As(err, &api) || api.Field != "CustomerRef" || !strings.Contains(api.Message, "Customer assigned to this transaction has been deleted") {
		t.Fatalf("validation: %v", err)
	}
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent {
		t.Errorf("class %v", cl)
	}
	f.pre = []int{http.StatusTooManyRequests}
	_, err = tg.FindOrCreateCustomer(ctx, inv.Customer, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Retry || !strings.Contains(err.Error(), "429") {
		t.Fatalf("429: %v", err)
	}
	// Access token revoked: one refresh, then on.
	f.mu.Lock()
	f.access = map[string]bool{}
	f.mu.Unlock()
	if _, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "k"); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	// Refresh token revoked too: a clear Unauthorized naming the company.
	f.mu.Lock()
	f.access, f.refresh = map[string]bool{}, "someone-else"
	f.mu.Unlock()
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Other"}, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Unauthorized || !strings.Contains(err.Error(), realm) {
		t.Fatalf("revoked: %v", err)
	}
}

func TestKeysAndDocNumber(t *testing.T) {
	if quickbooks.RequestID("a") == quickbooks.RequestID("b") || quickbooks.RequestID("a") != quickbooks.RequestID("a") || len(quickbooks.RequestID("a")) != 36 {
		t.Error("RequestID is not a stable UUID per key")
	}
	long := "HUBSPOT-DEAL-1234567890123"
	if n := quickbooks.DocNumber(long); len(n) > 21 || n != quickbooks.DocNumber(long) {
		t.Errorf("DocNumber(%q) = %q", long, n)
	}
	if _, ok := connectors.LookupTarget("quickbooks"); !ok {
		t.Error("not registered")
	}
}
