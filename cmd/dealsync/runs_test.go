package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
	"github.com/dealsync/dealsync/workflows/histories"
)

// keepHistory records a run's history for the replay test of package
// workflows, when histories.Env is set.
func keepHistory(ctx context.Context, t *testing.T, c client.Client, workflowID, runID, name string) {
	t.Helper()
	if !histories.Recording() {
		return
	}
	if _, err := histories.Record(ctx, c, filepath.Join("..", "..", histories.Dir), workflowID, runID, name); err != nil {
		t.Fatalf("recording %s: %v", name, err)
	}
}

// runJSON runs a CLI command that prints JSON and decodes its output.
func runJSON[T any](ctx context.Context, t *testing.T, args ...string) T {
	t.Helper()
	var v T
	out, err := runOut(ctx, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return v
}

// retryRuns runs `runs retry --json` with args and returns its results.
func retryRuns(ctx context.Context, t *testing.T, cfg string, args ...string) []rerun.Result {
	t.Helper()
	return runJSON[struct{ Runs []rerun.Result }](ctx, t, append([]string{"--config", cfg, "runs", "retry", "--json"}, args...)...).Runs
}

// startHubSpotCLI writes the config of a connection "hs" of HubSpot portal
// 62515 (token pat-na1-62515, won stage closedwon) invoicing to the http
// target at erpURL, with the run timeout given ("" for the default), and
// starts serve and worker with it until the test ends.
func startHubSpotCLI(ctx context.Context, t *testing.T, srv *devserver.Server, erpURL, hubspotURL, runTimeout string) (cfg, listen string) {
	t.Helper()
	listen = freeAddr(t)
	t.Setenv("HS_SECRET", "hubspot-client-secret")
	timeout := ""
	if runTimeout != "" {
		timeout = "\n  run_timeout: " + runTimeout
	}
	cfg = writeConfig(t, fmt.Sprintf(`
log: {level: error}
temporal: {address: %q}
intake: {listen: %q}
workflow:
  retry: {initial_interval: 100ms, maximum_interval: 500ms}%s
targets:
  erp: {type: http, base_url: %q}
connections:
  hs:
    target: erp
    settle_time: 100ms
    linger: 100ms
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      base_url: %s
      accounts:
        "62515": {access_token: pat-na1-62515}
`, srv.FrontendAddress(), listen, timeout, erpURL, hubspotURL))
	startCommand(ctx, t, "--config", cfg, "serve")
	startCommand(ctx, t, "--config", cfg, "worker")
	waitReady(t, "http://"+listen+"/readyz")
	return cfg, listen
}

// sendHubSpotWon delivers HubSpot's event that deal dealID of portal
// 62515 moved to closedwon, signed with the config's secret.
func sendHubSpotWon(ctx context.Context, t *testing.T, cfg, listen string, eventID int, dealID string) {
	t.Helper()
	batch := writeFile(t, filepath.Join(t.TempDir(), "batch.json"), fmt.Sprintf(`[{"eventId":%d,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":%d,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":%s,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI"}]`, eventID, time.Now().UnixMilli(), dealID))
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "hs", "--url", "http://"+listen+"/webhooks/hs", batch); err != nil {
		t.Fatal(err)
	}
}

// startedRuns are the results of runs retry that started a new run.
func startedRuns(results []rerun.Result) []rerun.Result {
	var started []rerun.Result
	for _, r := range results {
		if r.NewRun != "" {
			started = append(started, r)
		}
	}
	return started
}

