package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/internal/testpg"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/workflows"
)

func freeAddr(t *testing.T) string { return freeAddrs(t, 1)[0] }

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := devserver.FreeAddrs("127.0.0.1", n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// startTemporal starts an embedded Temporal server standing in for a
// cluster, stopped at the end of the test; its namespace has dealsync's
// search attributes unless bare.
func startTemporal(ctx context.Context, t *testing.T, bare bool) *devserver.Server {
	t.Helper()
	opts := devserver.Options{UIPort: -1}
	if !bare {
		opts.SearchAttributes = workflows.SearchAttributeTypes()
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// startCommand runs a long-running CLI command (serve, worker) in the
// background. stop (also called at the end of the test) ends it and fails
// the test if it ended with an error other than the cancellation.
func startCommand(ctx context.Context, t *testing.T, args ...string) (stop func()) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, args...) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%v: %v", args, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startSandbox serves a sandbox ERP until the end of the test.
func startSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	erp := sandbox.New(sandbox.Options{})
	srv := httptest.NewServer(erp.Handler())
	t.Cleanup(srv.Close)
	return erp, srv.URL
}

// temporalClient is a client of srv, closed at the end of the test.
func temporalClient(ctx context.Context, t *testing.T, srv *devserver.Server) client.Client {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// writeFile writes body to path and returns path.
func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run executes the CLI with args until ctx ends or the command returns.
func run(ctx context.Context, args ...string) error {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&bytes.Buffer{})
	return root.ExecuteContext(ctx)
}

// The production shape, with no code change: a Temporal server that is not
// ours (here an embedded one standing in for a cluster), two stateless
// intake replicas (`serve`) and two workers (`worker`) from the same binary,
// and `webhook send` delivering the same event to both replicas.
func TestServeAndWorkersAgainstAnExternalTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	testProductionShape(ctx, t, startTemporal(ctx, t, false))
}

// The same on a Temporal server whose stores are PostgreSQL, as in a
// production cluster (docker-compose.yml): the search attributes, the
// deduplication and the operators' queries hold there too. It needs a
// PostgreSQL server (internal/testpg) and skips without one.
func TestServeAndWorkersAgainstAPostgresBackedTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	pg := testpg.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{UIPort: -1, Postgres: pg, SearchAttributes: workflows.SearchAttributeTypes()})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal(err)
		}
		_ = pg.Drop()
		t.Fatalf("starting a PostgreSQL-backed Temporal server on %s: %v", pg.Addr, err)
	}
	defer func() {
		srv.Stop()
		if err := pg.Drop(); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	}()
	testProductionShape(ctx, t, srv)
}

