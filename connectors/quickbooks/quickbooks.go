// Package quickbooks is the "quickbooks" ERP target: QuickBooks Online's
// Accounting API v3.
//
//	GET  /v3/company/{realm}/query?query=select … from Customer where DisplayName = '…'
//	POST /v3/company/{realm}/customer?minorversion=N&requestid=…   create it, or claim one made outside dealsync (sparse Notes)
//	GET  /v3/company/{realm}/query?query=select … from Invoice where DocNumber = '…' ORDERBY Id STARTPOSITION n MAXRESULTS 1000
//	POST /v3/company/{realm}/invoice?minorversion=N&requestid=…
//
// QBO has no idempotency header: requestid makes a retried POST return the
// first answer (Intuit keeps it for a limited time), and the invoice is
// looked up by DocNumber (the invoice reference) before it is created, so a
// re-run after the requestid is forgotten does not invoice twice. OAuth 2.0
// refresh-token grant; Intuit rotates refresh tokens, so each new one is
// saved (erpkit.FileTokenStore) before the access token is used.
package quickbooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Defaults of Config.
const (
	DefaultBaseURL      = "https://quickbooks.api.intuit.com"
	SandboxBaseURL      = "https://sandbox-quickbooks.api.intuit.com"
	DefaultTokenURL     = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
	DefaultMinorVersion = 75
	DefaultTimeout      = 30 * time.Second
)

// Config is the `targets.<name>` block of a target whose type is "quickbooks".
type Config struct {
	// RealmID is the company id (shown as realmId after the consent flow).
	RealmID      string        `mapstructure:"realm_id" validate:"required,number"`
	ClientID     string        `mapstructure:"client_id" validate:"required"`
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required"`
	// RefreshToken seeds TokenFile the first time.
	RefreshToken secret.Secret `mapstructure:"refresh_token"`
	TokenFile    string        `mapstructure:"token_file" validate:"required"`
	// LinkFile keeps CRM company → QBO customer Id links. QBO customers
	// have no external-id field, so this file is how a company is
	// recognised after a rename; without it only the exact DisplayName matches.
	LinkFile string `mapstructure:"link_file" validate:"required"`
	// DefaultItemID is the QBO Item Id of lines whose mapping sets no item_code.
	DefaultItemID  string `mapstructure:"default_item_id" validate:"omitempty,number"`
	DefaultTaxCode string `mapstructure:"default_tax_code"`
	// MultiCurrency sends CurrencyRef (only for companies with multicurrency
	// on). Off, dealsync reads the company's preferences once: a company
	// with multicurrency on gets CurrencyRef all the same, and one without
	// it refuses invoices in another currency than its home currency.
	MultiCurrency bool `mapstructure:"multi_currency"`
	// GlobalTaxCalculation is sent on every invoice when set. Companies
	// outside the US (VAT, GST) need TaxExcluded: dealsync's line amounts
	// are net of tax, and a company whose sales default to amounts
	// including tax would otherwise read them as gross and bill less tax.
	// US companies leave it unset (their sales tax has no such model).
	GlobalTaxCalculation string `mapstructure:"global_tax_calculation" validate:"omitempty,oneof=TaxExcluded"`
	// MinorVersion is sent on every call. Intuit ignores minor versions
	// 1–74 since August 2025 (and answers as 75): a lower one would only
	// mislead whoever reads the config.
	MinorVersion int           `mapstructure:"minor_version" validate:"gte=75"`
	BaseURL      string        `mapstructure:"base_url" validate:"required,url"`
	TokenURL     string        `mapstructure:"token_url" validate:"required,url"`
	Timeout      time.Duration `mapstructure:"timeout" validate:"gte=0"`
}

// IdentifyingSettings are the company and the API its calls reach
// (connectors.TargetIdentifier): never the app's credentials or tokens.
func (c Config) IdentifyingSettings() []connectors.Setting {
	return []connectors.Setting{
		{Key: "realm_id", Value: strings.TrimSpace(c.RealmID)},
		connectors.URLSetting("base_url", c.BaseURL),
	}
}

// DefaultConfig has every default filled in.
func DefaultConfig() Config {
	return Config{MinorVersion: DefaultMinorVersion, BaseURL: DefaultBaseURL, TokenURL: DefaultTokenURL, Timeout: DefaultTimeout}
}

func init() {
	connectors.RegisterTargetType("quickbooks", "QuickBooks Online Accounting API v3 (OAuth 2.0 with refresh-token rotation, requestid + DocNumber check)", DefaultConfig,
		func(c Config, env connectors.Env) (*Target, error) {
			return New(c, Deps{HTTPClient: env.HTTPClient, Logger: env.Logger, ConfigKey: env.ConfigKey, KeyVar: env.KeyVar})
		})
}

// Deps are the Target's collaborators; zero values take the config's.
type Deps struct {
	HTTPClient *http.Client
	Tokens     erpkit.TokenStore
	Links      erpkit.LinkStore
	Logger     *slog.Logger // default: none
	// ConfigKey is the target's config key (targets.<name>), which its
	// advice names its settings under (connectors.Env.ConfigKey).
	ConfigKey string
	// KeyVar names a setting's variable in that advice
	// (connectors.Env.KeyVar).
	KeyVar func(key string) string
}

// Target is the QuickBooks Online target. It is safe for concurrent use.
type Target struct {
	cfg    Config
	base   string // …/v3/company/{realm}
	client *erpkit.Client
	links  erpkit.LinkStore
	opts   Options
	log    *slog.Logger

	prefsSem chan struct{} // one read of the preferences at a time
	// numberingOnce: the warning of a company that numbers its invoices
	// itself, once per target.
	numberingOnce sync.Once
	prefs         *Preferences // when multi_currency is off: read, then kept (see prefsOffFor)
	prefsAt       time.Time
}

// prefsOffFor is how long a company's "multicurrency off" is believed
// before the preferences are read again, so that turning multicurrency on
// in QBO takes effect without a restart. "On" is kept: QBO cannot turn it
// off again.
var prefsOffFor = 5 * time.Minute

var (
	_ connectors.Target         = (*Target)(nil)
	_ connectors.InvoiceRetrier = (*Target)(nil)
)

// InvoiceRetry implements connectors.InvoiceRetrier: a retry finds the
// invoice by its DocNumber and note, or QuickBooks answers the requestid
// with it.
func (t *Target) InvoiceRetry() connectors.InvoiceRetry { return connectors.InvoiceRetryFinds }

