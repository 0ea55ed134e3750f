// Package pipedrivefake is a local stand-in for the parts of Pipedrive's
// API v2 that the pipedrive source uses, following Pipedrive's reference:
// an API token per company (x-api-token header, or an OAuth bearer token;
// 401 "unauthorized access" otherwise), GET /api/v2/deals and /api/v2/deals/archived (ids,
// status, deleted deals only with status=deleted, updated_since, sort,
// cursor paging; GET /api/v2/deals leaves archived deals out, which
// /api/v2/deals/archived lists), GET /api/v2/deals/{id} (404 for a deal
// deleted with DeleteDeal, as for an unknown one; an archived deal, see
// ArchiveDeal, with is_archived true; every deal answered with
// is_archived and archive_time, false and null unless seeded),
// GET /api/v2/organizations/{id}, GET /api/v2/persons/{id},
// GET /api/v2/deals/{id}/products (sort_by id, the default, or order_nr,
// add_time, update_time; cursor
// paging; each deal product with its tax percentage, "tax", 0 unless
// seeded, and its "tax_method", exclusive, inclusive or none, the
// company's tax option unless seeded: see SetTaxOption),
// GET /api/v2/deals/{id}/discounts (the discounts on the whole deal,
// none unless seeded: see PutDealDiscounts),
// GET /api/v2/products?ids=..., GET /api/v2/dealFields (the company's
// custom deal fields, AddDealFields and PutDealField, after some of
// Pipedrive's own, BuiltinDealFields; cursor paging, DealFieldsPageSize;
// FailDealFields), GET /api/v2/organizationFields (likewise: the
// company's custom organization fields, PutOrganizationField, after some
// of Pipedrive's own, BuiltinOrganizationFields; FailOrganizationFields),
// and PATCH /api/v2/deals/{id},
// which updates the stored deal's custom fields (400 for a custom field key
// the company does not have, or text for a field whose type is not text;
// ArchivedPatchStatus for an archived deal, whose body is unverified).
// Answers use the {"success", "data", "additional_data"} envelope; unknown
// objects are 404.
//
// Tests seed companies, deals, organizations and products, inject
// write-back failures and read what was asked and written. It is safe for
// concurrent use.
package pipedrivefake

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Record is an object as the API answers it in "data".
type Record = map[string]any

// ParseRecord decodes a JSON object (numbers kept exact); it panics on
// invalid JSON, for literals in tests.
func ParseRecord(s string) Record {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var r Record
	if err := d.Decode(&r); err != nil {
		panic("pipedrivefake: " + err.Error())
	}
	return r
}

// Request is one API request as received.
type Request struct {
	Company                          string // whose token was used ("" if none)
	Method, Path, Query, Token, Auth string
	Body                             []byte
}

// JSON decodes the body into a map (nil when there is none or it is not JSON).
func (r Request) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// Fault is an answer given instead of the normal one.
type Fault struct {
	Status     int
	RetryAfter string
	Body       string // default: a Pipedrive error envelope
}

type company struct {
	deals     map[string]Record
	deleted   map[string]Record // deleted deals, listed with status=deleted only
	orgs      map[string]Record
	persons   map[string]Record
	items     map[string][]Record // deal id → deal products
	discounts map[string][]Record // deal id → discounts on the whole deal
	products  map[string]Record
	fields    map[string]DealField // deal custom fields by key
	orgFields map[string]DealField // organization custom fields by key
	taxOpt    string               // tax_method of deal products seeded without one
}