func testProductionShape(ctx context.Context, t *testing.T, srv *devserver.Server) {
	t.Helper()
	erp, erpURL := startSandbox(t)

	dir := t.TempDir()
	free := freeAddrs(t, 6) // 2 intakes, then a metrics port per command
	intakes := free[:2]
	// Every command also serves /metrics, each on its own port. All four
	// run in this test's process and share its one registry
	// (metrics.Registry), which earlier tests of the binary have counted
	// in too: a scrape cannot tell which command recorded a value, nor
	// this test's deliveries from an earlier test's. So the deliveries are
	// checked as changes of the registry's values, and each endpoint only
	// as serving that registry.
	var metricsAddrs, workerMetrics []string
	type command struct{ name, file string }
	var commands []command
	var files []string
	for i, listen := range intakes {
		for _, name := range []string{"serve", "worker"} {
			metricsListen := free[2+len(metricsAddrs)]
			metricsAddrs = append(metricsAddrs, metricsListen)
			f := filepath.Join(dir, fmt.Sprintf("dealsync-%s-%d.yaml", name, i))
			yaml := fmt.Sprintf(`
log: {level: warn}
temporal: {address: %q}
intake: {listen: %q}
metrics: {listen: %q}
workflow:
  retry: {initial_interval: 100ms, maximum_interval: 1s}
targets:
  erp: {type: http, base_url: %q}
connections:
  shop:
    source: {type: generic, secret: env:SHOP_SECRET}
    target: erp
`, srv.FrontendAddress(), listen, metricsListen, erpURL)
			commands = append(commands, command{name, writeFile(t, f, yaml)})
			if name == "serve" {
				files = append(files, f)
			} else {
				workerMetrics = append(workerMetrics, metricsListen)
			}
		}
	}
	t.Setenv("SHOP_SECRET", config.DevSecret)

	for _, c := range commands {
		defer startCommand(ctx, t, "--config", c.file, c.name)()
	}
	for _, addr := range intakes {
		waitReady(t, "http://"+addr+"/readyz")
	}
	// A worker answers its health checks beside /metrics: ready once it
	// polls this Temporal server.
	for _, addr := range workerMetrics {
		waitReady(t, "http://"+addr+"/readyz")
		if body := get(t, "http://"+addr+"/healthz"); !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("worker %s/healthz: %s", addr, body)
		}
	}

	counted := func() (c countedMetrics) {
		c.started = metrics.Read("dealsync_webhook_events_total", "connection", "shop", "outcome", metrics.EventStarted)
		c.duplicate = metrics.Read("dealsync_webhook_events_total", "connection", "shop", "outcome", metrics.EventDuplicate)
		c.invoiceOK = metrics.Read("dealsync_steps_total", "step", "invoice", "connection", "shop", "outcome", metrics.StepOK)
		c.completed = sumSeries(t, "temporal_workflow_completed")
		c.localActivities = sumSeries(t, "temporal_local_activity_execution_latency_seconds")
		return c
	}
	before := counted()

	event := writeFile(t, filepath.Join(dir, "deal.json"), `{"event_id":"evt_cli","deal":{"id":"D-CLI","name":"CLI deal","stage":"closed_won","previous_stage":"proposal","amount":"99.50","currency":"EUR","close_date":"2026-11-20","company":{"id":"C-CLI","name":"Cli AG"}}}`)
	for _, addr := range intakes {
		if err := run(ctx, "--config", files[0], "webhook", "send", "--connection", "shop", "--id", "msg_cli",
			"--url", "http://"+addr+"/webhooks/shop", event); err != nil {
			t.Fatalf("webhook send to %s: %v", addr, err)
		}
	}
	c := temporalClient(ctx, t, srv)
	var result workflows.InvoiceDealResult
	if err := c.GetWorkflow(ctx, workflows.WorkflowID("shop", "D-CLI"), "").Get(ctx, &result); err != nil {
		t.Fatalf("run: %v", err)
	}
	invs := erp.Invoices()
	if len(invs) != 1 || invs[0].Reference != "D-CLI" || invs[0].Total != "99.50" {
		t.Fatalf("want exactly one invoice for D-CLI of 99.50, got %+v", invs)
	}
	// The registry has counted this test's deliveries (one run started,
	// one duplicate), its invoice step and the SDK's own metrics of its
	// run (some recorded just after the run closed: wait, bounded by ctx).
	var after countedMetrics
	for {
		after = counted()
		if after.started > before.started && after.duplicate > before.duplicate && after.invoiceOK > before.invoiceOK &&
			after.completed > before.completed && after.localActivities > before.localActivities {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("metrics before the deliveries %+v, after the run %+v: want one more started and duplicate delivery, invoice step, completed workflow and local activity", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after.started != before.started+1 || after.duplicate != before.duplicate+1 {
		t.Errorf("deliveries counted started %v → %v, duplicate %v → %v: want one of each", before.started, after.started, before.duplicate, after.duplicate)
	}
	// Every metrics endpoint serves the registry.
	started := fmt.Sprintf("dealsync_webhook_events_total{connection=\"shop\",outcome=\"started\"} %v\n", after.started)
	for _, addr := range metricsAddrs {
		if body := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, started) {
			t.Errorf("%s/metrics does not show %q", addr, started)
		}
	}
	// What an operator types in the Web UI finds the run (visibility is
	// written asynchronously: wait for it, bounded by ctx).
	query := `SyncStatus = "invoiced" AND DealId = "D-CLI" AND ErpInvoiceId = "` + invs[0].ID + `"`
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err == nil && len(resp.GetExecutions()) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("query %s never found the run (last error %v, %d runs)", query, err, len(resp.GetExecutions()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countedMetrics are the registry's values testProductionShape checks.
type countedMetrics struct {
	started, duplicate, invoiceOK float64 // connection shop
	completed, localActivities    float64 // every series: the SDK's labels vary
}

// sumSeries sums the values (of a counter) or the sample counts (of a
// histogram) of every series of a metric in metrics.Registry.
func sumSeries(t *testing.T, name string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			}
		}
	}
	return sum
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func TestInvalidConfigStopsBeforeStartingAndListsEveryProblem(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte(`
intake: {listn: ":8080", max_body_bytes: 10}
connections:
  shop:
    source: {type: generic, secret: env:DEALSYNC_TEST_UNSET_SECRET}
    target: nowhere
`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), "--config", f, "serve")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("want exit code 2, got %v", err)
	}
	for _, key := range []string{"intake.listn", "intake.max_body_bytes", "connections.shop.target", "connections.shop.source.secret"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

// `dealsync sandbox` serves the sandbox ERP alone (docker-compose.yml's
// sandbox-erp), with the faults of the config's sandbox block.
func TestSandboxCommandServesTheSandboxERP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := filepath.Join(t.TempDir(), "dealsync.yaml")
	if err := os.WriteFile(f, []byte("log: {level: warn}\nsandbox: {rate_limit_rate: 1, retry_after: 7s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	done := runSandboxCmd(ctx, t, "--config", f, "sandbox", "--listen", addr)
	// Calls to the ERP API are refused with 429 by the configured faults.
	resp := postSandboxCustomer(t, addr)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("POST /customers: %d, Retry-After %q; want 429 with the config's Retry-After 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox: %v", err)
	}
}

// postSandboxCustomer creates customer C-1 (idempotency key k1) on the
// sandbox at addr and returns the closed response.
func postSandboxCustomer(t *testing.T, addr string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/customers", strings.NewReader(`{"name":"Acme","external_id":"C-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// runSandboxCmd runs `dealsync args...` (a sandbox command) until ctx is
// done and returns once the sandbox answers; the channel gets the
// command's result.
func runSandboxCmd(ctx context.Context, t *testing.T, args ...string) <-chan error {
	t.Helper()
	addr := flagValue(args, "--listen")
	done := make(chan error, 1)
	go func() { done <- run(ctx, args...) }()
	var err error
	for ctx.Err() == nil {
		var resp *http.Response
		if resp, err = http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return done
		}
		select {
		case err := <-done:
			t.Fatalf("the sandbox stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("the sandbox never answered: %v", err)
	return nil
}

// `dealsync sandbox --journal FILE` (docker-compose.yml's sandbox-erp)
// keeps the sandbox's data across a restart.
func TestSandboxCommandKeepsItsDataInTheJournal(t *testing.T) {
	journal := filepath.Join(t.TempDir(), "erp", "sandbox.jsonl")
	addr := freeAddr(t)
	for i, want := range []string{"", "true"} { // created, then replayed after the restart
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		done := runSandboxCmd(ctx, t, "sandbox", "--listen", addr, "--journal", journal)
		if resp := postSandboxCustomer(t, addr); resp.StatusCode != http.StatusCreated || resp.Header.Get("Idempotent-Replayed") != want {
			t.Errorf("start %d: POST /customers %d, replayed %q; want 201, replayed %q", i+1, resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("sandbox: %v", err)
		}
	}
}

// A --query that would widen the selection (a parenthesis it did not
// open) is a usage error, refused before Temporal is dialled (--dev's
// server is not running here).
func TestRunsRetryRefusesAQueryThatWidensTheSelection(t *testing.T) {
	_, err := runOut(context.Background(), "runs", "retry", "--dev", "--query", `Connection = "shop") OR (ExecutionStatus = "Completed"`)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "invalid --query") || !strings.Contains(err.Error(), "closed that was not opened") {
		t.Fatalf("exit %d, %v; want a usage error naming the query", exitCode(err), err)
	}
}

// A negative --limit is a usage error (it read as "no limit", and a retry
// started every failed run).
func TestRunsRetryRefusesANegativeLimit(t *testing.T) {
	_, err := runOut(context.Background(), "runs", "retry", "--dev", "--limit", "-1")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--limit -1") {
		t.Fatalf("exit %d, %v; want a usage error naming --limit -1", exitCode(err), err)
	}
}

// --no-invoice-found retries in full runs whose invoice may exist: with
// --writeback, whose runs make no invoice, it is a usage error.
func TestRunsRetryRefusesNoInvoiceFoundWithWriteBack(t *testing.T) {
	_, err := runOut(context.Background(), "runs", "retry", "--dev", "--writeback", "--no-invoice-found")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--no-invoice-found") {
		t.Fatalf("exit %d, %v; want a usage error naming --no-invoice-found", exitCode(err), err)
	}
}
