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

// Journey: with nothing probing /readyz (a worker without metrics.listen,
// an intake whose balancer was not yet set up), a Temporal server stopped
// for 20 s and started again left no line in the intake's or the workers'
// logs. Both check the frontend on their own: the outage is logged when
// it starts and when it ends, probed or not.
func TestOutageIsLoggedWithoutAProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logged := captureStderr(t)
	free := freeAddrs(t, 2) // the frontend, the intake
	frontend, intakeAddr := free[0], free[1]
	_, port, _ := net.SplitHostPort(frontend)
	p, _ := strconv.Atoi(port)
	temporal := func() *devserver.Server {
		t.Helper()
		srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, FrontendPort: p, SearchAttributes: workflows.SearchAttributeTypes()})
		if err != nil {
			t.Fatalf("starting Temporal on %s: %v", frontend, err)
		}
		t.Cleanup(srv.Stop)
		return srv
	}
	srv := temporal()
	t.Setenv("SHOP_SECRET", config.DevSecret)
	cfg := writeConfig(t, `
log: {level: info}
temporal: {address: "`+frontend+`"}
intake: {listen: "`+intakeAddr+`"}
targets:
  erp: {type: http, base_url: "http://127.0.0.1:1"}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
`)
	startCommand(ctx, t, "--config", cfg, "worker")
	startCommand(ctx, t, "--config", cfg, "serve")
	waitReady(t, "http://"+intakeAddr+"/readyz") // the last probe
	// lines counts the lines with all of parts, the intake's
	// (component=intake) or the worker's.
	lines := func(intake bool, parts ...string) int {
		n := 0
		for _, l := range strings.Split(logged.String(), "\n") {
			has := strings.Contains(l, "component=intake") == intake
			for _, p := range parts {
				has = has && strings.Contains(l, p)
			}
			if has {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, intake bool, parts ...string) {
		t.Helper()
		for lines(intake, parts...) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("%s: never logged %q:\n%s", what, parts, logged.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("worker started", false, "worker started")

	srv.Stop()
	waitFor("the intake, Temporal stopped", true, "level=WARN", "not ready: the Temporal frontend does not answer")
	waitFor("the worker, Temporal stopped", false, "level=WARN", "not ready: the Temporal frontend does not answer")
	temporal()
	waitFor("the intake, Temporal back", true, "level=INFO", "ready: the Temporal frontend answers again")
	waitFor("the worker, Temporal back", false, "level=INFO", "ready: the Temporal frontend answers again")
}