// New makes a Target.
func New(cfg Config, deps Deps) (*Target, error) {
	d := DefaultConfig()
	if cfg.BaseURL == "" {
		cfg.BaseURL = d.BaseURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = d.TokenURL
	}
	if cfg.MinorVersion == 0 {
		cfg.MinorVersion = d.MinorVersion
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.RealmID == "" || cfg.ClientID == "" || cfg.ClientSecret.IsZero() {
		return nil, errors.New("quickbooks: realm_id, client_id and client_secret are required")
	}
	// dealsync adds /v3/company/<realm_id> to base_url: a base_url that
	// has it already (as Intuit's API reference writes the base) would
	// double it, and every call would answer 404.
	u, err := erpkit.ParseConfiguredURL("quickbooks: base_url", cfg.BaseURL, d.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := erpkit.APIPathError("quickbooks: base_url", u, apiPath, "/v3/company/<realm_id>",
		d.BaseURL+" (or the sandbox's https://sandbox-quickbooks.api.intuit.com)"); err != nil {
		return nil, err
	}
	store := deps.Tokens
	if store == nil {
		if cfg.TokenFile == "" {
			return nil, errors.New("quickbooks: token_file is required")
		}
		store = &erpkit.FileTokenStore{Path: cfg.TokenFile}
	}
	links := deps.Links
	if links == nil {
		if cfg.LinkFile == "" {
			return nil, errors.New("quickbooks: link_file is required (QBO customers have no external-id field)")
		}
		links = &erpkit.FileLinkStore{Path: cfg.LinkFile}
	}
	hc := deps.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	conn := "QuickBooks company " + cfg.RealmID
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := connectors.Env{ConfigKey: deps.ConfigKey, KeyVar: deps.KeyVar}.TargetKeys()
	tokens, err := erpkit.NewRefreshingSource(erpkit.RefreshGrant{
		Service: "quickbooks", Connection: conn, Target: true, Keys: keys, Key: "quickbooks: ",
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RefreshToken: cfg.RefreshToken,
		TokenURL: cfg.TokenURL, Store: store, HTTPClient: hc,
		Refreshed: func(tok *oauth2.Token) { refreshTokenExpiry(log, cfg.RealmID, tok, time.Now()) },
	})
	if err != nil {
		return nil, err
	}
	return &Target{
		cfg:      cfg,
		log:      log,
		prefsSem: make(chan struct{}, 1),
		base:     strings.TrimRight(cfg.BaseURL, "/") + "/v3/company/" + url.PathEscape(cfg.RealmID),
		links:    links,
		opts: Options{DefaultItemID: cfg.DefaultItemID, DefaultTaxCode: cfg.DefaultTaxCode, SetCurrency: cfg.MultiCurrency,
			GlobalTaxCalculation: cfg.GlobalTaxCalculation},
		client: &erpkit.Client{Service: "quickbooks", Connection: conn, HTTP: hc, Tokens: tokens, Timeout: cfg.Timeout,
			ErrorDetail: errorDetail, RetryAfter: retryAfter, Keys: keys,
			AccessAdvice: func(status int, body []byte) string { return accessAdvice(keys, status, body) }},
	}, nil
}

// accessAdvice says what to check when QuickBooks answers 401 or 403
// (erpkit.Client), by the code of QBO's fault where it gives one, as
// Xero's names tenant_id first. A 401 here is the answer to an access
// token just refreshed (the client refreshes once on a 401, and a refused
// refresh is the token endpoint's error, not this). The codes:
//
//   - 100, General Authentication Error (AuthenticationErrorGeneral
//     SRV-110), 401: QBO's answer to a token for a company other than the
//     realm in the URL, as Intuit's engineers reproduced it with a token
//     and a realm that do not belong together (intuit/oauth-jsclient#91),
//     and to an expired token: realm_id, else authorize the app again.
//   - 130, Accessing Wrong Cluster (WrongClusterError), 401: answered to a
//     production company's token at a host it is not on, where the
//     sandbox's worked (routablehq/python-quickbooks#369): base_url.
//   - 120, Authorization Failure (AuthorizationFault), 401 in a sample:
//     the user who connected the app lost access to the company (an
//     accountant user deleted while connected), or the connection was
//     revoked.
//   - 3100, AuthorizationFailed, 403: a sandbox company's realm at the
//     production host (Intuit's help, minimul/qbo_api#138), or a token
//     without the accounting scope ("The access token does not have
//     sufficient scope").
//
// Without a code (a proxy's answer, XML, another code), the advice is the
// general one, naming realm_id and base_url.
func accessAdvice(keys connectors.Keys, status int, body []byte) string {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return ""
	}
	authorize := "authorize the app for the company again, by the authorization-code flow with " + keys.Key("client_id") + `, choosing that company, and write the new refresh token into ` +
		keys.Key("token_file") + ` as {"refresh_token":"<new token>"}`
	realmID := "the realmId the authorization-code flow gave with the refresh token in " + keys.Key("token_file")
	hosts := "a production company is at " + DefaultBaseURL + ", a sandbox company at " + SandboxBaseURL
	switch accessFaultCode(body) {
	case "100":
		return "check " + keys.Key("realm_id") + " first: QuickBooks refuses a token, even one just issued, for a company other than the one its " +
			"authorization connected (General Authentication Error, code 100); realm_id must be " + realmID + "; if it is, " + authorize
	case "130":
		return "check " + keys.Key("base_url") + " first: QuickBooks answers Accessing Wrong Cluster (code 130) to a call for a company at a host it is not on (" +
			hosts + "); then that " + keys.Key("realm_id") + " is " + realmID
	case "120":
		return "check that the user who connected the app to the company still has access to it: QuickBooks answers Authorization Failure (code 120) " +
			"when that user was removed from the company or the app's connection was revoked; if so, have a user of the company " + authorize
	case "3100":
		return "check " + keys.Key("base_url") + " first: QuickBooks refuses (AuthorizationFailed, code 3100) a sandbox company's realm at the production host (" +
			hosts + "); then the scopes of the app of " + keys.Key("client_id") + ": a token without com.intuit.quickbooks.accounting is refused the same way"
	}
	general := "check " + keys.List("realm_id", "base_url") + " first: realm_id must be " + realmID + ", and base_url its environment's host (" + hosts + ")"
	if status == http.StatusUnauthorized {
		return general + "; if they are right, " + authorize
	}
	return general + "; then the scopes of the app of " + keys.Key("client_id") + " (com.intuit.quickbooks.accounting) and that the user who connected it still has access to the company"
}

// accessFaultCode is the first code of QBO's fault among those
// accessAdvice tells apart, "" when there is none (a body that is not
// QBO's JSON fault).
func accessFaultCode(body []byte) string {
	var f Fault
	if json.Unmarshal(body, &f) != nil {
		return ""
	}
	for _, e := range f.Fault.Error {
		switch e.Code {
		case "100", "120", "130", "3100":
			return e.Code
		}
	}
	return ""
}

// refreshTokenWarning is how long before its refresh token expires a
// company's connection is warned of at each refresh (hourly).
const refreshTokenWarning = 30 * 24 * time.Hour

// refreshTokenExpiry reads when the refresh token tok came with expires
// (Intuit's x_refresh_token_expires_in, in seconds): about 100 days on,
// while the grant is younger than Intuit's five-year cap, then less and
// less. Within refreshTokenWarning of that, the worker's log warns at each
// refresh, with the date and what to do; otherwise it notes the date at
// debug level. Once it passes, every call fails as unauthorized until the
// company is connected again.
func refreshTokenExpiry(log *slog.Logger, realm string, tok *oauth2.Token, now time.Time) {
	var secs float64
	switch v := tok.Extra("x_refresh_token_expires_in").(type) {
	case float64:
		secs = v
	case json.Number:
		secs, _ = v.Float64()
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs <= 0 {
		return
	}
	expires := now.Add(time.Duration(secs) * time.Second).UTC()
	if expires.Sub(now) > refreshTokenWarning {
		log.Debug("quickbooks: refresh token renewed", "realm", realm, "refresh_token_expires", expires.Format(time.RFC3339))
		return
	}
	log.Warn("quickbooks: the company's refresh token expires soon and Intuit will not renew it (its grant reaches Intuit's five-year limit): "+
		"connect the company again before then (the authorization-code flow, its refresh token in refresh_token, token_file removed), "+
		"or every invoice step fails as unauthorized from that date",
		"realm", realm, "refresh_token_expires", expires.Format(time.RFC3339))
}

// apiPath is QBO's API path, which New adds to base_url, in any case.
var apiPath = regexp.MustCompile(`(?i)/v3/company`)

// RequestID is the requestid QBO gets for a step key: a UUID derived from
// it (QBO wants a short unique string per request).
func RequestID(key string) string { return erpkit.UUIDFromKey(key) }

func (t *Target) linkKey(externalID string) string {
	return "quickbooks/" + t.cfg.RealmID + "/" + externalID
}

func (t *Target) query(ctx context.Context, op, q string) (*QueryResponse, error) {
	v := url.Values{"query": {q}, "minorversion": {fmt.Sprint(t.cfg.MinorVersion)}}
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/query?" + v.Encode()})
	if err != nil {
		return nil, err
	}
	var qr QueryResponse
	if err := resp.Decode("quickbooks", op, &qr); err != nil {
		return nil, err
	}
	return &qr, nil
}

// quote makes a string literal of QBO's query language.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// FindOrCreateCustomer: the stored link (CRM company id), then the exact
// DisplayName (unique in QBO; claimed when no CRM company had it, see
// take), else a new customer under the step's key.
// QBO cannot be searched by tax id (PrimaryTaxIdentifier is write-only and
// masked), so the tax-id rule does not apply here.
func (t *Target) FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (connectors.CustomerRef, error) {
	// The company id as its Notes and link keep it: trimmed, so that the
	// customer made for "C-1 " is found again as C-1's.
	c.ExternalID = strings.TrimSpace(c.ExternalID)
	name := strings.TrimSpace(c.Name)
	if name == "" {
		return connectors.CustomerRef{}, fmt.Errorf("quickbooks find customer: the customer has no name: %w", connectors.ErrPermanent)
	}
	if c.ExternalID != "" {
		if id, ok, err := t.links.Get(ctx, t.linkKey(c.ExternalID)); err != nil {
			return connectors.CustomerRef{}, err
		} else if ok {
			return connectors.CustomerRef{ID: id}, nil
		}
	}
	if strings.Contains(name, ":") {
		// IntuitNamesTypes.xsd, Customer: "The customer name must not
		// contain a colon" (it separates a sub-customer from its parent). A
		// linked customer (above) is never looked up or made by name.
		return connectors.CustomerRef{}, fmt.Errorf("quickbooks find customer: the customer name %q has a colon, which QuickBooks names cannot have "+
			"(it separates sub-customers): map invoice.customer.name without it, e.g. replace(deal.company.name, \":\", \" -\"): %w", name, connectors.ErrPermanent)
	}
	if found, err := t.findByName(ctx, name, c.ExternalID); err != nil {
		return connectors.CustomerRef{}, err
	} else if found.Id != "" {
		return t.take(ctx, c, name, found, key)
	}
	const op = "create customer"
	nc := NewCustomer(c)
	if err := CustomerFits(nc); err != nil {
		return connectors.CustomerRef{}, fmt.Errorf("quickbooks %s: %v: %w", op, err, connectors.ErrPermanent)
	}
	if c.Currency != "" {
		// A customer of a multicurrency company has one currency for good:
		// the deal's, or its invoices would be refused.
		multi, err := t.multiCurrency(ctx)
		if err != nil {
			return connectors.CustomerRef{}, err
		}
		if multi {
			nc.CurrencyRef = &Ref{Value: string(c.Currency)}
		}
	}
	body, err := json.Marshal(nc)
	if err != nil {
		return connectors.CustomerRef{}, err
	}
	v := url.Values{"minorversion": {fmt.Sprint(t.cfg.MinorVersion)}, "requestid": {RequestID(key)}}
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodPost, URL: t.base + "/customer?" + v.Encode(), Body: body})
	if err != nil {
		// Another run (a second deal of the same new company) or a person
		// created the name since the lookup: QBO refuses it again; take
		// that customer, as the lookup would have.
		if isDuplicateName(err) {
			found, ferr := t.findByName(ctx, name, c.ExternalID)
			if ferr != nil {
				return connectors.CustomerRef{}, ferr
			}
			if found.Id != "" {
				return t.take(ctx, c, name, found, key)
			}
			// No active customer has it: a vendor, an employee or an
			// inactive customer does (display names are unique across
			// them), and every attempt would be refused the same way.
			return connectors.CustomerRef{}, fmt.Errorf("quickbooks %s: QBO refuses the name %q, which no active customer has: a vendor, an employee or an inactive customer uses it (display names are unique across them); rename one of them in QBO (or make the customer active), then retry: %w",
				op, name, err)
		}
		return connectors.CustomerRef{}, err
	}
	var created struct{ Customer Customer }
	if err := resp.Decode("quickbooks", op, &created); err != nil {
		return connectors.CustomerRef{}, err
	}
	if created.Customer.Id == "" {
		return connectors.CustomerRef{}, fmt.Errorf("quickbooks %s: answer has no Id", op)
	}
	return t.linked(ctx, c, connectors.CustomerRef{ID: created.Customer.Id, Created: true})
}

