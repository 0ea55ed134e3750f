// Package netsuitefake is a local stand-in for NetSuite's REST web
// services, following NetSuite's documented behaviour closely enough to
// test the netsuite target against:
//
//   - the OAuth 2.0 client credentials token endpoint, which verifies the
//     JWT client assertion (typ, alg among PS256…ES512, kid = the mapped
//     certificate id, iss = the client id, aud = the token endpoint, scope,
//     exp less than 60 minutes after iat, the signature with the
//     certificate's public key) and issues 60-minute bearer tokens
//     (expires_in is a string, as NetSuite sends it); an assertion refused
//     for its iat or exp (a client clock ahead or behind) is answered 400
//     invalid_request, the other refusals 400 invalid_grant;
//   - GET and PUT (upsert) of customer and invoice records by internal id
//     or eid:{externalId}; an upsert answers 204 No Content with the
//     record's URL in Location, creating the record or updating the one
//     with that external id (item lines of an update are appended, as
//     NetSuite does for sublists without a key, unless the replace query
//     parameter names the item sublist: then they replace the lines the
//     invoice had);
//   - a customer's email validated (one address, a dot in its domain);
//   - SuiteQL (POST /services/rest/query/v1/suiteql, Prefer: transient)
//     for the query shapes the target sends, refusing a column the
//     account does not have (HideColumns), answered a page at a time
//     (limit, offset, hasMore, totalResults, as Collection Paging says);
//     stricter than NetSuite, it refuses a page after the first of a
//     customer query without ORDER BY id, whose pages SuiteQL does not
//     keep in one order;
//   - errors as NetSuite writes them: type, title, status and
//     o:errorDetails with detail, o:errorCode and o:errorPath;
//   - injectable faults: 429 with Retry-After, 5xx, answers lost after the
//     work was done, expired access tokens, a revoked certificate; and a
//     hook that lets a test act between a record's read and its answer.
//
// NetSuite publishes no machine-readable schema this fake could be checked
// against; it follows the prose documentation.
package netsuitefake

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Paths of NetSuite's REST web services.
const (
	TokenPath   = "/services/rest/auth/oauth2/v1/token"
	RecordPath  = "/services/rest/record/v1/"
	SuiteQLPath = "/services/rest/query/v1/suiteql"
)

// Fault is an answer injected instead of (or after) the normal one.
type Fault struct {
	Status     int
	RetryAfter string // Retry-After header
	// AfterWork: the request is processed, then Status is answered (the
	// client sees a failure although the work was done).
	AfterWork bool
}

// Customer is a stored customer record.
type Customer struct {
	ID, ExternalID, CompanyName, Email, TaxNumber, Subsidiary string
	// Currency is the customer's currency's internal id ("" = the
	// account's base currency).
	Currency string
	Inactive bool
}

// Invoice is a stored invoice record.
type Invoice struct {
	ID, ExternalID, TranID, Entity, OtherRefNum string
	// Currency is the internal id of the currency the invoice is booked
	// in: the one sent, else the customer's.
	Currency string
	// Lines is the number of item lines. An upsert that updates the
	// invoice appends its lines (NetSuite appends unkeyed sublist lines),
	// unless its replace query parameter names the item sublist: then its
	// lines are the invoice's.
	Lines int
	// Total is what the account computes: each line's quantity × rate
	// rounded to cents, plus its tax at the rate Server.TaxRates gives its
	// taxCode (none without), rounded per line.
	Total decimal.Decimal
	// Subtotal is Total before tax.
	Subtotal decimal.Decimal
	// Body is the body of the upsert that created it.
	Body json.RawMessage
}

// Server is a fake NetSuite account. Its zero value is not usable: call New.
type Server struct {
	*httptest.Server
	AccountID     string
	ClientID      string
	CertificateID string
	PublicKey     crypto.PublicKey
	// Items, when set, are the item internal ids invoices may use.
	Items map[string]bool
	// TaxRates, when set, are the percentages of tax code internal ids,
	// as the account's tax engine applies them (see Invoice.Total); a
	// line's taxCode not there is not taxed.
	TaxRates map[string]decimal.Decimal

	mu             sync.Mutex
	seq            int
	access         map[string]time.Time // access token → expiry
	revoked        bool
	refuseLogins   bool
	currencies     map[string]string // see SetCurrencies
	baseCurrency   string
	customers      []*Customer
	invoices       []*Invoice
	faults         map[string][]Fault
	requests       []string
	tokenRequests  int
	invoiceUpserts int
	afterGet       func(recordType string)
	hidden         map[string]bool // see HideColumns
}

