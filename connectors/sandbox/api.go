package sandbox

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/model"
)

const (
	maxBody        = 1 << 20
	maxKeyLen      = 255
	idemHeader     = "Idempotency-Key"
	replayedHeader = httptarget.ReplayedHeader
	dateLayout     = "2006-01-02"
)

// idemEntry is one remembered idempotency key: in progress until stored
// says its request succeeded, with reply its answer. A key whose request
// failed is forgotten.
type idemEntry struct {
	hash   [sha256.Size]byte
	stored bool
	reply  reply
}

// reply is a processed request's answer: its status and either a body or
// the resource it created, rendered when sent (resources never change),
// so that a remembered answer keeps no second copy of the resource.
// retryAfter, if set, is sent as Retry-After (seconds).
type reply struct {
	status     int
	body       []byte
	resource   any
	retryAfter int
}

func (r reply) bytes() []byte {
	if r.resource != nil {
		return mustJSON(r.resource)
	}
	return r.body
}

// failed is the reply of a request refused with status.
func failed(status int, msg, field string) reply {
	return reply{status: status, body: errorJSON(msg, field)}
}

type route struct {
	handle    http.HandlerFunc
	faultable bool // ErrorRate, RateLimitRate, Latency, LostResponseRate (POSTs)
	scripted  bool // Faults.Script (POST /invoices)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()

	if r.URL.Path == "/healthz" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}

	routes, allow := s.routes(r.URL.Path)
	if routes == nil {
		writeError(w, http.StatusNotFound, "no such resource: "+r.URL.Path, "")
		return
	}
	rt, ok := routes[r.Method]
	if !ok {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path, "")
		return
	}
	if s.token != "" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token", "")
		return
	}
	if r.Method == http.MethodPost {
		// Read the body before the faults: besides the size limit, a
		// handler whose request body is consumed learns of a client that
		// hangs up (r.Context() is cancelled), which Latency relies on to
		// drop an answer nobody waits for.
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody), "")
				return
			}
			writeError(w, http.StatusBadRequest, "reading request body: "+err.Error(), "")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
	}
	if !rt.faultable {
		rt.handle(w, r)
		return
	}
	s.serveFaultable(w, r, rt)
}

// serveFaultable decides on a fault before any processing, so that a fault
// creates nothing, and otherwise processes the request; with Latency, the
// answer (the fault's or the request's, but not an idempotent replay) is
// held for that long after the work is done, and dropped if the client is
// gone by then: the ERP made the invoice but its answer never arrived, and
// the retry under the same key gets the stored answer at once.
func (s *Server) serveFaultable(w http.ResponseWriter, r *http.Request, rt route) {
	status, f := s.decideFault(rt.scripted)
	answer := func(w http.ResponseWriter) {
		if status != 0 {
			s.writeFault(w, r, status, f.RetryAfter)
			return
		}
		rt.handle(w, r)
	}
	if f.Latency <= 0 {
		answer(w)
		return
	}
	held := httptest.NewRecorder()
	answer(held)
	if held.Header().Get(replayedHeader) == "true" {
		// A replay is answered at once: the retry of a request whose
		// answer was held past the client's timeout gets it, as an ERP
		// that made the invoice answers its key's retry from its store.
		sendHeld(w, held)
		return
	}
	if s.onHold != nil {
		s.onHold()
	}
	t := time.NewTimer(f.Latency)
	select {
	case <-t.C:
		sendHeld(w, held)
	case <-r.Context().Done():
		t.Stop()
		// Only a 2xx answer is of work done: a fault or a refusal (a 409
		// of a customer that exists) created nothing.
		what := "the request was processed, and its retry under the same key gets the stored answer"
		switch {
		case held.Code < 200 || held.Code > 299:
			what = "the answer was a refusal or an injected fault: nothing was created"
		case r.Method != http.MethodPost:
			what = "a read: nothing was created"
		}
		s.log.Info("sandbox: client gone before its delayed answer; "+what,
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", held.Code))
	}
}

// sendHeld sends an answer recorded to be held on w.
func sendHeld(w http.ResponseWriter, held *httptest.ResponseRecorder) {
	maps.Copy(w.Header(), held.Header())
	w.WriteHeader(held.Code)
	_, _ = w.Write(held.Body.Bytes())
}

func (s *Server) routes(path string) (map[string]route, string) {
	switch {
	case path == "/customers":
		return map[string]route{
			http.MethodGet:  {handle: s.listCustomers, faultable: true},
			http.MethodPost: {handle: s.postCustomer, faultable: true},
		}, "GET, POST"
	case path == "/invoices":
		return map[string]route{
			http.MethodGet:  {handle: s.listInvoices},
			http.MethodPost: {handle: s.postInvoice, faultable: true, scripted: true},
		}, "GET, POST"
	}
	if id, ok := member(path, "/customers/"); ok {
		return map[string]route{
			http.MethodGet: {handle: func(w http.ResponseWriter, r *http.Request) { s.getCustomer(w, id) }, faultable: true},
		}, "GET"
	}
	if id, ok := member(path, "/invoices/"); ok {
		return map[string]route{
			http.MethodGet: {handle: func(w http.ResponseWriter, r *http.Request) { s.getInvoice(w, id) }},
		}, "GET"
	}
	return nil, ""
}

// member returns the id of "/collection/{id}".
func member(path, prefix string) (string, bool) {
	id, ok := strings.CutPrefix(path, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.token)) == 1
}