// findByName finds the customer of that DisplayName; a zero Customer
// when there is none. One whose Notes name another CRM company than
// companyID is an error, not a match.
func (t *Target) findByName(ctx context.Context, name, companyID string) (Customer, error) {
	const fields = "select Id, SyncToken, DisplayName, Active, Notes from Customer where DisplayName "
	var customers []Customer
	if Queryable(name) {
		qr, err := t.query(ctx, "find customer", fields+"= "+quote(name))
		if err != nil {
			return Customer{}, err
		}
		customers = qr.QueryResponse.Customer
	} else {
		// A name QBO's query cannot carry (a typographic apostrophe, an
		// en dash): the customers whose names share its longest part
		// that it can, page by page, compared in full below.
		pattern := likePattern(name)
		for page := 0; ; page++ {
			if page == maxLikePages {
				return Customer{}, fmt.Errorf("quickbooks find customer: the name %q has characters QuickBooks' query cannot carry, and more than %d customers match %q, the part of it that can be searched; map invoice.customer.name without those characters (e.g. replace(deal.company.name, \"’\", \"'\")), or link the company to its customer in the link file: %w",
					name, maxLikePages*likePageSize, pattern, connectors.ErrPermanent)
			}
			qr, err := t.query(ctx, "find customer", fmt.Sprintf("%sLIKE %s ORDERBY Id STARTPOSITION %d MAXRESULTS %d", fields, quote(pattern), page*likePageSize+1, likePageSize))
			if err != nil {
				return Customer{}, err
			}
			customers = append(customers, qr.QueryResponse.Customer...)
			if len(qr.QueryResponse.Customer) < likePageSize {
				break
			}
		}
	}
	for _, cu := range customers {
		// QBO's names are unique regardless of case ("ACME GmbH" is refused
		// as a duplicate of "Acme GmbH"), so they match regardless of case.
		if !strings.EqualFold(cu.DisplayName, name) || cu.Id == "" {
			continue
		}
		// A customer dealsync made for, or that was claimed by, another CRM
		// company (its Notes say which) is not this company's, whatever
		// its name.
		// A deal without a company id takes no other company's either.
		if other, ok := noteCompany(cu.Notes); ok && other != companyID {
			if companyID == "" {
				return Customer{}, fmt.Errorf("quickbooks find customer: the customer named %q (Id %s) belongs to CRM company %s, and this deal has no CRM company id; give the deal its company in the CRM, or rename one of them: %w",
					cu.DisplayName, cu.Id, other, connectors.ErrPermanent)
			}
			return Customer{}, fmt.Errorf("quickbooks find customer: the customer named %q (Id %s) belongs to CRM company %s, not %s; rename one of them in QBO or in the CRM: %w",
				cu.DisplayName, cu.Id, other, companyID, connectors.ErrPermanent)
		}
		return cu, nil
	}
	return Customer{}, nil
}

