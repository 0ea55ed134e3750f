// Package pipedrive is the `pipedrive` source: Pipedrive webhooks v2
// protected by HTTP Basic auth, deals fetched through API v2 and the
// invoice written back into deal custom fields.
//
// A delivery is one JSON object {"meta":{...},"data":{...},"previous":{...}}
// (see ../shared/webhooks/README.md §4). Only meta.entity "deal" with a
// data object gives a DealEvent; other entities and deletions (data null)
// are dropped without error.
//
// The event is thin (DealEvent.Thin): EventID is meta.id (falling back to
// meta.correlation_id#entity_id), Account is meta.company_id, Deal.ID is
// meta.entity_id. The "stage" dealsync compares is the deal's status:
// Deal.Stage = data.status ("open", "won", "lost") and Deal.PreviousStage
// = previous.status when the status changed, data.status when previous
// exists without a status (the status did not change), and "" on create.
// With trigger `won_stages: [won]` a change to won starts a run, a change of
// some other field of an already won deal does not, and a deal created won
// does. Deal.Raw keeps the stage and pipeline ids, previous_stage_id when
// the stage changed, the action, and on a merge's delivery of the deal
// that survives it merged_from_id, the deal merged away (whose own
// delivery, a delete with merged_to_id, is dropped like other deletions).
package pipedrive

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/secret"
)

// Defaults.
const (
	DefaultBaseURL  = "https://api.pipedrive.com"
	DefaultTokenURL = "https://oauth.pipedrive.com/oauth/token"
	// StatusWon is data.status of a won deal.
	StatusWon = "won"
)

// Config is a pipedrive source's `source:` block.
type Config struct {
	// WebhookUser and WebhookPassword are the http_auth_user and
	// http_auth_password given when the webhook was created. Accounts may
	// have their own instead.
	WebhookUser     string        `mapstructure:"webhook_user" validate:"required_with=PreviousWebhookUser"`
	WebhookPassword secret.Secret `mapstructure:"webhook_password" validate:"required_with=PreviousWebhookPassword"`
	// PreviousWebhookUser and PreviousWebhookPassword are the credentials
	// being rotated out, accepted as well: a webhook's credentials are set
	// when it is created, so a rotation creates a webhook with the new ones
	// and deletes the old webhook, once every intake replica has both.
	// They go together, require WebhookUser/WebhookPassword, and are
	// removed once the old webhook is gone.
	PreviousWebhookUser     string        `mapstructure:"previous_webhook_user"`
	PreviousWebhookPassword secret.Secret `mapstructure:"previous_webhook_password"`
	// BaseURL of the API for API-token accounts. Default https://api.pipedrive.com.
	BaseURL string `mapstructure:"base_url" validate:"omitempty,url"`
	// TokenURL of the OAuth token endpoint.
	TokenURL string `mapstructure:"token_url" validate:"omitempty,url"`
	// Fetch names custom fields read from the organization.
	Fetch FetchConfig `mapstructure:"fetch"`
	// WriteBack names the deal custom fields the invoice is written to.
	WriteBack WriteBackConfig `mapstructure:"write_back"`
	// Accounts maps a Pipedrive company id (meta.company_id) to credentials.
	Accounts map[string]Account `mapstructure:"accounts" validate:"required,min=1,dive"`
}

// AccountsWithOwnIDs implements connectors.IDsPerAccount: Pipedrive
// numbers deals and organizations per company.
func (c Config) AccountsWithOwnIDs() []string { return slices.Sorted(maps.Keys(c.Accounts)) }

var _ connectors.ConfiguredAccounts = Config{}

// CRMAccounts implements connectors.ConfiguredAccounts: the company ids.
func (c Config) CRMAccounts() (string, map[string]string) {
	keys := make(map[string]string, len(c.Accounts))
	for id := range c.Accounts {
		keys[id] = id
	}
	return "Pipedrive company", keys
}

// Account is one Pipedrive company. Give exactly one of APIToken and OAuth.
type Account struct {
	APIToken secret.Secret `mapstructure:"api_token"`
	OAuth    *OAuth        `mapstructure:"oauth"`
	// BaseURL overrides the API base URL (an OAuth app's api_domain, e.g.
	// https://acme.pipedrive.com). For OAuth it defaults to the api_domain
	// of the token answer.
	BaseURL string `mapstructure:"base_url" validate:"omitempty,url"`
	// WebhookUser/WebhookPassword: this company's own Basic credentials;
	// deliveries authenticated with them may only be about this company.
	WebhookUser     string        `mapstructure:"webhook_user" validate:"required_with=PreviousWebhookUser"`
	WebhookPassword secret.Secret `mapstructure:"webhook_password" validate:"required_with=PreviousWebhookPassword"`
	// PreviousWebhookUser/PreviousWebhookPassword: this company's
	// credentials being rotated out, bound to it like its current ones.
	PreviousWebhookUser     string        `mapstructure:"previous_webhook_user"`
	PreviousWebhookPassword secret.Secret `mapstructure:"previous_webhook_password"`
}

