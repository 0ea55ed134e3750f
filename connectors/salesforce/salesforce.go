// Package salesforce is the `salesforce` source: Outbound Messages (SOAP
// `notifications`, up to 100 Opportunity notifications each), deals read
// through the REST API (SOQL) and the invoice written back by a PATCH of
// the sObject.
//
// Outbound messages are not signed. Verify checks the optional endpoint
// token (a `token` query parameter of the endpoint URL configured in
// Salesforce, compared in constant time; during a rotation the previous
// token as well); Parse checks OrganizationId against the configured orgs
// (an unknown org is connectors.ErrUnknownAccount, 403): a 15-character id
// is turned into its 18-character form, which is compared ignoring case.
// Put mutual TLS or an IP allowlist in front as well where you can.
//
// Each Notification with an sf:Opportunity gives one thin DealEvent:
// EventID is the notification Id, Account the org id as configured (the key
// under accounts, which the config loader lower-cases; it is also the key
// to use under the connection's account_targets),
// Deal.ID the Opportunity Id, Deal.Name its Name and Deal.Stage its
// StageName, reported as StageWon ("Closed Won") when IsWon is true or the
// stage is in won_stages (so that one trigger `won_stages: ["Closed Won"]`
// serves orgs with their own won stage labels). PreviousStage is unknown
// (""). Notifications of other sObject types are dropped without error.
// All selected fields are kept in Deal.Raw (as JSON strings; nil fields as
// null).
//
// The source is an Acknowledger: success is answered with the SOAP
// notificationsResponse <Ack>true</Ack> (HTTP 200, whatever status the
// intake chose), and anything else with a SOAP fault, so Salesforce retries.
package salesforce

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/secret"
)

// Defaults.
const (
	DefaultAPIVersion = "v62.0"
	DefaultAudience   = "https://login.salesforce.com"
	// StageWon is what a won stage is reported as.
	StageWon = "Closed Won"
	// StageDeleted is the stage FetchDeal reports for a deleted
	// Opportunity (in the org's Recycle Bin), as the pipedrive source
	// reports a deleted deal: not won, whatever its StageName was.
	StageDeleted = "deleted"
	// MaxBatch is the most notifications of one message.
	MaxBatch = 100
)

// Config is a salesforce source's `source:` block.
type Config struct {
	// EndpointToken must be given as ?token=... in the endpoint URL of the
	// outbound message: Salesforce does not sign outbound messages, so this
	// (with the org id check) is what tells a real delivery from a forged
	// one. Required unless AllowUnauthenticated is set. The token is put
	// in the URL as is, so one with a character that does not read back
	// from there as written is refused (+ reads as a space, % starts an
	// escape, & and ; end the parameter, # the URL; white space and control
	// characters): see endpointToken. Others, such as / and = of base64,
	// are accepted. `openssl rand -hex 32` makes one.
	EndpointToken secret.Secret `mapstructure:"endpoint_token" validate:"required_with=PreviousEndpointToken"`
	// PreviousEndpointToken is the token being rotated out: deliveries
	// with it are accepted as well, so that every intake replica can be
	// given the new EndpointToken before the outbound message's endpoint
	// URL carries it. It requires EndpointToken, and is removed once
	// Salesforce sends the new one.
	PreviousEndpointToken secret.Secret `mapstructure:"previous_endpoint_token"`
	// AllowUnauthenticated accepts deliveries without an endpoint token, for
	// deployments where a proxy in front of dealsync authenticates
	// Salesforce (mutual TLS with Salesforce's client certificate, or an IP
	// allowlist). Default false.
	AllowUnauthenticated bool `mapstructure:"allow_unauthenticated"`
	// APIVersion of the REST API. Default v62.0.
	APIVersion string `mapstructure:"api_version"`
	// WonStages are StageName values that mean won (besides IsWon true and
	// "Closed Won"), for every org.
	WonStages []string        `mapstructure:"won_stages" validate:"dive,required"`
	Fetch     FetchConfig     `mapstructure:"fetch"`
	WriteBack WriteBackConfig `mapstructure:"write_back"`
	// Accounts maps an org id, best in its 18-character form, to its API
	// access. A 15-character key is accepted, but the config loader
	// lower-cases keys, and the letter case is part of a 15-character id.
	Accounts map[string]Account `mapstructure:"accounts" validate:"required,min=1,dive"`
}

var _ connectors.ConfiguredAccounts = Config{}

