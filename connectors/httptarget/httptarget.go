// Package httptarget is the "http" ERP target: it sends a JSON invoice (and,
// optionally, a JSON customer) to any REST API, with configurable auth and
// idempotency headers. The sandbox ERP (package connectors/sandbox) is one
// such API.
//
// Wire protocol (paths configurable, amounts as decimal strings, see
// InvoiceBody):
//
//	GET  {customers_path}?external_id=X  → 2xx {"customers":[{"id":...,"external_id":...}, ...]}
//	                                       (only an entry whose external_id is X is taken: one
//	                                       without external_id, or naming another, is skipped;
//	                                       two of X, on any pages, or one without id, are refused)
//	POST {customers_path}                 → 2xx {"id":...}                        (CustomerBody)
//	                                       | 409 when the API holds a customer with that external_id,
//	                                       optionally naming it: {"customer":{"id":...,"external_id":...}}
//	GET  {invoices_path}?reference=R      → 2xx {"invoices":[{"id":...,"number":...,"url":...,
//	                                            "reference":...,"customer_id":...}, ...]}
//	                                       (only with lookup_invoices: an entry with reference R
//	                                       billed to the same customer is taken as the deal's;
//	                                       two such, on any pages, or one of R without
//	                                       customer_id, are refused)
//	POST {invoices_path}                  → 2xx {"id":...,"number":...,"url":...} (InvoiceBody)
//
// A look-up's answer without its key ("customers", "invoices"; null is an
// empty list) is refused for good rather than read as "not found"
// (decodeList).
//
// A list may come in pages: a page's "next" (a URL, a path or a query as a
// JSON string), or else its Link header's rel="next", names the page after
// it, on the same origin; the look-up reads them to the last, MaxPages at
// most (findInPages), so that a second match on a later page is seen. A
// "next" that is no link (a page number, a cursor, an object) cannot be
// followed: after a page that holds a match, or one the API filtered
// (every entry carries the value asked for, or the page is empty), the
// look-up ends there (found, or not found); after a page of other entries
// (the API ignores the filter) without a match the step fails for good,
// since the rest of the list cannot be read.
//
// Redirects: a write is followed as a GET only to what it made (a 303, a
// 302 to a record under its path) on its own origin, a look-up is not
// followed to another origin (its answer there, without the credential,
// cannot prove absence: the step fails for good), and no redirect carries
// the credential to another origin (safeRedirects).
//
// Both POSTs carry the step's idempotency key in the idempotency header. A
// 2xx answer with "Idempotent-Replayed: true" is reported as
// InvoiceResult.Replayed. Every non-2xx answer is a *connectors.APIError,
// but for a 409 that means "in progress".
//
// The IETF idempotency-key draft answers 409 while a request with the same
// key is still being processed (a retry after an attempt that timed out).
// A 409 to the invoice's POST, or to the POST of a customer without an
// external id, can mean nothing else here (the protocol gives neither a
// conflict of its own): it is asked again three times within 7 s (waits
// that would outlast the step's deadline are skipped), and a 409 that
// stays is a retryable error, so that the step is tried again later with
// the same key; never a refusal, since the first request may still create
// the invoice. With lookup_invoices, an invoice's 409 that stays is looked
// up first: the deal's invoice, made meanwhile, is taken. A 409 to the
// POST of a customer with an external id is the
// conflict the protocol defines: the customer is looked up (and a look-up
// that finds none is retried, which also covers a key in progress).
package httptarget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Defaults of Config.
const (
	DefaultAuthHeader        = "Authorization"
	DefaultIdempotencyHeader = "Idempotency-Key"
	DefaultCustomersPath     = "/customers"
	DefaultInvoicesPath      = "/invoices"
	DefaultTimeout           = 10 * time.Second

	// Values of Config.CustomerLookup.
	LookupBeforeCreate = "before_create"
	LookupOnConflict   = "on_conflict"

	// NoCustomers as CustomersPath says the API has no customer resource:
	// the invoice's customer_id is the CRM company id (Customer.ExternalID).
	NoCustomers = "none"

	// ReplayedHeader is set to "true" by an API answering from an earlier
	// request with the same idempotency key.
	ReplayedHeader = "Idempotent-Replayed"

	// Mask replaces the auth header's value in PlanInvoice.
	Mask = "********"

	userAgent       = "dealsync"
	maxResponse     = 4 << 20
	maxErrorMessage = 512
)

// ErrNoExternalID is returned by FindOrCreateCustomer when customers_path is
// "none" and the customer has no external (CRM company) id to invoice.
var ErrNoExternalID = fmt.Errorf("customers_path is none but the customer has no external_id (CRM company id): %w", connectors.ErrPermanent)

// Config is the `target:` block of a connection whose type is "http".
type Config struct {
	BaseURL string `mapstructure:"base_url" validate:"required,url"`
	// AuthHeader carries AuthValue; default "Authorization".
	AuthHeader string `mapstructure:"auth_header"`
	// AuthValue is the header's whole value, e.g. "Bearer ..." or
	// env:ERP_TOKEN; unset sends no auth header.
	AuthValue secret.Secret `mapstructure:"auth_value"`
	// IdempotencyHeader carries the step's key; default "Idempotency-Key".
	IdempotencyHeader string `mapstructure:"idempotency_header"`
	// CustomersPath defaults to "/customers"; "none" means the API has no
	// customers and the invoice's customer_id is the CRM company id.
	CustomersPath string `mapstructure:"customers_path"`
	// InvoicesPath defaults to "/invoices".
	InvoicesPath string `mapstructure:"invoices_path"`
	// CustomerLookup says when the customer is looked up by external id:
	// "before_create" (the default: GET, then POST when there is none; two
	// calls for a new customer) or "on_conflict" (POST first, and look up
	// only when the API answers 409 because it holds a customer with that
	// external id: one call for a new customer, and for a known one when the
	// 409 answer names it). on_conflict is for APIs that enforce unique
	// external ids, as the sandbox does. In both modes a 409 to the POST
	// (another run created the company's customer in between) is followed by
	// a look-up, so two deals of one new company make one customer on such
	// an API.
	CustomerLookup string `mapstructure:"customer_lookup" validate:"omitempty,oneof=before_create on_conflict"`
	// LookupInvoices looks for an invoice with the deal's reference, billed
	// to the same customer, before creating one (GET {invoices_path}
	// ?reference=R), and takes it as a replay: a re-run after the API has
	// forgotten the idempotency key then creates no second invoice. For APIs
	// that can list invoices by reference.
	LookupInvoices bool `mapstructure:"lookup_invoices"`
	// Timeout bounds each request; 0 means the default, 10s.
	Timeout time.Duration `mapstructure:"timeout" validate:"gte=0"`
	// Name is the service name in APIError.Service; "http" when empty.
	Name string `mapstructure:"-"`
}

// IdentifyingSettings are the API its calls reach
// (connectors.TargetIdentifier): base_url without user info or query,
// never auth_value.
func (c Config) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{connectors.URLSetting("base_url", c.BaseURL)}
}

