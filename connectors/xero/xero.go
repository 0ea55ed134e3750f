// Package xero is the "xero" ERP target: Xero's Accounting API.
//
//	GET /Contacts?searchTerm=…&includeArchived=true&page=N&pageSize=100
//	                                         find the customer by ContactNumber, compared exactly
//	GET /Contacts?where=TaxNumber=="…"       then by TaxNumber (skipped where Xero answers HighVolumeException)
//	GET /Contacts?searchTerm=…&page=N&pageSize=100
//	                                         then by Name, compared ignoring case
//	GET /Contacts/{ContactID}                follow a merged contact to the one it was merged into
//	PUT /Contacts?summarizeErrors=true       create it, Idempotency-Key
//	POST /Contacts/{ContactID}?summarizeErrors=true
//	                                         claim a contact matched by TaxNumber, Name or a merge
//	GET /Invoices?where=…Reference=="…"      check before create (re-runs after Xero forgot the key)
//	PUT /Invoices?summarizeErrors=true&unitdp=4
//	                                         create the invoice, Idempotency-Key
//
// summarizeErrors=true makes Xero refuse an element that fails validation
// with a 400 ValidationException; by default (false) it answers 200 with
// the element flagged (HasValidationErrors / HasErrors, ValidationErrors)
// and an all-zero id, which is refused here too, in case the parameter is
// lost on the way.
//
// Every call carries xero-tenant-id and an OAuth 2.0 bearer token from the
// refresh-token grant; Xero rotates the refresh token on every refresh and
// invalidates the old one, so the new one is saved (erpkit.FileTokenStore)
// before the access token is used.
package xero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Defaults of Config.
const (
	DefaultBaseURL  = "https://api.xero.com/api.xro/2.0"
	DefaultTokenURL = "https://identity.xero.com/connect/token"
	DefaultTimeout  = 30 * time.Second
	// DeepLink is where a person opens an invoice in Xero.
	DeepLink = "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID="
	// maxIdempotencyKey is Xero's limit ("128 character max").
	maxIdempotencyKey = 128
	// summarizeErrors asks Xero to answer a validation failure with 400
	// instead of 200 and the element flagged (its default).
	summarizeErrors = "summarizeErrors=true"
)

// Config is the `targets.<name>` block of a target whose type is "xero".
type Config struct {
	// TenantID is the organisation (xero-tenant-id), from GET /connections.
	TenantID string `mapstructure:"tenant_id" validate:"required,uuid"`
	// ClientID and ClientSecret are the app's, from developer.xero.com.
	ClientID     string        `mapstructure:"client_id" validate:"required"`
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required"`
	// RefreshToken seeds TokenFile the first time (from the consent flow);
	// after that the rotated token in TokenFile is the one used.
	RefreshToken secret.Secret `mapstructure:"refresh_token"`
	// TokenFile keeps the current token durably (mode 0600).
	TokenFile string `mapstructure:"token_file" validate:"required"`
	// LinkFile, when set, keeps CRM company → ContactID links so repeat
	// invoices need no contact search.
	LinkFile string `mapstructure:"link_file"`
	// Status of new invoices: DRAFT (default), SUBMITTED or AUTHORISED.
	Status string `mapstructure:"status" validate:"oneof=DRAFT SUBMITTED AUTHORISED"`
	// LineAmountTypes: Exclusive (default: unit prices are net), Inclusive or NoTax.
	LineAmountTypes string `mapstructure:"line_amount_types" validate:"oneof=Exclusive Inclusive NoTax"`
	// DefaultAccountCode and DefaultTaxType apply to lines whose mapping
	// sets no account_code / tax_code.
	DefaultAccountCode string `mapstructure:"default_account_code"`
	DefaultTaxType     string `mapstructure:"default_tax_type"`
	BrandingThemeID    string `mapstructure:"branding_theme_id" validate:"omitempty,uuid"`
	// CheckReference looks for an invoice with the same Reference before
	// creating one (default true).
	CheckReference bool `mapstructure:"check_reference"`
	// BaseURL and TokenURL are Xero's; change them for a mock.
	BaseURL  string        `mapstructure:"base_url" validate:"required,url"`
	TokenURL string        `mapstructure:"token_url" validate:"required,url"`
	Timeout  time.Duration `mapstructure:"timeout" validate:"gte=0"`
}

// RotatingGrant names the authorisation the target's tokens come from
// (its client id and the refresh token that seeds TokenFile) and where they
// are kept. Xero rotates the refresh token on every refresh, so targets of
// one authorisation (several organisations authorised in one consent
// flow) must share one token file: the config refuses them with different
// ones.
func (c Config) RotatingGrant() (clientID string, refreshToken secret.Secret, tokenFile string) {
	return c.ClientID, c.RefreshToken, c.TokenFile
}

// IdentifyingSettings are the organisation and the API its calls reach
// (connectors.TargetIdentifier): never the app's credentials or tokens.
func (c Config) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{
		{Key: "tenant_id", Value: strings.ToLower(strings.TrimSpace(c.TenantID))},
		connectors.URLSetting("base_url", c.BaseURL),
	}
}

// DefaultConfig has every default filled in.
func DefaultConfig() Config {
	return Config{
		Status: "DRAFT", LineAmountTypes: "Exclusive", CheckReference: true,
		BaseURL: DefaultBaseURL, TokenURL: DefaultTokenURL, Timeout: DefaultTimeout,
	}
}

func init() {
	connectors.RegisterTargetType("xero", "Xero Accounting API (OAuth 2.0 with refresh-token rotation, Idempotency-Key)", DefaultConfig,
		func(c Config, env connectors.Env) (*Target, error) {
			return New(c, Deps{HTTPClient: env.HTTPClient, Logger: env.Logger, ConfigKey: env.ConfigKey, KeyVar: env.KeyVar})
		})
}

// Deps are the Target's collaborators; zero values take the config's.
type Deps struct {
	HTTPClient *http.Client
	Tokens     erpkit.TokenStore // default: FileTokenStore{cfg.TokenFile}
	Links      erpkit.LinkStore  // default: FileLinkStore{cfg.LinkFile} or none
	Logger     *slog.Logger      // default: none
	// ConfigKey is the target's config key (targets.<name>), which its
	// advice names its settings under (connectors.Env.ConfigKey).
	ConfigKey string
	// KeyVar names a setting's variable in that advice
	// (connectors.Env.KeyVar).
	KeyVar func(key string) string
}

// Target is the Xero target. It is safe for concurrent use.
type Target struct {
	cfg    Config
	base   string
	client *erpkit.Client
	links  erpkit.LinkStore
	opts   Options
	log    *slog.Logger
	// taxRuleOff is set once Xero refuses the TaxNumber look-up as too
	// costly for the organisation (HighVolumeException): the rule is
	// skipped from then on, without asking Xero again.
	taxRuleOff atomic.Bool
}

var (
	_ connectors.Target                 = (*Target)(nil)
	_ connectors.InvoiceReferenceLookup = (*Target)(nil)
	_ connectors.InvoiceRetrier         = (*Target)(nil)
)

