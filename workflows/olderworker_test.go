package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/dealsync/dealsync/workflows"
)

// asWorker makes the SDK's replayer process a history as a worker that
// takes the run over does: the SDK (v1.50.0, internal IsReplayNamespace)
// reads the replayer's namespace to compare the whole history with the
// code's commands even once the code has ended (which a worker does
// not). That is the SDK's internals, not its API (the plugin's
// Namespace is given "no guarantees"): the test checks that the run saw
// this namespace, and its failures say which of the SDK's changes could
// be why.
type asWorker struct{ worker.PluginBase }

func (asWorker) Name() string { return "dealsync-test-as-worker" }

func (asWorker) ReplayWorkflow(ctx context.Context, o worker.PluginReplayWorkflowOptions, next func(context.Context, worker.PluginReplayWorkflowOptions) error) error {
	o.Namespace = "default"
	return next(ctx, o)
}

// Why a worker of an older release fails a run that waited on a newer
// back-off timer instead of refusing it with TMPRL1100, and why no
// release can change that (docs/limitations.md, "An older worker fails a
// run that waited on a newer back-off timer"): the call before the wait
// hands the older code its recorded failure within the replay, the older
// code (which made the step as one call) ends the run on it, and the SDK
// compares the history's version marker and timer that follow the call
// with the code's commands only while the code has not ended. Shown here
// with today's code on a kept history whose call's failure is made what
// older code reads of it (a failure that ends the step): a worker taking
// the run after its waits ends it failed, where the SDK's replayer says
// TMPRL1100 for the same history (a replay test of older code would not
// show what its workers do).
func TestAWorkerDoesNotCheckTheHistoryAfterTheRunsCodeEnded(t *testing.T) {
	file := filepath.Join("testdata", "histories", "generic-local-invoice-long-retry-after.json")
	history, _ := keptHistory(t, file)
	events := history.GetEvents()
	// The call an attempt's Retry-After ended (the first), made a
	// failure that ends the step, as older code takes it.
	ended, timers := -1, 0
	for i, ev := range events {
		info := ev.GetMarkerRecordedEventAttributes().GetFailure().GetApplicationFailureInfo()
		if ended < 0 && info.GetNonRetryable() && info.GetNextRetryDelay().AsDuration() > 0 {
			ended = i
			info.NextRetryDelay = nil
		}
		if ended >= 0 && ev.GetTimerStartedEventAttributes() != nil {
			timers++
		}
		// A worker takes the run over once it has waited twice.
		if timers == 2 && ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED {
			history = &historypb.History{Events: events[:i+1]}
			break
		}
	}
	if ended < 0 || timers != 2 || len(history.GetEvents()) == len(events) {
		t.Fatalf("%s: want a call ended by its Retry-After, then two timers and a workflow task (found the call: %v, %d timers)", file, ended >= 0, timers)
	}

	var namespace string // the run's, as its code saw it
	replay := func(plugins []worker.Plugin, h *historypb.History) (done bool, runErr, err error) {
		t.Helper()
		r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{Plugins: plugins})
		if err != nil {
			t.Fatal(err)
		}
		run := func(ctx workflow.Context, in workflows.InvoiceDealInput) (workflows.InvoiceDealResult, error) {
			namespace = workflow.GetInfo(ctx).Namespace
			res, err := workflows.InvoiceDeal(ctx, in)
			done, runErr = true, err
			return res, err
		}
		r.RegisterWorkflowWithOptions(run, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
		quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler)) // the SDK logs the panic it expects
		err = r.ReplayWorkflowHistory(quiet, proto.Clone(h).(*historypb.History))
		return done, runErr, err
	}

	// The worker: no non-determinism, the run ended failed with the
	// step's failure, its waits and the calls after them unread.
	done, runErr, err := replay([]worker.Plugin{asWorker{}}, history)
	if namespace != "default" {
		t.Fatalf("the run's namespace is %q: the SDK no longer takes the plugin's, so this test cannot replay as a worker and says nothing of workers; find how the SDK now tells its replayer from a worker", namespace)
	}
	if err != nil {
		t.Fatalf("replayed as a worker, the run was refused: %v\n"+
			"Either the SDK's workers now compare the history after the code ended (then an older worker refuses such runs with TMPRL1100: docs/limitations.md's entry and docs/operations.md's upgrade notes must say so), "+
			"or the SDK no longer picks that check by the replayer's namespace (then asWorker needs another way); look which before changing the docs", err)
	}
	var app *temporal.ApplicationError
	if !done || !errors.As(runErr, &app) || app.Type() != "ERPUnavailable" {
		t.Fatalf("the run's code ended %v with %v; want it failed ERPUnavailable at the call", done, runErr)
	}
	// The replayer, which reads on after the code ended: TMPRL1100.
	if _, _, err := replay(nil, history); err == nil || !strings.Contains(err.Error(), "TMPRL1100") {
		t.Fatalf("the replayer: want TMPRL1100, got %v", err)
	}
}