// likePageSize and maxLikePages bound a LIKE search for a customer: QBO
// answers at most 1000 rows a query.
const likePageSize, maxLikePages = 1000, 20

// take links the customer found by name. One that no CRM company has
// claimed yet (made outside dealsync) is claimed first: the company's line
// is put at the top of its Notes (a sparse update, the other notes kept),
// so that another CRM company of the same name no longer takes it. A claim
// QBO refuses is most often a customer changed since the lookup (a stale
// SyncToken), maybe claimed by another company of the name whose deal ran
// at the same moment: it is read again, and then taken if this company
// claimed it, refused if another did, or claimed once more. A claim that
// still fails for good (QBO's validation, Notes too long to take the line)
// is logged and the match is used for this invoice without a link, so
// that the company's next deal looks it up afresh. A claim that could not
// get a token was not sent: that failure is the error (refused).
func (t *Target) take(ctx context.Context, c model.Customer, name string, found Customer, key string) (connectors.CustomerRef, error) {
	if _, claimed := noteCompany(found.Notes); claimed || c.ExternalID == "" {
		return t.linked(ctx, c, connectors.CustomerRef{ID: found.Id})
	}
	err := t.claim(ctx, found, c.ExternalID, key)
	var api *connectors.APIError
	if err != nil && errors.As(err, &api) && erpkit.Refused(err) {
		again, ferr := t.findByName(ctx, name, c.ExternalID)
		if ferr != nil {
			return connectors.CustomerRef{}, ferr // claimed by another company meanwhile
		}
		if again.Id == found.Id {
			if _, claimed := noteCompany(again.Notes); claimed {
				return t.linked(ctx, c, connectors.CustomerRef{ID: found.Id}) // by this company (findByName refuses another's)
			}
			err = t.claim(ctx, again, c.ExternalID, key)
		}
	}
	if err != nil {
		if !erpkit.Refused(err) {
			return connectors.CustomerRef{}, err
		}
		connectors.StepLogger(ctx, t.log).Warn("quickbooks: the customer matched by name could not be claimed; its Notes do not name the CRM company",
			"realm", t.cfg.RealmID, "customer", found.Id, "company", c.ExternalID, "error", err)
		return connectors.CustomerRef{ID: found.Id}, nil
	}
	return t.linked(ctx, c, connectors.CustomerRef{ID: found.Id})
}

// maxNotes is the longest Notes QBO keeps on a customer
// (IntuitNamesTypes.xsd, Customer Notes: "Max. length: 1024 characters";
// Intuit's web reference says 2000, the smaller is kept to).
const maxNotes = 1024

// claim writes the CRM company's line at the top of the customer's Notes
// (sparse update: nothing else changes). Its requestid comes from the step
// key, the customer and the version claimed, so a retry after a lost answer
// is not applied twice, and a later claim of a changed customer is not
// answered from the first one.
func (t *Target) claim(ctx context.Context, found Customer, companyID, key string) error {
	const op = "claim customer"
	notes := claimedNotes(found.Notes, companyID)
	if len([]rune(notes)) > maxNotes {
		return fmt.Errorf("quickbooks %s: the Notes of customer %s have no room for the line %q (QBO keeps %d characters): %w",
			op, found.Id, crmCompanyNote+companyID, maxNotes, connectors.ErrPermanent)
	}
	body, err := json.Marshal(map[string]any{"Id": found.Id, "SyncToken": found.SyncToken, "sparse": true, "Notes": notes})
	if err != nil {
		return err
	}
	v := url.Values{"minorversion": {fmt.Sprint(t.cfg.MinorVersion)}, "requestid": {RequestID(key + "/claim/" + found.Id + "/" + found.SyncToken)}}
	_, err = t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodPost, URL: t.base + "/customer?" + v.Encode(), Body: body})
	return err
}

// ReferenceNumberField implements connectors.SelfNumberedReference: the
// reference is the invoice's DocNumber, which QuickBooks numbers itself
// (1001, 1002, …) and keeps unique (error 6140).
func (t *Target) ReferenceNumberField() string { return "DocNumber" }

