// Package salesforcefake is a local stand-in for one Salesforce org's REST
// API as the salesforce source uses it, following the REST API Developer
// Guide: the OAuth 2.0 client credentials grant at /services/oauth2/token,
// bearer sessions that can expire (401 INVALID_SESSION_ID), SOQL queries of
// an Opportunity (with its Account), of the won Opportunities last
// modified in a range (SystemModstamp: what the test stored; the fake does
// not stamp it), and of an Opportunity's OpportunityLineItems through
// GET /services/data/vXX.X/query (paged with nextRecordsUrl), of an
// Opportunity among the deleted ones (DeleteOpportunity: the Recycle Bin)
// through GET /services/data/vXX.X/queryAll with IsDeleted = true,
// GET /sobjects/Opportunity/describe (the org's Opportunity fields: some
// standard ones, StandardFields, and the custom ones, AddFields and
// PutField; FailDescribes), and PATCH of /sobjects/Opportunity/{id} (204;
// 400 INVALID_FIELD for a field the org does not have,
// INVALID_FIELD_FOR_INSERT_UPDATE for one that is not updateable,
// STRING_TOO_LONG for a value longer than a text field's length,
// INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST for a value a restricted
// picklist does not have; 404 NOT_FOUND for an unknown record). A query
// that selects a field twice, ignoring case as SOQL does, is refused as
// Salesforce refuses it (400 INVALID_FIELD "duplicate field selected: X"),
// and so is an Opportunity query that selects an Opportunity field the
// describe does not list (400 INVALID_FIELD "No such column");
// records are answered with their fields spelt as stored, whatever the
// case they were selected in.
//
// Tests seed records, inject write-back failures and read what was queried
// and written. It is safe for concurrent use.
package salesforcefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultWriteBackFields are the custom Opportunity fields a new org has:
// the salesforce source's default write-back names.
var DefaultWriteBackFields = []string{"ERP_Invoice_Id__c", "ERP_Invoice_Number__c", "ERP_Invoice_URL__c", "ERP_Sync_Status__c"}

// Field is an Opportunity field as the describe answers it.
type Field struct {
	Name string
	// Type is the field type: "string" (Text) when empty. Length is a text
	// field's most characters: when 0, 255 (32,768 for a textarea).
	Type   string
	Length int
	// ReadOnly: not updateable (a formula, a system field, or read-only
	// for the integration user).
	ReadOnly bool
	// Picklist are a picklist's values; Restricted refuses others.
	Picklist   []string
	Restricted bool
	custom     bool
}

// StandardFields are some of the Opportunity's standard fields, which
// every org has.
var StandardFields = []Field{
	{Name: "Id", Type: "id", Length: 18, ReadOnly: true},
	{Name: "Name", Type: "string", Length: 120},
	{Name: "StageName", Type: "picklist", Length: 255, Picklist: []string{"Prospecting", "Negotiation/Review", "Closed Won", "Closed Lost"}, Restricted: true},
	{Name: "Amount", Type: "currency"},
	{Name: "CloseDate", Type: "date"},
	{Name: "IsWon", Type: "boolean", ReadOnly: true},
	{Name: "AccountId", Type: "reference", Length: 18},
	{Name: "OwnerId", Type: "reference", Length: 18},
	{Name: "Description", Type: "textarea", Length: 32000},
	{Name: "NextStep", Type: "string", Length: 255},
	{Name: "SystemModstamp", Type: "datetime", ReadOnly: true},
	{Name: "IsDeleted", Type: "boolean", ReadOnly: true},
}

// Record is an sObject row as the query endpoint answers it.
type Record = map[string]any

// ParseRecord decodes a JSON record (numbers kept exact); it panics on
// invalid JSON, for literals in tests.
func ParseRecord(s string) Record {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var r Record
	if err := d.Decode(&r); err != nil {
		panic("salesforcefake: " + err.Error())
	}
	return r
}

// Request is one request as received.
type Request struct {
	Method, Path, Query, Auth string
	Body                      []byte
}

// Fault is an answer given instead of the normal one.
type Fault struct {
	Status int
	// Body defaults to an error array whose errorCode is Salesforce's for
	// Status (FaultCode), so that a 401 reads as an expired session and a
	// 400 as a refused field, not as an unavailable org.
	Body string
}

