// Package hubspot is the `hubspot` source: HubSpot app webhooks (signature
// v3, optionally v1/v2), deals fetched through HubSpot's date-versioned
// CRM APIs (version APIVersion, paths.go) and the invoice written back onto
// the deal as properties.
//
// A delivery is a JSON array of up to MaxBatch events:
//
//	[{"eventId":1718190532,"subscriptionId":2881778,"portalId":62515,"appId":54321,
//	  "occurredAt":1716900000000,"subscriptionType":"deal.propertyChange","attemptNumber":0,
//	  "objectId":1234567890,"propertyName":"dealstage","propertyValue":"closedwon",
//	  "changeSource":"CRM_UI","sourceId":"userId:1234567"}]
//
// Events are thin (DealEvent.Thin): Parse fills EventID (eventId), Account
// (portalId, decimal), OccurredAt, Deal.ID (objectId) and, for a change of
// dealstage, Deal.Stage. The rest is read by FetchDeal.
//
// Which events become DealEvents:
//   - deal.* events and object.* events with objectTypeId "0-3" (deals) are
//     returned, one DealEvent each. Only a propertyChange of dealstage sets
//     Deal.Stage; the others (deal.creation, a change of amount, ...) are
//     returned with an empty Stage, which the stage trigger skips ("the
//     event names no stage"), so that they show up in the intake's reply
//     and a running deal can be told about them.
//   - A deal restored from the recycling bin (deal.restore) is returned as
//     possibly won (Stage StageWon, Raw "restored": true): its run reads
//     the deal and invoices it only if it is won. A merge (deal.merge) is
//     returned with an empty Stage, its deals in Raw ("merged_into",
//     "merged_ids"), and logged: it starts no run (see merged).
//   - Events about other objects (contact.*, company.*, object.* of another
//     type), association changes (deal.associationChange: a link between a
//     deal and a line item or company, which has no objectId; the run reads
//     the deal's links when it fetches it) and unknown subscription types
//     are dropped: they are not an error and produce no DealEvent.
//
// Stage ids: HubSpot sends the pipeline stage id ("closedwon" in the default
// pipeline, a number or UUID in custom pipelines). A stage id listed in the
// account's won_stages (or the connection's) is reported as StageWon
// ("closedwon") by Parse; any other id is judged by Resolve (and FetchDeal)
// through the portal's pipelines API, unless stage_lookup is "none": a
// closed stage with probability 1 of any pipeline is closed won and is
// reported as StageWon too. So one trigger `won_stages: [closedwon]` serves
// every portal and pipeline. The id as sent is always kept in
// Deal.Raw["dealstage"].
package hubspot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

// Defaults.
const (
	DefaultBaseURL = "https://api.hubapi.com"
	// DefaultTokenURL is HubSpot's date-versioned OAuth token endpoint;
	// the v1 one (LegacyTokenPath) is retired on 16 February 2027.
	DefaultTokenURL = "https://api.hubapi.com/oauth/2026-03/token"
	// LegacyTokenPath is the v1 token endpoint's path, warned of when
	// token_url still names it.
	LegacyTokenPath  = "/oauth/v1/token"
	DefaultTolerance = 5 * time.Minute
	// StageWon is the stage a configured won stage id is reported as; it is
	// also the default pipeline's closed-won stage id.
	StageWon = "closedwon"
	// StageMerged is the stage FetchDeal reports for a deal merged into
	// another: HubSpot answers a merged-away id with the deal it was
	// merged into, whose own id (in Deal.Raw "merged_into") has its own
	// webhooks and run. The merged-away deal is no longer one to invoice.
	StageMerged = "merged"
	// StageDeleted is the stage FetchDeal reports for a deleted deal:
	// HubSpot keeps a deleted (archived) deal in its recycling bin for 90
	// days and answers its id 404 unless asked for archived objects. It is
	// no longer a deal to invoice, whatever stage it was deleted in (the
	// Pipedrive source reports its deleted deals the same way).
	StageDeleted = "deleted"
	// MaxBatch is the most events HubSpot puts in one delivery.
	MaxBatch = 100
)