// InvoiceRetry implements connectors.InvoiceRetrier: with check_reference,
// a retry finds the invoice by its Reference; without, it sends the
// invoice again, which Xero answers with the one made only while it
// keeps the Idempotency-Key (a limited time: a run retried days later
// makes a second invoice).
func (t *Target) InvoiceRetry() connectors.InvoiceRetry {
	if t.cfg.CheckReference {
		return connectors.InvoiceRetryFinds
	}
	return connectors.InvoiceRetryKeyOnly
}

// LooksUpInvoicesByReference implements connectors.InvoiceReferenceLookup:
// with check_reference, CreateInvoice takes the contact's invoice with the
// same Reference as the deal's.
func (t *Target) LooksUpInvoicesByReference() (bool, string) {
	return t.cfg.CheckReference, "check_reference"
}

// LineAmountsIncludeTax implements connectors.GrossLineAmounts: with
// line_amount_types Inclusive, Xero takes the unit amounts as including
// their tax.
func (t *Target) LineAmountsIncludeTax() (bool, string) {
	return t.cfg.LineAmountTypes == "Inclusive", "line_amount_types: Inclusive"
}

// New makes a Target. The client secret is resolved here, once.
func New(cfg Config, deps Deps) (*Target, error) {
	d := DefaultConfig()
	if cfg.BaseURL == "" {
		cfg.BaseURL = d.BaseURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = d.TokenURL
	}
	if cfg.Status == "" {
		cfg.Status = d.Status
	}
	if cfg.LineAmountTypes == "" {
		cfg.LineAmountTypes = d.LineAmountTypes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.TenantID == "" || cfg.ClientID == "" {
		return nil, errors.New("xero: tenant_id and client_id are required")
	}
	if cfg.ClientSecret.IsZero() {
		return nil, errors.New("xero: client_secret is required")
	}
	// base_url may hold a credential (user info, a query): shown without it.
	u, err := erpkit.ParseConfiguredURL("xero: base_url", cfg.BaseURL, "https://api.xero.com/api.xro/2.0")
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("xero: base_url %q is not an http(s) URL", erpkit.ShownURL(u))
	}
	// Xero's own host serves the Accounting API under /api.xro/2.0, to
	// which dealsync adds /Invoices and /Contacts: any other path there
	// (the host alone, an endpoint pasted whole) would answer every call
	// 404. A mock's host is taken as it is.
	if path := strings.TrimRight(u.Path, "/"); strings.EqualFold(u.Hostname(), "api.xero.com") && path != "/api.xro/2.0" {
		return nil, fmt.Errorf("xero: base_url %q: Xero's Accounting API is %s (dealsync adds /Invoices and /Contacts to it); write that", erpkit.ShownURL(u), DefaultBaseURL)
	}
	store := deps.Tokens
	if store == nil {
		if cfg.TokenFile == "" {
			return nil, errors.New("xero: token_file is required")
		}
		store = &erpkit.FileTokenStore{Path: cfg.TokenFile}
	}
	links := deps.Links
	if links == nil {
		if cfg.LinkFile != "" {
			links = &erpkit.FileLinkStore{Path: cfg.LinkFile}
		} else {
			links = erpkit.NoLinks{}
		}
	}
	hc := deps.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	conn := fmt.Sprintf("Xero tenant %s", cfg.TenantID)
	keys := connectors.Env{ConfigKey: deps.ConfigKey, KeyVar: deps.KeyVar}.TargetKeys()
	tokens, err := erpkit.NewRefreshingSource(erpkit.RefreshGrant{
		Service: "xero", Connection: conn, Target: true, Keys: keys, Key: "xero: ",
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RefreshToken: cfg.RefreshToken,
		TokenURL: cfg.TokenURL, Store: store, HTTPClient: hc,
	})
	if err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Target{
		cfg:   cfg,
		log:   log,
		base:  strings.TrimRight(cfg.BaseURL, "/"),
		links: links,
		opts: Options{Status: cfg.Status, LineAmountTypes: cfg.LineAmountTypes,
			DefaultAccountCode: cfg.DefaultAccountCode, DefaultTaxType: cfg.DefaultTaxType, BrandingThemeID: cfg.BrandingThemeID},
	}
	t.client = &erpkit.Client{
		Service: "xero", Connection: conn, HTTP: hc, Tokens: tokens, Timeout: cfg.Timeout,
		Header:       http.Header{"Xero-Tenant-Id": {cfg.TenantID}},
		ErrorDetail:  errorDetail,
		RetryAfter:   retryAfter,
		AccessAdvice: func(status int, _ []byte) string { return accessAdvice(keys, status) },
		Keys:         keys,
	}
	return t, nil
}

// accessAdvice says what to check when Xero answers 403 (erpkit.Client):
// most often AuthorizationUnsuccessful for a Xero-Tenant-Id that the
// authorization behind the token did not connect (a tenant_id mistyped, or
// another organisation's), else the app's scopes or a disconnected
// organisation. A 401 keeps the client's advice.
func accessAdvice(keys connectors.Keys, status int) string {
	if status != http.StatusForbidden {
		return ""
	}
	return "check " + keys.Key("tenant_id") + " first: Xero refuses a tenant the authorization behind the refresh token in " + keys.Key("token_file") +
		" did not connect (GET https://api.xero.com/connections with its access token lists the tenantIds it did), " +
		"then the scopes of the app of " + keys.Key("client_id") + " and that the organisation is still connected to it"
}

// IdempotencyKey is the Idempotency-Key Xero gets for a step key: the key
// itself when it fits 128 visible ASCII characters, else a hash-suffixed
// form of it (erpkit.LegalKey).
func IdempotencyKey(key string) string {
	return erpkit.LegalKey(key, maxIdempotencyKey, erpkit.PrintableASCII)
}

func (t *Target) linkKey(externalID string) string {
	return "xero/" + t.cfg.TenantID + "/" + externalID
}

// FindOrCreateCustomer finds the contact, deterministically and never
// fuzzily: the stored link, then ContactNumber == CRM company id, then
// TaxNumber == tax id (skipped on an organisation where Xero refuses that
// filter: HighVolumeException), then Name == name ignoring case (Xero
// contact names are unique regardless of case). The ContactNumber and Name
// look-ups use Xero's searchTerm, a case-insensitive text search, and
// compare its answer here (searchContacts). A tax-number or name match that carries
// another company's ContactNumber is not taken; one without a
// ContactNumber is claimed (the company id written as its ContactNumber),
// so that another CRM company with the same tax number no longer matches
// it. A company whose ContactNumber only archived contacts carry is billed
// to the contact a person merged them into, or refused (mergedInto): it is
// never created again beside them. When none matches, the contact is
// created under the step's key, with the company id as ContactNumber.
func (t *Target) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	if strings.TrimSpace(c.Name) == "" {
		return connectors.CustomerRef{}, fmt.Errorf("xero find customer: the customer has no name: %w", connectors.ErrPermanent)
	}
	if c.ExternalID != "" {
		if id, ok, err := t.links.Get(ctx, t.linkKey(c.ExternalID)); err != nil {
			return connectors.CustomerRef{}, err
		} else if ok && !zeroID(id) {
			// An all-zero id is a failed create an older version linked:
			// the company is looked up afresh and the link rewritten.
			return connectors.CustomerRef{ID: id}, nil
		}
	}
	found, err := t.findContact(ctx, c)
	if err != nil {
		return connectors.CustomerRef{}, err
	}
	if found.id != "" {
		return t.take(ctx, c, found, key)
	}

	id, err := t.createContact(ctx, c, key)
	if err != nil {
		// Another run, or a person, may have created the same company
		// meanwhile (Xero names are unique, so the loser's element fails
		// validation): take its contact. Not when the create could not get
		// a token: it was not sent, and its 400 is the token endpoint's.
		var api *connectors.APIError
		if errors.As(err, &api) && api.StatusCode == http.StatusBadRequest && !erpkit.IsTokenFailure(err) {
			again, ferr := t.findContact(ctx, c)
			if ferr != nil {
				// The look-up's own failure (a 429, an outage, the token or
				// link file) is the one to report: it is retried, and the
				// retry takes the contact; Xero's 400 would fail the run for
				// good over a contact that exists.
				return connectors.CustomerRef{}, ferr
			}
			if again.id != "" {
				return t.take(ctx, c, again, key)
			}
			if nameTaken(api) {
				return connectors.CustomerRef{}, t.nameTakenError(c, api)
			}
		}
		return connectors.CustomerRef{}, err
	}
	return t.linked(ctx, c, connectors.CustomerRef{ID: id, Created: true})
}

