package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/rerun"
	dsworker "github.com/dealsync/dealsync/worker"
)

// A run started by an intake whose config sends connection demo to the
// sandbox (target A), and processed by a worker whose config sends it to
// another ERP (target B: the same target name, another base_url, as a
// DEALSYNC_TARGETS_SANDBOX_BASE_URL set on one host only would), makes
// nothing in B: its ERP step sends no request there, is retried, and the
// run fails ERPTargetMismatch with a message that names both targets and
// what to do, by local calls and by activities alike. Before, the worker
// invoiced the deal into B.
func TestARunStartedForOneTargetMakesNothingInAnother(t *testing.T) {
	s := startStack(t, stackOptions{})
	var calls atomic.Int32
	erpB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "this ERP must not be called", http.StatusInternalServerError)
	}))
	defer erpB.Close()

	// The worker's config: the intake's, with the sandbox target pointed
	// at B.
	spec := *s.cfg.Targets["sandbox"].Spec.(*httptarget.Config)
	spec.BaseURL = erpB.URL
	workerCfg := *s.cfg
	workerCfg.Targets = map[string]config.Component{"sandbox": {Type: "http", Spec: &spec}}
	workerSet, err := connections.Build(&workerCfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	const queue = "target-pin-test" // polled by this test's worker only
	w := dsworker.New(s.Client, queue, &activities.Activities{Connections: workerSet}, s.cfg.Workflow.ActivityTimeout, sdkworker.Options{}, nil)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	for _, c := range []struct {
		deal  string
		local bool
	}{{"D-PIN-LOCAL", true}, {"D-PIN-ACTIVITY", false}} {
		starter := app.Starter(s.cfg, s.Client, false)
		starter.TaskQueue, starter.LocalCalls = queue, c.local
		starter.Retry.MaximumAttempts = 2
		evs, err := generic.ParseEvents(event("evt-"+c.deal, c.deal, nil), "msg-"+c.deal)
		if err != nil {
			t.Fatal(err)
		}
		res, err := starter.Start(context.Background(), conn, evs[0])
		if err != nil {
			t.Fatalf("%s: start: %v", c.deal, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err = s.Client.GetWorkflow(ctx, res.WorkflowID, "").Get(ctx, nil)
		cancel()
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeTargetMismatch {
			t.Fatalf("%s: the run ended %v; want it failed %s", c.deal, err, activities.ErrTypeTargetMismatch)
		}
		for _, want := range []string{
			`this worker sends the ERP calls of connection "demo" to target "sandbox" (http, base_url ` + erpB.URL + `), ` +
				`but the run was started for target "sandbox" (http, base_url dev.sandbox_listen): nothing was sent`,
			"`dealsync config check` on every host", "`dealsync runs retry --terminated --query …`",
			"all 2 attempts failed (workflow.retry.maximum_attempts)",
		} {
			if !strings.Contains(appErr.Message(), want) {
				t.Errorf("%s: the run's failure %q\nwant it to say %q", c.deal, appErr.Message(), want)
			}
		}
		if n := calls.Load(); n != 0 || s.invoicesFor(c.deal) != 0 {
			t.Fatalf("%s: %d requests to the worker's target, %d invoices in the run's; want none", c.deal, n, s.invoicesFor(c.deal))
		}
		// runs list names the failure by its type, once the (eventually
		// consistent) run list has the run's end.
		var listed []rerun.Run
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if listed, _, err = rerun.List(context.Background(), s.Client, rerun.ListOptions{TaskQueue: queue, Query: `DealId = "` + c.deal + `"`, Limit: 5}); err != nil {
				t.Fatal(err)
			}
			if len(listed) == 1 && listed[0].FailureType != "" {
				break
			}
		}
		if len(listed) != 1 || listed[0].FailureType != activities.ErrTypeTargetMismatch || listed[0].SyncStatus != "failed" {
			t.Errorf("%s: runs list: %+v; want the run failed %s", c.deal, listed, activities.ErrTypeTargetMismatch)
		}
	}

	// A run started for the wrong target (the intake's config, fixed
	// since) is retried until its run_timeout with unlimited attempts;
	// the message's way out: terminate it, then `runs retry --terminated`
	// with the fixed config (here the worker's) starts it again for that
	// config's target, which its steps call (B, which answers 500 here:
	// the run fails on the ERP's answer, no longer on the mismatch).
	starter := app.Starter(s.cfg, s.Client, false)
	starter.TaskQueue, starter.LocalCalls = queue, true
	evs, err := generic.ParseEvents(event("evt-D-PIN-STUCK", "D-PIN-STUCK", nil), "msg-D-PIN-STUCK")
	if err != nil {
		t.Fatal(err)
	}
	res, err := starter.Start(context.Background(), conn, evs[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Client.TerminateWorkflow(ctx, res.WorkflowID, "", "started for the wrong target"); err != nil {
		t.Fatal(err)
	}
	fixed := app.Starter(&workerCfg, s.Client, false)
	fixed.TaskQueue, fixed.LocalCalls = queue, true
	fixed.Retry.MaximumAttempts = 2
	var results []rerun.Result
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && len(results) == 0; time.Sleep(100 * time.Millisecond) {
		// The run list is eventually consistent.
		if results, err = rerun.Failed(ctx, s.Client, workerSet, fixed, rerun.Options{TaskQueue: queue, Terminated: true, Query: `DealId = "D-PIN-STUCK"`}); err != nil {
			t.Fatal(err)
		}
	}
	if len(results) != 1 || results[0].NewRun == "" {
		t.Fatalf("runs retry --terminated: %+v; want the terminated run started again", results)
	}
	err = s.Client.GetWorkflow(ctx, res.WorkflowID, results[0].NewRun).Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() == activities.ErrTypeTargetMismatch || calls.Load() == 0 {
		t.Fatalf("the new run ended %v after %d calls to the fixed config's target; want it to call that target", err, calls.Load())
	}

	// With workflow.target_mismatch_grace (here 1 s, on a worker of its
	// own queue), such a run, with unlimited attempts, is not stuck: its
	// step is retried for the grace, then the run fails ERPTargetMismatch
	// by itself, and `runs retry` (no --terminated) starts it again for
	// the fixed config's target, warning that it differs from the run's.
	const graceQueue = "target-grace-test"
	gw := dsworker.New(s.Client, graceQueue, &activities.Activities{Connections: workerSet, TargetMismatchGrace: time.Second},
		s.cfg.Workflow.ActivityTimeout, sdkworker.Options{}, nil)
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	graced := app.Starter(s.cfg, s.Client, false)
	graced.TaskQueue, graced.LocalCalls = graceQueue, true // unlimited attempts
	evs, err = generic.ParseEvents(event("evt-D-PIN-GRACE", "D-PIN-GRACE", nil), "msg-D-PIN-GRACE")
	if err != nil {
		t.Fatal(err)
	}
	if res, err = graced.Start(context.Background(), conn, evs[0]); err != nil {
		t.Fatal(err)
	}
	err = s.Client.GetWorkflow(ctx, res.WorkflowID, "").Get(ctx, nil)
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeTargetMismatch || !appErr.NonRetryable() ||
		!strings.Contains(appErr.Message(), "past workflow.target_mismatch_grace (1s), and is not retried again: the run fails") {
		t.Fatalf("the run ended %v; want it failed %s once the grace was past", err, activities.ErrTypeTargetMismatch)
	}
	before := calls.Load()
	fixed.TaskQueue = graceQueue
	results = nil
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && len(results) == 0; time.Sleep(100 * time.Millisecond) {
		if results, err = rerun.Failed(ctx, s.Client, workerSet, fixed, rerun.Options{TaskQueue: graceQueue, Query: `DealId = "D-PIN-GRACE"`}); err != nil {
			t.Fatal(err)
		}
	}
	if len(results) != 1 || results[0].NewRun == "" {
		t.Fatalf("runs retry: %+v; want the failed run started again", results)
	}
	if w := results[0].SettingsWarning; !strings.Contains(w, `target "sandbox" (http, base_url dev.sandbox_listen) → target "sandbox" (http, base_url `+erpB.URL+`)`) {
		t.Errorf("runs retry's warning %q; want it to name both targets", w)
	}
	err = s.Client.GetWorkflow(ctx, res.WorkflowID, results[0].NewRun).Get(ctx, nil)
	if !errors.As(err, &appErr) || appErr.Type() == activities.ErrTypeTargetMismatch || calls.Load() == before {
		t.Fatalf("the new run ended %v after %d calls to the fixed config's target; want it to call that target", err, calls.Load()-before)
	}
}