// A deal whose run failed on its mapping (a country the tax table lacks)
// is invoiced by `runs retry` once the mapping is fixed, without the CRM
// sending it again: a new run of the same workflow ID with the current
// mapping, from the newest event of the deal the failed run received (a
// change sent during its settle time). A second retry finds nothing left
// to do. A run that timed out while the ERP was down is retried with
// --timed-out, a terminated one with --terminated.
func TestRunsRetryStartsFailedRunsWithTheFixedMapping(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	erp, erpURL := startSandbox(t)

	dir := t.TempDir()
	original, err := os.ReadFile("../../examples/mappings/generic-standard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mappingFile := filepath.Join(dir, "mappings", "generic-standard.yaml")
	if err := os.MkdirAll(filepath.Dir(mappingFile), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, mappingFile, string(original))
	listen := freeAddr(t)
	t.Setenv("SHOP_SECRET", "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQ=")
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: error}
temporal: {address: %q}
intake: {listen: %q}
mappings: {dir: %q, reload_interval: 100ms}
workflow:
  retry: {initial_interval: 100ms, maximum_interval: 500ms}
  run_timeout: 4s
targets:
  erp: {type: http, base_url: %q}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
    mapping: generic-standard
    settle_time: 2s
`, srv.FrontendAddress(), listen, filepath.Dir(mappingFile), erpURL))

	defer startCommand(ctx, t, "--config", cfg, "serve")()
	defer startCommand(ctx, t, "--config", cfg, "worker")()
	waitReady(t, "http://"+listen+"/readyz")

	// A filter Temporal cannot parse is a usage error (exit 2), naming it.
	if _, err := runOut(ctx, "--config", cfg, "runs", "retry", "--query", "Connection = "); exitCode(err) != 2 ||
		!strings.Contains(err.Error(), "Temporal refused the filter") {
		t.Errorf("a --query Temporal refuses: exit %d, %v; want 2 naming it", exitCode(err), err)
	}

	event := writeFile(t, filepath.Join(dir, "deal.json"), `{"event_id":"evt_ch","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D-CH","name":"Swiss deal","stage":"closed_won","previous_stage":"proposal","amount":"500.00","currency":"CHF","close_date":"2026-11-20","company":{"id":"C-CH","name":"Zurich AG","address":{"country":"CH"}}}}`)
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", "http://"+listen+"/webhooks/shop", event); err != nil {
		t.Fatal(err)
	}
	// Within the settle time the CRM sends a change of the won deal: it
	// reaches the run as a signal.
	change := writeFile(t, filepath.Join(dir, "change.json"), `{"event_id":"evt_ch_amount","occurred_at":"2026-11-20T10:05:00Z","deal":{"id":"D-CH","name":"Swiss deal","stage":"closed_won","previous_stage":"closed_won","amount":"650.00","currency":"CHF","close_date":"2026-11-20","company":{"id":"C-CH","name":"Zurich AG","address":{"country":"CH"}}}}`)
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", "http://"+listen+"/webhooks/shop", change); err != nil {
		t.Fatal(err)
	}
	c := temporalClient(ctx, t, srv)
	id := workflows.WorkflowID("shop", "D-CH")
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "CH") {
		t.Fatalf("the run should fail on the tax table: %v", err)
	}

	retry := func(args ...string) []rerun.Result { t.Helper(); return retryRuns(ctx, t, cfg, args...) }
	// Visibility is written asynchronously: wait for the failed run to be
	// listed (bounded by ctx). A dry run starts nothing.
	var dry []rerun.Result
	for len(dry) == 0 && ctx.Err() == nil {
		dry = retry("--dry-run")
		time.Sleep(100 * time.Millisecond)
	}
	if len(dry) != 1 || dry[0].WorkflowID != id || dry[0].DealID != "D-CH" || dry[0].Skipped != "dry run" || dry[0].NewRun != "" {
		t.Fatalf("dry run: %+v", dry)
	}

	fixed := strings.Replace(string(original), "      US: EXEMPT\n", "      US: EXEMPT\n      CH: EXEMPT\n", 1)
	if fixed == string(original) {
		t.Fatal("the example mapping changed: fix the test's edit")
	}
	writeFile(t, mappingFile, fixed)
	res := retry()
	if len(res) != 1 || res[0].NewRun == "" || res[0].NewRun == res[0].FailedRun {
		t.Fatalf("retry: %+v", res)
	}
	var result workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, id, res[0].NewRun).Get(ctx, &result); err != nil {
		t.Fatalf("the new run: %v", err)
	}
	invs := erp.Invoices()
	if len(invs) != 1 || invs[0].ID != result.InvoiceID || invs[0].Total != "650.00" {
		t.Fatalf("invoices %+v, run %+v", invs, result)
	}
	// The failed run stays listed as failed, but is no longer the latest.
	again := retry()
	if len(again) != 1 || again[0].NewRun != "" || !strings.Contains(again[0].Skipped, "later run") {
		t.Errorf("second retry: %+v", again)
	}
	if len(erp.Invoices()) != 1 {
		t.Errorf("%d invoices after the second retry", len(erp.Invoices()))
	}

	// An ERP down for longer than run_timeout: the run times out while
	// "pending". Only --timed-out selects it; once the ERP is back, its
	// retry invoices the deal.
	erp.SetFaults(sandbox.Faults{ErrorRate: 1})
	down := writeFile(t, filepath.Join(dir, "down.json"), `{"event_id":"evt_down","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D-DOWN","name":"Outage deal","stage":"closed_won","previous_stage":"proposal","amount":"70.00","currency":"EUR","close_date":"2026-11-20","company":{"id":"C-DOWN","name":"Down GmbH","address":{"country":"DE"}}}}`)
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", "http://"+listen+"/webhooks/shop", down); err != nil {
		t.Fatal(err)
	}
	downID := workflows.WorkflowID("shop", "D-DOWN")
	// An operator terminates another deal's run, stuck in the same outage.
	term := writeFile(t, filepath.Join(dir, "term.json"), `{"event_id":"evt_term","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":"D-TERM","name":"Stuck deal","stage":"closed_won","previous_stage":"proposal","amount":"30.00","currency":"EUR","close_date":"2026-11-20","company":{"id":"C-DOWN","name":"Down GmbH","address":{"country":"DE"}}}}`)
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", "http://"+listen+"/webhooks/shop", term); err != nil {
		t.Fatal(err)
	}
	termID := workflows.WorkflowID("shop", "D-TERM")
	if err := c.TerminateWorkflow(ctx, termID, "", "stuck in the ERP outage"); err != nil {
		t.Fatal(err)
	}
	if err := c.GetWorkflow(ctx, downID, "").Get(ctx, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "timeout") {
		t.Fatalf("the run should time out while the ERP is down: %v", err)
	}
	erp.SetFaults(sandbox.Faults{})
	var timedOut []rerun.Result
	for ctx.Err() == nil {
		if timedOut = retry("--timed-out", "--dry-run"); len(timedOut) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range retry("--dry-run") {
		if r.WorkflowID == downID {
			t.Errorf("a timed-out run selected without --timed-out: %+v", r)
		}
	}
	started := startedRuns(retry("--timed-out"))
	if len(started) != 1 || started[0].WorkflowID != downID {
		t.Fatalf("--timed-out started %+v (listed %+v)", started, timedOut)
	}
	if err := c.GetWorkflow(ctx, downID, started[0].NewRun).Get(ctx, &result); err != nil {
		t.Fatalf("the retried run: %v", err)
	}
	if n := len(erp.Invoices()); n != 2 {
		t.Errorf("%d invoices, want 2", n)
	}

	// Only --terminated selects the terminated run.
	for _, r := range retry("--timed-out", "--dry-run") {
		if r.WorkflowID == termID {
			t.Errorf("a terminated run selected without --terminated: %+v", r)
		}
	}
	started = startedRuns(retry("--terminated"))
	if len(started) != 1 || started[0].WorkflowID != termID {
		t.Fatalf("--terminated started %+v", started)
	}
	if err := c.GetWorkflow(ctx, termID, started[0].NewRun).Get(ctx, &result); err != nil {
		t.Fatalf("the retried terminated run: %v", err)
	}
	if n := len(erp.Invoices()); n != 3 {
		t.Errorf("%d invoices, want 3", n)
	}
}

// A HubSpot deal whose invoice was created but whose write-back was
// refused (a property the portal lacked) is written back by `runs retry
// --writeback` once fixed: a new run that only writes the existing invoice
// back, with no second invoice. A deal whose run timed out while HubSpot
// answered 503 to its write-back is written back by `--writeback
// --timed-out` once HubSpot is back.
func TestRunsRetryWriteBack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	erp, erpURL := startSandbox(t)
	hs := hubspotfake.New()
	defer hs.Close()
	hs.AddPortal("62515", "pat-na1-62515")
	hs.PutDeal("62515", hubspotfake.Deal{ID: "4711",
		Properties: hubspotfake.Props("dealname", "Renewal", "dealstage", "closedwon", "amount", "300.00",
			"closedate", "2026-11-20T10:00:00.000Z", "deal_currency_code", "EUR"),
		Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
	})
	hs.PutDeal("62515", hubspotfake.Deal{ID: "4712",
		Properties: hubspotfake.Props("dealname", "Upsell", "dealstage", "closedwon", "amount", "120.00",
			"closedate", "2026-11-21T10:00:00.000Z", "deal_currency_code", "EUR"),
		Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
	})
	hs.PutCompany("62515", hubspotfake.Object{ID: "5471", Properties: hubspotfake.Props("name", "Renew GmbH")})
	hs.FailWriteBacks(hubspotfake.Fault{Status: http.StatusBadRequest})

	// run_timeout longer than a workflow task's heartbeat (8 s): only then
	// does a run whose local activities are still retried record the steps
	// done.
	cfg, listen := startHubSpotCLI(ctx, t, srv, erpURL, hs.URL, "12s")
	sendHubSpotWon(ctx, t, cfg, listen, 9001, "4711")
	c := temporalClient(ctx, t, srv)
	id := workflows.DealWorkflowID("hs", "62515", "4711")
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "writing it back") {
		t.Fatalf("the run should fail on its write-back: %v", err)
	}
	if n, wb := len(erp.Invoices()), hs.WriteBacks("62515", "4711"); n != 1 || wb != 0 {
		t.Fatalf("%d invoices, %d write-backs after the failed run", n, wb)
	}

	retry := func(args ...string) []rerun.Result { t.Helper(); return retryRuns(ctx, t, cfg, args...) }
	for ctx.Err() == nil && len(retry("--writeback", "--dry-run")) == 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if plain := retry("--dry-run"); len(plain) != 0 {
		t.Errorf("a run with an invoice selected without --writeback: %+v", plain)
	}
	res := retry("--writeback")
	if len(res) != 1 || res[0].NewRun == "" {
		t.Fatalf("retry --writeback: %+v", res)
	}
	var result workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, id, res[0].NewRun).Get(ctx, &result); err != nil {
		t.Fatalf("the write-back run: %v", err)
	}
	if summary, details := runMetadata(ctx, t, c, id); !strings.Contains(summary, "· write invoice ") || !strings.HasSuffix(details, "\n- started by dealsync runs retry") {
		t.Errorf("the write-back run says %q, details %q; want its write-back, started by runs retry", summary, details)
	}
	invs := erp.Invoices()
	if len(invs) != 1 || result.InvoiceID != invs[0].ID || hs.WriteBacks("62515", "4711") != 1 {
		t.Fatalf("invoices %+v, run %+v, %d write-backs", invs, result, hs.WriteBacks("62515", "4711"))
	}
	deal, _ := hs.Deal("62515", "4711")
	if p := deal.Properties["erp_invoice_id"]; p == nil || *p != invs[0].ID {
		t.Errorf("erp_invoice_id on the deal: %v", p)
	}
	if again := retry("--writeback"); len(again) != 1 || again[0].NewRun != "" || !strings.Contains(again[0].Skipped, "later run") {
		t.Errorf("second retry --writeback: %+v", again)
	}
	keepHistory(ctx, t, c, id, res[0].FailedRun, "hubspot-writeback-failed")
	keepHistory(ctx, t, c, id, res[0].NewRun, "hubspot-writeback-only-rerun")

	// HubSpot down for longer than run_timeout: the run of deal 4712
	// invoices, then retries its write-back until it times out
	// (SyncStatus "invoiced").
	const down = 1000
	faults := make([]hubspotfake.Fault, down)
	for i := range faults {
		faults[i] = hubspotfake.Fault{Status: http.StatusServiceUnavailable}
	}
	hs.FailWriteBacks(faults...)
	sendHubSpotWon(ctx, t, cfg, listen, 9002, "4712")
	id2 := workflows.DealWorkflowID("hs", "62515", "4712")
	if err := c.GetWorkflow(ctx, id2, "").Get(ctx, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "timeout") {
		t.Fatalf("the run should time out while HubSpot is down: %v", err)
	}
	if left := hs.ClearWriteBackFaults(); left == down || len(erp.Invoices()) != 2 || hs.WriteBacks("62515", "4712") != 0 {
		t.Fatalf("%d write-back faults left of %d, %d invoices, %d write-backs of 4712", left, down, len(erp.Invoices()), hs.WriteBacks("62515", "4712"))
	}
	var listed []rerun.Result
	for ctx.Err() == nil {
		if listed = retry("--writeback", "--timed-out", "--dry-run"); len(listed) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range retry("--writeback", "--dry-run") {
		if r.WorkflowID == id2 {
			t.Errorf("a timed-out run selected without --timed-out: %+v", r)
		}
	}
	started := startedRuns(retry("--writeback", "--timed-out"))
	if len(started) != 1 || started[0].WorkflowID != id2 {
		t.Fatalf("--writeback --timed-out started %+v (listed %+v)", started, listed)
	}
	if err := c.GetWorkflow(ctx, id2, started[0].NewRun).Get(ctx, &result); err != nil {
		t.Fatalf("the write-back run of 4712: %v", err)
	}
	keepHistory(ctx, t, c, id2, started[0].FailedRun, "hubspot-writeback-timed-out")
	// At least one write-back: the timed-out run's own retries may still
	// write the same values for a few seconds after its timeout, until the
	// worker's next workflow task heartbeat fails (docs/limitations.md).
	if n, wb := len(erp.Invoices()), hs.WriteBacks("62515", "4712"); n != 2 || wb < 1 || result.InvoiceID != erp.Invoices()[1].ID {
		t.Errorf("%d invoices, %d write-backs of 4712, run %+v", n, wb, result)
	}
	if deal, _ := hs.Deal("62515", "4712"); deal.Properties["erp_invoice_id"] == nil || *deal.Properties["erp_invoice_id"] != erp.Invoices()[1].ID {
		t.Errorf("erp_invoice_id of 4712: %v, want %s", deal.Properties["erp_invoice_id"], erp.Invoices()[1].ID)
	}

	// A write-back-only run that times out too (HubSpot refuses the
	// property, then is down): it carries SyncStatus "invoiced" and the
	// invoice's id from its start, so `runs retry --timed-out` does not
	// invoice the deal again and `--writeback --timed-out` finds it.
	hs.PutDeal("62515", hubspotfake.Deal{ID: "4713",
		Properties: hubspotfake.Props("dealname", "Extra", "dealstage", "closedwon", "amount", "50.00",
			"closedate", "2026-11-22T10:00:00.000Z", "deal_currency_code", "EUR"),
		Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
	})
	// Several refusals: a write-back still retried by the worker for the
	// timed-out run of 4712 may take one first.
	for range 5 {
		hs.FailWriteBacks(hubspotfake.Fault{Status: http.StatusBadRequest})
	}
	sendHubSpotWon(ctx, t, cfg, listen, 9003, "4713")
	id3 := workflows.DealWorkflowID("hs", "62515", "4713")
	var first3 workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, id3, "").Get(ctx, &first3); err == nil || !strings.Contains(err.Error(), "writing it back") {
		t.Fatalf("the run of 4713 should fail on its write-back: %v (%+v, %d write-backs, %d faults left)", err, first3, hs.WriteBacks("62515", "4713"), hs.ClearWriteBackFaults())
	}
	inv3 := erp.Invoices()[2].ID
	hs.ClearWriteBackFaults()
	hs.FailWriteBacks(faults...)
	var wbOnly []rerun.Result
	for ctx.Err() == nil {
		if wbOnly = startedRuns(retry("--writeback")); len(wbOnly) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(wbOnly) != 1 || wbOnly[0].WorkflowID != id3 {
		t.Fatalf("retry --writeback of 4713 started %+v", wbOnly)
	}
	if err := c.GetWorkflow(ctx, id3, wbOnly[0].NewRun).Get(ctx, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "timeout") {
		t.Fatalf("the write-back-only run should time out while HubSpot is down: %v", err)
	}
	hs.ClearWriteBackFaults()
	query := `SyncStatus = "invoiced" AND ErpInvoiceId = "` + inv3 + `" AND ExecutionStatus = "TimedOut"`
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetRunId() == wbOnly[0].NewRun {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the timed-out write-back-only run is not listed by %s (last error %v)", query, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range startedRuns(retry("--timed-out")) {
		if r.WorkflowID == id3 {
			t.Fatalf("runs retry --timed-out started a full run of a deal that has invoice %s: %+v", inv3, r)
		}
	}
	again3 := startedRuns(retry("--writeback", "--timed-out"))
	if len(again3) != 1 || again3[0].WorkflowID != id3 {
		t.Fatalf("--writeback --timed-out after the write-back-only run timed out: %+v", again3)
	}
	if err := c.GetWorkflow(ctx, id3, again3[0].NewRun).Get(ctx, &result); err != nil || result.InvoiceID != inv3 ||
		len(erp.Invoices()) != 3 || hs.WriteBacks("62515", "4713") < 1 { // at least one: as for 4712
		t.Fatalf("4713 written back: %v, run %+v, %d invoices, %d write-backs", err, result, len(erp.Invoices()), hs.WriteBacks("62515", "4713"))
	}

	// A run canceled while it retries its write-back (HubSpot down) ends
	// Canceled with SyncStatus "writeback_failed": `runs retry --canceled`
	// lists it, skipped with the command that writes it back, and that
	// command (`--writeback --canceled`) selects it and writes it back.
	hs.PutDeal("62515", hubspotfake.Deal{ID: "4714",
		Properties: hubspotfake.Props("dealname", "Canceled", "dealstage", "closedwon", "amount", "70.00",
			"closedate", "2026-11-23T10:00:00.000Z", "deal_currency_code", "EUR"),
		Companies: []hubspotfake.Association{{ID: "5471", Type: "deal_to_company"}},
	})
	hs.FailWriteBacks(faults...)
	sendHubSpotWon(ctx, t, cfg, listen, 9004, "4714")
	id4 := workflows.DealWorkflowID("hs", "62515", "4714")
	for ctx.Err() == nil && (len(erp.Invoices()) != 4 || hs.WriteBackAttempts("62515", "4714") == 0) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.CancelWorkflow(ctx, id4, ""); err != nil {
		t.Fatal(err)
	}
	var canceled *temporal.CanceledError
	if err := c.GetWorkflow(ctx, id4, "").Get(ctx, nil); !errors.As(err, &canceled) {
		t.Fatalf("the run of 4714 should end canceled: %v", err)
	}
	hs.ClearWriteBackFaults()
	inv4 := erp.Invoices()[3].ID
	var skipped4 []rerun.Result
	for ctx.Err() == nil {
		skipped4 = nil
		for _, r := range retry("--canceled", "--dry-run") {
			if r.WorkflowID == id4 {
				skipped4 = append(skipped4, r)
			}
		}
		if len(skipped4) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(skipped4) != 1 || !strings.Contains(skipped4[0].Skipped, "runs retry --writeback --canceled") {
		t.Fatalf("runs retry --canceled on the run canceled during its write-back: %+v", skipped4)
	}
	wb4 := startedRuns(retry("--writeback", "--canceled"))
	if len(wb4) != 1 || wb4[0].WorkflowID != id4 {
		t.Fatalf("--writeback --canceled started %+v", wb4)
	}
	if err := c.GetWorkflow(ctx, id4, wb4[0].NewRun).Get(ctx, &result); err != nil || result.InvoiceID != inv4 ||
		len(erp.Invoices()) != 4 || hs.WriteBacks("62515", "4714") != 1 {
		t.Fatalf("4714 written back: %v, run %+v, %d invoices, %d write-backs", err, result, len(erp.Invoices()), hs.WriteBacks("62515", "4714"))
	}
}

// Review: `runs retry --dry-run` printed "1 failed runs, 0 started again"
// beside "skipped: dry run". A dry run says how many would start again,
// in the singular when it is one; a listing that failed is said.
func TestPrintRetriesSummary(t *testing.T) {
	would := rerun.Result{WorkflowID: "invoice/shop/D-1", FailedRun: "r1", Skipped: "dry run"}
	skipped := rerun.Result{WorkflowID: "invoice/shop/D-2", FailedRun: "r2", Skipped: "a later run r3 (Completed) exists"}
	for _, c := range []struct {
		results    []rerun.Result
		dryRun     bool
		terminated bool // the selection takes terminated runs too: not all failed
		err        error
		want       string
	}{
		{[]rerun.Result{would}, true, false, nil, "1 failed run, 1 would start again\n"},
		{[]rerun.Result{would, skipped}, true, false, nil, "2 failed runs, 1 would start again\n"},
		{[]rerun.Result{would, skipped}, true, true, nil, "2 runs, 1 would start again\n"},
		{[]rerun.Result{{WorkflowID: "invoice/shop/D-1", NewRun: "r4"}}, false, false, nil, "1 failed run, 1 started again\n"},
		{[]rerun.Result{skipped}, false, false, nil, "1 failed run, 0 started again\n"},
		{nil, false, false, errors.New("listing failed runs: context deadline exceeded"), "stopped before every selected run was read (the error follows): 0 failed runs, 0 started again\n"},
	} {
		var out strings.Builder
		printRetries(&out, rerun.Options{TaskQueue: "dealsync", DryRun: c.dryRun, Terminated: c.terminated}, c.results, c.err, []string{"shop"})
		lines := strings.SplitAfter(out.String(), "\n")
		if got := lines[len(lines)-2]; got != c.want {
			t.Errorf("%d results, dry run %v: summary %q, want %q", len(c.results), c.dryRun, got, c.want)
		}
	}
	// Runs none of whose connections the config has: the config may be
	// the wrong one (--config forgotten), which is said; one run of a
	// configured connection among them, and it is not.
	gone := rerun.Result{WorkflowID: "invoice/old/D-1", FailedRun: "r1", Skipped: `connection "old" is no longer configured`, Unconfigured: true}
	for _, c := range []struct {
		results []rerun.Result
		said    bool
	}{{[]rerun.Result{gone, gone}, true}, {[]rerun.Result{gone, skipped}, false}, {nil, false}} {
		var out strings.Builder
		printRetries(&out, rerun.Options{TaskQueue: "dealsync"}, c.results, nil, []string{"demo", "shop"})
		if said := strings.Contains(out.String(), "none of these runs' connections is in the config read (it has demo, shop): "); said != c.said {
			t.Errorf("%d results: said %v, want %v\n%s", len(c.results), said, c.said, out.String())
		}
	}
	// A write-back of completed runs starts runs of IDs that may never
	// have run; a limit reached says that more may be left.
	written := rerun.Result{WorkflowID: "invoice/shop/D-1", FailedRun: "r1", NewRun: "r5", NewWorkflowID: "writeback/shop/D-1"}
	var out strings.Builder
	printRetries(&out, rerun.Options{TaskQueue: "dealsync", WriteBack: true, Completed: true, Limit: 1}, []rerun.Result{written}, nil, []string{"shop"})
	for _, want := range []string{"invoice/shop/D-1  started run r5 of writeback/shop/D-1\n",
		"1 run, 1 started (--limit 1 reached: the runs not read yet are left; run it again for them)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output:\n%s\nlacks %q", out.String(), want)
		}
	}
}

