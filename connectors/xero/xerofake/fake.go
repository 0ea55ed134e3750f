// Package xerofake is a local stand-in for Xero's Accounting API and its
// identity server, following Xero's documented behaviour closely enough to
// test the xero target against: bearer tokens and xero-tenant-id checked
// on every call; the refresh-token grant rotating the refresh token and
// invalidating the old one; Idempotency-Key replays; contact names unique
// regardless of case among active contacts, while where's == compares with
// case; searchTerm, a case-insensitive text search over names, contact
// numbers and e-mail addresses; paged lists (page, pageSize, pagination);
// an organisation with very many contacts (Server.HighVolume), which
// refuses where filters Xero has not optimised; archived contacts listed only
// with includeArchived=true, and merges (Server.Merge) as Xero's UI makes
// them; validation failures answered as Xero answers them
// for summarizeErrors (true: 400 ValidationException with the failed
// element; false, the default: 200 with the element flagged and an
// all-zero id); and injectable faults (429 with Retry-After and
// X-Rate-Limit-Problem, 5xx, validation failures, answers lost after the
// work was done, revoked access tokens).
package xerofake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
)

// Fault is an answer injected instead of (or after) the normal one.
type Fault struct {
	Status     int
	RetryAfter string // Retry-After header
	Problem    string // X-Rate-Limit-Problem header
	// AfterWork: the request is processed, then Status is answered (the
	// client sees a failure although the work was done).
	AfterWork bool
	// Validation: the request is not processed but fails Xero's
	// validation with this message, answered as Xero answers one (see
	// summarizeErrors). Status is ignored.
	Validation string
	// OAuthError is the error code (RFC 6749 5.2: invalid_request, …) a
	// fault of the token endpoint answers with its Status.
	OAuthError string
}

// Server is a fake Xero. Its zero value is not usable: call New.
type Server struct {
	*httptest.Server
	Tenant       string
	ClientID     string
	ClientSecret string
	// AfterContactsQuery, if set, runs after each GET /Contacts is
	// answered: a test makes a person act between dealsync's lookup and
	// its create.
	AfterContactsQuery func()
	// MixedAnswers makes a validation failure answer 200 with the element
	// flagged even when the request asks summarizeErrors=true, as Xero
	// answers when the parameter is false or absent: a client must not
	// take such an element for a saved object. Set it before the calls.
	MixedAnswers bool
	// HighVolume makes the organisation one with very many contacts, as
	// Xero treats it: GET /Contacts with a where filter on a field Xero
	// has not optimised for contacts (anything but ContactID, Name,
	// EmailAddress and AccountNumber: ContactNumber, TaxNumber, …) is
	// refused with 400 HighVolumeException. Set it before the calls.
	HighVolume bool
	// Unpaginated leaves the pagination object out of paged answers, so
	// that a client must tell the last page by its being short. Set it
	// before the calls.
	Unpaginated bool
	// ListsEveryStatus makes GET /Invoices ignore its Statuses parameter
	// and list voided and deleted invoices too: a client must not take
	// them for the deal's invoice. Set it before the calls.
	ListsEveryStatus bool
	// TaxRates are the percentages of the organisation's tax types, as
	// Xero applies them (see Invoice.Total); a line's TaxType not there is
	// not taxed. AccountTaxTypes are the default tax types of accounts: a
	// line without TaxType takes its account's, as Xero does. Set them
	// before the calls.
	TaxRates        map[string]decimal.Decimal
	AccountTaxTypes map[string]string

	mu            sync.Mutex
	refresh       string          // the one valid refresh token
	access        map[string]bool // valid access tokens
	seq           int
	Contacts      []Contact
	Invoices      []Invoice
	idem          map[string][]byte // Idempotency-Key → answer
	faults        map[string][]Fault
	Requests      []string // "METHOD /path" of every API call
	URLs          []string // "METHOD /path?query" of every API call
	Refreshes     int
	InvoicePuts   int
	LastInvoiceID string
}