// FaultCode is the errorCode of a Fault without a Body: Salesforce's for
// the status (400 INVALID_FIELD, 401 INVALID_SESSION_ID, 403
// INSUFFICIENT_ACCESS_OR_READONLY, 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED,
// 503 SERVER_UNAVAILABLE, anything else UNKNOWN_EXCEPTION, as a 500 is:
// the salesforce source reads SERVER_UNAVAILABLE as a 503 whatever the
// status).
func FaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_FIELD"
	case http.StatusUnauthorized:
		return "INVALID_SESSION_ID"
	case http.StatusForbidden:
		return "INSUFFICIENT_ACCESS_OR_READONLY"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed:
		return "METHOD_NOT_ALLOWED"
	case http.StatusServiceUnavailable:
		return "SERVER_UNAVAILABLE"
	default:
		return "UNKNOWN_EXCEPTION"
	}
}

// Server is a fake Salesforce org. Create it with New.
type Server struct {
	*httptest.Server
	OrgID, ClientID, ClientSecret string
	APIVersion                    string
	// MultiCurrency makes the org a multi-currency one: its Opportunities
	// have CurrencyIsoCode. Otherwise a query of that field is refused as
	// Salesforce refuses it (400 INVALID_FIELD), as is one of any field
	// the describe does not list.
	MultiCurrency bool
	// LineItemPageSize is the most line items per query page (default 2000,
	// Salesforce's default batch size).
	LineItemPageSize int
	// WonPageSize is the most won Opportunities per query page (default
	// 2000).
	WonPageSize int

	mu         sync.Mutex
	tokens     map[string]bool // valid access tokens
	tokenCalls int
	opps       map[string]Record
	deleted    map[string]Record // deleted Opportunities (the Recycle Bin)
	lines      map[string][]Record
	fields     map[string]Field // custom Opportunity fields
	dsFaults   []Fault
	requests   []Request
	queries    []string
	patches    map[string][]map[string]any
	writes     map[string]int
	attempts   map[string]int
	wbFaults   []Fault
	wonPages   map[string][]any // query locator → the won records of its query
	// lineFields is the SELECT list of the last line-item query of each
	// opportunity, for its next pages.
	lineFields map[string][]string
}

// New starts a fake org accepting the client credentials.
func New(orgID, clientID, clientSecret string) *Server {
	s := &Server{
		OrgID: orgID, ClientID: clientID, ClientSecret: clientSecret, APIVersion: "v62.0",
		LineItemPageSize: 2000,
		WonPageSize:      2000,
		wonPages:         map[string][]any{},
		lineFields:       map[string][]string{},
		tokens:           map[string]bool{},
		opps:             map[string]Record{},
		deleted:          map[string]Record{},
		lines:            map[string][]Record{},
		fields:           map[string]Field{},
		patches:          map[string][]map[string]any{},
		writes:           map[string]int{},
		attempts:         map[string]int{},
	}
	for _, f := range DefaultWriteBackFields {
		s.fields[f] = Field{Name: f, custom: true}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// TokenURL is the org's token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/services/oauth2/token" }

// PutOpportunity stores an Opportunity row (with "Id"; a nested "Account"
// is answered as the relationship).
func (s *Server) PutOpportunity(r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := r["Id"].(string)
	if id == "" {
		panic("salesforcefake: opportunity without Id")
	}
	s.opps[id] = clone(r)
}

// DeleteOpportunity deletes a stored Opportunity as Salesforce does: it
// goes to the Recycle Bin with IsDeleted true, which the query resource
// leaves out and queryAll finds; its line items go with it.
func (s *Server) DeleteOpportunity(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.opps[id]
	if !ok {
		panic("salesforcefake: no opportunity " + id)
	}
	delete(s.opps, id)
	delete(s.lines, id)
	o["IsDeleted"] = true
	s.deleted[id] = o
}

// SetOpportunityField changes a field of a stored Opportunity (a user edit).
func (s *Server) SetOpportunityField(id, field string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.opps[id]
	if !ok {
		panic("salesforcefake: no opportunity " + id)
	}
	o[field] = v
}

// Opportunity returns a copy of a stored Opportunity.
func (s *Server) Opportunity(id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.opps[id]
	return clone(o), ok
}

// PutLineItems replaces an Opportunity's line items, in query order.
func (s *Server) PutLineItems(oppID string, items ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(items))
	for i, r := range items {
		out[i] = clone(r)
	}
	s.lines[oppID] = out
}

// AddFields makes custom Opportunity fields writable: Text(255).
func (s *Server) AddFields(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		s.fields[n] = Field{Name: n, custom: true}
	}
}

