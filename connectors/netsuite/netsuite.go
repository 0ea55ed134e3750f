// Package netsuite is the "netsuite" ERP target: NetSuite's REST web
// services (record API v1 and SuiteQL).
//
//	GET  /services/rest/record/v1/customer/eid:{id}     the customer by external id
//	POST /services/rest/query/v1/suiteql                then by tax id, then exact name (Prefer: transient; page by page)
//	POST /services/rest/query/v1/suiteql                the account's currencies, once (without currency_ids)
//	PUT  /services/rest/record/v1/customer/eid:{id}     create it (upsert by external id)
//	GET  /services/rest/record/v1/invoice/eid:{id}      the invoice of an earlier attempt, if any
//	PUT  /services/rest/record/v1/invoice/eid:{id}?replace=item   create the invoice (upsert by external id)
//
// The invoice's external id is derived from the workflow's step key, which
// is the same on every retry and on a re-run of a failed workflow, so
// NetSuite holds at most one invoice per deal: an upsert after a lost
// answer meets the record the first one made. NetSuite answers an upsert
// with 204 and the record's URL in Location; an upsert that meets an
// existing invoice replaces its item lines (replace=item) instead of
// appending a second copy of them. Authentication is OAuth 2.0 client
// credentials (M2M) with a certificate-signed JWT assertion.
package netsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// apiPathInBaseURL matches, in any case, the REST API's path in a
// base_url, to which the target adds TokenPath, RecordPath and
// SuiteQLPath.
var apiPathInBaseURL = regexp.MustCompile(`(?i)/services/rest(/|$)`)

// Defaults of Config.
const (
	DefaultScope      = "rest_webservices"
	DefaultTaxIDField = "vatregnumber"
	DefaultTimeout    = 30 * time.Second
	// TokenPath and the API paths below are relative to the account's
	// SuiteTalk host.
	TokenPath   = "/services/rest/auth/oauth2/v1/token"
	RecordPath  = "/services/rest/record/v1"
	SuiteQLPath = "/services/rest/query/v1/suiteql"
	// MaxExternalID bounds the external ids dealsync derives. NetSuite
	// documents the characters (letters, digits, '_' and '-'); dealsync
	// keeps the ids short as well.
	MaxExternalID = 64
)

// Config is the `targets.<name>` block of a target whose type is "netsuite".
type Config struct {
	// AccountID is the account ("1234567", sandbox "1234567_SB1"), from
	// Setup > Company > Company Information.
	AccountID string `mapstructure:"account_id" validate:"required"`
	// ClientID is the integration record's client id (consumer key).
	ClientID string `mapstructure:"client_id" validate:"required"`
	// CertificateID is the id NetSuite shows for the certificate in the
	// OAuth 2.0 Client Credentials (M2M) Setup; it is the JWT's kid.
	CertificateID string `mapstructure:"certificate_id" validate:"required"`
	// PrivateKey is the certificate's private key, PEM (normally
	// file:/path/private.pem).
	PrivateKey secret.Secret `mapstructure:"private_key" validate:"required"`
	// Algorithm signs the assertion: PS256 (RSA key, default), PS384,
	// PS512, ES256, ES384 or ES512 (EC key; default from its curve).
	Algorithm string `mapstructure:"algorithm" validate:"omitempty,oneof=PS256 PS384 PS512 ES256 ES384 ES512"`
	// Scope of the token: rest_webservices (default).
	Scope string `mapstructure:"scope"`
	// LinkFile, when set, keeps CRM company → customer internal id links.
	LinkFile string `mapstructure:"link_file"`
	// CustomerExternalIDPrefix is put before the CRM company id to make
	// the customer's external id ("" = the company id itself).
	CustomerExternalIDPrefix string `mapstructure:"customer_external_id_prefix"`
	// TaxIDField is the customer column SuiteQL compares the tax id with
	// (default vatregnumber, or a custom field such as custentity_vat_no);
	// "" skips the tax-id rule. It is put in the query as is, hence the
	// check.
	TaxIDField string `mapstructure:"tax_id_field" validate:"omitempty,sqlident"`
	// SubsidiaryID is given to new customers (required in OneWorld accounts).
	SubsidiaryID string `mapstructure:"subsidiary_id" validate:"omitempty,number"`
	// DefaultItemID is the item internal id of lines whose mapping sets no item_code.
	DefaultItemID string `mapstructure:"default_item_id" validate:"omitempty,number"`
	// DiscountItemID is the discount item used for line discounts.
	DiscountItemID string `mapstructure:"discount_item_id" validate:"omitempty,number"`
	// DefaultTaxCodeID applies to lines whose mapping sets no tax_code.
	DefaultTaxCodeID string `mapstructure:"default_tax_code_id" validate:"omitempty,number"`
	// LocationID is set on every invoice when the account requires one.
	LocationID string `mapstructure:"location_id" validate:"omitempty,number"`
	// CurrencyIDs maps ISO codes to currency internal ids (multi-currency
	// accounts); empty sends no currency.
	CurrencyIDs map[string]string `mapstructure:"currency_ids" validate:"dive,number"`
	// BaseCurrency is the ISO code of an account whose currency list cannot
	// be read (no Multiple Currencies feature): its invoices go out without
	// a currency, so one in another currency is refused before sending.
	BaseCurrency string `mapstructure:"base_currency"`
	// BaseURL is https://<account>.suitetalk.api.netsuite.com by default;
	// TokenURL is BaseURL + TokenPath; AppURL (links for people) is
	// https://<account>.app.netsuite.com. Change them for a mock.
	BaseURL  string        `mapstructure:"base_url" validate:"omitempty,url"`
	TokenURL string        `mapstructure:"token_url" validate:"omitempty,url"`
	AppURL   string        `mapstructure:"app_url" validate:"omitempty,url"`
	Timeout  time.Duration `mapstructure:"timeout" validate:"gte=0"`
}