// Contact and Invoice are what the fake stores. MergedToContactID is set
// on a contact merged into another (see Server.Merge).
type Contact struct {
	ContactID, ContactNumber, Name, TaxNumber, EmailAddress, ContactStatus, MergedToContactID string
	// FirstName and LastName are the contact person's, searched by
	// searchTerm.
	FirstName, LastName string
}

type Invoice struct {
	InvoiceID, InvoiceNumber, Reference, ContactID, Status string
	Body                                                   json.RawMessage
	// Total is what Xero computes, to 2 decimals in every currency, as
	// Xero does: each line's quantity × unit amount less its discount,
	// rounded, plus its tax at the rate Server.TaxRates gives its TaxType
	// (or its account's, Server.AccountTaxTypes; none without), rounded per
	// line; with LineAmountTypes Inclusive the amount includes that tax,
	// with NoTax there is none.
	Total decimal.Decimal
	// SubTotal is Total before tax.
	SubTotal decimal.Decimal
}

// New starts a fake Xero whose current refresh token is refreshToken.
func New(tenant, refreshToken string) *Server {
	s := &Server{Tenant: tenant, ClientID: "client-id", ClientSecret: "client-secret",
		refresh: refreshToken, access: map[string]bool{}, idem: map[string][]byte{}, faults: map[string][]Fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect/token", s.token)
	mux.HandleFunc("GET /Contacts", s.api(s.getContacts))
	mux.HandleFunc("GET /Contacts/{id}", s.api(s.getContact))
	mux.HandleFunc("PUT /Contacts", s.api(s.putContacts))
	mux.HandleFunc("POST /Contacts/{id}", s.api(s.postContact))
	mux.HandleFunc("GET /Invoices", s.api(s.getInvoices))
	mux.HandleFunc("PUT /Invoices", s.api(s.putInvoices))
	s.Server = httptest.NewServer(mux)
	return s
}

// TokenURL is the fake identity server's token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/connect/token" }

// RefreshToken is the currently valid refresh token.
func (s *Server) RefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

// RevokeAccessTokens makes every issued access token invalid (401).
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = map[string]bool{}
}

// Fail queues faults for "METHOD /path" (e.g. "PUT /Invoices"); those of
// "POST /connect/token" answer refresh requests instead of the grant.
func (s *Server) Fail(route string, fs ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], fs...)
}

// AddContact stores a contact as if made in Xero's UI.
func (s *Server) AddContact(c Contact) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ContactID == "" {
		c.ContactID = s.uuid()
	}
	if c.ContactStatus == "" {
		c.ContactStatus = "ACTIVE"
	}
	s.Contacts = append(s.Contacts, c)
	return c.ContactID
}

// Contact returns the stored contact with the id (zero when none).
func (s *Server) Contact(id string) Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.Contacts {
		if c.ContactID == id {
			return c
		}
	}
	return Contact{}
}

// Merge merges contact from into contact into, as a person does in Xero's
// UI: from is archived with MergedToContactID set, its invoices move to
// into, and into keeps its own name and ContactNumber (none when it had
// none).
func (s *Server) Merge(from, into string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Contacts {
		if s.Contacts[i].ContactID == from {
			s.Contacts[i].ContactStatus = "ARCHIVED"
			s.Contacts[i].MergedToContactID = into
		}
	}
	for i := range s.Invoices {
		if s.Invoices[i].ContactID == from {
			s.Invoices[i].ContactID = into
		}
	}
}

// Archive archives the contact, as a person does in Xero's UI.
func (s *Server) Archive(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Contacts {
		if s.Contacts[i].ContactID == id {
			s.Contacts[i].ContactStatus = "ARCHIVED"
		}
	}
}

// AddInvoice stores an ACCREC invoice as if made in Xero's UI (or by
// another app) and returns its InvoiceID: one is given when it has none,
// and an InvoiceNumber (INV-nnnn) likewise; Status defaults to AUTHORISED.
func (s *Server) AddInvoice(inv Invoice) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv.InvoiceID == "" {
		inv.InvoiceID = s.uuid()
	}
	if inv.InvoiceNumber == "" {
		inv.InvoiceNumber = fmt.Sprintf("INV-%04d", len(s.Invoices)+1)
	}
	if inv.Status == "" {
		inv.Status = "AUTHORISED"
	}
	s.Invoices = append(s.Invoices, inv)
	return inv.InvoiceID
}

