package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/workflows"
)

// A worker started while Temporal cannot be reached waits for it (its
// /healthz answers, its /readyz says starting) instead of ending, which
// would leave it to its supervisor's back-off after Temporal is back; once
// Temporal is up it connects, becomes ready and runs deals.
func TestWorkerWaitsForTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	erp, erpURL := startSandbox(t)
	free := freeAddrs(t, 3) // the frontend to come, the worker's metrics, the intake
	frontend, metricsAddr, intakeAddr := free[0], free[1], free[2]
	dir := t.TempDir()
	common := `
log: {level: error}
temporal: {address: "` + frontend + `"}
intake: {listen: "` + intakeAddr + `"}
targets:
  erp: {type: http, base_url: "` + erpURL + `"}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
`
	cfg := writeFile(t, filepath.Join(dir, "worker.yaml"), common+`metrics: {listen: "`+metricsAddr+`"}`+"\n")
	serveCfg := writeFile(t, filepath.Join(dir, "serve.yaml"), common)
	t.Setenv("SHOP_SECRET", config.DevSecret)
	startCommand(ctx, t, "--config", cfg, "worker")

	probe := func(path string) (int, string) {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitReady(t, "http://"+metricsAddr+"/healthz")
	if code, body := probe("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"starting"`) {
		t.Fatalf("/readyz without Temporal: %d %s, want 503 starting", code, body)
	}

	_, port, _ := net.SplitHostPort(frontend)
	p, _ := strconv.Atoi(port)
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, FrontendPort: p, SearchAttributes: workflows.SearchAttributeTypes()})
	if err != nil {
		t.Fatalf("starting Temporal on %s: %v", frontend, err)
	}
	t.Cleanup(srv.Stop)
	// The worker tries again 1, 2, 4, 8 s … apart: ready within a minute.
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := probe("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker never became ready once Temporal was up: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	startCommand(ctx, t, "--config", serveCfg, "serve")
	waitReady(t, "http://"+intakeAddr+"/readyz")
	event := writeFile(t, filepath.Join(dir, "deal.json"), `{"event_id":"evt_wait","deal":{"id":"D-WAIT","name":"Waited","stage":"closed_won","previous_stage":"proposal","amount":"10.00","currency":"EUR","close_date":"2026-11-20","company":{"id":"C-W","name":"Wait AG"}}}`)
	if err := run(ctx, "--config", serveCfg, "webhook", "send", "--connection", "shop", "--url", "http://"+intakeAddr+"/webhooks/shop", event); err != nil {
		t.Fatalf("webhook send: %v", err)
	}
	var result workflows.InvoiceDealResult
	if err := temporalClient(ctx, t, srv).GetWorkflow(ctx, workflows.WorkflowID("shop", "D-WAIT"), "").Get(ctx, &result); err != nil {
		t.Fatalf("run: %v", err)
	}
	if invs := erp.Invoices(); len(invs) != 1 || invs[0].Reference != "D-WAIT" {
		t.Fatalf("want one invoice for D-WAIT, got %+v", invs)
	}
}