// The workers started runs with a retry policy a DEALSYNC_* variable gave
// them (maximum_attempts 2), which the operator's shell does not set:
// `runs retry` (and --dry-run) warns, naming the setting, its variable
// and both values, that the new run retries without limit; it starts the
// run all the same, with its own config's policy.
func TestRunsRetryWarnsOfAnotherRetryPolicyThanTheFailedRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Both shells map with the example mapping (no mapping warning); only
	// the workers' (and the intake's) limit the attempts.
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_MAPPING", "generic-standard")
	t.Setenv("DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS", "2")
	cfg, c, id, failedRun := failShopRunOnTheTaxTable(ctx, t)
	if err := os.Unsetenv("DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS"); err != nil {
		t.Fatal(err)
	}

	const want = "WARNING the settings differ from the failed run's (failed run → new run): workflow.retry.maximum_attempts (env DEALSYNC_WORKFLOW_RETRY_MAXIMUM_ATTEMPTS) 2 → 0 (unlimited)\n"
	var dry []rerun.Result
	for len(dry) == 0 && ctx.Err() == nil {
		dry = retryRuns(ctx, t, cfg, "--dry-run")
		time.Sleep(100 * time.Millisecond)
	}
	if len(dry) != 1 || dry[0].Skipped != "dry run" || dry[0].MappingWarning != "" || "WARNING "+dry[0].SettingsWarning+"\n" != want {
		t.Fatalf("dry run: %+v\nwant the settings warning %q and no mapping warning", dry, want)
	}
	out, err := runOut(ctx, "--config", cfg, "runs", "retry", "--dry-run")
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("runs retry --dry-run: %v\n%s\nwant the line %q", err, out, want)
	}
	out, err = runOut(ctx, "--config", cfg, "runs", "retry")
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("runs retry: %v\n%s\nwant the line %q", err, out, want)
	}
	newRun := c.GetWorkflow(ctx, id, "").GetRunID()
	if newRun == failedRun {
		t.Fatalf("no new run of %s", id)
	}
	// The new run's input has the shell's policy, as the warning said.
	it := c.GetWorkflowHistory(ctx, id, newRun, false, 0)
	first, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.InvoiceDealInput
	if err := converter.GetDefaultDataConverter().FromPayloads(first.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil || in.Retry.MaximumAttempts != 0 {
		t.Fatalf("the new run's input: %v, retry %+v; want maximum_attempts 0", err, in.Retry)
	}
}
