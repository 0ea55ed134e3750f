package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/rerun"
	dsworker "github.com/dealsync/dealsync/worker"
	"github.com/dealsync/dealsync/workflows"
)

// With worker deployments (worker.deployment), a run stays on the build
// that started it: a run of build A that waits (here it lingers, and a
// later event of its deal reaches it) is continued by A's worker only,
// though a worker of build B polls the task queue and B is made current
// meanwhile; a new run goes to B. Unpinned (AutoUpgrade), the lingering
// run's next workflow task would go to B, the current build: the older or
// newer code taking over a run it may not replay (docs/limitations.md).
func TestPinnedRunStaysOnItsBuild(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		// The run lingers after its invoice: it waits, and listens.
		"DEALSYNC_CONNECTIONS_DEMO_LINGER": "1h",
	}})
	const queue, deployment = "versioning-test", "dealsync-test" // polled by this test's workers only
	starter := app.Starter(s.cfg, s.Client, false)
	starter.TaskQueue = queue
	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	start := func(eventID, dealID string) string {
		t.Helper()
		evs, err := generic.ParseEvents(event(eventID, dealID, nil), "msg-"+eventID)
		if err != nil {
			t.Fatal(err)
		}
		res, err := starter.Start(context.Background(), conn, evs[0])
		if err != nil {
			t.Fatalf("start %s: %v", eventID, err)
		}
		return res.WorkflowID
	}
	build := func(id string) sdkworker.Worker {
		t.Helper()
		w := dsworker.New(s.Client, queue, app.Activities(s.Connections, s.Client), s.cfg.Workflow.ActivityTimeout,
			sdkworker.Options{DeploymentOptions: dsworker.DeploymentOptions(deployment, id)}, nil)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	// setCurrent makes build id current, once the server knows it (its
	// worker's first poll registers it).
	setCurrent := func(id string) {
		t.Helper()
		h := s.Client.WorkerDeploymentClient().GetHandle(deployment)
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err = h.SetCurrentVersion(context.Background(), client.WorkerDeploymentSetCurrentVersionOptions{BuildID: id}); err == nil {
				return
			}
		}
		t.Fatalf("setting %s current: %v", id, err)
	}
	// builds are the builds that completed the run's workflow tasks, in
	// order; taken says whether one completed after the run's second
	// signal (the later event: the first came with the start).
	builds := func(id string) (out []string, taken bool) {
		t.Helper()
		iter := s.Client.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		signals := 0
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetWorkflowExecutionSignaledEventAttributes() != nil {
				signals++
			}
			if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
				v := a.GetDeploymentVersion()
				out = append(out, v.GetDeploymentName()+"/"+v.GetBuildId())
				taken = taken || signals >= 2
			}
		}
		return out, taken
	}
	waitStatus := func(dealID, status string) {
		t.Helper()
		if n := s.countRuns(t, `DealId = "`+dealID+`" AND SyncStatus = "`+status+`" AND ExecutionStatus = "Running"`, 1); n != 1 {
			t.Fatalf("the run of %s is not %s and running (count %d)", dealID, status, n)
		}
	}

	a := build("A")
	aStopped := false
	defer func() {
		if !aStopped {
			a.Stop()
		}
	}()
	setCurrent("A")
	runA := start("evt-ver-a", "D-VER-A")
	waitStatus("D-VER-A", workflows.StatusInvoiced)
	desc, err := s.Client.DescribeWorkflowExecution(context.Background(), runA, "")
	if err != nil {
		t.Fatal(err)
	}
	if vi := desc.GetWorkflowExecutionInfo().GetVersioningInfo(); vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != "A" {
		t.Fatalf("run A's versioning: %v; want pinned to build A", vi)
	}

	// Build A's worker stops (a deploy), build B's starts and is made
	// current. A later event of the deal reaches the lingering run: its
	// workflow task waits for build A.
	a.Stop()
	aStopped = true
	b := build("B")
	defer b.Stop()
	setCurrent("B")
	later := start("evt-ver-a2", "D-VER-A")
	if later != runA {
		t.Fatalf("the later event went to %s, not the run %s", later, runA)
	}
	// A new run goes to build B, and is invoiced there.
	runB := start("evt-ver-b", "D-VER-B")
	waitStatus("D-VER-B", workflows.StatusInvoiced)
	if got, _ := builds(runB); len(got) == 0 || got[len(got)-1] != deployment+"/B" {
		t.Fatalf("run B's workflow tasks were completed by %v; want build B", got)
	}

	// Build B's worker, polling since before run B, has not taken run
	// A's later event.
	got, taken := builds(runA)
	if taken {
		t.Fatalf("run A's later event was taken while build A had no worker (builds %v)", got)
	}
	// `runs list` says what run A waits for (at once here: the list
	// tells a waiting task after WaitingTaskAfter).
	defer func(after time.Duration) { rerun.WaitingTaskAfter = after }(rerun.WaitingTaskAfter)
	rerun.WaitingTaskAfter = 0
	listed, _, err := rerun.List(context.Background(), s.Client, rerun.ListOptions{TaskQueue: queue, Query: `DealId = "D-VER-A"`, Limit: 5})
	if err != nil || len(listed) != 1 || !strings.Contains(listed[0].WaitingForWorker, "for a worker of build A of worker deployment "+deployment+", which the run is pinned to") {
		t.Fatalf("runs list of run A waiting for build A: %v %+v", err, listed)
	}
	// Build A's worker comes back, and takes the event: every workflow
	// task of run A is build A's.
	a = build("A")
	aStopped = false
	for deadline := time.Now().Add(30 * time.Second); !taken && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got, taken = builds(runA)
	}
	if !taken {
		t.Fatalf("run A did not take its later event (builds %v)", got)
	}
	for _, v := range got {
		if v != deployment+"/A" {
			t.Fatalf("run A's workflow tasks were completed by %v; want build A's only", got)
		}
	}
	if s.invoicesFor("D-VER-A") != 1 || s.invoicesFor("D-VER-B") != 1 {
		t.Errorf("%d and %d invoices; want one each", s.invoicesFor("D-VER-A"), s.invoicesFor("D-VER-B"))
	}
}