// DefaultConfig is a Config with every default filled in but BaseURL.
func DefaultConfig() Config {
	return Config{
		AuthHeader:        DefaultAuthHeader,
		IdempotencyHeader: DefaultIdempotencyHeader,
		CustomersPath:     DefaultCustomersPath,
		CustomerLookup:    LookupBeforeCreate,
		InvoicesPath:      DefaultInvoicesPath,
		Timeout:           DefaultTimeout,
	}
}

func init() {
	connectors.RegisterTargetType("http",
		"any REST API that takes a JSON invoice, with configurable auth and idempotency headers (the sandbox ERP is one)",
		DefaultConfig,
		func(c Config, env connectors.Env) (*Target, error) {
			t, err := New(c, env.HTTPClient)
			if err != nil {
				return nil, err
			}
			t.keys = env.TargetKeys()
			return t, nil
		})
}

// Target is the http ERP target. It is safe for concurrent use.
type Target struct {
	service      string
	client       *http.Client
	timeout      time.Duration
	authHeader   string
	auth         string // revealed once by New; "" = no auth header
	idemHeader   string
	customersURL string // "" when CustomersPath is "none"
	createFirst  bool   // CustomerLookup is on_conflict
	invoicesURL  string
	lookup       bool // LookupInvoices
	// keys name the target's settings in advice (targets.<name>.auth_value):
	// set by the registered constructor; New's are the target's.
	keys connectors.Keys
}

var (
	_ connectors.Target                 = (*Target)(nil)
	_ connectors.InvoiceReferenceLookup = (*Target)(nil)
	_ connectors.InvoiceRetrier         = (*Target)(nil)
)

// LooksUpInvoicesByReference implements connectors.InvoiceReferenceLookup:
// with lookup_invoices, CreateInvoice takes the customer's invoice with
// the same reference as the deal's.
func (t *Target) LooksUpInvoicesByReference() (bool, string) {
	return t.lookup, "lookup_invoices"
}

// InvoiceRetry implements connectors.InvoiceRetrier: with
// lookup_invoices, a retry finds the deal's invoice by its reference;
// without, it sends the invoice again, which the API answers with the
// one made only if it honours the idempotency header.
func (t *Target) InvoiceRetry() connectors.InvoiceRetry {
	if t.lookup {
		return connectors.InvoiceRetryFinds
	}
	return connectors.InvoiceRetryKeyOnly
}

