package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
)

// A connection may name its target in any letter case: viper lower-cases
// the names under targets, so target and account_targets are compared
// lower-cased too.
func TestTargetNamedInAnyCase(t *testing.T) {
	cfg := mustLoad(t, writeFile(t, `
targets:
  erp-main: {type: test-target, base_url: "https://erp.example.com"}
  erp-eu: {type: test-target, base_url: "https://eu.erp.example.com"}
connections:
  shop:
    source: {type: test-source, secret: s}
    target: ERP-Main
    account_targets: {"42": Erp-EU}
`))
	shop := cfg.Connections["shop"]
	equal(t, "connections.shop.target", shop.Target, "erp-main")
	equal(t, "connections.shop.account_targets", shop.AccountTargets, map[string]string{"42": "erp-eu"})
}

// Upper-case letters in a connection or target name are refused at the key
// as written, saying what the name would be read as: `Shop` would silently
// become the connection shop, with another webhook URL.
func TestUpperCaseNamesRefused(t *testing.T) {
	_, err := config.Load(writeFile(t, `
targets:
  ERP-Main: {type: test-target, base_url: "https://erp.example.com"}
connections:
  Shop:
    source: {type: test-source, secret: s}
    target: ERP-Main
  crm:
    source: {type: test-source, secret: s}
    target: erp-main
`))
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	want := []config.Problem{
		{Key: "connections.Shop", Message: `connection name must be lower-case: names are read lower-cased, ` +
			`so this is connection "shop" (webhook URL /webhooks/shop); write it shop`},
		{Key: "targets.ERP-Main", Message: `target name must be lower-case: names are read lower-cased, ` +
			`so this is target "erp-main"; write it erp-main (a connection's target and account_targets may name it in any letter case)`},
	}
	equal(t, "problems", cerr.Problems, want)
}

// A `-` in a key path is reachable as `_` in the environment (shells do not
// export names with a hyphen); the hyphenated spelling still works and wins.
func TestEnvOverridesHyphenatedNames(t *testing.T) {
	path := writeFile(t, `
targets:
  erp-main: {type: test-target, base_url: "https://erp.example.com"}
connections:
  hubspot-eu:
    source: {type: test-source, secret: from-file, account: file}
    target: erp-main
`)
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_SECRET", "from-env")  // in the file
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_SETTLE_TIME", "7s")          // bound key, not in the file
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_TRIGGER_WON_STAGES", "paid") // per-connection default
	t.Setenv("DEALSYNC_TARGETS_ERP_MAIN_TIMEOUT", "42s")                   // target option, not in the file
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_ACCOUNT", "underscore")
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT-EU_SOURCE_ACCOUNT", "hyphen") // env -S, docker env files

	cfg := mustLoad(t, path)
	c := cfg.Connections["hubspot-eu"]
	src := c.Source.Spec.(*testSource)
	equal(t, "connections.hubspot-eu.source.secret", reveal(t, src.Secret), "from-env")
	equal(t, "connections.hubspot-eu.source.account", src.Account, "hyphen")
	equal(t, "connections.hubspot-eu.settle_time", c.SettleTime, 7*time.Second)
	equal(t, "connections.hubspot-eu.trigger.won_stages", c.Trigger.WonStages, []string{"paid"})
	equal(t, "targets.erp-main.timeout", cfg.Targets["erp-main"].Spec.(*testTarget).Timeout, 42*time.Second)
	// Both spellings set keys: neither is warned about.
	equal(t, "IgnoredEnv", cfg.IgnoredEnv(), []string(nil))
}

// Names that differ only in `-` and `_` are one environment variable name:
// refused, once per group, and the shared spelling overrides neither of
// the hyphenated entries.
func TestNamesSpelledAlikeInTheEnvironment(t *testing.T) {
	t.Setenv("DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_LIMIT", "1000") // would fail validation if applied to both
	_, err := config.Load(writeFile(t, `
targets:
  erp-main: {type: test-target, base_url: "https://erp.example.com"}
  erp_main: {type: test-target, base_url: "https://erp.example.com"}
connections:
  hubspot-eu:
    source: {type: test-source, secret: s}
    target: erp-main
  hubspot_eu:
    source: {type: test-source, secret: s}
    target: erp_main
`))
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load: got %v, want *config.Error", err)
	}
	want := []config.Problem{
		{Key: "connections.hubspot-eu", Message: "names hubspot-eu and hubspot_eu are spelled alike in environment variables " +
			"(DEALSYNC_CONNECTIONS_HUBSPOT_EU_…, where - is written _): rename all but one"},
		// The shared spelling is hubspot_eu's own (AutomaticEnv), not hubspot-eu's.
		{Key: "connections.hubspot_eu.source.limit", Message: "must be at most 10 (set by DEALSYNC_CONNECTIONS_HUBSPOT_EU_SOURCE_LIMIT)"},
		{Key: "targets.erp-main", Message: "names erp-main and erp_main are spelled alike in environment variables " +
			"(DEALSYNC_TARGETS_ERP_MAIN_…, where - is written _): rename all but one"},
	}
	equal(t, "problems", cerr.Problems, want)
}

// KeyVar names the variable that can set a key, for advice to name beside
// it: EnvVar's spelling (a `-` written `_`, an account id in capitals),
// for every key of an entry, in the file or not; none for a key of a map
// of data that the file does not write (the environment sets only keys
// the config knows), nor for the map itself.
func TestKeyVarNamesOnlyVariablesThatSetAKey(t *testing.T) {
	path := writeFile(t, `
targets:
  erp: {type: test-target, base_url: "https://erp.example"}
connections:
  crm-eu:
    source: {type: test-per-account, accounts: {"00DAb": a}}
    target: erp
`)
	t.Setenv("DEALSYNC_CONNECTIONS_CRM_EU_SOURCE_ACCOUNTS_00DAB", "from-env")
	cfg := mustLoad(t, path)
	for key, want := range map[string]string{
		"connections.crm-eu.source.accounts.00DAb": "DEALSYNC_CONNECTIONS_CRM_EU_SOURCE_ACCOUNTS_00DAB",
		"targets.erp.token":                        "DEALSYNC_TARGETS_ERP_TOKEN", // not in the file
		"targets.erp.base_url":                     "DEALSYNC_TARGETS_ERP_BASE_URL",
		"connections.crm-eu.source.accounts.222":   "", // an account the file does not write
		"connections.crm-eu.source.accounts":       "", // the map
		"targets.nowhere.token":                    "",
	} {
		if got := cfg.KeyVar(key); got != want {
			t.Errorf("KeyVar(%s) = %q, want %q", key, got, want)
		}
	}
	// The variable named is one that sets the key.
	if got := cfg.Connections["crm-eu"].Source.Spec.(*perAccountSource).Accounts["00dab"]; got != "from-env" {
		t.Errorf("the account's value is %q, want the variable's", got)
	}
}
