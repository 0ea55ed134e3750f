// Package hubspotfake is a local stand-in for the parts of HubSpot's CRM
// API that the hubspot source uses, following HubSpot's documented
// answers. It serves HubSpot's date-versioned CRM APIs, version
// APIVersion (a deal is named by its object type id 0-3, as HubSpot's
// deals spec names it, or by "deals", as HubSpot also takes it):
// private-app bearer tokens per portal (401 INVALID_AUTHENTICATION
// otherwise), GET /crm/objects/2026-03/0-3/{id} with embedded associations
// (paged past SetEmbeddedAssociationLimit), POST
// /crm/objects/2026-03/{companies,line_items}/batch/read, GET
// /crm/objects/2026-03/0-3/{id}/associations/{companies,line_items} (the
// associations API, paged by limit and after), GET
// /crm/pipelines/2026-03/deals (a new portal has HubSpot's default "Sales
// Pipeline"; a merged-away deal's id answers with the deal it was merged
// into: MergeDeal; a deleted deal is kept archived and answered only to
// archived=true, which answers archived deals only: DeleteDeal), POST
// /crm/objects/2026-03/0-3/search (filters EQ, IN, GT, GTE, LT, LTE;
// hs_is_closed_won computed from the pipelines, hs_object_id the deal's
// id, hs_lastmodifieddate what the test stored: the fake does not stamp
// it; sorted, paged with `after` up to HubSpot's 10,000 results:
// SetSearchLimit), PATCH /crm/objects/2026-03/0-3/{id}, which updates the
// stored deal (400 PROPERTY_DOESNT_EXIST for a property the portal does
// not have; for one it defines, 400 READ_ONLY_VALUE when its value is
// read-only, INVALID_OPTION for a value an enumeration does not have,
// INVALID_VALUE for text in a number, bool or date), and GET
// /crm/properties/2026-03/deals/{propertyName}, a deal property's
// definition (the portal's own, AddDealProperties and PutDealProperty,
// and some of HubSpot's, BuiltinDealProperties; 404 for another;
// FailProperties). Unknown objects are 404 OBJECT_NOT_FOUND.
//
// HubSpot's legacy CRM APIs (/crm/v3/…, /crm/v4/…), which HubSpot stops
// supporting in 2027, are refused with a 404 that names them, and listed
// by LegacyRequests: a test fails when the source calls one.
//
// Tests seed portals, deals, companies and line items, inject failures of
// the write-backs and read what was asked and written. It is safe for
// concurrent use; the package tests and the end-to-end tests share it.
package hubspotfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the version of HubSpot's date-versioned CRM APIs the fake
// serves.
const APIVersion = "2026-03"

// pipelinesPath is the deal pipelines' read.
const pipelinesPath = "/crm/pipelines/" + APIVersion + "/deals"

// DefaultWriteBackProperties are the deal properties a new portal has
// besides HubSpot's own: the hubspot source's default write-back names.
var DefaultWriteBackProperties = []string{"erp_invoice_id", "erp_invoice_number", "erp_invoice_url", "erp_sync_status"}

// DealProperty is a deal property's definition, as the properties API
// answers it (GET /crm/properties/2026-03/deals/{propertyName}).
type DealProperty struct {
	Name string
	// Type and FieldType: "string" and "text" (single-line text) when
	// empty. An enumeration's option values are Options.
	Type, FieldType string
	Options         []string
	// ReadOnly is modificationMetadata.readOnlyValue: a PATCH of the
	// property is refused. Calculated is a value HubSpot computes.
	ReadOnly, Calculated bool
	// HubSpotDefined: one of HubSpot's default properties.
	HubSpotDefined bool
}

// BuiltinDealProperties are some of HubSpot's default deal properties,
// which every portal has.
var BuiltinDealProperties = []DealProperty{
	{Name: "dealname", Type: "string", FieldType: "text", HubSpotDefined: true},
	{Name: "amount", Type: "number", FieldType: "number", HubSpotDefined: true},
	{Name: "closedate", Type: "datetime", FieldType: "date", HubSpotDefined: true},
	{Name: "dealstage", Type: "enumeration", FieldType: "radio", HubSpotDefined: true},
	{Name: "pipeline", Type: "enumeration", FieldType: "select", HubSpotDefined: true},
	{Name: "hubspot_owner_id", Type: "enumeration", FieldType: "select", HubSpotDefined: true},
	{Name: "description", Type: "string", FieldType: "textarea", HubSpotDefined: true},
	{Name: "deal_currency_code", Type: "enumeration", FieldType: "select", Options: []string{"EUR", "USD", "GBP"}, HubSpotDefined: true},
	{Name: "hs_object_id", Type: "number", FieldType: "number", ReadOnly: true, HubSpotDefined: true},
	{Name: "hs_is_closed_won", Type: "bool", FieldType: "booleancheckbox", ReadOnly: true, Calculated: true, HubSpotDefined: true},
	{Name: "createdate", Type: "datetime", FieldType: "date", ReadOnly: true, HubSpotDefined: true},
	{Name: "hs_lastmodifieddate", Type: "datetime", FieldType: "date", ReadOnly: true, HubSpotDefined: true},
}

