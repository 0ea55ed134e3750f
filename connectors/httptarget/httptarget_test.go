package httptarget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

const token = "sbx-token-3f9a1c"

func startSandbox(t *testing.T, o sandbox.Options) (*sandbox.Server, *httptest.Server, *httptarget.Target) {
	t.Helper()
	o.AuthToken = token
	sb := sandbox.New(o)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{
		BaseURL:   srv.URL,
		AuthValue: secret.New("Bearer " + token),
		Name:      "sandbox",
	}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return sb, srv, tg
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func testInvoice() model.Invoice {
	inv := model.Invoice{
		Reference: "HS-DEAL-42",
		Customer:  model.Customer{ExternalID: "hub-7", Name: "Acme GmbH", Email: "ap@acme.example", Address: model.Address{City: "Berlin", Country: "DE"}},
		Currency:  "EUR",
		IssueDate: model.NewDate(2025, time.March, 1),
		DueDate:   model.NewDate(2025, time.March, 31),
		Memo:      "Won deal 42",
		Lines: []model.InvoiceLine{
			{ItemCode: "LIC", Description: "Licence", Quantity: dec("2"), UnitPrice: dec("6000"), TaxRate: dec("19"), AccountCode: "8400"},
			{ItemCode: "SUP", Description: "Support", Quantity: dec("3"), UnitPrice: dec("33.333"), Discount: dec("10"), TaxRate: dec("0")},
		},
	}
	inv.ComputeTotals()
	return inv
}

func apiError(t *testing.T, err error) *connectors.APIError {
	t.Helper()
	var api *connectors.APIError
	if !errors.As(err, &api) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return api
}

func TestFindOrCreateCustomer(t *testing.T) {
	sb, _, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	c := testInvoice().Customer

	first, err := tg.FindOrCreateCustomer(ctx, c, "cus-key-1")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || first.ID == "" {
		t.Errorf("first = %+v, want created", first)
	}
	second, err := tg.FindOrCreateCustomer(ctx, c, "cus-key-2")
	if err != nil {
		t.Fatal(err)
	}
	if second != (connectors.CustomerRef{ID: first.ID}) {
		t.Errorf("second = %+v, want found %s", second, first.ID)
	}
	got := sb.Customers()
	if len(got) != 1 {
		t.Fatalf("%d customers, want 1", len(got))
	}
	if got[0].ExternalID != "hub-7" || got[0].Name != "Acme GmbH" || got[0].Address.City != "Berlin" {
		t.Errorf("stored customer = %+v", got[0])
	}

	// No external id: always created, idempotently under its key.
	anon := model.Customer{Name: "Walk-in"}
	a, err := tg.FindOrCreateCustomer(ctx, anon, "anon")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tg.FindOrCreateCustomer(ctx, anon, "anon")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.ID == first.ID || len(sb.Customers()) != 2 {
		t.Errorf("anon %+v then %+v, %d customers", a, b, len(sb.Customers()))
	}

	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-8"}, "no-name")
	if api := apiError(t, err); api.StatusCode != 422 || api.Field != "name" || api.Op != "create customer" || api.Service != "sandbox" {
		t.Errorf("customer without name: %+v", api)
	}
}

func TestCreateInvoiceAndReplay(t *testing.T) {
	sb, srv, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	inv := testInvoice()
	cus, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "cus")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(ctx, inv, cus, "inv-key")
	if err != nil {
		t.Fatal(err)
	}
	if res.InvoiceID == "" || res.Number != "SBX-000001" || res.URL != srv.URL+"/invoices/"+res.InvoiceID || res.Replayed {
		t.Errorf("result = %+v", res)
	}
	stored := sb.Invoices()
	if len(stored) != 1 {
		t.Fatalf("%d invoices", len(stored))
	}
	s := stored[0]
	if s.CustomerID != cus.ID || s.Reference != "HS-DEAL-42" || s.Currency != "EUR" ||
		s.IssueDate != "2025-03-01" || s.DueDate != "2025-03-31" || s.Memo != "Won deal 42" ||
		s.Subtotal != "12090.00" || s.TaxTotal != "2280.00" || s.Total != "14370.00" {
		t.Errorf("stored invoice = %+v", s)
	}
	l := s.Lines[1]
	if l.Quantity != "3" || l.UnitPrice != "33.333" || l.Discount != "10.00" || l.Amount != "90.00" || l.TaxRate != "0" || l.TaxAmount != "0.00" {
		t.Errorf("line 1 on the wire = %+v", l)
	}

	again, err := tg.CreateInvoice(ctx, inv, cus, "inv-key")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.InvoiceID != res.InvoiceID || again.Number != res.Number {
		t.Errorf("replay = %+v, want replay of %+v", again, res)
	}
	if n := len(sb.Invoices()); n != 1 {
		t.Errorf("%d invoices after the replay", n)
	}
}

func TestLostResponseIsRecoveredByReplay(t *testing.T) {
	sb, _, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	inv := testInvoice()
	cus, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "cus")
	if err != nil {
		t.Fatal(err)
	}
	sb.SetFaults(sandbox.Faults{LostResponseRate: 1})
	_, err = tg.CreateInvoice(ctx, inv, cus, "k")
	if api := apiError(t, err); api.StatusCode != 502 {
		t.Errorf("lost response: %+v", api)
	}
	// The API may have made the invoice behind its gateway: retried after
	// the time a request may take.
	if c, wait := connectors.Classify(err); c != connectors.RetryAfter || wait != httptarget.DefaultTimeout {
		t.Errorf("502 classified %v, wait %v, want RetryAfter %v", c, wait, httptarget.DefaultTimeout)
	}
	sb.SetFaults(sandbox.Faults{})
	res, err := tg.CreateInvoice(ctx, inv, cus, "k")
	if err != nil {
		t.Fatal(err)
	}
	stored := sb.Invoices()
	if len(stored) != 1 || !res.Replayed || res.InvoiceID != stored[0].ID {
		t.Errorf("retry %+v; invoices %d", res, len(stored))
	}
}

func TestAPIErrors(t *testing.T) {
	sb, srv, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	inv := testInvoice()
	cus, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "cus")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("422", func(t *testing.T) {
		_, err := tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "CUS-9999"}, "k422")
		api := apiError(t, err)
		if api.StatusCode != 422 || api.Field != "customer_id" || !strings.Contains(api.Message, "CUS-9999") ||
			api.Service != "sandbox" || api.Op != "create invoice" {
			t.Errorf("%+v", api)
		}
		if c, _ := connectors.Classify(err); c != connectors.Permanent {
			t.Errorf("classified %v", c)
		}
		if !strings.Contains(err.Error(), "HTTP 422 on customer_id") {
			t.Errorf("Error() = %q", err)
		}
	})
	t.Run("429", func(t *testing.T) {
		sb.SetFaults(sandbox.Faults{Script: []int{429}, RetryAfter: 3 * time.Second})
		_, err := tg.CreateInvoice(ctx, inv, cus, "k429")
		api := apiError(t, err)
		if api.StatusCode != 429 || api.RetryAfter != 3*time.Second || api.Message == "" {
			t.Errorf("%+v", api)
		}
		if c, d := connectors.Classify(err); c != connectors.RetryAfter || d != 3*time.Second {
			t.Errorf("classified %v %v", c, d)
		}
	})
	t.Run("503", func(t *testing.T) {
		sb.SetFaults(sandbox.Faults{Script: []int{503}})
		_, err := tg.CreateInvoice(ctx, inv, cus, "k503")
		// The sandbox's 503 says Retry-After: a refusal, nothing sent.
		if api := apiError(t, err); api.StatusCode != 503 || api.Unsure || api.RetryAfter != time.Second {
			t.Errorf("%+v", api)
		}
		if c, d := connectors.Classify(err); c != connectors.RetryAfter || d != time.Second {
			t.Errorf("classified %v %v", c, d)
		}
	})
	t.Run("503 without Retry-After", func(t *testing.T) {
		// A gateway's, perhaps after forwarding the write: retried after
		// the target's timeout, as a write that may have been made.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		gw, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "erp", Timeout: 7 * time.Second}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		_, err = gw.CreateInvoice(ctx, inv, cus, "k503-gw")
		if api := apiError(t, err); api.StatusCode != 503 || !api.Unsure || api.RetryAfter != 7*time.Second {
			t.Errorf("%+v; want it unsure, retried after the target's timeout (7s)", api)
		}
	})
	t.Run("503 with Retry-After 0 or a date past", func(t *testing.T) {
		// The API's own "not now", asking for no wait: a refusal that
		// sent nothing, retried with the usual backoff. It was taken for
		// a gateway's 503 without Retry-After (unsure, after 7s).
		for _, retryAfter := range []string{"0", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			api, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "erp", Timeout: 7 * time.Second}, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = api.CreateInvoice(ctx, inv, cus, "k503-0")
			srv.Close()
			if got := apiError(t, err); got.StatusCode != 503 || got.Unsure || !got.RetryAfterGiven || got.RetryAfter != 0 {
				t.Errorf("Retry-After %q: %v: Unsure %v, given %v, RetryAfter %v; want a refusal (not unsure, given), no wait of its own",
					retryAfter, got, got.Unsure, got.RetryAfterGiven, got.RetryAfter)
			}
			if c, d := connectors.Classify(err); c != connectors.Retry || d != 0 {
				t.Errorf("Retry-After %q: classified %v %v, want Retry with the usual backoff", retryAfter, c, d)
			}
		}
	})
	t.Run("400", func(t *testing.T) {
		_, err := tg.CreateInvoice(ctx, inv, cus, "") // no key: the sandbox refuses
		api := apiError(t, err)
		if api.StatusCode != 400 || !strings.Contains(api.Message, "Idempotency-Key") {
			t.Errorf("%+v", api)
		}
		if c, _ := connectors.Classify(err); c != connectors.Permanent {
			t.Errorf("classified %v", c)
		}
	})
	t.Run("401", func(t *testing.T) {
		bad, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, AuthValue: secret.New("Bearer wrong")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.FindOrCreateCustomer(ctx, inv.Customer, "k")
		api := apiError(t, err)
		if api.StatusCode != 401 || api.Service != "http" || api.Op != "find customer" {
			t.Errorf("%+v", api)
		}
		if c, _ := connectors.Classify(err); c != connectors.Unauthorized {
			t.Errorf("classified %v", c)
		}
		// The fix is in the target's settings: the message names them.
		if !strings.HasPrefix(api.Message, "the API refused the target's credential: check the target's auth_value, the whole value of header Authorization (e.g.") ||
			!strings.Contains(api.Message, ", and the target's auth_header, the header the API reads it from") {
			t.Errorf("message %q does not name auth_value and auth_header", api.Message)
		}
		// Without auth_value, the target sends no credential.
		none, err := httptarget.New(httptarget.Config{BaseURL: srv.URL}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = none.FindOrCreateCustomer(ctx, inv.Customer, "k")
		if api := apiError(t, err); api.StatusCode != 401 || !strings.HasPrefix(api.Message, "the API wants a credential, and the target sends none: set the target's auth_value, the header's whole value (e.g.") {
			t.Errorf("no credential: %+v", api)
		}
		// Built from a config (through the registry, as the processes
		// build it), the settings are named by their config keys, where
		// an engineer edits them.
		spec, _ := connectors.LookupTarget("http")
		built, err := spec.Build(httptarget.Config{BaseURL: srv.URL, AuthValue: secret.New("Bearer wrong")}, connectors.Env{ConfigKey: "targets.erp"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = built.FindOrCreateCustomer(ctx, inv.Customer, "k")
		if api := apiError(t, err); api.StatusCode != 401 || !strings.HasPrefix(api.Message, "the API refused the target's credential: check targets.erp.auth_value, the whole value of header Authorization (e.g.") ||
			!strings.Contains(api.Message, ", and targets.erp.auth_header, the header the API reads it from") {
			t.Errorf("built from a config: %+v", api)
		}
	})
	if n := len(sb.Invoices()); n != 0 {
		t.Errorf("failed calls created %d invoices", n)
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, long, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
	api := apiError(t, err)
	if api.StatusCode != 503 || api.Message != strings.Repeat("é", 256) || api.RetryAfter != 7*time.Second {
		t.Errorf("status %d, RetryAfter %v, message of %d bytes", api.StatusCode, api.RetryAfter, len(api.Message))
	}
}

// A 2xx answer to a create that does not say the record's id (not JSON,
// or JSON without "id") is a permanent error naming what the protocol
// needs: asking again with the same key would get the same answer.
func TestCreatedWithoutIDIsPermanent(t *testing.T) {
	for name, answer := range map[string]string{"not JSON": "<html>ok</html>", "no id": `{"number":"INV-1"}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(answer))
		}))
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api/"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(err.Error(), `the created invoice as JSON with its "id"`) {
			t.Errorf("%s: %v (class %v), want a permanent error naming the id", name, err, cl)
		}
		srv.Close()
	}
}

func TestNetworkErrorsAndContext(t *testing.T) {
	sb, srv, tg := startSandbox(t, sandbox.Options{})
	inv := testInvoice()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sb.SetFaults(sandbox.Faults{Latency: 5 * time.Second})
	_, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v, want the context's deadline", err)
	}

	// The configured per-request timeout applies too.
	short, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, AuthValue: secret.New("Bearer " + token), Timeout: 50 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.CreateInvoice(context.Background(), inv, connectors.CustomerRef{ID: "x"}, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}

	srv.Close()
	_, err = tg.CreateInvoice(context.Background(), inv, connectors.CustomerRef{ID: "x"}, "k")
	var api *connectors.APIError
	if err == nil || errors.As(err, &api) {
		t.Fatalf("closed server: %v", err)
	}
	if c, _ := connectors.Classify(err); c != connectors.Retry {
		t.Errorf("network error classified %v", c)
	}
}

// timeout bounds each request, as its doc says, not the whole step: a
// customer step that looks up and then creates takes two requests, each
// within the timeout, and succeeds.
func TestTimeoutIsPerRequest(t *testing.T) {
	sb, srv, _ := startSandbox(t, sandbox.Options{})
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, AuthValue: secret.New("Bearer " + token), Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each request well within the timeout, the two together over it.
	sb.SetFaults(sandbox.Faults{Latency: 1200 * time.Millisecond})
	ref, err := tg.FindOrCreateCustomer(context.Background(), testInvoice().Customer, "k")
	if err != nil || !ref.Created {
		t.Fatalf("look-up then creation, each within the timeout: %+v, %v", ref, err)
	}
}

type captured struct {
	method, uri string
	header      http.Header
	body        []byte
}

func TestPlanInvoiceIsWhatIsSent(t *testing.T) {
	var (
		mu  sync.Mutex
		got []captured
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, captured{r.Method, r.RequestURI, r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"77","number":"F-77"}`)
	}))
	defer srv.Close()

	const secretValue = "k3y-never-printed"
	t.Setenv("HTTPTARGET_TEST_KEY", secretValue)
	tg, err := httptarget.New(httptarget.Config{
		BaseURL:           srv.URL + "/erp/v2/",
		AuthHeader:        "x-api-key",
		AuthValue:         secret.New("env:HTTPTARGET_TEST_KEY"),
		IdempotencyHeader: "X-Request-Id",
		InvoicesPath:      "bills",
	}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	inv := testInvoice()
	cus := connectors.CustomerRef{ID: "CUS-1"}
	plan, err := tg.PlanInvoice(inv, cus, "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(context.Background(), inv, cus, "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	if res != (connectors.InvoiceResult{InvoiceID: "77", Number: "F-77"}) {
		t.Errorf("result = %+v", res)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests received", len(got))
	}
	recv := got[0]

	if plan.Method != recv.method || plan.URL != srv.URL+recv.uri || recv.uri != "/erp/v2/bills" {
		t.Errorf("plan %s %s, received %s %s", plan.Method, plan.URL, recv.method, recv.uri)
	}
	if string(plan.Body) != string(recv.body) {
		t.Errorf("bodies differ:\nplan %s\nsent %s", plan.Body, recv.body)
	}
	for name, vals := range plan.Header {
		want := recv.header.Values(name)
		if name == "X-Api-Key" {
			if len(vals) != 1 || vals[0] != httptarget.Mask || len(want) != 1 || want[0] != secretValue {
				t.Errorf("auth header: plan %q, sent %q", vals, want)
			}
			continue
		}
		if strings.Join(vals, ",") != strings.Join(want, ",") {
			t.Errorf("header %s: plan %q, sent %q", name, vals, want)
		}
	}
	for _, name := range []string{"Content-Type", "Accept", "X-Request-Id", "X-Api-Key"} {
		if plan.Header.Get(name) == "" {
			t.Errorf("plan has no %s header", name)
		}
	}
	if plan.Header.Get("X-Request-Id") != "idem-1" || plan.Header.Get("Content-Type") != "application/json" {
		t.Errorf("plan headers %v", plan.Header)
	}

	js, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), secretValue) {
		t.Errorf("the auth value leaks into the plan: %s", js)
	}
	var body httptarget.InvoiceBody
	if err := json.Unmarshal(plan.Body, &body); err != nil || body.Total != "14370.00" || body.CustomerID != "CUS-1" {
		t.Errorf("plan body %+v (%v)", body, err)
	}
}