// versioned drives workers of a worker deployment on a task queue of its
// own, and the runs of its deals.
type versioned struct {
	t                 *testing.T
	s                 *stack
	starter           *intake.TemporalStarter
	conn              *connections.Connection
	queue, deployment string
}

func newVersioned(t *testing.T, s *stack, queue, deployment string) *versioned {
	starter := app.Starter(s.cfg, s.Client, false)
	starter.TaskQueue = queue
	conn, ok := s.Connections.Get("demo")
	if !ok {
		t.Fatal("no demo connection")
	}
	return &versioned{t: t, s: s, starter: starter, conn: conn, queue: queue, deployment: deployment}
}

// send delivers a deal event as the intake does: a loss meeting no run is
// recorded by a run of its own (Notify), a win starts or reaches the
// deal's run (Start).
func (v *versioned) send(eventID, dealID, stage, previous, at string) connectors.EventResult {
	v.t.Helper()
	body := bytes.Replace(event(eventID, dealID, func(d map[string]any) { d["stage"], d["previous_stage"] = stage, previous }),
		[]byte(`"2026-11-20T10:00:00Z"`), []byte(`"`+at+`"`), 1)
	evs, err := generic.ParseEvents(body, "msg-"+eventID)
	if err != nil {
		v.t.Fatal(err)
	}
	var res connectors.EventResult
	if workflows.IsLoss(v.conn.WonStages, evs[0]) {
		res, _, err = v.starter.Notify(context.Background(), v.conn, evs[0])
	} else {
		res, err = v.starter.Start(context.Background(), v.conn, evs[0])
	}
	if err != nil {
		v.t.Fatalf("start %s: %v", eventID, err)
	}
	return res
}

// build starts a worker of build id ("": an unversioned worker).
func (v *versioned) build(id string) sdkworker.Worker {
	v.t.Helper()
	name := v.deployment
	if id == "" {
		name = ""
	}
	w := dsworker.New(v.s.Client, v.queue, app.Activities(v.s.Connections, v.s.Client), v.s.cfg.Workflow.ActivityTimeout,
		sdkworker.Options{DeploymentOptions: dsworker.DeploymentOptions(name, id)}, nil)
	if err := w.Start(); err != nil {
		v.t.Fatal(err)
	}
	return w
}