// OAuth is the refresh-token grant of an installed Marketplace app.
type OAuth struct {
	ClientID     string        `mapstructure:"client_id" validate:"required"`
	ClientSecret secret.Secret `mapstructure:"client_secret" validate:"required"`
	// RefreshToken (from the install) seeds TokenFile the first time; after
	// that the token in TokenFile is the one used.
	RefreshToken secret.Secret `mapstructure:"refresh_token" validate:"required"`
	// TokenFile keeps the current token (with the company's api_domain)
	// durably, mode 0600, so that a restart neither loses a refresh token
	// the token endpoint replaced nor spends the install's one again.
	// Processes sharing it lock it while refreshing.
	TokenFile string `mapstructure:"token_file" validate:"required"`
}

// FetchConfig names custom fields (their 40-character keys) of the
// organization read by FetchDeal. Empty: not read.
type FetchConfig struct {
	OrganizationEmailField string `mapstructure:"organization_email_field"`
	OrganizationTaxIDField string `mapstructure:"organization_tax_id_field"`
}

// WriteBackConfig names the deal custom fields (40-character keys) that
// WriteBack sets; empty: not written. Use text fields (Pipedrive has no URL
// field type: a "Text" field, 255 characters, holds the link).
type WriteBackConfig struct {
	InvoiceIDField     string `mapstructure:"invoice_id_field" validate:"omitempty,pipedrive_field_key"`
	InvoiceNumberField string `mapstructure:"invoice_number_field" validate:"omitempty,pipedrive_field_key"`
	InvoiceURLField    string `mapstructure:"invoice_url_field" validate:"omitempty,pipedrive_field_key"`
	StatusField        string `mapstructure:"status_field" validate:"omitempty,pipedrive_field_key"`
	// StatusValue is written to StatusField. Default "synced".
	StatusValue string `mapstructure:"status_value"`
}

// DefaultConfig is what NewConfig returns before the options are decoded.
func DefaultConfig() Config {
	return Config{BaseURL: DefaultBaseURL, TokenURL: DefaultTokenURL, WriteBack: WriteBackConfig{StatusValue: "synced"}}
}

func init() {
	connectors.RegisterSourceType("pipedrive", "Pipedrive webhooks v2 (meta/data/previous) behind HTTP Basic auth, deals read through API v2, invoice written back to deal custom fields", DefaultConfig, New)
	connectors.RegisterWebhookDeal("pipedrive", webhookDeal)
}

// Source is a built pipedrive source: a connectors.Source, DealFetcher and
// WriteBacker, safe for concurrent use.
type Source struct {
	// keys name the source's settings in advice
	// (connections.<name>.source.accounts.<company>.api_token).
	keys     connectors.Keys
	creds    []credential
	accounts map[string]*account
	client   *http.Client
	fetch    FetchConfig
	write    WriteBackConfig
	log      *slog.Logger
}

// credential is a Basic user/password pair as SHA-256 digests (compared in
// constant time whatever the lengths); only limits it to one company.
type credential struct {
	user, pass [32]byte
	only       string
	previous   bool // a previous_webhook_… pair being rotated out
}

type account struct {
	id      string
	baseURL string // "" for OAuth: from the token's api_domain
	apiKey  string
	oauth   *erpkit.RefreshingSource
}

var (
	_ connectors.Source          = (*Source)(nil)
	_ connectors.AccountLister   = (*Source)(nil)
	_ connectors.DealFetcher     = (*Source)(nil)
	_ connectors.WriteBacker     = (*Source)(nil)
	_ connectors.WriteBackSwitch = (*Source)(nil)
)