// New starts a fake account whose client credentials mapping has the
// given client id, certificate id and certificate public key.
func New(accountID, clientID, certificateID string, publicKey crypto.PublicKey) *Server {
	s := &Server{AccountID: accountID, ClientID: clientID, CertificateID: certificateID, PublicKey: publicKey,
		access: map[string]time.Time{}, faults: map[string][]Fault{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, s.token)
	mux.HandleFunc("GET "+RecordPath+"{type}/{ref}", s.api("GET", s.getRecord))
	mux.HandleFunc("PUT "+RecordPath+"{type}/{ref}", s.api("PUT", s.putRecord))
	mux.HandleFunc("PATCH "+RecordPath+"{type}/{ref}", s.api("PATCH", s.patchRecord))
	mux.HandleFunc("POST "+SuiteQLPath, s.api("POST", s.suiteQL))
	s.Server = httptest.NewServer(mux)
	return s
}

// TokenURL is the fake's token endpoint (the assertion's aud).
func (s *Server) TokenURL() string { return s.URL + TokenPath }

// Fail queues faults for a route: "POST token", "POST suiteql", or
// "GET|PUT customer|invoice".
func (s *Server) Fail(route string, fs ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], fs...)
}

// ExpireAccessTokens makes every issued access token expired (401).
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.access {
		s.access[k] = time.Unix(0, 0)
	}
}

// RevokeCertificate revokes the certificate mapping: the token endpoint
// refuses every assertion from now on.
func (s *Server) RevokeCertificate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// RefuseLogins makes the API answer 401 INVALID_LOGIN to every token,
// new ones included (the role lost its permissions, say).
func (s *Server) RefuseLogins() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseLogins = true
}

// HideColumns makes SuiteQL refuse queries naming these customer columns
// ("Field '…' for record 'customer' was not found"), as an account that
// does not have them does: vatregnumber is the legacy tax field, and a
// SuiteTax account keeps tax numbers in the Tax Registrations sublist.
func (s *Server) HideColumns(cols ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden == nil {
		s.hidden = map[string]bool{}
	}
	for _, c := range cols {
		s.hidden[strings.ToLower(c)] = true
	}
}

// AddCustomer stores a customer as if made in NetSuite's UI.
func (s *Server) AddCustomer(c Customer) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = s.id()
	}
	s.customers = append(s.customers, &c)
	return c.ID
}

// EditCustomer changes the stored customer with internal id id, as a
// person would in NetSuite's UI (make it inactive, clear its external
// id); it reports whether there is one.
func (s *Server) EditCustomer(id string, edit func(*Customer)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.customers {
		if c.ID == id {
			edit(c)
			return true
		}
	}
	return false
}

// DeleteCustomer removes the customer with internal id id (deleted, or
// merged into another, in NetSuite's UI).
func (s *Server) DeleteCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers = slices.DeleteFunc(s.customers, func(c *Customer) bool { return c.ID == id })
}

// Customers returns copies of the stored customers.
func (s *Server) Customers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Customer, len(s.customers))
	for i, c := range s.customers {
		out[i] = *c
	}
	return out
}

// Invoices returns copies of the stored invoices.
func (s *Server) Invoices() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invoice, len(s.invoices))
	for i, inv := range s.invoices {
		out[i] = *inv
	}
	return out
}

// Counts returns how many customers and invoices exist.
func (s *Server) Counts() (customers, invoices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.customers), len(s.invoices)
}

// Calls counts the API calls made to route ("PUT invoice", ...) so far,
// faulted ones included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r == route {
			n++
		}
	}
	return n
}

// TokenRequests counts the successful token requests.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// InvoiceUpserts counts the invoice upserts NetSuite processed (creates
// and updates; faults answered before the work do not count).
func (s *Server) InvoiceUpserts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invoiceUpserts
}

