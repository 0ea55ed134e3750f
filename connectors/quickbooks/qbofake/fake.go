// Package qbofake is a local stand-in for QuickBooks Online's Accounting
// API v3 and Intuit's token endpoint, following QBO's documented behaviour
// closely enough to test the quickbooks target against: bearer tokens; the
// refresh-token grant rotating the refresh token (the old one stops
// working); requestid replays of customer and invoice POSTs; the query
// endpoint (… where Field = '…'); unique DisplayNames; Fault bodies with
// the element named; and injectable faults (429/5xx before the work, or
// answers lost after it).
package qbofake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
)

// Fault is an answer injected instead of (or after) the normal one.
type Fault struct {
	Status     int
	RetryAfter string // Retry-After header
	// AfterWork: the request is processed, then Status is answered (the
	// client sees a failure although the work was done).
	AfterWork bool
	// OAuthError is the error code (RFC 6749 5.2: invalid_request, …) a
	// fault of the token endpoint answers with its Status.
	OAuthError string
	// InactiveName answers QBO's generic refusal of a reference to an
	// inactive name (an item, an account, a customer), Status ignored.
	InactiveName bool
	// AuthorizationFailed answers QBO's 403 AuthorizationFailed (code
	// 3100), Status ignored: what a sandbox company's realm gets at the
	// production host, or a token without the accounting scope.
	AuthorizationFailed bool
	// WrongCluster answers QBO's 401 Accessing Wrong Cluster (code 130),
	// Status ignored: what a production company's token got at a host it
	// is not on (routablehq/python-quickbooks#369; its answer was XML).
	WrongCluster bool
	// UserAccessLost answers QBO's 401 Authorization Failure (code 120),
	// Status ignored: the user who connected the app lost access to the
	// company, or the connection was revoked.
	UserAccessLost bool
}

// Server is a fake QBO company. Its zero value is not usable: call New.
type Server struct {
	*httptest.Server
	Realm        string
	ClientID     string
	ClientSecret string
	// AfterQuery, if set, runs after each query is answered: a test makes
	// another client act between dealsync's lookup and its create.
	AfterQuery func()
	// HomeCurrency and MultiCurrency are the company's currency
	// preferences (New: "USD", off). With multicurrency off, an invoice
	// whose CurrencyRef is not the home currency is refused.
	HomeCurrency  string
	MultiCurrency bool
	// TaxRates are the percentages of the company's tax codes, as QBO
	// applies them to an invoice's TotalAmt (see totalOf); a line's
	// TaxCodeRef not there is not taxed. Set it before the calls.
	TaxRates map[string]decimal.Decimal
	// Renumber, if set, gives the DocNumber an invoice created with doc
	// is stored and answered with (a company that numbers its invoices
	// itself, whatever the request says).
	Renumber func(doc string) string
	// NumbersItself: the company's custom transaction numbers are off
	// (SalesFormsPrefs.CustomTxnNumbers false); they are on by default.
	NumbersItself bool
	// GenericInactive: an invoice for a deleted customer is refused with
	// QBO's generic "Something you're trying to use has been made
	// inactive" (code 610), which QBO gives for any inactive name, instead
	// of the customer's own answer.
	GenericInactive bool
	// RefreshTokenExpiresIn is the x_refresh_token_expires_in of the token
	// answers, in seconds (0: 8726400, about 101 days, as Intuit answers
	// a grant younger than its five-year cap).
	RefreshTokenExpiresIn int

	mu        sync.Mutex
	refresh   string
	access    map[string]bool
	seq       int
	customers map[string]string             // Id → DisplayName
	deleted   map[string]string             // Id → DisplayName of customers deleted (DeleteCustomer)
	others    []string                      // names of vendors and employees (AddVendor)
	notes     map[string]string             // Id → Notes
	versions  map[string]int                // Id → SyncToken
	currency  map[string]string             // Id → the customer's one currency
	invoices  map[string]string             // Id → DocNumber
	billed    map[string][2]string          // Id → CustomerRef value, PrivateNote
	totals    map[string][2]decimal.Decimal // Id → TotalAmt, TxnTaxDetail.TotalTax
	bodies    [][]byte                      // invoice POST bodies processed
	requests  map[string][]byte             // requestid → answer
	faults    map[string][]Fault
	calls     []string
	posts     int
	refreshes int
}