// New makes a Target. Empty fields of cfg take their defaults; AuthValue is
// resolved here, once. A nil client means a plain &http.Client{} (the
// per-request Timeout applies either way).
func New(cfg Config, client *http.Client) (*Target, error) {
	d := DefaultConfig()
	if cfg.AuthHeader == "" {
		cfg.AuthHeader = d.AuthHeader
	}
	if cfg.IdempotencyHeader == "" {
		cfg.IdempotencyHeader = d.IdempotencyHeader
	}
	if cfg.CustomersPath == "" {
		cfg.CustomersPath = d.CustomersPath
	}
	if cfg.InvoicesPath == "" {
		cfg.InvoicesPath = d.InvoicesPath
	}
	switch cfg.CustomerLookup {
	case "":
		cfg.CustomerLookup = d.CustomerLookup
	case LookupBeforeCreate, LookupOnConflict:
	default:
		return nil, fmt.Errorf("httptarget: customer_lookup %q: want %s or %s", cfg.CustomerLookup, LookupBeforeCreate, LookupOnConflict)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("httptarget: timeout %s is negative", wording.Duration(cfg.Timeout))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Name == "" {
		cfg.Name = "http"
	}

	// base_url may hold a credential (https://erp:PASSWORD@host, or
	// ?api_key=...): the errors show it as erpkit.ShownURL does, and not
	// url.Parse's error, which quotes the whole value.
	base, err := erpkit.ParseConfiguredURL("httptarget: base_url", strings.TrimSpace(cfg.BaseURL), "https://host/path")
	switch {
	case err != nil:
		return nil, err
	case base.Scheme != "http" && base.Scheme != "https":
		return nil, fmt.Errorf("httptarget: base_url %q: scheme must be http or https", erpkit.ShownURL(base))
	case base.Host == "":
		return nil, fmt.Errorf("httptarget: base_url %q has no host", erpkit.ShownURL(base))
	case base.RawQuery != "" || base.Fragment != "" || base.User != nil:
		var parts []string
		if base.User != nil {
			parts = append(parts, "user info")
		}
		if base.RawQuery != "" {
			parts = append(parts, "a query")
		}
		if base.Fragment != "" {
			parts = append(parts, "a fragment")
		}
		return nil, fmt.Errorf("httptarget: base_url (%q without them) must not have %s: give only scheme://host/path there, and the ERP's "+
			"credential in auth_value (with auth_header; an env: or file: reference)", erpkit.ShownURL(base), strings.Join(parts, " or "))
	}
	for _, p := range [...]struct{ name, value string }{
		{"customers_path", cfg.CustomersPath}, {"invoices_path", cfg.InvoicesPath},
	} {
		// A query may hold a credential (?api_key=...), as in base_url:
		// the error shows the path without it.
		if i := strings.IndexAny(p.value, "?#"); i >= 0 {
			return nil, fmt.Errorf("httptarget: %s (%q without it) must not have a query or a fragment: give only the path there, and the ERP's "+
				"credential in auth_value (with auth_header; an env: or file: reference)", p.name, p.value[:i])
		}
	}
	for _, h := range [...]struct{ name, value string }{
		{"auth_header", cfg.AuthHeader}, {"idempotency_header", cfg.IdempotencyHeader},
	} {
		if !validHeaderName(h.value) {
			// Not shown: a credential pasted there ("Authorization:
			// Bearer …", a base64 key) is no name either.
			return nil, fmt.Errorf("httptarget: %s is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~ only; its value is not shown, "+
				"as it may be a credential: the header's value belongs in auth_value)", h.name)
		}
	}
	if http.CanonicalHeaderKey(cfg.IdempotencyHeader) == http.CanonicalHeaderKey(cfg.AuthHeader) {
		// The key would replace the credential on every POST.
		return nil, fmt.Errorf("httptarget: idempotency_header %q and auth_header %q name one header: the idempotency key would replace the credential on every POST; give them different names",
			cfg.IdempotencyHeader, cfg.AuthHeader)
	}

	t := &Target{
		keys:        connectors.TargetKeys(""),
		service:     cfg.Name,
		client:      client,
		timeout:     cfg.Timeout,
		authHeader:  http.CanonicalHeaderKey(cfg.AuthHeader),
		idemHeader:  http.CanonicalHeaderKey(cfg.IdempotencyHeader),
		invoicesURL: joinURL(base, cfg.InvoicesPath),
		lookup:      cfg.LookupInvoices,
		createFirst: cfg.CustomerLookup == LookupOnConflict,
	}
	if t.client == nil {
		t.client = &http.Client{}
	}
	t.client = safeRedirects(t.client, t.authHeader)
	if cfg.CustomersPath != NoCustomers {
		t.customersURL = joinURL(base, cfg.CustomersPath)
	}
	if !cfg.AuthValue.IsZero() {
		v, err := cfg.AuthValue.Reveal()
		if err != nil {
			return nil, fmt.Errorf("httptarget: auth_value (%s): %w", cfg.AuthValue.Describe(), err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("httptarget: auth_value (%s) contains a line break", cfg.AuthValue.Describe())
		}
		t.auth = v
	}
	return t, nil
}

// withQuery adds one query parameter to u, which may have a query already.
func withQuery(u, name, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(name) + "=" + url.QueryEscape(value)
}

func joinURL(base *url.URL, path string) string {
	return strings.TrimRight(base.String(), "/") + "/" + strings.TrimLeft(path, "/")
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FindOrCreateCustomer finds the customer by external id (its one match:
// two are refused, see findCustomer) and creates it, under key, when there
// is none or it has no external id: looking it up first (customer_lookup
// before_create) or creating it first and looking it up when the API
// answers 409 (on_conflict). With customers_path "none" it sends nothing and returns
// the external id.
//
// A 409 to the creation, in either mode, means the API holds a customer
// with this external id (another run created it since the look-up): the
// one the answer names, or else the one a look-up finds, is the deal's.
// On an API that does not enforce unique external ids, two runs racing for
// one new company can still create it twice. For a customer without an
// external id a 409 can only mean that the key is still in progress: it is
// asked again, and one that stays is retried (keyInProgress).
func (t *Target) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	if t.customersURL == "" {
		if c.ExternalID == "" {
			return connectors.CustomerRef{}, fmt.Errorf("%s find customer: %w", t.service, ErrNoExternalID)
		}
		return connectors.CustomerRef{ID: c.ExternalID}, nil
	}
	if c.ExternalID != "" && !t.createFirst {
		ref, found, err := t.findCustomer(ctx, c.ExternalID)
		if err != nil || found {
			return ref, err
		}
	}
	ref, conflict, err := t.createCustomer(ctx, c, key)
	switch {
	case conflict == nil:
		return ref, err
	case c.ExternalID == "":
		// No external id that another customer could hold: the 409 that
		// stayed is the answer for this key still in progress.
		return connectors.CustomerRef{}, keyInProgress(err)
	}
	named := conflict.Customer
	if isCustomer(named, c.ExternalID) {
		return connectors.CustomerRef{ID: string(named.ID)}, nil
	}
	ref, found, ferr := t.findCustomer(ctx, c.ExternalID)
	switch {
	case ferr != nil:
		return ref, ferr
	case found:
		return ref, nil
	case named.ExternalID != "" && string(named.ExternalID) != c.ExternalID:
		// The API names the customer it conflicts with, another company's
		// (a unique e-mail or tax id, say), and lists none of this one:
		// asking again cannot help.
		return connectors.CustomerRef{}, fmt.Errorf("%s create customer: the API answered 409 (%s) naming customer %q of external_id %q, "+
			"not %q, and lists no customer of %q: another company's customer holds something this one needs to be unique (its e-mail or tax id, say); "+
			"fix it in the ERP or the CRM, then retry the run (dealsync runs retry): %w",
			t.service, err, named.ID, named.ExternalID, c.ExternalID, c.ExternalID, connectors.ErrPermanent)
	}
	// The API refused a duplicate it does not list (yet: a list that lags,
	// or, as the IETF draft answers, the same key still in flight after a
	// timed-out attempt): retried, within the run's retry policy, with a
	// message that says what to look at.
	return connectors.CustomerRef{}, fmt.Errorf("%s create customer: the API answered 409 (%s) but lists no customer with external_id %q; trying again",
		t.service, err, c.ExternalID)
}

// findCustomer looks a customer up by external id: the listed entry whose
// external_id is externalID, exactly. An entry that names another external
// id, or none (a customer made by hand, on an API that ignored the filter
// and listed them all), is not this one: taking it would bill another
// company. No such entry is "not found". Two such entries with different
// ids, on one page or on two, are refused, not guessed (a duplicate in the
// ERP), and so is one without an id, or an answer without "customers" ({}
// or {"data":[...]}): read as an empty list, each would make a second
// customer.
//
// The list is read page after page (findInPages) to its last page, or to
// the page with a second match: a customer listed on a later page only is
// found, not made a second time, and a duplicate listed on a page after
// the match is seen. A list that goes on past MaxPages fails for good,
// match or not; one whose next page is named by a "next" that is no link
// ends there (the target cannot read on: a duplicate behind it is not
// seen).
func (t *Target) findCustomer(ctx context.Context, externalID string) (connectors.CustomerRef, bool, error) {
	const op = "find customer"
	var ref connectors.CustomerRef
	err := t.findInPages(ctx, op, withQuery(t.customersURL, "external_id", externalID), func(body []byte, _ http.Header) (listPage, error) {
		var list CustomerList
		if err := decodeList(body, "customers", `{"customers":[{"id":…,"external_id":…}]}`, &list); err != nil {
			return listPage{}, err
		}
		filtered := true
		for _, found := range list.Customers {
			filtered = filtered && string(found.ExternalID) == externalID
			switch {
			case string(found.ExternalID) != externalID:
			case found.ID == "":
				return listPage{}, fmt.Errorf("the API lists a customer with external_id %q but no \"id\": the http target needs each "+
					"entry's id (docs/connectors/erp.md, \"http\"), and cannot tell which customer it is: %w", externalID, connectors.ErrPermanent)
			case ref.ID == "":
				ref = connectors.CustomerRef{ID: string(found.ID)}
			case ref.ID != string(found.ID):
				return listPage{}, fmt.Errorf("the API lists two customers with external_id %q, %q and %q: dealsync does not guess which "+
					"is the company's; merge them in the ERP, or clear the external_id of the one that is not, then retry the run: %w",
					externalID, ref.ID, found.ID, connectors.ErrPermanent)
			}
		}
		return listPage{found: ref.ID != "", filtered: filtered, next: list.Next}, nil
	})
	if err != nil {
		return connectors.CustomerRef{}, false, err
	}
	return ref, ref.ID != "", nil
}

// decodeList decodes body, a page of a look-up's list, into list, and
// requires its key (name, matched as json.Unmarshal does, ignoring case;
// null is an empty list): an answer without it ({}, {"data":[...]}) is not
// the protocol's list, and read as an empty one it would make a second
// customer, or skip the invoice look-up's protection. Permanent: asking
// again gets the same answer. shape is the answer the protocol wants.
func decodeList(body []byte, name, shape string, list any) error {
	if err := json.Unmarshal(body, list); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(body, &keys) // an object, or null: it decoded into list
	for k := range keys {
		if strings.EqualFold(k, name) {
			return nil
		}
	}
	return fmt.Errorf("the answer has no %q: the http target reads a look-up's answer as %s (docs/connectors/erp.md, \"http\"), "+
		"and an answer without it cannot tell that the entry is not there: %w", name, shape, connectors.ErrPermanent)
}

// isCustomer reports whether a listed (or 409-named) customer is the one
// with externalID: it has an id and says that external id, exactly.
func isCustomer(c ListedCustomer, externalID string) bool {
	return c.ID != "" && externalID != "" && string(c.ExternalID) == externalID
}

// createCustomer posts the customer under key. A 409 answer is returned
// as the conflict (with what the answer says of the customer that holds
// the external id) beside its *connectors.APIError. For a customer without
// an external id, whose 409 can only be the key in progress, the POST is
// asked again first (postAskingAgain).
func (t *Target) createCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, *CustomerConflict, error) {
	const op = "create customer"
	payload, err := json.Marshal(NewCustomerBody(c))
	if err != nil {
		return connectors.CustomerRef{}, nil, fmt.Errorf("%s %s: %w", t.service, op, err)
	}
	var waits []time.Duration // a 409 for the external id is looked into at once
	if c.ExternalID == "" {
		waits = conflictWaits
	}
	_, body, err := t.postAskingAgain(ctx, op, waits, func() (*http.Request, error) {
		return t.newPost(ctx, t.customersURL, payload, key)
	})
	if err != nil {
		if isConflict(err) {
			var conflict CustomerConflict
			_ = json.Unmarshal(body, &conflict) // naming the customer is optional
			return connectors.CustomerRef{}, &conflict, err
		}
		return connectors.CustomerRef{}, nil, err
	}
	var created CustomerCreated
	if err := json.Unmarshal(body, &created); err != nil {
		return connectors.CustomerRef{}, nil, noCreatedID(t.service, op, "customer", err)
	}
	if created.ID == "" {
		return connectors.CustomerRef{}, nil, noCreatedID(t.service, op, "customer", nil)
	}
	return connectors.CustomerRef{ID: string(created.ID), Created: true}, nil, nil
}

// CreateInvoice posts the invoice under key; with lookup_invoices, an
// invoice the API already has for the reference and customer is returned
// as a replay instead.
func (t *Target) CreateInvoice(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	const op = "create invoice"
	if t.lookup && strings.TrimSpace(inv.Reference) != "" {
		// The reference exactly as the invoice carries it.
		if found, ok, err := t.findInvoice(ctx, inv.Reference, customer.ID); err != nil || ok {
			return found, err
		}
	}
	header, body, err := t.postAskingAgain(ctx, op, conflictWaits, func() (*http.Request, error) {
		req, _, err := t.invoiceRequest(ctx, inv, customer, key)
		return req, err
	})
	if isConflict(err) {
		// The protocol gives the invoice's POST no conflict of its own: a
		// 409 that stayed is the answer for this key still in progress,
		// and the first request may yet create the invoice. With
		// lookup_invoices, the list says whether it has meanwhile: taken
		// then, rather than asking again until the step's retries end.
		if t.lookup && strings.TrimSpace(inv.Reference) != "" {
			found, ok, lerr := t.findInvoice(ctx, inv.Reference, customer.ID)
			switch {
			case lerr == nil && ok:
				return found, nil
			case lerr == nil:
				return connectors.InvoiceResult{}, keyInProgress(fmt.Errorf("%w (and the API lists no invoice of reference %q billed to customer %q yet)", err, inv.Reference, customer.ID))
			}
		}
		return connectors.InvoiceResult{}, keyInProgress(err)
	}
	if keyReused(err) {
		// The IETF draft's 422 for a key sent before with another body:
		// an earlier attempt of this step made the invoice from another
		// version of the deal or the mapping. It exists; none is made.
		// err names the service and the step already. The reference
		// that earlier body carried may not be this one's: a changed
		// mapping may have made another.
		return connectors.InvoiceResult{}, fmt.Errorf("%v: an earlier attempt or run of this deal's invoice step sent another body under this key "+
			"(the deal or the mapping changed since), so the deal's invoice may exist in the ERP, under the reference that body carried "+
			"(this one's is %q; look for the deal %q too, as a changed mapping may have given another); "+
			"dealsync does not send a second: look for it there, and correct it by hand if the deal changed, or make it by hand if there is none: %w",
			err, inv.Reference, inv.SourceDealID, connectors.ErrPermanent)
	}
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	var created InvoiceCreated
	if err := json.Unmarshal(body, &created); err != nil {
		return connectors.InvoiceResult{}, noCreatedID(t.service, op, "invoice", err)
	}
	if created.ID == "" {
		return connectors.InvoiceResult{}, noCreatedID(t.service, op, "invoice", nil)
	}
	return connectors.InvoiceResult{
		InvoiceID: string(created.ID),
		Number:    string(created.Number),
		URL:       created.URL,
		Replayed:  strings.EqualFold(strings.TrimSpace(header.Get(ReplayedHeader)), "true"),
	}, nil
}

// keyReused says whether err is the answer to a key sent before with
// another body: a 422 that says so (the IETF idempotency-key draft's, and
// the sandbox's "Idempotency-Key reused with a different request body").
func keyReused(err error) bool {
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	m := strings.ToLower(api.Message)
	return strings.Contains(m, "idempotency") && (strings.Contains(m, "reuse") || strings.Contains(m, "different"))
}

// conflictWaits are the waits before asking again after a 409 that can
// only mean the key is in progress (tests shorten them); maxConflictWait
// bounds a Retry-After taken instead.
var conflictWaits = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

const maxConflictWait = 5 * time.Second

// postAskingAgain sends the POST build makes and, while the API answers
// 409, sends it again after each of waits (a Retry-After below
// maxConflictWait replacing the wait): the IETF idempotency-key draft's
// answer while a request with the same key is still being processed, which
// the stored answer replaces once it is done. A wait after which ctx
// leaves no time for the POST (connectors.TimeForACall) is not waited: the
// 409 is returned at once, for the step to be retried rather than to time
// out. A 409 that stays is returned as it is, and so is the 409 when
// asking again is cut short by ctx (canceled, or no time left for the POST
// after the wait: connectors.ErrNoTimeLeft): a request with this key is in
// flight, so the step must not be reported as one that sent nothing.
// Errors name op.
func (t *Target) postAskingAgain(ctx context.Context, op string, waits []time.Duration, build func() (*http.Request, error)) (http.Header, []byte, error) {
	req, err := build()
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", t.service, op, err)
	}
	header, body, err := t.send(req, op)
	for _, wait := range waits {
		var apiErr *connectors.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
			break
		}
		if apiErr.RetryAfter > 0 && apiErr.RetryAfter < maxConflictWait {
			wait = apiErr.RetryAfter
		}
		if !connectors.TimeForACall(ctx, wait) {
			break // no time to ask again and still answer before the step ends
		}
		conflictHeader, conflictBody, conflict := header, body, err
		select {
		case <-ctx.Done():
			return conflictHeader, conflictBody, conflict // the key is in progress
		case <-after(wait):
		}
		if req, err = build(); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", t.service, op, err)
		}
		header, body, err = t.send(req, op)
		if err != nil && (errors.Is(err, connectors.ErrNoTimeLeft) || ctx.Err() != nil) {
			return conflictHeader, conflictBody, conflict // asking again was cut short: the 409 stands
		}
	}
	return header, body, err
}

