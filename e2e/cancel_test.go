package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/workflows"
)

// A run that an operator cancels (Request Cancellation in the Web UI)
// during a step, here while the step waits out the ERP's Retry-After,
// ends Canceled with SyncStatus "pending": nothing of its invoice was
// made. It was marked "failed", among the runs that need someone, as if
// its invoice might exist.
func TestRunCanceledDuringAStepStaysPending(t *testing.T) {
	// The run settles (a moment), so that its invoice step is made one
	// attempt at a time: a cancel between refused attempts makes no other.
	s := startStack(t, stackOptions{env: map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "100ms"}})
	for _, c := range []struct {
		step, deal string
		faults     sandbox.Faults
	}{
		// Every call refused: the customer step's first attempt.
		{"customer", "D-CXL-C", sandbox.Faults{RateLimitRate: 1, RetryAfter: time.Hour}},
		// The invoice's first attempt refused.
		{"invoice", "D-CXL-I", sandbox.Faults{Script: []int{http.StatusTooManyRequests}, RetryAfter: time.Hour}},
	} {
		t.Run("canceled in the "+c.step+" step", func(t *testing.T) {
			before := s.Sandbox.Stats().Faults[http.StatusTooManyRequests]
			s.Sandbox.SetFaults(c.faults)
			defer s.Sandbox.SetFaults(sandbox.Faults{})
			id := workflows.WorkflowID("demo", c.deal)
			if r := s.send(t, delivery{body: event("evt_"+c.deal, c.deal, nil)}); r.status != http.StatusAccepted {
				t.Fatalf("%d %s", r.status, r.body)
			}
			// The step got its 429, and waits an hour for its retry.
			deadline := time.Now().Add(30 * time.Second)
			for s.Sandbox.Stats().Faults[http.StatusTooManyRequests] == before {
				if time.Now().After(deadline) {
					t.Fatal("the step was never refused")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := s.Client.CancelWorkflow(context.Background(), id, ""); err != nil {
				t.Fatal(err)
			}
			var canceled *temporal.CanceledError
			if err := s.waitRun(t, id, nil); !errors.As(err, &canceled) {
				t.Fatalf("%v; want the run canceled", err)
			}
			if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Canceled" AND SyncStatus = "pending"`, id), 1); n != 1 {
				t.Errorf("%d canceled runs of %s with SyncStatus pending, want 1 (not failed: nothing was made)", n, c.deal)
			}
			if n := s.invoicesFor(c.deal); n != 0 {
				t.Errorf("%d invoices, want none", n)
			}
			s.keepHistory(t, id, "generic-local-canceled-in-"+c.step+"-step")
		})
	}
}