// CRMAccounts implements connectors.ConfiguredAccounts: the org ids, each
// keyed by itself in lower case (the config loader lower-cases keys);
// SameCRMAccount says which of them are one org.
func (c Config) CRMAccounts() (string, map[string]string) {
	keys := make(map[string]string, len(c.Accounts))
	for id := range c.Accounts {
		keys[id] = strings.ToLower(strings.TrimSpace(id))
	}
	return "Salesforce org", keys
}

var _ connectors.AccountMatcher = Config{}

// SameCRMAccount implements connectors.AccountMatcher as the source finds
// an org (account): two 18-character ids are one org when they are equal
// (in lower case, as the config loader writes them: the last three
// characters say the case of the first 15, so two orgs whose ids differ
// in case only differ there too); a 15-character id (its case lost to the
// config loader) is the org of every 18-character id that begins with it,
// and of the same 15 characters.
func (Config) SameCRMAccount(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSpace(a)), strings.ToLower(strings.TrimSpace(b))
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(a) == 15 && len(b) == 18 {
		return b[:15] == a
	}
	return a == b
}

// Account is one Salesforce org. Give ClientSecret (client credentials
// flow) or JWT (JWT bearer flow).
type Account struct {
	// InstanceURL is the org's My Domain URL, https://acme.my.salesforce.com.
	InstanceURL string `mapstructure:"instance_url" validate:"required,url"`
	// TokenURL defaults to InstanceURL + /services/oauth2/token.
	TokenURL string `mapstructure:"token_url" validate:"omitempty,url"`
	// ClientID is the consumer key of the org's External Client App (or
	// connected app).
	ClientID     string        `mapstructure:"client_id" validate:"required"`
	ClientSecret secret.Secret `mapstructure:"client_secret"`
	JWT          *JWT          `mapstructure:"jwt"`
	// WonStages adds this org's won StageName values.
	WonStages []string `mapstructure:"won_stages" validate:"dive,required"`
	// DefaultCurrency is this org's currency for an Opportunity that has
	// none (a single-currency org), instead of fetch.default_currency: two
	// single-currency orgs of different currencies share one connection.
	DefaultCurrency string `mapstructure:"default_currency"`
}

// JWT is the OAuth 2.0 JWT bearer flow.
type JWT struct {
	// Username of the integration user the token is issued for.
	Username string `mapstructure:"username" validate:"required"`
	// PrivateKey is the PEM RSA key whose certificate is on the app.
	PrivateKey secret.Secret `mapstructure:"private_key" validate:"required"`
	// Audience: https://login.salesforce.com (default),
	// https://test.salesforce.com, or the org's My Domain URL (reported
	// to be what an External Client App takes).
	Audience string `mapstructure:"audience" validate:"omitempty,url"`
}

// FetchConfig names optional fields read by FetchDeal. Field names are
// checked to be API names (letters, digits, _ and . for relationships).
type FetchConfig struct {
	// CurrencyField of the Opportunity (CurrencyIsoCode in multi-currency
	// orgs). Empty: DefaultCurrency is used.
	CurrencyField   string `mapstructure:"currency_field"`
	DefaultCurrency string `mapstructure:"default_currency"`
	// AccountEmailField and AccountTaxIDField of the Account (custom fields).
	AccountEmailField string `mapstructure:"account_email_field"`
	AccountTaxIDField string `mapstructure:"account_tax_id_field"`
	// ExtraFields are more Opportunity fields (API names: RecordTypeId,
	// PO_Number__c) read into deal.raw by the fetch and by `deals sync`'s
	// listing, for the mapping and the trigger: a run reads the deal
	// again, and its raw holds only the fields read.
	ExtraFields []string `mapstructure:"extra_fields"`
}

// WriteBackConfig names the Opportunity fields WriteBack sets; empty: not written.
type WriteBackConfig struct {
	InvoiceIDField     string `mapstructure:"invoice_id_field"`
	InvoiceNumberField string `mapstructure:"invoice_number_field"`
	InvoiceURLField    string `mapstructure:"invoice_url_field"`
	StatusField        string `mapstructure:"status_field"`
	// StatusValue is written to StatusField. Default "synced".
	StatusValue string `mapstructure:"status_value"`
}

// DefaultConfig is what NewConfig returns before the options are decoded.
func DefaultConfig() Config {
	return Config{
		APIVersion: DefaultAPIVersion,
		WriteBack: WriteBackConfig{
			InvoiceIDField:     "ERP_Invoice_Id__c",
			InvoiceNumberField: "ERP_Invoice_Number__c",
			InvoiceURLField:    "ERP_Invoice_URL__c",
			StatusField:        "ERP_Sync_Status__c",
			StatusValue:        "synced",
		},
	}
}