// Association is one associated object as embedded in a deal answer.
// Type is HubSpot's label: "deal_to_company" for the primary company,
// "deal_to_company_unlabeled" for others, "deal_to_line_item".
type Association struct {
	ID   string
	Type string
}

// Deal is a deal as the fake stores it. A property set to nil is answered
// as JSON null.
type Deal struct {
	ID         string
	Properties map[string]*string
	Companies  []Association
	LineItems  []Association
}

// Object is a company or line item.
type Object struct {
	ID         string
	Properties map[string]*string
}

// Props builds a property map of strings.
func Props(kv ...string) map[string]*string {
	m := make(map[string]*string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		m[kv[i]] = &v
	}
	return m
}

// Pipeline is a deal pipeline as GET /crm/pipelines/2026-03/deals answers it.
type Pipeline struct {
	ID     string
	Label  string
	Stages []Stage
}

// Stage is a pipeline stage; HubSpot gives its metadata as strings:
// IsClosed "true"/"false", Probability "0.0" to "1.0".
type Stage struct {
	ID, Label             string
	IsClosed, Probability string
}

// DefaultPipeline is the pipeline every portal starts with.
var DefaultPipeline = Pipeline{ID: "default", Label: "Sales Pipeline", Stages: []Stage{
	{"appointmentscheduled", "Appointment Scheduled", "false", "0.2"},
	{"qualifiedtobuy", "Qualified To Buy", "false", "0.4"},
	{"presentationscheduled", "Presentation Scheduled", "false", "0.6"},
	{"decisionmakerboughtin", "Decision Maker Bought-In", "false", "0.8"},
	{"contractsent", "Contract Sent", "false", "0.9"},
	{"closedwon", "Closed Won", "true", "1.0"},
	{"closedlost", "Closed Lost", "true", "0.0"},
}}

// Request is one API request as received.
type Request struct {
	Portal      string // the portal the token belongs to ("" if none)
	Method      string
	Path        string
	Query       string
	Auth        string
	ContentType string
	Body        []byte
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
	RetryAfter string // Retry-After header
	Body       string // default: a HubSpot error body for Status
}

type portal struct {
	deals map[string]*Deal
	// archived are the deleted deals, in HubSpot's recycling bin.
	archived  map[string]*Deal
	merged    map[string]string // merged-away deal id → the deal it was merged into
	companies map[string]*Object
	items     map[string]*Object
	// props are the portal's own deal properties (besides
	// BuiltinDealProperties).
	props     map[string]DealProperty
	pipelines []Pipeline
}

// Server is a fake HubSpot API. Create it with New.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	tokens   map[string]string // access token → portal id
	portals  map[string]*portal
	requests []Request
	// writes counts successful write-backs per deal (portal/deal).
	writes   map[string]int
	attempts map[string]int
	wbFaults []Fault
	plFaults []Fault
	srFaults []Fault
	prFaults []Fault
	// searchLimit is how many results a search pages through with
	// `after` (HubSpot: 10,000).
	searchLimit int
	// embedLimit is how many associations of each type a deal's GET
	// embeds before it pages (0: all).
	embedLimit int
	// readHook, if set, runs during each GET of a deal (SetDealReadHook).
	readHook func(dealID string)
	// pipelinesHook, if set, runs before each GET of the pipelines
	// (SetPipelinesReadHook).
	pipelinesHook func(ctx context.Context)
}

// SetPipelinesReadHook sets a function that runs before each GET of the
// deal pipelines is answered, without the fake's lock, with the request's
// context (done when the client gives up). Tests use it to hold a read.
func (s *Server) SetPipelinesReadHook(h func(ctx context.Context)) {
	s.mu.Lock()
	s.pipelinesHook = h
	s.mu.Unlock()
}