// isDuplicateDocNumber is QBO's refusal of an invoice whose DocNumber
// another transaction has (error 6140).
func isDuplicateDocNumber(err error) bool {
	var api *connectors.APIError
	return errors.As(err, &api) && api.StatusCode == http.StatusBadRequest &&
		(strings.Contains(api.Message, "Duplicate Document Number") || strings.Contains(api.Message, "code 6140"))
}

// isDuplicateName is QBO's refusal of a DisplayName another customer,
// vendor or employee has (error 6240).
func isDuplicateName(err error) bool {
	var api *connectors.APIError
	return errors.As(err, &api) && api.StatusCode == http.StatusBadRequest &&
		(strings.Contains(api.Message, "Duplicate Name Exists") || strings.Contains(api.Message, "code 6240"))
}

func (t *Target) linked(ctx context.Context, c model.Customer, ref connectors.CustomerRef) (connectors.CustomerRef, error) {
	if c.ExternalID != "" {
		if err := t.links.Put(ctx, t.linkKey(c.ExternalID), ref.ID); err != nil {
			return connectors.CustomerRef{}, err
		}
	}
	return ref, nil
}

// CreateInvoice checks for an invoice with the same DocNumber, billed to
// the same customer for the same deal (its PrivateNote holds dealsync's
// note, whatever a person added around it), and otherwise creates it with
// requestid derived from key. QBO numbers its own invoices 1001, 1002, …:
// a deal whose reference is such a number must not take an invoice of
// another customer, or of another deal, for its own; and two or more that
// each say they are the deal's are refused, not one of them taken
// (existing).
func (t *Target) CreateInvoice(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.InvoiceResult, error) {
	const op = "create invoice"
	// Built once to refuse a bad invoice before anything is read; rebuilt
	// below with the company's currency settings.
	if _, err := t.invoiceCall(inv, customer, key, t.opts); err != nil {
		return connectors.InvoiceResult{}, err
	}
	doc := DocNumber(inv.Reference)
	if doc != "" {
		if res, ok, err := t.existing(ctx, inv, doc, customer.ID); err != nil {
			return connectors.InvoiceResult{}, err
		} else if ok {
			return res, nil
		}
	}
	opts, err := t.currencyOptions(ctx, inv.Currency)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	call, err := t.invoiceCall(inv, customer, key, opts)
	if err != nil {
		return connectors.InvoiceResult{}, err
	}
	resp, err := t.client.Do(ctx, call)
	if err != nil {
		if isDuplicateDocNumber(err) {
			// Another invoice has the number: one QBO numbered itself
			// (1001, 1002, … and on from the last number used, dealsync's
			// included), or one made by hand; the look-up above saw it is
			// not this deal's.
			return connectors.InvoiceResult{}, fmt.Errorf("quickbooks %s: QuickBooks refuses DocNumber %s, which another invoice has (%v); QuickBooks numbers its own invoices 1001, 1002, … and on from the last number used, so a reference such as a bare deal id can meet one: map invoice.reference to a value its numbers cannot take (e.g. \"DS-\" + deal.id), then retry the run: %w",
				op, doc, err, connectors.ErrPermanent)
		}
		return connectors.InvoiceResult{}, t.forgetStaleCustomer(ctx, inv, customer, err)
	}
	var created struct {
		Invoice struct {
			Id, DocNumber string
			CustomerRef   struct {
				Value string `json:"value"`
			}
			TotalAmt     json.Number // tax included, as QBO computed it
			TxnTaxDetail struct {
				TotalTax json.Number
			}
		}
	}
	if err := resp.Decode("quickbooks", op, &created); err != nil {
		return connectors.InvoiceResult{}, err
	}
	if created.Invoice.Id == "" {
		return connectors.InvoiceResult{}, fmt.Errorf("quickbooks %s: answer has no Id", op)
	}
	if c := created.Invoice.CustomerRef.Value; c != "" && c != customer.ID {
		// Not the invoice sent: QBO answered the requestid of an earlier
		// attempt of this step, made before the deal's company changed
		// (the look-up missed it: its DocNumber or note was changed, or it
		// was deleted), or a proxy or mock answered in QBO's place.
		return connectors.InvoiceResult{}, connectors.EarlierAnswer(fmt.Errorf("quickbooks %s: QuickBooks answered this step's requestid with invoice %s (DocNumber %s), billed to customer %s, "+
			"not with the invoice this request sent, billed to customer %s: either an earlier attempt or run of this step made it (its answer lost, before the deal's company changed in the CRM), "+
			"or what answers at the target's base_url is not QuickBooks' API itself (a proxy or a mock answering fixed data); "+
			"dealsync does not bill a deal twice: bill the deal's customer by hand, or retry the run once Intuit has forgotten the requestid: %w",
			op, created.Invoice.Id, created.Invoice.DocNumber, c, customer.ID, connectors.ErrPermanent))
	}
	warnings := []string{t.totalDiffers(ctx, inv, created.Invoice.Id, created.Invoice.DocNumber, created.Invoice.TotalAmt, created.Invoice.TxnTaxDetail.TotalTax)}
	if doc != "" && created.Invoice.DocNumber != doc {
		// The look-up before the create finds a deal's invoice by the
		// number it was sent with: one QuickBooks numbered otherwise is
		// found by no later run of the deal (a new won delivery, `runs
		// retry` once Intuit has forgotten the requestid), which would
		// make a second.
		w := fmt.Sprintf("QuickBooks numbered invoice %s %q, not %q as sent (the invoice's reference): a later run of this deal cannot find it by its number and would make a second invoice; "+
			"turn on custom transaction numbers (Account and settings > Sales) so that QuickBooks keeps the numbers dealsync sends", created.Invoice.Id, created.Invoice.DocNumber, doc)
		connectors.StepLogger(ctx, t.log).Warn("quickbooks: "+w, "realm", t.cfg.RealmID)
		warnings = append(warnings, w)
	}
	return connectors.InvoiceResult{InvoiceID: created.Invoice.Id, Number: created.Invoice.DocNumber, URL: t.link(created.Invoice.Id),
		Warning: strings.Join(slices.DeleteFunc(warnings, func(w string) bool { return w == "" }), "; ")}, nil
}

// invoicePageSize and maxInvoicePages bound the look-up of the deal's
// invoice by DocNumber: pages of the most rows QBO answers a query (1000;
// 100 without MAXRESULTS), maxInvoicePages of them at most.
const invoicePageSize, maxInvoicePages = 1000, 20