// IdentifyingSettings are the account and the API its calls reach
// (connectors.TargetIdentifier): base_url as the target calls it (the
// account's own when unset), never the certificate or its key.
func (c Config) IdentifyingSettings() []connectors.Setting {
	base := c.BaseURL
	if strings.TrimSpace(base) == "" {
		base = "https://" + AccountHost(c.AccountID) + ".suitetalk.api.netsuite.com"
	}
	return []connectors.Setting{
		{Key: "account_id", Value: strings.ToUpper(strings.TrimSpace(c.AccountID))},
		connectors.URLSetting("base_url", base),
	}
}

// DefaultConfig has every default filled in that does not depend on the account.
func DefaultConfig() Config {
	return Config{Scope: DefaultScope, TaxIDField: DefaultTaxIDField, Timeout: DefaultTimeout}
}

// AccountHost is the account's host prefix: lower case, '_' → '-'
// ("1234567_SB1" → "1234567-sb1").
func AccountHost(accountID string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(accountID)), "_", "-")
}

func init() {
	connectors.RegisterTargetType("netsuite", "NetSuite REST web services (OAuth 2.0 client credentials with a certificate, upsert by external id)", DefaultConfig,
		func(c Config, env connectors.Env) (*Target, error) {
			return New(c, Deps{HTTPClient: env.HTTPClient, Logger: env.Logger, ConfigKey: env.ConfigKey, KeyVar: env.KeyVar})
		})
}

// Deps are the Target's collaborators; zero values take the config's.
type Deps struct {
	HTTPClient *http.Client
	Links      erpkit.LinkStore // default: FileLinkStore{cfg.LinkFile} or none
	// Now is the clock of the token source (tests).
	Now    func() time.Time
	Logger *slog.Logger // default: none
	// ConfigKey is the target's config key (targets.<name>), which its
	// advice names its settings under (connectors.Env.ConfigKey).
	ConfigKey string
	// KeyVar names a setting's variable in that advice
	// (connectors.Env.KeyVar).
	KeyVar func(key string) string
}

// Target is the NetSuite target. It is safe for concurrent use.
type Target struct {
	cfg    Config
	base   string // https://<account>.suitetalk.api.netsuite.com
	app    string
	client *erpkit.Client
	links  erpkit.LinkStore
	opts   Options
	log    *slog.Logger

	currencySem  chan struct{}     // one read of the account's currencies at a time
	currencyIDs  map[string]string // ISO code → internal id, as read; empty: unreadable
	currenciesAt time.Time         // when currencyIDs was read; zero: never
	// taxRuleOff is set once SuiteQL says the account has no tax_id_field
	// column: the tax-id rule is skipped from then on, without asking
	// again for every new company (a process restart asks once more).
	taxRuleOff atomic.Bool
}

// currenciesFor is how long the account's currencies, as read, are
// believed when an invoice's currency is not among them: a currency added
// in NetSuite is seen at most this long after.
var currenciesFor = 5 * time.Minute

var (
	_ connectors.Target         = (*Target)(nil)
	_ connectors.InvoiceRetrier = (*Target)(nil)
)

// InvoiceRetry implements connectors.InvoiceRetrier: a retry finds the
// invoice by its external id.
func (t *Target) InvoiceRetry() connectors.InvoiceRetry { return connectors.InvoiceRetryFinds }

// currencyIDsByCode keys currency_ids by the upper-case ISO code the
// invoices carry: the config reader lower-cases every key it reads
// (`EUR` arrives as `eur`), and a code that is not ISO 4217 is refused.
func currencyIDsByCode(ids map[string]string) (map[string]string, error) {
	if len(ids) == 0 {
		return ids, nil
	}
	out := make(map[string]string, len(ids))
	for code, id := range ids {
		c, err := model.ParseCurrency(code)
		if err != nil {
			return nil, fmt.Errorf("netsuite: currency_ids: %v", err)
		}
		if strings.TrimSpace(id) == "" {
			return nil, fmt.Errorf("netsuite: currency_ids: %s has no internal id", c)
		}
		if _, dup := out[string(c)]; dup {
			return nil, fmt.Errorf("netsuite: currency_ids: %s is listed twice", c)
		}
		out[string(c)] = strings.TrimSpace(id)
	}
	return out, nil
}