// SetDealReadHook sets a function that runs during each GET of a deal: after
// the answer is made, before it is sent, without the fake's lock (so that
// it may call the fake, or send a webhook whose handling reads from it).
// Tests use it to act while the CRM is being read.
func (s *Server) SetDealReadHook(h func(dealID string)) {
	s.mu.Lock()
	s.readHook = h
	s.mu.Unlock()
}

// New starts a fake HubSpot with no portals.
func New() *Server {
	s := &Server{
		tokens:      map[string]string{},
		portals:     map[string]*portal{},
		writes:      map[string]int{},
		attempts:    map[string]int{},
		searchLimit: 10000,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AddPortal adds a portal reached with the private-app token.
func (s *Server) AddPortal(portalID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = portalID
	s.portal(portalID)
}

func (s *Server) portal(id string) *portal {
	p, ok := s.portals[id]
	if !ok {
		p = &portal{deals: map[string]*Deal{}, archived: map[string]*Deal{}, merged: map[string]string{}, companies: map[string]*Object{}, items: map[string]*Object{}, props: map[string]DealProperty{},
			pipelines: []Pipeline{DefaultPipeline}}
		for _, n := range DefaultWriteBackProperties {
			p.props[n] = DealProperty{Name: n}
		}
		s.portals[id] = p
	}
	return p
}

// AddDealProperties makes custom deal properties writable in a portal:
// single-line text.
func (s *Server) AddDealProperties(portalID string, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portal(portalID)
	for _, n := range names {
		p.props[n] = DealProperty{Name: n}
	}
}

// PutDealProperty defines (or redefines) a custom deal property of a
// portal.
func (s *Server) PutDealProperty(portalID string, d DealProperty) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.Options = slices.Clone(d.Options)
	s.portal(portalID).props[d.Name] = d
}

// DeleteDealProperty removes a custom deal property of a portal (one of
// DefaultWriteBackProperties, say).
func (s *Server) DeleteDealProperty(portalID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.portal(portalID).props, name)
}

// property is the definition of a deal property of the portal.
func (p *portal) property(name string) (DealProperty, bool) {
	if d, ok := p.props[name]; ok {
		return d, true
	}
	for _, d := range BuiltinDealProperties {
		if d.Name == name {
			return d, true
		}
	}
	return DealProperty{}, false
}

// FailProperties answers the next len(faults) reads of a property
// definition with the faults, in order.
func (s *Server) FailProperties(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prFaults = append(s.prFaults, faults...)
}

// PutDeal stores (or replaces) a deal of a portal; an archived deal of
// that id is no longer archived (restored).
func (s *Server) PutDeal(portalID string, d Deal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cloneDeal(d)
	p := s.portal(portalID)
	p.deals[d.ID] = &c
	delete(p.archived, d.ID)
}

// DeleteDeal deletes a stored deal as HubSpot's DELETE (archive) does: it
// goes to the recycling bin, where GET of its id answers 404 unless asked
// with archived=true, and searches, batch reads and write-backs no longer
// find it.
func (s *Server) DeleteDeal(portalID, dealID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portal(portalID)
	d, ok := p.deals[dealID]
	if !ok {
		panic("hubspotfake: no deal " + dealID + " in portal " + portalID)
	}
	delete(p.deals, dealID)
	p.archived[dealID] = d
}

// RestoreDeal restores a deleted deal from the recycling bin, as HubSpot's
// restore does: it keeps its id and properties.
func (s *Server) RestoreDeal(portalID, dealID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portal(portalID)
	d, ok := p.archived[dealID]
	if !ok {
		panic("hubspotfake: no deleted deal " + dealID + " in portal " + portalID)
	}
	delete(p.archived, dealID)
	p.deals[dealID] = d
}

// MergeDeal merges deal from into deal into, as HubSpot's merge does: from
// is no longer stored, and GET of its id answers with deal into (its own
// id), as HubSpot answers a merged-away id.
func (s *Server) MergeDeal(portalID, from, into string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portal(portalID)
	delete(p.deals, from)
	p.merged[from] = into
}

// SetDealProperty changes one property of a stored deal (a user edit).
func (s *Server) SetDealProperty(portalID, dealID, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.portal(portalID).deals[dealID]
	if !ok {
		panic("hubspotfake: no deal " + dealID + " in portal " + portalID)
	}
	d.Properties[name] = &value
}