// New starts a fake company realm whose current refresh token is refreshToken.
func New(realm, refreshToken string) *Server {
	s := &Server{Realm: realm, ClientID: "cid", ClientSecret: "csecret", refresh: refreshToken, HomeCurrency: "USD",
		access: map[string]bool{}, customers: map[string]string{}, deleted: map[string]string{}, notes: map[string]string{}, versions: map[string]int{}, currency: map[string]string{}, invoices: map[string]string{}, billed: map[string][2]string{}, totals: map[string][2]decimal.Decimal{},
		requests: map[string][]byte{}, faults: map[string][]Fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v1/tokens/bearer", s.token)
	mux.HandleFunc("/v3/company/"+realm+"/", s.api)
	mux.HandleFunc("/v3/company/", s.otherCompany)
	s.Server = httptest.NewServer(mux)
	return s
}

// TokenURL is the fake token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/oauth2/v1/tokens/bearer" }

// Fail queues faults for a route: "GET /query", "POST /customer" or
// "POST /invoice"; those of "POST /oauth2/v1/tokens/bearer" answer
// refresh requests instead of the grant.
func (s *Server) Fail(route string, fs ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], fs...)
}

// RevokeAccessTokens makes every issued access token invalid (401).
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = map[string]bool{}
}

// RevokeRefreshToken makes the current refresh token invalid too
// (invalid_grant): the connection must be authorized again.
func (s *Server) RevokeRefreshToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = "revoked-" + s.refresh
}

// CustomerCurrency is the one currency of customer id.
func (s *Server) CustomerCurrency(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.currency[id]
}

// AddCustomer creates a customer, as another client would, and returns
// its Id.
func (s *Server) AddCustomer(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprint(s.seq)
	s.customers[id] = name
	s.currency[id] = s.HomeCurrency
	return id
}

// AddVendor adds a vendor (or an employee) of that name: QBO's display
// names are unique across customers, vendors and employees, and customer
// queries do not list it.
func (s *Server) AddVendor(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.others = append(s.others, name)
}

// RenameCustomer changes a customer's DisplayName, as a person would in QBO.
func (s *Server) RenameCustomer(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[id] = name
	s.versions[id]++
}

// DeleteCustomer deletes a customer as a person does in QBO (or as a merge
// into another does): it is made inactive, named "<name> (deleted)", and
// no longer found by queries; an invoice for it is refused (with
// GenericInactive set, with QBO's generic "made inactive" answer); a read
// by Id answers it with Active false.
func (s *Server) DeleteCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted[id] = s.customers[id] + " (deleted)"
	delete(s.customers, id)
	s.versions[id]++
}

// SetNotes changes a customer's Notes, as a person would in QBO.
func (s *Server) SetNotes(id, notes string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notes[id] = notes
	s.versions[id]++
}

// Notes are a customer's Notes.
func (s *Server) Notes(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notes[id]
}

// Counts returns how many customers and invoices exist.
func (s *Server) Counts() (customers, invoices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.customers), len(s.invoices)
}

// InvoicePosts counts the invoice POSTs QBO processed (requestid replays
// and faults answered before the work do not count).
func (s *Server) InvoicePosts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// InvoiceBodies returns the bodies of the processed invoice POSTs.
func (s *Server) InvoiceBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.bodies...)
}

// AddInvoice stores an invoice made outside dealsync (QBO numbers its own
// 1001, 1002, …) and returns its Id.
func (s *Server) AddInvoice(docNumber, customerID, privateNote string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprint(s.seq)
	s.invoices[id] = docNumber
	s.billed[id] = [2]string{customerID, privateNote}
	return id
}

// SetPrivateNote changes an invoice's PrivateNote, as a person would in QBO.
func (s *Server) SetPrivateNote(id, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.billed[id]
	b[1] = note
	s.billed[id] = b
}

// Void voids an invoice as QBO does: its amounts are zeroed and note
// (what QBO writes in its PrivateNote: "Voided", or "Voided" before the
// note it had) replaces its PrivateNote. It keeps its number.
func (s *Server) Void(id, note string) {
	s.SetPrivateNote(id, note)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals[id] = [2]decimal.Decimal{}
}

// PrivateNote is an invoice's PrivateNote.
func (s *Server) PrivateNote(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billed[id][1]
}

// Invoices returns Id → DocNumber of the stored invoices.
func (s *Server) Invoices() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.invoices))
	for k, v := range s.invoices {
		out[k] = v
	}
	return out
}

// Calls counts the API calls made to route so far, faulted ones included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == route {
			n++
		}
	}
	return n
}

