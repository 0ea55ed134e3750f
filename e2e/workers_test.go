package e2e

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/rerun"
	dsworker "github.com/dealsync/dealsync/worker"
	"github.com/dealsync/dealsync/workflows"
)

// noConnections is the config of a worker that has none of the runs'
// connections (an older config than the intake's).
type noConnections struct{}

func (noConnections) Resolve(string) (activities.Connection, bool) {
	return activities.Connection{}, false
}

// A run whose first workflow task reaches a worker without its connection
// is not kept there: that worker fails the task (a WorkflowTaskFailed
// naming the connection, which the Web UI shows), and the run goes on,
// invoiced once, on a worker of the task queue that has the connection.
// Before, the worker without it ran the run's steps, each failing
// ConnectionUnavailable, and held the run (Temporal's sticky queue) for
// as long as it ran. (What a worker refuses, and how often, are the
// guard's unit tests in package worker.)
func TestRunLeavesAWorkerWithoutItsConnection(t *testing.T) {
	s := startStack(t, stackOptions{})
	const queue = "guard-test" // polled by this test's workers only
	starter := app.Starter(s.cfg, s.Client, false)
	starter.TaskQueue = queue
	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	evs, err := generic.ParseEvents(event("evt-guard", "D-GUARD", nil), "msg-guard")
	if err != nil {
		t.Fatal(err)
	}
	res, err := starter.Start(context.Background(), conn, evs[0])
	if err != nil {
		t.Fatalf("start: %v", err)
	}

	// The worker without the connection logs through dealsync's adapter
	// of the SDK's logger (app.ClientOptions), read below.
	var logged testlog.Buffer
	copts, err := app.ClientOptions(s.cfg, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	withoutClient, err := client.NewClientFromExisting(s.Client, copts)
	if err != nil {
		t.Fatal(err)
	}
	defer withoutClient.Close()
	without := dsworker.New(withoutClient, queue, &activities.Activities{Connections: noConnections{}}, s.cfg.Workflow.ActivityTimeout, sdkworker.Options{}, copts.Logger)
	if err := without.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			without.Stop()
		}
	}()
	// Only the worker without the connection polls: the run's first
	// workflow task is its, and fails there.
	failed := ""
	for deadline := time.Now().Add(30 * time.Second); failed == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		iter := s.Client.GetWorkflowHistory(context.Background(), res.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
				failed = a.GetFailure().GetMessage()
			}
		}
	}
	if !strings.Contains(failed, `connection "demo" is not configured on this worker`) {
		t.Fatalf("the worker without the connection did not fail the run's workflow task (failure %q)", failed)
	}

	// The run list says the run's workflow task fails (the only sign of
	// it there: the run is Running, pending): the refusal above put its
	// task on a later attempt.
	var listed []rerun.Run
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		listed, _, err = rerun.List(context.Background(), s.Client, rerun.ListOptions{TaskQueue: queue, Query: `DealId = "D-GUARD"`, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) == 1 && listed[0].WorkflowTaskAttempt > 1 {
			break
		}
	}
	if len(listed) != 1 || listed[0].WorkflowTaskAttempt < 2 {
		t.Errorf("runs list: %+v; want the run with its failing workflow task's attempt", listed)
	}
	// And why, from the run's history (its last WorkflowTaskFailed): the
	// describe the attempt comes from does not say.
	if len(listed) == 1 && !strings.HasPrefix(listed[0].WorkflowTaskFailure, `connection "demo" is not configured on this worker: its workflow task fails here`) {
		t.Errorf("runs list: workflow task failure %q; want the guard's refusal", listed[0].WorkflowTaskFailure)
	}

	// Each refusal is the guard's panic, which the SDK logs as "Workflow
	// panic" at error with a stack trace: a crash, to read it. The guard
	// says it once per run at warn, and the SDK's line of each refusal is
	// at debug, without its stack (the run's local calls have it refused
	// at every attempt: wait for the second's).
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logged.String(), `msg="workflow task refused: this worker lacks the run's connection"`) ||
		!strings.Contains(logged.String(), "Attempt=2"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second refusal was not logged at debug:\n%s", logged.String())
		}
	}
	said := logged.String()
	if n := strings.Count(said, `level=WARN msg="connection \"demo\" is not configured on this worker: its workflow task fails here`); n != 1 ||
		strings.Contains(said, `level=ERROR msg="Workflow panic"`) || strings.Contains(said, "StackTrace") {
		t.Errorf("%d warnings of the refusal (want 1), or the SDK's panic at error or with its stack:\n%s", n, said)
	}

	// The worker without the connection stops: each further attempt it
	// won would cost the run a workflow-task timeout (10 s), and more
	// from the fourth on (Temporal's backoff), which would make this
	// test slow by chance.
	without.Stop()
	stopped = true
	with := dsworker.New(s.Client, queue, app.Activities(s.Connections, s.Client), s.cfg.Workflow.ActivityTimeout, sdkworker.Options{}, nil)
	if err := with.Start(); err != nil {
		t.Fatal(err)
	}
	defer with.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out workflows.InvoiceDealResult
	if err := s.Client.GetWorkflow(ctx, res.WorkflowID, "").Get(ctx, &out); err != nil {
		t.Fatalf("the run did not reach the worker with the connection: %v", err)
	}
	if out.InvoiceID == "" || s.invoicesFor("D-GUARD") != 1 {
		t.Fatalf("result %+v, %d invoices; want one invoice", out, s.invoicesFor("D-GUARD"))
	}
}