// decideFault decides the fault of a faultable call (0 for none) and
// returns the faults it was decided with.
func (s *Server) decideFault(scripted bool) (int, Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	status, decided := 0, false
	if scripted && s.scriptPos < len(f.Script) {
		status, decided = f.Script[s.scriptPos], true
		s.scriptPos++
	}
	if !decided && (f.ErrorRate > 0 || f.RateLimitRate > 0) {
		switch x := s.rng.Float64(); {
		case x < f.ErrorRate:
			status = http.StatusServiceUnavailable
		case x < f.ErrorRate+f.RateLimitRate:
			status = http.StatusTooManyRequests
		}
	}
	if status < 400 || status > 599 {
		status = 0
	}
	if status != 0 {
		s.stats.Faults[status]++
	}
	return status, f
}

// writeFault answers an injected fault.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, status int, retryAfter time.Duration) {
	s.log.Info("sandbox: injected fault", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status))
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		// A 503 is refused before any processing, as a service down
		// for maintenance answers: with Retry-After, which tells a
		// client that nothing was carried out (a gateway's 503 without
		// it may have forwarded the request). Both take retry_after.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(retryAfter)))
	}
	writeError(w, status, "sandbox: injected fault: "+http.StatusText(status), "")
}

func retryAfterSeconds(d time.Duration) int {
	secs := int(math.Ceil(d.Seconds()))
	return max(secs, 1)
}

// lostResponse decides whether the answer of a POST that created something
// is "lost" (a replay's answer and a refusal get through).
func (s *Server) lostResponse() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rate := s.faults.LostResponseRate
	if rate <= 0 || s.rng.Float64() >= rate {
		return false
	}
	s.stats.Faults[http.StatusBadGateway]++
	return true
}

// post is the common path of the POST endpoints: checks, strict decoding
// into dst, idempotency, process, lost-response fault.
func (s *Server) post(w http.ResponseWriter, r *http.Request, scope string, dst any, process func(idemRef) reply) {
	if !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", "")
		return
	}
	raw, err := io.ReadAll(r.Body) // buffered by serveHTTP
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error(), "")
		return
	}
	key := strings.TrimSpace(r.Header.Get(idemHeader))
	switch {
	case key == "":
		writeError(w, http.StatusBadRequest, idemHeader+" header is required", "")
		return
	case len(key) > maxKeyLen:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s longer than %d bytes", idemHeader, maxKeyLen), "")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "")
		return
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid JSON body: data after the object", "")
		return
	}
	// Hash the decoded body re-encoded, so that a retry differing only in
	// whitespace or key order counts as the same request.
	canon, err := json.Marshal(dst)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), "")
		return
	}

	ref := idemRef{scope: scope, key: key, hash: sha256.Sum256(canon)}
	rp, replayed := s.idempotent(ref, func() reply { return process(ref) })
	if !replayed && rp.status >= 200 && rp.status <= 299 && s.lostResponse() {
		s.log.Info("sandbox: injected fault: response lost after processing", slog.String("path", r.URL.Path), slog.Int("status", rp.status))
		writeError(w, http.StatusBadGateway, "sandbox: injected fault: response lost after processing", "")
		return
	}
	if replayed {
		s.log.Info("sandbox: idempotent replay", slog.String("path", r.URL.Path), slog.String("key", key))
		w.Header().Set(replayedHeader, "true")
	}
	if rp.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(rp.retryAfter))
	}
	writeRaw(w, rp.status, rp.bytes())
}