// New makes a Target. The private key is read and checked here, once.
func New(cfg Config, deps Deps) (*Target, error) {
	if cfg.AccountID == "" || cfg.ClientID == "" || cfg.CertificateID == "" {
		return nil, errors.New("netsuite: account_id, client_id and certificate_id are required")
	}
	if msg := AccountIDProblem(cfg.AccountID); msg != "" {
		return nil, fmt.Errorf("netsuite: account_id %s", msg)
	}
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("netsuite: private_key is required (the certificate's private key, e.g. file:/etc/dealsync/netsuite.pem)")
	}
	pemData, err := cfg.PrivateKey.Reveal()
	if err != nil {
		return nil, fmt.Errorf("netsuite: private_key (%s): %w", cfg.PrivateKey.Describe(), err)
	}
	key, err := ParsePrivateKey([]byte(pemData))
	if err != nil {
		return nil, fmt.Errorf("netsuite: private_key (%s): %v", cfg.PrivateKey.Describe(), err)
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = DefaultAlgorithm(key)
	}
	if err := checkAlgorithm(cfg.Algorithm, key); err != nil {
		return nil, fmt.Errorf("netsuite: private_key (%s): %v", cfg.PrivateKey.Describe(), err)
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if cfg.CurrencyIDs, err = currencyIDsByCode(cfg.CurrencyIDs); err != nil {
		return nil, err
	}
	if cfg.BaseCurrency != "" {
		c, err := model.ParseCurrency(cfg.BaseCurrency)
		if err != nil {
			return nil, fmt.Errorf("netsuite: base_currency: %v", err)
		}
		cfg.BaseCurrency = string(c)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	host := AccountHost(cfg.AccountID)
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://" + host + ".suitetalk.api.netsuite.com"
	}
	if cfg.AppURL == "" {
		cfg.AppURL = "https://" + host + ".app.netsuite.com"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	// base_url may hold a credential (user info, a query): shown without
	// it, and url.Parse's error, which quotes the whole value, not at all.
	switch u, err := erpkit.ParseConfiguredURL("netsuite: base_url", cfg.BaseURL, "https://host"); {
	case err != nil:
		return nil, err
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("netsuite: base_url %q is not an http(s) URL", erpkit.ShownURL(u))
	default:
		// NetSuite's REST API guide writes the base of its records as
		// https://<account>.suitetalk.api.netsuite.com/services/rest/record/v1:
		// dealsync adds /services/rest/… itself.
		if err := erpkit.APIPathError("netsuite: base_url", u, apiPathInBaseURL, "/services/rest/…",
			"https://"+host+".suitetalk.api.netsuite.com"); err != nil {
			return nil, err
		}
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = cfg.BaseURL + TokenPath
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
	conn := "NetSuite account " + cfg.AccountID
	keys := connectors.Env{ConfigKey: deps.ConfigKey, KeyVar: deps.KeyVar}.TargetKeys()
	tokens := &ClientCredentials{
		TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, CertificateID: cfg.CertificateID,
		Algorithm: cfg.Algorithm, Scope: cfg.Scope, Key: key, HTTPClient: hc, Connection: conn, Keys: keys, Now: deps.Now,
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Target{
		cfg:         cfg,
		log:         log,
		base:        cfg.BaseURL,
		app:         strings.TrimRight(cfg.AppURL, "/"),
		links:       links,
		currencySem: make(chan struct{}, 1),
		opts: Options{DefaultItemID: cfg.DefaultItemID, DiscountItemID: cfg.DiscountItemID,
			DefaultTaxCodeID: cfg.DefaultTaxCodeID, LocationID: cfg.LocationID, CurrencyIDs: cfg.CurrencyIDs},
		client: &erpkit.Client{
			Service: "netsuite", Connection: conn, HTTP: hc, Tokens: tokens, Timeout: cfg.Timeout,
			ErrorDetail: errorDetail, AccessAdvice: func(status int, _ []byte) string { return accessAdvice(status) }, Keys: keys,
		},
	}, nil
}

// accessAdvice is what to check when NetSuite refuses a call's token (401)
// or the role (403). There is no consent to renew with client
// credentials: NetSuite's answer says only "Invalid login attempt", and
// its Login Audit Trail says why; a 403 is a permission the role lacks.
func accessAdvice(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "NetSuite's Login Audit Trail (Setup > Users/Roles > User Management > View Login Audit Trail) says why, e.g. the entity or role of the " +
			"OAuth 2.0 client credentials mapping made inactive, the mapping revoked, or the role without Log in using OAuth 2.0 Access Tokens"
	case http.StatusForbidden:
		return "the role of the OAuth 2.0 client credentials mapping lacks a permission: it needs REST Web Services, Log in using OAuth 2.0 Access Tokens, " +
			"SuiteAnalytics Workbook (for SuiteQL look-ups), create, edit and view on customers and invoices, and view on Currency"
	}
	return ""
}

// externalIDChar is what NetSuite allows in an external id: letters,
// digits, '_' and '-'.
func externalIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// ExternalID is the external id for a value: the value itself when it is
// short and legal, else a readable prefix plus a SHA-256 digest
// (erpkit.LegalKey), so it is just as stable.
func ExternalID(v string) string {
	return erpkit.LegalKey(v, MaxExternalID, externalIDChar)
}

// fallbackCustomerID is the external id of a customer whose company has no
// CRM id: derived from the step key (workflow id + "/customer"), so it
// starts with fallbackCustomerPrefix.
func fallbackCustomerID(key string) string { return ExternalID("dealsync-" + key) }

// fallbackCustomerPrefix starts every fallbackCustomerID: step keys start
// with the workflow id, "invoice/…", whose '/' is not legal in an external
// id and becomes '_'.
const fallbackCustomerPrefix = "dealsync-invoice_"

// InvoiceExternalID is the invoice's external id for a step key.
func InvoiceExternalID(key string) string { return ExternalID("dealsync-" + key) }

// CustomerExternalID is the customer's external id for a CRM company id
// ("" for "").
func (t *Target) CustomerExternalID(companyID string) string {
	companyID = strings.TrimSpace(companyID)
	if companyID == "" {
		return ""
	}
	return ExternalID(t.cfg.CustomerExternalIDPrefix + companyID)
}

func (t *Target) linkKey(companyID string) string {
	return "netsuite/" + t.cfg.AccountID + "/" + companyID
}

func (t *Target) recordURL(typ, id string) string {
	return t.base + RecordPath + "/" + typ + "/" + id
}

// notFound reports whether err is NetSuite's 404 for a record. A failure
// to get an access token (erpkit.IsTokenFailure: the token endpoint's
// refusal, a key that does not sign) is not, whatever its status: the
// call never reached the API, so it says nothing of the record. Nor does
// its class (a token request NetSuite refuses as malformed is Permanent):
// the callers that take a Permanent failure for the record's or the
// query's answer check erpkit.IsTokenFailure first.
func notFound(err error) bool {
	var api *connectors.APIError
	return errors.As(err, &api) && api.StatusCode == http.StatusNotFound && !erpkit.IsTokenFailure(err)
}

// get reads a record; ok is false when NetSuite has none.
func (t *Target) get(ctx context.Context, op, typ, id string) (Record, bool, error) {
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.recordURL(typ, id)})
	if notFound(err) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	var r Record
	if err := resp.Decode("netsuite", op, &r); err != nil {
		return Record{}, false, err
	}
	if r.ID == "" {
		return Record{}, false, fmt.Errorf("netsuite %s: the answer has no id", op)
	}
	return r, true, nil
}