// existing looks for the deal's invoice before it is made: an invoice with
// DocNumber doc whose PrivateNote names the deal (notesDeal), billed to
// customerID, is returned as a replay. The note is what ties an invoice to
// the deal: invoices of the number without it (QBO's own 1001, 1002, …,
// another deal's, one typed by hand) are not the deal's, and the one with
// it among them is taken, not refused as ambiguous.
//
// Two or more invoices (different Ids) with the number and the deal's
// note, billed to customerID, are refused (permanent): each says it is the
// deal's invoice (a copy made in QBO, the deal billed again by hand, two
// deals of one id in two CRM accounts), and taking the first listed would
// pick one by QBO's order. A voided invoice (Voided: QBO keeps it at 0,
// its note "Voided" or starting so) is none of these: when no live one is
// the deal's, a voided one of the number billed to customerID fails the
// step for good, for a person to decide whether the deal is billed again.
// The deal's invoice billed to other customers only (a
// later run after the deal's company changed) is refused too: a second
// invoice would bill the deal twice. One billed to another customer
// beside the one billed to customerID is not counted.
//
// The invoices of the number are read page after page in the order of
// their Ids, to a page that is not full or to the page where a second
// invoice of the deal shows; maxInvoicePages full pages without the deal's
// invoice fail the step for good, rather than post one while an invoice
// not read may be the deal's.
func (t *Target) existing(ctx context.Context, inv model.Invoice, doc, customerID string) (connectors.InvoiceResult, bool, error) {
	const op = "find invoice"
	var mine []FoundInvoice // the deal's invoices billed to customerID, each Id once, in the order of their Ids
	var elsewhere *FoundInvoice
	var voided *FoundInvoice // the first voided invoice of the number billed to customerID
	for page := 0; ; page++ {
		if page == maxInvoicePages {
			return connectors.InvoiceResult{}, false, fmt.Errorf("quickbooks %s: %d or more invoices have DocNumber %s, as many as dealsync reads (%d of them with the deal's note): "+
				"it cannot tell that no invoice of the deal is among the others; map invoice.reference to a value no other invoice has (e.g. \"DS-\" + deal.id), then retry the run: %w",
				op, maxInvoicePages*invoicePageSize, doc, len(mine), connectors.ErrPermanent)
		}
		qr, err := t.query(ctx, op, fmt.Sprintf("select Id, DocNumber, CustomerRef, PrivateNote, TotalAmt, TxnTaxDetail from Invoice where DocNumber = %s ORDERBY Id STARTPOSITION %d MAXRESULTS %d",
			quote(doc), page*invoicePageSize+1, invoicePageSize))
		if err != nil {
			return connectors.InvoiceResult{}, false, err
		}
		found := qr.QueryResponse.Invoice
		for i, got := range found {
			if got.DocNumber != doc || got.Id == "" {
				continue
			}
			if isVoided(got) {
				// Left aside, but remembered: one billed to the customer
				// may be the deal's invoice, its note kept or not.
				if voided == nil && got.CustomerRef.Value == customerID {
					voided = &found[i]
				}
				continue
			}
			if !notesDeal(got.PrivateNote, inv) {
				continue
			}
			if got.CustomerRef.Value != customerID {
				if elsewhere == nil {
					elsewhere = &found[i]
				}
				continue
			}
			if !slices.ContainsFunc(mine, func(m FoundInvoice) bool { return m.Id == got.Id }) {
				mine = append(mine, got)
			}
		}
		full := len(found) >= invoicePageSize
		if len(mine) > 1 {
			// Reading on would only add to the count.
			return connectors.InvoiceResult{}, false, severalInvoices(mine, doc, customerID, inv, full)
		}
		if !full {
			break
		}
	}
	if len(mine) == 1 {
		got := mine[0]
		return connectors.InvoiceResult{InvoiceID: got.Id, Number: got.DocNumber, URL: t.link(got.Id), Replayed: true,
			Warning: t.totalDiffers(ctx, inv, got.Id, got.DocNumber, got.TotalAmt, got.TxnTaxDetail.TotalTax)}, true, nil
	}
	if voided != nil {
		// The deal's invoice, voided in QBO (its note kept, or replaced
		// by "Voided"), or another invoice of the number and customer
		// voided: whether the deal is to be billed again is a person's
		// call (a void may cancel the sale), and a second invoice of the
		// number would meet QBO's duplicate check anyway.
		whose := "which may be the deal's invoice"
		if notesDeal(voided.PrivateNote, inv) {
			whose = fmt.Sprintf("the deal's invoice (its note has %q)", privateNote(inv))
		}
		return connectors.InvoiceResult{}, false, fmt.Errorf("quickbooks %s: invoice %s with DocNumber %s, billed to customer %s, %s, was voided in QuickBooks (its private note starts with \"Voided\" and its total is 0); "+
			"QuickBooks keeps a voided invoice's number, so a new invoice of the deal cannot have it, and a retry of the run would be answered with the voided invoice (QuickBooks answers the step's requestid with its first answer for as long as Intuit keeps it): if the deal is still to be billed, bill it by hand in QuickBooks; if the void cancelled the sale, leave it so: %w",
			op, voided.Id, voided.DocNumber, customerID, whose, connectors.ErrPermanent)
	}
	if elsewhere != nil {
		// This deal's invoice (its DocNumber and dealsync's note), billed
		// to another customer only: a later run of the deal whose company
		// changed. A second invoice would bill the deal twice.
		return connectors.InvoiceResult{}, false, fmt.Errorf("quickbooks create invoice: invoice %s (DocNumber %s) already invoices this deal, billed to customer %s, not %s; bill it to the right customer (or delete it) in QuickBooks, then retry the run: %w",
			elsewhere.Id, elsewhere.DocNumber, elsewhere.CustomerRef.Value, customerID, connectors.ErrPermanent)
	}
	return connectors.InvoiceResult{}, false, nil
}

// isVoided reports whether QBO voided the invoice: QBO keeps a voided
// invoice with its number, its amounts zeroed and "Voided" in its private
// note (in place of the note, or before it). A total that does not read
// as a number is not zero.
func isVoided(got FoundInvoice) bool {
	if !strings.HasPrefix(strings.TrimSpace(got.PrivateNote), "Voided") {
		return false
	}
	total, err := decimal.NewFromString(got.TotalAmt.String())
	return err == nil && total.IsZero()
}

// maxNamed is how many invoices an error names; the rest are counted.
const maxNamed = 5

// severalInvoices is the permanent error for found, two or more invoices
// with DocNumber doc and the note of inv's deal billed to customerID: it
// names the number and the first maxNamed Ids, and says what the operator
// can do in QuickBooks. more says that pages were left unread, which may
// hold others.
func severalInvoices(found []FoundInvoice, doc, customerID string, inv model.Invoice, more bool) error {
	ids := make([]string, 0, len(found))
	for _, got := range found {
		ids = append(ids, got.Id)
	}
	list := wording.SomeOf(ids, maxNamed)
	many := fmt.Sprint(len(found))
	if more {
		many = "at least " + many
	}
	return fmt.Errorf("quickbooks find invoice: %s invoices with DocNumber %s billed to customer %s have the deal's note %q in their PrivateNote (Ids %s); "+
		"dealsync does not guess which is the deal's invoice: in QuickBooks, delete those that are not the deal's, or take %q out of their private note or change their number "+
		"(or void them: dealsync leaves voided invoices aside), or, if they are other deals' invoices, make the mapping's invoice.reference unique per deal, then retry the run: %w",
		many, doc, customerID, privateNote(inv), list, privateNote(inv), connectors.ErrPermanent)
}