// Server is a fake Pipedrive API. Create it with New.
type Server struct {
	*httptest.Server
	// ProductsPageSize is the most deal products per page (default 100).
	ProductsPageSize int
	// DealFieldsPageSize is the most deal fields per page when the
	// request's limit asks for more (default 500, the API's most).
	DealFieldsPageSize int
	// ArchivedPatchStatus is the status PATCH /api/v2/deals/{id} answers
	// for an archived deal (default 403), with Pipedrive's error envelope
	// and ArchivedPatchError. Since 15 July 2025 Pipedrive's API does not
	// edit archived deals, but what it answers is not documented: the
	// status, the text, and whether a PATCH that unarchives the deal
	// (is_archived false) passes are all unverified. The fake refuses
	// every PATCH of an archived deal.
	ArchivedPatchStatus int

	mu        sync.Mutex
	tokens    map[string]string // token → company id
	companies map[string]*company
	requests  []Request
	writes    map[string]int
	attempts  map[string]int
	wbFaults  []Fault
	dfFaults  []Fault
	ofFaults  []Fault // of GET /api/v2/organizationFields
}

// New starts a fake Pipedrive with no companies.
func New() *Server {
	s := &Server{ProductsPageSize: 100, DealFieldsPageSize: 500, ArchivedPatchStatus: http.StatusForbidden, tokens: map[string]string{}, companies: map[string]*company{},
		writes: map[string]int{}, attempts: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) company(id string) *company {
	c, ok := s.companies[id]
	if !ok {
		c = &company{deals: map[string]Record{}, deleted: map[string]Record{}, orgs: map[string]Record{}, persons: map[string]Record{}, items: map[string][]Record{},
			discounts: map[string][]Record{}, products: map[string]Record{}, fields: map[string]DealField{}, orgFields: map[string]DealField{}, taxOpt: "none"}
		s.companies[id] = c
	}
	return c
}

// AddCompany adds a company reached with token (an API token or an OAuth
// access token).
func (s *Server) AddCompany(companyID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = companyID
	s.company(companyID)
}

// RevokeToken makes the API refuse token (401) from now on, as after an
// app uninstall or a token revoked before its expiry.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// SetTaxOption sets the company's tax option ("exclusive", "inclusive" or
// "none"; "none" until set): the tax_method Pipedrive gives deal products
// that were added without one. Deal products seeded with a tax_method keep
// it.
func (s *Server) SetTaxOption(companyID, method string) {
	switch method {
	case "exclusive", "inclusive", "none":
	default:
		panic("pipedrivefake: tax option " + method + " is not exclusive, inclusive or none")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.company(companyID).taxOpt = method
}

// AddDealFields creates deal custom fields (their 40-character keys) of
// type Text (varchar).
func (s *Server) AddDealFields(companyID string, keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.company(companyID)
	for _, k := range keys {
		c.fields[k] = DealField{Key: k}
	}
}

// DealField is a deal field as GET /api/v2/dealFields lists it.
type DealField struct {
	// Key is the field_code (a custom field's 40-character key), Name its
	// field_name ("Field <key>" when empty).
	Key, Name string
	// Type is the field_type: "varchar" (Text) when empty; "enum" and
	// "set" take Options.
	Type    string
	Options []string
	// builtin: one of Pipedrive's own fields (is_custom_field false).
	builtin bool
}

// BuiltinDealFields are some of Pipedrive's own deal fields, listed
// before a company's custom fields.
var BuiltinDealFields = []DealField{
	{Key: "title", Name: "Title", Type: "varchar", builtin: true},
	{Key: "value", Name: "Value", Type: "monetary", builtin: true},
	{Key: "status", Name: "Status", Type: "status", builtin: true},
	{Key: "stage_id", Name: "Stage", Type: "stage", builtin: true},
	{Key: "org_id", Name: "Organization", Type: "org", builtin: true},
	{Key: "owner_id", Name: "Owner", Type: "user", builtin: true},
	{Key: "expected_close_date", Name: "Expected close date", Type: "date", builtin: true},
}

// PutDealField creates (or replaces) a deal custom field of a company.
func (s *Server) PutDealField(companyID string, f DealField) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Options, f.builtin = slices.Clone(f.Options), false
	s.company(companyID).fields[f.Key] = f
}

// FailDealFields answers the next len(faults) pages of GET
// /api/v2/dealFields with the faults, in order.
func (s *Server) FailDealFields(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dfFaults = append(s.dfFaults, faults...)
}

// BuiltinOrganizationFields are some of Pipedrive's own organization
// fields, listed before a company's custom fields.
var BuiltinOrganizationFields = []DealField{
	{Key: "name", Name: "Name", Type: "varchar", builtin: true},
	{Key: "owner_id", Name: "Owner", Type: "user", builtin: true},
	{Key: "address", Name: "Address", Type: "address", builtin: true},
	{Key: "label_ids", Name: "Labels", Type: "set", builtin: true},
}

// PutOrganizationField creates (or replaces) an organization custom field
// of a company (a DealField, as the API lists both alike).
func (s *Server) PutOrganizationField(companyID string, f DealField) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Options, f.builtin = slices.Clone(f.Options), false
	s.company(companyID).orgFields[f.Key] = f
}