func TestCustomersPathNone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7", Name: "Acme"}, "k")
	if err != nil || ref != (connectors.CustomerRef{ID: "hub-7"}) {
		t.Errorf("ref %+v, %v", ref, err)
	}
	if _, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{Name: "Acme"}, "k"); !errors.Is(err, httptarget.ErrNoExternalID) {
		t.Errorf("no external id: %v", err)
	}
}

func TestRegistryAndConfig(t *testing.T) {
	spec, ok := connectors.LookupTarget("http")
	if !ok {
		t.Fatal(`target "http" not registered`)
	}
	cfg, ok := spec.NewConfig().(*httptarget.Config)
	if !ok {
		t.Fatalf("NewConfig() is %T", spec.NewConfig())
	}
	if *cfg != httptarget.DefaultConfig() || cfg.AuthHeader != "Authorization" || cfg.IdempotencyHeader != "Idempotency-Key" ||
		cfg.CustomersPath != "/customers" || cfg.CustomerLookup != "before_create" || cfg.InvoicesPath != "/invoices" || cfg.Timeout != 10*time.Second {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg.BaseURL = "http://127.0.0.1:8090"
	tg, err := spec.Build(cfg, connectors.Env{})
	if err != nil || tg == nil {
		t.Fatalf("Build: %v", err)
	}
	if _, err := spec.Build(struct{}{}, connectors.Env{}); err == nil {
		t.Errorf("Build accepted a foreign config")
	}

	for name, c := range map[string]httptarget.Config{
		"no url":        {},
		"relative url":  {BaseURL: "/api"},
		"ftp":           {BaseURL: "ftp://erp.example"},
		"query":         {BaseURL: "https://erp.example/?a=b"},
		"header name":   {BaseURL: "https://erp.example", AuthHeader: "X Key"},
		"header line":   {BaseURL: "https://erp.example", AuthHeader: "Authorization: Bearer X-Evil"},
		"header key":    {BaseURL: "https://erp.example", AuthHeader: "X-Evil="},
		"missing env":   {BaseURL: "https://erp.example", AuthValue: secret.New("env:HTTPTARGET_TEST_UNSET")},
		"newline value": {BaseURL: "https://erp.example", AuthValue: secret.New("Bearer a\r\nX-Evil: 1")},
		"neg timeout":   {BaseURL: "https://erp.example", Timeout: -time.Second},
		"lookup mode":   {BaseURL: "https://erp.example", CustomerLookup: "never"},
	} {
		if _, err := httptarget.New(c, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		} else if strings.Contains(err.Error(), "X-Evil") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

// A base_url refused for carrying a credential (user info, a query) or
// for its scheme, or one that does not parse, is named without it: the
// error reaches stderr and the container's logs (connections.Build). It
// still says what is wrong and what to write instead.
func TestBaseURLErrorsShowNoCredential(t *testing.T) {
	for _, c := range []struct {
		url  string
		want []string // in the error
	}{
		{"https://erp:S3cretPass@erp.example.com/api", []string{`"https://erp.example.com/api"`, "user info", "auth_value"}},
		{"https://erp.example.com/api?api_key=S3cretPass", []string{`"https://erp.example.com/api"`, "a query", "auth_value"}},
		{"https://erp:S3cretPass@erp.example.com/api?api_key=S3cretPass#S3cretPass", []string{"user info or a query or a fragment", "scheme://host/path"}},
		{"ftp://erp:S3cretPass@erp.example.com/in?k=S3cretPass", []string{`"ftp://erp.example.com/in"`, "scheme must be http or https"}},
		{"erp:S3cretPass@erp.example.com/api", []string{"scheme must be http or https"}},
		{"https://erp:S3cretPass@/api", []string{`"https:///api"`, "has no host"}},
		// url.Parse's own error quotes the whole value: a password with a
		// "/" makes it the port; a control character, a bad escape.
		{"https://erp:S3cretPass/x@erp.example.com/api", []string{"base_url is not a valid URL", "https://host/path"}},
		{"https://erp:S3cret Pass@erp.example.com/api\x7f", []string{"base_url is not a valid URL"}},
		{"https://erp.example.com/api%zz?api_key=S3cretPass", []string{"base_url is not a valid URL"}},
	} {
		_, err := httptarget.New(httptarget.Config{BaseURL: c.url}, nil)
		if err == nil {
			t.Errorf("%s: accepted", c.url)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("%s: the error shows the credential: %v", c.url, err)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not say %s: %v", c.url, w, err)
			}
		}
	}
}

// An API that ignores the external_id filter answers its whole list: a
// customer it names with another external id, or with none (made by hand),
// is never taken for this company's (it would bill another company). Only
// an entry whose external_id is the company's is; without one, the
// customer is not found and is created.
func TestFindCustomerSkipsAnotherExternalID(t *testing.T) {
	list := `{"customers":[{"id":"C-OTHER","external_id":"hub-1"},{"id":"C-MINE","external_id":"hub-7"}]}`
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet:
			_, _ = io.WriteString(w, list)
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"C-NEW"}`)
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "loose"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7", Name: "Acme"}, "k1"); err != nil || got.ID != "C-MINE" || got.Created {
		t.Errorf("hub-7: %+v, %v; want the listed C-MINE", got, err)
	}
	if got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-9", Name: "Other"}, "k2"); err != nil || got.ID != "C-NEW" || !got.Created || posts != 1 {
		t.Errorf("hub-9, listed by no entry: %+v, %v, %d creates; want it created", got, err, posts)
	}
	list = `{"customers":[{"id":"C-BY-HAND"},{"id":"C-BY-HAND-2","external_id":""}]}`
	if got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-9", Name: "Other"}, "k3"); err != nil || got.ID != "C-NEW" || !got.Created || posts != 2 {
		t.Errorf("only entries without external_id: %+v, %v, %d creates; want none taken, the customer created", got, err, posts)
	}
	list = `{"customers":[{"id":"C-BY-HAND"},{"id":"C-MINE","external_id":"hub-7"}]}`
	if got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7", Name: "Acme"}, "k4"); err != nil || got.ID != "C-MINE" || got.Created || posts != 2 {
		t.Errorf("an entry without external_id before the company's: %+v, %v, %d creates; want C-MINE", got, err, posts)
	}
}

// After a 409 to the creation, the look-up takes no entry without an
// external_id either: the API refused a duplicate it does not list, which
// is retried, not billed to a customer made by hand.
func TestFindCustomerAfterConflictSkipsEntryWithoutExternalID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodGet:
			_, _ = io.WriteString(w, `{"customers":[{"id":"C-BY-HAND"}]}`)
		case http.MethodPost:
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":"duplicate","customer":{"id":"C-BY-HAND"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "loose", CustomerLookup: httptarget.LookupOnConflict}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	got, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7", Name: "Acme"}, "k")
	if c, _ := connectors.Classify(err); err == nil || c != connectors.Retry || got.ID != "" {
		t.Fatalf("409, then a list with an entry without external_id: %+v, %v; want no customer, retried", got, err)
	}
}

// With lookup_invoices, a re-run whose idempotency key the API has
// forgotten (here: another key) takes the invoice the API already has for
// the reference and customer; another customer's invoice with the same
// reference is not taken. Without it, the API's keys are the only guard.
func TestLookupInvoicesBeforeCreating(t *testing.T) {
	ctx := context.Background()
	sb, srv, plain := startSandbox(t, sandbox.Options{})
	lookup, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, AuthValue: secret.New("Bearer " + token), Name: "sandbox", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	inv := testInvoice()
	cust, err := lookup.FindOrCreateCustomer(ctx, inv.Customer, "wf/customer")
	if err != nil {
		t.Fatal(err)
	}
	first, err := lookup.CreateInvoice(ctx, inv, cust, "wf/invoice")
	if err != nil || first.Replayed {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := lookup.CreateInvoice(ctx, inv, cust, "wf-forgotten/invoice")
	if err != nil || !again.Replayed || again.InvoiceID != first.InvoiceID || again.Number != first.Number || len(sb.Invoices()) != 1 {
		t.Fatalf("re-run with a forgotten key: %+v %v, %d invoices; want %s replayed", again, err, len(sb.Invoices()), first.InvoiceID)
	}
	other, err := lookup.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-8", Name: "Other AG"}, "wf2/customer")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := lookup.CreateInvoice(ctx, inv, other, "wf2/invoice"); err != nil || res.Replayed || res.InvoiceID == first.InvoiceID {
		t.Fatalf("same reference, another customer: %+v %v; want a new invoice", res, err)
	}
	if res, err := plain.CreateInvoice(ctx, inv, cust, "wf-forgotten-2/invoice"); err != nil || res.Replayed || len(sb.Invoices()) != 3 {
		t.Fatalf("without lookup_invoices: %+v %v, %d invoices; want a third invoice", res, err, len(sb.Invoices()))
	}
	// What config check warns of, with a reference not unique per deal.
	if on, setting := lookup.LooksUpInvoicesByReference(); !on || setting != "lookup_invoices" {
		t.Errorf("with lookup_invoices: LooksUpInvoicesByReference() = %v, %q", on, setting)
	}
	if on, _ := plain.LooksUpInvoicesByReference(); on {
		t.Error("without lookup_invoices: LooksUpInvoicesByReference() = true")
	}
}

// An API that does not filter by reference lists every invoice: only an
// entry with the deal's reference counts.
func TestLookupInvoicesSkipsAnotherReference(t *testing.T) {
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodGet:
			if r.URL.Query().Get("reference") != "HS-DEAL-42" {
				t.Errorf("query %q", r.URL.RawQuery)
			}
			_, _ = io.WriteString(w, `{"invoices":[{"id":"I-OTHER","reference":"HS-DEAL-41","customer_id":"C-1"}]}`)
		case http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"I-NEW","number":"INV-9"}`)
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "loose", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	res, err := tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if err != nil || res.InvoiceID != "I-NEW" || res.Replayed || posts != 1 {
		t.Fatalf("got %+v, %v (%d creates); want I-NEW created", res, err, posts)
	}
}

