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