// Deal returns a copy of a stored deal.
func (s *Server) Deal(portalID, dealID string) (Deal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.portal(portalID).deals[dealID]
	if !ok {
		return Deal{}, false
	}
	return cloneDeal(*d), true
}

// PutCompany and PutLineItem store objects of a portal.
func (s *Server) PutCompany(portalID string, o Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cloneObject(o)
	s.portal(portalID).companies[o.ID] = &c
}

func (s *Server) PutLineItem(portalID string, o Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cloneObject(o)
	s.portal(portalID).items[o.ID] = &c
}

// AddPipeline adds a deal pipeline (a custom one) to a portal.
func (s *Server) AddPipeline(portalID string, pl Pipeline) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.portal(portalID)
	p.pipelines = append(p.pipelines, pl)
}

// FailPipelines answers the next len(faults) pipeline reads with the
// faults, in order.
func (s *Server) FailPipelines(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plFaults = append(s.plFaults, faults...)
}

// SetEmbeddedAssociationLimit sets how many associations of each type
// (companies, line items) the GET of a deal embeds: a deal with more has
// the first n with a paging.next cursor, as HubSpot pages the embedded
// lists, and the rest is read through the associations API. 0 (the
// default) embeds them all.
func (s *Server) SetEmbeddedAssociationLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embedLimit = n
}

// SetSearchLimit sets how many results of one search its `after` cursor
// pages through (HubSpot's 10,000 at first): a page asked for at or past
// it is answered 400, as HubSpot answers it, and the last page before it
// has no next.
func (s *Server) SetSearchLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searchLimit = n
}

// FailSearches answers the next len(faults) deal searches with the
// faults, in order.
func (s *Server) FailSearches(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srFaults = append(s.srFaults, faults...)
}

// FailWriteBacks answers the next len(faults) deal PATCHes (of any deal)
// with the faults, in order; the deal is not changed by them.
func (s *Server) FailWriteBacks(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wbFaults = append(s.wbFaults, faults...)
}

// ClearWriteBackFaults drops the write-back faults not yet answered (the
// CRM is back) and says how many there were.
func (s *Server) ClearWriteBackFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.wbFaults)
	s.wbFaults = nil
	return n
}

// WriteBacks counts the successful write-backs (PATCHes) of a deal.
func (s *Server) WriteBacks(portalID, dealID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[portalID+"/"+dealID]
}

// WriteBackAttempts counts every PATCH of a deal, failed ones included.
func (s *Server) WriteBackAttempts(portalID, dealID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[portalID+"/"+dealID]
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

// Requests returns the requests received so far, in order.
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

// LegacyRequests returns the requests received on HubSpot's legacy CRM
// APIs (/crm/v3/…, /crm/v4/…), which the fake refuses.
func (s *Server) LegacyRequests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if isLegacy(r.Path) {
			out = append(out, r)
		}
	}
	return out
}

// isLegacy reports whether path is on one of HubSpot's legacy CRM APIs.
func isLegacy(path string) bool {
	return strings.HasPrefix(path, "/crm/v3/") || strings.HasPrefix(path, "/crm/v4/")
}

// Count counts recorded requests with method whose path starts with prefix.
func (s *Server) Count(method, prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func cloneProps(m map[string]*string) map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		if v != nil {
			c := *v
			v = &c
		}
		out[k] = v
	}
	return out
}

func cloneDeal(d Deal) Deal {
	d.Properties = cloneProps(d.Properties)
	d.Companies = slices.Clone(d.Companies)
	d.LineItems = slices.Clone(d.LineItems)
	return d
}

func cloneObject(o Object) Object {
	o.Properties = cloneProps(o.Properties)
	return o
}

const timestamp = "2026-01-01T00:00:00.000Z"