// FailOrganizationFields answers the next len(faults) pages of GET
// /api/v2/organizationFields with the faults, in order.
func (s *Server) FailOrganizationFields(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ofFaults = append(s.ofFaults, faults...)
}

// answered is the field as the API lists it.
func (f DealField) answered() Record {
	if f.Type == "" {
		f.Type = "varchar"
	}
	if f.Name == "" {
		f.Name = "Field " + f.Key
	}
	var options any
	if f.Type == "enum" || f.Type == "set" {
		list := []any{}
		for i, o := range f.Options {
			list = append(list, map[string]any{"id": i + 1, "label": o, "color": nil})
		}
		options = list
	}
	return Record{"field_name": f.Name, "field_code": f.Key, "description": nil, "field_type": f.Type, "options": options,
		"subfields": nil, "is_custom_field": !f.builtin, "is_optional_response_field": false}
}

// dealFields answers GET /api/v2/dealFields: Pipedrive's own fields, then
// the company's custom fields by key, paged by limit (at most 500) and
// cursor.
func (s *Server) dealFields(w http.ResponseWriter, r *http.Request, c *company) {
	s.fieldList(w, r, &s.dfFaults, BuiltinDealFields, c.fields)
}

// organizationFields answers GET /api/v2/organizationFields as
// dealFields answers the deal fields.
func (s *Server) organizationFields(w http.ResponseWriter, r *http.Request, c *company) {
	s.fieldList(w, r, &s.ofFaults, BuiltinOrganizationFields, c.orgFields)
}

// fieldList answers a list of fields: builtin, then custom by key, paged
// by limit (at most 500, and DealFieldsPageSize) and cursor.
func (s *Server) fieldList(w http.ResponseWriter, r *http.Request, faults *[]Fault, builtin []DealField, custom map[string]DealField) {
	if answerFault(w, faults) {
		return
	}
	limit, ok := pageLimit(w, r.URL.Query())
	if !ok {
		return
	}
	limit = min(limit, s.DealFieldsPageSize)
	all := slices.Clone(builtin)
	for _, k := range slices.Sorted(maps.Keys(custom)) {
		all = append(all, custom[k])
	}
	answered := make([]any, len(all))
	for i, f := range all {
		answered[i] = f.answered()
	}
	writePage(w, r.URL.Query().Get("cursor"), limit, answered)
}

