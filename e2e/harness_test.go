package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/workflows"
	"github.com/dealsync/dealsync/workflows/histories"
)

// stack is a running dev stack for one test.
type stack struct {
	*app.Dev
	cfg *config.Config
}

// stackOptions adjust startStack.
type stackOptions struct {
	// env is applied (t.Setenv) before the config loads.
	env map[string]string
	// configFile is an optional YAML config.
	configFile string
	// mutate edits the loaded config before the stack starts.
	mutate func(*config.Config)
	// dataDir keeps Temporal's data in a file there instead of in memory.
	dataDir string
	// workerOptions are the dev worker's (app.DevOptions.WorkerOptions).
	workerOptions sdkworker.Options
}

// startStack loads the dev config (plus opts) on free ports and starts the
// whole stack in-process; it is closed when the test ends.
func startStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	addrs := freeAddrs(t, 2)
	t.Setenv("DEALSYNC_INTAKE_LISTEN", addrs[0])
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", addrs[1])
	// Fast retries keep fault tests short; the policy itself is what is tested.
	t.Setenv("DEALSYNC_WORKFLOW_RETRY_INITIAL_INTERVAL", "100ms")
	t.Setenv("DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL", "1s")
	t.Setenv("DEALSYNC_INTAKE_START_TIMEOUT", "3s")
	for k, v := range opts.env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(opts.configFile, config.WithDevDefaults())
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if opts.mutate != nil {
		opts.mutate(cfg)
	}
	devOpts := app.DevOptions{InMemory: true, FrontendPort: -1, UIPort: -1, WorkerOptions: opts.workerOptions}
	if opts.dataDir != "" {
		cfg.Dev.DataDir = opts.dataDir
		devOpts.InMemory = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := app.StartDev(ctx, cfg, testLogger(t), devOpts)
	if err != nil {
		t.Fatalf("starting dev stack: %v", err)
	}
	t.Cleanup(d.Close)
	return &stack{Dev: d, cfg: cfg}
}

// testLogger sends warnings and errors to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := devserver.FreeAddrs("127.0.0.1", n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// delivery is one webhook POST.
type delivery struct {
	connection  string
	body        []byte
	msgID       string
	timestamp   time.Time
	secret      string // default config.DevSecret
	contentType string // default application/json
	unsigned    bool
	method      string
}

// reply is the intake's answer.
type reply struct {
	status int
	body   []byte
	parsed connectors.Reply
}

// send posts d and fails the test when it cannot, or when a 2xx reply is
// not the results shape.
func (s *stack) send(t *testing.T, d delivery) reply {
	t.Helper()
	r, err := s.trySend(d)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// trySend is send for goroutines other than the test's, which must not
// call t.Fatal: it returns what went wrong.
func (s *stack) trySend(d delivery) (reply, error) {
	if d.connection == "" {
		d.connection = "demo"
	}
	if d.secret == "" {
		d.secret = config.DevSecret
	}
	if d.timestamp.IsZero() {
		d.timestamp = time.Now()
	}
	if d.msgID == "" {
		d.msgID = fmt.Sprintf("msg_%d", time.Now().UnixNano())
	}
	if d.contentType == "" {
		d.contentType = "application/json"
	}
	if d.method == "" {
		d.method = http.MethodPost
	}
	req, err := http.NewRequest(d.method, s.IntakeURL+"/webhooks/"+d.connection, bytes.NewReader(d.body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", d.contentType)
	if !d.unsigned {
		if err := generic.SignRequest(req, d.secret, d.msgID, d.timestamp, d.body); err != nil {
			return reply{}, err
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("POST webhook: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("reading the reply: %w", err)
	}
	r := reply{status: resp.StatusCode, body: body}
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(body, &r.parsed); err != nil {
			return r, fmt.Errorf("reply %d is not the JSON results shape: %v\n%s", resp.StatusCode, err, body)
		}
	}
	return r, nil
}

// event builds a generic event; mutate edits the deal map before encoding.
func event(eventID, dealID string, mutate func(deal map[string]any)) []byte {
	deal := map[string]any{
		"id":             dealID,
		"name":           "Deal " + dealID,
		"stage":          "closed_won",
		"previous_stage": "negotiation",
		"amount":         "12000.00",
		"currency":       "EUR",
		"close_date":     "2026-11-20",
		"company":        map[string]any{"id": "C-" + dealID, "name": "Acme GmbH", "email": "ap@acme.example"},
		"line_items": []any{
			map[string]any{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": "12000.00"},
		},
	}
	if mutate != nil {
		mutate(deal)
	}
	b, err := json.Marshal(map[string]any{"event_id": eventID, "occurred_at": "2026-11-20T10:00:00Z", "deal": deal})
	if err != nil {
		panic(err)
	}
	return b
}

// waitRun waits for a run to close and returns its error (nil on success).
func (s *stack) waitRun(t *testing.T, workflowID string, result any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return s.Client.GetWorkflow(ctx, workflowID, "").Get(ctx, result)
}

// runExists reports whether any run has workflowID.
func (s *stack) runExists(t *testing.T, workflowID string) bool {
	t.Helper()
	_, err := s.Client.DescribeWorkflowExecution(context.Background(), workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false
	}
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	return true
}

// countRuns counts runs matching a visibility query, waiting for the
// (eventually consistent) visibility store to reach want or the deadline.
func (s *stack) countRuns(t *testing.T, query string, want int64) int64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := s.Client.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("count %q: %v", query, err)
		}
		if resp.GetCount() == want || time.Now().After(deadline) {
			return resp.GetCount()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// invoicesFor lists the sandbox ERP's invoices for a deal (reference).
func (s *stack) invoicesFor(reference string) int {
	n := 0
	for _, inv := range s.Sandbox.Invoices() {
		if inv.Reference == reference {
			n++
		}
	}
	return n
}

// deliverTimes sends the same delivery n times (a CRM retrying it) and
// returns the one workflow ID every reply names.
func (s *stack) deliverTimes(t *testing.T, d delivery, n int) string {
	t.Helper()
	var first string
	for i := 0; i < n; i++ {
		r := s.send(t, d)
		if r.status != http.StatusAccepted || len(r.parsed.Results) != 1 {
			t.Fatalf("delivery %d: %d %s", i, r.status, r.body)
		}
		if id := r.parsed.Results[0].WorkflowID; i == 0 {
			first = id
		} else if id != first {
			t.Fatalf("delivery %d went to %q, not %q", i, id, first)
		}
	}
	return first
}

// invoiceDeal delivers one event and returns the result of its run.
func (s *stack) invoiceDeal(t *testing.T, d delivery) workflows.InvoiceDealResult {
	t.Helper()
	id := s.deliverTimes(t, d, 1)
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, id, &out); err != nil {
		t.Fatalf("run %s failed: %v", id, err)
	}
	return out
}

// keepHistory records the history of a workflow's latest run under name for
// the replay test of package workflows, when histories.Env is set.
func (s *stack) keepHistory(t *testing.T, workflowID, name string) {
	t.Helper()
	s.keepRunHistory(t, workflowID, "", name)
}

// keepRunHistory is keepHistory of one run of workflowID (the latest when
// runID is "").
func (s *stack) keepRunHistory(t *testing.T, workflowID, runID, name string) {
	t.Helper()
	if !histories.Recording() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wrote, err := histories.Record(ctx, s.Client, filepath.Join("..", histories.Dir), workflowID, runID, name)
	if err != nil {
		t.Fatalf("recording %s: %v", name, err)
	}
	if wrote {
		t.Logf("recorded the history of %s as %s", workflowID, name)
	}
}
