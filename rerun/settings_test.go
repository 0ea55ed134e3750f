package rerun

import (
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/workflows"
)

// A retry's settings warning names each setting that differs, old → new,
// with its key and variable; the same settings, or a failed run's input
// without a setting (an older release's), warn of nothing; a write-back
// run's settle time and linger, which it does not wait, are not compared.
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
	r = Result{}
	r.noteSettings(was, now, false)
	for _, want := range []string{
		"workflow.activity_timeout (env DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT) 30s → 45s",
		"workflow.external_calls (env DEALSYNC_WORKFLOW_EXTERNAL_CALLS) local → activity",
		"connections.shop.settle_time (env DEALSYNC_CONNECTIONS_SHOP_SETTLE_TIME) 10s → 0s",
		"connections.shop.linger (env DEALSYNC_CONNECTIONS_SHOP_LINGER) 2m0s → 1m0s",
	} {
		if !strings.Contains(r.SettingsWarning, want) {
			t.Errorf("warning %q does not say %q", r.SettingsWarning, want)
		}
	}
	if strings.Contains(r.SettingsWarning, "retry") {
		t.Errorf("warning %q names the retry policy, which is the same", r.SettingsWarning)
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