// totalDiffers compares QBO's TotalAmt (and TotalAmt less its tax) of an
// invoice with inv (connectors.TotalDiffers). QBO may compute a tax rate's
// tax on the lines' sum rather than per line: a minor unit per taxed line
// is not a difference.
func (t *Target) totalDiffers(ctx context.Context, inv model.Invoice, id, doc string, totalAmt, totalTax json.Number) string {
	r := connectors.Reported{Total: totalAmt}
	if total, err := decimal.NewFromString(totalAmt.String()); err == nil {
		tax, _ := decimal.NewFromString(totalTax.String()) // none: 0
		r.Subtotal = json.Number(total.Sub(tax).String())
	}
	for _, l := range inv.Lines {
		if !l.TaxRate.IsZero() {
			r.Slack = r.Slack.Add(decimal.New(1, -inv.Currency.MinorUnits()))
		}
	}
	return connectors.TotalDiffers("QuickBooks", id, doc, inv, r,
		"QuickBooks computed its own tax (by each line's tax code, or its automated sales tax)", connectors.StepLogger(ctx, t.log))
}

func (t *Target) link(id string) string {
	host := "https://app.qbo.intuit.com"
	if strings.Contains(t.cfg.BaseURL, "sandbox") {
		host = "https://app.sandbox.qbo.intuit.com"
	}
	return host + "/app/invoice?txnId=" + url.QueryEscape(id)
}

// currencyOptions are the invoice options for an invoice in cur. With
// multi_currency on, CurrencyRef is sent and QBO checks it against the
// customer's currency. Otherwise the company's currency preferences are
// read (once per process): a company with multicurrency on gets CurrencyRef
// all the same, and a company without it refuses, before anything is sent,
// an invoice in another currency than its home currency, which QBO would
// otherwise book in the home currency with the deal's figures.
func (t *Target) currencyOptions(ctx context.Context, cur model.Currency) (Options, error) {
	o := t.opts
	if o.SetCurrency || cur == "" {
		return o, nil
	}
	p, err := t.preferences(ctx)
	if err != nil {
		return o, err
	}
	if p.CurrencyPrefs.MultiCurrencyEnabled {
		o.SetCurrency = true
		return o, nil
	}
	if home := p.CurrencyPrefs.HomeCurrency.Value; home != "" && !strings.EqualFold(home, string(cur)) {
		return o, fmt.Errorf("quickbooks create invoice: the invoice is in %s, but QuickBooks company %s books in %s and has multicurrency off: "+
			"map the deal's amounts to %s, or turn multicurrency on in QuickBooks (dealsync reads the setting again after %s) and retry the run: %w",
			cur, t.cfg.RealmID, home, home, wording.Duration(prefsOffFor), connectors.ErrPermanent)
	}
	return o, nil
}

// multiCurrency says whether invoices and new customers carry a currency:
// multi_currency, or else the company's preferences.
func (t *Target) multiCurrency(ctx context.Context) (bool, error) {
	if t.opts.SetCurrency {
		return true, nil
	}
	p, err := t.preferences(ctx)
	return p.CurrencyPrefs.MultiCurrencyEnabled, err
}

// preferences reads the company's Preferences, one read at a time (a
// caller whose context ends while it waits gives up), and keeps them: for
// good once multicurrency is on, for prefsOffFor while it is off. A failed
// read is tried again by the next caller.
func (t *Target) preferences(ctx context.Context) (Preferences, error) {
	select {
	case t.prefsSem <- struct{}{}:
	case <-ctx.Done():
		return Preferences{}, ctx.Err()
	}
	defer func() { <-t.prefsSem }()
	if p := t.prefs; p != nil && (p.CurrencyPrefs.MultiCurrencyEnabled || time.Since(t.prefsAt) < prefsOffFor) {
		return *p, nil
	}
	const op = "read preferences"
	v := url.Values{"minorversion": {fmt.Sprint(t.cfg.MinorVersion)}}
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/preferences?" + v.Encode()})
	if err != nil {
		return Preferences{}, err
	}
	var answer struct{ Preferences Preferences }
	if err := resp.Decode("quickbooks", op, &answer); err != nil {
		return Preferences{}, err
	}
	t.prefs, t.prefsAt = &answer.Preferences, time.Now()
	if c := answer.Preferences.SalesFormsPrefs.CustomTxnNumbers; c != nil && !*c {
		t.numberingOnce.Do(func() {
			connectors.StepLogger(ctx, t.log).Warn("quickbooks: the company has custom transaction numbers off (Account and settings > Sales > Custom transaction numbers), "+
				"and Intuit advises not to send DocNumber then; dealsync sends each invoice's reference as its DocNumber and finds a deal's invoice by it, "+
				"so QuickBooks' own numbers may meet those references (a duplicate number is refused, naming it): turn custom transaction numbers on, "+
				"or map invoice.reference to values QuickBooks' numbers cannot take (e.g. \"DS-\" + deal.id)", "realm", t.cfg.RealmID)
		})
	}
	return answer.Preferences, nil
}

// PlanInvoice returns the POST CreateInvoice would send (token masked).
// It reads nothing from QBO: with multi_currency off, the plan has no
// CurrencyRef even for a company whose preferences would add one.
func (t *Target) PlanInvoice(inv model.Invoice, customer connectors.CustomerRef, key string) (connectors.Request, error) {
	call, err := t.invoiceCall(inv, customer, key, t.opts)
	if err != nil {
		return connectors.Request{}, err
	}
	req, err := t.client.Plan(call)
	if err == nil && !t.opts.SetCurrency && inv.Currency != "" {
		// currencyOptions, at run time, from the company's preferences.
		req.Note = fmt.Sprintf("without multi_currency in the target, a run reads the company's preferences first: with multicurrency on it adds "+
			"\"CurrencyRef\":{\"value\":%q} to this body, and with it off it refuses an invoice in another currency than the company's before sending", string(inv.Currency))
	}
	return req, err
}

func (t *Target) invoiceCall(inv model.Invoice, customer connectors.CustomerRef, key string, opts Options) (erpkit.Call, error) {
	q, err := NewInvoice(inv, customer.ID, opts)
	if err != nil {
		return erpkit.Call{}, fmt.Errorf("quickbooks create invoice: %v: %w", err, connectors.ErrPermanent)
	}
	body, err := json.Marshal(q)
	if err != nil {
		return erpkit.Call{}, err
	}
	v := url.Values{"minorversion": {fmt.Sprint(t.cfg.MinorVersion)}, "requestid": {RequestID(key)}}
	return erpkit.Call{Op: "create invoice", Method: http.MethodPost, URL: t.base + "/invoice?" + v.Encode(), Body: body}, nil
}