// SetInvoiceStatus changes the status of the stored invoice with the id, as
// a person does in Xero's UI (VOIDED, DELETED, PAID, ...).
func (s *Server) SetInvoiceStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Invoices {
		if s.Invoices[i].InvoiceID == id {
			s.Invoices[i].Status = status
		}
	}
}

// Counts returns how many contacts and invoices exist.
func (s *Server) Counts() (contacts, invoices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Contacts), len(s.Invoices)
}

// Calls counts the API calls made to route so far.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.Requests {
		if r == route {
			n++
		}
	}
	return n
}

func (s *Server) uuid() string {
	s.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var fault *Fault
	if fs := s.faults["POST /connect/token"]; len(fs) > 0 {
		fault, s.faults["POST /connect/token"] = &fs[0], fs[1:]
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.OAuthError != "" {
			writeJSON(w, fault.Status, map[string]string{"error": fault.OAuthError})
		} else {
			s.writeFault(w, *fault)
		}
		return
	}
	id, secret, ok := r.BasicAuth()
	if err := r.ParseForm(); err != nil || !ok || id != s.ClientID || secret != s.ClientSecret {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != s.refresh {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	s.Refreshes++
	s.seq++
	// Rotation: the old refresh token is dead from now on.
	s.refresh = fmt.Sprintf("refresh-%d", s.seq)
	access := fmt.Sprintf("access-%d", s.seq)
	s.access[access] = true
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": 1800, "refresh_token": s.refresh,
		"scope": "accounting.invoices accounting.contacts offline_access",
	})
}

// api wraps a handler with Xero's auth and tenant checks and the faults.
func (s *Server) api(h func(r *http.Request) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		route := r.Method + " " + r.URL.Path
		s.mu.Lock()
		s.Requests = append(s.Requests, route)
		s.URLs = append(s.URLs, r.Method+" "+r.URL.RequestURI())
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		authorized := s.access[tok]
		var fault *Fault
		if fs := s.faults[route]; len(fs) > 0 {
			fault, s.faults[route] = &fs[0], fs[1:]
		}
		s.mu.Unlock()
		if !authorized {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"Type": nil, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"})
			return
		}
		if r.Header.Get("Xero-Tenant-Id") != s.Tenant {
			writeJSON(w, http.StatusForbidden, map[string]any{"Type": nil, "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful"})
			return
		}
		var status int
		var body any
		switch {
		case fault != nil && fault.Validation != "":
			status, body = s.refuseRoute(r, fault.Validation)
			fault = nil
		case fault != nil && !fault.AfterWork:
			s.writeFault(w, *fault)
			return
		default:
			status, body = h(r)
		}
		if fault != nil {
			s.writeFault(w, *fault)
			return
		}
		if raw, ok := body.([]byte); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(raw)
			return
		}
		writeJSON(w, status, body)
	}
}

func (s *Server) writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Problem != "" {
		w.Header().Set("X-Rate-Limit-Problem", f.Problem)
		w.Header().Set("X-MinLimit-Remaining", "0")
		w.Header().Set("X-DayLimit-Remaining", "4321")
	}
	w.WriteHeader(f.Status)
}

// clauseRe is one clause of the subset of Xero's where syntax the target
// uses, at the start of what is left of the where string. Xero's string
// literals have no escapes: a backslash is itself, and a double quote ends
// the literal (a value with one cannot be written).
var clauseRe = regexp.MustCompile(`^\s*(\w+)=="([^"]*)"\s*`)

// parseWhere reads Field=="value" clauses joined by AND; false when where
// does not parse (Xero: 400 QueryParseException). It reads clause by
// clause, so an AND inside a literal (Reference=="Smith AND Sons") is part
// of the value, as in Xero, not a join.
func parseWhere(where string) (clauses [][2]string, ok bool) {
	if strings.TrimSpace(where) == "" {
		return nil, true
	}
	for rest := where; ; {
		m := clauseRe.FindStringSubmatch(rest)
		if m == nil {
			return nil, false
		}
		clauses = append(clauses, [2]string{m[1], m[2]})
		if rest = rest[len(m[0]):]; rest == "" {
			return clauses, true
		}
		if rest, ok = strings.CutPrefix(rest, "AND "); !ok {
			return nil, false
		}
	}
}