// PutField defines (or redefines) a custom Opportunity field.
func (s *Server) PutField(f Field) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Picklist, f.custom = slices.Clone(f.Picklist), true
	s.fields[f.Name] = f
}

// DeleteField removes a custom Opportunity field (one of
// DefaultWriteBackFields, say).
func (s *Server) DeleteField(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.fields, name)
}

// FailDescribes answers the next len(faults) describes with the faults,
// in order.
func (s *Server) FailDescribes(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dsFaults = append(s.dsFaults, faults...)
}

// field is the definition of an Opportunity field, by its name in any
// letter case, as Salesforce takes it.
func (s *Server) field(name string) (Field, bool) {
	if f, ok := s.fields[name]; ok {
		return f, true
	}
	for k, f := range s.fields {
		if strings.EqualFold(k, name) {
			return f, true
		}
	}
	for _, f := range s.standardFields() {
		if strings.EqualFold(f.Name, name) { // Salesforce takes field names in any case
			return f, true
		}
	}
	return Field{}, false
}

func (s *Server) standardFields() []Field {
	if s.MultiCurrency {
		return append(slices.Clone(StandardFields), Field{Name: "CurrencyIsoCode", Type: "picklist", Length: 3, Picklist: []string{"EUR", "USD"}, Restricted: true})
	}
	return StandardFields
}

// refuses says why a PATCH may not set the field to v, as Salesforce's
// error code and message ("" when it may).
func (f Field) refuses(v any) (code, message string) {
	text, isText := v.(string)
	switch {
	case f.ReadOnly:
		return "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: " + f.Name + ". Please check the security settings of this field and verify that it is read/write for your profile or permission set."
	case isText && f.Restricted && !slices.Contains(f.Picklist, text):
		return "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f.Name + ": bad value for restricted picklist field: " + text
	case isText && (f.Type == "" || f.Type == "string" || f.Type == "textarea" || f.Type == "url") && utf8.RuneCountInString(text) > f.length():
		return "STRING_TOO_LONG", fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Name, text, f.length())
	}
	return "", ""
}

// length is Length, or when 0 a text field's default: 255, a long text
// area's 32,768.
func (f Field) length() int {
	switch {
	case f.Length != 0:
		return f.Length
	case f.Type == "" || f.Type == "string" || f.Type == "url":
		return 255
	case f.Type == "textarea":
		return 32768
	}
	return 0
}

// describe answers GET /sobjects/Opportunity/describe with the fields
// of the REST API's sObject Describe (DescribeSObjectResult) the fake
// knows.
func (s *Server) describe(w http.ResponseWriter) {
	if answerFault(w, &s.dsFaults) {
		return
	}
	all := s.standardFields()
	for _, n := range slices.Sorted(maps.Keys(s.fields)) {
		all = append(all, s.fields[n])
	}
	fields := make([]any, 0, len(all))
	for _, f := range all {
		typ := f.Type
		if typ == "" {
			typ = "string"
		}
		values := []any{}
		for _, v := range f.Picklist {
			values = append(values, map[string]any{"active": true, "defaultValue": false, "label": v, "validFor": nil, "value": v})
		}
		fields = append(fields, map[string]any{"name": f.Name, "label": strings.TrimSuffix(f.Name, "__c"), "type": typ, "length": f.length(),
			"updateable": !f.ReadOnly, "createable": !f.ReadOnly, "calculated": false, "custom": f.custom, "nillable": true,
			"restrictedPicklist": f.Restricted, "picklistValues": values, "soapType": "xsd:string"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": "Opportunity", "label": "Opportunity", "custom": false, "keyPrefix": "006",
		"createable": true, "updateable": true, "queryable": true, "fields": fields})
}

// ExpireSessions invalidates every access token issued so far.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// FailWriteBacks answers the next len(faults) Opportunity PATCHes with the
// faults, in order, without changing the record.
func (s *Server) FailWriteBacks(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wbFaults = append(s.wbFaults, faults...)
}

// WriteBacks counts the successful write-backs of an Opportunity.
func (s *Server) WriteBacks(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[id]
}

// WriteBackAttempts counts every PATCH of an Opportunity, failed ones included.
func (s *Server) WriteBackAttempts(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

// TotalWriteBacks counts the successful write-backs of every Opportunity.
func (s *Server) TotalWriteBacks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.writes {
		n += v
	}
	return n
}

// Patches returns the bodies of the successful PATCHes of an Opportunity.
func (s *Server) Patches(id string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.patches[id])
}

