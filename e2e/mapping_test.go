package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/workflows"
)

// A mapping file in use by the demo connection: a good deal is invoiced
// with the mapping's name and hash in the run's memo; a deal the mapping
// cannot map fails its run at once (no retries) with a message naming the
// mapping, the field, the expression and the value.
func TestMappingFileEndToEnd(t *testing.T) {
	example, err := filepath.Abs("../examples/mappings/generic-standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(cfgPath, []byte("mappings:\n  files: ["+example+"]\nconnections:\n  demo:\n    mapping: generic-standard\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, stackOptions{configFile: cfgPath})
	m, ok := s.cfg.Mappings.Loaded.Get("generic-standard")
	if !ok {
		t.Fatal("mapping not loaded")
	}

	t.Run("mapped run records the mapping version", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_map_ok", "D-MAP-OK", func(d map[string]any) {
			d["company"].(map[string]any)["address"] = map[string]any{"country": "DE"}
		})})
		if r.status != http.StatusAccepted {
			t.Fatalf("delivery: %d %s", r.status, r.body)
		}
		var out workflows.InvoiceDealResult
		if err := s.waitRun(t, r.parsed.Results[0].WorkflowID, &out); err != nil {
			t.Fatalf("run failed: %v", err)
		}
		if out.Mapping != "generic-standard" || out.MappingHash != m.Hash() {
			t.Fatalf("run used %s@%s, want generic-standard@%s", out.Mapping, out.MappingHash, m.Hash())
		}
		if n := s.invoicesFor("DS-D-MAP-OK"); n != 1 {
			t.Fatalf("%d invoices with the mapped reference DS-D-MAP-OK, want 1", n)
		}
		desc, err := s.Client.DescribeWorkflowExecution(context.Background(), r.parsed.Results[0].WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		var hash string
		if err := converter.GetDefaultDataConverter().FromPayload(desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[workflows.MemoMappingHash], &hash); err != nil || hash != m.Hash() {
			t.Fatalf("memo %s = %q (%v), want %s", workflows.MemoMappingHash, hash, err, m.Hash())
		}
		s.keepHistory(t, r.parsed.Results[0].WorkflowID, "mapping-file-invoiced")
	})

	t.Run("mapping error fails the run without retrying", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_map_bad", "D-MAP-BAD", func(d map[string]any) {
			d["company"].(map[string]any)["address"] = map[string]any{"country": "CH"}
		})})
		if r.status != http.StatusAccepted {
			t.Fatalf("delivery: %d %s", r.status, r.body)
		}
		err := s.waitRun(t, r.parsed.Results[0].WorkflowID, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("run error %v, want an application error", err)
		}
		if appErr.Type() != activities.ErrTypeMapping || !appErr.NonRetryable() {
			t.Fatalf("failure type %q non-retryable %v, want %s, non-retryable", appErr.Type(), appErr.NonRetryable(), activities.ErrTypeMapping)
		}
		for _, frag := range []string{`mapping "generic-standard"`, "field lines[0].tax_code", `lookup("tax_codes", deal.company.address.country)`, `"CH"`,
			// The run mapped with its snapshot, which a Reset replays.
			"; this is the run's mapping as it started (hash " + m.Hash() + "), which a Web UI Reset replays; dealsync runs retry uses the mapping as it is now"} {
			if !strings.Contains(appErr.Error(), frag) {
				t.Errorf("failure message %q does not contain %q", appErr.Error(), frag)
			}
		}
		if n := s.invoicesFor("DS-D-MAP-BAD"); n != 0 {
			t.Fatalf("%d invoices for a failed mapping", n)
		}
		s.keepHistory(t, r.parsed.Results[0].WorkflowID, "mapping-file-mapping-failed")
	})
}
