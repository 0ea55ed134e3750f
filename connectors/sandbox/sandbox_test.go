package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/model"
)

type harness struct {
	t   *testing.T
	s   *Server
	srv *httptest.Server
}

func start(t *testing.T, o Options) *harness {
	t.Helper()
	return serve(t, New(o))
}

// serve serves s (whose test hooks are set) for the test.
func serve(t *testing.T, s *Server) *harness {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, s: s, srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

func (a answer) errorDetail(t *testing.T) httptarget.ErrorDetail {
	t.Helper()
	var e httptarget.ErrorBody
	a.decode(t, &e)
	return e.Error
}

// call sends a request; body is marshalled unless it is a string or nil.
func (h *harness) call(method, path, key string, body any, hdr ...string) answer {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func (h *harness) customer(externalID string) string {
	h.t.Helper()
	a := h.call("POST", "/customers", "cus-"+externalID, httptarget.CustomerBody{ExternalID: externalID, Name: "Acme " + externalID})
	if a.status != http.StatusCreated {
		h.t.Fatalf("create customer: %d %s", a.status, a.body)
	}
	var c Customer
	a.decode(h.t, &c)
	return c.ID
}

// invoice is a valid EUR invoice body: 2 × 100.00 + 3 × 33.333 − 10.00.
func invoice(customerID string) httptarget.InvoiceBody {
	return httptarget.InvoiceBody{
		Reference:  "DEAL-1",
		CustomerID: customerID,
		Currency:   "EUR",
		IssueDate:  "2025-03-01",
		DueDate:    "2025-03-31",
		Lines: []httptarget.LineBody{
			{Description: "Licence", Quantity: "2", UnitPrice: "100.00", Discount: "0.00", TaxRate: "19", Amount: "200.00", TaxAmount: "38.00"},
			{Description: "Support", Quantity: "3", UnitPrice: "33.333", Discount: "10.00", TaxRate: "0", Amount: "90.00", TaxAmount: "0.00"},
		},
		Subtotal: "290.00",
		TaxTotal: "38.00",
		Total:    "328.00",
	}
}

func TestIdempotentReplay(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	first := h.call("POST", "/invoices", "k1", invoice(cus))
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first answer marked replayed")
	}
	var a Invoice
	first.decode(t, &a)
	if a.ID == "" || a.Number != "SBX-000001" || a.URL != h.srv.URL+"/invoices/"+a.ID || a.Total != "328.00" {
		t.Errorf("created invoice = %+v", a)
	}

	// Same key, same content, different formatting: still a replay.
	second := h.call("POST", "/invoices", "k1", mustMarshalIndent(t, invoice(cus)))
	if second.status != http.StatusCreated || second.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d replayed=%q %s", second.status, second.header.Get("Idempotent-Replayed"), second.body)
	}
	if !bytes.Equal(first.body, second.body) {
		t.Errorf("replay body differs:\n%s\n%s", first.body, second.body)
	}
	if got := h.s.Invoices(); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("invoices = %+v, want just %s", got, a.ID)
	}
	st := h.s.Stats()
	if st.InvoicesCreated != 1 || st.IdempotentReplays != 1 {
		t.Errorf("stats = %+v", st)
	}

	// The same key on /customers is another scope.
	if c := h.call("POST", "/customers", "k1", httptarget.CustomerBody{Name: "Other"}); c.status != http.StatusCreated {
		t.Errorf("key k1 on /customers: %d %s", c.status, c.body)
	}

	var got Invoice
	h.call("GET", "/invoices/"+a.ID, "", nil).decode(t, &got)
	if got.ID != a.ID || len(got.Lines) != 2 || got.Lines[1].UnitPrice != "33.333" {
		t.Errorf("GET /invoices/%s = %+v", a.ID, got)
	}
	var list struct{ Invoices []Invoice }
	h.call("GET", "/invoices?reference=DEAL-1", "", nil).decode(t, &list)
	if len(list.Invoices) != 1 {
		t.Errorf("GET /invoices?reference=DEAL-1: %d invoices", len(list.Invoices))
	}
	h.call("GET", "/invoices?reference=nope", "", nil).decode(t, &list)
	if len(list.Invoices) != 0 {
		t.Errorf("GET /invoices?reference=nope: %d invoices", len(list.Invoices))
	}
	if a := h.call("GET", "/invoices/INV-9999", "", nil); a.status != http.StatusNotFound {
		t.Errorf("unknown invoice: %d", a.status)
	}
}

