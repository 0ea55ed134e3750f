package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// crmReceiver is an in-house CRM's endpoint for the generic source's
// write-back: it checks every POST's Standard Webhooks signature with the
// generic package's own Verify, records those it took (one per
// webhook-id, as a receiver that dedupes does) and answers each deal's
// attempts with the statuses it is given, then 200.
type crmReceiver struct {
	*httptest.Server
	secret string

	mu       sync.Mutex
	answers  map[string][]int // deal id → statuses of its next attempts
	attempts map[string]int   // deal id → POSTs received
	taken    map[string][]crmCallback
	ids      map[string]bool
	refused  []string // why a POST was not verified
}

type crmCallback struct {
	ID   string
	Body struct {
		Type    string `json:"type"`
		Account string `json:"account"`
		DealID  string `json:"deal_id"`
		Invoice struct {
			ID, Number, URL string
		} `json:"invoice"`
	}
}

func newCRMReceiver(t *testing.T, secret string) *crmReceiver {
	r := &crmReceiver{secret: secret, answers: map[string][]int{}, attempts: map[string]int{}, taken: map[string][]crmCallback{}, ids: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := generic.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil || req.URL.Path != "/dealsync/invoices" {
			r.refused = append(r.refused, fmt.Sprintf("%s: %v", req.URL.Path, err))
			http.Error(w, "signature refused", http.StatusUnauthorized)
			return
		}
		var cb crmCallback
		cb.ID = req.Header.Get(generic.HeaderID)
		if err := json.Unmarshal(body, &cb.Body); err != nil {
			r.refused = append(r.refused, err.Error())
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		deal := cb.Body.DealID
		r.attempts[deal]++
		if a := r.answers[deal]; len(a) > 0 {
			r.answers[deal] = a[1:]
			w.WriteHeader(a[0])
			_, _ = fmt.Fprintf(w, `{"error":"deal %s is locked for edits"}`, deal)
			return
		}
		if !r.ids[cb.ID] {
			r.ids[cb.ID] = true
			r.taken[deal] = append(r.taken[deal], cb)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *crmReceiver) answer(deal string, statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[deal] = statuses
}

func (r *crmReceiver) state(deal string) (attempts int, taken []crmCallback, refused []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[deal], append([]crmCallback(nil), r.taken[deal]...), append([]string(nil), r.refused...)
}

// A generic connection with write_back.url tells the CRM each deal's
// invoice by a signed POST: once per invoice, retried after a 500, and a
// 400 ends the run WriteBackFailed (the invoice made once), which runs
// retry --writeback mends. A generic connection without it (demo) has no
// write-back step.
func TestGenericWriteBack(t *testing.T) {
	const secret = "whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM="
	crm := newCRMReceiver(t, secret)
	s := startCRMStack(t, fmt.Sprintf(`
connections:
  inhouse:
    target: sandbox
    source:
      type: generic
      secret: %q
      write_back:
        url: %s/dealsync/invoices
`, secret, crm.URL))
	won := func(t *testing.T, deal string) string {
		t.Helper()
		r := s.send(t, delivery{connection: "inhouse", secret: secret, body: event("evt_"+deal, deal, nil)})
		if r.status != http.StatusAccepted || len(r.parsed.Results) != 1 || r.parsed.Results[0].WorkflowID != workflows.WorkflowID("inhouse", deal) {
			t.Fatalf("delivery: %d %s", r.status, r.body)
		}
		return r.parsed.Results[0].WorkflowID
	}
	// taken checks that the CRM took one callback of the deal, naming its
	// one invoice.
	taken := func(t *testing.T, deal string, attempts int) crmCallback {
		t.Helper()
		inv := invoiceIn(t, s.Sandbox, deal)
		n, cbs, refused := crm.state(deal)
		if len(refused) > 0 {
			t.Fatalf("the CRM refused POSTs: %q", refused)
		}
		if n != attempts || len(cbs) != 1 {
			t.Fatalf("the CRM got %d POSTs and took %d callbacks of deal %s, want %d and 1", n, len(cbs), deal, attempts)
		}
		cb := cbs[0]
		if cb.Body.Type != "invoice.synced" || cb.Body.DealID != deal || cb.Body.Account != "" ||
			cb.Body.Invoice.ID != inv.ID || cb.Body.Invoice.Number != inv.Number || cb.ID != generic.WriteBackID("", deal, inv.ID) {
			t.Fatalf("callback %+v, want deal %s's invoice %s (%s)", cb, deal, inv.ID, inv.Number)
		}
		return cb
	}

	t.Run("a won deal is invoiced once and the CRM told once", func(t *testing.T) {
		id := won(t, "GW-1")
		var out workflows.InvoiceDealResult
		if err := s.waitRun(t, id, &out); err != nil {
			t.Fatal(err)
		}
		if cb := taken(t, "GW-1", 1); cb.Body.Invoice.ID != out.InvoiceID {
			t.Fatalf("the CRM was told invoice %s, the run made %s", cb.Body.Invoice.ID, out.InvoiceID)
		}
		if calls := callsOf(t, s, id, "WriteBack"); len(calls) != 1 {
			t.Fatalf("WriteBack steps %v, want 1", calls)
		}
	})

	t.Run("a 500 is retried and the callback taken once", func(t *testing.T) {
		crm.answer("GW-2", http.StatusInternalServerError)
		id := won(t, "GW-2")
		if err := s.waitRun(t, id, nil); err != nil {
			t.Fatal(err)
		}
		taken(t, "GW-2", 2)
		if calls := callsOf(t, s, id, "WriteBack"); len(calls) != 1 || calls[0] != 2 {
			t.Fatalf("WriteBack steps ended on attempts %v, want one on attempt 2", calls)
		}
	})

	t.Run("a 400 ends the run WriteBackFailed; runs retry --writeback tells the CRM", func(t *testing.T) {
		crm.answer("GW-3", http.StatusBadRequest)
		id := won(t, "GW-3")
		err := s.waitRun(t, id, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeWriteBackFailed || !appErr.NonRetryable() {
			t.Fatalf("run: %v; want it failed WriteBackFailed", err)
		}
		inv := invoiceIn(t, s.Sandbox, "GW-3")
		for _, want := range []string{"invoice " + inv.ID + " was created, but writing it back to the CRM failed",
			"write the invoice back with `dealsync runs retry --writeback`, which creates no second invoice",
			"generic write back to " + crm.URL + "/dealsync/invoices: HTTP 400", `{"error":"deal GW-3 is locked for edits"}`} {
			if !strings.Contains(appErr.Error(), want) {
				t.Errorf("failure %q\nlacks %q", appErr.Error(), want)
			}
		}
		if n, cbs, _ := crm.state("GW-3"); n != 1 || len(cbs) != 0 {
			t.Fatalf("the CRM got %d POSTs and took %d, want 1 (not retried) and none", n, len(cbs))
		}
		if n := s.countRuns(t, `WorkflowId = "`+id+`" AND ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed"`, 1); n != 1 {
			t.Fatalf("the run list shows %d failed write-backs of the deal, want 1", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		results, err := rerun.Failed(ctx, s.Client, s.Connections, app.Starter(s.cfg, s.Client, false),
			rerun.Options{TaskQueue: s.cfg.Temporal.TaskQueue, WriteBack: true, Query: `DealId = "GW-3"`})
		if err != nil || len(results) != 1 || results[0].NewRun == "" {
			t.Fatalf("runs retry --writeback: %+v, %v", results, err)
		}
		var out workflows.InvoiceDealResult
		if err := s.Client.GetWorkflow(ctx, id, results[0].NewRun).Get(ctx, &out); err != nil {
			t.Fatalf("the write-back run: %v", err)
		}
		if out.InvoiceID != inv.ID || s.invoicesFor("GW-3") != 1 {
			t.Fatalf("after the retry: run's invoice %s (ERP %s), %d invoices; want the same one invoice", out.InvoiceID, inv.ID, s.invoicesFor("GW-3"))
		}
		taken(t, "GW-3", 2)
	})

	t.Run("a run that completed before its connection wrote back: runs retry --writeback --completed tells the CRM once", func(t *testing.T) {
		// The run as a dealsync started it before write_back.url was set:
		// its input has no write-back to do, and it completes invoiced.
		conn, ok := s.Connections.Get("inhouse")
		if !ok {
			t.Fatal("no connection inhouse")
		}
		before := *conn
		before.WriteBacker = nil
		evs, err := conn.Source.Parse(&connectors.Webhook{Body: event("evt_GW-4", "GW-4", nil), Received: time.Now()})
		if err != nil || len(evs) != 1 {
			t.Fatalf("parsing the event: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		starter := app.Starter(s.cfg, s.Client, false)
		res, err := starter.Start(ctx, &before, evs[0])
		if err != nil {
			t.Fatal(err)
		}
		var first workflows.InvoiceDealResult
		if err := s.waitRun(t, res.WorkflowID, &first); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := crm.state("GW-4"); n != 0 || len(callsOf(t, s, res.WorkflowID, "WriteBack")) != 0 {
			t.Fatalf("the run wrote back (%d POSTs) without write_back when it started", n)
		}
		if n := s.countRuns(t, `WorkflowId = "`+res.WorkflowID+`" AND ExecutionStatus = "Completed" AND SyncStatus = "invoiced"`, 1); n != 1 {
			t.Fatalf("the run list shows %d completed invoiced runs of the deal, want 1", n)
		}
		retry := func(o rerun.Options) []rerun.Result {
			t.Helper()
			o.TaskQueue, o.Query = s.cfg.Temporal.TaskQueue, `DealId = "GW-4"`
			results, err := rerun.Failed(ctx, s.Client, s.Connections, starter, o)
			if err != nil {
				t.Fatalf("runs retry %+v: %+v, %v", o, results, err)
			}
			return results
		}
		// Without --completed a completed run is not selected.
		if results := retry(rerun.Options{WriteBack: true}); len(results) != 0 {
			t.Fatalf("runs retry --writeback selected %+v, want no completed run", results)
		}
		// The first write-back is refused: its own run fails, and the
		// deal's completed run is still the latest of the deal's ID, so a
		// delivery of the win again meets it (no second invoice).
		crm.answer("GW-4", http.StatusBadRequest)
		wbID := workflows.WriteBackWorkflowID("inhouse", "", "GW-4")
		results := retry(rerun.Options{WriteBack: true, Completed: true})
		if len(results) != 1 || results[0].NewRun == "" || results[0].CompletedRun != res.RunID || results[0].FailedRun != "" || results[0].NewWorkflowID != wbID {
			t.Fatalf("runs retry --writeback --completed: %+v, want a run of %s", results, wbID)
		}
		var appErr *temporal.ApplicationError
		if err := s.Client.GetWorkflow(ctx, wbID, results[0].NewRun).Get(ctx, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeWriteBackFailed {
			t.Fatalf("the write-back run %s: %v, want it failed WriteBackFailed", wbID, err)
		}
		if id := won(t, "GW-4"); id != res.WorkflowID {
			t.Fatalf("the win again went to %s", id)
		}
		if d, err := s.Client.DescribeWorkflowExecution(ctx, res.WorkflowID, ""); err != nil || d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != res.RunID {
			t.Fatalf("the deal's latest run: %v, %v; want the completed run %s still", d, err, res.RunID)
		}
		// The failed write-back is retried as any: under its own ID. The
		// deal's completed run is not written back a second way meanwhile.
		if n := s.countRuns(t, `WorkflowId = "`+wbID+`" AND ExecutionStatus = "Failed" AND SyncStatus = "writeback_failed"`, 1); n != 1 {
			t.Fatalf("the run list shows %d failed write-backs, want 1", n)
		}
		dry := retry(rerun.Options{WriteBack: true, Completed: true, DryRun: true})
		if len(dry) != 2 {
			t.Fatalf("runs retry --writeback --completed --dry-run after the failed write-back: %+v", dry)
		}
		for _, r := range dry {
			switch r.Run() {
			case res.RunID:
				if !strings.HasPrefix(r.Skipped, "its write-back run "+wbID+" (run "+results[0].NewRun+") failed") {
					t.Errorf("the deal's completed run: %+v, want it skipped for its failed write-back run", r)
				}
			case results[0].NewRun:
				if r.Skipped != "dry run" || r.WorkflowID != wbID || r.NewWorkflowID != "" {
					t.Errorf("the failed write-back run: %+v, want it to start again under its ID", r)
				}
			default:
				t.Errorf("selected %+v", r)
			}
		}
		results = retry(rerun.Options{WriteBack: true})
		if len(results) != 1 || results[0].NewRun == "" || results[0].WorkflowID != wbID {
			t.Fatalf("runs retry --writeback of the failed write-back: %+v", results)
		}
		var out workflows.InvoiceDealResult
		if err := s.Client.GetWorkflow(ctx, wbID, results[0].NewRun).Get(ctx, &out); err != nil {
			t.Fatalf("the write-back run: %v", err)
		}
		if out.InvoiceID != first.InvoiceID || s.invoicesFor("GW-4") != 1 {
			t.Fatalf("after the write-back: run's invoice %s (first run's %s), %d invoices; want the same one invoice", out.InvoiceID, first.InvoiceID, s.invoicesFor("GW-4"))
		}
		taken(t, "GW-4", 2)
		// Again: the completed run's invoice was written back, and the
		// write-back run that did it wrote it back; nothing is started.
		if n := s.countRuns(t, `WorkflowId = "`+wbID+`" AND ExecutionStatus = "Completed"`, 1); n != 1 {
			t.Fatalf("the run list shows %d completed write-back runs, want 1", n)
		}
		again := retry(rerun.Options{WriteBack: true, Completed: true})
		want := map[string]string{
			res.RunID:         "its invoice was written back by " + wbID,
			results[0].Run():  "a later run " + results[0].NewRun + " (Completed",
			results[0].NewRun: "the run wrote its invoice back",
		}
		if len(again) != len(want) {
			t.Fatalf("runs retry --writeback --completed again: %+v, want the deal's run and its two write-back runs, skipped", again)
		}
		for _, r := range again {
			if r.NewRun != "" || r.Error != "" || want[r.Run()] == "" || !strings.HasPrefix(r.Skipped, want[r.Run()]) {
				t.Errorf("runs retry --writeback --completed again: %+v, want it skipped: %q", r, want[r.Run()])
			}
		}
		taken(t, "GW-4", 2)
	})

	t.Run("a generic connection without write_back has no write-back step", func(t *testing.T) {
		demo, ok := s.Connections.Get("demo")
		if !ok || demo.WriteBacker != nil {
			t.Fatalf("demo connection %v: WriteBacker %T, want none", ok, demo.WriteBacker)
		}
		id := s.deliverTimes(t, delivery{body: event("evt_gw_demo", "GW-DEMO", nil)}, 1)
		if err := s.waitRun(t, id, nil); err != nil {
			t.Fatal(err)
		}
		if calls := callsOf(t, s, id, "WriteBack"); len(calls) != 0 {
			t.Fatalf("WriteBack steps %v in a run without write_back", calls)
		}
		if n, _, _ := crm.state("GW-DEMO"); n != 0 {
			t.Fatalf("the CRM got %d POSTs of a connection without write_back", n)
		}
	})
}
