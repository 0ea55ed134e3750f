package rerun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/workflows"
)

// A retry's settings warning names each setting that differs, old → new,
// with its key and variable; the same settings, or a failed run's input
// without a setting (an older release's), warn of nothing; a write-back
// run's settle time and linger, which it does not wait, are not compared.
// Durations are written as the config writes them (2m, 1h30m), not as Go
// prints them (2m0s, 1h30m0s).
func TestSettingsWarningNamesWhatDiffers(t *testing.T) {
	was := workflows.InvoiceDealInput{Connection: "shop", ActivityTimeout: 30 * time.Second, SettleTime: 10 * time.Second, Linger: 2 * time.Minute, LocalCalls: true,
		Retry: workflows.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 2}}
	var r Result
	r.noteSettings(was, was, false, config.EnvVar)
	if r.SettingsWarning != "" {
		t.Errorf("the same settings: %q", r.SettingsWarning)
	}
	now := was
	now.ActivityTimeout, now.SettleTime, now.Linger, now.LocalCalls = 45*time.Second, 0, time.Minute, false
	now.Retry.MaximumInterval = 90 * time.Minute
	r = Result{}
	r.noteSettings(was, now, false, config.EnvVar)
	const want = "the settings differ from the failed run's (failed run → new run): " +
		"workflow.retry.maximum_interval (env DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL) 1m → 1h30m; " +
		"workflow.activity_timeout (env DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT) 30s → 45s; " +
		"workflow.external_calls (env DEALSYNC_WORKFLOW_EXTERNAL_CALLS) local → activity; " +
		"connections.shop.settle_time (env DEALSYNC_CONNECTIONS_SHOP_SETTLE_TIME) 10s → 0s; " +
		"connections.shop.linger (env DEALSYNC_CONNECTIONS_SHOP_LINGER) 2m → 1m"
	if r.SettingsWarning != want {
		t.Errorf("warning\n%q, want\n%q", r.SettingsWarning, want)
	}
	r = Result{}
	r.noteSettings(was, now, true, config.EnvVar)
	if strings.Contains(r.SettingsWarning, "settle_time") || strings.Contains(r.SettingsWarning, "linger") || !strings.Contains(r.SettingsWarning, "activity_timeout") {
		t.Errorf("a write-back run's warning: %q", r.SettingsWarning)
	}
	old := was
	old.ActivityTimeout, old.Retry.InitialInterval = 0, 0
	r = Result{}
	r.noteSettings(old, was, false, config.EnvVar)
	if r.SettingsWarning != "" {
		t.Errorf("an input without the activity timeout and initial interval: %q", r.SettingsWarning)
	}
}

// A retry that starts its run for another ERP target than the failed
// run's (a target changed on purpose, or a shell without the workers'
// DEALSYNC_TARGETS_ variables) says so, naming both; a run of an older
// release (no target pinned) and a write-back run (no ERP step) do not.
func TestSettingsWarningNamesAChangedTarget(t *testing.T) {
	books := connectors.IdentifyTarget("books", "xero", nil)
	other := connectors.IdentifyTarget("books2", "quickbooks", nil)
	was := workflows.InvoiceDealInput{Connection: "shop", ERPTarget: &books}
	now := was
	now.ERPTarget = &other
	var r Result
	r.noteSettings(was, now, false, nil)
	want := `the ERP target (connections.shop.target or account_targets, or a DEALSYNC_TARGETS_ variable) target "books" (xero) → target "books2" (quickbooks)`
	if !strings.Contains(r.SettingsWarning, want) {
		t.Errorf("warning %q does not say %q", r.SettingsWarning, want)
	}
	// The target of a base_url written with its host's trailing dot, as
	// this release identifies it, and as the release before pinned it.
	dotted := connectors.IdentifyTarget("books", "http", targetSettings{connectors.URLSetting("base_url", "https://erp.example./v1")})
	pinnedBefore := connectors.IdentifyTarget("books", "http", targetSettings{{Key: "base_url", Value: "https://erp.example./v1"}})
	for name, c := range map[string]struct {
		was, now  workflows.InvoiceDealInput
		writeBack bool
	}{
		"same target": {was, was, false},
		"same target, pinned by the release before": {workflows.InvoiceDealInput{Connection: "shop", ERPTarget: &pinnedBefore},
			workflows.InvoiceDealInput{Connection: "shop", ERPTarget: &dotted}, false},
		"older release's run": {workflows.InvoiceDealInput{Connection: "shop"}, now, false},
		"write-back-only run": {was, now, true},
	} {
		r = Result{}
		r.noteSettings(c.was, c.now, c.writeBack, nil)
		if r.SettingsWarning != "" {
			t.Errorf("%s: %q", name, r.SettingsWarning)
		}
	}
}

// The settings warning names each key's variable as the config spells it
// (Options.KeyVar: config.Config.KeyVar), the one connector advice names
// too (connectors.Keys): a connection name's `-` written `_`, and, where
// that spelling is also another key's (connection shop's account acct_linger
// in account_targets), the spelling with the hyphens, the one that sets
// the key. Without KeyVar no variable is named.
func TestSettingsWarningNamesTheVariableTheConfigReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(path, []byte(`
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"}
connections:
  shop-eu:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
  shop:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
    account_targets: {acct_linger: erp}
  shop-account-targets-acct:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
`), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() *config.Config {
		t.Helper()
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := load()
	warning := func(connection string, keyVar func(string) string) string {
		was := workflows.InvoiceDealInput{Connection: connection, Linger: 2 * time.Minute}
		now := was
		now.Linger = time.Hour
		var r Result
		r.noteSettings(was, now, false, keyVar)
		return r.SettingsWarning
	}
	for connection, want := range map[string]string{
		"shop-eu":                   "connections.shop-eu.linger (env DEALSYNC_CONNECTIONS_SHOP_EU_LINGER) 2m → 1h",
		"shop-account-targets-acct": "connections.shop-account-targets-acct.linger (env DEALSYNC_CONNECTIONS_SHOP-ACCOUNT-TARGETS-ACCT_LINGER) 2m → 1h",
	} {
		got := warning(connection, cfg.KeyVar)
		if !strings.HasSuffix(got, "(failed run → new run): "+want) {
			t.Errorf("%s: warning %q, want it to say %q", connection, got, want)
		}
		// Connector advice names the same variable.
		advice := connectors.Env{ConfigKey: "connections." + connection, KeyVar: cfg.KeyVar}.TargetKeys().Key("linger")
		_, variable, _ := strings.Cut(advice, " (or ")
		if variable == "" || !strings.Contains(got, " (env "+variable+" ") {
			t.Errorf("%s: advice names %q, the warning %q", connection, advice, want)
		}
	}
	// The variable named sets the key.
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP-ACCOUNT-TARGETS-ACCT_LINGER", "7m")
	if got := load().Connections["shop-account-targets-acct"].Linger; got != 7*time.Minute {
		t.Errorf("the variable the warning names sets linger to %s, want 7m", got)
	}
	if got := warning("shop-eu", nil); !strings.HasSuffix(got, ": connections.shop-eu.linger 2m → 1h") {
		t.Errorf("without KeyVar: %q", got)
	}
}

// targetSettings is a target config that names the settings it holds.
type targetSettings []connectors.Setting

func (s targetSettings) IdentifyingSettings() []connectors.Setting { return s }