func init() {
	connectors.RegisterSourceType("salesforce", "Salesforce Outbound Messages (SOAP notifications of Opportunities, up to 100), org id checked, deals read through REST SOQL, invoice written back by an sObject PATCH", DefaultConfig, New)
	connectors.RegisterWebhookDeal("salesforce", webhookDeal)
}

// Source is a built salesforce source: a connectors.Source, Acknowledger,
// MediaTyper, DealFetcher and WriteBacker, safe for concurrent use.
type Source struct {
	// keys name the source's settings in advice
	// (connections.<name>.source.accounts.<org>.client_id).
	keys       connectors.Keys
	token      []byte
	apiVersion string
	wonStages  map[string]bool
	accounts   map[string]*account // by lower-cased org id
	client     *http.Client
	fetch      FetchConfig
	write      WriteBackConfig
	log        *slog.Logger
	// noIsWon holds the org and StageName pairs of messages without IsWon
	// already warned of (once each per process).
	noIsWon sync.Map
	// previousToken is the previous_endpoint_token while it is rotated
	// (nil otherwise), accepted like token.
	previousToken []byte
}

type account struct {
	id          string
	instanceURL string
	wonStages   map[string]bool
	// defaultCurrency is the org's default_currency ("": the source's).
	defaultCurrency string
	token           *crmkit.Resettable
	// singleCurrency: the org refused CurrencyIsoCode (it is not a
	// multi-currency org); FetchDeal no longer asks for it.
	singleCurrency atomic.Bool
}

var (
	_ connectors.Source          = (*Source)(nil)
	_ connectors.AccountLister   = (*Source)(nil)
	_ connectors.Acknowledger    = (*Source)(nil)
	_ connectors.MediaTyper      = (*Source)(nil)
	_ connectors.DealFetcher     = (*Source)(nil)
	_ connectors.WriteBacker     = (*Source)(nil)
	_ connectors.WriteBackSwitch = (*Source)(nil)
)