// AfterGet sets a function run after each record GET is processed and
// before its answer is sent (nil: none), with the record type: a test makes
// another attempt act between dealsync's look-up and its upsert. It runs
// without the fake's lock, so it may call the fake.
func (s *Server) AfterGet(f func(recordType string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterGet = f
}

func (s *Server) id() string {
	s.seq++
	return fmt.Sprint(100 + s.seq)
}

// ---- token endpoint ----

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, "POST token")
	var fault *Fault
	if fs := s.faults["POST token"]; len(fs) > 0 {
		fault, s.faults["POST token"] = &fs[0], fs[1:]
	}
	revoked := s.revoked
	s.mu.Unlock()
	if fault != nil {
		writeFault(w, *fault)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "client_assertion_type")
		return
	}
	if err := s.verify(r.PostForm.Get("client_assertion")); err != nil {
		code := "invalid_grant"
		if _, ok := err.(timeError); ok {
			code = "invalid_request"
		}
		oauthError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	if revoked {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the certificate is revoked")
		return
	}
	s.mu.Lock()
	s.tokenRequests++
	s.seq++
	tok := fmt.Sprintf("ns-access-%d", s.seq)
	s.access[tok] = time.Now().Add(time.Hour)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "expires_in": "3600", "token_type": "bearer"})
}

// timeError is an assertion refused for its iat or exp (a client whose
// clock is ahead of or behind the server's): answered invalid_request,
// where the other refusals of the assertion are invalid_grant.
type timeError struct{ error }

// verify checks a client assertion as "The Request Token Structure" says.
func (s *Server) verify(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("the assertion is not a JWS")
	}
	enc := base64.RawURLEncoding
	var header struct{ Typ, Alg, Kid string }
	var claims struct {
		Iss, Aud, Scope string
		Iat, Exp        int64
	}
	hb, err1 := enc.DecodeString(parts[0])
	pb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(pb, &claims) != nil {
		return fmt.Errorf("the assertion cannot be decoded")
	}
	if header.Typ != "JWT" {
		return fmt.Errorf("typ must be JWT")
	}
	if header.Kid != s.CertificateID {
		return fmt.Errorf("kid %q is no mapped certificate", header.Kid)
	}
	if claims.Iss != s.ClientID {
		return fmt.Errorf("iss %q is no integration with client credentials", claims.Iss)
	}
	if claims.Aud != s.TokenURL() {
		return fmt.Errorf("aud must be the token endpoint")
	}
	scopes := map[string]bool{}
	for _, sc := range strings.Split(claims.Scope, ",") {
		scopes[strings.TrimSpace(sc)] = true
	}
	if !scopes["rest_webservices"] {
		return fmt.Errorf("scope must include rest_webservices")
	}
	now := time.Now().Unix()
	if claims.Exp <= now || claims.Exp-claims.Iat > 3600 || claims.Iat > now+300 {
		return timeError{fmt.Errorf("iat must not be in the future, exp must be in the future and less than 60 minutes after iat")}
	}
	var newHash func() hash.Hash
	var ch crypto.Hash
	switch strings.TrimLeft(header.Alg, "PSE") {
	case "256":
		newHash, ch = sha256.New, crypto.SHA256
	case "384":
		newHash, ch = sha512.New384, crypto.SHA384
	case "512":
		newHash, ch = sha512.New, crypto.SHA512
	}
	if newHash == nil || (!strings.HasPrefix(header.Alg, "PS") && !strings.HasPrefix(header.Alg, "ES")) || len(header.Alg) != 5 {
		return fmt.Errorf("alg %q is not supported", header.Alg)
	}
	h := newHash()
	h.Write([]byte(parts[0] + "." + parts[1]))
	digest := h.Sum(nil)
	switch pub := s.PublicKey.(type) {
	case *rsa.PublicKey:
		if !strings.HasPrefix(header.Alg, "PS") {
			return fmt.Errorf("alg %s does not fit the certificate", header.Alg)
		}
		if err := rsa.VerifyPSS(pub, ch, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			return fmt.Errorf("signature: %v", err)
		}
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if !strings.HasPrefix(header.Alg, "ES") || len(sig) != 2*size {
			return fmt.Errorf("alg %s does not fit the certificate", header.Alg)
		}
		r, sv := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, sv) {
			return fmt.Errorf("signature does not verify")
		}
	default:
		return fmt.Errorf("no certificate")
	}
	return nil
}

// ---- API ----

// problem is NetSuite's error body.
func problem(status int, details ...map[string]string) (int, any) {
	typ := fmt.Sprintf("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.%d.%d", status/100+1, status%100+1)
	if status == http.StatusTooManyRequests {
		typ = "https://www.rfc-editor.org/rfc/rfc6585.html#section-4"
	}
	return status, map[string]any{
		"type":           typ,
		"title":          http.StatusText(status),
		"status":         status,
		"o:errorDetails": details,
	}
}