func mustMarshalIndent(t *testing.T, v any) string {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeyReusedWithDifferentBody(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	if a := h.call("POST", "/invoices", "k1", invoice(cus)); a.status != http.StatusCreated {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	other := invoice(cus)
	other.Memo = "changed"
	a := h.call("POST", "/invoices", "k1", other)
	if a.status != http.StatusUnprocessableEntity {
		t.Fatalf("reuse: %d %s", a.status, a.body)
	}
	if msg := a.errorDetail(t).Message; msg != "Idempotency-Key reused with a different request body" {
		t.Errorf("message = %q", msg)
	}
	if n := len(h.s.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
}

// Many requests with one key at once create one invoice: each is answered
// the creation (fresh or replayed) or, while the first is in progress, 409.
func TestConcurrentSameKeyCreatesOne(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	body, _ := json.Marshal(invoice(cus))
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      = map[string]int{}
		statuses = map[int]int{}
		replayed atomic.Int32
		startGun = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-startGun
			req, _ := http.NewRequest("POST", h.srv.URL+"/invoices", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "same")
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
			if resp.StatusCode != http.StatusCreated {
				return
			}
			var inv Invoice
			if err := json.NewDecoder(resp.Body).Decode(&inv); err != nil {
				t.Error(err)
				return
			}
			if resp.Header.Get("Idempotent-Replayed") == "true" {
				replayed.Add(1)
			}
			mu.Lock()
			ids[inv.ID]++
			mu.Unlock()
		})
	}
	close(startGun)
	wg.Wait()
	if got := h.s.Invoices(); len(got) != 1 {
		t.Fatalf("%d invoices created, want 1", len(got))
	}
	created := statuses[http.StatusCreated]
	if created+statuses[http.StatusConflict] != n || created == 0 {
		t.Errorf("statuses %v: want only 201 and 409, at least one 201", statuses)
	}
	if len(ids) != 1 || ids[h.s.Invoices()[0].ID] != created {
		t.Errorf("answers by id = %v", ids)
	}
	if int(replayed.Load()) != created-1 {
		t.Errorf("%d replays among %d creations, want %d", replayed.Load(), created, created-1)
	}
	if st := h.s.Stats(); st.KeysInProgress != statuses[http.StatusConflict] {
		t.Errorf("KeysInProgress = %d, %d answered 409", st.KeysInProgress, statuses[http.StatusConflict])
	}
}