// after is time.After (tests wait longer).
var after = time.After

// isConflict reports whether err is the API's 409 answer.
func isConflict(err error) bool {
	var apiErr *connectors.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict
}

// keyInProgress is the error for conflict, a 409 that stayed where it can
// only mean that a request with the same idempotency key is still being
// processed: not an *connectors.APIError, so it is retried (the step runs
// again later, with the same key, and gets that request's answer) and
// never taken for the API's refusal.
//
// The 409's Retry-After, if any, is kept: the step is tried again after it
// (a *connectors.OutcomeUnknownError, which also says that the request may
// still be carried out).
func keyInProgress(conflict error) error {
	err := fmt.Errorf("%v: taken for the IETF idempotency-key draft's answer while a request with the same key is still being processed "+
		"(an earlier attempt that timed out, say); the step is tried again later with the same key "+
		"(should the API answer 409 for another reason, every retry fails the same way: read its message)", conflict)
	var api *connectors.APIError
	if errors.As(conflict, &api) && api.RetryAfter > 0 {
		return &connectors.OutcomeUnknownError{Err: err, Wait: api.RetryAfter, RetryAfter: true}
	}
	return err
}

// findInvoice lists the invoices with the reference and returns the one
// billed to customerID. An entry naming another reference (an API that does
// not filter) or another customer is not the deal's invoice. An entry with
// the reference but no customer_id, or the deal's without an id, and an
// answer without "invoices", are refused (permanent): read as another
// customer's invoice, or as an empty list, each would make a second
// invoice. So are two or more invoices (different ids) with the reference
// billed to customerID (ambiguous): taking the first would link the deal
// to an invoice picked by the API's order, perhaps another deal's.
//
// The list is read page after page (findInPages) to its last page, or to
// the page where a second invoice of the deal shows: one on a later page
// only is found, and so is a second one there.
func (t *Target) findInvoice(ctx context.Context, reference, customerID string) (connectors.InvoiceResult, bool, error) {
	var res connectors.InvoiceResult
	var ids []string // the deal's invoices listed, each id once, in the API's order
	err := t.findInPages(ctx, "find invoice", withQuery(t.invoicesURL, "reference", reference), func(body []byte, h http.Header) (listPage, error) {
		var list InvoiceList
		if err := decodeList(body, "invoices", `{"invoices":[{"id":…,"number":…,"url":…,"reference":…,"customer_id":…}]}`, &list); err != nil {
			return listPage{}, err
		}
		filtered := true
		for _, inv := range list.Invoices {
			filtered = filtered && string(inv.Reference) == reference
			switch {
			case string(inv.Reference) != reference:
			case inv.CustomerID == "":
				return listPage{}, fmt.Errorf("the API lists invoice %q with reference %q but no \"customer_id\": the http target needs each "+
					"entry's customer_id (docs/connectors/erp.md, \"http\") to tell the deal's invoice from another customer's: %w",
					inv.ID, reference, connectors.ErrPermanent)
			case string(inv.CustomerID) != customerID:
			case inv.ID == "":
				return listPage{}, fmt.Errorf("the API lists an invoice with reference %q of customer %q, the deal's, but no \"id\": "+
					"the http target needs each entry's id (docs/connectors/erp.md, \"http\"): %w", reference, customerID, connectors.ErrPermanent)
			case slices.Contains(ids, string(inv.ID)):
				// The same invoice listed again (pages that overlap).
			default:
				if len(ids) == 0 {
					res = connectors.InvoiceResult{InvoiceID: string(inv.ID), Number: string(inv.Number), URL: inv.URL, Replayed: true}
				}
				ids = append(ids, string(inv.ID))
			}
		}
		if len(ids) > 1 {
			// Reading on would only add to the count: every page of the
			// list is not needed to refuse.
			many := strconv.Itoa(len(ids))
			if next, _ := nextPage(list.Next, h); next != "" || !emptyNext(list.Next) {
				many = "at least " + many
			}
			return listPage{}, fmt.Errorf("the API lists %s invoices with reference %q billed to customer %q, the deal's: %s; dealsync does not guess "+
				"which is the deal's invoice: in the ERP, void or delete those that are not the deal's (or change their reference), or, if they "+
				"are other deals' invoices, make the mapping's invoice.reference unique per deal, then retry the run: %w",
				many, reference, customerID, wording.SomeOf(wording.Quoted(ids), 5), connectors.ErrPermanent)
		}
		return listPage{found: len(ids) > 0, filtered: filtered, next: list.Next}, nil
	})
	if err != nil {
		return connectors.InvoiceResult{}, false, err
	}
	return res, res.InvoiceID != "", nil
}

