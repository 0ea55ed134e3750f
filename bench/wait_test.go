package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// listings answers the i-th listing with the i-th entry (the last one
// from then on); a nil entry with err fails it.
type listings struct {
	mu    sync.Mutex
	calls int
	steps []func() ([]invoiceInfo, error)
}

func (l *listings) list(context.Context) ([]invoiceInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	step := l.steps[min(l.calls, len(l.steps)-1)]
	l.calls++
	return step()
}

func refs(rs ...string) func() ([]invoiceInfo, error) {
	return func() ([]invoiceInfo, error) {
		var out []invoiceInfo
		for _, r := range rs {
			out = append(out, invoiceInfo{Reference: r})
		}
		return out, nil
	}
}

func failing() ([]invoiceInfo, error) { return nil, errors.New("connection refused") }

// Review item 2: the wait stopped when the number of invoices reached the
// number of acknowledged deals, duplicates and unexpected ones included,
// with a deal still without one.
func TestWaitInvoicesWaitsForEveryDealNotForACount(t *testing.T) {
	want := map[string]bool{"B-r-1": true, "B-r-2": true}
	l := &listings{steps: []func() ([]invoiceInfo, error){
		refs("B-r-1", "B-r-1"),          // 2 invoices for 2 deals: one is a duplicate
		refs("B-r-1", "B-r-1", "B-r-9"), // 3, one unexpected
		refs("B-r-1", "B-r-1", "B-r-9", "B-r-2"),
	}}
	r := waitInvoices(context.Background(), want, invoiceWatch{list: l.list}, time.Hour)
	if r.end != waitDone || r.have != 2 || l.calls != 3 {
		t.Fatalf("end %v, have %d after %d listings; want done, 2 after 3", r.end, r.have, l.calls)
	}
	// The same with the in-process sandbox's cheap count.
	l = &listings{steps: l.steps}
	created := 1
	w := invoiceWatch{list: l.list, created: func() int { created++; return created }}
	if r := waitInvoices(context.Background(), want, w, time.Hour); r.end != waitDone || r.have != 2 {
		t.Fatalf("with a count: end %v, have %d", r.end, r.have)
	}
}

// Review item 8: a failed listing counted as a value (-1), and a change
// from or to it as progress, so a flapping sandbox held the wait up to the
// deadline.
func TestWaitInvoicesFailedListingIsNoProgress(t *testing.T) {
	want := map[string]bool{"B-r-1": true, "B-r-2": true}
	var steps []func() ([]invoiceInfo, error)
	for range 1000 {
		steps = append(steps, failing, refs("B-r-1"))
	}
	l := &listings{steps: append(steps, failing)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := waitInvoices(ctx, want, invoiceWatch{list: l.list, poll: time.Millisecond}, 20*time.Millisecond)
	if r.end != waitStalled || r.have != 1 {
		t.Fatalf("end %v, have %d, err %v; want stalled at 1 of 2", r.end, r.have, r.err)
	}
}

func TestWaitInvoicesEndsWithTheRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := &listings{steps: []func() ([]invoiceInfo, error){refs()}}
	if r := waitInvoices(ctx, map[string]bool{"B-r-1": true}, invoiceWatch{list: l.list}, time.Hour); r.end != waitStopped {
		t.Fatalf("end %v, want stopped", r.end)
	}
	if r := waitInvoices(ctx, map[string]bool{}, invoiceWatch{list: l.list}, time.Hour); r.end != waitDone {
		t.Fatalf("nothing to wait for: end %v", r.end)
	}
}

// Review item 4: noop counted executions of the last step, so a local
// activity run again (after a workflow task timeout) counted twice, and a
// late last step of the previous variant counted for the next.
func TestNoopCountsEachRunOnceForItsVariant(t *testing.T) {
	n := &noop{}
	n.reset(baselineWorkflowIDPrefix("r1", BaselineCalls))
	run := func(id string) {
		t.Helper()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(BaselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflowName})
		env.RegisterActivityWithOptions(n.Noop, activity.RegisterOptions{Name: noopName})
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
		steps := baselineSteps[BaselineCalls]
		env.ExecuteWorkflow(baselineWorkflowName, baselineInput{Local: steps.local, Remote: steps.remote})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
	}
	run(baselineWorkflowID("r1", BaselineCalls, 0))
	run(baselineWorkflowID("r1", BaselineCalls, 0)) // its last step again
	run(baselineWorkflowID("r1", BaselineCalls, 1))
	run(baselineWorkflowID("r1", BaselineLocal, 0)) // another variant's
	if done, last := n.doneRuns(); done != 2 || last.IsZero() {
		t.Fatalf("done %d (last %v), want 2 runs", done, last)
	}
	n.reset(baselineWorkflowIDPrefix("r1", BaselineLocal))
	if done, last := n.doneRuns(); done != 0 || !last.IsZero() {
		t.Fatalf("after reset: done %d, last %v", done, last)
	}
}