// matches reports whether every clause holds; Xero's == compares strings
// with case (Name=="acme gmbh" does not find "ACME GmbH").
func matches(clauses [][2]string, field func(string) string) bool {
	for _, c := range clauses {
		if field(c[0]) != c[1] {
			return false
		}
	}
	return true
}

// searched reports whether term (Xero's searchTerm: a case-insensitive
// text search) is in one of fields; an empty term matches everything.
func searched(term string, fields ...string) bool {
	if term == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), strings.ToLower(term)) {
			return true
		}
	}
	return false
}

var queryParseError = map[string]any{"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}

// highVolumeError is Xero's refusal of a where filter it has not optimised
// on an organisation with very many contacts.
var highVolumeError = map[string]any{"ErrorNumber": 51, "Type": "HighVolumeException",
	"Message": "Your request is not filtering Contacts efficiently, given the extremely high volume for this organisation. " +
		"Please check https://developer.xero.com/documentation/api/efficient-data-retrieval for tips on making Contact retrieval more efficient."}

// optimisedContactFilters are the contact fields Xero filters efficiently
// whatever the organisation's size.
var optimisedContactFilters = map[string]bool{"ContactID": true, "Name": true, "EmailAddress": true, "AccountNumber": true}

// DefaultPageSize is the contacts of a page when the request gives no
// pageSize ("page=1 - Up to 100 contacts will be returned in a single API
// call").
const DefaultPageSize = 100

// paged cuts list to the page the request asks for (page, from 1; pageSize,
// DefaultPageSize by default), with Xero's pagination object unless
// Unpaginated; the whole list, unpaged, when the request gives no page.
func (s *Server) paged(q url.Values, key string, list []map[string]string) map[string]any {
	if q.Get("page") == "" {
		return map[string]any{key: list}
	}
	page, size := atoi(q.Get("page"), 1), atoi(q.Get("pageSize"), DefaultPageSize)
	count := (len(list) + size - 1) / size
	from, to := min((page-1)*size, len(list)), min(page*size, len(list))
	out := map[string]any{key: list[from:to]}
	if !s.Unpaginated {
		out["pagination"] = map[string]int{"page": page, "pageSize": size, "pageCount": count, "itemCount": len(list)}
	}
	return out
}

// atoi reads a positive integer parameter; otherwise for anything else.
func atoi(v string, otherwise int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return otherwise
	}
	return n
}

func (s *Server) getContacts(r *http.Request) (int, any) {
	if s.AfterContactsQuery != nil {
		defer s.AfterContactsQuery()
	}
	q := r.URL.Query()
	where, ok := parseWhere(q.Get("where"))
	if !ok {
		return http.StatusBadRequest, queryParseError
	}
	if s.HighVolume {
		for _, c := range where {
			if !optimisedContactFilters[c[0]] {
				return http.StatusBadRequest, highVolumeError
			}
		}
	}
	term := q.Get("searchTerm")
	archived := strings.EqualFold(q.Get("includeArchived"), "true") // Xero's default: false
	// "MergedToContactID ... Only returned when using paging or when
	// fetching a contact by ContactId or ContactNumber" (Xero's OpenAPI).
	paged := q.Get("page") != ""
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]string{}
	for _, c := range s.Contacts {
		if c.ContactStatus != "ACTIVE" && !(archived && c.ContactStatus == "ARCHIVED") {
			continue
		}
		f := map[string]string{"ContactID": c.ContactID, "ContactNumber": c.ContactNumber, "Name": c.Name, "TaxNumber": c.TaxNumber, "EmailAddress": c.EmailAddress}
		// searchTerm: "a case-insensitive text search across the Name,
		// FirstName, LastName, ContactNumber and EmailAddress fields".
		if matches(where, func(k string) string { return f[k] }) && searched(term, c.Name, c.FirstName, c.LastName, c.ContactNumber, c.EmailAddress) {
			ct := contactJSON(c)
			if !paged {
				delete(ct, "MergedToContactID")
			}
			out = append(out, ct)
		}
	}
	return http.StatusOK, s.paged(q, "Contacts", out)
}