// upsert sends PUT …/{typ}/eid:{eid} and returns the record's internal id
// from the Location header (or, lacking it, by reading the record). check
// vets a record another attempt made, found after NetSuite
// refused this upsert, as the look-up before the upsert vets one: the
// record is taken only when check passes it.
func (t *Target) upsert(ctx context.Context, call erpkit.Call, typ, eid string, check func(Record) error) (string, error) {
	resp, err := t.client.Do(ctx, call)
	if err != nil {
		if !erpkit.Refused(err) {
			return "", err
		}
		// Refused, but the record may be there: another attempt of the
		// step (one whose answer was lost, still saving when this one's
		// read came) made it under the same external id, and NetSuite
		// refuses the second create of it. Then it is this step's record.
		r, ok, gerr := t.get(ctx, "read "+typ, typ, "eid:"+eid)
		if gerr != nil {
			// Whether the record is there is not known, so the refusal
			// does not stand for "nothing made": the read's failure is
			// the step's (a 429 or an outage retried, and the retry looks
			// the record up first), naming the refusal; and the step may
			// have made it, whatever the read's failure says of itself.
			connectors.WriteDone(ctx)
			return "", fmt.Errorf("%v; but another attempt of the step may have made %s eid:%s, and reading it failed: %w", err, typ, eid, gerr)
		}
		if !ok {
			return "", err
		}
		if cerr := check(r); cerr != nil {
			return "", cerr
		}
		connectors.StepLogger(ctx, t.log).Info("netsuite: an upsert was refused, but its record exists under its external id: another attempt made it",
			"account", t.cfg.AccountID, "record", typ, "external_id", eid, "id", r.ID, "error", err)
		return r.ID, nil
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			if id := path.Base(u.Path); id != "" && id != "." && id != "/" && !strings.HasPrefix(id, "eid:") {
				return id, nil
			}
		}
	}
	r, ok, err := t.get(ctx, "read "+typ, typ, "eid:"+eid)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("netsuite %s: the upsert succeeded but the record eid:%s is not there", call.Op, eid)
	}
	return r.ID, nil
}

// FindOrCreateCustomer finds the customer, deterministically and never
// fuzzily: the stored link, then the external id (the CRM company id),
// then the tax id, then the exact company name, each through SuiteQL over
// active customers. A tax-id or name match whose external id names another
// company is not taken, and two matches are an error, not a guess. A match
// without an external id is claimed (the company's external id written
// onto it), so another company with the same tax id no longer takes it. When
// none matches, the customer is created by upsert under its external id,
// so a retry after a lost answer finds it instead of making a second one.
func (t *Target) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	name := strings.TrimSpace(c.Name)
	if name == "" {
		return connectors.CustomerRef{}, fmt.Errorf("netsuite find customer: the customer has no name: %w", connectors.ErrPermanent)
	}
	company := strings.TrimSpace(c.ExternalID)
	if company != "" {
		if ref, ok, err := t.linkedCustomer(ctx, company); err != nil || ok {
			return ref, err
		}
	}
	// A company without an id gets an external id from the step key: the
	// same on every attempt, so a retry finds what the last one made.
	eid := t.CustomerExternalID(company)
	if eid == "" {
		// From the run's key, without the customer's digest: the same
		// for every run of the deal, as before the digest.
		eid = fallbackCustomerID(connectors.CustomerRunKey(key))
	}
	if r, ok, err := t.get(ctx, "find customer", "customer", "eid:"+eid); err != nil {
		return connectors.CustomerRef{}, err
	} else if ok {
		if err := activeCustomer(r, eid); err != nil {
			return connectors.CustomerRef{}, err
		}
		return t.linked(ctx, company, connectors.CustomerRef{ID: r.ID})
	}
	id, claim, err := t.search(ctx, c, eid, company == "")
	if err != nil {
		return connectors.CustomerRef{}, err
	}
	if id != "" {
		if claim {
			// A claim NetSuite refuses for good (a required field or a
			// script rejects the record's save, or the record is gone) is
			// logged, and the match is used for this invoice without a
			// link, so that the company's next deal looks it up afresh.
			if err := t.claim(ctx, id, eid); err != nil {
				if !erpkit.Refused(err) {
					return connectors.CustomerRef{}, err
				}
				connectors.StepLogger(ctx, t.log).Warn("netsuite: the customer matched by tax id or name could not be claimed; it stays without an external id",
					"account", t.cfg.AccountID, "customer", id, "external_id", eid, "error", err)
				return connectors.CustomerRef{ID: id}, nil
			}
		}
		return t.linked(ctx, company, connectors.CustomerRef{ID: id})
	}
	// A new customer is made in the deal's currency when the account has
	// several, so that its invoices can be in it.
	var currencyID string
	if c.Currency != "" {
		o, err := t.currencyOptions(ctx, c.Currency)
		if err != nil {
			return connectors.CustomerRef{}, err
		}
		currencyID = o.CurrencyIDs[string(c.Currency)]
	}
	const op = "create customer"
	if _, dropped := CustomerEmail(c); dropped {
		connectors.StepLogger(ctx, t.log).Warn("netsuite: the company's e-mail address is not one address NetSuite would take; the customer is made without it",
			"account", t.cfg.AccountID, "company", company, "customer_external_id", eid)
	}
	body, err := json.Marshal(NewCustomer(c, t.cfg.SubsidiaryID, currencyID))
	if err != nil {
		return connectors.CustomerRef{}, fmt.Errorf("netsuite %s: %w", op, err)
	}
	id, err = t.upsert(ctx, erpkit.Call{Op: op, Method: http.MethodPut, URL: t.recordURL("customer", "eid:"+eid), Body: body}, "customer", eid,
		func(r Record) error { return activeCustomer(r, eid) })
	if err != nil {
		return connectors.CustomerRef{}, err
	}
	return t.linked(ctx, company, connectors.CustomerRef{ID: id, Created: true})
}