// Review item 4: the baseline's wait was bounded by --timeout only, not by
// --settle without progress.
func TestNoopWaitStopsAfterSettleWithoutProgress(t *testing.T) {
	n := &noop{}
	n.reset("bench/r1/local/")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if stalled := n.waitDone(ctx, 1, 20*time.Millisecond); !stalled || ctx.Err() != nil {
		t.Fatalf("stalled %v, ctx %v: want stalled before the deadline", stalled, ctx.Err())
	}
}

// countingClient answers CountWorkflow from count and records the queries.
type countingClient struct {
	client.Client
	mu      sync.Mutex
	queries []string
	count   func(query string) int64
}

func (c *countingClient) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	c.mu.Lock()
	c.queries = append(c.queries, req.GetQuery())
	c.mu.Unlock()
	return &workflowservice.CountWorkflowExecutionsResponse{Count: c.count(req.GetQuery())}, nil
}

// Review item 5: waitClosed and the failed-runs count looked at every run
// of the task queue (other phases', a running dealsync's own), not the
// phase's.
func TestRunCountsAreThePhasesOwn(t *testing.T) {
	c := &countingClient{count: func(string) int64 { return 0 }}
	if _, err := waitClosed(context.Background(), c, "dealsync", "invoice/demo/B-abc1231-", time.Second); err != nil {
		t.Fatal(err)
	}
	ds := &DealsyncResult{ackedDeals: map[string]bool{}, deals: map[string]bool{}}
	tgt := &target{c: c, taskQueue: "dealsync", sandboxURL: newFakeServer(t, &fakeDealsync{}), http: newHTTPClient(1)}
	finalCheck(context.Background(), Options{Connection: "demo", Settle: time.Second}, tgt, "abc123", ds, false)
	if len(c.queries) < 5 {
		t.Fatalf("queries: %q", c.queries)
	}
	for _, q := range c.queries {
		if !strings.Contains(q, `WorkflowId STARTS_WITH "invoice/demo/B-abc123`) {
			t.Errorf("query not limited to the bench's runs: %s", q)
		}
	}
}

// An acknowledged deal without an invoice is lost only when every run is
// closed; with runs open it is pending.
func TestFinalCheckTellsLostFromPending(t *testing.T) {
	acked := map[string]bool{"B-abc123-000000": true, "B-abc123-000001": true}
	for _, c := range []struct {
		open, closed  int64
		lost, pending int
		wantOpenRuns  int
		wantVerdict   string
	}{
		{open: 0, closed: 2, lost: 1, wantVerdict: VerdictViolated},
		{open: 1, closed: 1, pending: 1, wantOpenRuns: 1, wantVerdict: VerdictInconclusive},
		{open: 0, closed: 1, pending: 1, wantVerdict: VerdictInconclusive}, // a close row not written yet
	} {
		f := &fakeDealsync{}
		f.addInvoice("B-abc123-000000")
		srv := newFakeServer(t, f)
		cl := &countingClient{count: func(q string) int64 {
			switch {
			case strings.Contains(q, "!= 'Running'"):
				return c.closed
			case strings.Contains(q, "= 'Running'"):
				return c.open
			}
			return 0
		}}
		ds := &DealsyncResult{Deals: 2, ackedDeals: acked, deals: map[string]bool{"B-abc123-000000": true, "B-abc123-000001": true}}
		tgt := &target{c: cl, taskQueue: "dealsync", sandboxURL: srv, http: newHTTPClient(1)}
		finalCheck(context.Background(), Options{Connection: "demo", Settle: 10 * time.Millisecond}, tgt, "abc123", ds, false)
		if ds.Lost != c.lost || ds.Pending != c.pending || ds.OpenRuns != c.wantOpenRuns || ds.Invoices != 1 {
			t.Errorf("open %d closed %d: lost %d pending %d open runs %d invoices %d", c.open, c.closed, ds.Lost, ds.Pending, ds.OpenRuns, ds.Invoices)
		}
		if v, why := verdict(ds, ""); v != c.wantVerdict {
			t.Errorf("open %d closed %d: verdict %q (%s)", c.open, c.closed, v, why)
		}
	}
}