// getContact answers GET /Contacts/{ContactID}, whatever the contact's
// status, with its MergedToContactID.
func (s *Server) getContact(r *http.Request) (int, any) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.Contacts {
		if c.ContactID == id {
			return http.StatusOK, map[string]any{"Contacts": []map[string]string{contactJSON(c)}}
		}
	}
	return http.StatusNotFound, map[string]any{"Title": "Not Found", "Status": 404, "Detail": "The resource you're looking for cannot be found"}
}

func contactJSON(c Contact) map[string]string {
	ct := map[string]string{"ContactID": c.ContactID, "ContactNumber": c.ContactNumber, "Name": c.Name,
		"TaxNumber": c.TaxNumber, "EmailAddress": c.EmailAddress, "ContactStatus": c.ContactStatus}
	if c.MergedToContactID != "" {
		ct["MergedToContactID"] = c.MergedToContactID
	}
	if c.FirstName != "" || c.LastName != "" {
		ct["FirstName"], ct["LastName"] = c.FirstName, c.LastName
	}
	return ct
}

func validationErrors(msgs []string) []map[string]string {
	ve := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		ve[i] = map[string]string{"Message": m}
	}
	return ve
}

// validation is a 400 ValidationException about the request as a whole
// (a body that cannot be read, a bad header), whatever summarizeErrors.
func validation(msgs ...string) (int, any) {
	return http.StatusBadRequest, map[string]any{"ErrorNumber": 10, "Type": "ValidationException",
		"Message": "A validation exception occurred", "Elements": []map[string]any{{"ValidationErrors": validationErrors(msgs)}}}
}

// ZeroID is the id Xero gives an element it did not save.
const ZeroID = "00000000-0000-0000-0000-000000000000"

// summarize reports whether the request asks summarizeErrors=true (Xero's
// default is false).
func summarize(r *http.Request) bool {
	return strings.EqualFold(r.URL.Query().Get("summarizeErrors"), "true")
}

// refuse answers a failed element of list ("Contacts" or "Invoices") as
// Xero does: with summarizeErrors=true (and not MixedAnswers), 400
// ValidationException whose Elements carry it; otherwise 200 with it in
// the list, flagged (HasValidationErrors on a contact, HasErrors on an
// invoice) and carrying ValidationErrors. The element's id is the caller's
// (the all-zero one for an object not created).
func (s *Server) refuse(r *http.Request, list string, el map[string]any, msgs ...string) (int, any) {
	flag := "HasValidationErrors"
	if list == "Invoices" {
		flag = "HasErrors"
	}
	el[flag] = true
	el["StatusAttributeString"] = "ERROR"
	el["ValidationErrors"] = validationErrors(msgs)
	if summarize(r) && !s.MixedAnswers {
		return http.StatusBadRequest, map[string]any{"ErrorNumber": 10, "Type": "ValidationException",
			"Message": "A validation exception occurred", "Elements": []map[string]any{el}}
	}
	return http.StatusOK, map[string]any{list: []map[string]any{el}}
}

// refuseRoute is an injected validation failure of the request's route.
func (s *Server) refuseRoute(r *http.Request, msg string) (int, any) {
	switch {
	case r.URL.Path == "/Invoices":
		return s.refuse(r, "Invoices", map[string]any{"InvoiceID": ZeroID, "Type": "ACCREC"}, msg)
	case r.URL.Path == "/Contacts":
		return s.refuse(r, "Contacts", map[string]any{"ContactID": ZeroID}, msg)
	case strings.HasPrefix(r.URL.Path, "/Contacts/"):
		return s.refuse(r, "Contacts", map[string]any{"ContactID": r.PathValue("id")}, msg)
	}
	return validation(msg)
}