// emptyNext reports whether raw, a page's "next" (the JSON value), names
// no next page: absent, null or "".
func emptyNext(raw json.RawMessage) bool {
	token := strings.TrimSpace(string(raw))
	return token == "" || token == "null" || token == `""`
}

// MaxPages bounds the pages a look-up reads: a list with more pages
// after the first MaxPages fails the step for good, whether they hold a
// match or not (findInPages).
const MaxPages = 20

// listPage is what findInPages' match reads of a page: whether the
// look-up holds a match (found: on this page or one before); whether every
// entry carries the value the query filtered by (filtered: the API
// filters, true of an empty page); and the page's "next" (the JSON value).
type listPage struct {
	found, filtered bool
	next            json.RawMessage
}

// findInPages GETs the list at first and the pages after it, each read by
// match (which sees the page's body and header, and returns an error to
// end the look-up, such as for a second match), until the last page: the
// next page is the one a page's "next" names, when it is a link (isLink:
// an http(s) URL, or a path or query resolved against the page's URL), or
// else its Link header's rel="next" (RFC 8288). A page with neither is the
// last. The pages after a match are read too, so that a second match on a
// later page is seen: a match is the entry only when no other is listed.
// A "next" that is no link (a page number, an opaque cursor, an object)
// is a token only the API can use: after a page that holds a match, or one
// the API filtered (every entry carries the value asked for, or none is
// there), the look-up ends, found or not, as it did before pages were
// read, since the entry looked for would carry that value too (a second
// match behind such a "next" cannot be seen: the wire protocol gives no
// way to read on); after a page of other entries (the API ignores the
// filter) without a match it is an error, since the rest of the list
// cannot be read (docs/connectors/erp.md, "http").
//
// A "not found" must be true, since it makes a customer (a second one,
// were it listed further on) or an invoice the look-up was to find, and so
// must a single match: so a next page that cannot be read is an error,
// never the end of the list, and permanent, as asking again reads the same
// pages: one on another origin than first (the credential goes to
// base_url's only), a page read before (a loop), or a page past MaxPages.
// A next page that answers with an error fails as that answer, naming the
// page and where it was named. Errors name op.
func (t *Target) findInPages(ctx context.Context, op, first string, match func(body []byte, h http.Header) (listPage, error)) error {
	firstURL, err := url.Parse(first)
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.service, op, err)
	}
	read := map[string]bool{}
	namedBy := "" // how the page before named this one
	// The pages after a match are read for a second one: an error there
	// says why they matter.
	readOn := ""
	for u, page := firstURL, 1; ; page++ {
		read[u.String()] = true
		header, body, err := t.get(ctx, op, u.String())
		if err != nil {
			if page > 1 {
				return fmt.Errorf("%w (page %d of the list, %s, named by page %d's %s%s)", err, page, u.Redacted(), page-1, namedBy, readOn)
			}
			return err
		}
		got, err := match(body, header)
		if err != nil {
			return fmt.Errorf("%s %s: reading answer (page %d, %s): %w", t.service, op, page, u.Redacted(), err)
		}
		if got.found {
			readOn = "; the look-up has its match, and reads the list to its end so as not to miss a second one"
		}
		var next string
		next, namedBy = nextPage(got.next, header)
		if next == "" {
			if token := strings.TrimSpace(string(got.next)); !got.found && !got.filtered && !emptyNext(got.next) {
				return fmt.Errorf("%s %s: page %d (%s) lists other entries than the one asked for (the API does not filter by the query) and names "+
					"the next page by a \"next\" that is no link (%s): the http target cannot read the rest of the list, so it cannot tell the entry "+
					"is not there; make the API filter by the query, or give \"next\" as a URL, a path or a query (or a Link header): %w",
					t.service, op, page, u.Redacted(), truncate(token), connectors.ErrPermanent)
			}
			return nil
		}
		nu, err := u.Parse(next)
		switch {
		case err != nil:
			return fmt.Errorf("%s %s: page %d (%s) names by its %s a next page %q that is not a URL: %v%s: %w",
				t.service, op, page, u.Redacted(), namedBy, next, err, readOn, connectors.ErrPermanent)
		case !connectors.SameOrigin(nu, firstURL):
			return fmt.Errorf("%s %s: page %d (%s) names by its %s a next page on another host, %s: the http target sends its credential to base_url's "+
				"scheme, host and port only, and does not read it%s: %w", t.service, op, page, u.Redacted(), namedBy, nu.Redacted(), readOn, connectors.ErrPermanent)
		case read[nu.String()]:
			return fmt.Errorf("%s %s: page %d (%s) names by its %s as the next page %s, a page already read: the API's paging loops%s: %w",
				t.service, op, page, u.Redacted(), namedBy, nu.Redacted(), readOn, connectors.ErrPermanent)
		case page >= MaxPages && got.found:
			return fmt.Errorf("%s %s: the first %d pages of %s hold a match, and the API lists more: the http target reads at most %d, and cannot "+
				"tell that no second entry on the pages after them matches too (a list that long means the API ignores the query's filter: "+
				"make it filter, so that the list holds the matches only): %w",
				t.service, op, MaxPages, first, MaxPages, connectors.ErrPermanent)
		case page >= MaxPages:
			return fmt.Errorf("%s %s: no match in the first %d pages of %s, and the API lists more: the http target reads at most %d "+
				"(a list that long means the API ignores the query's filter: make it filter, so that the match comes first): %w",
				t.service, op, MaxPages, first, MaxPages, connectors.ErrPermanent)
		}
		u = nu
	}
}