// activeCustomer vets r, the customer with the company's external id eid:
// an inactive one is refused, naming it, since NetSuite refuses an invoice
// for it ("Invalid value … 'entity'"), which would not say why.
func activeCustomer(r Record, eid string) error {
	if !r.IsInactive {
		return nil
	}
	return fmt.Errorf("netsuite find customer: customer %s (external id %s) of this company is inactive, and NetSuite refuses invoices for it: "+
		"reactivate it (Lists > Relationships > Customers), or clear its external id so that dealsync makes a new customer, then retry the run: %w", r.ID, eid, connectors.ErrPermanent)
}

// linkedCustomer is the customer the link file gives for company, read
// to check it is still there and active: a link to a customer since
// deleted, merged away or made inactive would have every invoice of the
// company refused with NetSuite's "Invalid value … 'entity'", which does
// not say why. Such a link is forgotten, with a warning, and the customer
// is looked up afresh (its external id, then the tax id and name rules),
// as for a company seen for the first time.
func (t *Target) linkedCustomer(ctx context.Context, company string) (connectors.CustomerRef, bool, error) {
	key := t.linkKey(company)
	id, ok, err := t.links.Get(ctx, key)
	if err != nil || !ok {
		return connectors.CustomerRef{}, false, err
	}
	r, found, err := t.get(ctx, "find customer", "customer", id)
	if err != nil {
		return connectors.CustomerRef{}, false, err
	}
	if found && !r.IsInactive {
		return connectors.CustomerRef{ID: r.ID}, true, nil
	}
	why := "deleted or merged into another"
	if found {
		why = "inactive"
	}
	connectors.StepLogger(ctx, t.log).Warn("netsuite: the customer the link file gives for this company is "+why+"; the link is forgotten and the customer looked up afresh",
		"account", t.cfg.AccountID, "company", company, "customer", id)
	if err := t.links.Delete(ctx, key); err != nil {
		return connectors.CustomerRef{}, false, err
	}
	return connectors.CustomerRef{}, false, nil
}

func (t *Target) linked(ctx context.Context, company string, ref connectors.CustomerRef) (connectors.CustomerRef, error) {
	if company != "" {
		if err := t.links.Put(ctx, t.linkKey(company), ref.ID); err != nil {
			return connectors.CustomerRef{}, err
		}
	}
	return ref, nil
}

// claim writes eid as the external id of the customer with internal id
// id. Should the answer be lost, the retry finds the customer by eid.
func (t *Target) claim(ctx context.Context, id, eid string) error {
	body, err := json.Marshal(map[string]string{"externalId": eid})
	if err != nil {
		return err
	}
	_, err = t.client.Do(ctx, erpkit.Call{Op: "claim customer", Method: http.MethodPatch, URL: t.recordURL("customer", id), Body: body})
	return err
}

// search applies the tax-id and exact-name rules; "" when none matches.
// claim says that the match has no external id and the company has one
// to write onto it. anonymous is a company without a CRM id.
func (t *Target) search(ctx context.Context, c model.Customer, eid string, anonymous bool) (id string, claim bool, err error) {
	// A customer another system or company claims (its external id) is not
	// ours; one that dealsync made for a company without an id, from
	// another deal's key, is, when this company has no id either: the same
	// name names the same customer.
	free := func(row map[string]string) bool {
		x := row["externalid"]
		return x == "" || x == eid || (anonymous && strings.HasPrefix(x, fallbackCustomerPrefix))
	}
	// A company without a CRM id claims nothing: its external id comes
	// from one deal's key.
	claimable := func(row map[string]string) bool { return !anonymous && row["externalid"] == "" }
	if tax := strings.TrimSpace(c.TaxID); tax != "" && t.cfg.TaxIDField != "" && !t.taxRuleOff.Load() {
		taxCol := strings.ToLower(t.cfg.TaxIDField)
		usable := func(row map[string]string) bool { return row[taxCol] == tax && free(row) }
		rows, complete, err := t.customers(ctx, t.cfg.TaxIDField, tax, eid, usable)
		if err != nil && unknownColumn(err, t.cfg.TaxIDField) {
			// The account has no such column (vatregnumber, the default,
			// is the legacy tax field; a SuiteTax account keeps tax
			// numbers in the Tax Registrations sublist): the name rule
			// still finds the customer, so the rule is skipped, saying so,
			// rather than failing every new company with a tax id.
			if t.taxRuleOff.CompareAndSwap(false, true) {
				connectors.StepLogger(ctx, t.log).Warn("netsuite: SuiteQL does not know the customer column tax_id_field names, so the tax-id rule is skipped until a restart (the name rule applies): "+
					"set tax_id_field to a customer column or custom field of this account that holds the tax id, or to \"\" to turn the rule off",
					"account", t.cfg.AccountID, "tax_id_field", t.cfg.TaxIDField, "error", err)
			}
			rows, complete, err = nil, true, nil
		}
		if err != nil {
			return "", false, err
		}
		// A match whose external id names another company or system is
		// passed over, not refused: a tax id it claimed (a match claimed
		// so that another company with the tax id no longer takes it) does
		// not make it this company's, and the name rule still refuses a
		// name another record claims.
		var ids []string
		var first map[string]string
		for _, row := range rows {
			if usable(row) {
				if first == nil {
					first = row
				}
				ids = append(ids, row["id"])
			}
		}
		switch len(ids) {
		case 0:
		case 1:
			return ids[0], claimable(first), nil
		default:
			return "", false, fmt.Errorf("netsuite find customer: %s customers have %s %q (internal ids %s); set the right one's external id to %q: %w",
				howMany(len(ids), complete), t.cfg.TaxIDField, tax, wording.SomeOf(ids, 10), eid, connectors.ErrPermanent)
		}
	}
	name := strings.TrimSpace(c.Name)
	usable := func(row map[string]string) bool { return row["companyname"] == name && free(row) }
	rows, complete, err := t.customers(ctx, "companyname", name, eid, usable)
	if err != nil {
		return "", false, err
	}
	var ids, claimed []string
	var first map[string]string
	for _, row := range rows {
		if row["companyname"] != name {
			continue
		}
		if free(row) {
			if first == nil {
				first = row
			}
			ids = append(ids, row["id"])
		} else {
			claimed = append(claimed, row["id"]+" (external id "+row["externalid"]+")")
		}
	}
	switch {
	case len(ids) == 1:
		return ids[0], claimable(first), nil
	case len(ids) > 1:
		return "", false, fmt.Errorf("netsuite find customer: %s customers are named %q (internal ids %s); set the right one's external id to %q: %w",
			howMany(len(ids), complete), name, wording.SomeOf(ids, 10), eid, connectors.ErrPermanent)
	case len(claimed) > 0:
		return "", false, fmt.Errorf("netsuite find customer: the customer named %q belongs to another record (%s), not to external id %q; "+
			"set its external id or rename one of them: %w", name, wording.SomeOf(claimed, 10), eid, connectors.ErrPermanent)
	}
	return "", false, nil
}