// A look-up's answer that is not the protocol's list fails the step for
// good, naming what is wrong, and nothing is made: an answer without
// "customers" or "invoices" ({}, {"data":[...]}, null), a customer of the
// external id without an id, an invoice of the reference without a
// customer_id, or the deal's without an id. Each was read as "not found",
// and made a second customer or invoice. Two customers of one external id
// (different ids) are refused, not guessed. A "customers": null (a Go
// API's empty slice) is an empty list, and the key is matched ignoring
// case, as the answer is decoded.
func TestListsThatBreakTheProtocolAreRefused(t *testing.T) {
	var mu sync.Mutex
	var customers, invoices string
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
		case r.URL.Path == "/customers":
			_, _ = w.Write([]byte(customers))
		case r.URL.Path == "/invoices":
			_, _ = w.Write([]byte(invoices))
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(c, i string) {
		mu.Lock()
		defer mu.Unlock()
		customers, invoices, posts = c, i, 0
	}
	made := func() int {
		mu.Lock()
		defer mu.Unlock()
		return posts
	}
	for _, c := range []struct {
		name, list string
		says       []string
	}{
		{"empty object", `{}`, []string{`the answer has no "customers"`, `{"customers":[{"id":…,"external_id":…}]}`}},
		{"another key", `{"data":[{"id":"C-7","external_id":"hub-7"}]}`, []string{`the answer has no "customers"`}},
		{"null", `null`, []string{`the answer has no "customers"`}},
		{"no id", `{"customers":[{"external_id":"hub-7"}]}`, []string{`a customer with external_id "hub-7" but no "id"`}},
		{"two", `{"customers":[{"id":"C-7","external_id":"hub-7"},{"id":"C-1","external_id":"hub-1"},{"id":"C-8","external_id":"hub-7"}]}`,
			[]string{`two customers with external_id "hub-7", "C-7" and "C-8"`, "merge them"}},
	} {
		set(c.list, "")
		got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
		if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || got.ID != "" || made() != 0 {
			t.Errorf("customers %s: %+v, %v (class %v), %d creates; want a permanent failure, nothing made", c.name, got, err, cl, made())
			continue
		}
		for _, says := range c.says {
			if !strings.Contains(err.Error(), says) {
				t.Errorf("customers %s: %q does not say %q", c.name, err, says)
			}
		}
	}
	for _, c := range []struct {
		name, list, want string
		created          bool
	}{
		{"null list", `{"customers":null}`, "NEW", true},
		{"key in another case", `{"Customers":[{"id":"C-7","external_id":"hub-7"}]}`, "C-7", false},
		{"one customer twice", `{"customers":[{"id":"C-7","external_id":"hub-7"},{"id":"C-7","external_id":"hub-7"}]}`, "C-7", false},
		{"others without id", `{"customers":[{"external_id":"hub-1"},{"id":"C-7","external_id":"hub-7"}]}`, "C-7", false},
	} {
		set(c.list, "")
		if got, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck"); err != nil || got.ID != c.want || got.Created != c.created {
			t.Errorf("customers %s: %+v, %v; want %s (created %v)", c.name, got, err, c.want, c.created)
		}
	}

	for _, c := range []struct {
		name, list string
		says       []string
	}{
		{"empty object", `{}`, []string{`the answer has no "invoices"`, `{"invoices":[{"id":…,`}},
		{"another key", `{"data":[{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-7"}]}`, []string{`the answer has no "invoices"`}},
		{"customer in another shape", `{"invoices":[{"id":"I-1","reference":"HS-DEAL-42","customer":{"id":"C-7"}}]}`,
			[]string{`invoice "I-1" with reference "HS-DEAL-42" but no "customer_id"`}},
		{"no id", `{"invoices":[{"reference":"HS-DEAL-42","customer_id":"C-7"}]}`,
			[]string{`an invoice with reference "HS-DEAL-42" of customer "C-7", the deal's, but no "id"`}},
	} {
		set("", c.list)
		got, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-7"}, "ik")
		if cl, _ := connectors.Classify(err); err == nil || cl != connectors.Permanent || got.InvoiceID != "" || made() != 0 {
			t.Errorf("invoices %s: %+v, %v (class %v), %d creates; want a permanent failure, nothing made", c.name, got, err, cl, made())
			continue
		}
		for _, says := range c.says {
			if !strings.Contains(err.Error(), says) {
				t.Errorf("invoices %s: %q does not say %q", c.name, err, says)
			}
		}
	}
	for _, c := range []struct{ name, list, want string }{
		{"null list", `{"invoices":null}`, "NEW"},
		{"another reference without customer_id", `{"invoices":[{"id":"I-0","reference":"HS-DEAL-41"}]}`, "NEW"},
		{"another customer's, then the deal's", `{"invoices":[{"id":"I-0","reference":"HS-DEAL-42","customer_id":"C-1"},{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-7"}]}`, "I-1"},
	} {
		set("", c.list)
		if got, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-7"}, "ik"); err != nil || got.InvoiceID != c.want {
			t.Errorf("invoices %s: %+v, %v; want %s", c.name, got, err, c.want)
		}
	}
}

// countingSandbox is a sandbox behind a handler that counts the requests
// by method and, when hold > 0, answers no GET /customers until hold of
// them have read the list (every caller has looked up before any creates).
type countingSandbox struct {
	sb   *sandbox.Server
	srv  *httptest.Server
	mu   sync.Mutex
	reqs map[string]int
	gets sync.WaitGroup
}

func startCountingSandbox(t *testing.T, hold int) *countingSandbox {
	t.Helper()
	c := &countingSandbox{sb: sandbox.New(sandbox.Options{}), reqs: map[string]int{}}
	c.gets.Add(hold)
	h := c.sb.Handler()
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs[r.Method]++
		c.mu.Unlock()
		if r.Method == http.MethodGet && hold > 0 {
			// Read the list now, answer it once every caller has read it:
			// no creation can come between the look-ups.
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			c.gets.Done()
			c.gets.Wait()
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *countingSandbox) target(t *testing.T, lookup string) *httptarget.Target {
	t.Helper()
	tg, err := httptarget.New(httptarget.Config{BaseURL: c.srv.URL, CustomerLookup: lookup, Name: "sandbox"}, c.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func (c *countingSandbox) requests() (gets, posts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, posts = c.reqs[http.MethodGet], c.reqs[http.MethodPost]
	clear(c.reqs)
	return gets, posts
}

// customer_lookup on_conflict: a new customer is one POST, a known one is
// one POST answered 409 naming it; before_create looks up first.
func TestCustomerLookupOnConflict(t *testing.T) {
	ctx := context.Background()
	c := startCountingSandbox(t, 0)
	tg := c.target(t, httptarget.LookupOnConflict)
	acme := model.Customer{ExternalID: "hub-7", Name: "Acme GmbH"}

	first, err := tg.FindOrCreateCustomer(ctx, acme, "k1")
	if err != nil || !first.Created || first.ID == "" {
		t.Fatalf("new customer: %+v, %v", first, err)
	}
	if gets, posts := c.requests(); gets != 0 || posts != 1 {
		t.Errorf("new customer: %d GET + %d POST, want 0 + 1", gets, posts)
	}
	again, err := tg.FindOrCreateCustomer(ctx, acme, "k2")
	if err != nil || again != (connectors.CustomerRef{ID: first.ID}) {
		t.Errorf("known customer: %+v, %v; want found %s", again, err, first.ID)
	}
	if gets, posts := c.requests(); gets != 0 || posts != 1 {
		t.Errorf("known customer: %d GET + %d POST, want 0 + 1 (the 409 names it)", gets, posts)
	}

	before := c.target(t, httptarget.LookupBeforeCreate)
	if got, err := before.FindOrCreateCustomer(ctx, acme, "k3"); err != nil || got.ID != first.ID || got.Created {
		t.Errorf("before_create, known: %+v, %v", got, err)
	}
	if gets, posts := c.requests(); gets != 1 || posts != 0 {
		t.Errorf("before_create, known: %d GET + %d POST, want 1 + 0", gets, posts)
	}
	if got, err := before.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-8", Name: "Beta"}, "k4"); err != nil || !got.Created {
		t.Errorf("before_create, new: %+v, %v", got, err)
	}
	if gets, posts := c.requests(); gets != 1 || posts != 1 {
		t.Errorf("before_create, new: %d GET + %d POST, want 1 + 1", gets, posts)
	}
	if n := len(c.sb.Customers()); n != 2 {
		t.Errorf("%d customers, want 2", n)
	}
}

// Runs of several deals of one new company, all looking it up before any
// creates it (the GETs are held until every run has sent one): the API
// refuses every creation but one with 409, and every run takes that one
// customer, in both modes.
func TestConcurrentRunsOfOneNewCompanyMakeOneCustomer(t *testing.T) {
	const runs = 8
	for _, lookup := range []string{httptarget.LookupBeforeCreate, httptarget.LookupOnConflict} {
		t.Run(lookup, func(t *testing.T) {
			hold := runs
			if lookup == httptarget.LookupOnConflict {
				hold = 0 // it looks up only after a 409
			}
			c := startCountingSandbox(t, hold)
			tg := c.target(t, lookup)
			refs := make([]connectors.CustomerRef, runs)
			errs := make([]error, runs)
			var wg sync.WaitGroup
			for i := range runs {
				wg.Go(func() {
					refs[i], errs[i] = tg.FindOrCreateCustomer(context.Background(),
						model.Customer{ExternalID: "hub-new", Name: "New Co"}, "invoice/demo/deal-"+string(rune('a'+i))+"/customer")
				})
			}
			wg.Wait()
			stored := c.sb.Customers()
			if len(stored) != 1 {
				t.Fatalf("%d customers created, want 1", len(stored))
			}
			created := 0
			for i := range runs {
				if errs[i] != nil || refs[i].ID != stored[0].ID {
					t.Errorf("run %d: %+v, %v; want %s", i, refs[i], errs[i], stored[0].ID)
				}
				if refs[i].Created {
					created++
				}
			}
			if created != 1 {
				t.Errorf("%d runs say they created the customer, want 1", created)
			}
			if gets, posts := c.requests(); posts != runs || (lookup == httptarget.LookupBeforeCreate && gets != runs) {
				t.Errorf("%d GET + %d POST", gets, posts)
			}
		})
	}
}

// A 409 that does not name the customer (or names another external id) is
// followed by a look-up at once; when the API lists none, the step is
// retried with a message that says so. A customer without an external id
// has nothing to look up: its 409 is the key in progress, asked again and
// then retried, never a refusal.
func TestCustomerConflictLooksUp(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits([]time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}))
	var (
		conflict    = `{"error":{"message":"duplicate"}}`
		list        = `{"customers":[{"id":"C-1","external_id":"hub-7"}]}`
		gets, posts int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			gets++
			_, _ = io.WriteString(w, list)
			return
		}
		posts++
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, conflict)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomerLookup: httptarget.LookupOnConflict, Name: "strict"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acme := model.Customer{ExternalID: "hub-7", Name: "Acme"}
	for _, body := range []string{`{"error":{"message":"duplicate"}}`, `{"error":"dup","customer":{"id":"C-OTHER","external_id":"hub-1"}}`, `not json`} {
		conflict, gets, posts = body, 0, 0
		if got, err := tg.FindOrCreateCustomer(ctx, acme, "k"); err != nil || got != (connectors.CustomerRef{ID: "C-1"}) || gets != 1 || posts != 1 {
			t.Errorf("409 %s: %+v, %v after %d creates and %d look-ups; want C-1 looked up after one", body, got, err, posts, gets)
		}
	}
	// A 409 for a customer the API does not list (yet) is tried again.
	list = `{"customers":[]}`
	_, err = tg.FindOrCreateCustomer(ctx, acme, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), `lists no customer with external_id "hub-7"`) {
		t.Errorf("409 and no listed customer: %v (class %v), want a retry", err, c)
	}
	// One that names another company's customer, with none of this one
	// listed, is refused: asking again cannot help (it was retried for a
	// day).
	conflict = `{"error":{"message":"email taken"},"customer":{"id":"C-OTHER","external_id":"hub-1"}}`
	_, err = tg.FindOrCreateCustomer(ctx, acme, "k")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(err.Error(), `naming customer "C-OTHER" of external_id "hub-1"`) {
		t.Errorf("409 naming another company's customer: %v (class %v), want a refusal naming it", err, c)
	}
	// One naming this company's external id without the customer's id,
	// listed by none (yet): the lagging list's retry.
	conflict = `{"error":{"message":"duplicate"},"customer":{"external_id":"hub-7"}}`
	_, err = tg.FindOrCreateCustomer(ctx, acme, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), `lists no customer with external_id "hub-7"`) {
		t.Errorf("409 naming this external id without an id: %v (class %v), want a retry", err, c)
	}
	conflict = `{"error":{"message":"duplicate"}}`
	// Without an external id there is nothing to look up: the 409 is the
	// key in progress, asked again, then retried.
	gets, posts = 0, 0
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{Name: "Walk-in"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "HTTP 409") ||
		!strings.Contains(err.Error(), "still being processed") || gets != 0 || posts != 4 {
		t.Errorf("409 without external id: %v (class %v) after %d creates and %d look-ups; want a retry after 4 creates", err, c, posts, gets)
	}
}

