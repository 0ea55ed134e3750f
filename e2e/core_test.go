package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// The core path, one stack for the happy-path and rejection cases, with
// the ERP calls as local activities (the default) and as regular ones.
func TestCorePath(t *testing.T) {
	for _, mode := range []string{"local", "activity"} {
		t.Run(mode, func(t *testing.T) {
			testCorePath(t, startStack(t, stackOptions{env: map[string]string{"DEALSYNC_WORKFLOW_EXTERNAL_CALLS": mode}}))
		})
	}
}

func testCorePath(t *testing.T, s *stack) {

	// An operator's "Start Workflow Like This One" in the Web UI, under a
	// random ID, starts the deal's run again with its input: its ERP steps
	// take the deal's idempotency keys, so the ERP answers with the deal's
	// invoice instead of making a second one.
	t.Run("a run started by hand under another ID meets the deal's invoice", func(t *testing.T) {
		first := s.invoiceDeal(t, delivery{body: event("evt_byhand", "D-BYHAND", nil)})
		id := workflows.WorkflowID("demo", "D-BYHAND")
		iter := s.Client.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		started := ev.GetWorkflowExecutionStartedEventAttributes()
		var in workflows.InvoiceDealInput
		if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
			t.Fatalf("the run's input: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "82434904-5c1f-4e5b-9d3a-1f0e2d3c4b5a",
			TaskQueue: started.GetTaskQueue().GetName()}, workflows.InvoiceDealName, in)
		if err != nil {
			t.Fatal(err)
		}
		var again workflows.InvoiceDealResult
		if err := run.Get(ctx, &again); err != nil {
			t.Fatalf("the run started by hand: %v", err)
		}
		if n := s.invoicesFor("D-BYHAND"); n != 1 || again.InvoiceID != first.InvoiceID {
			t.Fatalf("%d invoices for D-BYHAND, the run by hand answered %q (the deal's is %q); want the one invoice", n, again.InvoiceID, first.InvoiceID)
		}
	})

	// A workflow ID travels in a gRPC header, printable ASCII only: a
	// generic deal id with other characters failed its whole delivery
	// (500, for ever). It is invoiced once, under its escaped workflow ID,
	// and the deal beside it in the delivery too.
	t.Run("a deal id beyond printable ASCII is invoiced once", func(t *testing.T) {
		body := []byte("[" + string(event("evt_uni", "Zoë-2", nil)) + "," + string(event("evt_uni_b", "D-UNI-B", nil)) + "]")
		r := s.send(t, delivery{body: body})
		if r.status != http.StatusAccepted || len(r.parsed.Results) != 2 || r.parsed.Results[0].WorkflowID != "invoice/demo/Zo%C3%AB-2" {
			t.Fatalf("delivery: %d %s", r.status, r.body)
		}
		for _, res := range r.parsed.Results {
			if err := s.waitRun(t, res.WorkflowID, nil); err != nil {
				t.Fatalf("run %s: %v", res.WorkflowID, err)
			}
		}
		if again := s.send(t, delivery{body: body}); again.status != http.StatusAccepted || !again.parsed.Results[0].Duplicate {
			t.Fatalf("the delivery again: %d %s, want a duplicate", again.status, again.body)
		}
		if n, m := s.invoicesFor("Zoë-2"), s.invoicesFor("D-UNI-B"); n != 1 || m != 1 {
			t.Fatalf("%d invoices for Zoë-2 and %d for D-UNI-B, want 1 each", n, m)
		}
		if n := s.countRuns(t, `DealId = "Zoë-2" AND SyncStatus = "invoiced"`, 1); n != 1 {
			t.Fatalf("%d invoiced runs with DealId Zoë-2, want 1 (the search attribute keeps the id as it is)", n)
		}
		// A step run as an activity has a heartbeat timeout, so that a
		// worker that dies mid-call is found out within it rather than
		// at the end of activity_timeout (the worker heartbeats it).
		iter := s.Client.GetWorkflowHistory(context.Background(), r.parsed.Results[1].WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetHeartbeatTimeout().AsDuration() != workflows.ActivityHeartbeatTimeout {
				t.Errorf("activity %s scheduled with heartbeat timeout %v, want %v", a.GetActivityType().GetName(), a.GetHeartbeatTimeout().AsDuration(), workflows.ActivityHeartbeatTimeout)
			}
		}
	})

	t.Run("same event delivered 3 times makes one run and one invoice", func(t *testing.T) {
		body := event("evt_dup", "D-DUP", nil)
		first := s.send(t, delivery{body: body, msgID: "msg_dup"})
		if first.status != http.StatusAccepted {
			t.Fatalf("first delivery: %d %s", first.status, first.body)
		}
		res := first.parsed.Results
		if len(res) != 1 || res[0].Duplicate || res[0].WorkflowID != workflows.WorkflowID("demo", "D-DUP") || res[0].RunID == "" {
			t.Fatalf("first delivery results: %+v", res)
		}
		var out workflows.InvoiceDealResult
		if err := s.waitRun(t, res[0].WorkflowID, &out); err != nil {
			t.Fatalf("run failed: %v", err)
		}
		if out.InvoiceID == "" || out.Number == "" || out.CustomerID == "" {
			t.Fatalf("run result lacks the ERP ids: %+v", out)
		}
		// Two retries of the same delivery after the run completed.
		for i := 0; i < 2; i++ {
			again := s.send(t, delivery{body: body, msgID: "msg_dup"})
			if again.status != http.StatusAccepted {
				t.Fatalf("repeat %d: %d %s", i, again.status, again.body)
			}
			r := again.parsed.Results[0]
			if !r.Duplicate || r.RunID != res[0].RunID {
				t.Fatalf("repeat %d should be a duplicate of run %s: %+v", i, res[0].RunID, r)
			}
		}
		if n := s.invoicesFor("D-DUP"); n != 1 {
			t.Fatalf("sandbox ERP has %d invoices for D-DUP, want 1", n)
		}
		if n := s.countRuns(t, `DealId = "D-DUP"`, 1); n != 1 {
			t.Fatalf("%d runs for D-DUP, want 1", n)
		}
		if n := s.countRuns(t, `DealId = "D-DUP" AND SyncStatus = "invoiced" AND ErpInvoiceId = "`+out.InvoiceID+`"`, 1); n != 1 {
			t.Fatalf("search attributes not set on the run (count %d)", n)
		}
		s.keepHistory(t, res[0].WorkflowID, "generic-"+s.cfg.Workflow.ExternalCalls+"-invoiced")
	})

	t.Run("a burst of concurrent deliveries of one deal makes one run", func(t *testing.T) {
		var wg, ready sync.WaitGroup
		replies := make([]reply, 3)
		errs := make([]error, 3)
		gun := make(chan struct{})
		for i := range replies {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				d := delivery{body: event(fmt.Sprintf("evt_burst_%d", i), "D-BURST", nil)}
				ready.Done()
				<-gun // all three go at once
				replies[i], errs[i] = s.trySend(d)
			}()
		}
		ready.Wait()
		close(gun)
		wg.Wait()
		runIDs := map[string]bool{}
		fresh := 0
		for i, r := range replies {
			if errs[i] != nil {
				t.Fatalf("burst delivery %d: %v", i, errs[i])
			}
			if r.status != http.StatusAccepted {
				t.Fatalf("burst delivery: %d %s", r.status, r.body)
			}
			runIDs[r.parsed.Results[0].RunID] = true
			if !r.parsed.Results[0].Duplicate {
				fresh++
			}
		}
		if len(runIDs) != 1 || fresh != 1 {
			t.Fatalf("want 1 run reported fresh once, got runs %v, fresh %d", runIDs, fresh)
		}
		if err := s.waitRun(t, workflows.WorkflowID("demo", "D-BURST"), nil); err != nil {
			t.Fatal(err)
		}
		if n := s.invoicesFor("D-BURST"); n != 1 {
			t.Fatalf("%d invoices for D-BURST, want 1", n)
		}
	})

	t.Run("forged signature is 401 and starts nothing", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_forged", "D-FORGED", nil), secret: "whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0"})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("forged: %d %s", r.status, r.body)
		}
		if s.runExists(t, workflows.WorkflowID("demo", "D-FORGED")) {
			t.Fatal("a forged delivery started a run")
		}
		r = s.send(t, delivery{body: event("evt_unsigned", "D-FORGED", nil), unsigned: true})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("unsigned: %d %s", r.status, r.body)
		}
		if s.runExists(t, workflows.WorkflowID("demo", "D-FORGED")) {
			t.Fatal("an unsigned delivery started a run")
		}
	})

	t.Run("stale timestamp is 401", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_stale", "D-STALE", nil), timestamp: time.Now().Add(-6 * time.Minute)})
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "timestamp") {
			t.Fatalf("stale: %d %s", r.status, r.body)
		}
		if s.runExists(t, workflows.WorkflowID("demo", "D-STALE")) {
			t.Fatal("a stale delivery started a run")
		}
	})

	t.Run("a stage change that is not closed-won is 200 and starts nothing", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_neg", "D-NEG", func(d map[string]any) {
			d["stage"], d["previous_stage"] = "negotiation", "qualified"
		})})
		if r.status != http.StatusOK || len(r.parsed.Results) != 1 || r.parsed.Results[0].Skipped == "" {
			t.Fatalf("not won: %d %s", r.status, r.body)
		}
		if s.runExists(t, workflows.WorkflowID("demo", "D-NEG")) {
			t.Fatal("a non-triggering event started a run")
		}
	})

	t.Run("bad requests get the right status", func(t *testing.T) {
		cases := []struct {
			name string
			d    delivery
			want int
		}{
			{"malformed JSON", delivery{body: []byte(`{"event_id":`)}, http.StatusBadRequest},
			{"no deal id", delivery{body: []byte(`{"event_id":"e","deal":{"stage":"closed_won"}}`)}, http.StatusBadRequest},
			{"unknown connection", delivery{connection: "nope", body: event("e", "D", nil)}, http.StatusNotFound},
			{"wrong method", delivery{method: http.MethodGet, body: nil}, http.StatusMethodNotAllowed},
			{"not JSON", delivery{contentType: "text/plain", body: event("e", "D", nil)}, http.StatusUnsupportedMediaType},
			{"too large", delivery{body: []byte(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`)}, http.StatusRequestEntityTooLarge},
		}
		for _, c := range cases {
			if r := s.send(t, c.d); r.status != c.want {
				t.Errorf("%s: got %d %s, want %d", c.name, r.status, r.body, c.want)
			}
		}
	})

	t.Run("a deal under the body limit but over Temporal's input limit is 413", func(t *testing.T) {
		// 30,000 line items: under 1 MiB as sent, over the server's 2 MB
		// blob limit as a run's input (each item parsed, and the raw deal).
		body := event("evt_huge", "D-HUGE", func(d map[string]any) {
			items := make([]any, 30000)
			for i := range items {
				items[i] = map[string]any{"quantity": 1, "unit_price": 1}
			}
			d["line_items"], d["amount"] = items, "30000"
		})
		if len(body) >= 1<<20 {
			t.Fatalf("the body is %d bytes, want it under the intake's limit", len(body))
		}
		r := s.send(t, delivery{body: body})
		if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "too large for a run") {
			t.Fatalf("got %d %s, want 413 saying the deal is too large for a run", r.status, r.body)
		}
		if s.runExists(t, workflows.WorkflowID("demo", "D-HUGE")) {
			t.Fatal("a run exists for the deal")
		}
	})

	t.Run("a deal without currency fails without retrying, naming the field", func(t *testing.T) {
		r := s.send(t, delivery{body: event("evt_nocur", "D-NOCUR", func(d map[string]any) { delete(d, "currency") })})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		err := s.waitRun(t, workflows.WorkflowID("demo", "D-NOCUR"), nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("want an application error, got %v", err)
		}
		if !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeValidation || !strings.Contains(appErr.Error(), "invoice.currency") {
			t.Fatalf("failure should be a non-retryable validation error naming invoice.currency: type=%s nonretryable=%v msg=%s",
				appErr.Type(), appErr.NonRetryable(), appErr.Error())
		}
		desc, derr := s.Client.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID("demo", "D-NOCUR"), "")
		if derr != nil {
			t.Fatal(derr)
		}
		if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
			t.Fatalf("status %v, want FAILED", st)
		}
		if n := s.countRuns(t, `DealId = "D-NOCUR" AND SyncStatus = "failed"`, 1); n != 1 {
			t.Fatalf("SyncStatus=failed not visible (count %d)", n)
		}
		if n := s.invoicesFor("D-NOCUR"); n != 0 {
			t.Fatalf("%d invoices for an invalid deal", n)
		}
		s.keepHistory(t, workflows.WorkflowID("demo", "D-NOCUR"), "generic-"+s.cfg.Workflow.ExternalCalls+"-validation-failed")
		// A failed run may be triggered again by a later webhook (reuse
		// policy ALLOW_DUPLICATE_FAILED_ONLY): the fixed deal is invoiced.
		r = s.send(t, delivery{body: event("evt_nocur_fixed", "D-NOCUR", nil)})
		if r.status != http.StatusAccepted || r.parsed.Results[0].Duplicate {
			t.Fatalf("retrigger after failure: %d %s", r.status, r.body)
		}
		if err := s.waitRun(t, workflows.WorkflowID("demo", "D-NOCUR"), nil); err != nil {
			t.Fatalf("re-run: %v", err)
		}
		if n := s.invoicesFor("D-NOCUR"); n != 1 {
			t.Fatalf("%d invoices after the re-run, want 1", n)
		}
	})

	t.Run("ERP answering 503 then 429 still yields exactly one invoice", func(t *testing.T) {
		s.Sandbox.SetFaults(sandbox.Faults{Script: []int{503, 429}, RetryAfter: time.Second})
		defer s.Sandbox.SetFaults(sandbox.Faults{})
		before := s.Sandbox.Stats()
		r := s.send(t, delivery{body: event("evt_faults", "D-FAULTS", nil)})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if err := s.waitRun(t, workflows.WorkflowID("demo", "D-FAULTS"), nil); err != nil {
			t.Fatalf("run failed despite retryable faults: %v", err)
		}
		after := s.Sandbox.Stats()
		if after.Faults[503]-before.Faults[503] != 1 || after.Faults[429]-before.Faults[429] != 1 {
			t.Fatalf("faults not injected as scripted: before %+v after %+v", before.Faults, after.Faults)
		}
		if n := s.invoicesFor("D-FAULTS"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
		if attempts := attemptsOf(t, s, workflows.WorkflowID("demo", "D-FAULTS"), "CreateInvoice"); attempts != 3 {
			t.Fatalf("CreateInvoice was attempted %d times, want 3 (503, 429, success)", attempts)
		}
		s.keepHistory(t, workflows.WorkflowID("demo", "D-FAULTS"), "generic-"+s.cfg.Workflow.ExternalCalls+"-erp-retried")
	})

	t.Run("a response lost after the ERP created the invoice is replayed, not duplicated", func(t *testing.T) {
		before := s.Sandbox.Stats()
		s.Sandbox.SetFaults(sandbox.Faults{LostResponseRate: 1})
		r := s.send(t, delivery{body: event("evt_lost", "D-LOST", nil)})
		if r.status != http.StatusAccepted {
			t.Fatalf("%d %s", r.status, r.body)
		}
		// Let the first attempts be lost, then heal the network.
		deadline := time.Now().Add(20 * time.Second)
		for s.invoicesFor("D-LOST") == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		s.Sandbox.SetFaults(sandbox.Faults{})
		if err := s.waitRun(t, workflows.WorkflowID("demo", "D-LOST"), nil); err != nil {
			t.Fatal(err)
		}
		if n := s.invoicesFor("D-LOST"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
		// Every POST of this run was answered 502 after it was processed
		// until the faults were lifted: the customer's and the invoice's
		// retries were both replays.
		after := s.Sandbox.Stats()
		if after.IdempotentReplays-before.IdempotentReplays < 2 || after.InvoicesCreated-before.InvoicesCreated != 1 {
			t.Fatalf("%d replays and %d invoices created during the run; want at least 2 replays (customer and invoice) and 1 invoice",
				after.IdempotentReplays-before.IdempotentReplays, after.InvoicesCreated-before.InvoicesCreated)
		}
	})
}

// lastAttempt returns the attempt number of the activity's started event.
// attemptsOf counts the attempts of a run's calls of activityType: each
// call (an activity, or a local activity's marker) counts the attempt it
// ended on (the invoice step of a listening run makes one attempt per
// call; other steps retry within one).
func attemptsOf(t *testing.T, s *stack, workflowID, activityType string) int32 {
	t.Helper()
	var n int32
	for _, a := range callsOf(t, s, workflowID, activityType) {
		n += a
	}
	return n
}

// callsOf lists a run's calls of activityType, each as the attempt it
// ended on.
func callsOf(t *testing.T, s *stack, workflowID, activityType string) []int32 {
	t.Helper()
	iter := s.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var calls []int32
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == activityType {
			calls = append(calls, a.GetAttempt())
		}
		// Local activities are recorded as markers carrying their attempt.
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == "LocalActivity" {
			var data struct {
				ActivityType string
				Attempt      int32
			}
			if p := m.GetDetails()["data"].GetPayloads(); len(p) > 0 {
				if err := json.Unmarshal(p[0].GetData(), &data); err != nil {
					t.Fatal(err)
				}
			}
			if data.ActivityType == activityType {
				calls = append(calls, data.Attempt)
			}
		}
	}
	return calls
}

func TestTemporalUnreachableIs503(t *testing.T) {
	s := startStack(t, stackOptions{})
	ready, err := http.Get(s.IntakeURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusOK {
		t.Fatalf("readyz with Temporal up: %d", ready.StatusCode)
	}
	s.Temporal.Stop()
	r := s.send(t, delivery{body: event("evt_down", "D-DOWN", nil)})
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("with Temporal stopped: %d %s, want 503", r.status, r.body)
	}
	ready, err = http.Get(s.IntakeURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Temporal down: %d", ready.StatusCode)
	}
	health, err := http.Get(s.IntakeURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", health.StatusCode)
	}
}

// Runs survive a restart of `dealsync dev` on the same data dir, and the
// deterministic workflow ID still deduplicates across the restart. So does
// the sandbox ERP: the invoice a run recorded is still there under its id,
// the customer is found again instead of made twice, and new invoices
// continue the numbering instead of reusing the ids the runs recorded.
func TestRunsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, stackOptions{dataDir: dir})
	r := s.send(t, delivery{body: event("evt_persist", "D-PERSIST", nil)})
	if r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var first workflows.InvoiceDealResult
	if err := s.waitRun(t, workflows.WorkflowID("demo", "D-PERSIST"), &first); err != nil {
		t.Fatal(err)
	}
	runID := r.parsed.Results[0].RunID
	s.Close()

	s2 := startStack(t, stackOptions{dataDir: dir})
	if !s2.runExists(t, workflows.WorkflowID("demo", "D-PERSIST")) {
		t.Fatal("run lost across restart")
	}
	again := s2.send(t, delivery{body: event("evt_persist", "D-PERSIST", nil)})
	if again.status != http.StatusAccepted || !again.parsed.Results[0].Duplicate || again.parsed.Results[0].RunID != runID {
		t.Fatalf("redelivery after restart: %d %s", again.status, again.body)
	}
	if n := s2.countRuns(t, `DealId = "D-PERSIST"`, 1); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}

	invoices := s2.Sandbox.Invoices()
	if len(invoices) != 1 || invoices[0].ID != first.InvoiceID || invoices[0].Reference != "D-PERSIST" {
		t.Fatalf("sandbox invoices after restart: %+v, want the run's %s", invoices, first.InvoiceID)
	}
	sameCompany := func(d map[string]any) { d["company"].(map[string]any)["id"] = "C-D-PERSIST" }
	if r := s2.send(t, delivery{body: event("evt_persist_2", "D-PERSIST-2", sameCompany)}); r.status != http.StatusAccepted {
		t.Fatalf("second deal: %d %s", r.status, r.body)
	}
	var second workflows.InvoiceDealResult
	if err := s2.waitRun(t, workflows.WorkflowID("demo", "D-PERSIST-2"), &second); err != nil {
		t.Fatal(err)
	}
	if second.CustomerID != first.CustomerID || len(s2.Sandbox.Customers()) != 1 {
		t.Errorf("customer of the second deal %s, first %s, %d in the ERP: want the existing one found again",
			second.CustomerID, first.CustomerID, len(s2.Sandbox.Customers()))
	}
	if second.InvoiceID == "" || second.InvoiceID == first.InvoiceID {
		t.Errorf("invoice of the second deal %q reuses or lacks an id (first %q)", second.InvoiceID, first.InvoiceID)
	}
}

// The histories the real server records for the core path, in both
// modes, with ERP faults and a run that fails on its mapping, replay
// against the workflow code without a non-determinism error. (Upgrades
// are guarded by the histories kept in workflows/testdata, which earlier
// code recorded; this test makes sure replay holds for what the server
// really writes, retries and failures included.)
func TestHistoriesReplay(t *testing.T) {
	for _, mode := range []string{"local", "activity"} {
		t.Run(mode, func(t *testing.T) {
			s := startStack(t, stackOptions{env: map[string]string{"DEALSYNC_WORKFLOW_EXTERNAL_CALLS": mode}})
			s.Sandbox.SetFaults(sandbox.Faults{Script: []int{503, 429}, RetryAfter: time.Second})
			deals := map[string]func(map[string]any){
				"D-R-OK":    nil,
				"D-R-NOCUR": func(d map[string]any) { delete(d, "currency") },
			}
			for id, mutate := range deals {
				if r := s.send(t, delivery{body: event("evt_"+id, id, mutate)}); r.status != http.StatusAccepted {
					t.Fatalf("%s: %d %s", id, r.status, r.body)
				}
				err := s.waitRun(t, workflows.WorkflowID("demo", id), nil)
				if wantFail := mutate != nil; (err != nil) != wantFail || (wantFail && !strings.Contains(err.Error(), "currency")) {
					t.Fatalf("%s ended with %v; want %s", id, err, map[bool]string{true: "a failure naming the currency", false: "success"}[wantFail])
				}
			}
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
			for id := range deals {
				iter := s.Client.GetWorkflowHistory(context.Background(), workflows.WorkflowID("demo", id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
				var events []*historypb.HistoryEvent
				for iter.HasNext() {
					ev, err := iter.Next()
					if err != nil {
						t.Fatal(err)
					}
					events = append(events, ev)
				}
				if err := replayer.ReplayWorkflowHistory(nil, &historypb.History{Events: events}); err != nil {
					t.Errorf("%s does not replay: %v", id, err)
				}
			}
		})
	}
}

// A generic connection whose runs settle and linger gets later events of
// the deal as a CRM connection does: a change of the won deal sent during
// the settle time is what gets invoiced (once), one sent while the run
// lingers is recorded, never invoiced, and a deal that left the won stage
// during the settle time is not invoiced.
func TestGenericConnectionSettlesAndLingers(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "2s",
		"DEALSYNC_CONNECTIONS_DEMO_LINGER":      "4s",
	}})
	later := func(eventID, dealID, at, stage, amount string) []byte {
		b := event(eventID, dealID, func(d map[string]any) {
			d["stage"], d["previous_stage"], d["amount"] = stage, "closed_won", amount
			d["line_items"] = []any{map[string]any{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": amount}}
		})
		return bytes.Replace(b, []byte(`"2026-11-20T10:00:00Z"`), []byte(`"`+at+`"`), 1)
	}
	id := workflows.WorkflowID("demo", "D-SET")
	if r := s.send(t, delivery{body: event("evt_set_1", "D-SET", nil)}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	r := s.send(t, delivery{body: later("evt_set_2", "D-SET", "2026-11-20T10:01:00Z", "closed_won", "15000.00")})
	if r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id || r.parsed.Results[0].Skipped != "" {
		t.Fatalf("a change during the settle time was not delivered to the run: %d %s", r.status, r.body)
	}
	if n := s.countRuns(t, `DealId = "D-SET" AND SyncStatus = "invoiced" AND ExecutionStatus = "Running"`, 1); n != 1 {
		t.Fatalf("the run did not invoice and linger (count %d)", n)
	}
	r = s.send(t, delivery{body: later("evt_set_3", "D-SET", "2026-11-20T10:30:00Z", "closed_won", "99999.00")})
	if r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id {
		t.Fatalf("a change while the run lingers was not delivered to it: %d %s", r.status, r.body)
	}
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, id, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.Events, ",") != "evt_set_1,evt_set_2,evt_set_3" || strings.Join(out.ChangedAfterInvoice, ",") != "evt_set_3" {
		t.Errorf("events %v, changed after the invoice %v", out.Events, out.ChangedAfterInvoice)
	}
	var totals []string
	for _, inv := range s.Sandbox.Invoices() {
		if inv.Reference == "D-SET" {
			totals = append(totals, inv.Total)
		}
	}
	if strings.Join(totals, ",") != "15000.00" {
		t.Errorf("invoices of D-SET: %v, want one of 15000.00", totals)
	}
	s.keepHistory(t, id, "generic-settle-linger-invoiced")

	// The CRM sends the deal as won again, with a newer amount, while its
	// run settles: the same run, which invoices the newer amount.
	againID := workflows.WorkflowID("demo", "D-SET-AGAIN")
	if r := s.send(t, delivery{body: event("evt_again_1", "D-SET-AGAIN", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	rewon := bytes.Replace(event("evt_again_2", "D-SET-AGAIN", func(d map[string]any) {
		d["amount"] = "13000.00"
		d["line_items"] = []any{map[string]any{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": "13000.00"}}
	}), []byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:02:00Z"`), 1)
	if r := s.send(t, delivery{body: rewon}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != againID || !r.parsed.Results[0].Duplicate {
		t.Fatalf("won again: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, againID, &out); err != nil {
		t.Fatal(err)
	}
	if inv := s.Sandbox.Invoices(); strings.Join(out.Events, ",") != "evt_again_1,evt_again_2" || s.invoicesFor("D-SET-AGAIN") != 1 || inv[len(inv)-1].Total != "13000.00" {
		t.Errorf("events %v, %d invoices, the last %+v", out.Events, s.invoicesFor("D-SET-AGAIN"), inv[len(inv)-1])
	}

	// A sender that numbers its events per deal sends the same event id
	// again, later, with a newer amount, while the run settles: a new
	// event, and the newer amount is invoiced.
	reuseID := workflows.WorkflowID("demo", "D-SET-REUSE")
	if r := s.send(t, delivery{body: event("evt_reuse", "D-SET-REUSE", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	if r := s.send(t, delivery{body: later("evt_reuse", "D-SET-REUSE", "2026-11-20T10:03:00Z", "closed_won", "14000.00")}); r.status != http.StatusAccepted ||
		r.parsed.Results[0].WorkflowID != reuseID || r.parsed.Results[0].Skipped != "" {
		t.Fatalf("the same event id, later: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, reuseID, &out); err != nil {
		t.Fatal(err)
	}
	if inv := s.Sandbox.Invoices(); strings.Join(out.Events, ",") != "evt_reuse" || s.invoicesFor("D-SET-REUSE") != 1 || inv[len(inv)-1].Total != "14000.00" {
		t.Errorf("events %v, %d invoices, the last %+v; want one of 14000.00", out.Events, s.invoicesFor("D-SET-REUSE"), inv[len(inv)-1])
	}
	s.keepHistory(t, reuseID, "generic-settle-event-id-reused")

	lostID := workflows.WorkflowID("demo", "D-SET-LOST")
	wonRun := s.send(t, delivery{body: event("evt_lost_1", "D-SET-LOST", nil)})
	if wonRun.status != http.StatusAccepted || wonRun.parsed.Results[0].RunID == "" {
		t.Fatalf("won: %d %s", wonRun.status, wonRun.body)
	}
	// A loss that meets the deal's running run is handed to it (not a run
	// of its own): the answer says so, naming that run, and does not call
	// the new event a duplicate.
	if r := s.send(t, delivery{body: later("evt_lost_2", "D-SET-LOST", "2026-11-20T10:01:00Z", "closed_lost", "12000.00")}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != lostID ||
		r.parsed.Results[0].Duplicate || r.parsed.Results[0].RunID != wonRun.parsed.Results[0].RunID || !bytes.Contains(r.body, []byte(`"notified":true`)) {
		t.Fatalf("lost: %d %s; want it notified to run %s, not a duplicate", r.status, r.body, wonRun.parsed.Results[0].RunID)
	}
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, lostID, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon {
		t.Fatalf("want DealNotWon, got %v", err)
	}
	if n := s.invoicesFor("D-SET-LOST"); n != 0 {
		t.Errorf("%d invoices of a deal lost during the settle time", n)
	}
	s.keepHistory(t, lostID, "generic-settle-deal-lost")

	// The CRM delivers the old won event again (its retry, or a late
	// copy), once the lost run is in the run list: the reuse policy starts
	// a new run, which reads how the last one ended and invoices nothing.
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Failed"`, lostID), 1); n != 1 {
		t.Fatalf("the lost run is not in the run list (count %d)", n)
	}
	if r := s.send(t, delivery{body: event("evt_lost_1", "D-SET-LOST", nil)}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != lostID {
		t.Fatalf("the old won event again: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, lostID, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon ||
		!strings.Contains(appErr.Error(), "a delivery of an old win") {
		t.Fatalf("the old won event again: want DealNotWon naming an old win, got %v", err)
	}
	if n := s.invoicesFor("D-SET-LOST"); n != 0 {
		t.Errorf("%d invoices of a lost deal after its old won event came again", n)
	}
	s.keepHistory(t, lostID, "generic-settle-old-win-refused")
	// A new win, later than the loss, is invoiced, even when it comes in
	// one delivery right after the old won event (which starts the run
	// the new one then reaches).
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Failed"`, lostID), 2); n != 2 {
		t.Fatalf("the refused run is not in the run list (count %d)", n)
	}
	rewon = bytes.Replace(event("evt_lost_3", "D-SET-LOST", func(d map[string]any) { d["previous_stage"] = "closed_lost" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:05:00Z"`), 1)
	batch := []byte("[" + string(event("evt_lost_1", "D-SET-LOST", nil)) + "," + string(rewon) + "]")
	r = s.send(t, delivery{body: batch})
	if r.status != http.StatusAccepted || len(r.parsed.Results) != 2 || r.parsed.Results[1].WorkflowID != lostID || r.parsed.Results[1].RunID == "" {
		t.Fatalf("the old and a new win in one delivery: %d %s", r.status, r.body)
	}
	// The new win meets the run the old one started, unless that run had
	// already read the runs before it and ended (refusing the old win)
	// when the new win's start came: the new win then starts a run of its
	// own. Either way the deal is invoiced once, by a run that has it.
	want := "evt_lost_1,evt_lost_3"
	if !r.parsed.Results[1].Duplicate {
		want = "evt_lost_3"
	}
	if err := s.waitRun(t, lostID, &out); err != nil || s.invoicesFor("D-SET-LOST") != 1 || strings.Join(out.Events, ",") != want {
		t.Fatalf("won again later: %v, %d invoices, events %v; want one invoice by a run of %s", err, s.invoicesFor("D-SET-LOST"), out.Events, want)
	}
	s.keepHistory(t, lostID, "generic-settle-won-again-invoiced")

	// The loss comes first: the won event's start was refused (a 503, say)
	// and the CRM sends it again only after it sent the loss. The loss,
	// meeting no run, is recorded by a run of its own; the old win that
	// follows is refused, and a newer win is invoiced.
	lossID := workflows.WorkflowID("demo", "D-LOSS-FIRST")
	lost := later("evt_lf_2", "D-LOSS-FIRST", "2026-11-20T10:05:00Z", "closed_lost", "12000.00")
	r = s.send(t, delivery{body: lost})
	if r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != lossID || r.parsed.Results[0].RunID == "" || r.parsed.Results[0].Duplicate || r.parsed.Results[0].Skipped != "" ||
		bytes.Contains(r.body, []byte(`"notified"`)) {
		t.Fatalf("a loss that meets no run: %d %s; want a run that records it (started, not notified)", r.status, r.body)
	}
	if err := s.waitRun(t, lossID, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(appErr.Error(), "the loss is recorded") {
		t.Fatalf("the loss's run: want DealNotWon recording the loss, got %v", err)
	}
	s.keepHistory(t, lossID, "generic-settle-loss-recorded")
	// The same run since its read of the deal's earlier runs ends before
	// its timeout (loss-read-bounded).
	s.keepHistory(t, lossID, "generic-settle-loss-recorded-bounded-read")
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Failed" AND SyncStatus = "skipped"`, lossID), 1); n != 1 {
		t.Fatalf("the loss's run is not in the run list as skipped (count %d)", n)
	}
	if r := s.send(t, delivery{body: event("evt_lf_1", "D-LOSS-FIRST", nil)}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != lossID {
		t.Fatalf("the old won event after the loss: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, lossID, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon ||
		!strings.Contains(appErr.Error(), "a delivery of an old win") {
		t.Fatalf("the old won event after the loss: want DealNotWon naming an old win, got %v", err)
	}
	if n := s.invoicesFor("D-LOSS-FIRST"); n != 0 {
		t.Fatalf("%d invoices of a deal whose loss came before its older win", n)
	}
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Failed"`, lossID), 2); n != 2 {
		t.Fatalf("the refused run is not in the run list (count %d)", n)
	}
	rewon = bytes.Replace(event("evt_lf_3", "D-LOSS-FIRST", func(d map[string]any) { d["previous_stage"] = "closed_lost" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:10:00Z"`), 1)
	if r := s.send(t, delivery{body: rewon}); r.status != http.StatusAccepted {
		t.Fatalf("won again after the loss: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, lossID, &out); err != nil || s.invoicesFor("D-LOSS-FIRST") != 1 {
		t.Fatalf("won again after the loss: %v, %d invoices; want one", err, s.invoicesFor("D-LOSS-FIRST"))
	}

	// A loss, and a newer win in the same delivery: the win reaches the
	// run that records the loss, which continues as a run of the win and
	// invoices it.
	lossWonID := workflows.WorkflowID("demo", "D-LOSS-WON")
	wonAfter := bytes.Replace(event("evt_lw_3", "D-LOSS-WON", func(d map[string]any) { d["previous_stage"] = "closed_lost" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:10:00Z"`), 1)
	batch = []byte("[" + string(later("evt_lw_2", "D-LOSS-WON", "2026-11-20T10:05:00Z", "closed_lost", "12000.00")) + "," + string(wonAfter) + "]")
	r = s.send(t, delivery{body: batch})
	if r.status != http.StatusAccepted || len(r.parsed.Results) != 2 || r.parsed.Results[0].RunID == "" || r.parsed.Results[0].Duplicate ||
		!r.parsed.Results[1].Duplicate || r.parsed.Results[1].RunID != r.parsed.Results[0].RunID {
		t.Fatalf("a loss and a newer win in one delivery: %d %s; want a run for the loss that the win reaches", r.status, r.body)
	}
	if err := s.waitRun(t, lossWonID, &out); err != nil || s.invoicesFor("D-LOSS-WON") != 1 {
		t.Fatalf("won again while the loss settled: %v, %d invoices; want one", err, s.invoicesFor("D-LOSS-WON"))
	}
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND SyncStatus = "invoiced"`, lossWonID), 1); n != 1 {
		t.Errorf("the continued run is not recorded as invoiced (count %d)", n)
	}
	s.keepRunHistory(t, lossWonID, r.parsed.Results[0].RunID, "generic-settle-loss-won-again")

	// The connection is changed not to listen (no settle time, no linger;
	// an intake restarted with the new config) while a loss's run
	// settles: a newer win, started as a plain run, meets that run, which
	// takes it and invoices it instead of ending with the win unread.
	plainID := workflows.WorkflowID("demo", "D-LOSS-PLAIN")
	r = s.send(t, delivery{body: later("evt_lp_2", "D-LOSS-PLAIN", "2026-11-20T10:05:00Z", "closed_lost", "12000.00")})
	if r.status != http.StatusAccepted || r.parsed.Results[0].RunID == "" || r.parsed.Results[0].Duplicate {
		t.Fatalf("a loss that meets no run: %d %s", r.status, r.body)
	}
	lossRun := r.parsed.Results[0].RunID
	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	plain := *conn
	plain.SettleTime, plain.Linger = 0, 0
	won, err := generic.ParseEvents(bytes.Replace(event("evt_lp_3", "D-LOSS-PLAIN", func(d map[string]any) { d["previous_stage"] = "closed_lost" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:10:00Z"`), 1), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	startPlain := func(ev model.DealEvent) (connectors.EventResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return app.Starter(s.cfg, s.Client, false).Start(ctx, &plain, ev)
	}
	res, err := startPlain(won[0])
	if err != nil || res.WorkflowID != plainID || res.RunID != lossRun || !res.Duplicate {
		t.Fatalf("a win meeting the loss's run: %+v, %v; want it delivered to run %s", res, err, lossRun)
	}
	if err := s.waitRun(t, plainID, &out); err != nil || s.invoicesFor("D-LOSS-PLAIN") != 1 {
		t.Fatalf("won while the loss's run settled, started by a connection no longer listening: %v, %d invoices; want one", err, s.invoicesFor("D-LOSS-PLAIN"))
	}
	// The same for a deal's InvoiceDeal run that took a loss while it
	// settles: the newer win reaches it, and it invoices.
	settleID := workflows.WorkflowID("demo", "D-SETTLE-PLAIN")
	if r := s.send(t, delivery{body: event("evt_sp_1", "D-SETTLE-PLAIN", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	if r := s.send(t, delivery{body: later("evt_sp_2", "D-SETTLE-PLAIN", "2026-11-20T10:05:00Z", "closed_lost", "12000.00")}); r.status != http.StatusAccepted ||
		r.parsed.Results[0].Duplicate || r.parsed.Results[0].RunID == "" || !bytes.Contains(r.body, []byte(`"notified":true`)) {
		t.Fatalf("lost while the run settles: %d %s; want it notified to the run", r.status, r.body)
	}
	won, err = generic.ParseEvents(bytes.Replace(event("evt_sp_3", "D-SETTLE-PLAIN", func(d map[string]any) { d["previous_stage"] = "closed_lost" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:10:00Z"`), 1), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := startPlain(won[0]); err != nil || !res.Duplicate {
		t.Fatalf("a win meeting the settling run: %+v, %v; want it delivered to the run", res, err)
	}
	if err := s.waitRun(t, settleID, &out); err != nil || s.invoicesFor("D-SETTLE-PLAIN") != 1 || strings.Join(out.Events, ",") != "evt_sp_1,evt_sp_2,evt_sp_3" {
		t.Fatalf("won again while the run settled, started by a connection no longer listening: %v, %d invoices, events %v; want one invoice of the three events",
			err, s.invoicesFor("D-SETTLE-PLAIN"), out.Events)
	}
	// A win that meets a running InvoiceDeal run stays a duplicate of it.
	won, err = generic.ParseEvents(event("evt_lp_4", "D-PLAIN-DUP", nil), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	first, err := startPlain(won[0])
	if err != nil || first.Duplicate {
		t.Fatalf("a win: %+v, %v", first, err)
	}
	again, err := startPlain(won[0])
	if err != nil || again.RunID != first.RunID || !again.Duplicate {
		t.Fatalf("the win again: %+v, %v; want a duplicate of run %s", again, err, first.RunID)
	}
	if err := s.waitRun(t, workflows.WorkflowID("demo", "D-PLAIN-DUP"), nil); err != nil || s.invoicesFor("D-PLAIN-DUP") != 1 {
		t.Fatalf("a win sent twice: %v, %d invoices; want one", err, s.invoicesFor("D-PLAIN-DUP"))
	}
	// A run that does not listen is not signalled its duplicates.
	for it := s.Client.GetWorkflowHistory(context.Background(), workflows.WorkflowID("demo", "D-PLAIN-DUP"), first.RunID, false, 0); it.HasNext(); {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			t.Fatalf("the duplicate was signalled to a run that does not listen (event %d)", e.GetEventId())
		}
	}

	// A loss of a deal whose run made its invoice records nothing (the
	// reuse policy keeps the completed run): it is ignored, as before.
	r = s.send(t, delivery{body: later("evt_set_4", "D-SET", "2026-11-20T11:00:00Z", "closed_lost", "15000.00")})
	if r.status != http.StatusOK || r.parsed.Results[0].Skipped == "" {
		t.Fatalf("a loss after the invoice: %d %s; want it ignored", r.status, r.body)
	}

	// A deal too large for a run, on a connection whose runs listen: its
	// start carries it twice (the signal and the input), which is over the
	// frontend's gRPC message limit before the blob limit: 413 too, not a
	// 503 the CRM would retry forever.
	huge := event("evt_huge_listen", "D-HUGE-LISTEN", func(d map[string]any) {
		items := make([]any, 30000)
		for i := range items {
			items[i] = map[string]any{"quantity": 1, "unit_price": 1}
		}
		d["line_items"], d["amount"] = items, "30000"
	})
	if r := s.send(t, delivery{body: huge}); r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "too large for a run") {
		t.Fatalf("a huge deal on a listening connection: %d %s; want 413", r.status, r.body)
	}
}

// On a generic connection whose runs settle, a change of a won deal (its
// stage won before and after, a newer amount) that reaches the intake
// before the deal's win has started the run (the win sent at the same
// moment to another replica, or refused and sent again by the CRM after
// the change) is refused with 503, nothing acknowledged: the CRM sends it
// again, it reaches the run the win started, and the invoice bills the
// newer amount. It used to be acknowledged as skipped ("no run in progress
// for this deal") and the invoice billed the win's older amount, unflagged.
// A change of a deal won before dealsync went live (older than the settle
// time, no run of the deal) is still skipped (200) and invoices nothing.
func TestGenericChangeBeforeItsWinReachesTheWinsRun(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "5s",
		"DEALSYNC_CONNECTIONS_DEMO_LINGER":      "1s",
	}})
	deal := func(eventID, dealID string, at time.Time, previous, amount string) []byte {
		b := event(eventID, dealID, func(d map[string]any) {
			d["previous_stage"], d["amount"] = previous, amount
			d["line_items"] = []any{map[string]any{"sku": "PRO-1Y", "description": "Pro plan, 1 year", "quantity": "1", "unit_price": amount}}
		})
		return bytes.Replace(b, []byte(`"2026-11-20T10:00:00Z"`), []byte(`"`+at.UTC().Format(time.RFC3339Nano)+`"`), 1)
	}
	totals := func(dealID string) string {
		var got []string
		for _, inv := range s.Sandbox.Invoices() {
			if inv.Reference == dealID {
				got = append(got, inv.Total)
			}
		}
		return strings.Join(got, ",")
	}
	now := time.Now()
	win := deal("w0", "R-0", now.Add(-2*time.Second), "negotiation", "100.00")
	change := deal("c0", "R-0", now, "closed_won", "175.00")

	// The change first: refused, the CRM to send it again.
	r := s.send(t, delivery{body: change})
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "changes a won deal that has no run in progress") {
		t.Fatalf("a change before its win: %d %s; want 503, nothing acknowledged", r.status, r.body)
	}
	if s.runExists(t, workflows.WorkflowID("demo", "R-0")) {
		t.Fatal("a change of a won deal started a run")
	}
	// The win starts the run; the change, sent again, reaches it while it
	// settles.
	if r := s.send(t, delivery{body: win}); r.status != http.StatusAccepted || r.parsed.Results[0].Skipped != "" {
		t.Fatalf("the win: %d %s", r.status, r.body)
	}
	if r := s.send(t, delivery{body: change}); r.status != http.StatusAccepted || !bytes.Contains(r.body, []byte(`"notified":true`)) {
		t.Fatalf("the change sent again: %d %s; want it notified to the win's run", r.status, r.body)
	}
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, workflows.WorkflowID("demo", "R-0"), &out); err != nil {
		t.Fatal(err)
	}
	if got := totals("R-0"); got != "175.00" || strings.Join(out.Events, ",") != "w0,c0" || len(out.ChangedAfterInvoice) != 0 {
		t.Errorf("invoices of R-0: %q, events %v, changed after the invoice %v; want one of 175.00, the newer amount, billed from w0 and c0",
			got, out.Events, out.ChangedAfterInvoice)
	}

	// The operators' race: each deal's win and change at the same moment,
	// a CRM sending again what was refused once its Retry-After passed
	// (here: once the win was answered). Whatever the order they reach
	// the intake in, each deal is invoiced once, at the newer amount.
	var wg sync.WaitGroup
	deals := []string{"R-1", "R-2", "R-3", "R-4", "R-5"}
	errs := make(chan error, 2*len(deals))
	now = time.Now()
	for _, id := range deals {
		won := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(won)
			if r, err := s.trySend(delivery{body: deal("w-"+id, id, now.Add(-2*time.Second), "negotiation", "100.00")}); err != nil || r.status != http.StatusAccepted {
				errs <- fmt.Errorf("the win of %s: %d %s %v", id, r.status, r.body, err)
			}
		}()
		go func() {
			defer wg.Done()
			d := delivery{body: deal("c-"+id, id, now, "closed_won", "175.00")}
			r, err := s.trySend(d)
			if err == nil && r.status == http.StatusServiceUnavailable {
				<-won
				r, err = s.trySend(d)
			}
			if err != nil || r.status != http.StatusAccepted || !bytes.Contains(r.body, []byte(`"notified":true`)) {
				errs <- fmt.Errorf("the change of %s: %d %s %v; want it notified to the win's run", id, r.status, r.body, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range deals {
		if err := s.waitRun(t, workflows.WorkflowID("demo", id), nil); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := totals(id); got != "175.00" {
			t.Errorf("invoices of %s: %q; want one of 175.00", id, got)
		}
	}

	// A delivery of several deals with a held change: refused (503) as a
	// whole, but its other deal's win starts its run all the same, so
	// that a sender that gives up loses the held change only. Sent again
	// once the held change's win came, the win is a duplicate of its run
	// and the change reaches its own deal's run: each deal invoiced once.
	now = time.Now()
	both := []byte("[" + string(deal("w-B1", "R-B1", now.Add(-time.Second), "negotiation", "100.00")) + "," +
		string(deal("c-B2", "R-B2", now, "closed_won", "175.00")) + "]")
	r = s.send(t, delivery{body: both})
	if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "other deals' events were handed on") {
		t.Fatalf("a batch with a held change: %d %s; want 503 saying the other deals were taken", r.status, r.body)
	}
	if !s.runExists(t, workflows.WorkflowID("demo", "R-B1")) {
		t.Fatal("the held change of R-B2 stopped the start of R-B1's win")
	}
	if r := s.send(t, delivery{body: deal("w-B2", "R-B2", now.Add(-2*time.Second), "negotiation", "100.00")}); r.status != http.StatusAccepted {
		t.Fatalf("R-B2's win: %d %s", r.status, r.body)
	}
	r = s.send(t, delivery{body: both})
	if r.status != http.StatusAccepted || len(r.parsed.Results) != 2 {
		t.Fatalf("the batch sent again: %d %s; want 202", r.status, r.body)
	}
	for _, res := range r.parsed.Results {
		if res.EventID == "w-B1" && !res.Duplicate || res.EventID == "c-B2" && !bytes.Contains(r.body, []byte(`"notified":true`)) {
			t.Errorf("the batch sent again: %s; want w-B1 a duplicate of its run, c-B2 notified to R-B2's", r.body)
		}
	}
	for id, want := range map[string]string{"R-B1": "100.00", "R-B2": "175.00"} {
		if err := s.waitRun(t, workflows.WorkflowID("demo", id), nil); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := totals(id); got != want {
			t.Errorf("invoices of %s: %q; want one of %s", id, got, want)
		}
	}

	// A deal won before dealsync went live: its change, older than the
	// settle time, is skipped as before, and invoices nothing.
	old := deal("c-old", "R-OLD", time.Now().Add(-time.Hour), "closed_won", "175.00")
	r = s.send(t, delivery{body: old})
	if r.status != http.StatusOK || len(r.parsed.Results) != 1 || !strings.Contains(r.parsed.Results[0].Skipped, "no run in progress for this deal") {
		t.Fatalf("a change of a deal won before go-live: %d %s; want it skipped (200)", r.status, r.body)
	}
	if s.runExists(t, workflows.WorkflowID("demo", "R-OLD")) || totals("R-OLD") != "" {
		t.Errorf("a change of a deal won before go-live started a run or made an invoice (%q)", totals("R-OLD"))
	}
}

// Stopping `dealsync dev` while its worker calls dev's own sandbox ERP: the
// sandbox stops after the worker, so the run's next call (the invoice,
// after the customer in flight) still gets an answer and the workflow task
// completes before the process stops. The worker's stop timeout is a
// minute here, not dev's (app.DevStopTimeout, which would cut a slow
// call off on a loaded machine): this is about the order of the stops.
func TestDevStopsItsSandboxAfterTheWorker(t *testing.T) {
	dir := t.TempDir()
	slow := map[string]string{"DEALSYNC_SANDBOX_LATENCY": "500ms"}
	s := startStack(t, stackOptions{dataDir: dir, env: slow, workerOptions: waitingWorker})
	if r := s.send(t, delivery{body: event("evt_devstop", "D-DEVSTOP", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for deadline := time.Now().Add(30 * time.Second); s.Sandbox.Stats().Requests == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the customer was never sent")
		}
	}
	s.Close() // the customer's POST is in flight, the invoice's not sent yet
	if n := s.invoicesFor("D-DEVSTOP"); n != 1 {
		t.Fatalf("%d invoices after the stop, want 1: the worker's calls outlived the sandbox", n)
	}
	s2 := startStack(t, stackOptions{dataDir: dir})
	id := workflows.WorkflowID("demo", "D-DEVSTOP")
	if err := s2.waitRun(t, id, nil); err != nil {
		t.Fatal(err)
	}
	noTaskCutOff(t, s2, id)
	if n := s2.invoicesFor("D-DEVSTOP"); n != 1 {
		t.Errorf("%d invoices after the restart, want 1", n)
	}
}

// noTaskCutOff fails when a workflow task of the run timed out or failed.
func noTaskCutOff(t *testing.T, s *stack, workflowID string) {
	t.Helper()
	iter := s.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT || ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED {
			t.Errorf("event %d: %v: the workflow task was cut off by the stop", ev.GetEventId(), ev.GetEventType())
		}
	}
}

// waitingWorker is a dev worker that waits a minute for its calls at a
// stop, as `dealsync worker` does, not dev's app.DevStopTimeout: for the
// tests of what a stop waits for, which must not depend on how fast this
// machine runs.
var waitingWorker = worker.Options{WorkerStopTimeout: time.Minute}

// Stopping the stack while a call to the ERP is in flight: the worker waits
// for it (its stop timeout, a minute here; dev's own, app.DevStopTimeout,
// would cut a call held longer off, to be sent again after the restart),
// the run's workflow task completes before the process stops, and after a
// restart the run is complete, with one invoice and without a workflow
// task that timed out (the SDK's default stop timeout, 0, cancelled the
// call at once).
func TestStopWaitsForTheCallInFlight(t *testing.T) {
	erp := sandbox.New(sandbox.Options{})
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var cancelled atomic.Bool
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/invoices" {
			arrived <- struct{}{}
			// A worker that did not wait for its call cancels it: the
			// client hangs up while the call is held, seen at once.
			select {
			case <-release:
			case <-r.Context().Done():
				cancelled.Store(true)
				<-release
			}
		}
		erp.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	target := useTarget("gated", "http", &httptarget.Config{BaseURL: gated.URL, CustomerLookup: httptarget.LookupOnConflict})

	dir := t.TempDir()
	s := startStack(t, stackOptions{dataDir: dir, mutate: target, workerOptions: waitingWorker})
	if r := s.send(t, delivery{body: event("evt_stop", "D-STOP", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the invoice was never sent")
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	// The stop closes the intake, then stops the worker at once: once the
	// intake refuses connections, give the worker's stop a moment to
	// cancel the held call (it would without the stop timeout), then
	// answer it. The moment is an observation window, not a condition of
	// passing: a worker that waits (up to its minute) never cancels,
	// however long the moment is within that minute.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(s.IntakeURL + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the intake still answers 30 s after the stop began")
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(release)
	<-closed
	if cancelled.Load() {
		t.Fatal("the stop cancelled the call in flight instead of waiting for it")
	}
	if n := len(erp.Invoices()); n != 1 {
		t.Fatalf("%d invoices after the stop, want 1", n)
	}

	s2 := startStack(t, stackOptions{dataDir: dir, mutate: target})
	id := workflows.WorkflowID("demo", "D-STOP")
	var r workflows.InvoiceDealResult
	if err := s2.waitRun(t, id, &r); err != nil || r.InvoiceID != erp.Invoices()[0].ID {
		t.Fatalf("run after the restart: %+v, %v", r, err)
	}
	noTaskCutOff(t, s2, id)
	if n := len(erp.Invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
}

// lossDuringTheCustomerStep starts a stack whose demo connection listens
// (settle time 100 ms; calls as activities) and bills erp, whose first
// customer request is held while a loss of dealID is delivered; it sends
// dealID's win, checks that the loss reached the running run (202) and
// returns the stack and the run's workflow ID.
func lossDuringTheCustomerStep(t *testing.T, dealID string, erp http.Handler) (*stack, string) {
	return lossDuringAStep(t, dealID, "/customers", "activity", erp)
}

// lossDuringAStep is lossDuringTheCustomerStep for the first POST to path
// (/customers or /invoices), with the calls as calls says (local or
// activity).
func lossDuringAStep(t *testing.T, dealID, path, calls string, erp http.Handler, env ...map[string]string) (*stack, string) {
	stackEnv := map[string]string{"DEALSYNC_WORKFLOW_EXTERNAL_CALLS": calls, "DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "100ms"}
	for _, e := range env {
		maps.Copy(stackEnv, e)
	}
	var s *stack
	var fired atomic.Bool
	during := make(chan string, 1)
	lost := bytes.Replace(event(dealID+"-lost", dealID, func(d map[string]any) { d["stage"], d["previous_stage"] = "closed_lost", "closed_won" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:05:00Z"`), 1)
	gated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == path && !fired.Swap(true) {
			rep, err := s.trySend(delivery{body: lost})
			during <- fmt.Sprintf("%d %s %v", rep.status, rep.body, err)
		}
		erp.ServeHTTP(w, r)
	}))
	t.Cleanup(gated.Close)
	s = startStack(t, stackOptions{
		env:    stackEnv,
		mutate: useTarget("gated", "http", &httptarget.Config{BaseURL: gated.URL, CustomerLookup: httptarget.LookupOnConflict}),
	})
	if r := s.send(t, delivery{body: event(dealID+"-won", dealID, nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	select {
	case got := <-during:
		// Handed to the running run: notified, not a duplicate.
		if !strings.HasPrefix(got, "202 ") || !strings.Contains(got, `"notified":true`) || !strings.Contains(got, `"duplicate":false`) {
			t.Fatalf("the loss during the customer step: %s; want it notified to the running run", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the customer was never asked for, or the loss was not delivered")
	}
	return s, workflows.WorkflowID("demo", dealID)
}

// A generic deal lost while its run waits on the ERP's customer step
// (calls as activities; a connection whose runs listen, past the settle
// time): the loss is handed to the running run, which reads it before the
// invoice and ends DealNotWon without one (recheck-before-invoice).
func TestGenericLossDuringTheCustomerStep(t *testing.T) {
	erp := sandbox.New(sandbox.Options{})
	s, id := lossDuringTheCustomerStep(t, "D-RECHECK", erp.Handler())
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "closed_lost") {
		t.Fatalf("want DealNotWon with the deal closed_lost, got %v", err)
	}
	if n := len(erp.Invoices()); n != 0 {
		t.Fatalf("%d invoices of a deal lost before its invoice", n)
	}
	s.keepHistory(t, id, "generic-activity-recheck-lost")
}

// A loss delivered while a listening run (calls as local activities, no
// linger) makes its invoice: the invoice exists, so the run ends invoiced
// and the loss is a change after it. Before the checkpoint (see
// workflows.InvoiceDeal), Temporal refused the workflow task that ended
// the run, the signal having come meanwhile, and dropped the records of
// its local calls: the task ran again with the loss read first, and the
// run ended DealNotWon, "nothing was invoiced", with the invoice in the
// ERP.
func TestGenericLossWhileTheInvoiceIsMadeByALocalCall(t *testing.T) {
	erp := sandbox.New(sandbox.Options{})
	s, id := lossDuringAStep(t, "D-MADE", "/invoices", "local", erp.Handler())
	var r workflows.InvoiceDealResult
	if err := s.waitRun(t, id, &r); err != nil {
		t.Fatalf("want the run invoiced (its invoice exists), got %v; %d invoices in the ERP", err, len(erp.Invoices()))
	}
	invoices := erp.Invoices()
	if len(invoices) != 1 || r.InvoiceID != invoices[0].ID {
		t.Fatalf("run's invoice %q, ERP's %+v; want the one invoice", r.InvoiceID, invoices)
	}
	if !slices.Contains(r.ChangedAfterInvoice, "D-MADE-lost") {
		t.Errorf("the run's changes after the invoice: %v (events %v); want the loss", r.ChangedAfterInvoice, r.Events)
	}
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ChangedAfterInvoice = true`, id), 1); n != 1 {
		t.Errorf("the run is not in the run list as changed after its invoice (count %d)", n)
	}
	s.keepHistory(t, id, "generic-local-loss-while-invoice-made")
}

// The same loss when the write-back then fails (a CRM that refuses it):
// the run ends WriteBackFailed with the loss read as a change after its
// invoice, with the calls local (after the checkpoint) and as
// activities; it was left unread, and the deal's only mark of a loss
// after its invoice was lost.
func TestGenericLossWhileTheInvoiceIsMadeThenTheWriteBackFails(t *testing.T) {
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"no such deal"}`, http.StatusBadRequest)
	}))
	t.Cleanup(crm.Close)
	for _, calls := range []string{"local", "activity"} {
		t.Run(calls, func(t *testing.T) {
			erp := sandbox.New(sandbox.Options{})
			dealID := "D-WBF-" + calls
			s, id := lossDuringAStep(t, dealID, "/invoices", calls, erp.Handler(), map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SOURCE_WRITE_BACK_URL": crm.URL + "/dealsync"})
			var appErr *temporal.ApplicationError
			if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeWriteBackFailed {
				t.Fatalf("want WriteBackFailed, got %v", err)
			}
			if n := len(erp.Invoices()); n != 1 {
				t.Fatalf("%d invoices, want 1", n)
			}
			if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND SyncStatus = "writeback_failed" AND ChangedAfterInvoice = true`, id), 1); n != 1 {
				t.Errorf("the run is not in the run list as changed after its invoice (count %d)", n)
			}
			s.keepHistory(t, id, "generic-"+calls+"-loss-while-invoice-made-writeback-failed")
		})
	}
}

// A loss delivered after a run made the deal's invoice and failed
// writing it back (no run in progress: a RecordDealLoss run records it)
// names that invoice and what to do, instead of "nothing was invoiced".
func TestGenericLossAfterAFailedWriteBackNamesTheInvoice(t *testing.T) {
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"no such deal"}`, http.StatusBadRequest)
	}))
	t.Cleanup(crm.Close)
	erp := sandbox.New(sandbox.Options{})
	erpSrv := httptest.NewServer(erp.Handler())
	t.Cleanup(erpSrv.Close)
	s := startStack(t, stackOptions{
		env:    map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "100ms", "DEALSYNC_CONNECTIONS_DEMO_SOURCE_WRITE_BACK_URL": crm.URL + "/dealsync"},
		mutate: useTarget("erp", "http", &httptarget.Config{BaseURL: erpSrv.URL, CustomerLookup: httptarget.LookupOnConflict}),
	})
	id := workflows.WorkflowID("demo", "D-WBL")
	if r := s.send(t, delivery{body: event("D-WBL-won", "D-WBL", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeWriteBackFailed {
		t.Fatalf("want WriteBackFailed, got %v", err)
	}
	invoices := erp.Invoices()
	if len(invoices) != 1 {
		t.Fatalf("%d invoices, want 1", len(invoices))
	}
	// The run list shows the failed run (it is eventually consistent).
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND SyncStatus = "writeback_failed"`, id), 1); n != 1 {
		t.Fatalf("the failed run is not in the run list (count %d)", n)
	}
	lost := bytes.Replace(event("D-WBL-lost", "D-WBL", func(d map[string]any) { d["stage"], d["previous_stage"] = "closed_lost", "closed_won" }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"2026-11-20T10:05:00Z"`), 1)
	r := s.send(t, delivery{body: lost})
	if r.status != http.StatusAccepted || len(r.parsed.Results) != 1 || r.parsed.Results[0].RunID == "" {
		t.Fatalf("loss: %d %s; want a run that records it", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.Client.GetWorkflow(ctx, id, r.parsed.Results[0].RunID).Get(ctx, nil)
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon ||
		!strings.Contains(err.Error(), "made the deal's invoice "+invoices[0].ID) || strings.Contains(err.Error(), "nothing was invoiced") {
		t.Fatalf("the loss's run: %v; want DealNotWon naming invoice %s, not \"nothing was invoiced\"", err, invoices[0].ID)
	}
}

// A deal id holding a quote and a backslash (a generic source's), and
// before them an underscore, a percent sign and an exclamation mark (which
// the prefix filter escapes): its runs read the deal's earlier loss all
// the same, though Temporal's SQL run
// list matches no filter written with those characters (its runs are
// listed by the part of the ID before them), and a loss of another deal
// whose ID shares that part is not taken for this deal's. Before, the old
// win after the loss found no loss and was invoiced.
func TestGenericDealIDWithAQuoteReadsItsEarlierLoss(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "100ms"}})
	at := func(eventID, dealID, when, stage string) []byte {
		previous := "closed_won" // a won deal lost
		if stage == "closed_won" {
			previous = "closed_lost"
		}
		b := event(eventID, dealID, func(d map[string]any) { d["stage"], d["previous_stage"] = stage, previous })
		return bytes.Replace(b, []byte(`"2026-11-20T10:00:00Z"`), []byte(`"`+when+`"`), 1)
	}
	// The part before the quote holds the characters Temporal's prefix
	// filter (SQL LIKE … ESCAPE '!') escapes: '_', '%' and '!'.
	const deal, other = `D_!%Q"1\x`, `D_!%Q-2`
	id := workflows.WorkflowID("demo", deal)
	prefixed := `WorkflowId STARTS_WITH "` + workflows.WorkflowID("demo", "D_!%Q") + `"`
	var appErr *temporal.ApplicationError
	// The loss comes first and is recorded by a run of its own.
	if r := s.send(t, delivery{body: at("evt_q_2", deal, "2026-11-20T10:05:00Z", "closed_lost")}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id {
		t.Fatalf("loss: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon {
		t.Fatalf("the loss's run: want DealNotWon, got %v", err)
	}
	// Another deal's loss, later, whose ID starts alike.
	if r := s.send(t, delivery{body: at("evt_q_o", other, "2026-11-20T11:00:00Z", "closed_lost")}); r.status != http.StatusAccepted {
		t.Fatalf("the other deal's loss: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, workflows.WorkflowID("demo", other), nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon {
		t.Fatalf("the other deal's loss: want DealNotWon, got %v", err)
	}
	if n := s.countRuns(t, prefixed+` AND ExecutionStatus = "Failed" AND SyncStatus = "skipped"`, 2); n != 2 {
		t.Fatalf("the losses are not in the run list (count %d)", n)
	}
	// The old win, delivered late, is refused: the deal's loss is newer.
	if r := s.send(t, delivery{body: at("evt_q_1", deal, "2026-11-20T10:00:00Z", "closed_won")}); r.status != http.StatusAccepted || r.parsed.Results[0].WorkflowID != id {
		t.Fatalf("the old win: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "a delivery of an old win") {
		t.Fatalf("the old win after the loss: want DealNotWon naming an old win, got %v", err)
	}
	if n := s.invoicesFor(deal); n != 0 {
		t.Fatalf("%d invoices of a deal whose loss came before its older win", n)
	}
	// A newer win (after this deal's loss, before the other deal's) is
	// invoiced, once.
	if n := s.countRuns(t, prefixed+` AND ExecutionStatus = "Failed"`, 3); n != 3 {
		t.Fatalf("the refused run is not in the run list (count %d)", n)
	}
	if r := s.send(t, delivery{body: at("evt_q_3", deal, "2026-11-20T10:10:00Z", "closed_won")}); r.status != http.StatusAccepted {
		t.Fatalf("won again: %d %s", r.status, r.body)
	}
	if err := s.waitRun(t, id, nil); err != nil || s.invoicesFor(deal) != 1 {
		t.Fatalf("won again after the loss: %v, %d invoices; want one", err, s.invoicesFor(deal))
	}
}

// The same loss, when the ERP then refuses the customer for good: the run
// ends DealNotWon, recording the loss for a later delivery of the older
// win, not failed (loss-during-failed-step).
func TestGenericLossDuringAFailingCustomerStep(t *testing.T) {
	s, id := lossDuringTheCustomerStep(t, "D-REFUSED", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error":{"message":"customer refused"}}`))
	}))
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "closed_lost") {
		t.Fatalf("want DealNotWon with the deal closed_lost, got %v", err)
	}
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND SyncStatus = "skipped"`, id), 1); n != 1 {
		t.Fatalf("the run is not in the run list as skipped (count %d)", n)
	}
	s.keepHistory(t, id, "generic-activity-loss-then-step-refused")
}

// A generic deal lost while the ERP limits the rate of its invoice step
// (calls as local activities): the loss is read while the step waits out
// the Retry-After, and the run ends DealNotWon at once, without an invoice
// and without waiting for the ERP (invoice-attempts-read-events).
func TestGenericLossWhileTheInvoiceIsRateLimited(t *testing.T) {
	erp := sandbox.New(sandbox.Options{})
	var invoicePosts atomic.Int32
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/invoices" {
			invoicePosts.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "3600") // an hour: the run must not wait for it
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"message":"rate limited"}}`))
			return
		}
		erp.Handler().ServeHTTP(w, r)
	})
	s, id := lossDuringAStep(t, "D-LIMITED", "/invoices", "local", limited)
	var appErr *temporal.ApplicationError
	if err := s.waitRun(t, id, nil); !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDealNotWon || !strings.Contains(err.Error(), "closed_lost") {
		t.Fatalf("want DealNotWon with the deal closed_lost, got %v", err)
	}
	if n := len(erp.Invoices()); n != 0 || invoicePosts.Load() != 1 {
		t.Fatalf("%d invoices, %d invoice requests; want none made, after the one refused", n, invoicePosts.Load())
	}
	s.keepHistory(t, id, "generic-local-loss-while-invoice-limited")
}

// A listening generic connection whose ERP answers the invoice 429 (an
// attempt at a time, the run waiting between them), then 502 (it may
// have made the invoice: the remaining retries are one call), then makes
// it: one invoice, made through the server; the history is kept for the
// replay test.
func TestListeningRunRetriesItsInvoiceAnAttemptAtATime(t *testing.T) {
	erp := sandbox.New(sandbox.Options{})
	var posts atomic.Int32
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/invoices" {
			switch posts.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			case 2:
				w.WriteHeader(http.StatusBadGateway)
				return
			}
		}
		erp.Handler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(flaky)
	t.Cleanup(srv.Close)
	s := startStack(t, stackOptions{
		env:    map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "100ms", "DEALSYNC_WORKFLOW_RETRY_INITIAL_INTERVAL": "100ms"},
		mutate: useTarget("flaky", "http", &httptarget.Config{BaseURL: srv.URL, CustomerLookup: httptarget.LookupOnConflict, Timeout: 2 * time.Second}),
	})
	if r := s.send(t, delivery{body: event("won-attempts", "D-ATTEMPTS", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("won: %d %s", r.status, r.body)
	}
	id := workflows.WorkflowID("demo", "D-ATTEMPTS")
	var out workflows.InvoiceDealResult
	if err := s.waitRun(t, id, &out); err != nil || out.InvoiceID == "" {
		t.Fatalf("run: %+v, %v; want invoiced", out, err)
	}
	if n := len(erp.Invoices()); n != 1 || posts.Load() < 3 {
		t.Fatalf("%d invoices after %d invoice requests; want one, after at least 3", n, posts.Load())
	}
	// One attempt per call until one may have written (the 502): the 429
	// and the 502 are calls of their own, the rest one more call.
	if calls := callsOf(t, s, id, "CreateInvoice"); len(calls) != 3 || calls[0] != 1 || calls[1] != 1 {
		t.Fatalf("CreateInvoice calls ended on attempts %v; want 3 calls, the first two of one attempt", calls)
	}
	s.keepHistory(t, id, "generic-local-listening-invoice-attempts")
}

// A config (or a shell) made for a cluster, with TLS and an API key for
// Temporal, still runs `dealsync dev`: the embedded server is dialled in
// plaintext without the key, and a deal is invoiced.
func TestDevIgnoresTheClustersTLSAndAPIKey(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		"DEALSYNC_TEMPORAL_TLS_ENABLED": "true",
		"DEALSYNC_TEMPORAL_API_KEY":     "cluster-key",
	}})
	if r := s.send(t, delivery{body: event("evt_tls", "D-TLS", nil)}); r.status != http.StatusAccepted {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if err := s.waitRun(t, workflows.WorkflowID("demo", "D-TLS"), nil); err != nil {
		t.Fatal(err)
	}
}