func idOf(r Record) string {
	switch v := r["id"].(type) {
	case json.Number:
		return v.String()
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	panic(fmt.Sprintf("pipedrivefake: record without id: %v", r))
}

// PutDeal stores (or replaces) a deal.
func (s *Server) PutDeal(companyID string, r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.company(companyID).deals[idOf(r)] = clone(r)
}

// DeleteDeal deletes a stored deal as Pipedrive does (DELETE
// /api/v2/deals/{id}, or a merge into another deal): it keeps it, with
// is_deleted true, for the deals lists with status=deleted only, and
// answers 404 for it (and its products and discounts) otherwise.
func (s *Server) DeleteDeal(companyID, dealID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.company(companyID)
	d, ok := c.deals[dealID]
	if !ok {
		panic("pipedrivefake: no deal " + dealID)
	}
	delete(c.deals, dealID)
	d["is_deleted"] = true
	c.deleted[dealID] = d
}

// ArchivedPatchError is the error text of the fake's refusal of a PATCH
// of an archived deal: the fake's own, not Pipedrive's (undocumented).
const ArchivedPatchError = "pipedrivefake: the deal is archived (Pipedrive's real answer is not documented)"

// ArchiveDeal archives a stored deal as a user does in Pipedrive:
// is_archived true and archive_time now. The deals list leaves it out,
// GET /api/v2/deals/archived lists it, GET /api/v2/deals/{id} answers it
// (with is_archived true) and a PATCH of it is refused
// (ArchivedPatchStatus).
func (s *Server) ArchiveDeal(companyID, dealID string) {
	s.setArchived(companyID, dealID, true, time.Now().UTC().Format(time.RFC3339))
}

// UnarchiveDeal undoes ArchiveDeal (a user's Unarchive in Pipedrive).
func (s *Server) UnarchiveDeal(companyID, dealID string) {
	s.setArchived(companyID, dealID, false, nil)
}

// setArchived sets a stored deal's is_archived and archive_time.
func (s *Server) setArchived(companyID, dealID string, archived bool, archiveTime any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.company(companyID).deals[dealID]
	if !ok {
		panic("pipedrivefake: no deal " + dealID)
	}
	d["is_archived"] = archived
	d["archive_time"] = archiveTime
}

// SetDealField changes a field of a stored deal (a user edit).
func (s *Server) SetDealField(companyID, dealID, field string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.company(companyID).deals[dealID]
	if !ok {
		panic("pipedrivefake: no deal " + dealID)
	}
	d[field] = v
}

// Deal returns a copy of a stored deal.
func (s *Server) Deal(companyID, dealID string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.company(companyID).deals[dealID]
	return clone(d), ok
}

// PutOrganization stores an organization.
func (s *Server) PutOrganization(companyID string, r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.company(companyID).orgs[idOf(r)] = clone(r)
}

// PutPerson stores a person (a contact person of a deal).
func (s *Server) PutPerson(companyID string, r Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.company(companyID).persons[idOf(r)] = clone(r)
}

// PutDealProducts replaces the products attached to a deal.
func (s *Server) PutDealProducts(companyID, dealID string, items ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(items))
	for i, r := range items {
		out[i] = clone(r)
	}
	s.company(companyID).items[dealID] = out
}

// PutDealDiscounts replaces the discounts on the whole deal (records
// with id, type "percentage" or "amount", amount and description).
func (s *Server) PutDealDiscounts(companyID, dealID string, discounts ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(discounts))
	for i, r := range discounts {
		out[i] = clone(r)
	}
	s.company(companyID).discounts[dealID] = out
}

// PutProducts stores catalogue products.
func (s *Server) PutProducts(companyID string, products ...Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.company(companyID)
	for _, p := range products {
		c.products[idOf(p)] = clone(p)
	}
}

// FailWriteBacks answers the next len(faults) deal PATCHes with the
// faults, in order, without changing the deal.
func (s *Server) FailWriteBacks(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wbFaults = append(s.wbFaults, faults...)
}

// WriteBacks counts the successful write-backs of a deal.
func (s *Server) WriteBacks(companyID, dealID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[companyID+"/"+dealID]
}

// WriteBackAttempts counts every PATCH of a deal, failed ones included.
func (s *Server) WriteBackAttempts(companyID, dealID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[companyID+"/"+dealID]
}

// TotalWriteBacks counts the successful write-backs of every deal.
func (s *Server) TotalWriteBacks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.writes {
		n += v
	}
	return n
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func clone(r Record) Record {
	if r == nil {
		return nil
	}
	b, _ := json.Marshal(r)
	return ParseRecord(string(b))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"success": false, "error": message,
		"error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.", "data": nil, "additional_data": nil})
}