// keyInProgress is the answer to a request whose idempotency key's first
// request is still in progress.
var keyInProgress = reply{
	status:     http.StatusConflict,
	body:       errorJSON("a request with this "+idemHeader+" is in progress; retry it later", ""),
	retryAfter: 1,
}

// idempotent runs process at most once per key and body; see the package
// documentation. A key in progress is answered 409 at once (keyInProgress).
func (s *Server) idempotent(ref idemRef, process func() reply) (rp reply, replayed bool) {
	k, hash := ref.id(), ref.hash
	s.mu.Lock()
	cur, ok := s.idem[k]
	switch {
	case ok && cur.hash != hash:
		s.mu.Unlock()
		return failed(http.StatusUnprocessableEntity, "Idempotency-Key reused with a different request body", ""), false
	case ok && cur.stored:
		s.stats.IdempotentReplays++
		rp := cur.reply
		s.mu.Unlock()
		return rp, true
	case ok:
		s.stats.KeysInProgress++
		s.mu.Unlock()
		return keyInProgress, false
	}
	e := &idemEntry{hash: hash}
	s.idem[k] = e
	s.mu.Unlock()

	ok = false
	defer func() {
		s.mu.Lock()
		if ok && rp.status >= 200 && rp.status <= 299 {
			e.stored, e.reply = true, rp
		} else {
			delete(s.idem, k) // released: a panic or a refusal
		}
		s.mu.Unlock()
	}()
	if s.beforeProcess != nil {
		s.beforeProcess()
	}
	rp = process()
	ok = true
	return rp, false
}

func (s *Server) postCustomer(w http.ResponseWriter, r *http.Request) {
	var b httptarget.CustomerBody
	s.post(w, r, "/customers", &b, func(ref idemRef) reply { return s.createCustomer(b, ref) })
}

func (s *Server) postInvoice(w http.ResponseWriter, r *http.Request) {
	var b httptarget.InvoiceBody
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	s.post(w, r, "/invoices", &b, func(ref idemRef) reply { return s.createInvoice(b, base, ref) })
}

func (s *Server) createCustomer(b httptarget.CustomerBody, ref idemRef) reply {
	if strings.TrimSpace(b.Name) == "" {
		return failed(http.StatusUnprocessableEntity, "name is required", "name")
	}
	s.mu.Lock()
	if held := s.custByExt[b.ExternalID]; b.ExternalID != "" && len(held) > 0 {
		existing := *held[0]
		s.mu.Unlock()
		return reply{status: http.StatusConflict, body: mustJSON(customerConflict{
			Error: httptarget.ErrorDetail{
				Message: fmt.Sprintf("customer %s already has external_id %q", existing.ID, b.ExternalID),
				Field:   "external_id",
			},
			Customer: existing,
		})}
	}
	c := &Customer{
		ID:           customerID(len(s.customers) + 1),
		CustomerBody: b,
		CreatedAt:    time.Now().UTC(),
	}
	if err := s.record(ref, c, nil); err != nil {
		s.mu.Unlock()
		return s.unrecorded(err)
	}
	s.addCustomer(c)
	s.stats.CustomersCreated++
	s.mu.Unlock()
	s.log.Info("sandbox: customer created", slog.String("id", c.ID), slog.String("external_id", c.ExternalID), slog.String("name", c.Name))
	return reply{status: http.StatusCreated, resource: c}
}