// A later run of a deal (same run key) whose company changed in the CRM
// since the first run created its customer, with the keys the customer
// step sends (connectors.CustomerKey): on_conflict takes the customer the
// external id names (409), not a 422 for a key reused with another body;
// the same customer under the same run key is still a replay.
func TestCustomerChangedSinceAnEarlierRunOfTheDeal(t *testing.T) {
	ctx := context.Background()
	c := startCountingSandbox(t, 0)
	tg := c.target(t, httptarget.LookupOnConflict)
	create := func(cus model.Customer, runKey string) (connectors.CustomerRef, error) {
		return tg.FindOrCreateCustomer(ctx, cus, connectors.CustomerKey(runKey, cus))
	}
	const run = "invoice/demo/D-1/customer"
	first, err := create(model.Customer{ExternalID: "hub-7", Name: "Acme"}, run)
	if err != nil || !first.Created {
		t.Fatalf("first run: %+v, %v", first, err)
	}
	if again, err := create(model.Customer{ExternalID: "hub-7", Name: "Acme"}, run); err != nil || again.ID != first.ID {
		t.Errorf("same customer, same run: %+v, %v; want the replay of %s", again, err, first.ID)
	}
	if got, err := create(model.Customer{ExternalID: "hub-7", Name: "Acme Renamed"}, run); err != nil || got != (connectors.CustomerRef{ID: first.ID}) {
		t.Errorf("renamed company, same run: %+v, %v; want %s", got, err, first.ID)
	}
	if st := c.sb.Stats(); st.CustomersCreated != 1 || st.IdempotentReplays != 1 {
		t.Errorf("stats %+v, want 1 customer and 1 replay", st)
	}
}

// A 409 to the invoice's POST (the IETF draft's answer while the same key
// is still being processed, after an attempt that timed out) is asked
// again and gets the stored answer; a 409 that stays after three more asks
// is retried later (the first request may yet make the invoice), never a
// refusal.
func TestInvoiceConflictIsAskedAgain(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits([]time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}))
	var posts, conflicts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		posts++
		if posts <= conflicts {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":{"message":"a request with this key is being processed"}}`)
			return
		}
		w.Header().Set(httptarget.ReplayedHeader, "true")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"INV-1"}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers, Name: "draft"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inv := testInvoice()
	conflicts = 2
	if res, err := tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "C-1"}, "k"); err != nil || res.InvoiceID != "INV-1" || !res.Replayed || posts != 3 {
		t.Errorf("409 twice, then the stored answer: %+v, %v after %d posts", res, err, posts)
	}
	posts, conflicts = 0, 100
	_, err = tg.CreateInvoice(ctx, inv, connectors.CustomerRef{ID: "C-1"}, "k")
	if err == nil || !strings.Contains(err.Error(), "HTTP 409: a request with this key is being processed") || posts != 4 {
		t.Errorf("a 409 that stays: %v after %d posts, want the 409 after 4", err, posts)
	}
	if c, _ := connectors.Classify(err); c != connectors.Retry {
		t.Errorf("a 409 that stays is %v, want a retry", c)
	}
}

// With lookup_invoices, a 409 to the invoice's POST that stays is checked
// against the list: the deal's invoice, made meanwhile by the request in
// progress, is taken (replayed), rather than asked for again until the
// step's retries end; none listed leaves the retry, saying the list had
// none.
func TestInvoiceConflictThatStaysIsLookedUp(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits([]time.Duration{time.Millisecond}))
	var gets, posts int
	listed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			gets++
			if listed && gets > 1 { // the look-up before the POST finds none
				_, _ = io.WriteString(w, `{"invoices":[{"id":"INV-9","number":"9","reference":"HS-DEAL-42","customer_id":"C-1"}]}`)
				return
			}
			_, _ = io.WriteString(w, `{"invoices":[]}`)
			return
		}
		posts++
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"message":"a request with this key is being processed"}}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers, LookupInvoices: true, Name: "draft"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	listed = true
	res, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if err != nil || res.InvoiceID != "INV-9" || !res.Replayed || posts != 2 || gets != 2 {
		t.Errorf("a 409 that stays, the invoice listed meanwhile: %+v, %v after %d posts and %d gets; want INV-9 after 2 and 2", res, err, posts, gets)
	}
	gets, posts, listed = 0, 0, false
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || err == nil || !strings.Contains(err.Error(), `the API lists no invoice of reference "HS-DEAL-42" billed to customer "C-1" yet`) {
		t.Errorf("a 409 that stays, none listed: %v (class %v), want a retry saying the list had none", err, c)
	}
}

// The asks after a 409 stay within the step's deadline: a wait that would
// outlast it is not waited, and the step ends with the 409, retried, rather
// than with its deadline.
func TestInvoiceConflictIsNotAskedAgainPastTheDeadline(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits([]time.Duration{time.Hour}))
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"message":"a request with this key is being processed"}}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers, Name: "draft"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectors.StepMargin+2*time.Second)
	defer cancel()
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "HTTP 409") || posts != 1 {
		t.Errorf("got %v (class %v) after %d posts; want the 409, retried, after 1", err, c, posts)
	}

	// A step with less time left than a call and the margin sends no
	// write: it would run into the step's deadline, whose retry meets it
	// in flight.
	posts = 0
	short, cancelShort := context.WithTimeout(context.Background(), connectors.StepMargin+500*time.Millisecond)
	defer cancelShort()
	_, err = tg.CreateInvoice(short, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !errors.Is(err, connectors.ErrNoTimeLeft) || posts != 0 {
		t.Errorf("too little time left: %v (class %v) after %d posts; want none sent, retried", err, c, posts)
	}
}

// A 409 that stays keeps its Retry-After: the step is tried again after
// it, as a write that may still be carried out. The error wrapped the 409
// with %v, and the step was retried at once (with the policy's backoff).
func TestKeyInProgressKeepsRetryAfter(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits(nil))
	retryAfter := "30"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"message":"a request with this key is being processed"}}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "draft"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, ierr := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	_, cerr := tg.FindOrCreateCustomer(ctx, model.Customer{Name: "No CRM id"}, "ck")
	for what, err := range map[string]error{"invoice": ierr, "customer without external id": cerr} {
		var unknown *connectors.OutcomeUnknownError
		if c, d := connectors.Classify(err); c != connectors.RetryAfter || d != 30*time.Second || !errors.As(err, &unknown) ||
			!strings.Contains(err.Error(), "still being processed") || !strings.Contains(err.Error(), "waits 30s, the vendor's Retry-After") {
			t.Errorf("%s: %v (class %v after %v); want the key in progress, retried after the 409's 30s", what, err, c, d)
		}
	}
	retryAfter = ""
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Retry || !strings.Contains(err.Error(), "still being processed") {
		t.Errorf("without Retry-After: %v (class %v); want the key in progress, retried", err, c)
	}
}

// Asking again after a 409 that is cut short (the step's context ends
// during the wait, or the wait leaves no time for the POST) reports the
// key in progress, never a write that was not sent (ErrNoTimeLeft: the
// step's attempt would be taken for one that made nothing) nor the bare
// cancellation.
func TestKeyInProgressWhenAskingAgainIsCutShort(t *testing.T) {
	defer func(w []time.Duration) { httptarget.SetConflictWaits(w) }(httptarget.SetConflictWaits([]time.Duration{10 * time.Millisecond}))
	var mu sync.Mutex
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"message":"a request with this key is being processed"}}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers, Name: "draft"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, wantPosts int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if err == nil || errors.Is(err, connectors.ErrNoTimeLeft) || errors.Is(err, context.Canceled) ||
			!strings.Contains(err.Error(), "HTTP 409") || !strings.Contains(err.Error(), "still being processed") || posts != wantPosts {
			t.Errorf("%s: %v after %d posts; want the key in progress after %d", what, err, posts, wantPosts)
		}
		posts = 0
	}

	// Canceled during the wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	restore := httptarget.SetAfter(func(time.Duration) <-chan time.Time { cancel(); return nil }) // a wait that ends only with ctx
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	restore()
	check("canceled while waiting", err, 1)

	// No time left for the POST once the wait is over (it took longer).
	restore = httptarget.SetAfter(func(d time.Duration) <-chan time.Time { return time.After(d + 1500*time.Millisecond) })
	defer restore()
	short, cancelShort := context.WithTimeout(context.Background(), connectors.StepMargin+2*time.Second)
	defer cancelShort()
	_, err = tg.CreateInvoice(short, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	check("no time left after the wait", err, 1)
}

// A 2xx answer larger than the target reads (4 MiB) fails for good: to a
// create, as one without an id does (the record may exist; asking again
// with the same key gets the same answer), and to a look-up (asking again
// reads the same page). It was retried for as long as the run lasted.
func TestAnOversizedAnswerIsPermanent(t *testing.T) {
	huge := `{"id":"I-1","customers":[],"invoices":[],"pad":"` + strings.Repeat("x", 4<<20) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, huge)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "k")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(err.Error(), "larger than 4194304 bytes") ||
		!strings.Contains(err.Error(), "the invoice may exist in the ERP") {
		t.Errorf("create: %v (class %v); want a permanent failure saying the invoice may exist", err, c)
	}
	lookup, err := httptarget.New(httptarget.Config{BaseURL: srv.URL}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	_, err = lookup.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(err.Error(), "larger than 4194304 bytes") ||
		!strings.Contains(err.Error(), "find customer") {
		t.Errorf("look-up: %v (class %v); want a permanent failure", err, c)
	}
}