// nextPage is a list page's next page and what named it: its "next" (raw:
// the JSON value) when that is a string that is a link (isLink), or else
// its Link header's rel="next"; "" when it has neither.
func nextPage(raw json.RawMessage, h http.Header) (next, namedBy string) {
	var s string
	if json.Unmarshal(raw, &s) == nil && isLink(strings.TrimSpace(s)) {
		return strings.TrimSpace(s), `"next"`
	}
	if l := linkNext(h); l != "" {
		return l, `Link header (rel="next")`
	}
	return "", ""
}

// isLink reports whether s, a page's "next", names a page the target can
// read: a URL with a scheme and a host ("https://erp.example/c?page=2"),
// or a path or query to resolve against the page's URL ("/c?page=2",
// "?page=2", "./c?page=2", "../c", "customers?page=2": a relative
// reference with a query). Anything else (a page number, an opaque cursor
// such as "eyJpZCI6MTB9" or "eyJ/aWQ==", "") is a token of the API's own
// that only it knows how to send back, not a link.
func isLink(s string) bool {
	for _, prefix := range [...]string{"/", "?", "./", "../"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	u, err := url.Parse(s)
	return err == nil && ((u.Scheme != "" && u.Host != "") || (u.Scheme == "" && u.Path != "" && strings.Contains(s, "?")))
}

// linkNext is the target of the first link of relation type "next" in the
// Link headers of h (RFC 8288: `<url>; rel="next"`, several links
// comma-separated, rel a space-separated list), or "". A malformed header
// is read up to where it goes wrong.
func linkNext(h http.Header) string {
	for _, v := range h.Values("Link") {
		for {
			v = strings.TrimLeft(v, " \t,")
			if !strings.HasPrefix(v, "<") {
				break
			}
			end := strings.IndexByte(v, '>')
			if end < 0 {
				break
			}
			target := strings.TrimSpace(v[1:end])
			v = v[end+1:]
			var next bool
			for {
				v = strings.TrimLeft(v, " \t")
				if !strings.HasPrefix(v, ";") {
					break
				}
				var name, value string
				name, value, v = linkParam(v[1:])
				if strings.EqualFold(name, "rel") {
					for _, rel := range strings.Fields(value) {
						next = next || strings.EqualFold(rel, "next")
					}
				}
			}
			if next && target != "" {
				return target
			}
			if !strings.HasPrefix(v, ",") {
				break // a link not followed by another: malformed, or the last
			}
		}
	}
	return ""
}

// linkParam reads one link parameter, `name=value` or `name="quoted"`
// (RFC 8288's link-param), from the start of s, and returns the rest.
func linkParam(s string) (name, value, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, "=;,")
	if i < 0 {
		return strings.TrimSpace(s), "", ""
	}
	name, s = strings.TrimSpace(s[:i]), s[i:]
	if s[0] != '=' {
		return name, "", s
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, ";,")
		if i < 0 {
			return name, strings.TrimSpace(s), ""
		}
		return name, strings.TrimSpace(s[:i]), s[i:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return name, b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return name, b.String(), "" // an unclosed quote: the rest is its value
}

// get GETs u and returns its 2xx answer; errors name op.
func (t *Target) get(ctx context.Context, op, u string) (http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", t.service, op, err)
	}
	t.setCommonHeaders(req.Header, "")
	return t.send(req, op)
}

// noCreatedID is the error of a 2xx answer to a create that does not say
// the created record's id (not JSON, or no "id"): permanent, since asking
// again with the same key gets the same answer; the record may exist.
func noCreatedID(service, op, kind string, decodeErr error) error {
	why := "has no id"
	if decodeErr != nil {
		why = "is not JSON (" + decodeErr.Error() + ")"
	}
	return unreadCreated(service, op, kind, why)
}

// unreadCreated is the error of a 2xx answer to a create that the target
// cannot read the record from, as why says: permanent (noCreatedID).
func unreadCreated(service, op, kind, why string) error {
	return fmt.Errorf("%s %s: the API answered 2xx, but its answer %s: the http target needs the created %s as JSON with its \"id\" "+
		"(docs/connectors/erp.md, \"http\"); the %s may exist in the ERP: %w", service, op, why, kind, kind, connectors.ErrPermanent)
}

// PlanInvoice returns the request CreateInvoice would send, built by the
// same code, with the auth header's value replaced by Mask.
func (t *Target) PlanInvoice(inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.Request, error) {
	req, payload, err := t.invoiceRequest(context.Background(), inv, customer, key)
	if err != nil {
		return connectors.Request{}, fmt.Errorf("%s plan invoice: %w", t.service, err)
	}
	h := req.Header.Clone()
	if _, ok := h[t.authHeader]; ok {
		h[t.authHeader] = []string{Mask}
	}
	return connectors.Request{Method: req.Method, URL: req.URL.String(), Header: h, Body: payload}, nil
}

// invoiceRequest is the one place the invoice request is built, for both
// CreateInvoice and PlanInvoice.
func (t *Target) invoiceRequest(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, key string) (*http.Request, []byte, error) {
	payload, err := json.Marshal(NewInvoiceBody(inv, customer.ID))
	if err != nil {
		return nil, nil, err
	}
	req, err := t.newPost(ctx, t.invoicesURL, payload, key)
	if err != nil {
		return nil, nil, err
	}
	return req, payload, nil
}