func (s *Server) createInvoice(b httptarget.InvoiceBody, base string, ref idemRef) reply {
	s.mu.Lock()
	if field, msg := s.validateInvoice(b); field != "" {
		s.mu.Unlock()
		return failed(http.StatusUnprocessableEntity, field+" "+msg, field)
	}
	n := len(s.invoices) + 1
	id := invoiceID(n)
	inv := &Invoice{
		ID:          id,
		Number:      fmt.Sprintf("SBX-%06d", n),
		URL:         base + "/invoices/" + id,
		InvoiceBody: b,
		CreatedAt:   time.Now().UTC(),
	}
	if err := s.record(ref, nil, inv); err != nil {
		s.mu.Unlock()
		return s.unrecorded(err)
	}
	s.addInvoice(inv)
	s.stats.InvoicesCreated++
	s.mu.Unlock()
	s.log.Info("sandbox: invoice created", slog.String("id", id), slog.String("number", inv.Number),
		slog.String("reference", inv.Reference), slog.String("total", inv.Total+" "+inv.Currency))
	return reply{status: http.StatusCreated, resource: inv}
}

// customerConflict is the answer to a POST /customers whose external_id
// a customer already has: the error and that customer.
type customerConflict struct {
	Error    httptarget.ErrorDetail `json:"error"`
	Customer Customer               `json:"customer"`
}

// customerID and invoiceID are the ids of the n-th customer and invoice.
func customerID(n int) string { return fmt.Sprintf("CUS-%04d", n) }
func invoiceID(n int) string  { return fmt.Sprintf("INV-%04d", n) }

// unrecorded answers a creation the journal could not record: nothing
// was created, and the key is released for a retry.
func (s *Server) unrecorded(err error) reply {
	s.log.Error("sandbox: cannot record a creation in the journal; nothing created", slog.Any("error", err))
	return failed(http.StatusInternalServerError, "sandbox: cannot record the creation: "+err.Error(), "")
}

// validateInvoice names the first offending field and what is wrong with
// it, or returns "". s.mu is held.
func (s *Server) validateInvoice(b httptarget.InvoiceBody) (field, msg string) {
	if strings.TrimSpace(b.CustomerID) == "" {
		return "customer_id", "is required"
	}
	if _, ok := s.custByID[b.CustomerID]; !ok {
		return "customer_id", fmt.Sprintf("names no customer (%q)", b.CustomerID)
	}
	cur, err := model.ParseCurrency(b.Currency)
	if err != nil {
		return "currency", fmt.Sprintf("is not an ISO 4217 currency code (%q)", b.Currency)
	}
	issue, err := time.Parse(dateLayout, b.IssueDate)
	if err != nil {
		return "issue_date", fmt.Sprintf("must be a date YYYY-MM-DD (%q)", b.IssueDate)
	}
	due, err := time.Parse(dateLayout, b.DueDate)
	if err != nil {
		return "due_date", fmt.Sprintf("must be a date YYYY-MM-DD (%q)", b.DueDate)
	}
	if due.Before(issue) {
		return "due_date", fmt.Sprintf("%s is before issue_date %s", b.DueDate, b.IssueDate)
	}
	if len(b.Lines) == 0 {
		return "lines", "must have at least one line"
	}
	minor := cur.MinorUnits()
	sum, taxSum := decimal.Zero, decimal.Zero
	for i, l := range b.Lines {
		f := fmt.Sprintf("lines[%d].", i)
		q, field, msg := number(f+"quantity", l.Quantity, true, -1)
		if field != "" {
			return field, msg
		}
		up, field, msg := number(f+"unit_price", l.UnitPrice, true, -1)
		if field != "" {
			return field, msg
		}
		disc, field, msg := number(f+"discount", l.Discount, false, -1)
		if field != "" {
			return field, msg
		}
		rate, field, msg := number(f+"tax_rate", l.TaxRate, false, -1)
		if field != "" {
			return field, msg
		}
		taxAmt, field, msg := number(f+"tax_amount", l.TaxAmount, false, minor)
		if field != "" {
			return field, msg
		}
		amt, field, msg := number(f+"amount", l.Amount, true, minor)
		if field != "" {
			return field, msg
		}
		if want := cur.Round(q.Mul(up).Sub(disc)); !amt.Equal(want) {
			return f + "amount", fmt.Sprintf("is %s but quantity × unit_price − discount is %s", l.Amount, cur.Format(want))
		}
		// As model.Invoice.ComputeTotals: the currency-rounded amount ×
		// rate / 100, half away from zero (Shift is exact, Div is not).
		if want := cur.Round(amt.Mul(rate).Shift(-2)); !taxAmt.Equal(want) {
			return f + "tax_amount", fmt.Sprintf("is %s but amount × tax_rate / 100 is %s", orNone(l.TaxAmount), cur.Format(want))
		}
		sum = sum.Add(amt)
		taxSum = taxSum.Add(taxAmt)
	}
	subtotal, field, msg := number("subtotal", b.Subtotal, true, minor)
	if field != "" {
		return field, msg
	}
	if !subtotal.Equal(sum) {
		return "subtotal", fmt.Sprintf("is %s but the line amounts add up to %s", b.Subtotal, cur.Format(sum))
	}
	tax, field, msg := number("tax_total", b.TaxTotal, true, minor)
	if field != "" {
		return field, msg
	}
	if !tax.Equal(taxSum) {
		return "tax_total", fmt.Sprintf("is %s but the lines' tax_amount add up to %s", b.TaxTotal, cur.Format(taxSum))
	}
	total, field, msg := number("total", b.Total, true, minor)
	if field != "" {
		return field, msg
	}
	if want := subtotal.Add(tax); !total.Equal(want) {
		return "total", fmt.Sprintf("is %s but subtotal + tax_total is %s", b.Total, cur.Format(want))
	}
	return "", ""
}

