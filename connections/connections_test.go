package connections_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all"
	"github.com/dealsync/dealsync/internal/testconfig"
	"github.com/dealsync/dealsync/model"
)

func TestMappingReloadSwapsConnections(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(dir, "m.yaml")
	write := func(trigger string) {
		if err := os.WriteFile(mp, []byte("name: m\ntrigger: "+trigger+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`is_won(deal.stage)`)
	_, set := testconfig.Build(t, dir, "mappings: {files: [m.yaml], reload_interval: 0s}\nconnections:\n  demo:\n    mapping: m\n    trigger: {won_stages: [signed]}\n", connectors.Env{}, config.WithDevDefaults())
	ev := model.DealEvent{Deal: model.Deal{ID: "D", Stage: "Signed", PreviousStage: "signed"}}
	before, _ := set.Get("demo")
	if ok, why, err := before.Trigger.Evaluate(ev); !ok || err != nil {
		t.Fatalf("v1 trigger (won stages of the connection, any previous stage): %s", why)
	}
	r1, _ := set.Resolve("demo")

	write(`is_won(deal.stage) && !is_won(deal.previous_stage)`)
	if err := set.ReloadMappings(); err != nil {
		t.Fatal(err)
	}
	after, _ := set.Get("demo")
	if ok, _, err := after.Trigger.Evaluate(ev); ok || err != nil {
		t.Fatal("v2 trigger not in use after reload")
	}
	if ok, _, err := before.Trigger.Evaluate(ev); !ok || err != nil {
		t.Fatal("a Connection handed out before the reload changed")
	}
	r2, _ := set.Resolve("demo")
	if r1.Mapper.Hash() == r2.Mapper.Hash() || r2.Mapper.Hash() != after.Mapper.Hash() {
		t.Fatalf("Resolve: hashes %s → %s, connection has %s", r1.Mapper.Hash(), r2.Mapper.Hash(), after.Mapper.Hash())
	}

	write(`deal.stage +`) // a bad edit keeps v2
	if err := set.ReloadMappings(); err == nil {
		t.Fatal("bad edit accepted")
	}
	if c, _ := set.Get("demo"); c.Mapper.Hash() != after.Mapper.Hash() {
		t.Fatal("bad edit replaced the mapping")
	}
}

// A CRM source reports every won deal with one stage value; a connection
// whose won stages miss it acknowledges every won delivery and invoices
// nothing (Salesforce's "Closed Won" was missing from the defaults). A list
// of other stages can be meant, so it is a warning.
func TestWonStagesAndTheStageTheSourceReports(t *testing.T) {
	build := func(t *testing.T, trigger string) *connections.Set {
		t.Helper()
		body := `
connections:
  sf:
    target: sandbox
` + trigger + `
    source:
      type: salesforce
      endpoint_token: tok
      accounts:
        "00D5w000004qGTOEA2": {instance_url: "https://a.my.salesforce.com", client_id: c, client_secret: s}
  hs:
    target: sandbox
` + trigger + `
    source:
      type: hubspot
      client_secret: s
      accounts:
        "62515": {access_token: t}
`
		_, set := testconfig.Build(t, "", body, connectors.Env{}, config.WithDevDefaults())
		return set
	}
	t.Run("defaults", func(t *testing.T) {
		set := build(t, "")
		sf, _ := set.Get("sf")
		won := model.DealEvent{Thin: true, Deal: model.Deal{ID: "0065w00000AAAAAAAA", Stage: "Closed Won"}}
		if ok, why, err := sf.Trigger.Evaluate(won); !ok || err != nil {
			t.Fatalf("a won Salesforce opportunity does not trigger with the default won stages: %s %v", why, err)
		}
		for _, name := range []string{"sf", "hs"} {
			if c, _ := set.Get(name); c.WonStageWarning() != "" {
				t.Errorf("%s: warning with the default won stages: %s", name, c.WonStageWarning())
			}
		}
		// A CRM connection whose deals are read settles 5 s and lingers
		// 15 min unless configured (README, examples/dealsync.yaml); the
		// generic demo, whose webhooks carry the deal, neither.
		for name, want := range map[string][2]time.Duration{"sf": {5 * time.Second, 15 * time.Minute}, "hs": {5 * time.Second, 15 * time.Minute}, "demo": {0, 0}} {
			if c, _ := set.Get(name); c.SettleTime != want[0] || c.Linger != want[1] {
				t.Errorf("%s: settle_time %v, linger %v; want %v and %v", name, c.SettleTime, c.Linger, want[0], want[1])
			}
		}
	})
	t.Run("a list without the source's stage", func(t *testing.T) {
		set := build(t, "    trigger: {won_stages: [won]}")
		for name, want := range map[string]string{
			"sf": `the salesforce source reports every won deal as stage "Closed Won", which trigger.won_stages [won] does not list`,
			"hs": `the hubspot source reports every won deal as stage "closedwon", which trigger.won_stages [won] does not list`,
		} {
			if c, _ := set.Get(name); !strings.Contains(c.WonStageWarning(), want) {
				t.Errorf("%s: warning %q, want it to contain %s", name, c.WonStageWarning(), want)
			}
		}
	})
	t.Run("listed in another case", func(t *testing.T) {
		set := build(t, "    trigger: {won_stages: [closed won, ClosedWon]}")
		for _, name := range []string{"sf", "hs"} {
			if c, _ := set.Get(name); c.WonStageWarning() != "" {
				t.Errorf("%s: won stages compare ignoring case: %s", name, c.WonStageWarning())
			}
		}
	})
}

// NetSuite's custom customer fields (custentity_…) have underscores; the
// tax-id column used to be checked as alphanumeric, which refused them.
func TestNetSuiteTaxIDFieldTakesCustomFields(t *testing.T) {
	t.Setenv("NS_KEY", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
	load := func(field string) error {
		body := `
targets:
  erp:
    type: netsuite
    account_id: "1234567_SB1"
    client_id: c
    certificate_id: k
    private_key: env:NS_KEY
    tax_id_field: ` + field + `
`
		_, err := config.Load(testconfig.Write(t, "", body), config.WithDevDefaults())
		return err
	}
	for _, ok := range []string{"custentity_vat_no", "vatregnumber", `""`} {
		if err := load(ok); err != nil {
			t.Errorf("tax_id_field %s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{`"vat no"`, `"x; drop"`, `"_x"`, `"1x"`} {
		err := load(bad)
		if err == nil || !strings.Contains(err.Error(), "targets.erp.tax_id_field: must be a column name") {
			t.Errorf("tax_id_field %s: err = %v", bad, err)
		}
	}
}

// account_id makes the NetSuite hosts: a URL, a host or the id in its
// hosts' form (1234567-sb1) made https://https//….suitetalk.api.netsuite.com,
// and every run retried a DNS error for a day. The config now refuses
// it at the key, saying the id to write where the value names one.
func TestNetSuiteAccountIDIsAnAccountID(t *testing.T) {
	t.Setenv("NS_KEY", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")
	load := func(account string) error {
		body := `
targets:
  erp:
    type: netsuite
    account_id: ` + account + `
    client_id: c
    certificate_id: k
    private_key: env:NS_KEY
`
		_, err := config.Load(testconfig.Write(t, "", body), config.WithDevDefaults())
		return err
	}
	for _, ok := range []string{`"1234567"`, `"1234567_SB1"`, `1234567_sb2`, `TSTDRV1234567`, `"1234567_RP"`} {
		if err := load(ok); err != nil {
			t.Errorf("account_id %s refused: %v", ok, err)
		}
	}
	const key = "targets.erp.account_id: must be a NetSuite account id"
	for bad, write := range map[string]string{
		`"https://1234567-sb1.app.netsuite.com"`:                             `write account_id: "1234567_SB1"`,
		`https://1234567.suitetalk.api.netsuite.com/services/rest/record/v1`: `write account_id: "1234567"`,
		`TSTDRV1234567.app.netsuite.com`:                                     `write account_id: "TSTDRV1234567"`,
		`1234567-sb1`:                                                        `write account_id: "1234567_SB1"`,
		`"TSTDRV 1234567"`:                                                   "has a space in it",
		`acme.example.com`:                                                   "",
		`"1234567__SB1"`:                                                     "",
	} {
		err := load(bad)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), write) ||
			(write == "" && strings.Contains(err.Error(), "write account_id")) || strings.Contains(err.Error(), "base_url") {
			t.Errorf("account_id %s: err = %v; want %q and %q", bad, err, key, write)
		}
	}
}

// currency_ids is keyed by ISO code as the docs write it (EUR); the config
// reader lower-cases keys, and the target must still find the invoice's
// currency. A key that is no currency code is a config error.
func TestNetSuiteCurrencyIDsKeepTheirCodes(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "ns.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(ids string) (*connections.Set, error) {
		body := `
targets:
  erp:
    type: netsuite
    account_id: "1234567_SB1"
    client_id: c
    certificate_id: k
    private_key: file:` + pemFile + `
    default_item_id: "5"
    currency_ids: ` + ids + `
connections:
  shop:
    source: {type: generic, secret: whsec_c2hvcC1zZWNyZXQ=}
    target: erp
`
		cfg, err := config.Load(testconfig.Write(t, dir, body))
		if err != nil {
			t.Fatal(err)
		}
		return connections.Build(cfg, connectors.Env{})
	}
	set, err := build(`{EUR: "4", usd: "1"}`)
	if err != nil {
		t.Fatal(err)
	}
	shop, _ := set.Get("shop")
	inv := model.Invoice{
		Reference: "D-1", SourceDealID: "D-1", Currency: "EUR",
		Customer:  model.Customer{ExternalID: "C-1", Name: "Acme GmbH"},
		IssueDate: model.NewDate(2026, 11, 20), DueDate: model.NewDate(2026, 12, 20),
		Lines: []model.InvoiceLine{{Description: "Pro", Quantity: decimal.NewFromInt(1), UnitPrice: decimal.NewFromInt(100)}},
	}
	inv.ComputeTotals()
	for cur, want := range map[model.Currency]string{"EUR": `"4"`, "USD": `"1"`} {
		inv.Currency = cur
		req, err := shop.Target.PlanInvoice(inv, connectors.CustomerRef{ID: "77"}, "invoice/shop/D-1/invoice")
		if err != nil {
			t.Fatalf("%s: %v", cur, err)
		}
		if !strings.Contains(string(req.Body), `"currency":{"id":`+want+`}`) {
			t.Errorf("%s invoice: body %s, want currency id %s", cur, req.Body, want)
		}
	}
	if _, err := build(`{EURO: "4"}`); err == nil || !strings.Contains(err.Error(), "currency_ids") {
		t.Errorf("a key that is no currency code: %v", err)
	}
}

// An item id of the config is an internal id (digits), checked at load:
// a SKU there failed every invoice at run time.
func TestDefaultItemIDsAreInternalIDs(t *testing.T) {
	body := `
targets:
  qbo:
    type: quickbooks
    realm_id: "9130355555555555"
    client_id: c
    client_secret: s
    refresh_token: r
    token_file: /tmp/qbo-token.json
    link_file: /tmp/qbo-links.json
    default_item_id: PRO-1Y
  ns:
    type: netsuite
    account_id: "1234567_SB1"
    client_id: c
    certificate_id: k
    private_key: env:NS_KEY
    default_item_id: "17"
    discount_item_id: DISCOUNT
    subsidiary_id: Parent Company
    location_id: "3"
    default_tax_code_id: VAT19
    currency_ids: {eur: "1", usd: US Dollar}
`
	_, err := config.Load(testconfig.Write(t, "", body), config.WithDevDefaults())
	var cerr *config.Error
	if !errors.As(err, &cerr) || !cerr.Has("targets.qbo.default_item_id") || !cerr.Has("targets.ns.discount_item_id") || cerr.Has("targets.ns.default_item_id") {
		t.Fatalf("want problems at qbo's default_item_id and ns's discount_item_id alone, got %v", err)
	}
	// NetSuite's other internal ids too: they failed only at the first new
	// customer or invoice, possibly days later.
	for _, key := range []string{"targets.ns.subsidiary_id", "targets.ns.default_tax_code_id"} {
		if !cerr.Has(key) {
			t.Errorf("no problem at %s:\n%v", key, err)
		}
	}
	if cerr.Has("targets.ns.location_id") || !strings.Contains(err.Error(), "currency_ids") || strings.Contains(err.Error(), "currency_ids[eur]") {
		t.Errorf("want a problem at currency_ids' usd alone, none at location_id:\n%v", err)
	}
	if !strings.Contains(err.Error(), "targets.qbo.default_item_id: must be digits (a record's or a company's id)") {
		t.Errorf("the problem does not say what is wanted:\n%v", err)
	}
}

// Identifiers an engineer writes in another shape (an organisation's
// name for Xero's tenantId, letters for a QuickBooks company id, a
// Pipedrive field's name for its API key) failed only at run time: they
// are refused at load, saying what is wanted; the right shapes load.
func TestVendorIdentifiersOfTheWrongShapeAreRefused(t *testing.T) {
	write := func(tenant, realm, field string, minor int, globalTax string) string {
		return testconfig.Write(t, "", fmt.Sprintf(`
targets:
  xero: {type: xero, tenant_id: %q, client_id: c, client_secret: s, token_file: /tmp/x.json}
  qbo: {type: quickbooks, realm_id: %q, client_id: c, client_secret: s, token_file: /tmp/q.json, link_file: /tmp/l.json, minor_version: %d, global_tax_calculation: %q}
connections:
  pd:
    target: xero
    source:
      type: pipedrive
      webhook_user: u
      webhook_password: p
      write_back: {invoice_number_field: %q}
      accounts: {"1": {api_token: t}}
`, tenant, realm, minor, globalTax, field))
	}
	_, err := config.Load(write("Acme Ltd", "abc", "erp_number", 65, "TaxInclusive"))
	for key, want := range map[string]string{
		"targets.xero.tenant_id":                                "must be a UUID",
		"targets.qbo.realm_id":                                  "must be digits",
		"targets.qbo.minor_version":                             "must be at least 75",
		"targets.qbo.global_tax_calculation":                    "must be one of: TaxExcluded, or unset",
		"connections.pd.source.write_back.invoice_number_field": "must be a custom field's API key, 40 hex digits",
	} {
		if !strings.Contains(fmt.Sprint(err), key+": "+want) {
			t.Errorf("no problem %q at %s:\n%v", want, key, err)
		}
	}
	// The API that lists the keys is the one dealsync calls (v2).
	if want := "or the field's field_code in GET /api/v2/dealFields), not its name"; !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("the field key's problem does not say %q:\n%v", want, err)
	}
	if _, err := config.Load(write("6a3c1f0e-8b2d-4c5a-9e7f-0d1c2b3a4f5e", "9130355555555555", "8f3a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b", 75, "")); err != nil {
		t.Errorf("the right shapes: %v", err)
	}
}

// account_targets route by the account key the source's events carry: a
// key the source does not serve (a typo) is refused at build, naming the
// accounts it serves, rather than leaving that account's invoices on the
// connection's own target.
func TestAccountTargetsAreTheSourcesAccounts(t *testing.T) {
	t.Setenv("DEALSYNC_TEST_HS_SECRET", "hubspot-client-secret")
	t.Setenv("DEALSYNC_TEST_HS_TOKEN", "pat-na1-62515")
	build := func(routes string) (*connections.Set, error) {
		yaml := `targets:
  erp-a: {type: http, base_url: "https://a.example"}
  erp-b: {type: http, base_url: "https://b.example"}
connections:
  hs:
    target: erp-a
    account_targets: {` + routes + `}
    source:
      type: hubspot
      client_secret: env:DEALSYNC_TEST_HS_SECRET
      accounts:
        "62515": {access_token: env:DEALSYNC_TEST_HS_TOKEN}
        "70001": {access_token: env:DEALSYNC_TEST_HS_TOKEN}
`
		cfg, err := config.Load(testconfig.Write(t, "", yaml))
		if err != nil {
			t.Fatal(err)
		}
		return connections.Build(cfg, connectors.Env{})
	}
	if _, err := build(`"62516": erp-b`); err == nil || !strings.Contains(err.Error(), "account_targets.62516") || !strings.Contains(err.Error(), "62515") {
		t.Fatalf("a key the source does not serve: %v; want an error naming it and the accounts served", err)
	}
	set, err := build(`"62515": erp-b`)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := set.Resolve("hs")
	if c.TargetFor("62515") == c.TargetFor("70001") {
		t.Fatal("account 62515 is not routed to its own target")
	}
	// The ERP steps' failures name the target an account's invoices go to.
	if a, b := c.TargetNameFor("62515"), c.TargetNameFor("70001"); a != "erp-b" || b != "erp-a" {
		t.Errorf("target names %q and %q; want erp-b (account_targets) and erp-a", a, b)
	}
}

// A source whose events name no CRM account (generic) has nothing to route
// by: account_targets on it is refused at build, naming the target every
// invoice would go to, rather than accepted and never used.
func TestAccountTargetsNeedASourceWithAccounts(t *testing.T) {
	yaml := `targets:
  erp: {type: http, base_url: "https://a.example"}
  erp-acme: {type: http, base_url: "https://acme.example"}
connections:
  shop:
    target: erp
    account_targets: {acme: erp-acme}
    source: {type: generic, secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=}
`
	cfg, err := config.Load(testconfig.Write(t, "", yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connections.Build(cfg, connectors.Env{}); err == nil || !strings.Contains(err.Error(), "connections.shop.account_targets: a generic source serves no CRM accounts") ||
		!strings.Contains(err.Error(), "target erp") {
		t.Fatalf("account_targets on a generic source: %v; want it refused naming the target every invoice would go to", err)
	}
}

// A CRM source without a write-back field writes nothing back: its
// connection has no write-back (no step in its runs, as a generic source
// without write_back.url), so that `runs retry --writeback --completed`
// tells its runs apart once a field is set.
func TestACRMConnectionWithoutWriteBackFieldsHasNoWriteBack(t *testing.T) {
	for field, writes := range map[string]bool{"": false, "8f3a0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b": true} {
		_, set := testconfig.Build(t, "", fmt.Sprintf(`
targets:
  erp: {type: http, base_url: "https://erp.example.com"}
connections:
  pd:
    target: erp
    source:
      type: pipedrive
      webhook_user: u
      webhook_password: p
      write_back: {invoice_number_field: %q}
      accounts: {"1": {api_token: t}}
`, field), connectors.Env{})
		c, _ := set.Get("pd")
		if (c.WriteBacker != nil) != writes {
			t.Errorf("write-back field %q: WriteBacker %T, want one %v", field, c.WriteBacker, writes)
		}
	}
}

// Each connector is built knowing its config key (targets.<name>,
// connections.<name>.source): its advice names a setting by the full key
// an engineer edits, not as "the target's auth_value", and the variable
// that can set it, where operators mostly set secrets (a `-` of a name
// written `_`).
func TestConnectorsKnowTheirConfigKeys(t *testing.T) {
	erp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(erp.Close)
	_, set := testconfig.Build(t, "", `
targets:
  books: {type: http, base_url: "`+erp.URL+`", auth_value: "Bearer expired"}
connections:
  in-house:
    target: books
    source: {type: generic, secret: "whsec_AA=="}
`, connectors.Env{})
	c, _ := set.Get("in-house")
	if w := c.Source.(connectors.ConfigWarner).ConfigWarnings(); len(w) != 1 || !strings.HasPrefix(w[0], "connections.in-house.source.secret (or DEALSYNC_CONNECTIONS_IN_HOUSE_SOURCE_SECRET) is 1 bytes") {
		t.Errorf("source's warnings %q; want its secret named connections.in-house.source.secret and its variable", w)
	}
	_, err := c.Target.FindOrCreateCustomer(context.Background(), model.Customer{ExternalID: "C-1", Name: "Acme"}, "k")
	if err == nil || !strings.Contains(err.Error(), "check targets.books.auth_value (or DEALSYNC_TARGETS_BOOKS_AUTH_VALUE), the whole value of header Authorization") ||
		!strings.Contains(err.Error(), "and targets.books.auth_header (or DEALSYNC_TARGETS_BOOKS_AUTH_HEADER), the header") {
		t.Errorf("target's 401: %v; want its auth_value named targets.books.auth_value, with its variable", err)
	}
}

// What a source logs on its own (a run's fetch or write-back, a delivery
// parsed without the intake's logger) names its connection.
func TestSourcesLogTheirConnection(t *testing.T) {
	yaml := `targets:
  erp: {type: http, base_url: "https://a.example"}
connections:
  hs-eu:
    target: erp
    source:
      type: hubspot
      client_secret: hubspot-client-secret
      accounts:
        "62515": {access_token: pat-na1-62515}
`
	var logs strings.Builder
	_, set := testconfig.Build(t, "", yaml, connectors.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c, _ := set.Get("hs-eu")
	merge := `[{"eventId":1,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.merge","attemptNumber":0,"objectId":113,"primaryObjectId":113,"mergedObjectIds":[114]}]`
	if _, err := c.Source.Parse(&connectors.Webhook{Body: []byte(merge)}); err != nil {
		t.Fatal(err)
	}
	if want := `msg="hubspot: deals were merged; a merge starts no run.`; !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "connection=hs-eu portal=62515") {
		t.Errorf("the source's line lacks its connection:\n%s", logs.String())
	}
}