// Config is a hubspot source's `source:` block.
type Config struct {
	// ClientSecret is the app's client secret (public or OAuth app), the key
	// of the v3 signature. Accounts on private apps give their own instead.
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required_with=PreviousClientSecret"`
	// PreviousClientSecret is the app's secret being rotated out: deliveries
	// signed with it are accepted as well, so that every intake replica can
	// be given the new ClientSecret before HubSpot signs with it. It only
	// verifies signatures (never an OAuth request), requires ClientSecret,
	// and is removed once HubSpot signs with the new one.
	PreviousClientSecret secret.Secret `mapstructure:"previous_client_secret"`
	// LegacySignatures lists the older schemes also accepted when a delivery
	// has no v3 signature: "v1", "v2". Default none. They carry no
	// timestamp, so a captured delivery can be replayed.
	LegacySignatures []string `mapstructure:"legacy_signatures" validate:"dive,oneof=v1 v2"`
	// Tolerance is the largest allowed difference between
	// X-HubSpot-Request-Timestamp and the receiver's clock. 0: 5m.
	Tolerance time.Duration `mapstructure:"tolerance" validate:"gte=0"`
	// WonStages are the stage ids that mean closed-won for every account
	// (accounts may add their own). Default: [closedwon].
	WonStages []string `mapstructure:"won_stages" validate:"dive,required"`
	// StageLookup says how a stage id not in won_stages is judged:
	// "pipelines" (default) asks the portal's pipelines API whether it is a
	// closed stage with probability 1 (closed won, in any pipeline);
	// "none" treats it as not won.
	StageLookup string `mapstructure:"stage_lookup" validate:"omitempty,oneof=pipelines none"`
	// BaseURL of the API (tests, proxies). Default https://api.hubapi.com.
	BaseURL string `mapstructure:"base_url" validate:"omitempty,url"`
	// TokenURL of the OAuth token endpoint. Default
	// https://api.hubapi.com/oauth/2026-03/token.
	TokenURL string `mapstructure:"token_url" validate:"omitempty,url"`
	// Fetch names the properties read from the deal, company and line items.
	Fetch FetchConfig `mapstructure:"fetch"`
	// WriteBack names the deal properties the invoice is written to.
	WriteBack WriteBackConfig `mapstructure:"write_back"`
	// Accounts maps a portal id (decimal) to its credentials.
	Accounts map[string]Account `mapstructure:"accounts" validate:"required,min=1,dive"`
}

var _ connectors.ConfiguredAccounts = Config{}

// CRMAccounts implements connectors.ConfiguredAccounts: the portal ids.
func (c Config) CRMAccounts() (string, map[string]string) {
	keys := make(map[string]string, len(c.Accounts))
	for id := range c.Accounts {
		keys[id] = id
	}
	return "HubSpot portal", keys
}

// Account is one HubSpot portal of a connection. Give exactly one of
// AccessToken (private app) and OAuth.
type Account struct {
	// AccessToken is a private app's access token (pat-...).
	AccessToken secret.Secret `mapstructure:"access_token"`
	// OAuth is an installed public app's refresh token.
	OAuth *OAuth `mapstructure:"oauth"`
	// ClientSecret is this portal's private app client secret: deliveries
	// signed with it may only carry this portal's events.
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required_with=PreviousClientSecret"`
	// PreviousClientSecret is the private app's secret being rotated out,
	// accepted beside ClientSecret and bound to this portal the same way.
	// It requires ClientSecret.
	PreviousClientSecret secret.Secret `mapstructure:"previous_client_secret"`
	// WonStages adds stage ids of this portal's pipelines that mean won.
	WonStages []string `mapstructure:"won_stages" validate:"dive,required"`
}

// OAuth is the refresh-token grant of an OAuth 2.0 app install.
type OAuth struct {
	ClientID     string        `mapstructure:"client_id" validate:"required"`
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required"`
	RefreshToken secret.Secret `mapstructure:"refresh_token" validate:"required"`
}