// nameTaken reports whether Xero refused a contact because an active
// contact has its name already, in any letter case ("The contact name … is
// already assigned to another contact. The contact name must be unique
// across all active contacts.").
func nameTaken(api *connectors.APIError) bool {
	return strings.Contains(strings.ToLower(api.Message), "already assigned to another contact")
}

// nameTakenError is the permanent error of a create Xero refused because
// the name is taken, when no look-up finds the contact that holds it
// (Xero's uniqueness rule may equate names that differ in more than
// letter case, or the search answered more contacts than are read): it
// names the contact name and says what to do, with Xero's own message.
func (t *Target) nameTakenError(c model.Customer, api *connectors.APIError) error {
	name := strings.TrimSpace(c.Name)
	link := ""
	if c.ExternalID != "" {
		link = fmt.Sprintf(" (or, with link_file set, add %s to that file)", linkEntry(t.linkKey(c.ExternalID)))
	}
	return fmt.Errorf("xero create contact: Xero refuses to create contact %q for %s: the name is already held by another active contact (Xero's names are unique regardless of case), "+
		"but dealsync's look-up of the name (Xero's searchTerm, at most %d contacts read, compared ignoring case) does not find it (Xero said: %s); "+
		"in Xero, find the contact with that name: if it is this company's contact, rename it to exactly %q%s; if it is another business, rename one of the two (in Xero or in the CRM); then retry: %w",
		name, company(c), maxSearchPages*searchPageSize, api.Message, name, link, connectors.ErrPermanent)
}

// linkEntry is the link_file entry an operator writes to link a company to
// a contact by hand.
func linkEntry(key string) string {
	k, _ := json.Marshal(key)
	return string(k) + `: "<its ContactID>"`
}

// createContact creates the contact under the step's key and returns its
// ContactID. An element Xero did not save is a 400 APIError, whether Xero
// answered 400 (summarizeErrors=true) or 200 with the element flagged.
func (t *Target) createContact(ctx context.Context, c model.Customer, key string) (string, error) {
	const op = "create contact"
	ct := NewContact(c)
	if err := ContactFits(ct); err != nil {
		return "", fmt.Errorf("xero %s: %v: %w", op, err, connectors.ErrPermanent)
	}
	body, err := json.Marshal(ContactsBody{Contacts: []Contact{ct}})
	if err != nil {
		return "", fmt.Errorf("xero %s: %w", op, err)
	}
	resp, err := t.client.Do(ctx, erpkit.Call{
		Op: op, Method: http.MethodPut, URL: t.base + "/Contacts?" + summarizeErrors,
		Header: http.Header{"Idempotency-Key": {IdempotencyKey(key)}}, Body: body,
	})
	if err != nil {
		return "", err
	}
	var created ContactsBody
	if err := resp.Decode("xero", op, &created); err != nil {
		return "", err
	}
	if len(created.Contacts) == 0 {
		return "", fmt.Errorf("xero %s: answer has no contact", op)
	}
	if err := unsaved(op, 0, created.Contacts[0]); err != nil {
		return "", err
	}
	if created.Contacts[0].ContactID == "" {
		return "", fmt.Errorf("xero %s: answer has no ContactID", op)
	}
	return created.Contacts[0].ContactID, nil
}

// unsaved is the error of a contact element of a 200 answer that Xero did
// not save: one with HasValidationErrors, any ValidationErrors, or the
// all-zero ContactID. It is a 400 APIError carrying Xero's messages, as if
// summarizeErrors=true had been honoured. nil for a saved contact.
func unsaved(op string, i int, ct Contact) error {
	if !ct.HasValidationErrors && len(ct.ValidationErrors) == 0 && !zeroID(ct.ContactID) {
		return nil
	}
	return &connectors.APIError{Service: "xero", Op: op, StatusCode: http.StatusBadRequest,
		Message: joinMessages(ct.ValidationErrors, "Xero did not save the contact (ContactID "+ct.ContactID+")"),
		Field:   fmt.Sprintf("Contacts[%d]", i)}
}

// zeroID reports whether id is the all-zero UUID Xero gives an element it
// did not save (00000000-0000-0000-0000-000000000000).
func zeroID(id string) bool {
	return id != "" && strings.Trim(id, "0-") == ""
}

// take claims a contact found by tax number or name, or as the
// destination of a merge, that has no ContactNumber yet, then links it. A
// claim Xero refuses for good (the contact was archived meanwhile, or
// fails Xero's validation) is logged
// and the match is used for this invoice without a link, so that the next
// deal of the company looks it up afresh. A claim that could not get a
// token (erpkit.IsTokenFailure) was not sent, whatever the class of the
// token endpoint's refusal: it is the error.
func (t *Target) take(ctx context.Context, c model.Customer, found match, key string) (connectors.CustomerRef, error) {
	if found.claim {
		if err := t.claim(ctx, found.id, contactNumber(c.ExternalID), key); err != nil {
			if !erpkit.Refused(err) {
				return connectors.CustomerRef{}, err
			}
			connectors.StepLogger(ctx, t.log).Warn("xero: the contact matched by tax number, name or a merge could not be claimed; it stays without a ContactNumber",
				"tenant", t.cfg.TenantID, "contact", found.id, "company", c.ExternalID, "error", err)
			return connectors.CustomerRef{ID: found.id}, nil
		}
	}
	return t.linked(ctx, c, connectors.CustomerRef{ID: found.id})
}

func (t *Target) linked(ctx context.Context, c model.Customer, ref connectors.CustomerRef) (connectors.CustomerRef, error) {
	if c.ExternalID != "" {
		if err := t.links.Put(ctx, t.linkKey(c.ExternalID), ref.ID); err != nil {
			return connectors.CustomerRef{}, err
		}
	}
	return ref, nil
}

// match is the contact findContact found; claim says that it carries no
// ContactNumber yet while the company has one to write.
type match struct {
	id    string
	claim bool
}