// customers_path and invoices_path are paths: a query (which may hold a
// credential, ?api_key=...) or a fragment is refused at build, as in
// base_url, and the error shows the path without it.
func TestPathsWithAQueryAreRefused(t *testing.T) {
	for _, c := range []httptarget.Config{
		{BaseURL: "https://erp.example", CustomersPath: "/customers?api_key=S3cret"},
		{BaseURL: "https://erp.example", InvoicesPath: "/invoices?api_key=S3cret"},
		{BaseURL: "https://erp.example", InvoicesPath: "/invoices#S3cret"},
	} {
		_, err := httptarget.New(c, nil)
		if err == nil || strings.Contains(err.Error(), "S3cret") || !strings.Contains(err.Error(), "must not have a query") ||
			!strings.Contains(err.Error(), "auth_value") {
			t.Errorf("%+v: %v; want a refusal without the query, naming auth_value", c, err)
		}
	}
	for _, c := range []httptarget.Config{
		{BaseURL: "https://erp.example", CustomersPath: httptarget.NoCustomers, InvoicesPath: "api/v2/bills"},
		{BaseURL: "https://erp.example", CustomersPath: "/v2/clients/", InvoicesPath: "/v2/invoices"},
	} {
		if _, err := httptarget.New(c, nil); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// A key longer than the API takes (a long deal id, the customer's digest)
// is sent shortened, the same on every attempt: the sandbox (255 bytes at
// most) creates once and replays.
func TestLongKeysAreShortenedStably(t *testing.T) {
	sb, _, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	key := "invoice/demo/" + strings.Repeat("9", 255) + "/customer/0123456789abcdef"
	c := model.Customer{ExternalID: "hub-long", Name: "Long Co"}
	first, err := tg.FindOrCreateCustomer(ctx, c, key)
	if err != nil {
		t.Fatal(err)
	}
	inv := testInvoice()
	res, err := tg.CreateInvoice(ctx, inv, first, strings.Replace(key, "/customer/", "/invoice/", 1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := tg.CreateInvoice(ctx, inv, first, strings.Replace(key, "/customer/", "/invoice/", 1))
	if err != nil || again.InvoiceID != res.InvoiceID || !again.Replayed || len(sb.Invoices()) != 1 {
		t.Errorf("retry under the long key: %+v, %v, %d invoices", again, err, len(sb.Invoices()))
	}
}

// A generic deal id with a control character (a line break, SOH, DEL) gives
// a key Go refuses to send in a header: such a key is sent as printable
// ASCII with a digest, the same on every attempt and apart from the keys
// of similar ids. The keys of ordinary ids (printable ASCII, spaces
// included, long ones shortened as before) are sent exactly as before.
func TestIdempotencyKeyIsAlwaysAValidHeaderValue(t *testing.T) {
	// The values sent before control characters were replaced, written
	// out (connectors/all's TestDerivedKeysAreStable fixes them too).
	for key, want := range map[string]string{
		"invoice/demo/D-1001/invoice":                                      "invoice/demo/D-1001/invoice",
		"invoice/demo/acct-7/0061t00000AbCdEAAZ/customer/0123456789abcdef": "invoice/demo/acct-7/0061t00000AbCdEAAZ/customer/0123456789abcdef",
		`invoice/demo/deal 42 "Q3" (renewal)/invoice`:                      `invoice/demo/deal 42 "Q3" (renewal)/invoice`,
		"invoice/demo/" + strings.Repeat("9", 300) + "/invoice":            "invoice/demo/" + strings.Repeat("9", 209) + "-2a458416b007a06f9ff69d16458a6730",
	} {
		if got := httptarget.IdempotencyKey(key); got != want {
			t.Errorf("key %.40q… is sent as %q, was %q", key, got, want)
		}
	}

	var mu sync.Mutex
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = append(sent, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"INV-1"}`)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, CustomersPath: httptarget.NoCustomers, Name: "generic"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := []string{"D-1\n2", "D-1\x012", "D-1\x7f2", "D-1\r\n2", "Müller-7", "D-1\t2"}
	for _, id := range ids {
		for range 2 { // an attempt and its retry
			if _, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "invoice/demo/"+id+"/invoice"); err != nil {
				t.Fatalf("deal id %q: %v", id, err)
			}
		}
	}
	seen := map[string]bool{}
	for i := 0; i < len(sent); i += 2 {
		key := sent[i]
		if key != sent[i+1] || key != httptarget.IdempotencyKey("invoice/demo/"+ids[i/2]+"/invoice") {
			t.Errorf("deal id %q: keys %q and %q; want the same on every attempt", ids[i/2], key, sent[i+1])
		}
		if seen[key] {
			t.Errorf("deal id %q: key %q is another id's", ids[i/2], key)
		}
		seen[key] = true
		if len(key) > httptarget.MaxKeyLen || strings.IndexFunc(key, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) >= 0 {
			t.Errorf("deal id %q: key %q has control characters or more than %d bytes", ids[i/2], key, httptarget.MaxKeyLen)
		}
		// A key without control characters was always sent as it is.
		if raw := "invoice/demo/" + ids[i/2] + "/invoice"; !strings.ContainsFunc(raw, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) && key != raw {
			t.Errorf("deal id %q: key %q, want it unchanged", ids[i/2], key)
		}
	}
}

// Records numbered by the API ({"id": 42}, as many APIs answer) are read
// as their number written out, in every answer: a created customer and
// invoice, and the look-ups' entries. A numeric id failed the step as
// "not JSON" after the invoice was made.
func TestNumericIDsAreRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/customers":
			_, _ = w.Write([]byte(`{"customers":[]}`))
		case r.Method == http.MethodPost && r.URL.Path == "/customers":
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":7}`))
		case r.Method == http.MethodGet && r.URL.Path == "/invoices":
			_, _ = w.Write([]byte(`{"invoices":[{"id":41,"number":1000,"reference":"OTHER","customer_id":7}]}`))
		case r.Method == http.MethodPost && r.URL.Path == "/invoices":
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":42,"number":1001,"url":null}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inv := testInvoice()
	cust, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "ck")
	if err != nil || cust.ID != "7" || !cust.Created {
		t.Fatalf("customer: %+v, %v; want id 7, created", cust, err)
	}
	res, err := tg.CreateInvoice(ctx, inv, cust, "ik")
	if err != nil || res.InvoiceID != "42" || res.Number != "1001" || res.Replayed {
		t.Fatalf("invoice: %+v, %v; want id 42, number 1001", res, err)
	}

	var id httptarget.ID
	for raw, want := range map[string]string{`"A-1"`: "A-1", `42`: "42", `1.5e3`: "1.5e3", `null`: ""} {
		if err := json.Unmarshal([]byte(raw), &id); err != nil || string(id) != want {
			t.Errorf("%s: %q, %v; want %q", raw, id, err, want)
		}
	}
	for _, raw := range []string{`true`, `{}`, `[1]`} {
		if err := json.Unmarshal([]byte(raw), &id); err == nil {
			t.Errorf("%s read as id %q", raw, id)
		}
	}
}

// A write the API redirects as a GET of the same path elsewhere (a 301
// from http:// to https://, or to another host) is not followed: it is
// refused (not retried), naming the redirect, and nothing is reported
// created. Before, the POST became a GET of the list and the step failed
// saying the invoice "may exist". A redirect to the created record (a 302
// to /invoices/42, as many frameworks answer a create) and a 308 (the same
// POST, sent again there) are followed.
func TestAWriteRedirectedAsAGetIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var posts, gets, elsewhere int
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		elsewhere++
		_, _ = w.Write([]byte(`{"invoices":[]}`))
	}))
	t.Cleanup(moved.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/old/invoices":
			http.Redirect(w, r, moved.URL+"/old/invoices", http.StatusMovedPermanently)
		case r.URL.Path == "/moved/invoices":
			http.Redirect(w, r, "/api/invoices", http.StatusPermanentRedirect)
		case r.URL.Path == "/prg/invoices":
			posts++
			http.Redirect(w, r, "/prg/invoices/42", http.StatusFound)
		case r.URL.Path == "/prg/invoices/42":
			gets++
			_, _ = w.Write([]byte(`{"id":42,"number":"INV-42"}`))
		default:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"INV-9"}`))
		}
	}))
	t.Cleanup(srv.Close)
	target := func(base string) *httptarget.Target {
		t.Helper()
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + base}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	ctx := context.Background()
	_, err := target("/old").CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
	api := apiError(t, err)
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || api.StatusCode != http.StatusMovedPermanently ||
		!strings.Contains(err.Error(), "redirects this POST to "+moved.URL+"/old/invoices") || !strings.Contains(err.Error(), "nothing was created") {
		t.Errorf("a POST answered 301 to the same path elsewhere: %v (class %v), want a refusal naming the redirect", err, cl)
	}
	if posts+gets+elsewhere != 0 {
		t.Errorf("the redirect was followed: %d POSTs, %d GETs, %d elsewhere", posts, gets, elsewhere)
	}
	if res, err := target("/moved").CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k"); err != nil || res.InvoiceID != "INV-9" || posts != 1 {
		t.Errorf("a POST answered 308: %+v, %v, %d POSTs; want it made there", res, err, posts)
	}
	if res, err := target("/prg").CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k"); err != nil || res.InvoiceID != "42" || res.Number != "INV-42" || gets != 1 {
		t.Errorf("a POST answered 302 to the created invoice: %+v, %v; want invoice 42 read there", res, err)
	}
}

// A re-run whose invoice body changed (the deal or the mapping did) sends
// the step's key again with another body: the API answers 422 (the IETF
// draft's, the sandbox's), and the step fails saying the invoice exists
// under the deal's reference and none is made; it said only the API's
// "reused" message, which read as a request to fix and retry.
func TestAKeyReusedWithAnotherBodySaysTheInvoiceExists(t *testing.T) {
	sb, _, tg := startSandbox(t, sandbox.Options{})
	ctx := context.Background()
	inv := testInvoice()
	cust, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "ck")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateInvoice(ctx, inv, cust, "invoice/hs/42/invoice"); err != nil {
		t.Fatal(err)
	}
	inv.Lines[0].Quantity = dec("3") // the deal changed before the re-run
	inv.ComputeTotals()
	_, err = tg.CreateInvoice(ctx, inv, cust, "invoice/hs/42/invoice")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || !strings.Contains(fmt.Sprint(err), `may exist in the ERP, under the reference that body carried (this one's is "HS-DEAL-42"`) ||
		!strings.Contains(fmt.Sprint(err), "does not send a second") {
		t.Errorf("a key reused with another body: %v (class %v), want a refusal saying the invoice exists", err, c)
	}
	// The service and the step are named once.
	if msg := fmt.Sprint(err); strings.Count(msg, "create invoice:") != 1 {
		t.Errorf("%q names the step more than once", msg)
	}
	if n := len(sb.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
}

// The invoice's POST says it was made (connectors.TrackWrites); a look-up
// that finds what it looks for (GETs only) does not.
func TestInvoiceWriteIsTracked(t *testing.T) {
	_, _, tg := startSandbox(t, sandbox.Options{})
	inv := testInvoice()
	cus, err := tg.FindOrCreateCustomer(context.Background(), inv.Customer, "cus")
	if err != nil {
		t.Fatal(err)
	}
	lookup, looked := connectors.TrackWrites(context.Background())
	if again, err := tg.FindOrCreateCustomer(lookup, inv.Customer, "cus-2"); err != nil || again.ID != cus.ID || again.Created || looked() {
		t.Fatalf("the customer found again: %+v, %v, wrote %v; want it found by a look-up, no write", again, err, looked())
	}
	ctx, wrote := connectors.TrackWrites(context.Background())
	if _, err := tg.CreateInvoice(ctx, inv, cus, "inv-key"); err != nil || !wrote() {
		t.Fatalf("create invoice: %v, wrote %v; want it marked", err, wrote())
	}
}

// A write answered with a redirect to what it made (followed as a GET)
// was made, whatever the GET answers: a 429 there still says written.
func TestAWriteRedirectedToWhatItMadeIsTracked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/invoices":
			http.Redirect(w, r, "/api/invoices/43", http.StatusSeeOther)
		case r.URL.Path == "/api/invoices/43":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			_, _ = w.Write([]byte(`{"invoices":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, wrote := connectors.TrackWrites(context.Background())
	if _, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k"); err == nil || !wrote() {
		t.Fatalf("a write redirected to what it made, then 429: %v, wrote %v; want an error and the write marked", err, wrote())
	}
}

// A POST the API redirects with a redirect Go would follow as a GET, but
// for a 303 or a 302 to a record under its path on its own origin, is not
// followed: the step fails for good naming where it leads, and its message
// says what the operator is to do. A 301 (nginx's '/' added, another
// version) or a 302 from http:// to https:// of the same path says the API
// moved: nothing was created, not marked made. Any other 302 (the path
// with a '/' added, an app behind a TLS proxy sending https:// to http://,
// a log-in page) may follow a create: the ERP may have carried the POST
// out, look before retrying, marked made. Before, a 302 to the same path
// ignoring a '/', or on another scheme, said nothing was created, and a
// retry made a second invoice. A 303, even to the list, says the POST was
// handled: followed.
func TestAWriteRedirectedToAnotherPathIsNotFollowedAsAGet(t *testing.T) {
	var mu sync.Mutex
	gets := map[string]int{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets[r.URL.Path]++
			mu.Unlock()
			_, _ = w.Write([]byte(`{"invoices":[]}`))
			return
		}
		switch r.URL.Path {
		case "/nginx/invoices":
			http.Redirect(w, r, "/nginx/invoices/", http.StatusMovedPermanently)
		case "/v1/invoices":
			http.Redirect(w, r, "/v2/invoices/42", http.StatusMovedPermanently)
		case "/tls/invoices":
			w.Header().Set("Location", "https://"+r.Host+"/tls/invoices")
			w.WriteHeader(http.StatusFound)
		case "/proxied/invoices":
			w.Header().Set("Location", "http://"+r.Host+"/proxied/invoices")
			w.WriteHeader(http.StatusFound)
		case "/slash/invoices":
			http.Redirect(w, r, "/slash/invoices/", http.StatusFound)
		case "/login/invoices":
			http.Redirect(w, r, "/login", http.StatusFound)
		case "/list/invoices":
			http.Redirect(w, r, "/list/invoices", http.StatusSeeOther)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(handler)
	t.Cleanup(tlsSrv.Close)
	const (
		moved  = "nothing was created; set base_url (or the path) to where the API answers"
		hedged = "the ERP may have carried the POST out (a redirect after a create) or not (a log-in page, a proxy's redirect): " +
			"look for the invoice in the ERP before retrying the run; set base_url (or the path) to where the API is"
	)
	for _, c := range []struct {
		srv            *httptest.Server
		base, location string
		status         int
		made           bool
		says           string
	}{
		{srv, "/nginx", "/nginx/invoices/ (301: moved)", http.StatusMovedPermanently, false, moved},
		{srv, "/v1", "/v2/invoices/42 (301: moved)", http.StatusMovedPermanently, false, moved},
		{srv, "/tls", "https://" + srv.Listener.Addr().String() + "/tls/invoices (302: http:// to https://)", http.StatusFound, false, moved},
		{tlsSrv, "/proxied", "http://" + tlsSrv.Listener.Addr().String() + "/proxied/invoices (302)", http.StatusFound, true, hedged},
		{srv, "/slash", "/slash/invoices/ (302)", http.StatusFound, true, hedged},
		{srv, "/login", "/login (302)", http.StatusFound, true, hedged},
	} {
		tg, err := httptarget.New(httptarget.Config{BaseURL: c.srv.URL + c.base}, c.srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		ctx, wrote := connectors.TrackWrites(context.Background())
		_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
		api := apiError(t, err)
		wrong := map[bool]string{true: "nothing was created", false: "may have carried"}[c.made]
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || api.StatusCode != c.status || wrote() != c.made ||
			!strings.Contains(api.Message, "redirects this POST to "+c.location) || !strings.Contains(api.Message, c.says) ||
			strings.Contains(api.Message, wrong) {
			t.Errorf("%s: a POST answered %d to %s: %v (class %v), marked made %v; want a refusal naming it, saying %q, marked made %v",
				c.base, c.status, c.location, err, cl, wrote(), c.says, c.made)
		}
	}
	mu.Lock()
	if len(gets) != 0 {
		t.Errorf("refused redirects were followed: GETs %v", gets)
	}
	mu.Unlock()

	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/list"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, wrote := connectors.TrackWrites(context.Background())
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(fmt.Sprint(err), "the invoice may exist") || !wrote() || gets["/list/invoices"] != 1 {
		t.Errorf("a POST answered 303 to the list: %v (class %v), marked made %v, GETs %v; want the list read, the invoice said to may exist, marked made",
			err, cl, wrote(), gets)
	}
}

// A write answered with a redirect to what it made on another origin (a
// 303, a 302 to a record under its path), or whose GET there is redirected
// to another origin, is not followed: the GET would go without the
// credential, be refused (401), and the run fail saying to check the
// credentials while the invoice exists. The step fails for good naming
// the host, saying the invoice may exist there and the credential is not
// sent there; the write is marked made. Before, the GET was sent.
func TestAWriteRedirectedToAnotherHostIsNotFollowed(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"id":"42"}`))
	}))
	t.Cleanup(other.Close)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /see-other/invoices":
			http.Redirect(w, r, other.URL+"/invoices/42", http.StatusSeeOther)
		case "POST /found/invoices":
			http.Redirect(w, r, "http://user:pw@"+otherHost+"/found/invoices/42?sig=s3cret", http.StatusFound)
		case "POST /chain/invoices":
			http.Redirect(w, r, "/chain/invoices/42", http.StatusSeeOther)
		case "GET /chain/invoices/42":
			http.Redirect(w, r, other.URL+"/invoices/42", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		base     string
		status   int
		answered string
	}{
		{"/see-other", http.StatusSeeOther, "this POST with a redirect (303)"},
		{"/found", http.StatusFound, "this POST with a redirect (302)"},
		{"/chain", http.StatusFound, "this POST with a redirect, and the GET of it with another (302),"},
	} {
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + c.base, AuthValue: secret.New("Bearer " + token)}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		ctx, wrote := connectors.TrackWrites(context.Background())
		_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
		cl, _ := connectors.Classify(err)
		var api *connectors.APIError
		if !errors.As(err, &api) || cl != connectors.Permanent || api.StatusCode != c.status || !wrote() {
			t.Errorf("%s: %v (class %v), marked made %v; want a permanent refusal of the %d, marked made", c.base, err, cl, wrote(), c.status)
			continue
		}
		for _, says := range []string{
			fmt.Sprintf("the API answered %s to another host, %s: not followed", c.answered, otherHost),
			"dealsync does not send its credential to another host",
			"the ERP may have carried the POST out, and the invoice may exist there: look for it in the ERP before retrying the run",
		} {
			if !strings.Contains(api.Message, says) {
				t.Errorf("%s: %q does not say %q", c.base, api.Message, says)
			}
		}
		if strings.Contains(api.Message, "pw") || strings.Contains(api.Message, "s3cret") || strings.Contains(api.Message, "nothing was created") {
			t.Errorf("%s: %q names more than the host, or says nothing was created", c.base, api.Message)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(elsewhere) != 0 {
		t.Errorf("the other host was sent %q", elsewhere)
	}
}

