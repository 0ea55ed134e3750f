package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// startShopCLI writes the config of a connection "shop" (generic source,
// no settle time) invoicing to the http target at erpURL, with the
// example mappings and the connection mapping given ("" for none: the
// built-in one), and starts serve and worker with it until the test ends.
func startShopCLI(ctx context.Context, t *testing.T, srv *devserver.Server, erpURL, mapping string) (cfg, listen string) {
	t.Helper()
	mappings, err := filepath.Abs("../../examples/mappings")
	if err != nil {
		t.Fatal(err)
	}
	if mapping != "" {
		mapping = "\n    mapping: " + mapping
	}
	listen = freeAddr(t)
	t.Setenv("SHOP_SECRET", "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQ=")
	cfg = writeConfig(t, fmt.Sprintf(`
log: {level: error}
temporal: {address: %q}
intake: {listen: %q}
mappings: {dir: %q}
workflow:
  retry: {initial_interval: 100ms, maximum_interval: 500ms}
targets:
  erp: {type: http, base_url: %q}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp%s
`, srv.FrontendAddress(), listen, mappings, erpURL, mapping))
	startCommand(ctx, t, "--config", cfg, "serve")
	startCommand(ctx, t, "--config", cfg, "worker")
	waitReady(t, "http://"+listen+"/readyz")
	return cfg, listen
}

// sendShopWon delivers the won event of deal id, of a company in country,
// to the shop connection, and returns the deal's workflow ID.
func sendShopWon(ctx context.Context, t *testing.T, cfg, listen, id, country, amount, currency string) string {
	t.Helper()
	event := writeFile(t, filepath.Join(t.TempDir(), "deal.json"), fmt.Sprintf(`{"event_id":"evt_%s","occurred_at":"2026-11-20T10:00:00Z","deal":{"id":%q,"name":"Deal %s","stage":"closed_won","previous_stage":"proposal","amount":%q,"currency":%q,"close_date":"2026-11-20","company":{"id":"C-%s","name":"Company %s","address":{"country":%q}}}}`,
		id, id, id, amount, currency, id, id, country))
	if err := run(ctx, "--config", cfg, "webhook", "send", "--connection", "shop", "--url", "http://"+listen+"/webhooks/shop", event); err != nil {
		t.Fatal(err)
	}
	return workflows.WorkflowID("shop", id)
}

// failShopRunOnTheTaxTable starts Temporal, the sandbox ERP and the shop
// connection's serve and worker (startShopCLI, its config naming no
// mapping: the DEALSYNC_* variables the test set give the workers theirs),
// and sends the won deal D-CH of a Swiss company, whose run fails on the
// example mapping's tax table. It returns the config, a Temporal client,
// the deal's workflow ID and the failed run's ID.
func failShopRunOnTheTaxTable(ctx context.Context, t *testing.T) (cfg string, c client.Client, id, failedRun string) {
	t.Helper()
	srv := startTemporal(ctx, t, false)
	_, erpURL := startSandbox(t)
	cfg, listen := startShopCLI(ctx, t, srv, erpURL, "")
	id = sendShopWon(ctx, t, cfg, listen, "D-CH", "CH", "500.00", "CHF")
	c = temporalClient(ctx, t, srv)
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "CH") {
		t.Fatalf("the run should fail on the example mapping's tax table: %v", err)
	}
	return cfg, c, id, c.GetWorkflow(ctx, id, "").GetRunID()
}

// runsListing is the --json output of `runs list`, its runs both as the
// CLI's type and as the JSON objects printed.
type runsListing struct {
	Query   string
	More    bool
	Runs    []rerun.Run
	Objects []map[string]any
}

func listRuns(ctx context.Context, t *testing.T, cfg string, args ...string) runsListing {
	t.Helper()
	args = append([]string{"--config", cfg, "runs", "list", "--json"}, args...)
	out, err := runOut(ctx, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	var l runsListing
	var objects struct{ Runs []map[string]any }
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &objects); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	l.Objects = objects.Runs
	return l
}