// objectJSON is an object as the objects API answers it.
func objectJSON(id string, props map[string]*string, only []string) map[string]any {
	p := map[string]any{}
	for k, v := range props {
		if only != nil && !slices.Contains(only, k) {
			continue
		}
		if v == nil {
			p[k] = nil
		} else {
			p[k] = *v
		}
	}
	p["hs_object_id"] = id
	return map[string]any{"id": id, "properties": p, "createdAt": timestamp, "updatedAt": timestamp, "archived": false}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, category, message string) {
	writeJSON(w, status, map[string]any{"status": "error", "message": message,
		"correlationId": "3a1f0d7e-0000-4000-8000-000000000000", "category": category})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hook, plHook := s.readHook, s.pipelinesHook
	s.mu.Unlock()
	if plHook != nil && r.Method == http.MethodGet && r.URL.Path == pipelinesPath {
		plHook(r.Context())
	}
	e := route(r.URL.Path)
	if hook == nil || r.Method != http.MethodGet || e.api != "objects" || len(e.rest) != 2 || !isDeals(e.rest[0]) {
		s.handle(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.handle(rec, r)
	hook(e.rest[1])
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	portalID := s.tokens[strings.TrimPrefix(auth, "Bearer ")]
	if !strings.HasPrefix(auth, "Bearer ") {
		portalID = ""
	}
	s.requests = append(s.requests, Request{Portal: portalID, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Auth: auth, ContentType: r.Header.Get("Content-Type"), Body: body})
	if portalID == "" {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication.")
		return
	}
	if isLegacy(r.URL.Path) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "hubspotfake: "+r.Method+" "+r.URL.Path+" is on HubSpot's legacy CRM APIs (v3, v4 associations), "+
			"which HubSpot stops supporting in 2027: the fake serves the "+APIVersion+" APIs only")
		return
	}
	p := s.portals[portalID]
	e := route(r.URL.Path)
	m := r.Method
	switch {
	case e.api == "properties" && m == http.MethodGet && len(e.rest) == 2 && e.rest[0] == "deals":
		s.dealProperty(w, p, e.rest[1])
	case e.api == "pipelines" && m == http.MethodGet && len(e.rest) == 1 && e.rest[0] == "deals":
		s.pipelines(w, p)
	case e.api == "objects" && m == http.MethodPost && len(e.rest) == 3 && e.rest[1] == "batch" && e.rest[2] == "read":
		s.batchRead(w, p, e.rest[0], body)
	case e.api == "objects" && m == http.MethodPost && len(e.rest) == 2 && isDeals(e.rest[0]) && e.rest[1] == "search":
		s.search(w, p, body)
	case e.api == "objects" && m == http.MethodGet && len(e.rest) == 2 && isDeals(e.rest[0]):
		s.getDeal(w, r, p, e.rest[1])
	case e.api == "objects" && m == http.MethodPatch && len(e.rest) == 2 && isDeals(e.rest[0]):
		s.patchDeal(w, p, portalID, e.rest[1], body)
	case e.api == "objects" && m == http.MethodGet && len(e.rest) == 4 && isDeals(e.rest[0]) && e.rest[2] == "associations":
		s.associations(w, r, p, e.rest[1], e.rest[3])
	default:
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "unexpected request "+r.Method+" "+r.URL.Path)
	}
}

// endpoint is a path of the date-versioned APIs, /crm/{api}/{version}/{rest…}.
type endpoint struct {
	api  string // objects, properties, pipelines; "" for another path
	rest []string
}

// route splits a path of the APIVersion APIs; another path is endpoint{}.
func route(path string) endpoint {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 4 || parts[0] != "crm" || parts[2] != APIVersion {
		return endpoint{}
	}
	return endpoint{api: parts[1], rest: parts[3:]}
}

// isDeals reports whether an object type in a path is the deal's: its
// object type id 0-3 (as HubSpot's deals spec names it) or its name.
func isDeals(objectType string) bool {
	return objectType == "0-3" || objectType == "deals"
}

func notFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"status": "error", "message": "Object not found.  objectId are usually numeric.",
		"correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "context": map[string]any{"id": []string{id}}, "category": "OBJECT_NOT_FOUND"})
}

