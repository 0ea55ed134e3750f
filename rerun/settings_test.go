package rerun

import (
	"strings"
	"testing"
	"time"

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
	r.noteSettings(was, was, false)
	if r.SettingsWarning != "" {
		t.Errorf("the same settings: %q", r.SettingsWarning)
	}
	now := was
	now.ActivityTimeout, now.SettleTime, now.Linger, now.LocalCalls = 45*time.Second, 0, time.Minute, false
	now.Retry.MaximumInterval = 90 * time.Minute
	r = Result{}
	r.noteSettings(was, now, false)
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
	r.noteSettings(was, now, true)
	if strings.Contains(r.SettingsWarning, "settle_time") || strings.Contains(r.SettingsWarning, "linger") || !strings.Contains(r.SettingsWarning, "activity_timeout") {
		t.Errorf("a write-back run's warning: %q", r.SettingsWarning)
	}
	old := was
	old.ActivityTimeout, old.Retry.InitialInterval = 0, 0
	r = Result{}
	r.noteSettings(old, was, false)
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
	r.noteSettings(was, now, false)
	want := `the ERP target (connections.shop.target or account_targets, or a DEALSYNC_TARGETS_ variable) target "books" (xero) → target "books2" (quickbooks)`
	if !strings.Contains(r.SettingsWarning, want) {
		t.Errorf("warning %q does not say %q", r.SettingsWarning, want)
	}
	for name, c := range map[string]struct {
		was, now  workflows.InvoiceDealInput
		writeBack bool
	}{
		"same target":         {was, was, false},
		"older release's run": {workflows.InvoiceDealInput{Connection: "shop"}, now, false},
		"write-back-only run": {was, now, true},
	} {
		r = Result{}
		r.noteSettings(c.was, c.now, c.writeBack)
		if r.SettingsWarning != "" {
			t.Errorf("%s: %q", name, r.SettingsWarning)
		}
	}
}