// A request whose key is still in progress is answered 409 with
// Retry-After at once, as the IETF draft and Stripe answer it, and creates
// nothing; asked again once the first is done, it gets the replay. A
// different body under the key in progress is 422. After a failure the key
// is released and the next request is processed.
func TestKeyInProgressIs409(t *testing.T) {
	s := New(Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	var processing atomic.Int32
	s.beforeProcess = func() {
		if processing.Add(1) == 2 { // the customer's is first
			close(entered)
			<-release
		}
	}
	h := serve(t, s)
	cus := h.customer("c1")
	first := make(chan answer, 1)
	go func() { first <- h.call("POST", "/invoices", "k", invoice(cus)) }()
	<-entered // the first request holds the key

	a := h.call("POST", "/invoices", "k", invoice(cus))
	if a.status != http.StatusConflict || a.header.Get("Retry-After") != "1" || a.header.Get(replayedHeader) != "" {
		t.Errorf("key in progress: %d Retry-After=%q replayed=%q %s", a.status, a.header.Get("Retry-After"), a.header.Get(replayedHeader), a.body)
	}
	if d := a.errorDetail(t); !strings.Contains(d.Message, "in progress") {
		t.Errorf("409 message %q does not say the request is in progress", d.Message)
	}
	other := invoice(cus)
	other.Memo = "changed"
	if a := h.call("POST", "/invoices", "k", other); a.status != http.StatusUnprocessableEntity {
		t.Errorf("different body while in progress: %d %s", a.status, a.body)
	}
	if n := len(s.Invoices()); n != 0 {
		t.Fatalf("%d invoices while the first request is held, want 0", n)
	}
	close(release)
	if a := <-first; a.status != http.StatusCreated || a.header.Get(replayedHeader) != "" {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	if a := h.call("POST", "/invoices", "k", invoice(cus)); a.status != http.StatusCreated || a.header.Get(replayedHeader) != "true" {
		t.Errorf("asked again once done: %d replayed=%q %s", a.status, a.header.Get(replayedHeader), a.body)
	}
	if st := s.Stats(); st.KeysInProgress != 1 || st.InvoicesCreated != 1 || st.IdempotentReplays != 1 {
		t.Errorf("stats = %+v", st)
	}

	hash := sha256.Sum256([]byte("body"))
	var calls atomic.Int32
	failing := func() reply { calls.Add(1); return failed(http.StatusUnprocessableEntity, "no", "") }
	for range 2 {
		if rp, r := s.idempotent(idemRef{key: "k2", hash: hash}, failing); rp.status != 422 || r {
			t.Errorf("failing: %d replayed=%v", rp.status, r)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("a failed request must release its key: processed %d times, want 2", calls.Load())
	}
}

func TestValidationNamesTheField(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	for i, tc := range []struct {
		field  string
		mutate func(b *httptarget.InvoiceBody)
	}{
		{"customer_id", func(b *httptarget.InvoiceBody) { b.CustomerID = "CUS-9999" }},
		{"customer_id", func(b *httptarget.InvoiceBody) { b.CustomerID = "" }},
		{"currency", func(b *httptarget.InvoiceBody) { b.Currency = "EURO" }},
		{"issue_date", func(b *httptarget.InvoiceBody) { b.IssueDate = "01/03/2025" }},
		{"due_date", func(b *httptarget.InvoiceBody) { b.DueDate = "2025-02-28" }},
		{"lines", func(b *httptarget.InvoiceBody) { b.Lines = nil }},
		{"lines[0].quantity", func(b *httptarget.InvoiceBody) { b.Lines[0].Quantity = "two" }},
		{"lines[1].amount", func(b *httptarget.InvoiceBody) { b.Lines[1].Amount = "89.99" }},
		{"lines[1].amount", func(b *httptarget.InvoiceBody) { b.Lines[1].Amount = "90.001" }},
		{"subtotal", func(b *httptarget.InvoiceBody) { b.Subtotal = "291.00" }},
		{"total", func(b *httptarget.InvoiceBody) { b.Total = "290.00" }},
		{"tax_total", func(b *httptarget.InvoiceBody) { b.TaxTotal = "" }},
		// Tax: 19 % of 200.00 is 38.00; the totals still add up.
		{"lines[0].tax_amount", func(b *httptarget.InvoiceBody) {
			b.Lines[0].TaxAmount, b.TaxTotal, b.Total = "38.01", "38.01", "328.01"
		}},
		{"lines[0].tax_amount", func(b *httptarget.InvoiceBody) { b.Lines[0].TaxAmount, b.TaxTotal, b.Total = "", "0.00", "290.00" }},
		{"lines[1].tax_amount", func(b *httptarget.InvoiceBody) { b.Lines[1].TaxAmount, b.TaxTotal, b.Total = "1.00", "39.00", "329.00" }},
		{"lines[0].tax_amount", func(b *httptarget.InvoiceBody) { b.Lines[0].TaxRate = "20" }},
		{"tax_total", func(b *httptarget.InvoiceBody) { b.TaxTotal, b.Total = "39.00", "329.00" }},
	} {
		b := invoice(cus)
		key := fmt.Sprintf("v-%d", i)
		b.Lines = append([]httptarget.LineBody(nil), b.Lines...)
		tc.mutate(&b)
		a := h.call("POST", "/invoices", key, b)
		if a.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d %s", tc.field, a.status, a.body)
			continue
		}
		if d := a.errorDetail(t); d.Field != tc.field || d.Message == "" {
			t.Errorf("%s: error %+v", tc.field, d)
		}
	}
	// JPY has no minor units: 3 × 333 = 999.
	jpy := httptarget.InvoiceBody{
		CustomerID: cus, Currency: "JPY", IssueDate: "2025-03-01", DueDate: "2025-03-01",
		Lines:    []httptarget.LineBody{{Description: "x", Quantity: "3", UnitPrice: "333", Amount: "999"}},
		Subtotal: "999", TaxTotal: "0", Total: "999",
	}
	if a := h.call("POST", "/invoices", "jpy", jpy); a.status != http.StatusCreated {
		t.Errorf("JPY invoice: %d %s", a.status, a.body)
	}
	if n := len(h.s.Invoices()); n != 1 {
		t.Errorf("%d invoices, want only the JPY one", n)
	}

	a := h.call("POST", "/customers", "no-name", httptarget.CustomerBody{ExternalID: "x"})
	if d := a.errorDetail(t); a.status != http.StatusUnprocessableEntity || d.Field != "name" {
		t.Errorf("customer without name: %d %+v", a.status, d)
	}
	// A refused request does not hold its key: fixed, it goes through.
	if a := h.call("POST", "/customers", "no-name", httptarget.CustomerBody{ExternalID: "x", Name: "X"}); a.status != http.StatusCreated {
		t.Errorf("corrected customer: %d %s", a.status, a.body)
	}
}

// A reference prefix lists one batch's invoices (the bench's, say)
// without the rest of the ERP; none matching is an empty list, not null.
func TestListInvoicesByReferencePrefix(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	for i, ref := range []string{"B-x-1", "B-y-1", "B-x-2"} {
		b := invoice(cus)
		b.Reference = ref
		if a := h.call("POST", "/invoices", fmt.Sprint("k", i), b); a.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", ref, a.status, a.body)
		}
	}
	var list struct{ Invoices []Invoice }
	h.call("GET", "/invoices?reference_prefix=B-x-", "", nil).decode(t, &list)
	var refs []string
	for _, inv := range list.Invoices {
		refs = append(refs, inv.Reference)
	}
	if strings.Join(refs, ",") != "B-x-1,B-x-2" {
		t.Errorf("reference_prefix=B-x-: %v, want B-x-1,B-x-2 in creation order", refs)
	}
	if a := h.call("GET", "/invoices?reference_prefix=B-z-", "", nil); !bytes.Contains(a.body, []byte(`"invoices":[]`)) {
		t.Errorf("no match: %s, want an empty list", a.body)
	}
	if a := h.call("GET", "/invoices?reference_prefix=B-x-&reference=B-x-2", "", nil); !bytes.Contains(a.body, []byte(`"reference":"B-x-2"`)) || bytes.Contains(a.body, []byte(`"B-x-1"`)) {
		t.Errorf("both filters: %s, want only B-x-2", a.body)
	}
}

// External ids are unique: a second customer with one is refused with 409
// naming the first, and the refusal is not remembered under its key; a
// replay of the first key still answers the first creation, and customers
// without an external id are not limited.
func TestCustomerExternalIDIsUnique(t *testing.T) {
	h := start(t, Options{})
	first := h.customer("hub-1")
	for range 2 { // the refusal is evaluated afresh: 409 again, not 422 nor a replay
		a := h.call("POST", "/customers", "other-key", httptarget.CustomerBody{ExternalID: "hub-1", Name: "Acme again"})
		if a.status != http.StatusConflict || a.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("duplicate external_id: %d %s", a.status, a.body)
		}
		var got struct {
			Error    httptarget.ErrorDetail `json:"error"`
			Customer Customer               `json:"customer"`
		}
		a.decode(t, &got)
		if got.Customer.ID != first || got.Customer.ExternalID != "hub-1" || got.Customer.Name != "Acme hub-1" ||
			got.Error.Field != "external_id" || !strings.Contains(got.Error.Message, first) {
			t.Errorf("409 answer = %+v", got)
		}
	}
	if a := h.call("POST", "/customers", "cus-hub-1", httptarget.CustomerBody{ExternalID: "hub-1", Name: "Acme hub-1"}); a.status != http.StatusCreated || a.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay of the first key: %d %s", a.status, a.body)
	}
	for _, key := range []string{"anon-1", "anon-2"} {
		if a := h.call("POST", "/customers", key, httptarget.CustomerBody{Name: "Walk-in"}); a.status != http.StatusCreated {
			t.Errorf("customer without external_id under %s: %d %s", key, a.status, a.body)
		}
	}
	if st := h.s.Stats(); st.CustomersCreated != 3 || len(h.s.Customers()) != 3 {
		t.Errorf("%d customers created, %d stored; want 3", st.CustomersCreated, len(h.s.Customers()))
	}
}