func (s *Server) getDeal(w http.ResponseWriter, r *http.Request, p *portal, id string) {
	if into, merged := p.merged[id]; merged {
		id = into
	}
	// archived=true answers archived objects only, archived=false (the
	// default) the others only.
	archived := r.URL.Query().Get("archived") == "true"
	store := p.deals
	if archived {
		store = p.archived
	}
	d, ok := store[id]
	if !ok {
		notFound(w, id)
		return
	}
	var only []string
	if v := r.URL.Query().Get("properties"); v != "" {
		only = strings.Split(v, ",")
	}
	out := objectJSON(d.ID, d.Properties, only)
	if archived {
		out["archived"], out["archivedAt"] = true, timestamp
	}
	assocs := map[string]any{}
	for _, want := range strings.Split(r.URL.Query().Get("associations"), ",") {
		var list []Association
		name := want
		switch want {
		case "companies":
			list = d.Companies
		case "line_items":
			// The objects API names this association "line items" in its answer.
			list, name = d.LineItems, "line items"
		default:
			continue
		}
		if len(list) == 0 {
			continue
		}
		embedded := map[string]any{}
		if s.embedLimit > 0 && len(list) > s.embedLimit {
			list = list[:s.embedLimit]
			after := strconv.Itoa(s.embedLimit)
			embedded["paging"] = map[string]any{"next": map[string]any{"after": after,
				"link": "?after=" + after}}
		}
		results := make([]map[string]string, len(list))
		for i, a := range list {
			results[i] = map[string]string{"id": a.ID, "type": a.Type}
		}
		embedded["results"] = results
		assocs[name] = embedded
	}
	if len(assocs) > 0 {
		out["associations"] = assocs
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) batchRead(w http.ResponseWriter, p *portal, typ string, body []byte) {
	var in struct {
		Properties            []string            `json:"properties"`
		PropertiesWithHistory *[]string           `json:"propertiesWithHistory"`
		Inputs                []map[string]string `json:"inputs"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.PropertiesWithHistory == nil || in.Inputs == nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: inputs, properties and propertiesWithHistory are required")
		return
	}
	var store map[string]*Object
	switch typ {
	case "companies":
		store = p.companies
	case "line_items":
		store = p.items
	case "deals", "0-3":
		store = map[string]*Object{}
		for id, d := range p.deals {
			store[id] = &Object{ID: id, Properties: d.Properties}
		}
	default:
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+typ)
		return
	}
	// HubSpot does not keep the order of the inputs: answer in reverse.
	results := []any{}
	var missing []string
	for i := len(in.Inputs) - 1; i >= 0; i-- {
		id := in.Inputs[i]["id"]
		o, ok := store[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		results = append(results, objectJSON(o.ID, o.Properties, in.Properties))
	}
	out := map[string]any{"status": "COMPLETE", "results": results,
		"startedAt": "2026-11-20T23:15:02.000Z", "completedAt": "2026-11-20T23:15:02.050Z"}
	status := http.StatusOK
	if len(missing) > 0 {
		status = http.StatusMultiStatus
		out["numErrors"] = 1
		out["errors"] = []any{map[string]any{"status": "error", "category": "OBJECT_NOT_FOUND",
			"message": "Could not get some " + typ + " objects, they may be deleted or not exist.", "context": map[string]any{"ids": missing}}}
	}
	writeJSON(w, status, out)
}

// associations answers GET /crm/objects/2026-03/0-3/{id}/associations/{type}
// (the associations API), limit (default and most 500) associations a page
// from the `after` cursor (an offset here, opaque to clients).
func (s *Server) associations(w http.ResponseWriter, r *http.Request, p *portal, dealID, typ string) {
	d, ok := p.deals[dealID]
	if !ok {
		notFound(w, dealID)
		return
	}
	var list []Association
	switch typ {
	case "companies":
		list = d.Companies
	case "line_items":
		list = d.LineItems
	default:
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "unknown object type "+typ)
		return
	}
	limit, from := 500, 0
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 && v < limit {
		limit = v
	}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > len(list) {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "invalid paging cursor "+v)
			return
		}
		from = n
	}
	page := list[from:min(from+limit, len(list))]
	results := []any{}
	for _, a := range page {
		types := []any{map[string]any{"category": "HUBSPOT_DEFINED", "typeId": typeID(a.Type), "label": nil}}
		if a.Type == "deal_to_company" {
			types = append(types, map[string]any{"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"})
		}
		n, _ := strconv.ParseInt(a.ID, 10, 64)
		results = append(results, map[string]any{"toObjectId": n, "associationTypes": types})
	}
	out := map[string]any{"results": results}
	if next := from + len(page); next < len(list) {
		after := strconv.Itoa(next)
		out["paging"] = map[string]any{"next": map[string]any{"after": after,
			"link": s.URL + r.URL.Path + "?after=" + after}}
	}
	writeJSON(w, http.StatusOK, out)
}

func typeID(t string) int {
	if strings.HasPrefix(t, "deal_to_company") {
		return 341
	}
	return 19
}

// fail answers with the next of faults, if any, and reports whether it did.
func fail(w http.ResponseWriter, faults *[]Fault) bool {
	if len(*faults) == 0 {
		return false
	}
	f := (*faults)[0]
	*faults = (*faults)[1:]
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return true
	}
	writeError(w, f.Status, "INTERNAL_ERROR", fmt.Sprintf("injected fault %d", f.Status))
	return true
}

// pipelines answers GET /crm/pipelines/2026-03/deals as HubSpot documents
// it (the 2026-03 spec requires a stage's writePermissions).
func (s *Server) pipelines(w http.ResponseWriter, p *portal) {
	if fail(w, &s.plFaults) {
		return
	}
	results := make([]map[string]any, 0, len(p.pipelines))
	for i, pl := range p.pipelines {
		stages := make([]map[string]any, 0, len(pl.Stages))
		for j, st := range pl.Stages {
			stages = append(stages, map[string]any{"id": st.ID, "label": st.Label, "displayOrder": j,
				"metadata":  map[string]string{"isClosed": st.IsClosed, "probability": st.Probability},
				"createdAt": "2026-01-05T10:00:00Z", "updatedAt": "2026-01-05T10:00:00Z", "archived": false,
				"writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"})
		}
		results = append(results, map[string]any{"id": pl.ID, "label": pl.Label, "displayOrder": i, "stages": stages,
			"createdAt": "2026-01-05T10:00:00Z", "updatedAt": "2026-01-05T10:00:00Z", "archived": false})
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (s *Server) patchDeal(w http.ResponseWriter, p *portal, portalID, id string, body []byte) {
	key := portalID + "/" + id
	s.attempts[key]++
	if fail(w, &s.wbFaults) {
		return
	}
	d, ok := p.deals[id]
	if !ok {
		notFound(w, id)
		return
	}
	var in struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Properties == nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: properties is required")
		return
	}
	names := make([]string, 0, len(in.Properties))
	for k := range in.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		def, defined := p.property(k)
		if _, known := d.Properties[k]; !known && !defined {
			msg := fmt.Sprintf(`Property values were not valid: [{"isValid":false,"message":"Property \"%s\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"%s","localizedErrorMessage":"Property \"%s\" does not exist"}]`, k, k, k)
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", msg)
			return
		}
		v, isString := in.Properties[k].(string)
		if !isString {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property values were not valid: property %q must be a string", k))
			return
		}
		if why, code := def.refuses(v); defined && why != "" {
			msg := fmt.Sprintf(`Property values were not valid: [{"isValid":false,"message":%q,"error":%q,"name":%q}]`, why, code, k)
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", msg)
			return
		}
	}
	for _, k := range names {
		v := in.Properties[k].(string)
		d.Properties[k] = &v
	}
	s.writes[key]++
	writeJSON(w, http.StatusOK, objectJSON(d.ID, d.Properties, nil))
}

// search answers POST /crm/objects/2026-03/0-3/search: the deals matching any
// filter group (all filters of a group), sorted, a page of `limit` after
// the `after` cursor (an offset here, opaque to clients), up to the search
// limit.
func (s *Server) search(w http.ResponseWriter, p *portal, body []byte) {
	if fail(w, &s.srFaults) {
		return
	}
	var in struct {
		FilterGroups []struct {
			Filters []struct {
				PropertyName string   `json:"propertyName"`
				Operator     string   `json:"operator"`
				Value        string   `json:"value"`
				Values       []string `json:"values"`
			} `json:"filters"`
		} `json:"filterGroups"`
		Properties []string `json:"properties"`
		Sorts      []struct {
			PropertyName string `json:"propertyName"`
			Direction    string `json:"direction"`
		} `json:"sorts"`
		Limit int    `json:"limit"`
		After string `json:"after"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1: "+err.Error())
		return
	}
	if in.Limit > 200 || len(in.FilterGroups) > 5 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit is at most 200 and filterGroups at most 5")
		return
	}
	if in.Limit <= 0 {
		in.Limit = 10
	}
	won := map[string]bool{}
	for _, pl := range p.pipelines {
		for _, st := range pl.Stages {
			pr, _ := strconv.ParseFloat(st.Probability, 64)
			won[st.ID] = st.IsClosed == "true" && pr >= 1
		}
	}
	value := func(d *Deal, name string) string {
		switch name {
		case "hs_is_closed_won":
			return strconv.FormatBool(d.Properties["dealstage"] != nil && won[*d.Properties["dealstage"]])
		case "hs_object_id":
			return d.ID
		}
		if v := d.Properties[name]; v != nil {
			return *v
		}
		return ""
	}
	var matched []*Deal
	for _, d := range p.deals {
		for _, g := range in.FilterGroups {
			ok := true
			for _, f := range g.Filters {
				v := value(d, f.PropertyName)
				switch f.Operator {
				case "EQ":
					ok = ok && strings.EqualFold(v, f.Value)
				case "IN":
					ok = ok && slices.Contains(f.Values, v)
				case "GT", "GTE", "LT", "LTE":
					a, b := sortable(v), sortable(f.Value)
					ok = ok && v != "" && map[string]bool{"GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}[f.Operator]
				default:
					writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "the fake does not know the operator "+f.Operator)
					return
				}
			}
			if ok {
				matched = append(matched, d)
				break
			}
		}
	}
	sort.Slice(matched, func(i, j int) bool {
		for _, srt := range in.Sorts {
			a, b := sortable(value(matched[i], srt.PropertyName)), sortable(value(matched[j], srt.PropertyName))
			if a != b {
				return (a < b) == (srt.Direction != "DESCENDING")
			}
		}
		return matched[i].ID < matched[j].ID
	})
	from, _ := strconv.Atoi(in.After)
	if from >= s.searchLimit {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR",
			fmt.Sprintf("The search API pages through at most %d results; after %d is past them", s.searchLimit, from))
		return
	}
	from = min(max(from, 0), len(matched))
	end := min(len(matched), s.searchLimit)
	to := min(from+in.Limit, end)
	results := make([]map[string]any, 0, to-from)
	for _, d := range matched[from:to] {
		results = append(results, objectJSON(d.ID, d.Properties, in.Properties))
	}
	out := map[string]any{"total": len(matched), "results": results}
	if to < end {
		out["paging"] = map[string]any{"next": map[string]any{"after": strconv.Itoa(to), "link": "?after=" + strconv.Itoa(to)}}
	}
	writeJSON(w, http.StatusOK, out)
}

