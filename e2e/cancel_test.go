package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/model"
	dsworker "github.com/dealsync/dealsync/worker"
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

// heldCustomers is a worker's connections whose customer step waits for
// release before it calls the ERP (started is closed as the first one
// starts).
type heldCustomers struct {
	activities.Resolver
	started, release chan struct{}
	once             *sync.Once
}

func (h heldCustomers) Resolve(name string) (activities.Connection, bool) {
	c, ok := h.Resolver.Resolve(name)
	if ok {
		c.Target = heldCustomer{Target: c.Target, h: h}
	}
	return c, ok
}

type heldCustomer struct {
	connectors.Target
	h heldCustomers
}

func (c heldCustomer) FindOrCreateCustomer(ctx context.Context, cu model.Customer, key string) (connectors.CustomerRef, error) {
	c.h.once.Do(func() { close(c.h.started) })
	select {
	case <-c.h.release:
	case <-ctx.Done():
		return connectors.CustomerRef{}, ctx.Err()
	}
	return c.Target.FindOrCreateCustomer(ctx, cu, key)
}

// A run canceled as its customer step ends (the step's answer and the
// cancel request reach the run in one workflow task) ends Canceled,
// SyncStatus "pending", without starting its invoice step. Made certain
// here: the run's steps are activities, and no worker takes its workflow
// tasks from the customer step's start until it has ended and the cancel
// is recorded.
func TestRunCanceledAsItsCustomerStepEndsStaysPending(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{"DEALSYNC_WORKFLOW_EXTERNAL_CALLS": "activity"}})
	const queue, deal = "cancel-test", "D-CXL-END" // polled by this test's workers only
	starter := app.Starter(s.cfg, s.Client, false)
	starter.TaskQueue = queue
	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	held := heldCustomers{Resolver: s.Connections, started: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	released := false
	defer func() {
		if !released {
			close(held.release)
		}
	}()
	// The run's steps (activities) on one worker, its workflow tasks on
	// another.
	stepWorker := sdkworker.New(s.Client, queue, sdkworker.Options{DisableWorkflowWorker: true})
	stepWorker.RegisterActivityWithOptions(&activities.Activities{Connections: held, Runs: s.Client}, activity.RegisterOptions{})
	if err := stepWorker.Start(); err != nil {
		t.Fatal(err)
	}
	defer stepWorker.Stop()
	runWorker := func() sdkworker.Worker {
		w := dsworker.New(s.Client, queue, app.Activities(s.Connections, s.Client), s.cfg.Workflow.ActivityTimeout, sdkworker.Options{LocalActivityWorkerOnly: true}, nil)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	first := runWorker()
	evs, err := generic.ParseEvents(event("evt-"+deal, deal, nil), "msg-"+deal)
	if err != nil {
		t.Fatal(err)
	}
	res, err := starter.Start(context.Background(), conn, evs[0])
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	select {
	case <-held.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the customer step never started")
	}
	// No worker takes the run's workflow tasks now.
	first.Stop()
	close(held.release)
	released = true
	// The customer step's answer is recorded, its workflow task waits.
	for deadline := time.Now().Add(30 * time.Second); !hasEvent(t, s, res.WorkflowID, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the customer step never ended")
		}
	}
	if err := s.Client.CancelWorkflow(context.Background(), res.WorkflowID, ""); err != nil {
		t.Fatal(err)
	}
	defer runWorker().Stop()
	var canceled *temporal.CanceledError
	if err := s.waitRun(t, res.WorkflowID, nil); !errors.As(err, &canceled) {
		t.Fatalf("%v; want the run canceled", err)
	}
	if hasEvent(t, s, res.WorkflowID, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, "CreateInvoice") {
		t.Error("the run started its invoice step, canceled")
	}
	if n := s.countRuns(t, fmt.Sprintf(`WorkflowId = %q AND ExecutionStatus = "Canceled" AND SyncStatus = "pending"`, res.WorkflowID), 1); n != 1 {
		t.Errorf("%d canceled runs of %s with SyncStatus pending, want 1 (nothing of its invoice was sent)", n, deal)
	}
	if n := s.invoicesFor(deal); n != 0 {
		t.Errorf("%d invoices, want none", n)
	}
	s.keepHistory(t, res.WorkflowID, "generic-activity-canceled-as-customer-step-ended")
}

// hasEvent says whether the history of the run of workflowID has an event
// of type typ (of an activity scheduled of type activityType, if given).
func hasEvent(t *testing.T, s *stack, workflowID string, typ enumspb.EventType, activityType ...string) bool {
	t.Helper()
	iter := s.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() != typ {
			continue
		}
		if len(activityType) == 0 || ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == activityType[0] {
			return true
		}
	}
	return false
}