// `runs list` lists the runs of dealsync's task queue the Web UI's filter
// selects (running first, then the last closed), with their status,
// times, search attributes and memo mapping, as a table or JSON; --limit
// stops it and says more may match; a filter Temporal refuses is a usage
// error (exit 2).
func TestRunsList(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	erp, erpURL := startSandbox(t)
	cfg, listen := startShopCLI(ctx, t, srv, erpURL, "generic-standard")

	// Invalid options are usage errors: a filter Temporal cannot parse,
	// one that would widen the selection, a limit out of bounds.
	for _, args := range [][]string{
		{"--query", "Connection = "},
		{"--query", `Connection = "shop") OR (ExecutionStatus = "Completed"`},
		{"--limit", "0"},
		{"--limit", "1001"},
	} {
		if out, err := runOut(ctx, append([]string{"--config", cfg, "runs", "list"}, args...)...); exitCode(err) != 2 {
			t.Errorf("runs list %v: exit %d, %v\n%s; want 2", args, exitCode(err), err, out)
		}
	}
	// Temporal's position counts in the SQL it made of the wrapped
	// filter (it said "position 66" of a 13-character query): the error
	// says where in the query the operator typed.
	if _, err := runOut(ctx, "--config", cfg, "runs", "list", "--query", "Connection = "); err == nil || !strings.Contains(err.Error(), "Temporal refused the filter") ||
		!strings.Contains(err.Error(), "syntax error at the end of the query") || strings.Contains(err.Error(), "position") {
		t.Errorf("a filter Temporal refuses: %v", err)
	}
	if _, err := runOut(ctx, "--config", cfg, "runs", "list", "--query", `Connection = "shop" AND AND DealId = "D-1"`); err == nil ||
		!strings.Contains(err.Error(), "syntax error at character 27 of the query near 'and'") {
		t.Errorf("a filter Temporal refuses in its middle: %v", err)
	}

	// The Swiss deal fails on the mapping's tax table; the German one is
	// invoiced.
	c := temporalClient(ctx, t, srv)
	failedID := sendShopWon(ctx, t, cfg, listen, "D-CH", "CH", "500.00", "CHF")
	if err := c.GetWorkflow(ctx, failedID, "").Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "CH") {
		t.Fatalf("the run should fail on the tax table: %v", err)
	}
	invoicedID := sendShopWon(ctx, t, cfg, listen, "D-DE", "DE", "70.00", "EUR")
	var invoiced workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, invoicedID, "").Get(ctx, &invoiced); err != nil {
		t.Fatalf("the German deal's run: %v", err)
	}
	if len(erp.Invoices()) != 1 || invoiced.Mapping != "generic-standard" || invoiced.MappingHash == "" {
		t.Fatalf("invoices %+v, run %+v", erp.Invoices(), invoiced)
	}

	// Visibility is written asynchronously: wait until both runs are
	// listed as ended (bounded by ctx).
	var all runsListing
	for ctx.Err() == nil {
		all = listRuns(ctx, t, cfg)
		if len(all.Runs) == 2 && all.Runs[0].SyncStatus == workflows.StatusInvoiced && all.Runs[1].SyncStatus == workflows.StatusFailed {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if all.Query != `TaskQueue = "dealsync"` || all.More || len(all.Runs) != 2 {
		t.Fatalf("runs list: %+v", all)
	}
	// The list reads the Temporal settings alone: a mapping file that does
	// not compile, a secret this shell lacks or a connection's typo (in a
	// mapping incident, on an operator's machine) does not stop it.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	writeFile(t, broken, "name: broken\ninvoice:\n  memo: deal.nmae\n")
	t.Setenv("DEALSYNC_TEST_SURELY_UNSET", "")
	os.Unsetenv("DEALSYNC_TEST_SURELY_UNSET")
	operators := writeConfig(t, fmt.Sprintf(`
temporal: {address: %q}
mappings: {files: [%q]}
targets:
  erp: {type: http, base_url: "https://erp.example", auth_value: env:DEALSYNC_TEST_SURELY_UNSET}
connections:
  shop:
    source: {type: generic, secret: env:DEALSYNC_TEST_SURELY_UNSET, secrte: x}
    target: erp
    mapping: broken
`, srv.FrontendAddress(), broken))
	if _, err := runOut(ctx, "--config", operators, "config", "check"); exitCode(err) != 2 {
		t.Fatalf("config check of the broken config: %v; want exit 2", err)
	}
	warnings := captureStderr(t)
	if got := listRuns(ctx, t, operators); len(got.Runs) != 2 {
		t.Errorf("runs list with a broken mapping and unresolved secrets: %+v; want the 2 runs", got)
	}
	// ... and names what it did not need fixed, a misplaced key among them.
	if w := warnings.String(); !strings.Contains(w, "problem(s) in sections runs list does not read") ||
		!strings.Contains(w, "connections.shop.source.secrte: unknown key") {
		t.Errorf("runs list's warnings:\n%s\nwant the problems it did not need fixed named", w)
	}
	failedRun := c.GetWorkflow(ctx, failedID, "").GetRunID()
	de, ch := all.Runs[0], all.Runs[1] // the last closed first
	if de.WorkflowID != invoicedID || de.RunID != c.GetWorkflow(ctx, invoicedID, "").GetRunID() || de.WorkflowType != workflows.InvoiceDealName ||
		de.ExecutionStatus != "Completed" || de.ErpInvoiceID != invoiced.InvoiceID || de.DealID != "D-DE" || de.Connection != "shop" ||
		de.Currency != "EUR" || de.Amount == nil || *de.Amount != 70 || de.Mapping != "generic-standard" || de.MappingHash != invoiced.MappingHash ||
		de.StartTime.IsZero() || de.CloseTime == nil || de.CloseTime.Before(de.StartTime) {
		t.Errorf("the invoiced run: %+v", de)
	}
	if ch.WorkflowID != failedID || ch.RunID != failedRun || ch.ExecutionStatus != "Failed" || ch.ErpInvoiceID != "" ||
		ch.DealID != "D-CH" || ch.Currency != "CHF" || ch.Amount == nil || *ch.Amount != 500 ||
		ch.Mapping != "generic-standard" || ch.MappingHash != invoiced.MappingHash || ch.CloseTime == nil || ch.StartTime.After(de.StartTime) {
		t.Errorf("the failed run: %+v", ch)
	}
	// The JSON objects' fields, as scripts read them.
	for _, key := range []string{"workflow_id", "run_id", "workflow_type", "execution_status", "start_time", "close_time",
		"deal_id", "connection", "sync_status", "erp_invoice_id", "amount", "currency", "mapping", "mapping_hash"} {
		if _, ok := all.Objects[0][key]; !ok {
			t.Errorf("the invoiced run's JSON has no %q: %v", key, all.Objects[0])
		}
	}
	if all.Objects[1]["execution_status"] != "Failed" || all.Objects[1]["sync_status"] != "failed" || all.Objects[1]["mapping"] != "generic-standard" {
		t.Errorf("the failed run's JSON: %v", all.Objects[1])
	}
	// The failed run's failure, from its close event, as the Web UI's run
	// page shows it: the type and the whole message; none for the
	// invoiced run.
	var runErr *temporal.WorkflowExecutionError
	var appErr *temporal.ApplicationError
	if err := c.GetWorkflow(ctx, failedID, "").Get(ctx, nil); !errors.As(err, &runErr) || !errors.As(err, &appErr) {
		t.Fatalf("the failed run's error: %v", err)
	}
	if all.Objects[1]["failure_type"] != "MappingError" || all.Objects[1]["failure_message"] != appErr.Message() ||
		!strings.Contains(appErr.Message(), `"CH"`) || all.Objects[1]["failure_read_error"] != nil {
		t.Errorf("the failed run's JSON failure: %v; want MappingError, %q", all.Objects[1], appErr.Message())
	}
	for _, key := range []string{"failure_type", "failure_message", "failure_read_error"} {
		if v, ok := all.Objects[0][key]; ok {
			t.Errorf("the invoiced run's JSON has %s %v", key, v)
		}
	}

	// A filter narrows the list, as in the Web UI.
	failed := listRuns(ctx, t, cfg, "--query", `SyncStatus = "failed"`)
	if len(failed.Runs) != 1 || failed.Runs[0].RunID != failedRun || failed.Query != `TaskQueue = "dealsync" AND (SyncStatus = "failed")` {
		t.Errorf("--query 'SyncStatus = \"failed\"': %+v", failed)
	}
	if byInvoice := listRuns(ctx, t, cfg, "--query", `ErpInvoiceId = "`+invoiced.InvoiceID+`"`); len(byInvoice.Runs) != 1 || byInvoice.Runs[0].WorkflowID != invoicedID {
		t.Errorf("by ErpInvoiceId: %+v", byInvoice)
	}
	// --limit stops the list, and says more may match.
	if one := listRuns(ctx, t, cfg, "--limit", "1"); len(one.Runs) != 1 || !one.More || one.Runs[0].WorkflowID != invoicedID {
		t.Errorf("--limit 1: %+v", one)
	}
	if out, err := runOut(ctx, "--config", cfg, "runs", "list", "--limit", "1"); err != nil || !strings.Contains(out, "\n1 run, as many as --limit allows: more may match") {
		t.Errorf("runs list --limit 1: %v\n%s", err, out)
	}

	// The table: a row per run with its status, SyncStatus, invoice,
	// start time and mapping.
	out, err := runOut(ctx, "--config", cfg, "runs", "list")
	if err != nil {
		t.Fatalf("runs list: %v\n%s", err, out)
	}
	for _, want := range []string{
		"WORKFLOW ID", "SYNCSTATUS", "ERPINVOICEID", "MAPPING",
		invoicedID + "  Completed  invoiced    " + invoiced.InvoiceID,
		failedID, "Failed     failed      -",
		de.StartTime.UTC().Format(time.RFC3339),
		"generic-standard (" + invoiced.MappingHash + ")",
		"2 runs\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	// The failed run's row is followed by a line of its failure; the
	// invoiced run's is not.
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if i+1 >= len(lines) {
			break
		}
		switch {
		case strings.HasPrefix(line, failedID+" "):
			// Its start, which says what failed: the table tells "CH".
			msg := []rune(appErr.Message())
			want := "    MappingError: " + string(msg[:min(len(msg), 119)])
			if !strings.HasPrefix(lines[i+1], want) || !strings.Contains(lines[i+1], `no entry for "CH"`) ||
				(len(msg) > 120) != strings.HasSuffix(lines[i+1], "…") || (len(msg) > 120) != strings.Contains(out, "--json gives them whole") {
				t.Errorf("the failed run's row is followed by %q, want %q, cut to 120 characters:\n%s", lines[i+1], want, out)
			}
		case strings.HasPrefix(line, invoicedID+" "):
			if !strings.HasPrefix(lines[i+1], failedID+" ") {
				t.Errorf("the invoiced run's row is followed by %q, want the failed run's row:\n%s", lines[i+1], out)
			}
		}
	}

	// A connection that cannot be built (an account_targets key its
	// source does not serve) keeps the worker from starting, not the
	// operator from listing the runs.
	conf, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HS_SECRET", "hubspot-app-secret")
	t.Setenv("HS_TOKEN", "hubspot-token")
	brokenCfg := writeConfig(t, string(conf)+`
  hs:
    source:
      type: hubspot
      client_secret: env:HS_SECRET
      accounts: {"62515": {access_token: env:HS_TOKEN}}
    target: erp
    account_targets: {"99999": erp}
`)
	if out, err := runOut(ctx, "--config", brokenCfg, "config", "check"); exitCode(err) != 1 {
		t.Fatalf("the unbuildable connection should fail config check with exit 1: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if l := listRuns(ctx, t, brokenCfg); len(l.Runs) != 2 {
		t.Errorf("runs list with a connection that cannot be built: %+v", l)
	}

	// A variable that names a connection (or another section the list
	// does not read) stops runs retry, which needs the connection, and
	// config check, not the list, which names it as a warning; one that
	// names a Temporal section stops the list too.
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP", "x")
	sectionWarnings := captureStderr(t)
	if l := listRuns(ctx, t, cfg); len(l.Runs) != 2 {
		t.Errorf("runs list with DEALSYNC_CONNECTIONS_SHOP set: %+v", l)
	}
	if w := sectionWarnings.String(); !strings.Contains(w, "connections.shop: the environment variable DEALSYNC_CONNECTIONS_SHOP is set, which names all of connections.shop") {
		t.Errorf("runs list's warnings:\n%s\nwant DEALSYNC_CONNECTIONS_SHOP named", w)
	}
	for _, args := range [][]string{{"runs", "retry", "--dry-run"}, {"config", "check"}} {
		if out, err := runOut(ctx, append([]string{"--config", cfg}, args...)...); exitCode(err) != 2 || !strings.Contains(err.Error(), "DEALSYNC_CONNECTIONS_SHOP") {
			t.Errorf("%v with DEALSYNC_CONNECTIONS_SHOP set: exit %d, %v\n%s; want 2 naming it", args, exitCode(err), err, out)
		}
	}
	os.Unsetenv("DEALSYNC_CONNECTIONS_SHOP")
	t.Setenv("DEALSYNC_TEMPORAL_TLS", "x")
	if out, err := runOut(ctx, "--config", cfg, "runs", "list"); exitCode(err) != 2 || !strings.Contains(err.Error(), "DEALSYNC_TEMPORAL_TLS") {
		t.Errorf("runs list with DEALSYNC_TEMPORAL_TLS set: exit %d, %v\n%s; want 2 naming it", exitCode(err), err, out)
	}
}

// The workers mapped a connection's deals with the mapping a DEALSYNC_*
// variable gave them, which the operator's shell does not set: `runs
// retry` (and --dry-run) names the mapping the new run uses, the one its
// own config gives, and warns naming both; it starts the run all the same,
// with that mapping.
func TestRunsRetryWarnsOfAnotherMappingThanTheFailedRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The config names no mapping (the built-in one); the workers' (and
	// the intake's) environment sets the example mapping.
	t.Setenv("DEALSYNC_CONNECTIONS_SHOP_MAPPING", "generic-standard")
	cfg, c, id, failedRun := failShopRunOnTheTaxTable(ctx, t)
	// The operator's shell.
	if err := os.Unsetenv("DEALSYNC_CONNECTIONS_SHOP_MAPPING"); err != nil {
		t.Fatal(err)
	}

	var dry []rerun.Result
	for len(dry) == 0 && ctx.Err() == nil {
		dry = retryRuns(ctx, t, cfg, "--dry-run")
		time.Sleep(100 * time.Millisecond)
	}
	if len(dry) != 1 || dry[0].Skipped != "dry run" || dry[0].Mapping != "default" || dry[0].MappingHash == "" ||
		dry[0].FailedMapping != "generic-standard" || dry[0].FailedMappingHash == "" {
		t.Fatalf("dry run: %+v", dry)
	}
	if dry[0].FailureType != "MappingError" || !strings.Contains(dry[0].FailureMessage, `"CH"`) {
		t.Errorf("dry run: failure %q %q, want the failed run's MappingError", dry[0].FailureType, dry[0].FailureMessage)
	}
	wantWarning := fmt.Sprintf("WARNING the mapping differs from the failed run's: new run default (hash %s), failed run generic-standard (hash %s)",
		dry[0].MappingHash, dry[0].FailedMappingHash)
	out, err := runOut(ctx, "--config", cfg, "runs", "retry", "--dry-run")
	if err != nil || !strings.Contains(out, "skipped: dry run, mapping default (hash "+dry[0].MappingHash+"), failed with MappingError\n") || !strings.Contains(out, wantWarning) {
		t.Fatalf("runs retry --dry-run: %v\n%s\nwant the mapping, the failure's type and the line %q", err, out, wantWarning)
	}

	// Not refused: the run starts, with the mapping it named.
	out, err = runOut(ctx, "--config", cfg, "runs", "retry")
	if err != nil || !strings.Contains(out, ", mapping default (hash "+dry[0].MappingHash+")") || !strings.Contains(out, wantWarning) {
		t.Fatalf("runs retry: %v\n%s\nwant the mapping and the line %q", err, out, wantWarning)
	}
	newRun := c.GetWorkflow(ctx, id, "").GetRunID()
	if newRun == failedRun {
		t.Fatalf("no new run of %s", id)
	}
	var result workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, id, newRun).Get(ctx, &result); err != nil || result.Mapping != "default" || result.MappingHash != dry[0].MappingHash {
		t.Fatalf("the new run: %v, %+v; want it mapped with default (hash %s)", err, result, dry[0].MappingHash)
	}

	// The failed run keeps SyncStatus "failed": runs list says a later
	// run superseded it, and how that one ended; not of the new run.
	var failed runsListing
	for ctx.Err() == nil {
		failed = listRuns(ctx, t, cfg, "--query", `SyncStatus = "failed" OR SyncStatus = "invoiced"`)
		if len(failed.Runs) == 2 && failed.Runs[0].SyncStatus == workflows.StatusInvoiced {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(failed.Runs) != 2 || failed.Runs[0].RunID != newRun || failed.Runs[1].RunID != failedRun {
		t.Fatalf("runs list: %+v; want the new run, then the failed one", failed.Runs)
	}
	s := failed.Runs[1].Superseded
	if s == nil || s.RunID != newRun || s.ExecutionStatus != "Completed" || s.SyncStatus != workflows.StatusInvoiced || s.CloseTime == nil ||
		failed.Runs[0].Superseded != nil {
		t.Fatalf("superseded: %+v, of the new run %+v; want the failed run superseded by the completed one", s, failed.Runs[0].Superseded)
	}
	if obj, ok := failed.Objects[1]["superseded"].(map[string]any); !ok || obj["run_id"] != newRun || obj["execution_status"] != "Completed" {
		t.Errorf("the failed run's JSON: %v", failed.Objects[1])
	}
	out, err = runOut(ctx, "--config", cfg, "runs", "list", "--query", `SyncStatus = "failed"`)
	want := "    superseded by a later run (completed, invoiced, closed " + s.CloseTime.UTC().Format(time.RFC3339) + ")\n"
	if err != nil || strings.Count(out, "superseded") != 1 || !strings.Contains(out, "\n    MappingError: ") || !strings.Contains(out, want) ||
		strings.Index(out, want) < strings.Index(out, "MappingError") {
		t.Errorf("runs list --query 'SyncStatus = \"failed\"': %v\n%s\nwant its failure line, then %q", err, out, want)
	}
}

// Review: a failed run's failure message could not be read without a
// browser. The table follows each run that failed or was terminated with
// an indented line of its failure's type and message, made one line and
// cut with an ellipsis (then a last line says --json gives it whole), or
// why it could not be read; the rows stay aligned across those lines.
func TestRunsListTableShowsFailures(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	long := "the ERP refused the invoice:\n" + strings.Repeat("line 1 has no tax code; ", 10) + "END"
	runs := []rerun.Run{
		{WorkflowID: "invoice/shop/D-1", ExecutionStatus: "Running", StartTime: start, SyncStatus: "pending"},
		{WorkflowID: "invoice/shop/D-CH", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", Mapping: "acme", MappingHash: "0123456789ab",
			FailureType: "MappingError", FailureMessage: `mapping "acme": field tax_code: no entry for "CH"`},
		{WorkflowID: "invoice/shop/D-22", ExecutionStatus: "Completed", StartTime: start, SyncStatus: "invoiced", ErpInvoiceID: "INV-1"},
		{WorkflowID: "invoice/shop/D-3", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPRejected", FailureMessage: long},
		{WorkflowID: "invoice/shop/D-4", ExecutionStatus: "Terminated", StartTime: start, SyncStatus: "pending", FailureMessage: "stuck (by ops@bastion)"},
		{WorkflowID: "invoice/shop/D-5", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureReadError: "reading the run's close event: unavailable"},
		{WorkflowID: "invoice/shop/D-6\n\x1b[2J", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ValidationError", FailureMessage: "two\nlines\x1b[2J"},
	}
	var b bytes.Buffer
	printRuns(&b, rerun.ListOptions{TaskQueue: "dealsync"}, runs, false)
	out := b.String()
	stamp := start.Format(time.RFC3339)
	cutLong := string([]rune(strings.Join(strings.Fields(long), " "))[:119]) + "…"
	// The first column is as wide as its widest cell, the quoted D-6's.
	row := func(id, rest string) string { return fmt.Sprintf("%-29s%s  %s", id, rest, stamp) }
	want := "runs: TaskQueue = \"dealsync\"\n" +
		"WORKFLOW ID                  STATUS      SYNCSTATUS  ERPINVOICEID  STARTED               MAPPING\n" +
		row("invoice/shop/D-1", "Running     pending     -           ") + "  -\n" +
		row("invoice/shop/D-CH", "Failed      failed      -           ") + "  acme (0123456789ab)\n" +
		"    MappingError: mapping \"acme\": field tax_code: no entry for \"CH\"\n" +
		row("invoice/shop/D-22", "Completed   invoiced    INV-1       ") + "  -\n" +
		row("invoice/shop/D-3", "Failed      failed      -           ") + "  -\n" +
		"    ERPRejected: " + cutLong + "\n" +
		row("invoice/shop/D-4", "Terminated  pending     -           ") + "  -\n" +
		"    terminated: stuck (by ops@bastion)\n" +
		row("invoice/shop/D-5", "Failed      failed      -           ") + "  -\n" +
		"    failure not read: reading the run's close event: unavailable\n" +
		row(`"invoice/shop/D-6\n\x1b[2J"`, "Failed      failed      -           ") + "  -\n" +
		"    ValidationError: two lines [2J\n" +
		"7 runs\n" +
		"failure messages cut to 120 characters (…): --json gives them whole\n"
	if out != want {
		t.Errorf("the table:\n%s\nwant:\n%s", out, want)
	}
	// Without a cut message, no last line about --json.
	b.Reset()
	printRuns(&b, rerun.ListOptions{TaskQueue: "dealsync"}, runs[:3], false)
	if strings.Contains(b.String(), "--json") || !strings.Contains(b.String(), "    MappingError: ") {
		t.Errorf("the table of three runs:\n%s", b.String())
	}
}

// A --dev command that finds no server says where it looked and how
// dev's port reaches it: a second shell has not dev's variables.
func TestDevCommandWithoutAServerSaysHowToReachDev(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = runOut(ctx, "runs", "list", "--dev")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("is `dealsync dev` running? its server listens on 127.0.0.1:<dev.frontend_port>, here %d", port)) ||
		!strings.Contains(err.Error(), "DEALSYNC_DEV_FRONTEND_PORT") {
		t.Fatalf("runs list --dev without a server: %v", err)
	}
	// Without --dev the command dials temporal.address: no word of dev.
	t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", fmt.Sprintf("127.0.0.1:%d", port))
	if _, err = runOut(ctx, "runs", "list"); err == nil || strings.Contains(err.Error(), "dealsync dev") {
		t.Fatalf("runs list without --dev and without a server: %v; want the failure without the dev hint", err)
	}
	// Unless temporal.address is the default: then --dev may be what was
	// meant. (Checked only where nothing listens on the default address:
	// another dev there would answer the list.)
	t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", "")
	t.Run("the default address", func(t *testing.T) {
		// A skip, not a pass, says the check did not run.
		if c, err := net.DialTimeout("tcp", config.DefaultTemporalAddress, time.Second); err == nil {
			c.Close()
			t.Skipf("something listens on %s: the hint for the default address is not checked", config.DefaultTemporalAddress)
		}
		if out, err := runOut(ctx, "runs", "list"); err == nil || !strings.Contains(err.Error(), "temporal.address is 127.0.0.1:7233, the default; to reach a running `dealsync dev`, add --dev") {
			t.Fatalf("runs list with temporal.address unset and no server: %v (%s)", err, out)
		}
	})
}

// A running run whose workflow task fails again and again is shown with a
// line saying so under its row: the list has no other sign of it. With
// its last WorkflowTaskFailed's message the line gives it, on one line,
// cut as failures are; without (its history not read), what may cause it.
func TestRunsListTableShowsAFailingWorkflowTask(t *testing.T) {
	refusal := `connection "beta" is not configured on this worker: its workflow task fails here so that a worker of the task queue that has the connection takes the run (give every worker the intakes' config: dealsync config check)`
	var out bytes.Buffer
	printRuns(&out, rerun.ListOptions{TaskQueue: "dealsync", Limit: 5}, []rerun.Run{
		{WorkflowID: "invoice/beta/B-1", ExecutionStatus: "Running", SyncStatus: "pending", WorkflowTaskAttempt: 4},
		{WorkflowID: "invoice/beta/B-2", ExecutionStatus: "Running", SyncStatus: "pending"},
		{WorkflowID: "invoice/beta/B-3", ExecutionStatus: "Running", SyncStatus: "pending", WorkflowTaskAttempt: 2, WorkflowTaskFailure: refusal},
		{WorkflowID: "invoice/beta/B-4", ExecutionStatus: "Running", SyncStatus: "pending", WorkflowTaskAttempt: 3, WorkflowTaskFailure: "panic: \x1b[31mboom"},
	}, false)
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 10 || !strings.Contains(lines[2], "invoice/beta/B-1") ||
		!strings.Contains(lines[3], "    workflow task failing, attempt 4: a worker refuses the run (it lacks its connection)") ||
		!strings.Contains(lines[4], "invoice/beta/B-2") || !strings.Contains(lines[5], "invoice/beta/B-3") ||
		lines[6] != "    workflow task failing, attempt 2: "+string([]rune(refusal)[:119])+"…" ||
		!strings.Contains(lines[7], "invoice/beta/B-4") || lines[8] != "    workflow task failing, attempt 3: panic: [31mboom" ||
		lines[10] != "failure messages cut to 120 characters (…): --json gives them whole" {
		t.Errorf("table:\n%s", out.String())
	}
}

// A running run whose step is retried is shown with its last attempt's
// failure under its row, its attempt when known, cut as failures are; a
// failing workflow task wins.
func TestRunsListTableShowsARetriedStep(t *testing.T) {
	refused := "ERP unreachable: dial tcp 127.0.0.1:9: connect: connection refused " + strings.Repeat("x", 100)
	var out bytes.Buffer
	printRuns(&out, rerun.ListOptions{TaskQueue: "dealsync", Limit: 5}, []rerun.Run{
		{WorkflowID: "invoice/shop/D-1", ExecutionStatus: "Running", SyncStatus: "pending", Retrying: &rerun.Retrying{Step: "invoice", Attempt: 7, Type: "ERPUnavailable", Message: refused}},
		{WorkflowID: "invoice/shop/D-2", ExecutionStatus: "Running", SyncStatus: "pending", Retrying: &rerun.Retrying{Step: "customer", Type: "ERPTargetMismatch", Message: "this worker sends\x1b[31m"}},
		{WorkflowID: "invoice/shop/D-3", ExecutionStatus: "Running", SyncStatus: "pending", WorkflowTaskAttempt: 3, WorkflowTaskFailure: "panic: boom",
			Retrying: &rerun.Retrying{Step: "invoice", Attempt: 2, Message: "not shown"}},
	}, false)
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 10 || !strings.Contains(lines[2], "invoice/shop/D-1") ||
		lines[3] != "    retrying invoice step, attempt 7: "+string([]rune(refused)[:119])+"…" ||
		!strings.Contains(lines[4], "invoice/shop/D-2") || lines[5] != "    retrying customer step: this worker sends [31m" ||
		!strings.Contains(lines[6], "invoice/shop/D-3") || lines[7] != "    workflow task failing, attempt 3: panic: boom" ||
		lines[9] != "failure messages cut to 120 characters (…): --json gives them whole" {
		t.Errorf("table:\n%s", out.String())
	}
}

// A long failure keeps what matters within the table's 120 characters:
// an ERPTargetMismatch, whose message names both targets whole (two
// descriptions that fill the width), says both targets' names and which
// of their settings differ; connector advice leaves out the variables it
// names beside config keys, so the keys and what to do come in; the rest
// is cut as before, and a message shortened ends with an ellipsis even
// when what is left fits. A message that fits is whole, asides and all; a
// message of the mismatch's type that does not read as one is cut as
// any other. The names in a mismatch are as written (two spaces kept);
// targets whose descriptions are the same are said to differ in other
// settings.
func TestRunsListTableShortensLongFailuresKeepingWhatMatters(t *testing.T) {
	tenant := func(id string) connectors.TargetIdentity {
		return connectors.IdentifyTarget("books", "xero", settingsOf{{Key: "tenant_id", Value: id}, {Key: "base_url", Value: "https://api.xero.com/api.xro/2.0"}})
	}
	here, pinned := tenant("0b6fa0a1-5a4b-4d7e-9e1c-1234567890ab"), tenant("5c1e2f3a-5a4b-4d7e-9e1c-1234567890ab")
	qbo := connectors.IdentifyTarget("qbo", "quickbooks", settingsOf{{Key: "realm_id", Value: "9130"}, {Key: "base_url", Value: "https://quickbooks.api.intuit.com"}})
	mismatch := func(whose string, here, pinned connectors.TargetIdentity) string {
		return "this worker sends the ERP calls of " + whose + " to " + here.Description + ", but the run was started for " + pinned.Description +
			": nothing was sent, so that the deal's customer and invoice are not made in another ERP than the one its run began with. …; all 2 attempts failed (workflow.retry.maximum_attempts)"
	}
	advice := "quickbooks: 401 Unauthorized for connection shop: check targets.qbo-us.realm_id (or DEALSYNC_TARGETS_QBO_US_REALM_ID) first: " +
		"QuickBooks refuses a token for a company other than the one its refresh token was issued for; then targets.qbo-us.token_file (or DEALSYNC_TARGETS_QBO_US_TOKEN_FILE)"
	short := "quickbooks: 401 Unauthorized: set targets.qbo.realm_id (or DEALSYNC_TARGETS_QBO_REALM_ID)"
	odd := "this worker sends the ERP calls of connection \"shop\" somewhere else than the run's target " + strings.Repeat("x", 80)
	// Names with two spaces in a row, kept as written.
	spaced := func(id string) connectors.TargetIdentity {
		return connectors.IdentifyTarget("bk  two", "xero", settingsOf{{Key: "tenant_id", Value: id}})
	}
	// Longer than the width with its asides, shorter without them.
	asides := "quickbooks: 401 Unauthorized: check targets.qbo.realm_id (or DEALSYNC_TARGETS_QBO_REALM_ID), then targets.qbo.token_file (or DEALSYNC_TARGETS_QBO_TOKEN_FILE)"
	withoutAsides := "quickbooks: 401 Unauthorized: check targets.qbo.realm_id, then targets.qbo.token_file"
	if len(asides) <= 120 || len(withoutAsides) >= 119 {
		t.Fatalf("asides: %d characters, %d without them", len(asides), len(withoutAsides))
	}
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	runs := []rerun.Run{
		{WorkflowID: "invoice/shop/D-1", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed",
			FailureType: "ERPTargetMismatch", FailureMessage: mismatch(`connection "shop"`, here, pinned)},
		{WorkflowID: "invoice/pd/D-2", ExecutionStatus: "Running", StartTime: start, SyncStatus: "pending",
			Retrying: &rerun.Retrying{Step: "customer", Attempt: 3, Type: "ERPTargetMismatch", Message: mismatch(`connection "pd" for account 42`, qbo, here)}},
		{WorkflowID: "invoice/shop/D-3", ExecutionStatus: "Running", StartTime: start, SyncStatus: "pending",
			Retrying: &rerun.Retrying{Step: "invoice", Attempt: 2, Type: "ERPUnavailable", Message: advice}},
		{WorkflowID: "invoice/shop/D-4", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPRejected", FailureMessage: short},
		{WorkflowID: "invoice/shop/D-5", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPTargetMismatch", FailureMessage: odd},
		{WorkflowID: "invoice/shop/D-6", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPTargetMismatch",
			FailureMessage: mismatch(`connection "shop  eu" for account "ac  me"`, spaced("t-1"), spaced("t-2"))},
		{WorkflowID: "invoice/shop/D-7", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPRejected", FailureMessage: asides},
		{WorkflowID: "invoice/shop/D-8", ExecutionStatus: "Failed", StartTime: start, SyncStatus: "failed", FailureType: "ERPTargetMismatch",
			FailureMessage: mismatch(`connection "shop"`, here, connectors.TargetIdentity{Fingerprint: "t1:00", Description: here.Description})},
	}
	var b bytes.Buffer
	printRuns(&b, rerun.ListOptions{TaskQueue: "dealsync"}, runs, false)
	var got []string
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, "    ") {
			got = append(got, line)
		}
	}
	want := []string{
		`    ERPTargetMismatch: connection "shop": this worker's target is "books", the run's is "books" (other tenant_id)…`,
		// Still too long: cut as any other.
		`    retrying customer step, attempt 3: connection "pd", account "42": this worker's target is "qbo", the run's is "books" (other type, realm_id, base_url, ten…`,
		"    retrying invoice step, attempt 2: " + string([]rune(strings.NewReplacer(" (or DEALSYNC_TARGETS_QBO_US_REALM_ID)", "", " (or DEALSYNC_TARGETS_QBO_US_TOKEN_FILE)", "").Replace(advice))[:119]) + "…",
		"    ERPRejected: " + short,
		"    ERPTargetMismatch: " + odd[:119] + "…",
		`    ERPTargetMismatch: connection "shop  eu", account "ac  me": this worker's target is "bk  two", the run's is "bk  two" (other tenant_id)…`,
		// Shortened, though it fits: it says so.
		"    ERPRejected: " + withoutAsides + "…",
		// The same descriptions, other fingerprints.
		`    ERPTargetMismatch: connection "shop": this worker's target is "books", the run's is "books" (other settings)…`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("failure lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range got {
		if n := utf8.RuneCountInString(line[strings.Index(line, ": ")+2:]); n > 120 && !strings.HasPrefix(line, "    retrying") {
			t.Errorf("%q has %d characters after its label, more than 120", line, n)
		}
	}
	if !strings.HasSuffix(b.String(), "failure messages cut to 120 characters (…): --json gives them whole\n") {
		t.Errorf("the table does not end saying --json gives them whole:\n%s", b.String())
	}
}

// settingsOf is a target config that names the settings it holds.
type settingsOf []connectors.Setting

func (s settingsOf) IdentifyingSettings() []connectors.Setting { return s }

// A completed run whose ERP noticed something about the invoice it made
// (its total differs) is followed by a line of that warning, cut as
// failures are; a completed run without one by none.
func TestRunsListTableShowsACompletedRunsWarning(t *testing.T) {
	warning := "Xero's total of invoice inv-1 (INV-0001) is EUR 112.00, not the invoice's EUR 131.84: Xero computes the tax by the tax type, so check the invoice and the tax setup before sending it"
	var out bytes.Buffer
	printRuns(&out, rerun.ListOptions{TaskQueue: "dealsync", Limit: 5}, []rerun.Run{
		{WorkflowID: "invoice/shop/D-1", ExecutionStatus: "Completed", SyncStatus: "invoiced", ErpInvoiceID: "inv-1", Warning: warning},
		{WorkflowID: "invoice/shop/D-2", ExecutionStatus: "Completed", SyncStatus: "invoiced", ErpInvoiceID: "inv-2"},
	}, false)
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 8 || !strings.Contains(lines[2], "invoice/shop/D-1") ||
		lines[3] != "    warning: "+string([]rune(warning)[:119])+"…" ||
		!strings.Contains(lines[4], "invoice/shop/D-2") || lines[5] != "2 runs" || !strings.Contains(lines[6], "--json gives them whole") {
		t.Errorf("table:\n%s", out.String())
	}
}

// A long message whose innermost cause (after its last ": ") is past the
// width is shortened in the middle, keeping the cause: an ERP that
// refuses connections says "connection refused" in the retrying line,
// and in the failure line after its attempts ran out, where what to do
// follows the cause (after "; ") and is cut when it does not fit.
func TestRunsListTableKeepsTheCauseOfALongMessage(t *testing.T) {
	refused := `connection "flaky": target "erp2": http create customer: Post "http://127.0.0.1:19105/customers": dial tcp 127.0.0.1:19105: connect: connection refused`
	spent := refused + "; all 5 attempts failed (workflow.retry.maximum_attempts): once the ERP answers again, start the run again with dealsync runs retry"
	rejected := `connection "c": target targets.erp2.url (or DEALSYNC_TARGETS_ERP2_URL): erp create invoice: HTTP 422 on lines[0].account_code of invoice D-3 (EUR 100.00): AccountCode 999 is not valid; fix it`
	var out bytes.Buffer
	printRuns(&out, rerun.ListOptions{TaskQueue: "dealsync"}, []rerun.Run{
		{WorkflowID: "invoice/flaky/D-1", ExecutionStatus: "Running", SyncStatus: "pending",
			Retrying: &rerun.Retrying{Step: "customer", Attempt: 5, Type: "ERPUnavailable", Message: refused}},
		{WorkflowID: "invoice/flaky/D-2", ExecutionStatus: "Failed", SyncStatus: "failed", FailureType: "ERPUnavailable", FailureMessage: spent},
		{WorkflowID: "invoice/flaky/D-3", ExecutionStatus: "Failed", SyncStatus: "failed", FailureType: "ERPRejected", FailureMessage: rejected},
	}, false)
	var got []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "    ") {
			got = append(got, line)
		}
	}
	want := []string{
		`    retrying customer step, attempt 5: connection "flaky": target "erp2": http create customer: Post "http://127.0.0.1:19105/customers": d…: connection refused`,
		`    ERPUnavailable: connection "flaky": target "erp2": http create customer: Post "http://127.0.0.1:19105/customers":…: connection refused…`,
		// The DEALSYNC_ aside goes first; what follows the cause is kept when it fits.
		`    ERPRejected: connection "c": target targets.erp2.url: erp create invoice: HTTP 422 on lines[0]…: AccountCode 999 is not valid; fix it`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range got {
		msg := line[strings.Index(line, ": ")+2:]
		if strings.HasPrefix(line, "    retrying") {
			msg = msg[strings.Index(msg, ": ")+2:]
		}
		if n := utf8.RuneCountInString(msg); n > 120 {
			t.Errorf("%q: its message has %d characters, more than 120", line, n)
		}
	}
}

// A run whose memo this command could not decrypt shows "(encrypted)" as
// its mapping, and the table ends saying what to give the command.
func TestRunsListTableSaysMemosAreEncrypted(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printRuns(&b, rerun.ListOptions{TaskQueue: "dealsync"}, []rerun.Run{
		{WorkflowID: "invoice/shop/D-1", ExecutionStatus: "Completed", StartTime: start, SyncStatus: "invoiced", MemoEncrypted: true},
		{WorkflowID: "invoice/shop/D-2", ExecutionStatus: "Completed", StartTime: start, SyncStatus: "invoiced", Mapping: "acme"},
	}, false)
	out := b.String()
	if !strings.Contains(out, "  (encrypted)\n") || !strings.HasSuffix(out, "2 runs\n1 run's memo is stored encrypted (temporal.encryption): give this command the keys its workers have to see the mapping and warning\n") {
		t.Errorf("the table:\n%s", out)
	}
	b.Reset()
	printRuns(&b, rerun.ListOptions{TaskQueue: "dealsync"}, []rerun.Run{{WorkflowID: "invoice/shop/D-2", ExecutionStatus: "Completed", StartTime: start, Mapping: "acme"}}, false)
	if strings.Contains(b.String(), "encrypted") {
		t.Errorf("a table without an encrypted memo:\n%s", b.String())
	}
}