// sortable makes a property value comparable: timestamps and numbers as
// zero-padded milliseconds or numbers, other strings as they are.
func sortable(v string) string {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return fmt.Sprintf("%020d", t.UnixMilli())
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return fmt.Sprintf("%020d", n)
	}
	return v
}

// refuses says why a PATCH may not set the property to v, with the
// error's code ("" when it may).
func (d DealProperty) refuses(v string) (why, code string) {
	switch {
	case d.ReadOnly || d.Calculated:
		return fmt.Sprintf("%s is a read only property; its value cannot be set.", d.Name), "READ_ONLY_VALUE"
	case d.Type == "enumeration" && len(d.Options) > 0 && !slices.Contains(d.Options, v):
		return fmt.Sprintf("%s was not one of the allowed options: %s", v, strings.Join(d.Options, ", ")), "INVALID_OPTION"
	case d.Type == "number" && !isNumber(v), d.Type == "bool" && v != "true" && v != "false",
		(d.Type == "date" || d.Type == "datetime") && !isNumber(v):
		// HubSpot takes every value as a string: a number's, a checkbox's
		// true or false, a date's milliseconds.
		return fmt.Sprintf("%s is not a valid %s", v, d.Type), "INVALID_VALUE"
	}
	return "", ""
}

// dealProperty answers GET /crm/properties/2026-03/deals/{propertyName}
// with the fields of HubSpot's properties API (schema Property).
func (s *Server) dealProperty(w http.ResponseWriter, p *portal, name string) {
	if fail(w, &s.prFaults) {
		return
	}
	d, ok := p.property(name)
	if !ok {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", fmt.Sprintf("Unable to find property %s on object type deals", name))
		return
	}
	if d.Type == "" {
		d.Type, d.FieldType = "string", "text"
	}
	options := []any{}
	for i, o := range d.Options {
		options = append(options, map[string]any{"label": o, "value": o, "displayOrder": i, "hidden": false})
	}
	group := "dealinformation"
	if !d.HubSpotDefined {
		group = "deal_custom"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": d.Name, "label": d.Name, "type": d.Type, "fieldType": d.FieldType, "description": "", "groupName": group,
		"options": options, "displayOrder": -1, "calculated": d.Calculated, "externalOptions": false, "hasUniqueValue": false,
		"hidden": false, "hubspotDefined": d.HubSpotDefined, "formField": !d.ReadOnly, "dataSensitivity": "non_sensitive",
		"modificationMetadata": map[string]any{"archivable": !d.HubSpotDefined, "readOnlyDefinition": d.HubSpotDefined, "readOnlyValue": d.ReadOnly},
		"createdAt":            timestamp, "updatedAt": timestamp, "archived": false,
	})
}

// isNumber says whether v is a decimal number, as HubSpot reads a number
// property's value.
func isNumber(v string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	return err == nil && strings.TrimSpace(v) != ""
}