// setCurrent makes build id current, once the server knows it (its
// worker's first poll registers it).
func (v *versioned) setCurrent(id string) {
	v.t.Helper()
	h := v.s.Client.WorkerDeploymentClient().GetHandle(v.deployment)
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err = h.SetCurrentVersion(context.Background(), client.WorkerDeploymentSetCurrentVersionOptions{BuildID: id}); err == nil {
			return
		}
	}
	v.t.Fatalf("setting %s current: %v", id, err)
}

// builds are the builds ("deployment/build", "/" for an unversioned
// worker) that completed the run's workflow tasks, in order.
func (v *versioned) builds(id, runID string) (out []string) {
	v.t.Helper()
	iter := v.s.Client.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			v.t.Fatal(err)
		}
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			d := a.GetDeploymentVersion()
			out = append(out, d.GetDeploymentName()+"/"+d.GetBuildId())
		}
	}
	return out
}

// describe waits for the run's first workflow task to be completed (its
// versioning known) and returns the run's description.
func (v *versioned) describe(id, runID string) *workflowservice.DescribeWorkflowExecutionResponse {
	v.t.Helper()
	desc, err := v.s.Client.DescribeWorkflowExecution(context.Background(), id, runID)
	for deadline := time.Now().Add(30 * time.Second); err == nil && desc.GetWorkflowExecutionInfo().GetVersioningInfo().GetBehavior() == enumspb.VERSIONING_BEHAVIOR_UNSPECIFIED && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		desc, err = v.s.Client.DescribeWorkflowExecution(context.Background(), id, runID)
	}
	if err != nil {
		v.t.Fatal(err)
	}
	return desc
}

// A pinned run that continues as new (a RecordDealLoss run that a newer
// win reaches continues as the InvoiceDeal run of that win) passes its
// build on: the continued run is pinned to the build of the run before,
// though another build is current (Temporal's default for a pinned run's
// continue-as-new, which dealsync keeps: the continued run's first task
// would otherwise go to the current build, the hazard pinning avoids).
func TestPinnedRunContinuedAsNewStaysOnItsBuild(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		// The loss's run waits before recording it: a win reaches it.
		"DEALSYNC_CONNECTIONS_DEMO_SETTLE_TIME": "2s",
	}})
	v := newVersioned(t, s, "versioning-can-test", "dealsync-can-test") // polled by this test's workers only

	a := v.build("A")
	v.setCurrent("A")
	loss := v.send("evt-can-lost", "D-VER-CAN", "closed_lost", "closed_won", "2026-11-20T10:00:00Z")
	desc := v.describe(loss.WorkflowID, loss.RunID)
	if typ := desc.GetWorkflowExecutionInfo().GetType().GetName(); typ != workflows.RecordDealLossName {
		t.Fatalf("the loss started a %s run; want %s", typ, workflows.RecordDealLossName)
	}
	if vi := desc.GetWorkflowExecutionInfo().GetVersioningInfo(); vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != "A" {
		t.Fatalf("the loss's run versioning: %v; want pinned to build A", vi)
	}

	// Build A's worker stops, build B's starts and is made current; a
	// win newer than the loss reaches the loss's run, which waits for A.
	a.Stop()
	b := v.build("B")
	defer b.Stop()
	v.setCurrent("B")
	if won := v.send("evt-can-won", "D-VER-CAN", "closed_won", "closed_lost", "2026-11-20T10:05:00Z"); won.WorkflowID != loss.WorkflowID {
		t.Fatalf("the win went to %s, not the loss's run %s", won.WorkflowID, loss.WorkflowID)
	}
	// Build A's worker comes back: the loss's run continues as the win's
	// InvoiceDeal run, which build A's worker runs to its invoice.
	a = v.build("A")
	defer a.Stop()
	var res workflows.InvoiceDealResult
	if err := s.waitRun(t, loss.WorkflowID, &res); err != nil {
		t.Fatalf("the continued run: %v", err)
	}
	last, err := s.Client.DescribeWorkflowExecution(context.Background(), loss.WorkflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	info := last.GetWorkflowExecutionInfo()
	if info.GetExecution().GetRunId() == loss.RunID || info.GetType().GetName() != workflows.InvoiceDealName {
		t.Fatalf("the last run is %s %s; want an InvoiceDeal run continued from %s", info.GetType().GetName(), info.GetExecution().GetRunId(), loss.RunID)
	}
	for _, run := range []string{loss.RunID, info.GetExecution().GetRunId()} {
		got := v.builds(loss.WorkflowID, run)
		if len(got) == 0 {
			t.Fatalf("run %s completed no workflow task", run)
		}
		for _, b := range got {
			if b != v.deployment+"/A" {
				t.Fatalf("run %s's workflow tasks were completed by %v; want build A's only", run, got)
			}
		}
	}
	if n := s.invoicesFor("D-VER-CAN"); n != 1 {
		t.Errorf("%d invoices; want 1", n)
	}
}

