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
	"time"

	"github.com/dealsync/dealsync/connectors/httptarget"
)

type harness struct {
	t   *testing.T
	s   *Server
	srv *httptest.Server
}

func start(t *testing.T, o Options) *harness {
	t.Helper()
	s := New(o)
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

func TestConcurrentSameKeyCreatesOne(t *testing.T) {
	h := start(t, Options{})
	cus := h.customer("c1")
	h.s.slowProcess = 50 * time.Millisecond // every request arrives while the first is in flight
	body, _ := json.Marshal(invoice(cus))
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      = map[string]int{}
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
			var inv Invoice
			if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&inv) != nil {
				t.Errorf("status %d", resp.StatusCode)
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
	if len(ids) != 1 || ids[h.s.Invoices()[0].ID] != n {
		t.Errorf("answers by id = %v", ids)
	}
	if replayed.Load() != n-1 {
		t.Errorf("%d replays, want %d", replayed.Load(), n-1)
	}
}

// The waiting path, deterministically: a second request arriving while the
// first is being processed waits and gets the replay; after a failure the
// key is released and the next request is processed.
func TestIdempotentWaitsForInFlight(t *testing.T) {
	s := New(Options{})
	var waits atomic.Int32
	s.onWait = func() { waits.Add(1) }
	hash := sha256.Sum256([]byte("body"))
	release := make(chan struct{})
	var calls atomic.Int32
	slow := func() reply {
		calls.Add(1)
		<-release
		return reply{status: http.StatusCreated, resource: map[string]string{"id": "X"}}
	}
	type res struct {
		status   int
		body     string
		replayed bool
	}
	results := make(chan res, 2)
	ask := func() {
		rp, r, _ := s.idempotent(context.Background(), idemRef{key: "k", hash: hash}, slow)
		results <- res{rp.status, string(rp.bytes()), r}
	}
	go ask()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go ask()
	for waits.Load() == 0 { // the second request waits for the first
		time.Sleep(time.Millisecond)
	}
	// A different body under the in-flight key is refused at once.
	if rp, _, _ := s.idempotent(context.Background(), idemRef{key: "k", hash: sha256.Sum256([]byte("other"))}, slow); rp.status != http.StatusUnprocessableEntity {
		t.Errorf("different body while in flight: %d", rp.status)
	}
	// A waiter gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := s.idempotent(ctx, idemRef{key: "k", hash: hash}, slow); err == nil {
		t.Errorf("waiter did not give up with its context")
	}
	close(release)
	a, b := <-results, <-results
	if a.replayed == b.replayed || a.body != `{"id":"X"}` || b.body != a.body || a.status != 201 || b.status != 201 {
		t.Errorf("results %+v %+v: want one fresh, one replay of the same answer", a, b)
	}
	if calls.Load() != 1 {
		t.Errorf("processed %d times", calls.Load())
	}

	failing := func() reply { calls.Add(1); return failed(http.StatusUnprocessableEntity, "no", "") }
	calls.Store(0)
	for range 2 {
		if rp, r, _ := s.idempotent(context.Background(), idemRef{key: "k2", hash: hash}, failing); rp.status != 422 || r {
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