func ok(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": data})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	token, auth := r.Header.Get("x-api-token"), r.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	companyID := ""
	if token != "" {
		companyID = s.tokens[token]
	} else if t, found := strings.CutPrefix(auth, "Bearer "); found {
		companyID = s.tokens[t]
	}
	s.requests = append(s.requests, Request{Company: companyID, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Token: token, Auth: auth, Body: body})
	if companyID == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "unauthorized access", "errorCode": 401,
			"error_info": "Please check developers.pipedrive.com for more information about Pipedrive API."})
		return
	}
	c := s.companies[companyID]
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "api" || parts[1] != "v2" {
		writeError(w, http.StatusNotFound, "Unknown method .")
		return
	}
	parts = parts[2:]
	switch {
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "deals":
		s.listDeals(w, r, c, false)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "deals" && parts[1] == "archived":
		s.listDeals(w, r, c, true)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "deals":
		if d, found := c.deals[parts[1]]; found {
			ok(w, dealAnswered(d))
		} else {
			writeError(w, http.StatusNotFound, "Deal not found")
		}
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "organizations":
		if o, found := c.orgs[parts[1]]; found {
			ok(w, o)
		} else {
			writeError(w, http.StatusNotFound, "Organization not found")
		}
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "persons":
		if p, found := c.persons[parts[1]]; found {
			ok(w, p)
		} else {
			writeError(w, http.StatusNotFound, "Person not found")
		}
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "deals" && parts[2] == "products":
		s.dealProducts(w, r, c, parts[1])
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "deals" && parts[2] == "discounts":
		if _, found := c.deals[parts[1]]; !found {
			writeError(w, http.StatusNotFound, "Deal not found")
			return
		}
		out := []Record{}
		for _, d := range c.discounts[parts[1]] {
			out = append(out, clone(d))
		}
		ok(w, out)
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "products":
		var out []any
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if p, found := c.products[id]; found {
				out = append(out, p)
			}
		}
		if out == nil {
			out = []any{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": out, "additional_data": map[string]any{"next_cursor": nil}})
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "dealFields":
		s.dealFields(w, r, c)
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "organizationFields":
		s.organizationFields(w, r, c)
	case r.Method == http.MethodPatch && len(parts) == 2 && parts[0] == "deals":
		s.patchDeal(w, c, companyID, parts[1], body)
	default:
		writeError(w, http.StatusNotFound, "Unknown method .")
	}
}

// listDeals answers GET /api/v2/deals (the deals not archived) and, with
// archived, GET /api/v2/deals/archived (those whose is_archived is true),
// with the filters ids, status (comma-separated; "deleted" gives the
// deleted deals, which no other status does) and updated_since (against a
// deal's update_time; a deal without one passes), sorted by id or by
// update_time, paged by limit (at most 500) and cursor.
func (s *Server) listDeals(w http.ResponseWriter, r *http.Request, c *company, archived bool) {
	q := r.URL.Query()
	limit, ok := pageLimit(w, q)
	if !ok {
		return
	}
	field := func(d Record, k string) string { v, _ := d[k].(string); return v }
	var ids, statuses []string
	if v := q.Get("ids"); v != "" {
		ids = strings.Split(v, ",")
	}
	if v := q.Get("status"); v != "" {
		statuses = strings.Split(v, ",")
	}
	var all []Record
	for _, d := range append(slices.Collect(maps.Values(c.deals)), slices.Collect(maps.Values(c.deleted))...) {
		if isArchived, _ := d["is_archived"].(bool); isArchived != archived {
			continue
		}
		if ids != nil && !slices.Contains(ids, idOf(d)) {
			continue
		}
		status := field(d, "status")
		if isDeleted, _ := d["is_deleted"].(bool); isDeleted {
			status = "deleted"
		}
		if (statuses != nil && !slices.Contains(statuses, status)) || (statuses == nil && status == "deleted") {
			continue
		}
		if since := q.Get("updated_since"); since != "" && field(d, "update_time") != "" && field(d, "update_time") < since {
			continue
		}
		all = append(all, d)
	}
	slices.SortFunc(all, func(a, b Record) int {
		if q.Get("sort_by") == "update_time" {
			if c := strings.Compare(field(a, "update_time"), field(b, "update_time")); c != 0 {
				return c
			}
		}
		ai, _ := strconv.Atoi(idOf(a))
		bi, _ := strconv.Atoi(idOf(b))
		return ai - bi
	})
	if q.Get("sort_direction") == "desc" {
		slices.Reverse(all)
	}
	items := make([]any, len(all))
	for i, d := range all {
		items[i] = dealAnswered(d)
	}
	writePage(w, q.Get("cursor"), limit, items)
}