func detail(msg, code, path string) map[string]string {
	d := map[string]string{"detail": msg, "o:errorCode": code}
	if path != "" {
		d["o:errorPath"] = path
	}
	return d
}

type answer struct {
	status   int
	body     any
	location string
}

func (s *Server) api(method string, h func(r *http.Request) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		route := method + " " + r.PathValue("type")
		if r.URL.Path == SuiteQLPath {
			route = "POST suiteql"
		}
		s.mu.Lock()
		s.requests = append(s.requests, route)
		exp, ok := s.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		authorized := ok && time.Now().Before(exp) && !s.refuseLogins
		var fault *Fault
		if fs := s.faults[route]; len(fs) > 0 {
			fault, s.faults[route] = &fs[0], fs[1:]
		}
		s.mu.Unlock()
		if !authorized {
			status, body := problem(http.StatusUnauthorized, detail("Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.", "INVALID_LOGIN", ""))
			writeJSON(w, status, body)
			return
		}
		if fault != nil && !fault.AfterWork {
			writeFault(w, *fault)
			return
		}
		a := h(r)
		s.mu.Lock()
		afterGet := s.afterGet
		s.mu.Unlock()
		if method == http.MethodGet && afterGet != nil {
			afterGet(r.PathValue("type"))
		}
		if fault != nil {
			writeFault(w, *fault)
			return
		}
		if a.location != "" {
			w.Header().Set("Location", a.location)
		}
		if a.body == nil {
			w.WriteHeader(a.status)
			return
		}
		writeJSON(w, a.status, a.body)
	}
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	code := "UNEXPECTED_ERROR"
	msg := "An unexpected error occurred."
	if f.Status == http.StatusTooManyRequests {
		code, msg = "CONCURRENCY_LIMIT_EXCEEDED", "The request could not be processed because too many requests are running concurrently."
	}
	status, body := problem(f.Status, detail(msg, code, ""))
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var eidRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// findCustomer and findInvoice return the record named by ref (internal
// id or eid:…). Callers hold s.mu.
func (s *Server) findCustomer(ref string) *Customer {
	for _, c := range s.customers {
		if ref == c.ID || (c.ExternalID != "" && ref == "eid:"+c.ExternalID) {
			return c
		}
	}
	return nil
}

func (s *Server) findInvoice(ref string) *Invoice {
	for _, inv := range s.invoices {
		if ref == inv.ID || (inv.ExternalID != "" && ref == "eid:"+inv.ExternalID) {
			return inv
		}
	}
	return nil
}

func notFound() answer {
	st, b := problem(http.StatusNotFound, detail("The record instance does not exist. Provide a valid record instance ID.", "NONEXISTENT_ID", ""))
	return answer{status: st, body: b}
}

func (s *Server) getRecord(r *http.Request) answer {
	typ, ref := r.PathValue("type"), r.PathValue("ref")
	s.mu.Lock()
	defer s.mu.Unlock()
	self := s.URL + RecordPath + typ + "/"
	switch typ {
	case "customer":
		c := s.findCustomer(ref)
		if c == nil {
			return notFound()
		}
		return answer{status: http.StatusOK, body: map[string]any{
			"links": []any{map[string]string{"rel": "self", "href": self + c.ID}},
			"id":    c.ID, "externalId": c.ExternalID, "entityId": c.CompanyName, "companyName": c.CompanyName,
			"email": c.Email, "isPerson": false, "isInactive": c.Inactive,
		}}
	case "invoice":
		inv := s.findInvoice(ref)
		if inv == nil {
			return notFound()
		}
		return answer{status: http.StatusOK, body: map[string]any{
			"links": []any{map[string]string{"rel": "self", "href": self + inv.ID}},
			"id":    inv.ID, "externalId": inv.ExternalID, "tranId": inv.TranID, "otherRefNum": inv.OtherRefNum,
			"entity": map[string]string{"id": inv.Entity}, "total": json.Number(inv.Total.String()), "subtotal": json.Number(inv.Subtotal.String()),
		}}
	}
	st, b := problem(http.StatusNotFound, detail(fmt.Sprintf("Record type '%s' does not exist.", typ), "NONEXISTENT_ID", ""))
	return answer{status: st, body: b}
}

