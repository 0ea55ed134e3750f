package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// An operator who mended one cause restarts the runs that failed for
// it, not those that failed for another: two runs fail, D-CH on the
// example mapping's tax table (MappingError) and D-AUTH on the ERP's
// refusal of the credentials (ERPUnauthorized, whose failure says to
// retry with --failure ERPUnauthorized); `runs list --failure` lists the
// one, `runs retry --failure … --dry-run` (table and --json) selects the
// one, and once the credentials are mended `runs retry --failure
// ERPUnauthorized` invoices it and leaves the other failed. Unknown
// types and runs without one (--timed-out) are refused, exit 2.
func TestRunsRetryAndListByFailureType(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	erp := sandbox.New(sandbox.Options{})
	var refusing atomic.Bool
	refusing.Store(true)
	erpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if refusing.Load() && bytes.Contains(body, []byte("D-AUTH")) {
			http.Error(w, `{"error":"the access token expired"}`, http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		erp.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(erpSrv.Close)
	cfg, listen := startShopCLI(ctx, t, srv, erpSrv.URL, "generic-standard")
	c := temporalClient(ctx, t, srv)
	mappingID := sendShopWon(ctx, t, cfg, listen, "D-CH", "CH", "500.00", "CHF")
	authID := sendShopWon(ctx, t, cfg, listen, "D-AUTH", "DE", "500.00", "EUR")
	if err := c.GetWorkflow(ctx, mappingID, "").Get(ctx, nil); err == nil || !strings.Contains(err.Error(), `"CH"`) {
		t.Fatalf("D-CH should fail on the tax table: %v", err)
	}
	mappingRun := c.GetWorkflow(ctx, mappingID, "").GetRunID()
	authRun := c.GetWorkflow(ctx, authID, "").GetRunID()
	err := c.GetWorkflow(ctx, authID, "").Get(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), `dealsync runs retry --query 'Connection = "shop"' --failure ERPUnauthorized`) {
		t.Fatalf("D-AUTH should fail ERPUnauthorized, its advice naming --failure: %v", err)
	}
	// Both failed runs in the run list before any selection is judged.
	for ctx.Err() == nil && len(listRuns(ctx, t, cfg, "--query", `SyncStatus = "failed"`).Runs) != 2 {
		time.Sleep(100 * time.Millisecond)
	}

	listed := listRuns(ctx, t, cfg, "--failure", "ERPUnauthorized")
	if len(listed.Runs) != 1 || listed.Runs[0].WorkflowID != authID || listed.Runs[0].FailureType != "ERPUnauthorized" || listed.More {
		t.Fatalf("runs list --failure ERPUnauthorized: %+v; want D-AUTH's run alone", listed.Runs)
	}
	if both := listRuns(ctx, t, cfg, "--failure", "MappingError,erpunauthorized"); len(both.Runs) != 2 {
		t.Errorf("runs list --failure MappingError,erpunauthorized: %+v; want both runs", both.Runs)
	}
	out, err := runOut(ctx, "--config", cfg, "runs", "list", "--failure", "MappingError")
	if err != nil || !strings.Contains(out, "failure type: MappingError\n") || !strings.Contains(out, mappingID) || strings.Contains(out, authID) || !strings.Contains(out, "\n1 run\n") {
		t.Errorf("runs list --failure MappingError: %v\n%s", err, out)
	}

	dry := runJSON[struct {
		Failure []string
		Runs    []rerun.Result
	}](ctx, t, "--config", cfg, "runs", "retry", "--json", "--dry-run", "--failure", "erpunauthorized")
	if len(dry.Runs) != 1 || dry.Runs[0].WorkflowID != authID || dry.Runs[0].Skipped != "dry run" || dry.Runs[0].FailureType != "ERPUnauthorized" ||
		len(dry.Failure) != 1 || dry.Failure[0] != "ERPUnauthorized" {
		t.Fatalf("runs retry --dry-run --failure erpunauthorized --json: %+v; want D-AUTH's run alone", dry)
	}
	out, err = runOut(ctx, "--config", cfg, "runs", "retry", "--dry-run", "--failure", "ERPUnauthorized")
	if err != nil || !strings.Contains(out, "failure type: ERPUnauthorized (the runs of other types are left out)\n") || !strings.Contains(out, authID) ||
		strings.Contains(out, mappingID) || !strings.Contains(out, "1 failed run, 1 would start again") {
		t.Errorf("runs retry --dry-run --failure ERPUnauthorized: %v\n%s", err, out)
	}
	if none := retryRuns(ctx, t, cfg, "--dry-run", "--failure", "ValidationError"); len(none) != 0 {
		t.Errorf("runs retry --failure ValidationError: %+v; want none", none)
	}

	for _, args := range [][]string{
		{"runs", "retry", "--failure", "ERPUnauthorised"},
		{"runs", "list", "--failure", "MappingError,Nope"},
	} {
		out, err := runOut(ctx, append([]string{"--config", cfg}, args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "unknown failure type") || !strings.Contains(err.Error(), "ERPUnauthorized, ERPUnavailable") {
			t.Errorf("%v: exit %d, %v\n%s; want exit 2 listing the types", args, exitCode(err), err, out)
		}
	}
	if _, err := runOut(ctx, "--config", cfg, "runs", "retry", "--failure", "ERPUnauthorized", "--timed-out"); exitCode(err) != 2 || !strings.Contains(err.Error(), "--timed-out adds have none") {
		t.Errorf("--failure with --timed-out: exit %d, %v; want exit 2", exitCode(err), err)
	}

	// The credentials mended: the retry starts D-AUTH's run alone.
	refusing.Store(false)
	results := retryRuns(ctx, t, cfg, "--failure", "ERPUnauthorized")
	if len(results) != 1 || results[0].WorkflowID != authID || results[0].NewRun == "" {
		t.Fatalf("runs retry --failure ERPUnauthorized: %+v; want D-AUTH's run started", results)
	}
	var result workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, authID, results[0].NewRun).Get(ctx, &result); err != nil || result.InvoiceID == "" {
		t.Fatalf("D-AUTH's new run: %v, %+v; want it invoiced", err, result)
	}
	// D-CH's failed run is still its latest: a run started again would
	// fail on the same tax table, so its status alone would not tell.
	if d, err := c.DescribeWorkflowExecution(ctx, mappingID, ""); err != nil || d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != mappingRun ||
		d.GetWorkflowExecutionInfo().GetStatus().String() != "Failed" {
		t.Errorf("D-CH: latest run %v (%v), %v; want its failed run %s left alone", d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), d.GetWorkflowExecutionInfo().GetStatus(), err, mappingRun)
	}
	if results[0].FailedRun != authRun {
		t.Errorf("retried run %s, want %s", results[0].FailedRun, authRun)
	}
}

// --failure "" (a script's empty variable) is refused, exit 2, before
// Temporal is asked: read as no --failure, runs retry would restart the
// failed runs of every type.
func TestFailureFlagGivenEmptyIsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"runs", "retry", "--failure", ""},
		{"runs", "retry", "--failure", "", "--dry-run"},
		{"runs", "list", "--failure", ""},
	} {
		out, err := runOut(context.Background(), args...)
		if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), `--failure: unknown failure type "": give one or more of`) {
			t.Errorf("%q: exit %d, %v\n%s; want exit 2 refusing the empty --failure", args, exitCode(err), err, out)
		}
	}
}