// New checks cfg, resolves the secrets once and returns a Source. Errors
// never contain a secret's value.
func New(cfg Config, env connectors.Env) (*Source, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.WriteBack.StatusValue == "" {
		cfg.WriteBack.StatusValue = "synced"
	}
	// A key written with a space around it (quoted YAML, an environment
	// variable) is the key: the fetch, config check --crm and the warning
	// of a mapping reading an unset company field (UnsetCompanyFields) all
	// read the trimmed value, and one of spaces only is unset.
	cfg.Fetch.OrganizationEmailField = strings.TrimSpace(cfg.Fetch.OrganizationEmailField)
	cfg.Fetch.OrganizationTaxIDField = strings.TrimSpace(cfg.Fetch.OrganizationTaxIDField)
	if err := checkBaseURL("pipedrive source: base_url", cfg.BaseURL); err != nil {
		return nil, err
	}
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("pipedrive source: accounts: at least one company is required")
	}
	client, logger := env.Client(), env.Log()
	s := &Source{keys: env.SourceKeys(), accounts: map[string]*account{}, client: client, fetch: cfg.Fetch, write: cfg.WriteBack, log: logger}
	if _, err := s.addCredentials("pipedrive source: ", cfg.WebhookUser, cfg.WebhookPassword,
		cfg.PreviousWebhookUser, cfg.PreviousWebhookPassword, ""); err != nil {
		return nil, err
	}
	for id, a := range cfg.Accounts {
		key := "pipedrive source: accounts." + id
		if a.BaseURL != "" {
			if err := checkBaseURL(key+".base_url", a.BaseURL); err != nil {
				return nil, err
			}
		}
		acc := &account{id: id, baseURL: strings.TrimRight(a.BaseURL, "/")}
		ok, err := s.addCredentials(key+".", a.WebhookUser, a.WebhookPassword, a.PreviousWebhookUser, a.PreviousWebhookPassword, id)
		if err != nil {
			return nil, err
		}
		if !ok && cfg.WebhookUser == "" {
			return nil, fmt.Errorf("%s: no webhook_user/webhook_password to authenticate its webhooks (set them on the source or the account)", key)
		}
		switch {
		case !a.APIToken.IsZero() && a.OAuth != nil:
			return nil, fmt.Errorf("%s: give api_token or oauth, not both", key)
		case !a.APIToken.IsZero():
			v, err := a.APIToken.Reveal()
			if err != nil {
				return nil, fmt.Errorf("%s.api_token (%s): %w", key, a.APIToken.Describe(), err)
			}
			acc.apiKey = v
			if acc.baseURL == "" {
				acc.baseURL = strings.TrimRight(cfg.BaseURL, "/")
			}
		case a.OAuth != nil:
			if a.OAuth.ClientID == "" {
				return nil, fmt.Errorf("%s.oauth.client_id is required", key)
			}
			if a.OAuth.TokenFile == "" {
				return nil, fmt.Errorf("%s.oauth.token_file is required", key)
			}
			if acc.oauth, err = erpkit.NewRefreshingSource(erpkit.RefreshGrant{
				Service: service, Connection: key, Key: key + ".oauth.", Keys: s.keys.Under("accounts." + id + ".oauth"),
				ClientID: a.OAuth.ClientID, ClientSecret: a.OAuth.ClientSecret, RefreshToken: a.OAuth.RefreshToken,
				TokenURL:   cfg.TokenURL,
				Store:      &erpkit.FileTokenStore{Path: a.OAuth.TokenFile, ExtraKeys: []string{"api_domain"}},
				HTTPClient: client,
				Message:    tokenMessage,
			}); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: api_token or oauth is required", key)
		}
		s.accounts[id] = acc
	}
	return s, nil
}

// apiPathInBaseURL matches, in any case, an API path of Pipedrive's in a
// base_url: https://api.pipedrive.com/api/v2 or
// https://acme.pipedrive.com/api/v1, as the server URLs of Pipedrive's
// OpenAPI specs write them. The source adds /api/v2/… to base_url, so such
// a base_url would double it. A proxy's own prefix is not matched.
var apiPathInBaseURL = regexp.MustCompile(`(?i)/api/v\d+(/|$)`)

// checkBaseURL refuses a base_url (what names it) that is not a URL or
// already has the API path.
func checkBaseURL(what, value string) error {
	// base_url may hold a credential (user info, a query): shown without it.
	u, err := erpkit.ParseConfiguredURL(what, value, DefaultBaseURL)
	if err != nil {
		return err
	}
	return erpkit.APIPathError(what, u, apiPathInBaseURL, "/api/v2/…",
		DefaultBaseURL+" (or the company's own https://<company>.pipedrive.com)")
}

// addCredentials adds the webhook_user/webhook_password pair under key
// ("pipedrive source: " or "pipedrive source: accounts.6083095.") and,
// while it is rotated, the previous_webhook_user/previous_webhook_password
// pair beside it, both limited to only when it is set. It reports whether
// the current pair is set; a previous pair without one is refused, as it
// would be the only credential left long after the rotation.
func (s *Source) addCredentials(key, user string, pass secret.Secret, prevUser string, prevPass secret.Secret, only string) (bool, error) {
	c, ok, err := newCredential(key, "webhook", user, pass, only)
	if err != nil {
		return false, err
	}
	prev, hasPrev, err := newCredential(key, "previous_webhook", prevUser, prevPass, only)
	if err != nil {
		return false, err
	}
	prev.previous = true
	if hasPrev && !ok {
		return false, fmt.Errorf("%sprevious_webhook_user/previous_webhook_password are set without webhook_user/webhook_password "+
			"(they are the credentials being rotated out; the new ones go to webhook_user/webhook_password)", key)
	}
	if ok {
		s.creds = append(s.creds, c)
	}
	if hasPrev {
		s.creds = append(s.creds, prev)
	}
	return ok, nil
}