// findContact applies the matching rules in order; a zero match when none
// matches.
func (t *Target) findContact(ctx context.Context, c model.Customer) (match, error) {
	number := contactNumber(c.ExternalID)
	if number != "" {
		// searchTerm, not where=ContactNumber=="…": Xero refuses a filter
		// it has not optimised (ContactNumber, TaxNumber) on an
		// organisation with very many contacts (400 HighVolumeException),
		// which would fail every run there. The text search matches
		// substrings of names and e-mail addresses too: the answer is
		// compared exactly here.
		// Archived contacts too: Xero archives a contact that a person
		// merged into another one, and GET /Contacts leaves archived
		// contacts out by default, so the company would be created again
		// and the merge undone.
		cs, complete, err := t.searchContacts(ctx, number, true, func(ct Contact) bool { return ct.ContactNumber == number && active(ct) })
		if err != nil {
			return match{}, err
		}
		if !complete {
			// The search answered more contacts than are read (a short
			// number such as a Pipedrive id is in many names, numbers and
			// addresses), none of those read with the number: the exact
			// filter, which only a very large organisation refuses, says.
			// Not "not found" on the search alone: the company's contact
			// may be among those left unread, and the tax-number and name
			// rules may miss it (renamed in Xero), so a create would put a
			// second contact beside it.
			// Permanent rather than retried: a retry gets the same answers
			// and would only spend the rate limit.
			if !whereCanHold(number) {
				return match{}, t.tooManyMatches(c, number, `the exact filter cannot hold a value with " or \`)
			}
			exact, err := t.byField(ctx, "ContactNumber", number, true)
			switch {
			case highVolume(err):
				return match{}, t.tooManyMatches(c, number, "Xero refuses the exact filter on an organisation this large (HighVolumeException)")
			case err != nil:
				return match{}, err
			}
			cs = exact
		}
		var archived []Contact
		for _, ct := range cs {
			switch {
			case ct.ContactNumber != number:
			case active(ct):
				return match{id: ct.ContactID}, nil
			default:
				archived = append(archived, ct)
			}
		}
		if len(archived) > 0 {
			return t.mergedInto(ctx, c, number, archived)
		}
	}
	name := strings.TrimSpace(c.Name)
	// A contact another CRM company claims (its ContactNumber) is not ours.
	free := func(ct Contact) bool { return ct.ContactNumber == "" || ct.ContactNumber == number }
	found := func(ct Contact) match { return match{id: ct.ContactID, claim: number != "" && ct.ContactNumber == ""} }
	// A tax number Xero's where syntax cannot hold is not looked for:
	// searchTerm does not search tax numbers (the name rule follows).
	if tax := strings.TrimSpace(c.TaxID); tax != "" && whereCanHold(tax) && !t.taxRuleOff.Load() {
		cs, err := t.byField(ctx, "TaxNumber", tax, false)
		if highVolume(err) {
			// Xero has no optimised filter and no search on TaxNumber: on
			// such an organisation the rule cannot be applied at all. It
			// is skipped, saying so once, rather than failing every new
			// company with a tax id; the name rule still applies, and the
			// ContactNumber rule finds the contacts dealsync made.
			if t.taxRuleOff.CompareAndSwap(false, true) {
				connectors.StepLogger(ctx, t.log).Warn("xero: Xero refuses to look contacts up by tax number on this organisation (HighVolumeException: too many contacts for that filter), "+
					"so the tax-number rule is skipped from now on (the name rule applies): a contact that only its tax number would match is not found, and a new contact is made for the company",
					"tenant", t.cfg.TenantID, "company", c.ExternalID, "error", err)
			}
			cs, err = nil, nil
		}
		if err != nil {
			return match{}, err
		}
		var ids []string
		var first Contact
		for _, ct := range cs {
			if ct.TaxNumber == tax && free(ct) {
				if len(ids) == 0 {
					first = ct
				}
				ids = append(ids, fmt.Sprintf("%q %s", ct.Name, ct.ContactID))
			}
		}
		switch len(ids) {
		case 0:
		case 1:
			return found(first), nil
		default:
			// ContactNumber is read only in Xero's UI, so the operator is
			// asked for what the UI can do: leave one contact with the tax
			// number.
			who := fmt.Sprintf("CRM company %q", name)
			if c.ExternalID != "" {
				who = fmt.Sprintf("CRM company %q (%s)", c.ExternalID, name)
			}
			return match{}, fmt.Errorf("xero find contact: %d active contacts have TaxNumber %q (%s) and none is linked to %s yet, so dealsync cannot tell which one it is; "+
				"in Xero, remove or correct the tax number on the contacts that are not this company, or merge the duplicates into one contact (or archive the wrong ones), then retry: %w",
				len(ids), tax, strings.Join(ids, ", "), who, connectors.ErrPermanent)
		}
	}
	// Xero refuses a name that differs from an active contact's only in
	// case ("already assigned to another contact"), so such a contact is
	// the company's. Xero's where compares Name=="…" with case, though:
	// the case-insensitive searchTerm finds it, and the answer is compared
	// ignoring case here.
	cs, complete, err := t.searchContacts(ctx, name, false, func(ct Contact) bool { return sameName(ct.Name, name) })
	if err != nil {
		return match{}, err
	}
	for _, ct := range cs {
		if !sameName(ct.Name, name) {
			continue
		}
		if !free(ct) {
			return match{}, fmt.Errorf("xero find contact: the contact named %q (%s) belongs to CRM company %q, not %q, and Xero contact names are unique: %w",
				name, ct.ContactID, ct.ContactNumber, c.ExternalID, connectors.ErrPermanent)
		}
		return found(ct), nil
	}
	if !complete {
		// Unlike the ContactNumber rule's, this miss is safe to act on:
		// Xero refuses a create whose name an active contact holds in
		// any case, and that refusal is then reported (nameTakenError),
		// so no second contact is made.
		connectors.StepLogger(ctx, t.log).Warn("xero: Xero's search for the company's name answered more contacts than are read; none of those read has the name, so the contact is created (Xero refuses it if the name is taken)",
			"tenant", t.cfg.TenantID, "company", c.ExternalID, "read", maxSearchPages*searchPageSize)
	}
	return match{}, nil
}

// sameName reports whether a contact's name is name (trimmed), ignoring
// case, as Xero's uniqueness rule compares them.
func sameName(contactName, name string) bool {
	return strings.EqualFold(strings.TrimSpace(contactName), name)
}

// tooManyMatches is the permanent error of a ContactNumber look-up whose
// search answered more contacts than are read, none with the number.
func (t *Target) tooManyMatches(c model.Customer, number, exact string) error {
	return fmt.Errorf("xero find contact: Xero's search for the Contact Code %q of %s answers more than %d contacts (it matches the text anywhere in names, contact codes and e-mail addresses), "+
		"none of those read has exactly that Contact Code, and %s; dealsync does not create a contact for the company while the contacts it could not read may hold it: "+
		"with link_file set, add %s to that file (the company's contact, created by hand in Xero if it has none), or bill the deal by hand; then retry: %w",
		number, company(c), maxSearchPages*searchPageSize, exact, linkEntry(t.linkKey(c.ExternalID)), connectors.ErrPermanent)
}

// maxMerges bounds the merges followed from an archived contact (one
// merged into a contact merged on in turn), against a loop.
const maxMerges = 10

// mergedInto is the match of a company whose ContactNumber only archived
// contacts carry. A person merged the company's contact into another one:
// Xero archived it and set its MergedToContactID, and the destination kept
// its own name and no ContactNumber. That destination (followed on, if it
// was merged in turn) is the company's contact, claimed when it has no
// ContactNumber. Refused for good, saying what to do in Xero: a
// destination carrying another company's ContactNumber (dealsync does not
// bill one company's deal to another's contact), archived contacts merged
// into different contacts, and contacts that were archived, not merged (or
// whose destination was archived since), since creating the company again
// would undo what the person did.
func (t *Target) mergedInto(ctx context.Context, c model.Customer, number string, archived []Contact) (match, error) {
	var from, dest Contact
	for _, src := range archived {
		if src.MergedToContactID == "" {
			continue
		}
		d, err := t.destination(ctx, src)
		if err != nil {
			return match{}, err
		}
		if dest.ContactID != "" && d.ContactID != dest.ContactID {
			return match{}, fmt.Errorf("xero find contact: the archived contacts %q (%s) and %q (%s), which have the Contact Code %q of %s, were merged into different contacts, %q (%s) and %q (%s), so dealsync cannot tell which one is the company's; "+
				"in Xero, merge those two into one, or restore the archived contact to bill the company to, then retry: %w",
				from.Name, from.ContactID, src.Name, src.ContactID, number, company(c), dest.Name, dest.ContactID, d.Name, d.ContactID, connectors.ErrPermanent)
		}
		from, dest = src, d
	}
	if dest.ContactID == "" {
		return match{}, notActive(c, number, archived[0], archived[0])
	}
	if !active(dest) {
		return match{}, notActive(c, number, from, dest)
	}
	switch dest.ContactNumber {
	case number:
		return match{id: dest.ContactID}, nil
	case "":
		return match{id: dest.ContactID, claim: true}, nil
	}
	return match{}, fmt.Errorf("xero find contact: contact %q (%s), which has the Contact Code %q of %s, was merged in Xero into contact %q (%s), whose Contact Code %q is another CRM company's; dealsync does not bill one company's deal to another's contact: "+
		"in Xero, restore contact %q (the merge archived it) and retry to bill the company there again; or, if the two companies are one business, bill this deal by hand and merge them in the CRM: %w",
		from.Name, from.ContactID, number, company(c), dest.Name, dest.ContactID, dest.ContactNumber, from.Name, connectors.ErrPermanent)
}

// notActive is the permanent error for a company whose contact src (its
// ContactNumber number) is archived and was not merged, or was merged into
// last, which is not active (archived since). It names them and says what
// to do in Xero.
func notActive(c model.Customer, number string, src, last Contact) error {
	what := fmt.Sprintf("contact %q (%s), which has the Contact Code %q of %s", src.Name, src.ContactID, number, company(c))
	todo := "restore it to bill the company there, or clear its Contact Code to have a new contact created"
	if last.ContactID == src.ContactID {
		what += ", is archived in Xero and was not merged into another contact"
	} else {
		state := "is archived"
		if last.ContactStatus != "ARCHIVED" {
			state = "has ContactStatus " + last.ContactStatus
		}
		what += fmt.Sprintf(", was merged in Xero into contact %q (%s), which %s", last.Name, last.ContactID, state)
		todo = fmt.Sprintf("restore contact %q (%s) to bill the company there, or clear the Contact Code of contact %q (%s) to have a new contact created",
			last.Name, last.ContactID, src.Name, src.ContactID)
	}
	return fmt.Errorf("xero find contact: %s; dealsync does not create the company again beside it: in Xero, %s "+
		"(the Contact Code, ContactNumber, is read only on Xero's contact screen: clear it through Xero's API), then retry: %w",
		what, todo, connectors.ErrPermanent)
}

// company names the CRM company of c in an error: its id and name.
func company(c model.Customer) string {
	if c.ExternalID == "" {
		return fmt.Sprintf("CRM company %q", c.Name)
	}
	return fmt.Sprintf("CRM company %q (%s)", c.ExternalID, c.Name)
}

// destination follows an archived contact's MergedToContactID to the
// contact it was merged into, and on while that one was merged in turn.
func (t *Target) destination(ctx context.Context, from Contact) (Contact, error) {
	ct := from
	for i := 0; !active(ct) && ct.MergedToContactID != ""; i++ {
		if i == maxMerges {
			return Contact{}, fmt.Errorf("xero find contact: contact %q (%s) was merged into a contact merged on more than %d times (MergedToContactID %s); "+
				"in Xero, restore the contact the company is to be billed to, then retry: %w", from.Name, from.ContactID, maxMerges, ct.MergedToContactID, connectors.ErrPermanent)
		}
		next, err := t.contact(ctx, ct.MergedToContactID)
		if err != nil {
			return Contact{}, err
		}
		ct = next
	}
	return ct, nil
}

// contact fetches one contact by its ContactID, whatever its status: Xero
// answers it with its MergedToContactID.
func (t *Target) contact(ctx context.Context, id string) (Contact, error) {
	const op = "get contact"
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/Contacts/" + url.PathEscape(id)})
	if err != nil {
		return Contact{}, err
	}
	var ans ContactsBody
	if err := resp.Decode("xero", op, &ans); err != nil {
		return Contact{}, err
	}
	if len(ans.Contacts) == 0 || ans.Contacts[0].ContactID != id {
		return Contact{}, fmt.Errorf("xero %s: answer has no contact %s", op, id)
	}
	return ans.Contacts[0], nil
}

// active reports whether a contact is active (no ContactStatus: an answer
// that leaves it out lists active contacts only).
func active(ct Contact) bool { return ct.ContactStatus == "" || ct.ContactStatus == "ACTIVE" }

// claim writes the company id as the ContactNumber of a contact matched by
// tax number or name (or a merge), under an idempotency key derived from
// the step's. A contact element Xero flags as not saved is a 400 APIError
// (permanent).
func (t *Target) claim(ctx context.Context, contactID, number, key string) error {
	const op = "claim contact"
	body, err := json.Marshal(ContactClaimsBody{Contacts: []ContactClaim{{ContactID: contactID, ContactNumber: number}}})
	if err != nil {
		return fmt.Errorf("xero %s: %w", op, err)
	}
	resp, err := t.client.Do(ctx, erpkit.Call{
		Op: op, Method: http.MethodPost, URL: t.base + "/Contacts/" + url.PathEscape(contactID) + "?" + summarizeErrors,
		Header: http.Header{"Idempotency-Key": {IdempotencyKey(key + "/claim/" + contactID)}}, Body: body,
	})
	if err != nil {
		return err
	}
	var ans ContactsBody
	if err := resp.Decode("xero", op, &ans); err != nil {
		return err
	}
	for i, ct := range ans.Contacts {
		if err := unsaved(op, i, ct); err != nil {
			return err
		}
	}
	return nil
}

// Paging of searchContacts: pages of searchPageSize contacts (the page
// size Xero's OpenAPI gives page=N), maxSearchPages of them at most.
const (
	searchPageSize = 100
	maxSearchPages = 10
)

// searchContacts reads what Xero's searchTerm (a case-insensitive text
// search over the contacts' names, first and last names, contact numbers
// and e-mail addresses) answers for term, page by page: the active
// contacts, and with archived the archived ones too (includeArchived=true),
// with their MergedToContactID, which Xero returns only to a paged list.
// It stops at the first contact done reports true for, or at the last
// page. A term matches substrings, so many contacts may come back:
// complete is false when maxSearchPages pages were read and more remain,
// none of them done.
func (t *Target) searchContacts(ctx context.Context, term string, archived bool, done func(Contact) bool) (cs []Contact, complete bool, err error) {
	for page := 1; page <= maxSearchPages; page++ {
		q := url.Values{"searchTerm": {term}, "page": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(searchPageSize)}}
		if archived {
			q.Set("includeArchived", "true")
		}
		list, kept, err := t.listContacts(ctx, q, archived)
		if err != nil {
			return nil, false, err
		}
		for _, ct := range kept {
			cs = append(cs, ct)
			if done(ct) {
				return cs, true, nil
			}
		}
		// The last page: as the answer's pagination says, or, in an
		// answer without it, a page that is not full.
		if p := list.Pagination; (p != nil && page >= p.PageCount) || (p == nil && len(list.Contacts) < searchPageSize) {
			return cs, true, nil
		}
	}
	return cs, false, nil
}

// byField lists the active contacts Xero finds for where=field=="value"
// (the caller compares again, exactly), for a value whereCanHold, and
// with archived the archived ones too
// (includeArchived=true), with their MergedToContactID, which Xero returns
// only to a paged list (page=1: up to 100 contacts, far more than one
// value of such a field matches). On an organisation with very many
// contacts Xero refuses a filter on a field it has not optimised
// (ContactNumber, TaxNumber): a 400 APIError that highVolume reports.
func (t *Target) byField(ctx context.Context, field, value string, archived bool) ([]Contact, error) {
	q := url.Values{"where": {field + "==" + quote(value)}}
	if archived {
		q.Set("includeArchived", "true")
		q.Set("page", "1")
	}
	_, kept, err := t.listContacts(ctx, q, archived)
	return kept, err
}

// listContacts GETs /Contacts with q and returns the answer and the
// contacts of it that count: those with an id, active, or archived when
// archived asks for them.
func (t *Target) listContacts(ctx context.Context, q url.Values, archived bool) (ContactList, []Contact, error) {
	const op = "find contact"
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/Contacts?" + q.Encode()})
	if err != nil {
		return ContactList{}, nil, err
	}
	var list ContactList
	if err := resp.Decode("xero", op, &list); err != nil {
		return ContactList{}, nil, err
	}
	var kept []Contact
	for _, ct := range list.Contacts {
		if ct.ContactID != "" && (active(ct) || (archived && ct.ContactStatus == "ARCHIVED")) {
			kept = append(kept, ct)
		}
	}
	return list, kept, nil
}

// highVolume reports whether err is Xero's refusal of a where filter it
// has not optimised, on an organisation with very many contacts: 400,
// Type HighVolumeException (ErrorNumber 51), "Your request is not
// filtering Contacts efficiently …" (errorDetail puts the Type first).
func highVolume(err error) bool {
	var api *connectors.APIError
	return errors.As(err, &api) && api.StatusCode == http.StatusBadRequest && strings.HasPrefix(api.Message, "HighVolumeException")
}

// quote makes a string literal of Xero's where syntax, for a value
// whereCanHold.
func quote(s string) string { return `"` + s + `"` }

// whereCanHold reports whether a string literal of Xero's where syntax can
// hold s: it has no escapes, so a double quote would end the literal (Xero
// answers 400 QueryParseException), and a backslash is not known to stand
// for itself.
func whereCanHold(s string) bool { return !strings.ContainsAny(s, `"\`) }

// CreateInvoice creates the invoice exactly once. The PUT carries the
// Idempotency-Key derived from key, so a retry after a lost answer is
// answered from Xero's record of the first request. Because Xero keeps
// idempotency keys for a limited time, an existing ACCREC invoice of the
// same contact with the same Reference is looked for first (check_reference)
// and returned as Replayed: a re-run of a failed workflow days later does
// not invoice twice either. Two or more of them (not voided or deleted) are
// a permanent error naming them: dealsync does not guess which one is the
// deal's (existing).
//
// The deal's invoice billed to another contact (its company changed in the
// CRM after the invoice was made), found by its Reference or answered to
// the Idempotency-Key, is a permanent error naming both contacts: a second
// invoice would bill the deal twice, and reporting that one would give the
// deal another company's invoice.
func (t *Target) CreateInvoice(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	const op = "create invoice"
	call, err := t.invoiceCall(inv, customer, key)
	if err != nil {
		// An invoice Xero refuses to plan now may exist all the same: a
		// run under way whose earlier attempt made it before such lines
		// were refused (sameLineAmount) finds it, as a replay.
		if t.cfg.CheckReference && strings.TrimSpace(inv.Reference) != "" {
			if res, ok, lerr := t.existing(ctx, inv, customer.ID); lerr == nil && ok {
				return res, nil
			}
		}
		return connectors.InvoiceResult{}, err
	}
	if t.cfg.CheckReference && strings.TrimSpace(inv.Reference) != "" {
		if res, ok, err := t.existing(ctx, inv, customer.ID); err != nil {
			return connectors.InvoiceResult{}, err
		} else if ok {
			return res, nil
		}
	}
	resp, err := t.client.Do(ctx, call)
	if err != nil {
		return connectors.InvoiceResult{}, t.forgetArchivedContact(ctx, inv, customer, err)
	}
	var ans InvoiceAnswer
	if err := resp.Decode("xero", op, &ans); err != nil {
		return connectors.InvoiceResult{}, err
	}
	if len(ans.Invoices) == 0 {
		return connectors.InvoiceResult{}, fmt.Errorf("xero %s: answer has no invoice", op)
	}
	got := ans.Invoices[0]
	// summarizeErrors=true makes Xero answer a failed invoice 400 (see
	// errorDetail); a 200 whose element is flagged, or has the all-zero
	// InvoiceID, was not saved either.
	if got.HasErrors || len(got.ValidationErrors) > 0 || zeroID(got.InvoiceID) {
		return connectors.InvoiceResult{}, t.forgetArchivedContact(ctx, inv, customer, &connectors.APIError{Service: "xero", Op: op, StatusCode: http.StatusBadRequest,
			Message: joinMessages(got.ValidationErrors, "Xero reported errors on the invoice"), Field: "Invoices[0]"})
	}
	if got.InvoiceID == "" {
		return connectors.InvoiceResult{}, fmt.Errorf("xero %s: answer has no InvoiceID", op)
	}
	if billsAnother(got, customer.ID) {
		// Not the invoice sent: Xero answered the key from an earlier
		// request of this step, made before the deal's company changed,
		// or a proxy or mock answered in Xero's place.
		return connectors.InvoiceResult{}, billedToAnother(got, inv, customer.ID, true)
	}
	return connectors.InvoiceResult{InvoiceID: got.InvoiceID, Number: got.InvoiceNumber, URL: DeepLink + got.InvoiceID,
		Warning: t.totalDiffers(ctx, inv, got)}, nil
}

// archivedContact is how Xero refuses an invoice for an archived contact
// (one a person archived, or merged into another, which archives it).
const archivedContact = "contact with the specified contact details has been archived"

// forgetArchivedContact is err, the refusal of an invoice for customer,
// and when Xero refused it because the contact is archived and the
// company's link_file entry names that contact, the entry is forgotten
// and the error says so: the run's customer is fixed, so this run fails,
// and a retry matches the company afresh (its ContactNumber, which follows
// a merge, then its tax number and name). Before, every invoice of the
// company was refused until someone edited the link file.
func (t *Target) forgetArchivedContact(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, err error) error {
	var api *connectors.APIError
	if !errors.As(err, &api) || !strings.Contains(strings.ToLower(api.Message), archivedContact) || inv.Customer.ExternalID == "" {
		return err
	}
	key := t.linkKey(inv.Customer.ExternalID)
	id, ok, lerr := t.links.Get(ctx, key)
	if lerr != nil || !ok || !strings.EqualFold(id, customer.ID) {
		return err
	}
	// The contact as it is now: a refusal Xero replays for the step's
	// Idempotency-Key (a run retried after the link was mended) must not
	// forget a link to an active contact.
	if ct, cerr := t.contact(ctx, customer.ID); cerr != nil || active(ct) {
		return err
	}
	if derr := t.links.Delete(ctx, key); derr != nil {
		return errors.Join(err, derr)
	}
	connectors.StepLogger(ctx, t.log).Warn("xero: the contact linked for this company is archived; its link_file entry is forgotten",
		"company", inv.Customer.ExternalID, "contact", customer.ID)
	api.Message += fmt.Sprintf("; the contact %s that link_file gave for company %s is archived (archived in Xero, or merged into another contact): "+
		"its link is forgotten, so retry the run (dealsync runs retry) to bill the company's contact found afresh, or un-archive the contact first to keep billing it",
		customer.ID, inv.Customer.ExternalID)
	return err
}

// totalDiffers compares what Xero says of an invoice it has with inv
// (connectors.TotalDiffers). With Inclusive line amounts, dealsync's
// figures are the gross ones (no tax_rate: the tax is inside), which are
// Xero's Total, its SubTotal being net of the included tax.
func (t *Target) totalDiffers(ctx context.Context, inv model.Invoice, got AnsweredInvoice) string {
	r := connectors.Reported{Total: got.Total, Subtotal: got.SubTotal}
	if t.cfg.LineAmountTypes == "Inclusive" {
		r.Subtotal = got.Total
	}
	return connectors.TotalDiffers("Xero", got.InvoiceID, got.InvoiceNumber, inv, r,
		"Xero computed its own tax (by each line's tax type, or its account's) and rounds to 2 decimals in every currency", connectors.StepLogger(ctx, t.log))
}

// existing looks for the deal's invoice by its Reference: an ACCREC
// invoice with exactly that Reference that is not voided or deleted. One
// billed to contactID (or naming no contact) is returned as a replay. Two
// or more such invoices (different InvoiceIDs) are refused (permanent,
// ambiguousReference): nothing but the Reference ties an invoice to the
// deal, so taking the first listed would link the deal to an invoice
// picked by Xero's order, perhaps another deal's. One billed only to other
// contacts is the deal's invoice from before its company changed in the
// CRM: a permanent error (billedToAnother). Another contact's invoice
// beside the one billed to contactID is not counted: it is the invoice of
// another company, as the http target reads it.
//
// The look-up asks for no page: Xero answers every invoice that matches
// (without line items, which are not read here), so there is no later
// page to miss a second invoice on. An answer Xero paged all the same (its
// pagination says there is more) is refused, not read as the whole.
func (t *Target) existing(ctx context.Context, inv model.Invoice, contactID string) (connectors.InvoiceResult, bool, error) {
	const op = "find invoice"
	reference := inv.Reference
	q := url.Values{
		"where":    {`Type=="ACCREC" AND Reference==` + quote(reference)},
		"Statuses": {"DRAFT,SUBMITTED,AUTHORISED,PAID"},
	}
	if !whereCanHold(reference) {
		// A text search over invoice numbers and references; the answer
		// is filtered exactly below.
		q.Set("where", `Type=="ACCREC"`)
		q.Set("searchTerm", reference)
	}
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/Invoices?" + q.Encode()})
	if err != nil {
		return connectors.InvoiceResult{}, false, err
	}
	var ans InvoiceAnswer
	if err := resp.Decode("xero", op, &ans); err != nil {
		return connectors.InvoiceResult{}, false, err
	}
	if p := ans.Pagination; p != nil && (p.PageCount > 1 || p.ItemCount > len(ans.Invoices)) {
		// Xero paged an answer the look-up asked for whole: an invoice of
		// the deal on a page not read would go unseen.
		return connectors.InvoiceResult{}, false, fmt.Errorf("xero %s: Xero answered the look-up of Reference %q with page %d of %d (%d invoices, %d listed), "+
			"where dealsync expects every match in one answer; it does not guess that the deal has no other invoice: make invoice.reference unique per deal, "+
			"or report this Xero behaviour to dealsync's maintainers: %w",
			op, reference, p.Page, p.PageCount, p.ItemCount, len(ans.Invoices), connectors.ErrPermanent)
	}
	var mine []AnsweredInvoice     // the deal's invoices billed to contactID, each InvoiceID once, in Xero's order
	var elsewhere *AnsweredInvoice // the deal's invoice billed to another contact, if any
	for i, got := range ans.Invoices {
		if got.InvoiceID == "" || got.Reference != reference || (got.Type != "" && got.Type != "ACCREC") || cancelled(got.Status) {
			continue
		}
		if billsAnother(got, contactID) {
			if elsewhere == nil {
				elsewhere = &ans.Invoices[i]
			}
			continue
		}
		if !slices.ContainsFunc(mine, func(m AnsweredInvoice) bool { return strings.EqualFold(m.InvoiceID, got.InvoiceID) }) {
			mine = append(mine, got)
		}
	}
	switch {
	case len(mine) > 1:
		return connectors.InvoiceResult{}, false, ambiguousReference(mine, inv, contactID)
	case len(mine) == 1:
		got := mine[0]
		return connectors.InvoiceResult{InvoiceID: got.InvoiceID, Number: got.InvoiceNumber, URL: DeepLink + got.InvoiceID, Replayed: true,
			Warning: t.totalDiffers(ctx, inv, got)}, true, nil
	case elsewhere != nil:
		return connectors.InvoiceResult{}, false, billedToAnother(*elsewhere, inv, contactID, false)
	}
	return connectors.InvoiceResult{}, false, nil
}

// maxNamed is how many invoices an error names; the rest are counted.
const maxNamed = 5

// ambiguousReference is the permanent error for found, two or more live
// invoices with inv's Reference billed to contactID: it names the
// Reference and the first maxNamed invoices (number and InvoiceID), and
// says what the operator can do in Xero.
func ambiguousReference(found []AnsweredInvoice, inv model.Invoice, contactID string) error {
	named := make([]string, 0, len(found))
	for _, got := range found {
		if got.InvoiceNumber == "" {
			named = append(named, "InvoiceID "+got.InvoiceID)
			continue
		}
		named = append(named, fmt.Sprintf("%s (InvoiceID %s)", got.InvoiceNumber, got.InvoiceID))
	}
	list := wording.SomeOf(named, maxNamed)
	return fmt.Errorf("xero find invoice: Xero lists %d invoices with Reference %q billed to contact %s of the deal's company %q, none voided or deleted: %s; "+
		"dealsync does not guess which is the deal's invoice: in Xero, void or delete those that are not the deal's (or change their Reference), or, if they are other deals' invoices, "+
		"make the mapping's invoice.reference unique per deal (or set check_reference: false), then retry the run: %w",
		len(found), inv.Reference, contactID, inv.Customer.Name, list, connectors.ErrPermanent)
}

// cancelled reports whether an invoice's Status takes it off the books
// (VOIDED, DELETED): it no longer invoices the deal, and a new invoice may
// be made. The look-up asks Xero for the other statuses only; this holds
// should an answer list such an invoice all the same.
func cancelled(status string) bool { return status == "VOIDED" || status == "DELETED" }

// billsAnother reports whether got is billed to a contact other than
// contactID, both known.
func billsAnother(got AnsweredInvoice, contactID string) bool {
	return contactID != "" && got.Contact.ContactID != "" && !strings.EqualFold(got.Contact.ContactID, contactID)
}

// billedToAnother is the permanent error for got, the deal's invoice,
// billed to another contact than contactID, the contact of inv's customer:
// it names the invoice and both contacts, and says what the operator can
// do in Xero. byKey says that Xero answered the step's Idempotency-Key with
// it (rather than the look-up by Reference finding it): Xero may give that
// answer for as long as it keeps the key, even once the invoice is voided.
func billedToAnother(got AnsweredInvoice, inv model.Invoice, contactID string, byKey bool) error {
	number := got.InvoiceNumber
	if number == "" {
		number = got.InvoiceID
	}
	billed := got.Contact.ContactID
	if got.Contact.Name != "" {
		billed = fmt.Sprintf("%q (%s)", got.Contact.Name, got.Contact.ContactID)
	}
	if byKey {
		// What is certain is that the answer is not the invoice sent: an
		// earlier request of the key made it, or what answers at base_url
		// is not Xero (a proxy's or a mock's fixed answer, even on the
		// first attempt of the first run).
		return connectors.EarlierAnswer(fmt.Errorf("xero create invoice: Xero answered this step's Idempotency-Key with invoice %s (InvoiceID %s, Reference %q), billed to contact %s, "+
			"not with the invoice this request sent, billed to contact %s of the deal's company %q: either an earlier request with that key made it "+
			"(an earlier attempt or run of this step, whose answer was lost, before the deal's company changed in the CRM), "+
			"or what answers at the target's base_url is not Xero's API itself (a proxy or a mock answering fixed data); dealsync does not bill a deal twice: "+
			"if an earlier request made it, Xero may give that answer for as long as it keeps the key, even once the invoice is voided: "+
			"bill %q by hand (and void invoice %s in Xero if it should not stand), or retry the run once Xero has forgotten the key: %w",
			number, got.InvoiceID, got.Reference, billed, contactID, inv.Customer.Name, inv.Customer.Name, number, connectors.ErrPermanent))
	}
	return fmt.Errorf("xero create invoice: invoice %s (InvoiceID %s, Reference %q) already invoices this deal, billed to contact %s, not to contact %s of the deal's company %q "+
		"(the deal's company changed in the CRM since that invoice was made?); dealsync does not bill a deal twice: "+
		"in Xero, void invoice %s and retry the run to invoice %q, or keep it and bill %[8]q by hand "+
		"(if it is another deal's invoice with the same Reference, make the mapping's invoice.reference unique per deal, or set check_reference: false): %[9]w",
		number, got.InvoiceID, got.Reference, billed, contactID, inv.Customer.Name, number, inv.Customer.Name, connectors.ErrPermanent)
}

// PlanInvoice returns the PUT /Invoices CreateInvoice would send, with the
// bearer token masked. It sends nothing.
func (t *Target) PlanInvoice(inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.Request, error) {
	call, err := t.invoiceCall(inv, customer, key)
	if err != nil {
		return connectors.Request{}, err
	}
	return t.client.Plan(call)
}

func (t *Target) invoiceCall(inv model.Invoice, customer connectors.CustomerRef, key string) (erpkit.Call, error) {
	x, err := NewInvoice(inv, customer.ID, t.opts)
	if err != nil {
		return erpkit.Call{}, fmt.Errorf("xero create invoice: %v: %w", err, connectors.ErrPermanent)
	}
	body, err := json.Marshal(InvoicesBody{Invoices: []Invoice{x}})
	if err != nil {
		return erpkit.Call{}, fmt.Errorf("xero create invoice: %w", err)
	}
	return erpkit.Call{
		Op: "create invoice", Method: http.MethodPut, URL: t.base + "/Invoices?" + summarizeErrors + "&unitdp=4",
		Header: http.Header{"Idempotency-Key": {IdempotencyKey(key)}}, Body: body,
	}, nil
}

// errorDetail reads Xero's error answers: the ValidationException's
// messages (and which element: Elements[i] or Elements[i].LineItems[j]),
// the identity layer's Title/Detail, or the Message.
func errorDetail(status int, h http.Header, body []byte) (msg, field string) {
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil {
		var msgs []string
		for i, el := range e.Elements {
			if len(el.ValidationErrors) > 0 && field == "" {
				field = fmt.Sprintf("Elements[%d]", i)
			}
			for _, v := range el.ValidationErrors {
				msgs = append(msgs, v.Message)
			}
			for j, li := range el.LineItems {
				if len(li.ValidationErrors) > 0 && field == "" {
					field = fmt.Sprintf("Elements[%d].LineItems[%d]", i, j)
				}
				for _, v := range li.ValidationErrors {
					msgs = append(msgs, v.Message)
				}
			}
		}
		switch {
		case len(msgs) > 0:
			msg = strings.Join(msgs, "; ")
		case e.Detail != "" || e.Title != "":
			msg = strings.TrimSpace(e.Title + " " + e.Detail)
		case e.Message != "":
			msg = e.Message
		}
		if e.Type != "" && msg != "" && e.Type != "null" {
			msg = e.Type + ": " + msg
		}
	}
	if status == http.StatusTooManyRequests {
		msg = strings.TrimSpace(rateLimitNote(h) + " " + msg)
	}
	return erpkit.Truncate(msg), field
}

// rateLimitNote says which of Xero's limits was hit and what remains.
func rateLimitNote(h http.Header) string {
	var parts []string
	if p := h.Get("X-Rate-Limit-Problem"); p != "" {
		parts = append(parts, "rate limit hit: "+p)
	}
	for _, k := range []string{"X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining"} {
		if v := h.Get(k); v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ", ")
}

// retryAfter is Xero's Retry-After (seconds). When a 429 has none, the
// limit named by X-Rate-Limit-Problem says how long to wait: the minute
// limits reset within 60 s; the day limit's delay is left to backoff.
func retryAfter(h http.Header) time.Duration {
	if d := connectors.ParseRetryAfter(h, time.Now()); d > 0 {
		return d
	}
	switch strings.ToLower(h.Get("X-Rate-Limit-Problem")) {
	case "minute", "appminute":
		return 60 * time.Second
	case "concurrent":
		return time.Second
	}
	return 0
}

// joinMessages is Xero's validation messages, or otherwise when it gave
// none.
func joinMessages(vs []ValidationError, otherwise string) string {
	msgs := make([]string, 0, len(vs))
	for _, v := range vs {
		if m := strings.TrimSpace(v.Message); m != "" {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return otherwise
	}
	return erpkit.Truncate(strings.Join(msgs, "; "))
}