// dealAnswered is a deal as API v2 answers it: with is_archived and
// archive_time, false and null unless seeded.
func dealAnswered(d Record) Record {
	if _, found := d["is_archived"]; found {
		if _, found := d["archive_time"]; found {
			return d
		}
	}
	out := maps.Clone(d)
	if _, found := out["is_archived"]; !found {
		out["is_archived"] = false
	}
	if _, found := out["archive_time"]; !found {
		out["archive_time"] = nil
	}
	return out
}

// pageLimit reads a list's limit (default 100, at most 500), answering 400
// for another.
func pageLimit(w http.ResponseWriter, q url.Values) (int, bool) {
	l := q.Get("limit")
	if l == "" {
		return 100, true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 500 {
		writeError(w, http.StatusBadRequest, "Validation failed: limit: Parameter must be an integer between 1 and 500")
		return 0, false
	}
	return n, true
}

// writePage answers the page of items that cursor ("": the first) and
// limit select, with the next page's cursor, or 400 for a cursor it did
// not give.
func writePage(w http.ResponseWriter, cursor string, limit int, items []any) {
	off := 0
	if cursor != "" {
		o, valid := offsetOf(cursor)
		if !valid {
			writeError(w, http.StatusBadRequest, "Invalid cursor")
			return
		}
		off = o
	}
	end := min(len(items), off+limit)
	page := append([]any{}, items[min(off, len(items)):end]...)
	var next *string
	if end < len(items) {
		n := cursorAt(end)
		next = &n
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": page, "additional_data": map[string]any{"next_cursor": next}})
}

// Cursors are base64url of {"id":<offset>}.
func cursorAt(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"id":%d}`, off)))
}

func offsetOf(cursor string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, false
	}
	var v struct {
		ID int `json:"id"`
	}
	if json.Unmarshal(b, &v) != nil || v.ID < 0 {
		return 0, false
	}
	return v.ID, true
}

func (s *Server) dealProducts(w http.ResponseWriter, r *http.Request, c *company, dealID string) {
	if _, found := c.deals[dealID]; !found {
		writeError(w, http.StatusNotFound, "Deal not found")
		return
	}
	size := s.ProductsPageSize
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && l < size {
		size = l
	}
	off := 0
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		o, valid := offsetOf(cur)
		if !valid {
			writeError(w, http.StatusBadRequest, "Invalid cursor")
			return
		}
		off = o
	}
	all := slices.Clone(c.items[dealID])
	sortBy := r.URL.Query().Get("sort_by")
	switch sortBy {
	case "", "id", "order_nr", "add_time", "update_time":
	default:
		writeError(w, http.StatusBadRequest, "Validation failed: sort_by: must be one of id, add_time, update_time, order_nr")
		return
	}
	num := func(it Record, k string) float64 {
		f, _ := strconv.ParseFloat(fmt.Sprint(it[k]), 64)
		return f
	}
	slices.SortStableFunc(all, func(a, b Record) int {
		var o int
		switch sortBy {
		case "order_nr":
			o = cmp.Compare(num(a, "order_nr"), num(b, "order_nr"))
		case "add_time", "update_time":
			o = strings.Compare(fmt.Sprint(a[sortBy]), fmt.Sprint(b[sortBy]))
		}
		if o == 0 {
			o = cmp.Compare(num(a, "id"), num(b, "id"))
		}
		return o
	})
	if r.URL.Query().Get("sort_direction") == "desc" {
		slices.Reverse(all)
	}
	end := min(len(all), off+size)
	page := []any{}
	cur, _ := c.deals[dealID]["currency"].(string)
	for _, it := range all[min(off, len(all)):end] {
		page = append(page, asAnswered(it, c.taxOpt, cur))
	}
	var next *string
	if end < len(all) {
		n := cursorAt(end)
		next = &n
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": page, "additional_data": map[string]any{"next_cursor": next}})
}

// asAnswered is a deal product as the API answers it, with what a product
// seeded without them gets: "tax" 0, "tax_method" the company's option,
// "discount_type" percentage, "is_enabled" true, the deal's "currency",
// and "sum", the line's total: quantity × item_price less its discount
// (an amount off the line, or a percentage), unrounded, without tax. A
// seeded sum or currency is kept, for tests of a line Pipedrive totals
// otherwise.
func asAnswered(it Record, option, dealCurrency string) Record {
	out := clone(it)
	if v, found := out["tax"]; !found || v == nil {
		out["tax"] = json.Number("0")
	}
	if v, _ := out["tax_method"].(string); v == "" {
		out["tax_method"] = option
	}
	if v, _ := out["discount_type"].(string); v == "" {
		out["discount_type"] = "percentage"
	}
	if _, found := out["is_enabled"]; !found {
		out["is_enabled"] = true
	}
	if _, found := out["currency"]; !found && dealCurrency != "" {
		out["currency"] = strings.ToUpper(dealCurrency)
	}
	if _, found := out["sum"]; !found {
		num := func(k string) decimal.Decimal {
			d, _ := decimal.NewFromString(fmt.Sprint(out[k]))
			return d
		}
		gross := num("quantity").Mul(num("item_price"))
		off := num("discount")
		if out["discount_type"] == "percentage" {
			off = gross.Mul(off).Shift(-2)
		}
		out["sum"] = json.Number(gross.Sub(off).String())
	}
	return out
}

func (s *Server) patchDeal(w http.ResponseWriter, c *company, companyID, dealID string, body []byte) {
	key := companyID + "/" + dealID
	s.attempts[key]++
	if answerFault(w, &s.wbFaults) {
		return
	}
	d, found := c.deals[dealID]
	if !found {
		writeError(w, http.StatusNotFound, "Deal not found")
		return
	}
	if archived, _ := d["is_archived"].(bool); archived {
		writeError(w, s.ArchivedPatchStatus, ArchivedPatchError)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid JSON body")
		return
	}
	cf, _ := in["custom_fields"].(map[string]any)
	existing, _ := d["custom_fields"].(map[string]any)
	for k, v := range cf {
		f, defined := c.fields[k]
		if _, known := existing[k]; !known && !defined {
			writeError(w, http.StatusBadRequest, "Invalid custom field value for '"+k+"'")
			return
		}
		if _, isText := v.(string); defined && isText && f.Type != "" && f.Type != "varchar" && f.Type != "varchar_auto" && f.Type != "text" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid custom field value for '%s': a field of type %s does not take text", k, f.Type))
			return
		}
	}
	if existing == nil {
		existing = map[string]any{}
	}
	for k, v := range cf {
		existing[k] = v
	}
	d["custom_fields"] = existing
	for k, v := range in {
		if k != "custom_fields" {
			d[k] = v
		}
	}
	s.writes[key]++
	ok(w, d)
}

// answerFault answers the first of faults, if any, and drops it: its
// Retry-After, its body or an error envelope naming its status.
func answerFault(w http.ResponseWriter, faults *[]Fault) bool {
	if len(*faults) == 0 {
		return false
	}
	f := (*faults)[0]
	*faults = (*faults)[1:]
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return true
	}
	writeError(w, f.Status, fmt.Sprintf("injected fault %d", f.Status))
	return true
}