// The auth header never follows a redirect to another origin: neither a
// custom one (X-Api-Key, which Go forwards to any host) nor Authorization
// (which Go forwards to another port of the same host). A write's 307 or
// 308 there is sent without it; a look-up's GET is not sent there at all
// (TestALookupRedirectedElsewhereIsRefused). A redirect on the same origin
// keeps it.
func TestRedirectsCarryNoCredentialElsewhere(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name+" "+r.Method+" "+r.URL.Path] = r.Header.Clone()
			mu.Unlock()
			if r.Method == http.MethodGet {
				_, _ = w.Write([]byte(`{"customers":[],"invoices":[]}`))
				return
			}
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"I-1"}`))
		}
	}
	other := httptest.NewServer(record("other"))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /away/customers":
			http.Redirect(w, r, other.URL+"/customers", http.StatusFound)
		case "POST /away/invoices":
			http.Redirect(w, r, other.URL+"/invoices", http.StatusPermanentRedirect)
		case "GET /here/customers":
			http.Redirect(w, r, "/customers", http.StatusFound)
		default:
			record("srv")(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(other.URL, "http://127.0.0.1:") || !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("servers at %s and %s: the test wants one host, two ports", srv.URL, other.URL)
	}
	for _, header := range []string{"X-Api-Key", "Authorization"} {
		clear(seen)
		away, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/away", AuthHeader: header, AuthValue: secret.New(token), LookupInvoices: true}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := away.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck"); err == nil ||
			!strings.Contains(err.Error(), "to another host, "+strings.TrimPrefix(other.URL, "http://")) {
			t.Errorf("%s: a look-up redirected to another port: %v; want it refused naming the host", header, err)
		}
		if _, err := away.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "ik"); err != nil {
			t.Fatal(err)
		}
		for _, req := range []string{"other POST /invoices"} {
			if h, ok := seen[req]; !ok || h.Get(header) != "" || h.Get("Authorization") != "" {
				t.Errorf("%s: %s, redirected to another port: sent %v (%s %q, Authorization %q); want no credential",
					header, req, ok, header, h.Get(header), h.Get("Authorization"))
			}
		}
		if _, ok := seen["other GET /customers"]; ok {
			t.Errorf("%s: the look-up was sent to another port", header)
		}
		here, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/here", AuthHeader: header, AuthValue: secret.New(token)}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := here.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck"); err != nil {
			t.Fatal(err)
		}
		if h := seen["srv GET /customers"]; h.Get(header) != token {
			t.Errorf("%s: a redirect on the same origin sent %q, want the credential", header, h.Get(header))
		}
	}
}

// A look-up that the API redirects to another origin (a new domain, a
// replica, a CDN) fails for good naming the host, and nothing is made: the
// credential is not sent there, and an answer without it (an empty list,
// as an anonymous caller sees) cannot tell that the customer or the invoice
// is not there, as a "next" page there is not read. It was followed, and
// its empty list made a second invoice (and customer). The message names
// the host only: not the query, nor user info of the Location. A redirect
// from http:// to https:// of the same host is followed, with the
// credential.
func TestALookupRedirectedElsewhereIsRefused(t *testing.T) {
	var mu sync.Mutex
	var elsewhere, posts int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere++
		mu.Unlock()
		_, _ = w.Write([]byte(`{"customers":[],"invoices":[]}`)) // what an anonymous caller sees
	}))
	t.Cleanup(other.Close)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
		case r.URL.Path == "/chain/customers" || r.URL.Path == "/chain/invoices":
			http.Redirect(w, r, "/v2"+r.URL.RequestURI(), http.StatusFound) // same origin, then away
		case r.URL.Query().Get("page") == "" && strings.HasPrefix(r.URL.Path, "/paged/"):
			w.Header().Set("Link", `<?page=2>; rel="next"`)
			_, _ = fmt.Fprintf(w, `{"customers":[],"invoices":[]}`)
		default:
			http.Redirect(w, r, "http://user:pw@"+otherHost+r.URL.RequestURI()+"&sig=s3cret", http.StatusMovedPermanently)
		}
	}))
	t.Cleanup(srv.Close)
	for _, base := range []string{"/away", "/chain", "/paged"} {
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + base, AuthValue: secret.New("Bearer " + token), LookupInvoices: true}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, cerr := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
		_, ierr := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-1"}, "ik")
		for what, err := range map[string]error{"customer": cerr, "invoice": ierr} {
			cl, _ := connectors.Classify(err)
			if err == nil || cl != connectors.Permanent {
				t.Errorf("%s: the %s look-up redirected to another host: %v (class %v); want a permanent failure", base, what, err, cl)
				continue
			}
			for _, says := range []string{"to another host, " + otherHost + ":", "cannot tell that the " + what + " is not there", "set base_url"} {
				if !strings.Contains(err.Error(), says) {
					t.Errorf("%s: %q does not say %q", base, err, says)
				}
			}
			if m := apiError(t, err).Message; strings.Contains(m, "pw") || strings.Contains(m, "s3cret") || strings.Contains(m, "hub-7") || strings.Contains(m, "HS-DEAL") {
				t.Errorf("%s: %q names more than the host", base, m)
			}
		}
	}
	mu.Lock()
	if posts != 0 || elsewhere != 0 {
		t.Errorf("%d creates, %d requests to the other host; want none", posts, elsewhere)
	}
	mu.Unlock()

	// http:// to https:// of the same host keeps the credential: followed.
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = fmt.Fprintf(w, `{"customers":[{"id":"C-7","external_id":"hub-7"}]}`)
	}))
	t.Cleanup(tls.Close)
	client := tls.Client()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, tls.Listener.Addr().String()) // erp.example.com:443 is the TLS server
	}
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://erp.example.com"+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
	client.Transport = upgradeTransport{plain: plain, tls: client.Transport}
	tg, err := httptarget.New(httptarget.Config{BaseURL: "http://erp.example.com", AuthValue: secret.New("Bearer " + token)}, client)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck"); err != nil || got.ID != "C-7" {
		t.Errorf("http:// to https:// of the same host: %+v, %v; want C-7 found", got, err)
	}
}

// upgradeTransport answers http:// requests with plain (in memory) and
// sends https:// ones on tls.
type upgradeTransport struct {
	plain http.Handler
	tls   http.RoundTripper
}

func (u upgradeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" {
		return u.tls.RoundTrip(r)
	}
	rec := httptest.NewRecorder()
	u.plain.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func TestKeepsCredential(t *testing.T) {
	for _, c := range []struct {
		first, to string
		want      bool
	}{
		{"https://erp.example/api/customers", "https://ERP.example:443/v2/customers", true},
		{"http://erp.example/api", "https://erp.example/api", true},
		{"http://erp.example:80/api", "https://erp.example:443/api", true},
		{"https://erp.example/api", "http://erp.example/api", false},
		{"https://erp.example:8443/api", "http://erp.example:8443/api", false},
		{"http://erp.example:8080/api", "https://erp.example/api", false},
		{"https://erp.example/api", "https://erp.example:8443/api", false},
		{"https://erp.example/api", "https://files.erp.example/api", false},
		{"https://erp.example/api", "https://evil.example/api", false},
	} {
		first, _ := url.Parse(c.first)
		to, _ := url.Parse(c.to)
		if got := httptarget.KeepsCredential(first, to); got != c.want {
			t.Errorf("%s to %s: keeps the credential %v, want %v", c.first, c.to, got, c.want)
		}
	}
}

// An idempotency_header that is the auth_header (in any case) is refused
// naming both: the key would replace the credential on every POST.
func TestIdempotencyHeaderIsNotTheAuthHeader(t *testing.T) {
	for _, c := range []httptarget.Config{
		{BaseURL: "https://erp.example", AuthHeader: "x-api-key", IdempotencyHeader: "X-API-KEY"},
		{BaseURL: "https://erp.example", IdempotencyHeader: "authorization"},
		{BaseURL: "https://erp.example", AuthHeader: "Idempotency-Key"},
	} {
		_, err := httptarget.New(c, nil)
		if err == nil || !strings.Contains(err.Error(), "idempotency_header") || !strings.Contains(err.Error(), "auth_header") {
			t.Errorf("%+v: %v; want a refusal naming idempotency_header and auth_header", c, err)
		}
	}
	if _, err := httptarget.New(httptarget.Config{BaseURL: "https://erp.example", AuthHeader: "X-Api-Key", IdempotencyHeader: "X-Api-Key-Idem"}, nil); err != nil {
		t.Errorf("two headers: %v", err)
	}
}

// A look-up reads the list page after page, by the body's "next" (a URL,
// or a path or query) or a Link header's rel="next", to the last page: a
// customer or an invoice listed on a later page only is found, and not
// made a second time, and the pages after its match are read too (for a
// second one: TestLookupsSeeASecondMatchOnALaterPage). Before, only the
// first page was read.
func TestLookupsReadEveryPage(t *testing.T) {
	var mu sync.Mutex
	var posts int
	var pages []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("GET %s without the credential", r.URL)
		}
		pages = append(pages, r.URL.RequestURI())
		q := r.URL.Query()
		switch r.URL.Path + "?" + q.Get("page") {
		case "/api/customers?":
			// A relative reference with a query, as many APIs write it.
			_, _ = fmt.Fprintf(w, `{"customers":[{"id":"C-1","external_id":"hub-1"}],"next":"customers?external_id=%s&page=2"}`, q.Get("external_id"))
		case "/api/customers?2":
			w.Header().Add("Link", `<`+srv.URL+`/api/customers?page=9>; rel="last"`)
			w.Header().Add("Link", `<https://docs.example/paging>; rel=help, </api/customers?page=3>; title="a, b; c"; rel="prev next"`)
			_, _ = w.Write([]byte(`{"customers":[],"next":null}`))
		case "/api/customers?3":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-OTHER","external_id":"hub-8"},{"id":"C-MINE","external_id":"hub-7"}],"next":"/api/customers?page=4"}`))
		case "/api/invoices?":
			_, _ = fmt.Fprintf(w, `{"invoices":[{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-OTHER"}],"next":%q}`, srv.URL+"/api/invoices?page=2")
		case "/api/invoices?2":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-MINE","number":"INV-7","reference":"HS-DEAL-42","customer_id":"C-MINE"}]}`))
		default:
			_, _ = w.Write([]byte(`{"customers":[],"invoices":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api", AuthValue: secret.New("Bearer " + token), LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cus, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7", Name: "Acme"}, "ck")
	if want := []string{"/api/customers?external_id=hub-7", "/api/customers?external_id=hub-7&page=2", "/api/customers?page=3", "/api/customers?page=4"}; err != nil ||
		cus.ID != "C-MINE" || cus.Created || posts != 0 || !slices.Equal(pages, want) {
		t.Fatalf("customer on page 3: %+v, %v, %d creates, pages %q; want C-MINE found on page 3, and page 4 read: pages %q", cus, err, posts, pages, want)
	}
	pages = nil
	res, err := tg.CreateInvoice(ctx, testInvoice(), cus, "ik")
	if err != nil || res.InvoiceID != "I-MINE" || res.Number != "INV-7" || !res.Replayed || posts != 0 || len(pages) != 2 {
		t.Fatalf("invoice on page 2: %+v, %v, %d creates, pages %q; want I-MINE replayed", res, err, posts, pages)
	}
	pages = nil
	if cus, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-9", Name: "New"}, "ck2"); err != nil || !cus.Created || posts != 1 || len(pages) != 4 {
		t.Fatalf("a customer on no page: %+v, %v, %d creates, pages %q; want every page read, then it created", cus, err, posts, pages)
	}
}

// A duplicate listed on a page after the match is seen: two customers of
// one external id, or two invoices of the deal's reference billed to its
// customer, on two pages, fail the look-up for good, naming both, and
// nothing is made or taken. Before, the look-up stopped at the page of its
// match: the customer on page 1 was taken whatever page 2 listed, and the
// first invoice was the deal's however many the API listed.
func TestLookupsSeeASecondMatchOnALaterPage(t *testing.T) {
	var mu sync.Mutex
	var gets, posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		gets++
		page := r.URL.Query().Get("page")
		switch r.URL.Path + "?" + page {
		// Two customers of hub-7, on pages 1 and 3 (by "next", then Link).
		case "/dup/customers?":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-7","external_id":"hub-7"}],"next":"/dup/customers?page=2"}`))
		case "/dup/customers?2":
			w.Header().Set("Link", `</dup/customers?page=3>; rel="next"`)
			_, _ = w.Write([]byte(`{"customers":[]}`))
		case "/dup/customers?3":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-8","external_id":"hub-7"}]}`))
		// Two invoices of the deal on pages 1 and 2, and another's.
		case "/dup/invoices?":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-7"},` +
				`{"id":"I-0","reference":"HS-DEAL-42","customer_id":"C-1"}],"next":"?page=2"}`))
		case "/dup/invoices?2":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-2","reference":"HS-DEAL-42","customer_id":"C-7"}]}`))
		// The same customer and invoice listed again on page 2 (pages
		// that overlap): one match, taken.
		case "/same/customers?":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-7","external_id":"hub-7"}],"next":"?page=2"}`))
		case "/same/customers?2":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-7","external_id":"hub-7"}]}`))
		case "/same/invoices?":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-7"}],"next":"?page=2"}`))
		case "/same/invoices?2":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-1","reference":"HS-DEAL-42","customer_id":"C-7"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	reset := func() {
		mu.Lock()
		defer mu.Unlock()
		gets, posts = 0, 0
	}
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return gets, posts
	}
	ctx := context.Background()
	dup, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/dup", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	reset()
	cus, err := dup.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
	g, p := counts()
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || cus.ID != "" || g != 3 || p != 0 ||
		!strings.Contains(fmt.Sprint(err), `two customers with external_id "hub-7", "C-7" and "C-8"`) || !strings.Contains(fmt.Sprint(err), "page 3") {
		t.Errorf("customers on pages 1 and 3: %+v, %v (class %v), %d pages, %d creates; want a permanent error naming both, on page 3, nothing made",
			cus, err, cl, g, p)
	}
	reset()
	res, err := dup.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-7"}, "ik")
	g, p = counts()
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || res.InvoiceID != "" || g != 2 || p != 0 ||
		!strings.Contains(fmt.Sprint(err), `lists 2 invoices with reference "HS-DEAL-42" billed to customer "C-7", the deal's: "I-1", "I-2"`) {
		t.Errorf("invoices on pages 1 and 2: %+v, %v (class %v), %d pages, %d creates; want a permanent error naming I-1 and I-2, nothing made",
			res, err, cl, g, p)
	}

	same, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/same", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	reset()
	cus, err = same.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
	if g, p := counts(); err != nil || cus.ID != "C-7" || cus.Created || g != 2 || p != 0 {
		t.Errorf("one customer on two pages: %+v, %v, %d pages, %d creates; want C-7 found", cus, err, g, p)
	}
	reset()
	res, err = same.CreateInvoice(ctx, testInvoice(), cus, "ik")
	if g, p := counts(); err != nil || res.InvoiceID != "I-1" || !res.Replayed || g != 2 || p != 0 {
		t.Errorf("one invoice on two pages: %+v, %v, %d pages, %d creates; want I-1 replayed", res, err, g, p)
	}
}