// newCredential resolves the <name>_user/<name>_password pair under key,
// name being "webhook" or "previous_webhook".
func newCredential(key, name, user string, pass secret.Secret, only string) (credential, bool, error) {
	if user == "" && pass.IsZero() {
		return credential{}, false, nil
	}
	if user == "" || pass.IsZero() {
		return credential{}, false, fmt.Errorf("%s%s_user and %s_password go together", key, name, name)
	}
	// Reveal refuses a blank password: "user:" would be accepted from anyone
	// who knows the user name.
	p, err := pass.Reveal()
	if err != nil {
		return credential{}, false, fmt.Errorf("%s%s_password (%s): %w", key, name, pass.Describe(), err)
	}
	return credential{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(p)), only: only}, true, nil
}

// Challenge implements connectors.Challenger: Pipedrive's webhooks
// authenticate with HTTP Basic (http_auth_user, http_auth_password).
func (s *Source) Challenge() string { return `Basic realm="dealsync", charset="UTF-8"` }

var _ connectors.Challenger = (*Source)(nil)

// Verify checks the HTTP Basic credentials of the delivery in constant time.
// Credentials of one account only admit deliveries about that company;
// previous credentials being rotated out are bound the same way.
// Errors wrap connectors.ErrUnauthorized.
func (s *Source) Verify(w *connectors.Webhook) error {
	if w == nil {
		return crmkit.Unauthorized(service, "no delivery")
	}
	w.PreviousSecret = false
	h := w.Header.Get("Authorization")
	scheme, enc, ok := strings.Cut(strings.TrimSpace(h), " ")
	if h == "" {
		return crmkit.Unauthorized(service, "missing Authorization header (set http_auth_user/http_auth_password on the webhook)")
	}
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return crmkit.Unauthorized(service, "Authorization is not Basic")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return crmkit.Unauthorized(service, "Authorization Basic value is not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return crmkit.Unauthorized(service, "Authorization Basic value has no user:password")
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	// Every credential is compared (in constant time); several may match
	// when companies share credentials. Any match without a company, or
	// bound to the delivery's company, admits it.
	var bound, boundCurrent []string
	unbound, unboundCurrent := false, false
	for i := range s.creds {
		c := &s.creds[i]
		if subtle.ConstantTimeCompare(u[:], c.user[:])&subtle.ConstantTimeCompare(p[:], c.pass[:]) != 1 {
			continue
		}
		if c.only == "" {
			unbound, unboundCurrent = true, unboundCurrent || !c.previous
			continue
		}
		bound = append(bound, c.only)
		if !c.previous {
			boundCurrent = append(boundCurrent, c.only)
		}
	}
	if unbound {
		// Admitted. Only by a previous credential? Not when the company's
		// own current credential admits it too (read from the body; a body
		// that does not say is left to Parse).
		if !unboundCurrent {
			company, err := CompanyOf(w.Body)
			w.PreviousSecret = err != nil || !slices.Contains(boundCurrent, company)
		}
		return nil
	}
	if len(bound) == 0 {
		// What to check, in the log's line only (connectors.Terse).
		return connectors.Advised(crmkit.Unauthorized(service, "wrong webhook user or password"),
			fmt.Sprintf("check that the webhook's http_auth_user and http_auth_password in Pipedrive are %s (or an account's own, under accounts)", s.keys.List("webhook_user", "webhook_password")))
	}
	company, err := CompanyOf(w.Body)
	if err == nil && company == "" {
		err = errors.New("the delivery has no meta.company_id")
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", connectors.ErrMalformed, service, err)
	}
	if !slices.Contains(bound, company) {
		slices.Sort(bound)
		return crmkit.Unauthorized(service, "credentials of company %s used for a delivery of company %q", strings.Join(bound, ", "), company)
	}
	w.PreviousSecret = !slices.Contains(boundCurrent, company)
	return nil
}

// Accounts lists the configured company ids (unsorted).
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
		return nil, fmt.Errorf("%w: Pipedrive company %s", connectors.ErrUnknownAccount, id)
	}
	return a, nil
}