// Turning versioning on (docs/operations.md): a run started by an
// unversioned worker, waiting, is taken at its next task by the build
// made current, and pinned to it from then on; a run started while the
// only workers are versioned and no build is current waits, and runs on
// the build made current.
func TestTurningVersioningOn(t *testing.T) {
	s := startStack(t, stackOptions{env: map[string]string{
		// The runs linger after their invoice: they wait, and listen.
		"DEALSYNC_CONNECTIONS_DEMO_LINGER": "1h",
	}})
	v := newVersioned(t, s, "versioning-on-test", "dealsync-on-test") // polled by this test's workers only
	won := func(eventID, dealID, at string) connectors.EventResult {
		t.Helper()
		return v.send(eventID, dealID, "closed_won", "negotiation", at)
	}

	u := v.build("")
	old := won("evt-on-old", "D-ON-OLD", "2026-11-20T10:00:00Z")
	if n := s.countRuns(t, `DealId = "D-ON-OLD" AND SyncStatus = "invoiced" AND ExecutionStatus = "Running"`, 1); n != 1 {
		t.Fatalf("the old run is not invoiced and lingering (count %d)", n)
	}
	if desc, err := s.Client.DescribeWorkflowExecution(context.Background(), old.WorkflowID, old.RunID); err != nil {
		t.Fatal(err)
	} else if vi := desc.GetWorkflowExecutionInfo().GetVersioningInfo(); vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_UNSPECIFIED {
		t.Fatalf("the unversioned worker's run: versioning %v; want none", vi)
	}
	u.Stop()

	// Only build A polls, and no build is current: a new run waits.
	a := v.build("A")
	defer a.Stop()
	fresh := won("evt-on-new", "D-ON-NEW", "2026-11-20T10:00:00Z")
	// Checked once, at once: it fails only if build A took the run at once.
	if got := v.builds(fresh.WorkflowID, fresh.RunID); len(got) != 0 {
		t.Fatalf("a run started while no build is current was taken by %v", got)
	}
	// Build A made current: the waiting run runs there, pinned to A.
	v.setCurrent("A")
	if vi := v.describe(fresh.WorkflowID, fresh.RunID).GetWorkflowExecutionInfo().GetVersioningInfo(); vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != "A" {
		t.Fatalf("the run started before a build was current: versioning %v; want pinned to build A", vi)
	}
	if n := s.countRuns(t, `DealId = "D-ON-NEW" AND SyncStatus = "invoiced" AND ExecutionStatus = "Running"`, 1); n != 1 {
		t.Fatalf("the run started before a build was current is not invoiced (count %d)", n)
	}
	// A later event reaches the old run: build A takes it, and pins it.
	if later := won("evt-on-old2", "D-ON-OLD", "2026-11-20T10:05:00Z"); later.WorkflowID != old.WorkflowID {
		t.Fatalf("the later event went to %s, not %s", later.WorkflowID, old.WorkflowID)
	}
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = v.builds(old.WorkflowID, old.RunID); len(got) > 0 && got[len(got)-1] == v.deployment+"/A" {
			break
		}
	}
	if len(got) == 0 || got[0] != "/" || got[len(got)-1] != v.deployment+"/A" {
		t.Fatalf("the old run's workflow tasks were completed by %v; want the unversioned worker's, then build A's", got)
	}
	if vi := v.describe(old.WorkflowID, old.RunID).GetWorkflowExecutionInfo().GetVersioningInfo(); vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED || vi.GetDeploymentVersion().GetBuildId() != "A" {
		t.Fatalf("the old run after build A took it: versioning %v; want pinned to build A", vi)
	}
	if s.invoicesFor("D-ON-OLD") != 1 || s.invoicesFor("D-ON-NEW") != 1 {
		t.Errorf("%d and %d invoices; want one each", s.invoicesFor("D-ON-OLD"), s.invoicesFor("D-ON-NEW"))
	}
}