// FetchConfig lists property names read by FetchDeal. Empty names are not read.
type FetchConfig struct {
	// CurrencyProperty of the deal. Default deal_currency_code.
	CurrencyProperty string `mapstructure:"currency_property"`
	// CompanyEmailProperty and CompanyTaxIDProperty of the company
	// (HubSpot has no standard ones). Default unset.
	CompanyEmailProperty string `mapstructure:"company_email_property"`
	CompanyTaxIDProperty string `mapstructure:"company_tax_id_property"`
	// ExtraDealProperties are also read and kept in Deal.Raw.
	ExtraDealProperties []string `mapstructure:"extra_deal_properties"`
}

// WriteBackConfig names the deal properties WriteBack sets. An empty name
// is not written. The properties must exist in the portal (custom deal
// properties of type single-line text).
type WriteBackConfig struct {
	InvoiceIDProperty     string `mapstructure:"invoice_id_property"`
	InvoiceNumberProperty string `mapstructure:"invoice_number_property"`
	InvoiceURLProperty    string `mapstructure:"invoice_url_property"`
	StatusProperty        string `mapstructure:"status_property"`
	// StatusValue is written to StatusProperty. Default "synced".
	StatusValue string `mapstructure:"status_value"`
}

// DefaultConfig is what NewConfig returns before the options are decoded.
func DefaultConfig() Config {
	return Config{
		Tolerance:   DefaultTolerance,
		StageLookup: StageLookupPipelines,
		BaseURL:     DefaultBaseURL,
		TokenURL:    DefaultTokenURL,
		Fetch:       FetchConfig{CurrencyProperty: "deal_currency_code"},
		WriteBack: WriteBackConfig{
			InvoiceIDProperty:     "erp_invoice_id",
			InvoiceNumberProperty: "erp_invoice_number",
			InvoiceURLProperty:    "erp_invoice_url",
			StatusProperty:        "erp_sync_status",
			StatusValue:           "synced",
		},
	}
}

func init() {
	connectors.RegisterSourceType("hubspot", "HubSpot deal webhooks (X-HubSpot-Signature-v3, batches of up to 100 thin events), deals read through the "+APIVersion+" CRM APIs, invoice written back as deal properties", DefaultConfig, New)
	connectors.RegisterWebhookDeal("hubspot", webhookDeal)
}

// Source is a built hubspot source: a connectors.Source, DealFetcher and
// WriteBacker. It is safe for concurrent use.
type Source struct {
	// keys name the source's settings in advice
	// (connections.<name>.source.accounts.<portal>.access_token).
	keys      connectors.Keys
	appSecret []byte
	legacyV1  bool
	legacyV2  bool
	tolerance time.Duration
	wonStages map[string]bool
	// stageLookup is StageLookupPipelines or StageLookupNone.
	stageLookup string
	accounts    map[string]*account
	// secretPortals lists, sorted, the portals with their own client secret.
	secretPortals []string
	// appPrevious is the app's previous_client_secret while it is rotated
	// (nil otherwise): a key like appSecret.
	appPrevious []byte

	baseURL string
	client  *http.Client
	fetch   FetchConfig
	write   WriteBackConfig
	log     *slog.Logger

	// Now is the clock Verify uses when a Webhook has no Received time, and
	// the age of the stages read from the pipelines API; nil means time.Now.
	Now func() time.Time

	// onCompute, when set (tests), is called for each signature Verify
	// computes over a delivery.
	onCompute func()
}

type account struct {
	id        string
	secret    []byte
	wonStages map[string]bool
	token     oauth2.TokenSource
	// oauth is token for an OAuth portal (nil for a private app's static
	// token): dropped after a 401, once, before the call is tried again.
	oauth  *crmkit.Resettable
	stages stageCache
	// previous is the portal's previous_client_secret while it is rotated
	// (nil otherwise), bound to the portal like secret.
	previous []byte
}