func (s *Server) putRecord(r *http.Request) answer {
	typ, ref := r.PathValue("type"), r.PathValue("ref")
	eid, ok := strings.CutPrefix(ref, "eid:")
	if !ok || !eidRe.MatchString(eid) {
		st, b := problem(http.StatusBadRequest, map[string]string{"detail": "The upsert operation requires an external ID (eid:) of letters, numbers, '_' and '-' in the request URL.",
			"o:errorCode": "INVALID_ID", "o:errorUrl": r.URL.Path})
		return answer{status: st, body: b}
	}
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body.", "INVALID_CONTENT", ""))
		return answer{status: st, body: b}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch typ {
	case "customer":
		return s.upsertCustomer(eid, raw)
	case "invoice":
		return s.upsertInvoice(eid, raw, replaced(r))
	}
	return notFound()
}

// replaced is the set of sublists the replace query parameter names
// (comma-separated): an update replaces their lines instead of appending.
func replaced(r *http.Request) map[string]bool {
	out := map[string]bool{}
	for _, name := range strings.Split(r.URL.Query().Get("replace"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			out[name] = true
		}
	}
	return out
}

// patchRecord updates fields of an existing customer by internal id; only
// externalId here. An external id another customer has is refused.
func (s *Server) patchRecord(r *http.Request) answer {
	var in struct {
		ExternalID *string `json:"externalId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body.", "INVALID_CONTENT", ""))
		return answer{status: st, body: b}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.findCustomer(r.PathValue("ref"))
	if r.PathValue("type") != "customer" || c == nil || strings.HasPrefix(r.PathValue("ref"), "eid:") {
		return notFound()
	}
	if in.ExternalID != nil {
		if other := s.findCustomer("eid:" + *in.ExternalID); other != nil && other != c {
			st, b := problem(http.StatusBadRequest, detail("A customer record with this external ID already exists.", "DUP_RCRD", "externalId"))
			return answer{status: st, body: b}
		}
		c.ExternalID = *in.ExternalID
	}
	return answer{status: http.StatusNoContent}
}

func (s *Server) location(typ, id string) string { return s.URL + RecordPath + typ + "/" + id }

func (s *Server) upsertCustomer(eid string, raw json.RawMessage) answer {
	var in struct {
		IsPerson    bool   `json:"isPerson"`
		CompanyName string `json:"companyName"`
		Email       string `json:"email"`
		Subsidiary  *struct {
			ID string `json:"id"`
		} `json:"subsidiary"`
		Currency *struct {
			ID string `json:"id"`
		} `json:"currency"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body: "+err.Error(), "INVALID_CONTENT", ""))
		return answer{status: st, body: b}
	}
	if !in.IsPerson && strings.TrimSpace(in.CompanyName) == "" {
		st, b := problem(http.StatusBadRequest, detail("Error while accessing a resource. Please enter value(s) for: Company Name.", "USER_ERROR", "companyName"))
		return answer{status: st, body: b}
	}
	if in.Currency != nil && s.currencies != nil && s.currencies[in.Currency.ID] == "" {
		st, b := problem(http.StatusBadRequest, detail("Invalid value for the resource or sub-resource field 'currency'. Provide a valid value.", "INVALID_VALUE", "currency"))
		return answer{status: st, body: b}
	}
	if in.Email != "" && !validEmail(in.Email) {
		st, b := problem(http.StatusBadRequest, detail("Invalid value for the resource or sub-resource field 'email'. Provide a valid value.", "INVALID_VALUE", "email"))
		return answer{status: st, body: b}
	}
	c := s.findCustomer("eid:" + eid)
	if c == nil {
		c = &Customer{ID: s.id(), ExternalID: eid}
		s.customers = append(s.customers, c)
	}
	c.CompanyName, c.Email = in.CompanyName, in.Email
	if in.Subsidiary != nil {
		c.Subsidiary = in.Subsidiary.ID
	}
	if in.Currency != nil {
		c.Currency = in.Currency.ID
	}
	return answer{status: http.StatusNoContent, location: s.location("customer", c.ID)}
}

// validEmail is the customer's email field as NetSuite validates it: one
// address (no display name, no list) whose domain has a dot.
func validEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return false
	}
	_, domain, _ := strings.Cut(v, "@")
	return strings.Contains(strings.Trim(domain, "."), ".")
}

// invoiceFields and invoiceItemFields are the invoice record's body fields
// and item sublist line fields the fake takes (NetSuite's field ids, in the
// REST API's lower camel case); any other is refused, as NetSuite refuses a
// field its record does not have.
var (
	invoiceFields     = map[string]bool{"entity": true, "tranDate": true, "dueDate": true, "currency": true, "otherRefNum": true, "memo": true, "location": true, "item": true}
	invoiceItemFields = map[string]bool{"item": true, "description": true, "quantity": true, "rate": true, "taxCode": true}
)