func (t *Target) newPost(ctx context.Context, u string, payload []byte, key string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	t.setCommonHeaders(req.Header, IdempotencyKey(key))
	return req, nil
}

// MaxKeyLen bounds the idempotency header's value (the sandbox's and
// Stripe's limit): a longer key (a long deal id) is sent as a stable
// shortened form (erpkit.LegalKey); shorter keys go as they are.
const MaxKeyLen = 255

// IdempotencyKey is the idempotency header's value for a step key: the key
// itself when it is at most MaxKeyLen bytes that a header value may hold,
// else a stable form of it (erpkit.LegalKey: its printable ASCII, '_' for
// the rest, and a digest of the whole key). A control character of a
// generic deal id (a line break, DEL) would make Go refuse to send the
// header, every attempt alike; other characters (a space, "Müller") were
// always sent as they are, and keep their key.
func IdempotencyKey(key string) string {
	return erpkit.LegalKey(key, MaxKeyLen, headerChar)
}

// headerChar reports whether r may go into a header value as it is: not a
// control character but the tab, which Go sends.
func headerChar(r rune) bool { return r == '\t' || (r >= ' ' && r != 0x7f) }

func (t *Target) setCommonHeaders(h http.Header, key string) {
	h.Set("Accept", "application/json")
	h.Set("User-Agent", userAgent)
	if t.auth != "" {
		h.Set(t.authHeader, t.auth)
	}
	if key != "" {
		h.Set(t.idemHeader, key)
	}
}

// withTimeout bounds one request: the target's timeout, cut to end
// connectors.StepMargin before the step's deadline.
func (t *Target) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if timeout := connectors.CallTimeout(ctx, t.timeout); timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return context.WithCancel(ctx)
}

// send does the request and reads the answer. A non-2xx answer is an
// *connectors.APIError, returned with the body read (up to maxResponse+1
// bytes); a failure to send or to read is wrapped as is.
func (t *Target) send(req *http.Request, op string) (http.Header, []byte, error) {
	// A write of unknown outcome is retried after the time a request may
	// take (the target's timeout, always set by New).
	write := connectors.IsWrite(req.Method)
	if write && !connectors.TimeForACall(req.Context(), 0) {
		return nil, nil, fmt.Errorf("%s %s: %w", t.service, op, connectors.ErrNoTimeLeft)
	}
	// The timeout is each request's, answer read included: a step that
	// looks up, creates and asks again after a 409 is not held to one.
	ctx, cancel := t.withTimeout(req.Context())
	defer cancel()
	resp, err := t.client.Do(req.WithContext(ctx))
	if err != nil {
		// A write without an answer may still be carried out: retried
		// after the API has had its time (connectors.UnsureWrite).
		return nil, nil, connectors.UnsureWrite(write, fmt.Errorf("%s %s: %w", t.service, op, err), t.timeout)
	}
	defer resp.Body.Close()
	connectors.WriteAnswered(ctx, req.Method, resp)
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status alone decides the retry; a body cut short only costs
		// the message.
		return nil, body, connectors.UnsureAnswer(write, t.apiError(op, resp, body), t.timeout)
	}
	if readErr != nil {
		return nil, nil, fmt.Errorf("%s %s: reading answer: %w", t.service, op, readErr)
	}
	if len(body) > maxResponse {
		// Asking again gets the same answer (the stored one, for a write's
		// key): permanent, not retried for as long as the run lasts.
		why := fmt.Sprintf("is larger than %d bytes, which the http target does not read", maxResponse)
		if write {
			return nil, nil, unreadCreated(t.service, op, recordOf(op), why)
		}
		return nil, nil, fmt.Errorf("%s %s: the API answered 2xx, but its answer %s: a look-up's page must be smaller; make the API filter by the "+
			"query, or page its list (docs/connectors/erp.md, \"http\"): %w", t.service, op, why, connectors.ErrPermanent)
	}
	return resp.Header, body, nil
}