var (
	_ connectors.Source          = (*Source)(nil)
	_ connectors.AccountLister   = (*Source)(nil)
	_ connectors.EventResolver   = (*Source)(nil)
	_ connectors.DealFetcher     = (*Source)(nil)
	_ connectors.WriteBacker     = (*Source)(nil)
	_ connectors.WriteBackSwitch = (*Source)(nil)
)

// New checks cfg, resolves its secrets once and returns a Source. Errors
// name the offending key, never a secret's value.
func New(cfg Config, env connectors.Env) (*Source, error) {
	def := DefaultConfig()
	if cfg.Tolerance < 0 {
		return nil, fmt.Errorf("hubspot source: tolerance %s is negative", wording.Duration(cfg.Tolerance))
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = def.Tolerance
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = def.BaseURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = def.TokenURL
	}
	// base_url may hold a credential (user info, a query): shown without it.
	u, err := erpkit.ParseConfiguredURL("hubspot source: base_url", cfg.BaseURL, def.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := erpkit.APIPathError("hubspot source: base_url", u, apiPathInBaseURL,
		"the API paths ("+objectsPrefix+"…, "+propertiesPrefix+"…, "+pipelinesPrefix+"…)", def.BaseURL); err != nil {
		return nil, err
	}
	if cfg.WriteBack.StatusValue == "" {
		cfg.WriteBack.StatusValue = def.WriteBack.StatusValue
	}
	switch cfg.StageLookup {
	case "":
		cfg.StageLookup = def.StageLookup
	case StageLookupPipelines, StageLookupNone:
	default:
		return nil, fmt.Errorf("hubspot source: stage_lookup %q is not %s or %s", cfg.StageLookup, StageLookupPipelines, StageLookupNone)
	}
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("hubspot source: accounts: at least one portal is required")
	}
	client, logger := env.Client(), env.Log()
	s := &Source{
		keys:        env.SourceKeys(),
		tolerance:   cfg.Tolerance,
		wonStages:   crmkit.StageSet(cfg.WonStages, []string{StageWon}),
		stageLookup: cfg.StageLookup,
		accounts:    make(map[string]*account, len(cfg.Accounts)),
		baseURL:     strings.TrimRight(cfg.BaseURL, "/"),
		client:      client,
		fetch:       cfg.Fetch,
		write:       cfg.WriteBack,
		log:         logger,
	}
	for _, v := range cfg.LegacySignatures {
		switch v {
		case "v1":
			s.legacyV1 = true
		case "v2":
			s.legacyV2 = true
		default:
			return nil, fmt.Errorf("hubspot source: legacy_signatures: %q is not v1 or v2", v)
		}
	}
	if s.appSecret, s.appPrevious, err = clientSecrets("hubspot source: ", cfg.ClientSecret, cfg.PreviousClientSecret); err != nil {
		return nil, err
	}
	// The OAuth token requests go through the process's HTTP client,
	// following no redirect (a body with the secret would be posted there).
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient, erpkit.NoRedirects(client))
	for id, a := range cfg.Accounts {
		key := "hubspot source: accounts." + id
		if !connectors.IsDigits(id) {
			return nil, fmt.Errorf("%s: the key must be the portal id (digits)", key)
		}
		acc := &account{id: id, wonStages: crmkit.StageSet(a.WonStages), stages: stageCache{turn: make(chan struct{}, 1)}}
		if acc.secret, acc.previous, err = clientSecrets(key+".", a.ClientSecret, a.PreviousClientSecret); err != nil {
			return nil, err
		}
		if len(acc.secret) > 0 {
			s.secretPortals = append(s.secretPortals, id)
		} else if len(s.appSecret) == 0 {
			return nil, fmt.Errorf("%s: no client_secret to verify its webhooks (set client_secret on the source or on the account)", key)
		}
		switch {
		case !a.AccessToken.IsZero() && a.OAuth != nil:
			return nil, fmt.Errorf("%s: give access_token or oauth, not both", key)
		case !a.AccessToken.IsZero():
			v, err := a.AccessToken.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.access_token (%s): %w", key, a.AccessToken.Describe(), err)
			}
			acc.token = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: v, TokenType: "Bearer"})
		case a.OAuth != nil:
			csec, err := a.OAuth.ClientSecret.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.oauth.client_secret (%s): %w", key, a.OAuth.ClientSecret.Describe(), err)
			}
			rt, err := a.OAuth.RefreshToken.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.oauth.refresh_token (%s): %w", key, a.OAuth.RefreshToken.Describe(), err)
			}
			if a.OAuth.ClientID == "" {
				return nil, fmt.Errorf("%s.oauth.client_id is required", key)
			}
			oc := &oauth2.Config{
				ClientID:     a.OAuth.ClientID,
				ClientSecret: csec,
				// HubSpot wants client_id and client_secret in the form body.
				Endpoint: oauth2.Endpoint{TokenURL: cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
			}
			// HubSpot's refresh tokens do not rotate: after a 401 (an access
			// token refused before its expiry) a new access token is asked
			// for with the same one.
			oauthTokens := crmkit.NewResettable(func() oauth2.TokenSource {
				return oc.TokenSource(tokenCtx, &oauth2.Token{RefreshToken: rt})
			})
			acc.token, acc.oauth = oauthTokens, oauthTokens
		default:
			return nil, fmt.Errorf("%s: access_token (private app) or oauth is required", key)
		}
		s.accounts[id] = acc
	}
	slices.Sort(s.secretPortals)
	if oauthPortals := s.oauthPortals(); len(oauthPortals) > 0 && strings.HasSuffix(strings.TrimRight(cfg.TokenURL, "/"), LegacyTokenPath) {
		logger.Warn("hubspot source: token_url names HubSpot's v1 OAuth endpoint, which HubSpot retires on 16 February 2027; "+
			"after that these portals' tokens cannot be refreshed: remove token_url (the default is "+DefaultTokenURL+") or set it to the 2026-03 endpoint",
			"token_url", cfg.TokenURL, "portals", oauthPortals)
	}
	return s, nil
}