// TokenCalls counts the token requests.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// Queries returns the SOQL queries received (not the follow-up pages).
func (s *Server) Queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// Requests returns every request received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func clone(r Record) Record {
	if r == nil {
		return nil
	}
	b, _ := json.Marshal(r)
	return ParseRecord(string(b))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErrors(w http.ResponseWriter, status int, code, message string, fields ...string) {
	e := map[string]any{"message": message, "errorCode": code}
	if len(fields) > 0 {
		e["fields"] = fields
	}
	writeJSON(w, status, []any{e})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: body})
	if r.URL.Path == "/services/oauth2/token" && r.Method == http.MethodPost {
		s.token(w, r)
		return
	}
	prefix := "/services/data/" + s.APIVersion + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		writeErrors(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") || !s.tokens[strings.TrimPrefix(auth, "Bearer ")] {
		writeErrors(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && (rest == "query" || rest == "queryAll"):
		q := r.URL.Query().Get("q")
		s.queries = append(s.queries, q)
		s.query(w, q, rest == "queryAll")
	case r.Method == http.MethodGet && strings.HasPrefix(rest, "query/"):
		s.nextPage(w, strings.TrimPrefix(rest, "query/"))
	case r.Method == http.MethodGet && (rest == "sobjects/Opportunity/describe" || rest == "sobjects/Opportunity/describe/"):
		s.describe(w)
	case r.Method == http.MethodPatch && strings.HasPrefix(rest, "sobjects/Opportunity/"):
		s.patch(w, strings.TrimPrefix(rest, "sobjects/Opportunity/"), body)
	default:
		writeErrors(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.tokenCalls++
	_ = r.ParseForm()
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant type not supported"})
		return
	}
	if id != s.ClientID || sec != s.ClientSecret {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "invalid client credentials"})
		return
	}
	tok := s.OrgID[:min(15, len(s.OrgID))] + "!tok" + strconv.Itoa(s.tokenCalls)
	s.tokens[tok] = true
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "signature": "x", "scope": "api", "instance_url": s.URL,
		"id": "https://login.salesforce.com/id/" + s.OrgID + "/005000000000001", "token_type": "Bearer", "issued_at": "1716900000000"})
}

var (
	// wonQuery: the won Opportunities last modified in a range, by IsWon
	// or StageName IN (...), case-insensitive as SOQL compares strings.
	wonQuery   = regexp.MustCompile(`\bFROM Opportunity WHERE \(?IsWon = true(?: OR StageName IN \(([^)]*)\)\))? AND SystemModstamp >= (\S+) AND SystemModstamp < (\S+)(?: AND CloseDate >= (\S+))?`)
	oppQuery   = regexp.MustCompile(`\bFROM Opportunity WHERE Id = '([A-Za-z0-9]+)'( AND IsDeleted = true)?`)
	linesQuery = regexp.MustCompile(`\bFROM OpportunityLineItem WHERE OpportunityId = '([A-Za-z0-9]+)'`)
)

func (s *Server) withAttributes(typ string, r Record) Record {
	r = clone(r)
	if _, ok := r["attributes"]; !ok {
		id, _ := r["Id"].(string)
		r["attributes"] = map[string]any{"type": typ, "url": "/services/data/" + s.APIVersion + "/sobjects/" + typ + "/" + id}
	}
	return r
}