// The sandbox checks tax as model.Invoice.ComputeTotals computes it, so
// that a regression in ComputeTotals or in the http target's body fails
// against it: invoices computed by ComputeTotals and written by
// httptarget.NewInvoiceBody are accepted, in currencies with 2, 0 and 3
// minor units, with tax amounts that round half away from zero; the same
// bodies with a tax amount rounded otherwise are refused, naming it.
func TestTaxIsCheckedAsComputeTotalsComputesIt(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	d := func(s string) decimal.Decimal { return decimal.RequireFromString(s) }
	line := func(q, price, disc, rate string) model.InvoiceLine {
		return model.InvoiceLine{Description: "x", Quantity: d(q), UnitPrice: d(price), Discount: d(disc), TaxRate: d(rate)}
	}
	for i, c := range []struct {
		currency string
		lines    []model.InvoiceLine
		// line is the one whose tax rounds half away from zero, and
		// truncated what truncating (or rounding half to even) makes of it.
		line      int
		truncated string
	}{
		{"EUR", []model.InvoiceLine{
			line("3", "19.99", "0", "19"),   // 59.97 × 19 % = 11.3943 → 11.39
			line("1", "0.10", "0", "5"),     // 0.10 × 5 % = 0.005 → 0.01
			line("2", "33.335", "0", "7.7"), // 66.67 × 7.7 % = 5.13359 → 5.13
			line("1", "66.70", "10.005", "0"),
		}, 1, "0.00"},
		{"JPY", []model.InvoiceLine{
			line("1", "1050", "0", "10"), // 105
			line("1", "50", "0", "1"),    // 0.5 → 1
		}, 1, "0"},
		{"KWD", []model.InvoiceLine{
			line("1", "1.250", "0", "0.2"), // 0.0025 → 0.003
			line("4", "2.5", "0", "5"),     // 0.5
		}, 0, "0.002"},
	} {
		inv := model.Invoice{
			Reference: fmt.Sprintf("TAX-%d", i), Currency: model.Currency(c.currency),
			IssueDate: model.NewDate(2025, 3, 1), DueDate: model.NewDate(2025, 3, 31), Lines: c.lines,
		}
		inv.ComputeTotals()
		body := httptarget.NewInvoiceBody(inv, cus)
		if a := h.call("POST", "/invoices", fmt.Sprintf("tax-%d", i), body); a.status != http.StatusCreated {
			t.Errorf("%s invoice computed by ComputeTotals: %d %s", c.currency, a.status, a.body)
		}

		// The half-way tax amount rounded down, the totals following it.
		bad := httptarget.NewInvoiceBody(inv, cus)
		bad.Lines = append([]httptarget.LineBody(nil), bad.Lines...)
		cur := model.Currency(c.currency)
		was := d(bad.Lines[c.line].TaxAmount)
		bad.Lines[c.line].TaxAmount = c.truncated
		tax := inv.TaxTotal.Sub(was).Add(d(c.truncated))
		bad.TaxTotal, bad.Total = cur.Format(tax), cur.Format(inv.Subtotal.Add(tax))
		a := h.call("POST", "/invoices", fmt.Sprintf("tax-bad-%d", i), bad)
		want := fmt.Sprintf("lines[%d].tax_amount", c.line)
		if d := a.errorDetail(t); a.status != http.StatusUnprocessableEntity || d.Field != want {
			t.Errorf("%s with %s = %s: %d %s, want 422 naming %s", c.currency, want, c.truncated, a.status, a.body, want)
		}
	}
	if n := len(h.s.Invoices()); n != 3 {
		t.Errorf("%d invoices, want the 3 computed by ComputeTotals", n)
	}
}