// Two or more invoices with the deal's reference billed to its customer
// are ambiguous: the look-up fails for good, naming the reference and a
// few of the invoices ("and N more"; "at least" when the list goes on),
// and takes none, nor makes one. Before, the first listed was taken as
// the deal's. Invoices of the reference billed to other customers are not
// the deal's, and do not count.
func TestInvoiceLookupRefusesTwoInvoicesOfTheDeal(t *testing.T) {
	var mu sync.Mutex
	var list string
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		_, _ = w.Write([]byte(list))
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	entries := func(ids ...string) string {
		var b []string
		for _, id := range ids {
			b = append(b, fmt.Sprintf(`{"id":%q,"reference":"HS-DEAL-42","customer_id":"C-7"}`, id))
		}
		return strings.Join(b, ",")
	}
	for _, c := range []struct {
		name, list string
		says       []string
	}{
		{"two", `{"invoices":[` + entries("I-1") + `,{"id":"I-0","reference":"HS-DEAL-42","customer_id":"C-1"},` + entries("I-2") + `]}`,
			[]string{`the API lists 2 invoices with reference "HS-DEAL-42" billed to customer "C-7", the deal's: "I-1", "I-2";`, "does not guess", "retry the run"}},
		{"seven", `{"invoices":[` + entries("I-1", "I-2", "I-3", "I-4", "I-5", "I-6", "I-7") + `]}`,
			[]string{`lists 7 invoices`, `"I-1", "I-2", "I-3", "I-4", "I-5" and 2 more;`}},
		{"two, and more pages", `{"invoices":[` + entries("I-1", "I-2") + `],"next":"?page=2"}`,
			[]string{`lists at least 2 invoices`, `"I-1", "I-2";`}},
		{"numeric ids", `{"invoices":[{"id":41,"reference":"HS-DEAL-42","customer_id":"C-7"},{"id":42,"reference":"HS-DEAL-42","customer_id":"C-7"}]}`,
			[]string{`"41", "42"`}},
	} {
		mu.Lock()
		list, posts = c.list, 0
		mu.Unlock()
		res, err := tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "C-7"}, "ik")
		mu.Lock()
		made := posts
		mu.Unlock()
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !errors.Is(err, connectors.ErrPermanent) || res.InvoiceID != "" || made != 0 {
			t.Errorf("%s: %+v, %v (class %v), %d creates; want a permanent failure, nothing taken or made", c.name, res, err, cl, made)
			continue
		}
		for _, says := range c.says {
			if !strings.Contains(err.Error(), says) {
				t.Errorf("%s: %q does not say %q", c.name, err, says)
			}
		}
	}
}