// howMany is n matches, "at least n" when the look-up stopped before the
// last of them (customers).
func howMany(n int, complete bool) string {
	if complete {
		return strconv.Itoa(n)
	}
	return "at least " + strconv.Itoa(n)
}

// unknownColumn reports whether err is SuiteQL's refusal of a query that
// names a column the customer record does not have (NetSuite: HTTP 400,
// "Search error occurred: Field 'vatregnumber' for record 'customer' was
// not found.", or "Unknown identifier 'vatregnumber'"): a 400 of the query
// saying that of column, not any 400 that echoes its name (which would
// skip the rule for another cause).
func unknownColumn(err error, column string) bool {
	var api *connectors.APIError
	if !errors.As(err, &api) || api.Op != "find customer" || api.StatusCode != http.StatusBadRequest {
		return false
	}
	msg, col := strings.ToLower(api.Message), strings.ToLower(column)
	if _, after, ok := strings.Cut(msg, "field '"+col+"'"); ok && strings.Contains(after, "not found") {
		return true
	}
	// SuiteQL's other wording of a column it does not know.
	return strings.Contains(msg, "unknown identifier '"+col+"'")
}

// suiteQLString makes a SuiteQL string literal.
func suiteQLString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// customerPage is how many rows one customer look-up query asks SuiteQL
// for (its page: at most 1000), and maxCustomerPages how many pages of it
// a look-up reads at most.
var customerPage = 1000

const maxCustomerPages = 10

// customers lists active customers whose column equals value exactly,
// ordered by internal id so that its pages neither skip nor repeat a row,
// page after page while SuiteQL says there are more (hasMore): a usable
// row (usable: the rule's match, free for the company) may be on any page,
// behind rows other records claim. It stops early, complete false, once
// two usable rows are read, which already make the rule's answer (two
// matches, refused). Rows still left after maxCustomerPages fail the look-up
// for good (eid is the company's external id, for the message): so many
// customers of one name or tax id are no accident a retry would mend, and
// taken as "none", the look-up would make a duplicate customer.
func (t *Target) customers(ctx context.Context, column, value, eid string, usable func(map[string]string) bool) (rows []map[string]string, complete bool, err error) {
	const op = "find customer"
	column = strings.ToLower(column)
	cols := "id, externalid, companyname"
	if column != "companyname" {
		cols += ", " + column
	}
	q := fmt.Sprintf("SELECT %s FROM customer WHERE %s = %s AND isinactive = 'F' ORDER BY id", cols, column, suiteQLString(value))
	found := 0
	for page := 0; page < maxCustomerPages; page++ {
		got, more, err := t.query(ctx, op, q, customerPage, page*customerPage)
		if err != nil {
			return nil, false, err
		}
		rows = append(rows, got...)
		for _, row := range got {
			if usable(row) {
				found++
			}
		}
		switch {
		case !more:
			return rows, true, nil
		case found >= 2:
			return rows, false, nil
		}
	}
	return nil, false, fmt.Errorf("netsuite find customer: more than %d active customers have %s %q, and dealsync reads no more of them to find this company's: "+
		"set the external id of the company's customer to %q (or make the %s of the others differ), then retry the run: %w",
		maxCustomerPages*customerPage, column, value, eid, column, connectors.ErrPermanent)
}

// query runs a SuiteQL query and returns the rows of its page of at most
// limit rows (at most 1000) from offset (a multiple of limit) that have an
// id, and whether SuiteQL has more after them.
func (t *Target) query(ctx context.Context, op, q string, limit, offset int) (rows []map[string]string, more bool, err error) {
	body, err := json.Marshal(SuiteQLRequest{Q: q})
	if err != nil {
		return nil, false, err
	}
	page := url.Values{"limit": {strconv.Itoa(limit)}}
	if offset > 0 {
		page.Set("offset", strconv.Itoa(offset))
	}
	resp, err := t.client.Do(ctx, erpkit.Call{
		Op: op, Read: true, Method: http.MethodPost, URL: t.base + SuiteQLPath + "?" + page.Encode(),
		Header: http.Header{"Prefer": {"transient"}}, Body: body,
	})
	if err != nil {
		return nil, false, err
	}
	var ans SuiteQLResponse
	if err := resp.Decode("netsuite", op, &ans); err != nil {
		return nil, false, err
	}
	for _, row := range ans.Rows() {
		if row["id"] != "" {
			rows = append(rows, row)
		}
	}
	return rows, ans.HasMore, nil
}