// The http target takes the sandbox's 409 for a key in progress as the
// IETF draft's: it asks again (after Retry-After) and gets the first
// request's invoice as a replay; one invoice in all.
func TestHTTPTargetAsksAgainWhileTheKeyIsInProgress(t *testing.T) {
	s := New(Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	var processing atomic.Int32
	s.beforeProcess = func() {
		if processing.Add(1) == 2 { // the invoice's, after the customer's
			close(entered)
			<-release
		}
	}
	conflicted := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, r)
		if rec.Code == http.StatusConflict {
			select {
			case conflicted <- struct{}{}:
			default:
			}
		}
		sendHeld(w, rec)
	}))
	t.Cleanup(srv.Close)
	tg, err := httptarget.New(httptarget.Config{BaseURL: srv.URL, Name: "sandbox"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	inv := model.Invoice{
		Reference: "DEAL-1", Customer: model.Customer{ExternalID: "c1", Name: "Acme"}, Currency: "EUR",
		IssueDate: model.NewDate(2025, 3, 1), DueDate: model.NewDate(2025, 3, 31),
		Lines: []model.InvoiceLine{{Description: "x", Quantity: decimal.NewFromInt(2), UnitPrice: decimal.RequireFromString("9.99"), TaxRate: decimal.NewFromInt(19)}},
	}
	inv.ComputeTotals()
	ctx := context.Background()
	cus, err := tg.FindOrCreateCustomer(ctx, inv.Customer, "cus-1")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		res connectors.InvoiceResult
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { r, err := tg.CreateInvoice(ctx, inv, cus, "inv-1"); first <- result{r, err} }()
	<-entered // the first attempt is being processed
	go func() { r, err := tg.CreateInvoice(ctx, inv, cus, "inv-1"); second <- result{r, err} }()
	<-conflicted // the second was answered 409
	close(release)
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatalf("first: %v; second: %v", a.err, b.err)
	}
	if a.res.Replayed || !b.res.Replayed || a.res.InvoiceID != b.res.InvoiceID {
		t.Errorf("first %+v, second %+v: want one invoice, the second a replay", a.res, b.res)
	}
	if n := len(s.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
}