// selectList is the fields a SOQL query selects, as written.
func selectList(q string) []string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(q), "SELECT ")
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, " FROM ")
	var out []string
	for _, f := range strings.Split(list, ",") {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// duplicateField is the first field selected a second time, compared
// ignoring case as SOQL compares names.
func duplicateField(fields []string) (string, bool) {
	seen := map[string]bool{}
	for _, f := range fields {
		k := strings.ToLower(f)
		if seen[k] {
			return f, true
		}
		seen[k] = true
	}
	return "", false
}

// key is the spelling of name among r's fields (ignoring case, as SOQL
// does), or name itself when r has no such field.
func key(r Record, name string) string {
	if _, ok := r[name]; ok {
		return name
	}
	for k := range r {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

// project is r with the selected fields alone, as Salesforce answers: a
// field the record lacks is null, a relationship field (Account.Name) is
// inside its parent object, and a field is named as the record spells it,
// whatever the case it was selected in.
func project(r Record, fields []string) Record {
	out := Record{}
	for _, f := range fields {
		parent, child, nested := strings.Cut(f, ".")
		if !nested {
			k := key(r, f)
			out[k] = r[k]
			continue
		}
		parent = key(r, parent)
		src, _ := r[parent].(map[string]any)
		if src == nil {
			if _, ok := out[parent]; !ok {
				out[parent] = nil
			}
			continue
		}
		dst, _ := out[parent].(map[string]any)
		if dst == nil {
			dst = map[string]any{}
			out[parent] = dst
		}
		child = key(src, child)
		dst[child] = src[child]
	}
	return out
}

// query answers a SOQL query of the query resource, or of queryAll (all),
// which includes deleted records.
func (s *Server) query(w http.ResponseWriter, q string, all bool) {
	if f, dup := duplicateField(selectList(q)); dup {
		writeErrors(w, http.StatusBadRequest, "INVALID_FIELD", "duplicate field selected: "+f)
		return
	}
	if m := linesQuery.FindStringSubmatch(q); m != nil {
		s.lineFields[m[1]] = selectList(q)
		s.linesPage(w, m[1], 0)
		return
	}
	if m := wonQuery.FindStringSubmatch(q); m != nil {
		if s.refuseUnknownField(w, q) {
			return
		}
		s.wonPage(w, m[1], m[2], m[3], m[4], selectList(q))
		return
	}
	if m := oppQuery.FindStringSubmatch(q); m != nil {
		if s.refuseUnknownField(w, q) {
			return
		}
		records := []any{}
		onlyDeleted := m[2] != ""
		if o, ok := s.opps[m[1]]; ok && !onlyDeleted {
			records = append(records, s.withAttributes("Opportunity", project(o, selectList(q))))
		}
		if o, ok := s.deleted[m[1]]; ok && all {
			records = append(records, s.withAttributes("Opportunity", project(o, selectList(q))))
		}
		writeJSON(w, http.StatusOK, map[string]any{"totalSize": len(records), "done": true, "records": records})
		return
	}
	writeErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", "unexpected query: "+q)
}

// refuseUnknownField answers an Opportunity query that selects a field
// of the Opportunity the describe does not list (CurrencyIsoCode in an
// org that is not multi-currency, a misspelt custom field) as Salesforce
// does, 400 INVALID_FIELD "No such column", and reports whether it did.
// A field of a related record (Account.Name) is not judged.
func (s *Server) refuseUnknownField(w http.ResponseWriter, q string) bool {
	for _, f := range selectList(q) {
		if strings.Contains(f, ".") {
			continue
		}
		if _, ok := s.field(f); ok {
			continue
		}
		col := strings.Index(q, f) + 1
		writeErrors(w, http.StatusBadRequest, "INVALID_FIELD", "\n"+q+"\n"+strings.Repeat(" ", col-1)+"^\nERROR at Row:1:Column:"+strconv.Itoa(col)+"\n"+
			"No such column '"+f+"' on entity 'Opportunity'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "+
			"Please reference your WSDL or the describe call for the appropriate names.")
		return true
	}
	return false
}

// wonPage answers the won-Opportunities query in one page, by
// SystemModstamp then Id: the selected fields of each. The range's ends are
// SOQL dateTime literals (2026-11-01T00:00:00Z); an Opportunity without a
// SystemModstamp is never in it. closedFrom, if set, is the least
// CloseDate (a SOQL date literal).
func (s *Server) wonPage(w http.ResponseWriter, stageList, fromLit, toLit, closedFrom string, fields []string) {
	from, err1 := time.Parse(time.RFC3339, fromLit)
	to, err2 := time.Parse(time.RFC3339, toLit)
	if err1 != nil || err2 != nil {
		writeErrors(w, http.StatusBadRequest, "MALFORMED_QUERY", "invalid dateTime literal: "+fromLit+" or "+toLit)
		return
	}
	stages := map[string]bool{}
	for _, st := range strings.Split(stageList, ",") {
		if st = strings.Trim(strings.TrimSpace(st), "'"); st != "" {
			stages[strings.ToLower(st)] = true
		}
	}
	type row struct {
		modified time.Time
		id       string
		rec      Record
	}
	var won []row
	for _, o := range s.opps {
		stage, _ := o["StageName"].(string)
		stamp, _ := o["SystemModstamp"].(string)
		modified, ok := parseDateTime(stamp)
		closeDate, _ := o["CloseDate"].(string)
		if (o["IsWon"] == true || stages[strings.ToLower(stage)]) && ok && !modified.Before(from) && modified.Before(to) &&
			(closedFrom == "" || closeDate >= closedFrom) {
			won = append(won, row{modified, o["Id"].(string), project(o, fields)})
		}
	}
	slices.SortFunc(won, func(a, b row) int {
		if c := a.modified.Compare(b.modified); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	records := make([]any, len(won))
	for i, r := range won {
		records[i] = s.withAttributes("Opportunity", r.rec)
	}
	locator := fmt.Sprintf("01gWON%d", len(s.wonPages))
	s.wonPages[locator] = records
	s.wonPageAt(w, locator, 0)
}

// parseDateTime reads a dateTime field as Salesforce answers it
// (2026-11-03T10:00:00.000+0000) or in RFC 3339.
func parseDateTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// wonPageAt answers the page of a won query's records from offset on;
// its locators are "01gWON<n>-<offset>".
func (s *Server) wonPageAt(w http.ResponseWriter, locator string, offset int) {
	all := s.wonPages[locator]
	end := min(len(all), offset+s.WonPageSize)
	out := map[string]any{"totalSize": len(all), "done": end >= len(all), "records": slices.Clone(all[min(offset, len(all)):end])}
	if end < len(all) {
		out["nextRecordsUrl"] = fmt.Sprintf("/services/data/%s/query/%s-%d", s.APIVersion, locator, end)
	}
	writeJSON(w, http.StatusOK, out)
}

// Query locators are "01gFAKE<opportunity id>-<offset>".
func (s *Server) linesPage(w http.ResponseWriter, oppID string, offset int) {
	all := s.lines[oppID]
	end := min(len(all), offset+s.LineItemPageSize)
	records := []any{}
	for _, r := range all[min(offset, len(all)):end] {
		records = append(records, s.withAttributes("OpportunityLineItem", project(r, s.lineFields[oppID])))
	}
	out := map[string]any{"totalSize": len(all), "done": end >= len(all), "records": records}
	if end < len(all) {
		out["nextRecordsUrl"] = fmt.Sprintf("/services/data/%s/query/01gFAKE%s-%d", s.APIVersion, oppID, end)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) nextPage(w http.ResponseWriter, locator string) {
	if won, off, ok := strings.Cut(locator, "-"); ok && strings.HasPrefix(won, "01gWON") {
		if n, err := strconv.Atoi(off); err == nil && s.wonPages[won] != nil {
			s.wonPageAt(w, won, n)
			return
		}
	}
	rest, ok := strings.CutPrefix(locator, "01gFAKE")
	i := strings.LastIndex(rest, "-")
	if !ok || i < 0 {
		writeErrors(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	off, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	s.linesPage(w, rest[:i], off)
}

func (s *Server) patch(w http.ResponseWriter, id string, body []byte) {
	s.attempts[id]++
	if answerFault(w, &s.wbFaults) {
		return
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		writeErrors(w, http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not valid JSON")
		return
	}
	o, ok := s.opps[id]
	if !ok {
		writeErrors(w, http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+id)
		return
	}
	for k, v := range fields {
		f, defined := s.field(k)
		if _, known := o[k]; !known && !defined {
			writeErrors(w, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+k+"' on sobject of type Opportunity", k)
			return
		}
		if code, msg := f.refuses(v); defined && code != "" {
			writeErrors(w, http.StatusBadRequest, code, msg, k)
			return
		}
	}
	for k, v := range fields {
		o[k] = v
	}
	s.patches[id] = append(s.patches[id], fields)
	s.writes[id]++
	w.WriteHeader(http.StatusNoContent)
}

// answerFault answers the first of faults, if any, and drops it: its body,
// or Salesforce's error array with the status's code.
func answerFault(w http.ResponseWriter, faults *[]Fault) bool {
	if len(*faults) == 0 {
		return false
	}
	f := (*faults)[0]
	*faults = (*faults)[1:]
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return true
	}
	writeErrors(w, f.Status, FaultCode(f.Status), fmt.Sprintf("injected fault %d", f.Status))
	return true
}
