package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSeriesAreCountedAndServed(t *testing.T) {
	before := Read("dealsync_webhooks_total", "connection", "mt", "code", "202")
	Webhook("mt", 202, 3*time.Millisecond)
	Webhook("mt", 202, time.Millisecond)
	Webhook("mt", 999, time.Millisecond)
	before503 := Read("dealsync_webhooks_total", "connection", "mt", "code", "503")
	WebhookHeld("mt", time.Millisecond)
	Event("mt", EventDuplicate)
	Step("invoice", "mt", "ERPRateLimited", 20*time.Millisecond)

	if got := Read("dealsync_webhooks_total", "connection", "mt", "code", "202") - before; got != 2 {
		t.Errorf("202 answers counted %v, want 2", got)
	}
	if got := Read("dealsync_webhooks_total", "connection", "mt", "code", "other"); got < 1 {
		t.Errorf("an impossible status code is counted as other: %v", got)
	}
	// A 503 that holds a change is counted apart from an outage's.
	if got := Read("dealsync_webhooks_total", "connection", "mt", "code", CodeHeld); got < 1 || Read("dealsync_webhooks_total", "connection", "mt", "code", "503") != before503 {
		t.Errorf("a held delivery counted %v as %s, and under 503 too: %v", got, CodeHeld, Read("dealsync_webhooks_total", "connection", "mt", "code", "503") != before503)
	}
	if got := Read("dealsync_webhook_duration_seconds", "connection", "mt"); got < 4 {
		t.Errorf("latency samples %v, want at least 4", got)
	}
	if got := Read("dealsync_steps_total", "step", "invoice", "connection", "mt", "outcome", "ERPRateLimited"); got < 1 {
		t.Errorf("step counted %v", got)
	}

	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`dealsync_webhooks_total{code="202",connection="mt"}`,
		`dealsync_webhooks_total{code="503_held",connection="mt"}`,
		`dealsync_webhook_events_total{connection="mt",outcome="duplicate"}`,
		`dealsync_step_duration_seconds_bucket{connection="mt",step="invoice",le="0.025"}`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
