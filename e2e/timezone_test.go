package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/dealsync/dealsync/workflows"
)

// A mapping's time_zone reaches the ERP through a real run: a deal won at
// 23:30 UTC on 30 November, sent with that moment as its close date, is
// invoiced on 1 December by a connection whose mapping dates in Tokyo, and
// its payment terms count from there.
func TestTimeZoneEndToEnd(t *testing.T) {
	dir := t.TempDir()
	mappingPath := filepath.Join(dir, "tokyo.yaml")
	if err := os.WriteFile(mappingPath, []byte("name: tokyo\ntime_zone: Asia/Tokyo\ndefaults:\n  payment_terms_days: 14\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(cfgPath, []byte("mappings:\n  files: ["+mappingPath+"]\nconnections:\n  demo:\n    mapping: tokyo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, stackOptions{configFile: cfgPath})

	r := s.send(t, delivery{body: event("evt_tz", "D-TZ", func(d map[string]any) {
		d["close_date"] = "2026-11-30T23:30:00Z"
	})})
	if r.status != http.StatusAccepted {
		t.Fatalf("delivery: %d %s", r.status, r.body)
	}
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, r.parsed.Results[0].WorkflowID, &out); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	found := 0
	for _, inv := range s.Sandbox.Invoices() {
		if inv.Reference != "D-TZ" {
			continue
		}
		found++
		if inv.IssueDate != "2026-12-01" || inv.DueDate != "2026-12-15" {
			t.Errorf("invoice dated %s, due %s; want 2026-12-01 (Tokyo), due 2026-12-15", inv.IssueDate, inv.DueDate)
		}
	}
	if found != 1 {
		t.Fatalf("%d invoices for D-TZ, want 1", found)
	}
}