// errorDetail reads QBO's Fault: Message, Detail and the element named.
func errorDetail(status int, h http.Header, body []byte) (msg, field string) {
	var f Fault
	if json.Unmarshal(body, &f) != nil || len(f.Fault.Error) == 0 {
		return "", ""
	}
	var msgs []string
	for _, e := range f.Fault.Error {
		m := e.Message
		if e.Detail != "" && e.Detail != e.Message {
			m += ": " + e.Detail
		}
		if e.Code != "" {
			m += " (code " + e.Code + ")"
		}
		msgs = append(msgs, m)
		if field == "" {
			field = e.Element
		}
	}
	msg = strings.Join(msgs, "; ")
	if f.Fault.Type != "" {
		msg = f.Fault.Type + ": " + msg
	}
	msg = erpkit.Truncate(msg)
	for _, e := range f.Fault.Error {
		if itemNotFound.MatchString(e.Detail) || strings.Contains(e.Element, "ItemRef") && strings.Contains(strings.ToLower(e.Message), "invalid reference") {
			msg += "; " + itemRefAdvice
			break
		}
	}
	return msg, field
}

// itemNotFound is QBO's Detail for a line's ItemRef that names no item
// the company has, or one deleted: "Invalid Reference Id : Item elements
// id 10 is invalid", "… : Item assigned to this transaction has been
// deleted" (the wording varies; the Message is "Invalid Reference Id").
var itemNotFound = regexp.MustCompile(`(?i)invalid reference id\s*:\s*item\b`)

// itemRefAdvice says where a refused ItemRef came from: QBO's faults name
// the item's Id, not the invoice line or the mapping.
const itemRefAdvice = "an invoice line's ItemRef is its item_code, which must be the Id of an active item of the company " +
	"(in QuickBooks: Sales, Products and services; the Id is in the address of the item's page): check the mapping's lines.item_code " +
	"(a lookup table from the CRM's SKUs to Item Ids) and, for lines without one, the target's default_item_id"

// namesElementNotFound is QBO's Detail for a reference to a name (a
// customer, on an invoice) that does not exist: "Invalid Reference Id :
// Names element id 58 not found".
var namesElementNotFound = regexp.MustCompile(`(?i)names element id (\d+) not found`)

// staleCustomer says whether err is QBO refusing an invoice because its
// customer, customerID, is gone: deleted (which QBO does by making it
// inactive) or merged into another ("Customer assigned to this
// transaction has been deleted", or "Names element id <customerID> not
// found"). Neither QBO's generic "Something you're trying to use has been
// made inactive" (an inactive item, account or tax code gets it too) nor
// any other fault on CustomerRef (a currency that is not the customer's)
// is taken.
func staleCustomer(err error, customerID string) bool {
	var api *connectors.APIError
	if !errors.As(err, &api) || api.StatusCode != http.StatusBadRequest {
		return false
	}
	msg := strings.ToLower(api.Message)
	if strings.Contains(msg, "customer assigned to this transaction has been deleted") {
		return true
	}
	m := namesElementNotFound.FindStringSubmatch(api.Message)
	return m != nil && m[1] == customerID
}

// madeInactive says whether err is QBO's generic refusal of a reference
// to an inactive name ("Something you're trying to use has been made
// inactive"): the customer's, an item's, an account's, which a read of
// the customer tells apart (inactiveCustomer).
func madeInactive(err error) bool {
	var api *connectors.APIError
	return errors.As(err, &api) && api.StatusCode == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(api.Message), "has been made inactive")
}

// inactiveCustomer reads the customer with Id id (GET /customer/{id}, which
// answers an inactive one too) and says whether it is inactive. A read that
// fails says no: the link stays, and the run fails with QBO's refusal.
func (t *Target) inactiveCustomer(ctx context.Context, id string) bool {
	const op = "read customer"
	v := url.Values{"minorversion": {fmt.Sprint(t.cfg.MinorVersion)}}
	resp, err := t.client.Do(ctx, erpkit.Call{Op: op, Method: http.MethodGet, URL: t.base + "/customer/" + url.PathEscape(id) + "?" + v.Encode()})
	if err != nil {
		return false
	}
	var got struct{ Customer Customer }
	if err := resp.Decode("quickbooks", op, &got); err != nil {
		return false
	}
	return got.Customer.Id == id && got.Customer.Active != nil && !*got.Customer.Active
}

// forgetStaleCustomer is err, the refusal of an invoice for customer, and
// when QBO refused it because the customer is gone (staleCustomer, or its
// generic "made inactive" answer with the customer read as inactive) and
// the company's link_file entry names it, the entry is forgotten and the
// error says so: this run's customer is fixed, so it fails, and a retry
// matches the company afresh by name (or creates it). Before, every
// invoice of the company was refused until someone edited the link file.
func (t *Target) forgetStaleCustomer(ctx context.Context, inv model.Invoice, customer connectors.CustomerRef, err error) error {
	if inv.Customer.ExternalID == "" {
		return err
	}
	if !staleCustomer(err, customer.ID) && !(madeInactive(err) && t.inactiveCustomer(ctx, customer.ID)) {
		return err
	}
	key := t.linkKey(inv.Customer.ExternalID)
	id, ok, lerr := t.links.Get(ctx, key)
	if lerr != nil || !ok || id != customer.ID {
		return err
	}
	if derr := t.links.Delete(ctx, key); derr != nil {
		return errors.Join(err, derr)
	}
	connectors.StepLogger(ctx, t.log).Warn("quickbooks: the customer linked for this company is deleted or merged away; its link_file entry is forgotten",
		"realm", t.cfg.RealmID, "company", inv.Customer.ExternalID, "customer", customer.ID)
	return fmt.Errorf("%w; customer %s, which link_file gave for company %s, is deleted or merged into another in QuickBooks: "+
		"its link is forgotten, so retry the run (dealsync runs retry) to bill the company's customer found afresh by name (or a new one), "+
		"or restore the customer first (Customers, filter Inactive) to keep billing it",
		err, customer.ID, inv.Customer.ExternalID)
}

// retryAfter is the Retry-After header when QBO sends one. QBO's
// throttling (per company and minute) usually answers 429 without it; such
// a 429 is retried with the policy's backoff.
func retryAfter(h http.Header) time.Duration {
	if d := connectors.ParseRetryAfter(h, time.Now()); d > 0 {
		return d
	}
	return 0
}