// orNone shows an optional value that may be empty.
func orNone(v string) string {
	if strings.TrimSpace(v) == "" {
		return "empty"
	}
	return v
}

// number parses a decimal string. An optional empty value is zero; places
// >= 0 refuses more significant decimal places than that.
func number(field, v string, required bool, places int32) (decimal.Decimal, string, string) {
	if strings.TrimSpace(v) == "" {
		if required {
			return decimal.Zero, field, "is required"
		}
		return decimal.Zero, "", ""
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return decimal.Zero, field, fmt.Sprintf("is not a decimal number (%q)", v)
	}
	if places >= 0 && !d.Equal(d.Round(places)) {
		return decimal.Zero, field, fmt.Sprintf("has more than %d decimal places (%q)", places, v)
	}
	return d, "", ""
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter, want := q.Has("external_id"), q.Get("external_id")
	s.mu.Lock()
	list := s.customers
	if filter {
		list = s.custByExt[want]
	}
	out := make([]Customer, 0, len(list))
	for _, c := range list {
		out = append(out, *c)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]Customer{"customers": out})
}

func (s *Server) getCustomer(w http.ResponseWriter, id string) {
	s.mu.Lock()
	c, ok := s.custByID[id]
	var out Customer
	if ok {
		out = *c
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no customer "+id, "")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	exact, want := q.Has("reference"), q.Get("reference")
	prefix := q.Get("reference_prefix")
	s.mu.Lock()
	out := []Invoice{} // [] rather than null when none match
	for _, inv := range s.invoices {
		if (!exact || inv.Reference == want) && strings.HasPrefix(inv.Reference, prefix) {
			out = append(out, copyInvoice(inv))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]Invoice{"invoices": out})
}

func (s *Server) getInvoice(w http.ResponseWriter, id string) {
	s.mu.Lock()
	inv, ok := s.invByID[id]
	var out Invoice
	if ok {
		out = copyInvoice(inv)
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no invoice "+id, "")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func errorJSON(msg, field string) []byte {
	return mustJSON(httptarget.ErrorBody{Error: httptarget.ErrorDetail{Message: msg, Field: field}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: encoding %T: %v", v, err))
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) { writeRaw(w, status, mustJSON(v)) }

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeRaw(w, status, errorJSON(msg, field))
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}