// Refreshes counts the successful refresh-token grants.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	if fs := s.faults["POST /oauth2/v1/tokens/bearer"]; len(fs) > 0 {
		f := fs[0]
		s.faults["POST /oauth2/v1/tokens/bearer"] = fs[1:]
		if f.OAuthError != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": f.OAuthError})
			return
		}
		writeFault(w, f)
		return
	}
	if id, sec, ok := r.BasicAuth(); !ok || id != s.ClientID || sec != s.ClientSecret || r.PostForm.Get("refresh_token") != s.refresh {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	s.seq++
	s.refreshes++
	s.refresh = fmt.Sprintf("rt-%d", s.seq)
	at := fmt.Sprintf("at-%d", s.seq)
	s.access[at] = true
	w.Header().Set("Content-Type", "application/json")
	expiresIn := s.RefreshTokenExpiresIn
	if expiresIn == 0 {
		expiresIn = 8726400
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": s.refresh, "token_type": "bearer",
		"expires_in": 3600, "x_refresh_token_expires_in": expiresIn})
}

func fault(w http.ResponseWriter, status int, typ, msg, detail, element string) {
	faultCode(w, status, typ, msg, detail, element, "6000")
}

// faultCode is a fault with QBO's error code (6240: duplicate name).
func faultCode(w http.ResponseWriter, status int, typ, msg, detail, element, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"Fault": map[string]any{"Error": []any{map[string]string{
		"Message": msg, "Detail": detail, "code": code, "element": element}}, "type": typ}, "time": "2026-11-27T04:00:00.000-08:00"})
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.AuthorizationFailed {
		faultCode(w, http.StatusForbidden, "SERVICE", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", "", "", "3100")
		return
	}
	if f.WrongCluster {
		faultCode(w, http.StatusUnauthorized, "AuthenticationFault", "Accessing Wrong Cluster",
			"WrongClusterError: -11017-You have accessed the wrong server.  You will now be redirected. , statusCode: 401", "", "130")
		return
	}
	if f.UserAccessLost {
		faultCode(w, http.StatusUnauthorized, "AuthorizationFault", "Authorization Failure",
			"AuthorizationFailure: Unknown Error during Authentication, statusCode: 401", "", "120")
		return
	}
	if f.InactiveName {
		faultCode(w, 400, "ValidationFault", "Object Not Found", "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.", "", "610")
		return
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Status == http.StatusTooManyRequests {
		fault(w, f.Status, "SERVICE", "Throttle exceeded", "message=ThrottleExceeded; errorCode=003001; statusCode=429", "")
		return
	}
	w.WriteHeader(f.Status)
}

var whereEq = regexp.MustCompile(`where (\w+) = '((?:[^'\\]|\\.)*)'$`)

// unquote reads a string literal of QBO's query language (as dealsync's
// quote writes it: a test cannot tell this from Intuit's own escaping).
func unquote(lit string) string { return strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(lit) }

// whereEqPaged is an equality query, a page of it in the order of the
// Ids (invoices by DocNumber).
var whereEqPaged = regexp.MustCompile(`where (\w+) = '((?:[^'\\]|\\.)*)' ORDERBY Id STARTPOSITION (\d+) MAXRESULTS (\d+)$`)

// DefaultMaxResults is how many rows QBO answers a query without
// MAXRESULTS (invoices here; the fake answers customers in full).
const DefaultMaxResults = 100

// byID orders Ids as QBO's ORDERBY Id does: as numbers.
func byID(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// whereLike is a LIKE query of customers, a page of them in the order of
// their Ids (a query without an order may page them in any).
var whereLike = regexp.MustCompile(`where (\w+) LIKE '((?:[^'\\]|\\.)*)' ORDERBY Id STARTPOSITION (\d+) MAXRESULTS (\d+)$`)

// otherCompany answers a call for another realm than the company's: QBO
// refuses a token for a company its authorization did not connect with
// 401 General Authentication Error (code 100), as Intuit's engineers
// reproduced it (intuit/oauth-jsclient#91; their answer was XML, this is
// its JSON); a token not valid at all gets the 401 of api.
func (s *Server) otherCompany(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	ok := s.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	if !ok {
		_, _ = w.Write([]byte(`{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}`))
		return
	}
	_, _ = w.Write([]byte(`{"Fault":{"Error":[{"Message":"General Authentication Error","Detail":"AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401","code":"100"}],"type":"AuthenticationFault"}}`))
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v3/company/"+s.Realm)
	route := r.Method + " " + path
	s.mu.Lock()
	s.calls = append(s.calls, route)
	ok := s.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	var f *Fault
	if fs := s.faults[route]; len(fs) > 0 {
		f, s.faults[route] = &fs[0], fs[1:]
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired","code":"3200"}],"type":"AUTHENTICATION"}}`))
		return
	}
	if f != nil && !f.AfterWork {
		writeFault(w, *f)
		return
	}
	if r.URL.Query().Get("minorversion") == "" {
		fault(w, 400, "ValidationFault", "minorversion missing", "", "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && path == "/query":
		s.query(w, r)
	case r.Method == "GET" && strings.HasPrefix(path, "/customer/"):
		// Read by Id: QBO answers an inactive (deleted) customer too,
		// with Active false.
		id := strings.TrimPrefix(path, "/customer/")
		s.mu.Lock()
		name, active := s.customers[id]
		if !active {
			name = s.deleted[id]
		}
		s.mu.Unlock()
		if name == "" {
			faultCode(w, 400, "ValidationFault", "Object Not Found", "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.", "", "610")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Customer": map[string]any{"Id": id, "DisplayName": name, "Active": active}})
	case r.Method == "GET" && path == "/preferences":
		s.mu.Lock()
		prefs := map[string]any{"CurrencyPrefs": map[string]any{"MultiCurrencyEnabled": s.MultiCurrency, "HomeCurrency": map[string]string{"value": s.HomeCurrency}},
			"SalesFormsPrefs": map[string]any{"CustomTxnNumbers": !s.NumbersItself}}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"Preferences": prefs, "time": "2026-11-20T10:00:00.000-08:00"})
	case r.Method == "POST" && (path == "/customer" || path == "/invoice"):
		answer, ok := s.create(w, r, path)
		if !ok {
			return
		}
		if f != nil {
			writeFault(w, *f)
			return
		}
		_, _ = w.Write(answer)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	if s.AfterQuery != nil {
		defer s.AfterQuery()
	}
	q := r.URL.Query().Get("query")
	// QBO's query parser reads Latin-1 only (its lexer's error for
	// anything past it, as QBO words it).
	for i, c := range q {
		if c > 0xFF {
			faultCode(w, 400, "ValidationFault", "Error parsing query", fmt.Sprintf("QueryParserError: Invalid content. Lexical error at line 1, column %d.  Encountered: \"\\u%04x\" (%d), after : \"\"", i+1, c, c), "", "4000")
			return
		}
	}
	m := whereEq.FindStringSubmatch(q)
	like := whereLike.FindStringSubmatch(q)
	paged := whereEqPaged.FindStringSubmatch(q)
	if m == nil && like == nil && paged == nil {
		fault(w, 400, "ValidationFault", "QueryParserError", "bad query", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := map[string]any{}
	if strings.Contains(q, "from Customer") {
		if m == nil && like == nil {
			fault(w, 400, "ValidationFault", "QueryParserError", "this fake pages customers by LIKE only", "")
			return
		}
		match := func(n string) bool { return strings.EqualFold(n, unquote(m[2])) }
		first, size := 1, 1000
		if like != nil {
			pattern := regexp.QuoteMeta(strings.ToLower(unquote(like[2])))
			re := regexp.MustCompile("^" + strings.ReplaceAll(pattern, "%", ".*") + "$")
			match = func(n string) bool { return re.MatchString(strings.ToLower(n)) }
			first, _ = strconv.Atoi(like[3])
			size, _ = strconv.Atoi(like[4])
		}
		ids := slices.Sorted(maps.Keys(s.customers))
		var out []map[string]string
		for _, id := range ids {
			if n := s.customers[id]; match(n) {
				out = append(out, map[string]string{"Id": id, "SyncToken": fmt.Sprint(s.versions[id]), "DisplayName": n, "Notes": s.notes[id]})
			}
		}
		out = out[min(first-1, len(out)):min(first-1+size, len(out))]
		if len(out) > 0 {
			resp["Customer"] = out
		}
	} else if m == nil && paged == nil {
		fault(w, 400, "ValidationFault", "QueryParserError", "bad query", "")
		return
	} else {
		// In the order of the Ids (QBO promises none without ORDERBY:
		// this is one it may give), DefaultMaxResults rows at most without
		// MAXRESULTS, as QBO answers.
		ids := slices.SortedFunc(maps.Keys(s.invoices), byID)
		first, size := 1, DefaultMaxResults
		if paged != nil {
			m = paged
			first, _ = strconv.Atoi(paged[3])
			size, _ = strconv.Atoi(paged[4])
		}
		val := unquote(m[2])
		var out []map[string]any
		for _, id := range ids {
			if n := s.invoices[id]; n == val {
				b := s.billed[id]
				tt := s.totals[id]
				out = append(out, map[string]any{"Id": id, "DocNumber": n, "CustomerRef": map[string]string{"value": b[0]}, "PrivateNote": b[1],
					"TotalAmt": json.Number(tt[0].StringFixed(2)), "TxnTaxDetail": map[string]any{"TotalTax": json.Number(tt[1].StringFixed(2))}})
			}
		}
		out = out[min(max(first-1, 0), len(out)):min(max(first-1, 0)+size, len(out))]
		if len(out) > 0 {
			resp["Invoice"] = out
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"QueryResponse": resp})
}

// currencyOf is the currency of a customer or invoice body: its
// CurrencyRef, else the home currency. Another currency than the home one
// without multicurrency is refused (ok false: the fault is answered).
func (s *Server) currencyOf(w http.ResponseWriter, body map[string]any) (cur string, ok bool) {
	cur = s.HomeCurrency
	if ref, _ := body["CurrencyRef"].(map[string]any); ref != nil {
		cur = fmt.Sprint(ref["value"])
	}
	if cur != s.HomeCurrency && !s.MultiCurrency {
		fault(w, 400, "ValidationFault", "Invalid currency", "Multicurrency is not enabled for this company.", "CurrencyRef")
		return "", false
	}
	return cur, true
}

// update applies a sparse customer update (only Notes here), refusing a
// stale SyncToken as QBO does (error 5010). s.mu is held.
func (s *Server) update(w http.ResponseWriter, id string, body map[string]any, rid string) ([]byte, bool) {
	name, ok := s.customers[id]
	if !ok {
		fault(w, 400, "ValidationFault", "Object Not Found", "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.", "")
		return nil, false
	}
	if sparse, _ := body["sparse"].(bool); !sparse {
		fault(w, 400, "ValidationFault", "Required param missing", "this fake only does sparse updates", "sparse")
		return nil, false
	}
	if tok, _ := body["SyncToken"].(string); tok != fmt.Sprint(s.versions[id]) {
		faultCode(w, 400, "ValidationFault", "Stale Object Error", "Stale Object Error : You and another user were working on the same thing. Please open the latest version and make your changes again.", "", "5010")
		return nil, false
	}
	if notes, ok := body["Notes"].(string); ok {
		s.notes[id] = notes
	}
	s.versions[id]++
	answer, _ := json.Marshal(map[string]any{"Customer": map[string]string{"Id": id, "SyncToken": fmt.Sprint(s.versions[id]), "DisplayName": name, "Notes": s.notes[id]}})
	if rid != "" {
		s.requests[rid] = answer
	}
	return answer, true
}

// totalOf is the TotalAmt QBO computes for an invoice body, and its tax:
// the item lines' amounts less the discount line, plus the tax of each tax
// code at the rate TaxRates gives it (none without), on the sum of its
// lines' amounts less their share of the discount (QBO spreads one
// discount over the lines in proportion to their amounts), rounded per
// code, as QBO's TxnTaxDetail reports it per rate.
func (s *Server) totalOf(raw json.RawMessage) (total, tax decimal.Decimal) {
	var inv struct {
		Line []struct {
			DetailType          string
			Amount              json.Number
			SalesItemLineDetail *struct {
				TaxCodeRef *struct {
					Value string `json:"value"`
				}
			}
		}
	}
	if json.Unmarshal(raw, &inv) != nil {
		return decimal.Zero, decimal.Zero
	}
	num := func(n json.Number) decimal.Decimal {
		d, err := decimal.NewFromString(n.String())
		if err != nil {
			return decimal.Zero
		}
		return d
	}
	var gross, discount decimal.Decimal
	for _, l := range inv.Line {
		switch l.DetailType {
		case "SalesItemLineDetail":
			gross = gross.Add(num(l.Amount))
		case "DiscountLineDetail":
			discount = discount.Add(num(l.Amount))
		}
	}
	taxable := map[string]decimal.Decimal{} // by tax code
	var codes []string
	for _, l := range inv.Line {
		if l.DetailType != "SalesItemLineDetail" || l.SalesItemLineDetail == nil || l.SalesItemLineDetail.TaxCodeRef == nil || gross.IsZero() {
			continue
		}
		code := l.SalesItemLineDetail.TaxCodeRef.Value
		if _, ok := s.TaxRates[code]; !ok {
			continue
		}
		if _, seen := taxable[code]; !seen {
			codes = append(codes, code)
		}
		amount := num(l.Amount)
		taxable[code] = taxable[code].Add(amount.Sub(discount.Mul(amount).Div(gross)))
	}
	for _, code := range codes {
		tax = tax.Add(taxable[code].Mul(s.TaxRates[code]).Div(decimal.NewFromInt(100)).Round(2))
	}
	return gross.Sub(discount).Add(tax), tax
}

// create processes a POST; ok is false when it already answered (a fault).
func (s *Server) create(w http.ResponseWriter, r *http.Request, path string) ([]byte, bool) {
	rid := r.URL.Query().Get("requestid")
	raw := json.RawMessage{}
	_ = json.NewDecoder(r.Body).Decode(&raw)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.requests[rid]; ok && rid != "" {
		return prev, true
	}
	if id, _ := body["Id"].(string); path == "/customer" && id != "" {
		return s.update(w, id, body, rid)
	}
	s.seq++
	id := fmt.Sprint(s.seq)
	var answer []byte
	if path == "/customer" {
		name, _ := body["DisplayName"].(string)
		for _, n := range append(slices.Collect(maps.Values(s.customers)), s.others...) {
			if strings.EqualFold(n, name) {
				faultCode(w, 400, "ValidationFault", "Duplicate Name Exists Error", "The name supplied already exists. : Another customer, vendor or employee is already using this name.", "", "6240")
				return nil, false
			}
		}
		cur, ok := s.currencyOf(w, body)
		if !ok {
			return nil, false
		}
		s.customers[id] = name
		s.currency[id] = cur
		s.notes[id], _ = body["Notes"].(string)
		answer, _ = json.Marshal(map[string]any{"Customer": map[string]string{"Id": id, "DisplayName": name}})
	} else {
		s.posts++
		cref, _ := body["CustomerRef"].(map[string]any)
		ref := fmt.Sprint(cref["value"])
		if name, ok := s.deleted[ref]; ok && s.GenericInactive {
			faultCode(w, 400, "ValidationFault", "Object Not Found", "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.", "", "610")
			return nil, false
		} else if ok {
			// As QBO answers a customer made inactive (deleted).
			faultCode(w, 400, "ValidationFault", "Invalid Reference Id", "Invalid Reference Id : Customer assigned to this transaction has been deleted. Before you can modify this transaction, you must restore "+name+".", "", "2500")
			return nil, false
		}
		if _, ok := s.customers[ref]; !ok {
			faultCode(w, 400, "ValidationFault", "Invalid Reference Id", "Invalid Reference Id : Names element id "+ref+" not found", "", "2500")
			return nil, false
		}
		invCur, ok := s.currencyOf(w, body)
		if !ok {
			return nil, false
		}
		if c := s.currency[fmt.Sprint(cref["value"])]; c != "" && c != invCur {
			fault(w, 400, "ValidationFault", "Business Validation Error",
				"The currency of the transaction must match the currency of the customer ("+c+").", "CurrencyRef")
			return nil, false
		}
		doc, _ := body["DocNumber"].(string)
		if doc != "" && !strings.Contains(r.URL.Query().Get("include"), "allowduplicatedocnum") {
			// QBO refuses an invoice numbered as another one is (with
			// custom transaction numbers, which dealsync needs).
			for other, n := range s.invoices {
				if n == doc {
					faultCode(w, 400, "ValidationFault", "Duplicate Document Number Error",
						"Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber="+doc+" is assigned to TxnType=Invoice with TxnId="+other, "", "6140")
					return nil, false
				}
			}
		}
		note, _ := body["PrivateNote"].(string)
		total, tax := s.totalOf(raw)
		if s.Renumber != nil {
			doc = s.Renumber(doc)
		}
		s.invoices[id] = doc
		s.billed[id] = [2]string{fmt.Sprint(cref["value"]), note}
		s.totals[id] = [2]decimal.Decimal{total, tax}
		s.bodies = append(s.bodies, raw)
		answer, _ = json.Marshal(map[string]any{"Invoice": map[string]any{"Id": id, "DocNumber": doc,
			"CustomerRef": map[string]string{"value": fmt.Sprint(cref["value"])}, "PrivateNote": note,
			"TotalAmt": json.Number(total.StringFixed(2)), "TxnTaxDetail": map[string]any{"TotalTax": json.Number(tax.StringFixed(2))}}})
	}
	if rid != "" {
		s.requests[rid] = answer
	}
	return answer, true
}