// CreateInvoice creates the invoice exactly once. Its external id comes
// from key; the invoice of an earlier attempt (whose answer was lost) is
// read by that id and returned as Replayed without touching it. Otherwise
// PUT …/invoice/eid:{id}?replace=item creates it; should two attempts
// race (the second one's read comes before the first one's upsert lands),
// NetSuite's upsert still leaves one invoice, and replace=item keeps its
// item lines once: without it, NetSuite appends the second upsert's lines
// to the first one's.
func (t *Target) CreateInvoice(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	eid := InvoiceExternalID(key)
	if r, ok, err := t.get(ctx, "find invoice", "invoice", "eid:"+eid); err != nil {
		return connectors.InvoiceResult{}, err
	} else if ok {
		if err := billsCustomer(r, eid, customer.ID); err != nil {
			return connectors.InvoiceResult{}, err
		}
		return connectors.InvoiceResult{InvoiceID: r.ID, Number: r.TranID, URL: t.invoiceLink(r.ID), Replayed: true, Warning: t.totalDiffers(ctx, inv, r)}, nil
	}
	o, err := t.currencyOptions(ctx, inv.Currency)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	call, err := t.invoiceCall(inv, customer, key, o)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	id, err := t.upsert(ctx, call, "invoice", eid, func(r Record) error { return billsCustomer(r, eid, customer.ID) })
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	res := connectors.InvoiceResult{InvoiceID: id, URL: t.invoiceLink(id)}
	// The number (tranId) is NetSuite's to assign: read it back. Should
	// this fail, the retry finds the invoice by its external id.
	r, ok, err := t.get(ctx, "read invoice", "invoice", id)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	if ok {
		res.Number = r.TranID
		res.Warning = t.totalDiffers(ctx, inv, r)
	}
	return res, nil
}

// billsCustomer vets r, the step's invoice (external id eid) as another
// attempt made it: billed to the customer asked for, or the deal's company
// changed in between (a re-run): then it is not this invoice, and the run
// fails rather than report another customer's invoice as the deal's.
func billsCustomer(r Record, eid, customerID string) error {
	if r.Entity == nil || r.Entity.ID == "" || customerID == "" || r.Entity.ID == customerID {
		return nil
	}
	return fmt.Errorf("netsuite create invoice: invoice %s (external id %s), made by an earlier attempt or run of this step, bills customer %s, not %s (the deal's company changed since?); in NetSuite, bill it to customer %[4]s or delete it, then retry: %[5]w",
		r.ID, eid, r.Entity.ID, customerID, connectors.ErrPermanent)
}

// totalDiffers compares what NetSuite says of an invoice it has with inv
// (connectors.TotalDiffers). A line discount is a line of its own in
// NetSuite (NewInvoice), taxed apart from the line it discounts: NetSuite
// rounds the tax of both, where dealsync rounds the tax of the discounted
// amount once, so a minor unit per taxed discounted line is not a
// difference (10.05 less 0.04 at 10 %: 1.01 − 0.00 in NetSuite, 1.00 in
// dealsync).
func (t *Target) totalDiffers(ctx context.Context, inv model.Invoice, r Record) string {
	got := connectors.Reported{Total: r.Total, Subtotal: r.Subtotal}
	for _, l := range inv.Lines {
		if l.Discount.IsPositive() && !l.TaxRate.IsZero() {
			got.Slack = got.Slack.Add(decimal.New(1, -inv.Currency.MinorUnits()))
		}
	}
	return connectors.TotalDiffers("NetSuite", r.ID, r.TranID, inv, got,
		"NetSuite computed its own tax (its REST API supports only SuiteTax, whose tax engine decides)", connectors.StepLogger(ctx, t.log))
}

func (t *Target) invoiceLink(id string) string {
	return t.app + "/app/accounting/transactions/custinvc.nl?id=" + url.QueryEscape(id)
}

// PlanInvoice returns the PUT CreateInvoice would send, with the bearer
// token masked (the private key never leaves the token request). It sends
// and reads nothing: without currency_ids, the plan has no currency even
// for an account whose currencies would add one, and its Note says so.
func (t *Target) PlanInvoice(inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.Request, error) {
	call, err := t.invoiceCall(inv, customer, key, t.opts)
	if err != nil {
		return connectors.Request{}, err
	}
	req, err := t.client.Plan(call)
	if err == nil && len(t.opts.CurrencyIDs) == 0 && inv.Currency != "" {
		// currencyOptions, at run time, from the account's currencies.
		req.Note = fmt.Sprintf("without currency_ids in the target, a run reads the account's currencies first: it adds "+
			"\"currency\":{\"id\":…} (%s's internal id) to this body where the account has several, and refuses an invoice in a currency the account does not have before sending", string(inv.Currency))
	}
	return req, err
}

func (t *Target) invoiceCall(inv model.Invoice, customer connectors.CustomerRef, key string, o Options) (erpkit.Call, error) {
	ns, err := NewInvoice(inv, customer.ID, o)
	if err != nil {
		return erpkit.Call{}, fmt.Errorf("netsuite create invoice: %v: %w", err, connectors.ErrPermanent)
	}
	body, err := json.Marshal(ns)
	if err != nil {
		return erpkit.Call{}, fmt.Errorf("netsuite create invoice: %w", err)
	}
	eid := InvoiceExternalID(key)
	replace := url.Values{"replace": {InvoiceSublists}}
	return erpkit.Call{Op: "create invoice", Method: http.MethodPut, URL: t.recordURL("invoice", "eid:"+eid) + "?" + replace.Encode(), Body: body}, nil
}