// safeRedirects is a copy of client whose CheckRedirect
//
//   - follows a redirect that turns a write into a GET (Go sends a POST
//     answered 301, 302 or 303 again as a GET) only when it leads to what
//     the write made: a 303 (RFC 9110: the write was handled, see there),
//     or a 302 to a record under the path written to ("/invoices" to
//     "/invoices/42", the Post/Redirect/Get of many frameworks). Any other
//     is not followed, and its answer comes back instead, a refusal
//     naming where it leads (apiError): a 301 (the API moved: "/invoices"
//     to "/invoices/" as nginx answers, http:// to https://), or a 302 to
//     another path or to the same path elsewhere (a log-in page, a list,
//     a proxy's redirect). A GET there would make nothing, read a list or
//     a page, and report the write as made without an id. A 307 or 308
//     keeps the method and the body: the same write, sent again there, is
//     followed.
//   - never carries the credential to another origin: a redirect whose
//     scheme, host or port is not the first request's (but for http:// to
//     https:// of the same host on the default ports) is sent without
//     authHeader and Authorization. Go drops only Authorization, and only
//     for another host name: a custom auth header (X-Api-Key) went to any
//     host, and Authorization to another port of the same host. A GET is
//     not followed there at all (its answer comes back, apiError): a
//     look-up's answer without the credential cannot tell that the entry
//     is not there (an empty list for an anonymous caller would make a
//     second customer or invoice), as a "next" page there is not read
//     (findInPages); and without the credential the GET of what a write
//     made is refused (401), and the run would fail saying to check the
//     credentials while the write may be made. Only a 307 or 308 of a
//     write, the same write sent again, goes there, without them.
func safeRedirects(client *http.Client, authHeader string) *http.Client {
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if prev := via[len(via)-1]; connectors.IsWrite(prev.Method) && req.Method != prev.Method && !leadsToWhatWasMade(req.Response, prev.URL, req.URL) {
			return http.ErrUseLastResponse
		}
		if !keepsCredential(via[0].URL, req.URL) {
			if !connectors.IsWrite(req.Method) {
				// A look-up sent elsewhere, or a write turned into a GET
				// there: its answer comes back instead (apiError).
				return http.ErrUseLastResponse
			}
			req.Header.Del(authHeader)
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// leadsToWhatWasMade reports whether redirect, the answer to a write of
// from, leading to to as a GET, leads to what the write made: a 303, or a
// 302 to a path under from's (safeRedirects).
func leadsToWhatWasMade(redirect *http.Response, from, to *url.URL) bool {
	switch {
	case redirect == nil:
		return false
	case redirect.StatusCode == http.StatusSeeOther:
		return true
	case redirect.StatusCode == http.StatusFound:
		rest, under := strings.CutPrefix(to.Path, strings.TrimRight(from.Path, "/")+"/")
		return under && strings.Trim(rest, "/") != ""
	}
	return false
}

// keepsCredential reports whether a redirect from the first request's URL
// to to may carry the auth header: to has the same origin, or upgrades
// http:// to https:// on the same host and default ports.
func keepsCredential(first, to *url.URL) bool {
	if connectors.SameOrigin(first, to) {
		return true
	}
	return first.Scheme == "http" && to.Scheme == "https" && strings.EqualFold(first.Hostname(), to.Hostname()) &&
		(first.Port() == "" || first.Port() == "80") && (to.Port() == "" || to.Port() == "443")
}

func (t *Target) apiError(op string, resp *http.Response, body []byte) *connectors.APIError {
	msg, field := vendorMessage(body)
	if refused := refusedRedirect(op, resp); refused != "" {
		msg = refused
	} else if resp.StatusCode == http.StatusUnauthorized {
		msg = t.credentialAdvice(resp) + parenthesized(msg)
	}
	// A 503 with a valid Retry-After, even "0" or a date past, is the
	// API's refusal, not a gateway's (connectors.UnsureAnswer).
	retryAfter, given := connectors.LookupRetryAfter(resp.Header, time.Now())
	return &connectors.APIError{
		Service:         t.service,
		Op:              op,
		StatusCode:      resp.StatusCode,
		Message:         msg,
		Field:           field,
		RetryAfter:      retryAfter,
		RetryAfterGiven: given,
	}
}

// credentialAdvice says, of resp, a 401, which of the target's settings
// to check: auth_value and auth_header, where the credential is; that it
// sends none without auth_value; or, for a write a redirect took to
// another origin (safeRedirects sends it there without the credential),
// where it went.
func (t *Target) credentialAdvice(resp *http.Response) string {
	switch {
	case t.auth == "":
		return "the API wants a credential, and the target sends none: set " + t.keys.Key("auth_value") + ", the header's whole value (e.g. \"Bearer <token>\"), " +
			"and " + t.keys.Key("auth_header") + " if the API reads another header than Authorization"
	case resp.Request != nil && resp.Request.Header.Get(t.authHeader) == "":
		return fmt.Sprintf("the API refused the request a redirect sent to %s, without the target's credential (never sent to another origin): "+
			"set %s to where the API answers", erpkit.ShownURL(resp.Request.URL), t.keys.Key("base_url"))
	}
	return fmt.Sprintf("the API refused the target's credential: check %s, the whole value of header %s (e.g. \"Bearer <token>\": a token expired, revoked, "+
		"or missing its scheme), and %s, the header the API reads it from", t.keys.Key("auth_value"), t.authHeader, t.keys.Key("auth_header"))
}

// parenthesized is " (msg)", or "" for an answer that said nothing.
func parenthesized(msg string) string {
	if strings.TrimSpace(msg) == "" {
		return ""
	}
	return " (" + msg + ")"
}

// refusedRedirect is what resp says when it is a redirect of a write that
// safeRedirects did not follow (or of the GET a write was turned into),
// or of a look-up to another origin, "" otherwise: where it leads, and
// whether the write may have been made (as connectors.WriteAnswered marks
// it). op names the record ("create invoice", "find customer").
func refusedRedirect(op string, resp *http.Response) string {
	loc := resp.Header.Get("Location")
	first := resp.Request
	for first != nil && first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if loc == "" || first == nil || !followedByGo[resp.StatusCode] {
		return ""
	}
	to, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return ""
	}
	record := recordOf(op)
	if !connectors.IsWrite(first.Method) {
		if keepsCredential(first.URL, to) {
			return ""
		}
		// A look-up sent to another origin (safeRedirects): its answer
		// there, without the credential, cannot prove the entry absent.
		// The host only: the query holds what was looked up, and a
		// Location may carry user info.
		return fmt.Sprintf("the API redirects this look-up (%d) to another host, %s: not followed, since dealsync sends its credential "+
			"to base_url's scheme, host and port only, and an answer without it cannot tell that the %s is not there (nothing is created "+
			"on its word); set base_url to where the API answers", resp.StatusCode, to.Host, record)
	}
	own := resp.Request.Method == first.Method // the write's own answer
	switch method := first.Method; {
	case own && connectors.WriteMoved(resp):
		// It says the API is elsewhere: the write was not carried out
		// (nor marked so, connectors.WriteAnswered).
		why := "moved"
		if resp.StatusCode == http.StatusFound {
			why = "http:// to https://"
		}
		return fmt.Sprintf("the API redirects this %s to %s (%d: %s), which would make it a GET there: nothing was created; "+
			"set base_url (or the path) to where the API answers", method, loc, resp.StatusCode, why)
	case own && resp.StatusCode == http.StatusFound && !leadsToWhatWasMade(resp, resp.Request.URL, to):
		// A 302 to another path than a record under this one, or to
		// this path elsewhere: a Post/Redirect/Get after the write was
		// made, or a refusal (a log-in page). Marked as made.
		return fmt.Sprintf("the API redirects this %s to %s (302), which is no record under %s: not followed, since it would make the %s a GET; "+
			"the ERP may have carried the %s out (a redirect after a create) or not (a log-in page, a proxy's redirect): look for the %s in the ERP "+
			"before retrying the run; set base_url (or the path) to where the API is", method, loc, resp.Request.URL.Path, method, method, record)
	case !keepsCredential(first.URL, to) && (resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect ||
		!connectors.IsWrite(resp.Request.Method)):
		// A redirect to what the write made, on another origin: the GET
		// would go without the credential. Marked as made.
		answered := fmt.Sprintf("this %s with a redirect (%d)", method, resp.StatusCode)
		if !own {
			answered = fmt.Sprintf("this %s with a redirect, and the GET of it with another (%d),", method, resp.StatusCode)
		}
		return fmt.Sprintf("the API answered %s to another host, %s: not followed, since dealsync does not send its "+
			"credential to another host; the ERP may have carried the %s out, and the %s may exist there: look for it in the ERP before "+
			"retrying the run (and set base_url to where the API is, should it have moved)", answered, to.Host, method, record)
	}
	return ""
}

// recordOf is the record an op names: "invoice" for "create invoice" or
// "find invoice"; "record" for another op.
func recordOf(op string) string {
	for _, verb := range [...]string{"create ", "find "} {
		if r, ok := strings.CutPrefix(op, verb); ok {
			return r
		}
	}
	return "record"
}

// followedByGo are the redirects Go's client follows (when CheckRedirect
// lets it).
var followedByGo = map[int]bool{
	http.StatusMovedPermanently: true, http.StatusFound: true, http.StatusSeeOther: true,
	http.StatusTemporaryRedirect: true, http.StatusPermanentRedirect: true,
}

// vendorMessage reads {"error":{"message","field"}} and, failing that,
// {"error":"..."} or {"message","field"}; otherwise the body's first 512
// bytes are the message.
func vendorMessage(body []byte) (msg, field string) {
	var shaped struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Field   string          `json:"field"`
	}
	if json.Unmarshal(body, &shaped) == nil {
		if len(shaped.Error) > 0 {
			var d ErrorDetail
			if json.Unmarshal(shaped.Error, &d) == nil && d.Message != "" {
				return truncate(d.Message), d.Field
			}
			var s string
			if json.Unmarshal(shaped.Error, &s) == nil && s != "" {
				return truncate(s), shaped.Field
			}
		}
		if shaped.Message != "" {
			return truncate(shaped.Message), shaped.Field
		}
	}
	return truncate(string(body)), ""
}

func truncate(s string) string {
	if len(s) > maxErrorMessage {
		s = s[:maxErrorMessage] // a rune cut in half is dropped below
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, ""))
}