var (
	// orgIDKey is a configured org id, 18 characters (or 15: see account).
	orgIDKey       = regexp.MustCompile(`^(?i)00D[a-z0-9]{12}([a-z0-9]{3})?$`)
	recordID       = regexp.MustCompile(`^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$`)
	apiName        = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$`)
	apiVersionForm = regexp.MustCompile(`^v\d+\.\d$`)
	// fieldName is a field of the object itself (no relationship path).
	fieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	// apiPathInInstanceURL matches, in any case, a path of Salesforce's
	// APIs in an instance_url (https://acme.my.salesforce.com/services/data/v62.0,
	// as the REST API's guide writes the base of its resources): the
	// source adds /services/data/vXX.X/… and /services/oauth2/token to
	// instance_url, so such an instance_url would double them.
	apiPathInInstanceURL = regexp.MustCompile(`(?i)/services/(data|oauth2|apexrest|soap|async)(/|$)`)
)

// New checks cfg, resolves the secrets once and returns a Source.
func New(cfg Config, env connectors.Env) (*Source, error) {
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if !apiVersionForm.MatchString(cfg.APIVersion) {
		return nil, fmt.Errorf("salesforce source: api_version %q: want vNN.N", cfg.APIVersion)
	}
	if cfg.WriteBack.StatusValue == "" {
		cfg.WriteBack.StatusValue = "synced"
	}
	for key, f := range map[string]string{
		"fetch.currency_field": cfg.Fetch.CurrencyField, "fetch.account_email_field": cfg.Fetch.AccountEmailField,
		"fetch.account_tax_id_field": cfg.Fetch.AccountTaxIDField,
	} {
		if f != "" && !apiName.MatchString(f) {
			return nil, fmt.Errorf("salesforce source: %s %q is not a field API name", key, f)
		}
	}
	// The write-back is a PATCH of the Opportunity: a field of a related
	// record (Account.ERP_Invoice__c) would be refused (400), and only
	// after the invoice is made.
	for _, wb := range []struct{ key, f string }{
		{"invoice_id_field", cfg.WriteBack.InvoiceIDField}, {"invoice_number_field", cfg.WriteBack.InvoiceNumberField},
		{"invoice_url_field", cfg.WriteBack.InvoiceURLField}, {"status_field", cfg.WriteBack.StatusField},
	} {
		switch {
		case wb.f == "" || fieldName.MatchString(wb.f):
		case apiName.MatchString(wb.f):
			return nil, fmt.Errorf("salesforce source: write_back.%s %q names a field of a related record: the write-back "+
				"updates the Opportunity itself (PATCH sobjects/Opportunity/{id}), so give a field of the Opportunity, "+
				"without a dot (e.g. ERP_Invoice_Id__c)", wb.key, wb.f)
		default:
			return nil, fmt.Errorf("salesforce source: write_back.%s %q is not a field API name", wb.key, wb.f)
		}
	}
	for i, f := range cfg.Fetch.ExtraFields {
		if !apiName.MatchString(f) {
			return nil, fmt.Errorf("salesforce source: fetch.extra_fields[%d] %q is not a field API name", i, f)
		}
	}
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("salesforce source: accounts: at least one org is required")
	}
	client, logger := env.Client(), env.Log()
	s := &Source{
		keys:       env.SourceKeys(),
		apiVersion: cfg.APIVersion,
		wonStages:  crmkit.StageSetFold(cfg.WonStages, []string{StageWon}),
		accounts:   map[string]*account{},
		client:     client,
		fetch:      cfg.Fetch,
		write:      cfg.WriteBack,
		log:        logger,
	}
	if cfg.EndpointToken.IsZero() && !cfg.PreviousEndpointToken.IsZero() {
		return nil, errors.New("salesforce source: previous_endpoint_token is set without endpoint_token " +
			"(it is the token being rotated out; the new one goes to endpoint_token)")
	}
	if cfg.EndpointToken.IsZero() && !cfg.AllowUnauthenticated {
		return nil, errors.New("salesforce source: endpoint_token is required (Salesforce does not sign outbound messages); " +
			"set allow_unauthenticated: true only when a proxy authenticates Salesforce (mutual TLS, IP allowlist)")
	}
	var err error
	if s.token, err = endpointToken("endpoint_token", cfg.EndpointToken); err != nil {
		return nil, err
	}
	if s.previousToken, err = endpointToken("previous_endpoint_token", cfg.PreviousEndpointToken); err != nil {
		return nil, err
	}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, erpkit.NoRedirects(client))
	for id, a := range cfg.Accounts {
		key := "salesforce source: accounts." + id
		if !orgIDKey.MatchString(id) {
			return nil, fmt.Errorf("%s: the key must be the org id (00D..., its 18-character form; 15 characters are "+
				"accepted, but the config loader lower-cases keys and the letter case is part of a 15-character id)", key)
		}
		if !caseSafeSuffixValid(id) {
			return nil, fmt.Errorf("%s: the org id's last 3 characters are not the checksum of its first 15 (a typo, or an id of another org): "+
				"copy it from Setup, Company Information (Salesforce ID), in its 18-character form", key)
		}
		// instance_url may hold a credential (user info, a query): shown
		// without it, and url.Parse's error, which quotes the whole value,
		// not at all.
		u, err := erpkit.ParseConfiguredURL(key+".instance_url", a.InstanceURL, "https://MyDomain.my.salesforce.com")
		switch {
		case err != nil:
			return nil, err
		case u.Scheme == "" || u.Host == "":
			return nil, fmt.Errorf("%s.instance_url %q is not a URL (write it as https://MyDomain.my.salesforce.com)", key, erpkit.ShownURL(u))
		}
		if err := erpkit.APIPathError(key+".instance_url", u, apiPathInInstanceURL,
			"/services/data/"+cfg.APIVersion+"/… and /services/oauth2/token", "https://MyDomain.my.salesforce.com (the org's My Domain URL)"); err != nil {
			return nil, err
		}
		acc := &account{id: id, instanceURL: strings.TrimRight(a.InstanceURL, "/"), wonStages: crmkit.StageSetFold(a.WonStages)}
		if c := strings.TrimSpace(a.DefaultCurrency); c != "" {
			cur, err := model.ParseCurrency(c)
			if err != nil {
				return nil, fmt.Errorf("%s.default_currency: %w", key, err)
			}
			acc.defaultCurrency = string(cur)
		}
		tokenURL := a.TokenURL
		if tokenURL == "" {
			tokenURL = acc.instanceURL + "/services/oauth2/token"
		}
		if a.ClientID == "" {
			return nil, fmt.Errorf("%s.client_id is required", key)
		}
		switch {
		case !a.ClientSecret.IsZero() && a.JWT != nil:
			return nil, fmt.Errorf("%s: give client_secret or jwt, not both", key)
		case !a.ClientSecret.IsZero():
			v, err := a.ClientSecret.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.client_secret (%s): %w", key, a.ClientSecret.Describe(), err)
			}
			cc := &clientcredentials.Config{ClientID: a.ClientID, ClientSecret: v, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}
			acc.token = crmkit.NewResettable(func() oauth2.TokenSource { return cc.TokenSource(tokenCtx) })
		case a.JWT != nil:
			pem, err := a.JWT.PrivateKey.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.jwt.private_key (%s): %w", key, a.JWT.PrivateKey.Describe(), err)
			}
			aud := a.JWT.Audience
			if aud == "" {
				aud = DefaultAudience
			}
			jc := &jwt.Config{Email: a.ClientID, Subject: a.JWT.Username, PrivateKey: []byte(pem), TokenURL: tokenURL,
				Audience: aud, Expires: 3 * time.Minute}
			// Fail at start, not at the first deal, on an unusable key.
			if _, err := parseRSAKey([]byte(pem)); err != nil {
				return nil, fmt.Errorf("%s.jwt.private_key: %v", key, err)
			}
			acc.token = crmkit.NewResettable(func() oauth2.TokenSource { return jc.TokenSource(tokenCtx) })
		default:
			return nil, fmt.Errorf("%s: client_secret (client credentials) or jwt is required", key)
		}
		s.accounts[strings.ToLower(id)] = acc
	}
	return s, nil
}

// endpointToken resolves the token given at key; nil when it is not set.
// A token that would not read back from the endpoint URL's query, where it
// is put as is, is refused (+ reads as a space, % starts an escape, & and
// ; end the parameter, # the URL): it could never match. Others, such as
// / and = of base64, are kept, so tokens that work stay valid.
func endpointToken(key string, tok secret.Secret) ([]byte, error) {
	if tok.IsZero() {
		return nil, nil
	}
	// Reveal refuses a blank token: never "no token", which would accept anyone.
	v, err := tok.Reveal()
	if err != nil {
		return nil, fmt.Errorf("salesforce source: %s (%s): %w", key, tok.Describe(), err)
	}
	// The error names neither the token nor the character: it is a secret.
	if !readsBackFromAQuery(v) {
		return nil, fmt.Errorf("salesforce source: %s (%s): the token goes into the outbound message's endpoint URL "+
			"(?token=...) as is, and it has a character that does not read back from there as written (+ reads as a "+
			"space, %% starts an escape, & and ; end the parameter, # the URL, white space is not sent): it could "+
			"never match; make one with `openssl rand -hex 32`", key, tok.Describe())
	}
	return []byte(v), nil
}

// readsBackFromAQuery reports whether v, written as is after "token=" in a
// URL, reads back as v.
func readsBackFromAQuery(v string) bool {
	if strings.ContainsAny(v, "#") || strings.IndexFunc(v, unicode.IsSpace) >= 0 || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return false
	}
	q, err := url.ParseQuery("token=" + v)
	return err == nil && len(q["token"]) == 1 && q.Get("token") == v
}

// caseSafeSuffixChars are the characters of the 3-character suffix that
// makes an 18-character Salesforce id of a 15-character one.
const caseSafeSuffixChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

// caseSafeSuffixValid reports whether an 18-character id's last 3
// characters can be the checksum (caseSafeID) of its first 15: each a
// character of caseSafeSuffixChars (in either case) whose bits fall on
// letters only, and, when the first 15 are in mixed case (as Salesforce
// gives them: not a key the config loader lower-cased, nor an id written
// in capitals), exactly theirs. Ids of other lengths are valid.
func caseSafeSuffixValid(id string) bool {
	if len(id) != 18 {
		return true
	}
	if prefix := id[:15]; strings.ToLower(prefix) != prefix && strings.ToUpper(prefix) != prefix {
		full, _ := caseSafeID(id[:15])
		return strings.EqualFold(full[15:], id[15:])
	}
	for chunk := 0; chunk < 3; chunk++ {
		bits := strings.IndexByte(caseSafeSuffixChars, strings.ToUpper(id[15+chunk : 16+chunk])[0])
		if bits < 0 {
			return false
		}
		for i := 0; i < 5; i++ {
			if c := id[chunk*5+i]; bits&(1<<i) != 0 && !('a' <= c|0x20 && c|0x20 <= 'z') {
				return false
			}
		}
	}
	return true
}

// caseSafeID returns the 18-character form of a Salesforce id given in 15
// characters (case-sensitive) or 18 (returned as given); false for anything
// else. The suffix is Salesforce's documented checksum: for each 5-character
// chunk of the 15, bit i of a 5-bit number is set when character i of the
// chunk is an upper-case letter, and that number indexes
// caseSafeSuffixChars. The 18-character form thus carries the letter case
// of the 15 and can be compared ignoring case.
func caseSafeID(id string) (string, bool) {
	if !recordID.MatchString(id) {
		return "", false
	}
	if len(id) == 18 {
		return id, true
	}
	suffix := make([]byte, 0, 3)
	for chunk := 0; chunk < 15; chunk += 5 {
		bits := 0
		for i := 0; i < 5; i++ {
			if c := id[chunk+i]; 'A' <= c && c <= 'Z' {
				bits |= 1 << i
			}
		}
		suffix = append(suffix, caseSafeSuffixChars[bits])
	}
	return id + string(suffix), true
}

// account finds an org by id: 18 characters in any letter case, or 15 in
// the exact case Salesforce gives (the 15-character form is case-sensitive,
// so it is turned into the 18-character one first). Configuration keys are
// org ids lower-cased: an 18-character key matches exactly; a
// 15-character key (its case lost to the config loader) matches the first
// 15 characters of an id, ignoring case, so two orgs whose ids differ in
// case only would both match it. Ids of any other length are unknown.
func (s *Source) account(id string) (*account, error) {
	id = strings.TrimSpace(id)
	if full, ok := caseSafeID(id); ok {
		full = strings.ToLower(full)
		if a, ok := s.accounts[full]; ok {
			return a, nil
		}
		if a, ok := s.accounts[full[:15]]; ok {
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w: Salesforce org %s: add it under %s, in its 18-character form (a sandbox refreshed from production has a new org id)", connectors.ErrUnknownAccount, id, s.keys.Key("accounts"))
}

// AccountKey implements connectors.AccountKeyer: the configured key of an
// org id given in 18 characters in any letter case, or in 15 in its exact
// case.
func (s *Source) AccountKey(id string) (string, bool) {
	a, err := s.account(id)
	if err != nil {
		return "", false
	}
	return a.id, true
}

// Accounts lists the configured org ids, as the events name them (the
// config's keys), unsorted.
func (s *Source) Accounts() []string {
	// The keys as the events carry them (acc.id, the config's spelling):
	// `deals sync` must name an org as its webhooks' runs do.
	out := make([]string, 0, len(s.accounts))
	for _, acc := range s.accounts {
		out = append(out, acc.id)
	}
	return out
}

// MediaTypes: Outbound Messages are SOAP 1.1.
func (s *Source) MediaTypes() []string { return []string{"text/xml"} }

// Verify checks the endpoint token when one is configured, and accepts the
// previous one as well while it is rotated. Errors wrap
// connectors.ErrUnauthorized.
func (s *Source) Verify(w *connectors.Webhook) error {
	if w == nil {
		return fmt.Errorf("%w: salesforce: no delivery", connectors.ErrUnauthorized)
	}
	w.PreviousSecret = false
	if len(s.token) == 0 {
		return nil
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		return fmt.Errorf("%w: salesforce: unreadable URL", connectors.ErrUnauthorized)
	}
	got := u.Query().Get("token")
	if got == "" {
		return fmt.Errorf("%w: salesforce: missing token query parameter in the endpoint URL", connectors.ErrUnauthorized)
	}
	// Both tokens are compared, whatever the first answers, and as SHA-256
	// digests, of one length: the time taken tells neither which one
	// matched nor a token's length.
	digest := sha256.Sum256([]byte(got))
	same := func(token []byte) int {
		want := sha256.Sum256(token)
		return subtle.ConstantTimeCompare(digest[:], want[:])
	}
	current := same(s.token)
	previous := 0
	if len(s.previousToken) > 0 {
		previous = same(s.previousToken)
	}
	if current|previous != 1 {
		// What to check, in the log's line only (connectors.Terse).
		return connectors.Advised(fmt.Errorf("%w: salesforce: wrong endpoint token", connectors.ErrUnauthorized),
			"check that the outbound message's endpoint URL carries ?token= with the value of "+s.keys.Key("endpoint_token"))
	}
	w.PreviousSecret = current != 1
	return nil
}