// idempotent answers a repeated Idempotency-Key with the first answer.
func (s *Server) idempotent(r *http.Request, h func() (int, any)) (int, any) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 128 {
		return validation("Idempotency-Key must be 128 characters or fewer")
	}
	if key != "" {
		s.mu.Lock()
		prev, ok := s.idem[key]
		s.mu.Unlock()
		if ok {
			return http.StatusOK, prev
		}
	}
	status, body := h()
	if key != "" && status == http.StatusOK {
		b, _ := json.Marshal(body)
		s.mu.Lock()
		s.idem[key] = b
		s.mu.Unlock()
	}
	return status, body
}

func (s *Server) putContacts(r *http.Request) (int, any) {
	var in struct {
		Contacts []struct {
			Name, ContactNumber, TaxNumber, EmailAddress string
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Contacts) != 1 {
		return validation("The request body could not be read")
	}
	return s.idempotent(r, func() (int, any) {
		c := in.Contacts[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		failed := map[string]any{"ContactID": ZeroID, "Name": c.Name, "ContactNumber": c.ContactNumber,
			"TaxNumber": c.TaxNumber, "EmailAddress": c.EmailAddress}
		if strings.TrimSpace(c.Name) == "" {
			return s.refuse(r, "Contacts", failed, "The contact name must be specified.")
		}
		for _, e := range s.Contacts {
			if e.ContactStatus == "ACTIVE" && strings.EqualFold(e.Name, c.Name) {
				return s.refuse(r, "Contacts", failed, fmt.Sprintf("The contact name %s is already assigned to another contact. The contact name must be unique across all active contacts.", c.Name))
			}
		}
		nc := Contact{ContactID: s.uuid(), ContactNumber: c.ContactNumber, Name: c.Name, TaxNumber: c.TaxNumber,
			EmailAddress: c.EmailAddress, ContactStatus: "ACTIVE"}
		s.Contacts = append(s.Contacts, nc)
		return http.StatusOK, map[string]any{"Contacts": []map[string]string{contactJSON(nc)}}
	})
}

// postContact updates the fields of one contact the body names (only
// ContactNumber here); the others keep their values, as in Xero.
func (s *Server) postContact(r *http.Request) (int, any) {
	var in struct {
		Contacts []struct{ ContactID, ContactNumber string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Contacts) != 1 {
		return validation("The request body could not be read")
	}
	id := r.PathValue("id")
	if in.Contacts[0].ContactID != "" && in.Contacts[0].ContactID != id {
		return validation("The ContactID in the body does not match the one in the URL")
	}
	return s.idempotent(r, func() (int, any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, c := range s.Contacts {
			if c.ContactID == id {
				if n := in.Contacts[0].ContactNumber; n != "" {
					s.Contacts[i].ContactNumber = n
				}
				return http.StatusOK, map[string]any{"Contacts": []map[string]string{contactJSON(s.Contacts[i])}}
			}
		}
		return http.StatusNotFound, map[string]any{"Title": "Not Found", "Status": 404, "Detail": "The resource you're looking for cannot be found"}
	})
}

func (s *Server) getInvoices(r *http.Request) (int, any) {
	q := r.URL.Query()
	where, ok := parseWhere(q.Get("where"))
	if !ok {
		return http.StatusBadRequest, queryParseError
	}
	statuses := map[string]bool{}
	for _, st := range strings.Split(q.Get("Statuses"), ",") {
		if st != "" {
			statuses[st] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, inv := range s.Invoices {
		if len(statuses) > 0 && !statuses[inv.Status] && !s.ListsEveryStatus {
			continue
		}
		f := map[string]string{"Type": "ACCREC", "Reference": inv.Reference}
		if matches(where, func(k string) string { return f[k] }) && searched(q.Get("searchTerm"), inv.InvoiceNumber, inv.Reference) {
			out = append(out, s.invoiceJSON(inv))
		}
	}
	return http.StatusOK, map[string]any{"Invoices": out}
}

// invoiceJSON is an invoice as Xero answers it, its contact named by id
// and name. The caller holds s.mu.
func (s *Server) invoiceJSON(inv Invoice) map[string]any {
	contact := map[string]string{"ContactID": inv.ContactID}
	for _, c := range s.Contacts {
		if c.ContactID == inv.ContactID {
			contact["Name"] = c.Name
		}
	}
	return map[string]any{"InvoiceID": inv.InvoiceID, "InvoiceNumber": inv.InvoiceNumber, "Type": "ACCREC",
		"Reference": inv.Reference, "Status": inv.Status, "Contact": contact, "Total": json.Number(inv.Total.StringFixed(2)), "SubTotal": json.Number(inv.SubTotal.StringFixed(2))}
}

func (s *Server) putInvoices(r *http.Request) (int, any) {
	var in struct {
		Invoices []struct {
			Type            string
			Contact         struct{ ContactID string }
			Reference       string
			Status          string
			LineAmountTypes string
			LineItems       []struct {
				Description, ItemCode, AccountCode, TaxType string
				Quantity, UnitAmount, DiscountAmount        json.Number
			}
		}
	}
	raw := json.RawMessage{}
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || json.Unmarshal(raw, &in) != nil || len(in.Invoices) != 1 {
		return validation("The request body could not be read")
	}
	return s.idempotent(r, func() (int, any) {
		x := in.Invoices[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		s.InvoicePuts++
		var msgs []string
		status := ""
		for _, c := range s.Contacts {
			if c.ContactID == x.Contact.ContactID {
				status = c.ContactStatus
			}
		}
		switch status {
		case "ACTIVE":
		case "":
			// Not observed in Xero's answers: a made-up message.
			msgs = append(msgs, "The contact does not exist (xerofake).")
		default:
			// As Xero answers an archived contact, or one merged into
			// another (which archives it).
			msgs = append(msgs, "The contact with the specified contact details has been archived. The contact must be un-archived before creating new invoices or credit notes.")
		}
		if x.Type != "ACCREC" {
			msgs = append(msgs, "Invoice Type must be specified.")
		}
		for _, li := range x.LineItems {
			if li.AccountCode == "" && li.ItemCode == "" {
				msgs = append(msgs, "Account code must be specified.")
			}
			if li.AccountCode == "999" {
				msgs = append(msgs, "Account code '999' is not a valid code for this document.")
			}
		}
		if len(msgs) > 0 {
			return s.refuse(r, "Invoices", map[string]any{"InvoiceID": ZeroID, "Type": x.Type, "Reference": x.Reference,
				"Status": x.Status, "Contact": map[string]string{"ContactID": x.Contact.ContactID}}, msgs...)
		}
		total, subtotal := decimal.Zero, decimal.Zero
		for _, li := range x.LineItems {
			num := func(n json.Number) decimal.Decimal {
				d, err := decimal.NewFromString(n.String())
				if err != nil {
					return decimal.Zero
				}
				return d
			}
			qty := decimal.NewFromInt(1)
			if li.Quantity != "" {
				qty = num(li.Quantity)
			}
			amount := qty.Mul(num(li.UnitAmount)).Sub(num(li.DiscountAmount)).Round(2)
			taxType := li.TaxType
			if taxType == "" {
				taxType = s.AccountTaxTypes[li.AccountCode]
			}
			pct, taxedLine := s.TaxRates[taxType]
			switch {
			case x.LineAmountTypes == "NoTax" || !taxedLine:
				subtotal, total = subtotal.Add(amount), total.Add(amount)
			case x.LineAmountTypes == "Inclusive":
				// The amount includes its tax: SubTotal is net of it.
				tax := amount.Mul(pct).Div(pct.Add(decimal.NewFromInt(100))).Round(2)
				subtotal, total = subtotal.Add(amount.Sub(tax)), total.Add(amount)
			default:
				subtotal = subtotal.Add(amount)
				total = total.Add(amount.Add(amount.Mul(pct).Div(decimal.NewFromInt(100)).Round(2)))
			}
		}
		inv := Invoice{InvoiceID: s.uuid(), InvoiceNumber: fmt.Sprintf("INV-%04d", len(s.Invoices)+1),
			Reference: x.Reference, ContactID: x.Contact.ContactID, Status: x.Status, Body: raw, Total: total, SubTotal: subtotal}
		s.Invoices = append(s.Invoices, inv)
		s.LastInvoiceID = inv.InvoiceID
		return http.StatusOK, map[string]any{"Invoices": []any{s.invoiceJSON(inv)}}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