// unknownInvoiceField is the first field of an invoice body (or of an item
// line, as item.items[i].name) the fake does not take, "" when none.
func unknownInvoiceField(raw json.RawMessage) string {
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) != nil {
		return ""
	}
	for k := range body {
		if !invoiceFields[k] {
			return k
		}
	}
	var sub struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if json.Unmarshal(body["item"], &sub) != nil {
		return ""
	}
	for i, line := range sub.Items {
		for k := range line {
			if !invoiceItemFields[k] {
				return fmt.Sprintf("item.items[%d].%s", i, k)
			}
		}
	}
	return ""
}

// upsertInvoice creates or updates the invoice with external id eid. An
// update appends the item lines sent to the invoice's, as NetSuite does,
// unless replace names the item sublist.
func (s *Server) upsertInvoice(eid string, raw json.RawMessage, replace map[string]bool) answer {
	var in struct {
		Entity *struct {
			ID string `json:"id"`
		} `json:"entity"`
		TranDate    string `json:"tranDate"`
		OtherRefNum string `json:"otherRefNum"`
		Currency    *struct {
			ID string `json:"id"`
		} `json:"currency"`
		Item struct {
			Items []struct {
				Item *struct {
					ID string `json:"id"`
				} `json:"item"`
				Quantity *json.Number `json:"quantity"`
				Rate     *json.Number `json:"rate"`
				TaxCode  *struct {
					ID string `json:"id"`
				} `json:"taxCode"`
			} `json:"items"`
		} `json:"item"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body: "+err.Error(), "INVALID_CONTENT", ""))
		return answer{status: st, body: b}
	}
	if field := unknownInvoiceField(raw); field != "" {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body: unknown field '"+field+"'.", "INVALID_CONTENT", field))
		return answer{status: st, body: b}
	}
	bad := func(msg, code, path string) answer {
		st, b := problem(http.StatusBadRequest, detail(msg, code, path))
		return answer{status: st, body: b}
	}
	if in.Entity == nil || in.Entity.ID == "" {
		return bad("Error while accessing a resource. Please enter value(s) for: Customer.", "USER_ERROR", "entity")
	}
	c := s.findCustomer(in.Entity.ID)
	if c == nil || c.Inactive {
		return bad("Invalid value for the resource or sub-resource field 'entity'. Provide a valid value.", "INVALID_VALUE", "entity")
	}
	currency := cmp.Or(c.Currency, s.baseCurrency)
	if in.Currency != nil {
		// A customer is billed in its currency (this fake gives a customer
		// one; NetSuite's may have more).
		if (s.currencies != nil && s.currencies[in.Currency.ID] == "") || (currency != "" && in.Currency.ID != currency) {
			return bad("Invalid value for the resource or sub-resource field 'currency'. Provide a valid value.", "INVALID_VALUE", "currency")
		}
		currency = in.Currency.ID
	}
	if _, err := time.Parse("2006-01-02", in.TranDate); err != nil {
		return bad("Invalid value for the resource or sub-resource field 'tranDate'. Provide a valid value.", "INVALID_VALUE", "tranDate")
	}
	existing := s.findInvoice("eid:" + eid)
	if len(in.Item.Items) == 0 && (existing == nil || replace["item"]) {
		return bad("Error while accessing a resource. You must enter at least one line item for this transaction.", "USER_ERROR", "item")
	}
	for i, it := range in.Item.Items {
		if it.Item == nil || it.Item.ID == "" || (s.Items != nil && !s.Items[it.Item.ID]) {
			return bad("Invalid value for the resource or sub-resource field 'item'. Provide a valid value.", "INVALID_VALUE", fmt.Sprintf("item.items[%d].item", i))
		}
		if it.Rate == nil {
			return bad("Error while accessing a resource. Please enter value(s) for: Rate.", "USER_ERROR", fmt.Sprintf("item.items[%d].rate", i))
		}
	}
	var total, subtotal decimal.Decimal
	for _, it := range in.Item.Items {
		qty, rate := decimal.NewFromInt(1), decimal.RequireFromString(it.Rate.String())
		if it.Quantity != nil {
			qty = decimal.RequireFromString(it.Quantity.String())
		}
		amount := qty.Mul(rate).Round(2)
		subtotal = subtotal.Add(amount)
		if it.TaxCode != nil {
			if pct, ok := s.TaxRates[it.TaxCode.ID]; ok {
				amount = amount.Add(amount.Mul(pct).Div(decimal.NewFromInt(100)).Round(2))
			}
		}
		total = total.Add(amount)
	}
	s.invoiceUpserts++
	if existing == nil {
		existing = &Invoice{ID: s.id(), ExternalID: eid, TranID: fmt.Sprintf("INV%05d", len(s.invoices)+1), Body: raw}
		s.invoices = append(s.invoices, existing)
	}
	existing.Entity, existing.OtherRefNum, existing.Currency = in.Entity.ID, in.OtherRefNum, currency
	if replace["item"] {
		existing.Lines, existing.Total, existing.Subtotal = len(in.Item.Items), total, subtotal
	} else {
		existing.Lines, existing.Total, existing.Subtotal = existing.Lines+len(in.Item.Items), existing.Total.Add(total), existing.Subtotal.Add(subtotal)
	}
	return answer{status: http.StatusNoContent, location: s.location("invoice", existing.ID)}
}

var suiteQLRe = regexp.MustCompile(`(?is)^\s*SELECT\s+(.+?)\s+FROM\s+customer\s+WHERE\s+(\w+)\s*=\s*'((?:[^']|'')*)'(\s+AND\s+isinactive\s*=\s*'F')?(\s+ORDER\s+BY\s+id)?\s*$`)