// oauthPortals lists the portals whose access tokens are refreshed with
// OAuth, in order.
func (s *Source) oauthPortals() []string {
	var ids []string
	for id, acc := range s.accounts {
		if acc.oauth != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// clientSecrets resolves a client_secret and the previous_client_secret
// kept beside it while it is rotated; key prefixes their names in errors
// ("hubspot source: ", "hubspot source: accounts.62515."). Both are nil
// when neither is set. A previous secret without a current one is refused:
// it would be the only key left, long after the rotation it was meant for.
func clientSecrets(key string, current, previous secret.Secret) (cur, prev []byte, err error) {
	if current.IsZero() {
		if !previous.IsZero() {
			return nil, nil, fmt.Errorf("%sprevious_client_secret is set without client_secret "+
				"(it is the secret being rotated out; the new one goes to client_secret)", key)
		}
		return nil, nil, nil
	}
	v, err := current.Reveal()
	if err != nil {
		return nil, nil, fmt.Errorf("%sclient_secret (%s): %w", key, current.Describe(), err)
	}
	cur = []byte(v)
	if !previous.IsZero() {
		// Reveal refuses an empty variable or file: never an empty HMAC key.
		v, err := previous.Reveal()
		if err != nil {
			return nil, nil, fmt.Errorf("%sprevious_client_secret (%s): %w", key, previous.Describe(), err)
		}
		prev = []byte(v)
	}
	return cur, prev, nil
}

// Accounts lists the configured portal ids (unsorted).
func (s *Source) Accounts() []string {
	out := make([]string, 0, len(s.accounts))
	for id := range s.accounts {
		out = append(out, id)
	}
	return out
}

func (s *Source) account(id string) (*account, error) {
	a, ok := s.accounts[id]
	if !ok {
		return nil, fmt.Errorf("%w: HubSpot portal %s", connectors.ErrUnknownAccount, id)
	}
	return a, nil
}