// InvoiceSublists names, comma-separated, the sublists of the invoice
// body (Invoice): the invoice upsert sends them as its replace query
// parameter. An upsert that updates an existing record appends the lines
// of every sublist not named there, so an upsert that meets the invoice of
// a racing attempt would otherwise double its lines. A sublist added to
// Invoice must be added here.
const InvoiceSublists = "item"

// currencyOptions are the invoice options for an invoice in cur. With
// currency_ids they are the configured ones. Otherwise the account's
// active currencies are read (SuiteQL over the currency list, whose symbol
// is the ISO code): an account with several gets the invoice's currency
// sent, and an account without the invoice's currency refuses it before
// anything is sent, naming the ones it has; NetSuite would otherwise book
// it in the customer's currency with the deal's figures. An account whose
// currency list cannot be read (no Multiple Currencies feature, or a role
// without the Currency permission) gets no currency sent, so its invoices
// are booked in its one currency: base_currency, which the invoice's must
// be; without it the invoice is refused, saying what to set.
func (t *Target) currencyOptions(ctx context.Context, cur model.Currency) (Options, error) {
	o := t.opts
	if len(o.CurrencyIDs) > 0 || cur == "" {
		return o, nil
	}
	ids, err := t.currencies(ctx, string(cur))
	if err != nil {
		return o, err
	}
	if len(ids) == 0 {
		switch base := t.cfg.BaseCurrency; {
		case base == "":
			return o, fmt.Errorf("netsuite: the currencies of NetSuite account %s cannot be read (an account without the Multiple Currencies feature, "+
				"or a role without view on Currency or without SuiteAnalytics Workbook, which SuiteQL needs), so the invoice would be booked in the customer's currency with its %s figures: "+
				"on a single-currency account set the target's base_currency to the account's currency; on a multi-currency one give the role view on Currency and SuiteAnalytics Workbook, "+
				"or set currency_ids: %w", t.cfg.AccountID, cur, connectors.ErrPermanent)
		case base != string(cur):
			return o, fmt.Errorf("netsuite: the invoice is in %s, but NetSuite account %s books in its base_currency %s only (its currency list cannot be read): "+
				"map the deal's amounts to %s, or, if the account has more currencies, give the role view on Currency and SuiteAnalytics Workbook, or set currency_ids: %w",
				cur, t.cfg.AccountID, base, base, connectors.ErrPermanent)
		}
		return o, nil
	}
	if _, ok := ids[string(cur)]; !ok {
		have := slices.Sorted(maps.Keys(ids))
		return o, fmt.Errorf("netsuite: the invoice is in %s, but NetSuite account %s has no active currency %s (it has %s): "+
			"map the deal's amounts to one of those, or add %s under Lists > Accounting > Currencies (dealsync reads them again after %s) and retry the run: %w",
			cur, t.cfg.AccountID, cur, strings.Join(have, ", "), cur, wording.Duration(currenciesFor), connectors.ErrPermanent)
	}
	if len(ids) > 1 {
		o.CurrencyIDs = ids
	}
	return o, nil
}

// currencies reads the account's active currencies, ISO code → internal
// id, one read at a time (a caller whose context ends while it waits gives
// up), and keeps them; they are read again when want is not among them
// and they are older than currenciesFor. A query NetSuite refuses for
// good or forbids (403), or an empty answer, is kept as none, unless a list
// was read before: that one stands. An outage or a 401 is an error, kept
// as nothing.
func (t *Target) currencies(ctx context.Context, want string) (map[string]string, error) {
	select {
	case t.currencySem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-t.currencySem }()
	if !t.currenciesAt.IsZero() {
		if _, ok := t.currencyIDs[want]; ok || time.Since(t.currenciesAt) < currenciesFor {
			return t.currencyIDs, nil
		}
	}
	// ISO 4217 has fewer than 200 codes: one page of 1000 holds them all.
	rows, _, err := t.query(ctx, "read currencies", "SELECT id, symbol FROM currency WHERE isinactive = 'F'", 1000, 0)
	if err != nil {
		// NetSuite refuses the query of an account without the Multiple
		// Currencies feature (no currency list) and, depending on the
		// answer, of a role without the Currency permission.
		var api *connectors.APIError
		forbidden := errors.As(err, &api) && api.StatusCode == http.StatusForbidden
		if cl, _ := connectors.Classify(err); (cl != connectors.Permanent && !forbidden) || erpkit.IsTokenFailure(err) {
			// An outage, credentials that do not work at all (401), or no
			// token (the query was not sent): not a fact about the account.
			return nil, err
		}
		rows = nil
	}
	ids := map[string]string{}
	for _, row := range rows {
		if sym := strings.ToUpper(strings.TrimSpace(row["symbol"])); sym != "" {
			ids[sym] = row["id"]
		}
	}
	if len(ids) == 0 && len(t.currencyIDs) > 0 {
		// The account had a list: a refused or empty read again (a role
		// changed meanwhile?) does not make it a single-currency one, whose
		// invoices go out without a currency. The list read before stands.
		connectors.StepLogger(ctx, t.log).Warn("netsuite: the account's currencies could not be read again; the ones read before are kept",
			"account", t.cfg.AccountID, "error", err, "rows", len(rows))
		t.currenciesAt = time.Now()
		return t.currencyIDs, nil
	}
	if len(ids) == 0 {
		t.log.Debug("netsuite: the account's currencies cannot be read", "account", t.cfg.AccountID, "error", err, "rows", len(rows))
	}
	t.currencyIDs, t.currenciesAt = ids, time.Now()
	return ids, nil
}