// A match whose list goes on past MaxPages fails for good: the pages past
// it are not read, and may hold a second match. A match on a page the API
// filtered whose "next" is no link ends the look-up, found: the protocol
// gives no way to read on (docs/connectors/erp.md, "http").
func TestLookupsAfterAMatch(t *testing.T) {
	var mu sync.Mutex
	var gets, posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		gets++
		switch r.URL.Path {
		case "/long/customers": // the match on page 1, then other entries page after page
			n := 1
			_, _ = fmt.Sscan(r.URL.Query().Get("page"), &n)
			if n == 1 {
				_, _ = w.Write([]byte(`{"customers":[{"id":"C-7","external_id":"hub-7"}],"next":"?page=2"}`))
				return
			}
			_, _ = fmt.Fprintf(w, `{"customers":[{"id":"C-%d","external_id":"hub-%d"}],"next":"?page=%d"}`, 100+n, 100+n, n+1)
		case "/cursor/customers":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-7","external_id":"hub-7"}],"next":"eyJpZCI6MTB9"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	long, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/long"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cus, err := long.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck")
	mu.Lock()
	g, p := gets, posts
	gets, posts = 0, 0
	mu.Unlock()
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || cus.ID != "" || g != httptarget.MaxPages || p != 0 ||
		!strings.Contains(fmt.Sprint(err), "pages of") || !strings.Contains(fmt.Sprint(err), "hold a match") {
		t.Errorf("a match, then more than MaxPages pages: %+v, %v (class %v), %d pages, %d creates; want a permanent error after %d pages, nothing made",
			cus, err, cl, g, p, httptarget.MaxPages)
	}
	cursor, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/cursor"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cus, err = cursor.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck")
	mu.Lock()
	g, p = gets, posts
	mu.Unlock()
	if err != nil || cus.ID != "C-7" || cus.Created || g != 1 || p != 0 {
		t.Errorf(`a match, then a "next" that is no link: %+v, %v, %d pages, %d creates; want C-7 found on the one page`, cus, err, g, p)
	}
}

// A list whose next page cannot be read fails the look-up for good, and
// nothing is created: a next page on another origin (not sent, nor the
// credential), one already read (a loop), and a list longer than MaxPages
// pages. "Not found" would make a second
// customer, or an invoice the look-up was to find.
func TestLookupsRefuseNextPagesTheyCannotRead(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere++
		_, _ = w.Write([]byte(`{"customers":[{"id":"C-MINE","external_id":"hub-7"}]}`))
	}))
	t.Cleanup(other.Close)
	var gets, posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		gets++
		page := r.URL.Query().Get("page")
		switch r.URL.Path {
		case "/other/customers":
			_, _ = fmt.Fprintf(w, `{"customers":[],"next":%q}`, other.URL+"/customers?page=2")
		case "/loop/customers":
			w.Header().Set("Link", `</loop/customers?page=1>; rel="next"`)
			_, _ = w.Write([]byte(`{"customers":[]}`))
		case "/long/invoices":
			n := 1
			_, _ = fmt.Sscan(page, &n)
			_, _ = fmt.Fprintf(w, `{"invoices":[{"id":"I-%d","reference":"OTHER","customer_id":"C-1"}],"next":"?page=%d"}`, n, n+1)
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		base, says string
		pages      int
	}{
		{"/other", "another host", 1},
		{"/loop", "a page already read", 2},
		{"/long", "no match in the first 20 pages", httptarget.MaxPages},
	} {
		gets, posts = 0, 0
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + c.base, AuthValue: secret.New(token), LookupInvoices: true}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if c.base == "/long" {
			_, err = tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "C-1"}, "ik")
		} else {
			_, err = tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck")
		}
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(fmt.Sprint(err), c.says) || gets != c.pages || posts != 0 {
			t.Errorf("%s: %v (class %v), %d pages read, %d creates; want a permanent error saying %q after %d pages, nothing created",
				c.base, err, cl, gets, posts, c.says, c.pages)
		}
	}
	if elsewhere != 0 {
		t.Errorf("a next page on another host was read")
	}
}

// A "next" that is no link (a page number, an opaque cursor, an object,
// a word) is a token only the API can use: after a page the API filtered
// (here empty) the look-up ends at it, as before pages were read, and the
// customer or invoice is made. Before, a number failed every look-up for
// good, and a cursor was read as a path (GET /api/eyJ…: 404). A Link
// header's rel="next" beside it is followed.
func TestLookupsEndAtANextThatIsNoLink(t *testing.T) {
	nexts := []string{`2`, `"2"`, `"eyJpZCI6MTB9"`, `"eyJ/aWQ=="`, `"id:10"`, `{"cursor":"eyJpZCI6MTB9"}`, `true`}
	var mu sync.Mutex
	var gets []string
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
			return
		}
		gets = append(gets, r.URL.RequestURI())
		var api, list string // "/3/customers": the API of nexts[3]
		if _, err := fmt.Sscanf(strings.ReplaceAll(r.URL.Path, "/", " "), "%s %s", &api, &list); err != nil {
			http.NotFound(w, r)
			return
		}
		var i int
		switch _, err := fmt.Sscan(api, &i); {
		case api == "link" && r.URL.Query().Get("page") == "":
			w.Header().Set("Link", `<?page=2>; rel="next"`)
			_, _ = fmt.Fprintf(w, `{%q:[],"next":"eyJpZCI6MTB9"}`, list)
		case api == "link":
			_, _ = fmt.Fprintf(w, `{%q:[]}`, list)
		case err != nil || i >= len(nexts):
			http.NotFound(w, r)
		default:
			_, _ = fmt.Fprintf(w, `{%q:[],"next":%s}`, list, nexts[i])
		}
	}))
	t.Cleanup(srv.Close)
	for i, next := range nexts {
		tg, err := httptarget.New(httptarget.Config{BaseURL: fmt.Sprintf("%s/%d", srv.URL, i), LookupInvoices: true}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		gets, posts = nil, 0
		mu.Unlock()
		ctx := context.Background()
		cus, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
		if err == nil {
			_, err = tg.CreateInvoice(ctx, testInvoice(), cus, "ik")
		}
		mu.Lock()
		if err != nil || !cus.Created || posts != 2 || len(gets) != 2 {
			t.Errorf(`"next": %s: %v, customer %+v, %d creates, pages read %q; want each look-up to end at its first page, and both made`, next, err, cus, posts, gets)
		}
		mu.Unlock()
	}
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/link"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	gets = nil
	mu.Unlock()
	if cus, err := tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck"); err != nil || !cus.Created ||
		!slices.Equal(gets, []string{"/link/customers?external_id=hub-7", "/link/customers?page=2"}) {
		t.Errorf(`a cursor in "next" and a Link header: %+v, %v, pages read %q; want the Link followed`, cus, err, gets)
	}
}

// After a page of other entries than the one asked for (an API that does
// not filter), a "next" that is no link fails the look-up for good, and
// nothing is made: the entry may be on a page the target cannot read, and
// "not found" would make a second customer or invoice.
func TestLookupsRefuseANextThatIsNoLinkAfterOtherEntries(t *testing.T) {
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
		case r.URL.Path == "/api/customers":
			_, _ = w.Write([]byte(`{"customers":[{"id":"C-1","external_id":"hub-1"}],"next":2}`))
		case r.URL.Path == "/api/invoices":
			_, _ = w.Write([]byte(`{"invoices":[{"id":"I-1","reference":"OTHER","customer_id":"C-MINE"}],"next":"eyJpZCI6MTB9"}`))
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(fmt.Sprint(err), `"next" that is no link (2)`) || posts != 0 {
		t.Errorf("customer: %v (class %v), %d creates; want a permanent error naming the next, nothing created", err, cl, posts)
	}
	_, err = tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-MINE"}, "ik")
	if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !strings.Contains(fmt.Sprint(err), `"eyJpZCI6MTB9"`) || posts != 0 {
		t.Errorf("invoice: %v (class %v), %d creates; want a permanent error naming the next, nothing created", err, cl, posts)
	}
}

// After a page the API filtered that holds entries (the reference asked
// for, billed to another customer), a "next" that is no link ends the
// look-up there: the entry looked for would carry the value too, and the
// record is made. (A customer page the API filtered holds the company's
// customer, or an entry of its external id without an id, which is
// refused: TestListsThatBreakTheProtocolAreRefused.)
func TestLookupsEndAtANextThatIsNoLinkAfterAFilteredPage(t *testing.T) {
	var gets, posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
		case r.URL.Path == "/api/customers":
			gets++
			_, _ = fmt.Fprintf(w, `{"customers":[{"id":"","external_id":%q}],"next":2}`, r.URL.Query().Get("external_id"))
		case r.URL.Path == "/api/invoices":
			gets++
			_, _ = fmt.Fprintf(w, `{"invoices":[{"id":"I-9","reference":%q,"customer_id":"OTHER"}],"next":"eyJpZCI6MTB9"}`, r.URL.Query().Get("reference"))
		}
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + "/api", LookupInvoices: true}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cus, err := tg.FindOrCreateCustomer(ctx, model.Customer{ExternalID: "hub-7"}, "ck")
	if c, _ := connectors.Classify(err); c != connectors.Permanent || cus.ID != "" || gets != 1 || posts != 0 {
		t.Fatalf("customer: %+v, %v, %d pages, %d creates; want an entry of the external id without an id refused after one page", cus, err, gets, posts)
	}
	res, err := tg.CreateInvoice(ctx, testInvoice(), connectors.CustomerRef{ID: "C-MINE"}, "ik")
	if err != nil || res.InvoiceID != "NEW" || res.Replayed || gets != 2 || posts != 1 {
		t.Fatalf("invoice: %+v, %v, %d pages, %d creates; want it made after one page", res, err, gets, posts)
	}
}

// A next page that answers with an error (a 404) fails the look-up as
// that answer, naming the page, its URL and what named it ("next" or the
// Link header). It failed with the bare 404, as if the first page had.
func TestANextPageThatFailsIsNamed(t *testing.T) {
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			posts++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"NEW"}`))
		case r.URL.Path == "/next/customers" && r.URL.Query().Get("page") == "":
			_, _ = w.Write([]byte(`{"customers":[],"next":"/next/customers?page=2"}`))
		case r.URL.Path == "/link/customers" && r.URL.Query().Get("page") == "":
			w.Header().Set("Link", `<?page=2>; rel="next"`)
			_, _ = w.Write([]byte(`{"customers":[]}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such page"}`))
		}
	}))
	t.Cleanup(srv.Close)
	for base, says := range map[string]string{
		"/next": `sandbox find customer: HTTP 404: no such page (page 2 of the list, ` + srv.URL + `/next/customers?page=2, named by page 1's "next")`,
		"/link": `sandbox find customer: HTTP 404: no such page (page 2 of the list, ` + srv.URL + `/link/customers?page=2, named by page 1's Link header (rel="next"))`,
	} {
		posts = 0
		tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL + base, Name: "sandbox"}, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tg.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "hub-7"}, "ck")
		var api *connectors.APIError
		if cl, _ := connectors.Classify(err); cl != connectors.Permanent || !errors.As(err, &api) || api.StatusCode != http.StatusNotFound ||
			fmt.Sprint(err) != says || posts != 0 {
			t.Errorf("%s: %v (class %v), %d creates; want %q, nothing created", base, err, cl, posts, says)
		}
	}
}

func TestLinkNext(t *testing.T) {
	for _, c := range []struct {
		links []string
		want  string
	}{
		{nil, ""},
		{[]string{`<https://erp.example/c?page=2>; rel="next"`}, "https://erp.example/c?page=2"},
		{[]string{`</c?page=2>;rel=next`}, "/c?page=2"},
		{[]string{`</c?page=1>; rel="prev", </c?page=3>; rel="next"`}, "/c?page=3"},
		{[]string{`</c?page=1>; rel="first"`, `</c?a=1,2>; title="x; rel=next, y"; REL="Next Last"`}, "/c?a=1,2"},
		{[]string{`</c?page=1>; rel="nextpage"`, `</c?page=9>; rel="last"`}, ""},
		{[]string{`garbage </c?page=2>; rel="next"`}, ""},
		{[]string{`</c?page=2>; title="unclosed; rel=next`}, ""},
	} {
		h := http.Header{}
		for _, l := range c.links {
			h.Add("Link", l)
		}
		if got := httptarget.LinkNext(h); got != c.want {
			t.Errorf("Link %q: next %q, want %q", c.links, got, c.want)
		}
	}
}

// A 401 to a write that a 307 took to another origin, where the target's
// credential is not sent, is not the credential's fault: the refusal says
// where the redirect went and to set base_url, not to check auth_value.
func TestA401AfterARedirectElsewhereNamesWhereItWent(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(other.Close)
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(first.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: first.URL, AuthValue: secret.New("Bearer s3cret")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tg.CreateInvoice(context.Background(), testInvoice(), connectors.CustomerRef{ID: "x"}, "k")
	api := apiError(t, err)
	if api.StatusCode != 401 || !strings.Contains(api.Message, "the API refused the request a redirect sent to "+other.URL+"/invoices, without the target's credential") ||
		!strings.Contains(api.Message, "set the target's base_url") || strings.Contains(api.Message, "auth_value") {
		t.Errorf("%+v", api)
	}
	if c, _ := connectors.Classify(err); c != connectors.Unauthorized {
		t.Errorf("classified %v", c)
	}
}