// SetCurrencies sets the account's active currencies, internal id → ISO
// code (SuiteQL's symbol), and its base currency's id: SuiteQL lists them,
// a customer or invoice must be in one of them, and a customer made
// without a currency is in the base currency. Without (nil, the default),
// the currency list is not readable (an account without Multiple
// Currencies, or a role without the permission) and any currency goes.
func (s *Server) SetCurrencies(ids map[string]string, base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.currencies, s.baseCurrency = maps.Clone(ids), base
}

// currencyQLRe is the one query of the currency list this fake answers.
var currencyQLRe = regexp.MustCompile(`(?is)^\s*SELECT\s+id\s*,\s*symbol\s+FROM\s+currency\s+WHERE\s+isinactive\s*=\s*'F'\s*$`)

// currencyRows lists the currencies, or refuses as NetSuite does a record
// type the role cannot see.
func (s *Server) currencyRows(r *http.Request) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.currencies == nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid search query. Search error occurred: Record 'currency' was not found.", "INVALID_PARAMETER", "q"))
		return answer{status: st, body: b}
	}
	items := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(s.currencies)) {
		items = append(items, map[string]any{"links": []any{}, "id": id, "symbol": s.currencies[id]})
	}
	return s.page(r, items)
}

// page answers a SuiteQL query whose rows are items with the page the
// request's limit (1 to 1000, default 1000) and offset (default 0) ask
// for, as Collection Paging describes it: count, hasMore, offset,
// totalResults, and links to the page itself and to the next one. An
// offset that is not a multiple of the limit is refused, as NetSuite is
// reported to do. Callers hold s.mu.
func (s *Server) page(r *http.Request, items []map[string]any) answer {
	q := r.URL.Query()
	limit, err := strconv.Atoi(cmp.Or(q.Get("limit"), "1000"))
	if err != nil || limit < 1 || limit > 1000 {
		st, b := problem(http.StatusBadRequest, map[string]string{"detail": "Invalid value for the query parameter 'limit'. Provide a number from 1 to 1000.",
			"o:errorCode": "INVALID_PARAMETER", "o:errorQueryParam": "limit"})
		return answer{status: st, body: b}
	}
	offset, err := strconv.Atoi(cmp.Or(q.Get("offset"), "0"))
	if err != nil || offset < 0 || offset%limit != 0 {
		st, b := problem(http.StatusBadRequest, map[string]string{"detail": "Invalid value for the query parameter 'offset'. The offset must be a multiple of the limit.",
			"o:errorCode": "INVALID_PARAMETER", "o:errorQueryParam": "offset"})
		return answer{status: st, body: b}
	}
	total := len(items)
	items = items[min(offset, total):min(offset+limit, total)]
	more := offset+len(items) < total
	href := func(off int) string {
		return s.URL + SuiteQLPath + "?limit=" + strconv.Itoa(limit) + "&offset=" + strconv.Itoa(off)
	}
	links := []any{map[string]string{"rel": "self", "href": href(offset)}}
	if more {
		links = append(links, map[string]string{"rel": "next", "href": href(offset + limit)})
	}
	return answer{status: http.StatusOK, body: map[string]any{
		"links": links, "count": len(items), "hasMore": more, "offset": offset, "totalResults": total, "items": items,
	}}
}

func (s *Server) suiteQL(r *http.Request) answer {
	if r.Header.Get("Prefer") != "transient" {
		st, b := problem(http.StatusBadRequest, map[string]string{"detail": "Invalid value for the request header 'Prefer'. Provide 'transient'.",
			"o:errorCode": "INVALID_HEADER", "o:errorHeader": "Prefer"})
		return answer{status: st, body: b}
	}
	var in struct {
		Q string `json:"q"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Q == "" {
		st, b := problem(http.StatusBadRequest, detail("Invalid content in the request body: the query (q) is missing.", "INVALID_CONTENT", "q"))
		return answer{status: st, body: b}
	}
	if currencyQLRe.MatchString(in.Q) {
		return s.currencyRows(r)
	}
	m := suiteQLRe.FindStringSubmatch(in.Q)
	if m == nil {
		st, b := problem(http.StatusBadRequest, detail("Invalid search query. Detailed unprocessed description follows. Search error occurred: this fake understands only SELECT … FROM customer WHERE column = '…' [AND isinactive = 'F'] [ORDER BY id].", "INVALID_PARAMETER", "q"))
		return answer{status: st, body: b}
	}
	var cols []string
	for _, c := range strings.Split(m[1], ",") {
		cols = append(cols, strings.ToLower(strings.TrimSpace(c)))
	}
	where, value, activeOnly, byID := strings.ToLower(m[2]), strings.ReplaceAll(m[3], "''", "'"), m[4] != "", m[5] != ""
	columns := map[string]bool{"id": true, "externalid": true, "companyname": true, "entityid": true, "email": true, "vatregnumber": true, "isinactive": true}
	s.mu.Lock()
	hidden := maps.Clone(s.hidden)
	s.mu.Unlock()
	for _, col := range append(cols, where) {
		if !columns[col] || hidden[col] {
			st, b := problem(http.StatusBadRequest, detail(fmt.Sprintf("Invalid search query. Search error occurred: Field '%s' for record 'customer' was not found.", col), "INVALID_PARAMETER", "q"))
			return answer{status: st, body: b}
		}
	}
	if offset, err := strconv.Atoi(r.URL.Query().Get("offset")); !byID && err == nil && offset > 0 {
		// SuiteQL promises no row order without ORDER BY: read a page at a
		// time, such a query may skip rows and repeat others. Real NetSuite
		// answers anyway; this fake refuses, so that a reader which pages
		// without an order fails its tests instead of passing on the
		// insertion order the fake would keep.
		st, b := problem(http.StatusBadRequest, detail("Invalid search query. This fake refuses a page after the first (offset > 0) of a query without ORDER BY id: without an order, SuiteQL's pages may skip or repeat rows.", "INVALID_PARAMETER", "q"))
		return answer{status: st, body: b}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	customers := s.customers
	if byID {
		// Internal ids are numbers (those of AddCustomer may be any string:
		// they come after, in their order).
		customers = slices.Clone(customers)
		slices.SortStableFunc(customers, func(a, b *Customer) int {
			x, errX := strconv.Atoi(a.ID)
			y, errY := strconv.Atoi(b.ID)
			switch {
			case errX == nil && errY == nil:
				return cmp.Compare(x, y)
			case errX == nil:
				return -1
			case errY == nil:
				return 1
			}
			return cmp.Compare(a.ID, b.ID)
		})
	}
	items := []map[string]any{}
	for _, c := range customers {
		fields := map[string]string{"id": c.ID, "externalid": c.ExternalID, "companyname": c.CompanyName,
			"entityid": c.CompanyName, "email": c.Email, "vatregnumber": c.TaxNumber, "isinactive": map[bool]string{true: "T", false: "F"}[c.Inactive]}
		got := fields[where]
		// Oracle string comparison: exact, case-sensitive.
		if got != value || (activeOnly && c.Inactive) {
			continue
		}
		row := map[string]any{"links": []any{}}
		for _, col := range cols {
			// SuiteQL leaves empty (NULL) columns out of a row.
			if v := fields[col]; v != "" {
				row[col] = v
			}
		}
		items = append(items, row)
	}
	return s.page(r, items)
}
