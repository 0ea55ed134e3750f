package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/worker"
)

// `dealsync worker` with worker.deployment polls as its build, which
// `dealsync worker set-current` makes current once one of its workers
// polls (before, it says to start them); making the next build current
// names the one before and lists it.
func TestWorkerSetCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false)
	_, erpURL := startSandbox(t)
	dir := t.TempDir()
	free := freeAddrs(t, 2)
	files := map[string]string{}
	for i, build := range []string{"A", "B"} {
		files[build] = writeFile(t, filepath.Join(dir, build+".yaml"), fmt.Sprintf(`
log: {level: warn}
temporal: {address: %q}
metrics: {listen: %q}
worker:
  deployment: {name: dealsync-cli, build_id: %s}
targets:
  erp: {type: http, base_url: %q}
connections:
  shop:
    source: {type: generic, secret: whsec_dGVzdA==}
    target: erp
`, srv.FrontendAddress(), free[i], build, erpURL))
	}
	// setCurrentCmd runs the command until Temporal knows the build (its
	// worker's first poll registers it, just after the worker is ready).
	setCurrentCmd := func(args ...string) string {
		t.Helper()
		var out string
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if out, err = runOut(ctx, args...); err == nil {
				return out
			}
		}
		t.Fatalf("dealsync %s: %v\n%s", strings.Join(args, " "), err, out)
		return ""
	}

	// note is what a worker of build id logs at its start about the
	// current build: warning, info.
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	note := func(id string) (string, string) {
		t.Helper()
		warning, info, err := currentBuildNote(ctx, c, config.Deployment{Name: "dealsync-cli", BuildID: id}, "dealsync")
		if err != nil {
			t.Fatalf("currentBuildNote %s: %v", id, err)
		}
		return warning, info
	}
	// unversioned is what an unversioned worker of task queue dealsync
	// logs at its start.
	unversioned := func() string {
		t.Helper()
		w, err := unversionedNote(ctx, c, "dealsync")
		if err != nil {
			t.Fatalf("unversionedNote: %v", err)
		}
		return w
	}
	if w := unversioned(); w != "" {
		t.Fatalf("task queue not versioned: warning %q", w)
	}
	// A deployment Temporal does not know yet has no current build.
	if w, i := note("A"); !strings.HasPrefix(w, "no build of worker deployment dealsync-cli is current: new runs wait") || i != "" {
		t.Fatalf("unknown deployment: warning %q, info %q", w, i)
	}

	out, err := runOut(ctx, "--config", files["A"], "worker", "set-current")
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "start build A's workers, with worker.deployment, first") {
		t.Fatalf("before any worker of build A polls: exit %d, %v\n%s", exitCode(err), err, out)
	}

	startCommand(ctx, t, "--config", files["A"], "worker")
	waitReady(t, "http://"+free[0]+"/readyz")
	if w, _ := note("A"); !strings.Contains(w, "`dealsync worker set-current` makes this one (A) current") {
		t.Fatalf("build A polls, none current: warning %q", w)
	}
	if out := setCurrentCmd("--config", files["A"], "worker", "set-current"); out != "build A of worker deployment dealsync-cli is current (was none): new runs go to its workers\n" {
		t.Fatalf("set-current A:\n%s", out)
	}

	if w, i := note("A"); w != "" || i != "" {
		t.Fatalf("build A current, at A's start: warning %q, info %q", w, i)
	}
	if w := unversioned(); w != "task queue dealsync is versioned: its new runs go to build A of worker deployment dealsync-cli, and this worker, without worker.deployment, takes none of them; set worker.deployment on it (name dealsync-cli, a build_id of this release) or stop it" {
		t.Fatalf("build A current, at an unversioned worker's start: warning %q", w)
	}
	// An unversioned worker started now logs it.
	logs := captureStderr(t)
	stopUnversioned := startCommand(ctx, t, "--config", writeFile(t, filepath.Join(dir, "unversioned.yaml"), fmt.Sprintf(`
log: {level: warn}
temporal: {address: %q}
targets:
  erp: {type: http, base_url: %q}
connections:
  shop:
    source: {type: generic, secret: whsec_dGVzdA==}
    target: erp
`, srv.FrontendAddress(), erpURL)), "worker")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "task queue dealsync is versioned: its new runs go to build A"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("an unversioned worker's start on a versioned task queue logged:\n%s", logs.String())
		}
	}
	stopUnversioned()
	// A misspelt deployment name: the task queue's new runs go to the
	// deployment it was meant to be; on a task queue of its own, the
	// warning names the close name.
	typo := func(name, taskQueue string) string {
		t.Helper()
		w, i, err := currentBuildNote(ctx, c, config.Deployment{Name: name, BuildID: "A"}, taskQueue)
		if err != nil || i != "" {
			t.Fatalf("currentBuildNote %s on %s: info %q, %v", name, taskQueue, i, err)
		}
		return w
	}
	if w := typo("dealsync-cil", "dealsync"); !strings.HasPrefix(w, "no build of worker deployment dealsync-cil is current, and task queue dealsync's new runs go to build A of worker deployment dealsync-cli: this build (A) takes none of them; if dealsync-cil is a typo of dealsync-cli, fix worker.deployment.name") {
		t.Fatalf("misspelt deployment on the versioned task queue: %q", w)
	}
	// A close name whose workers poll another task queue is another
	// installation (dealsync-eu beside dealsync-us), not a typo.
	if w := typo("dealsync-cil", "elsewhere"); !strings.HasPrefix(w, "no build of worker deployment dealsync-cil is current: new runs wait") || strings.Contains(w, "typo") {
		t.Fatalf("close name on a task queue of its own: %q", w)
	}
	if w := typo("payments", "elsewhere"); !strings.HasPrefix(w, "no build of worker deployment payments is current: new runs wait") || strings.Contains(w, "typo") {
		t.Fatalf("another deployment on a task queue of its own: %q", w)
	}
	// Workers of deployment payments poll task queue payq, none current:
	// a close name on payq is a typo, named.
	defer poll(t, c, "payq", "payments", "1")()
	if w := typo("paymnets", "payq"); !strings.HasPrefix(w, "no build of worker deployment paymnets is current: new runs wait") || !strings.HasSuffix(w, " (or is worker.deployment.name a typo? workers of worker deployment payments poll task queue payq too)") {
		t.Fatalf("misspelt deployment beside the right one's workers: %q", w)
	}
	// Turning versioning on: the first versioned worker, before any
	// build is current, beside the unversioned workers that take the new
	// runs meanwhile, is told so, not warned.
	defer poll(t, c, "migrating", "", "")()
	if w, i, err := currentBuildNote(ctx, c, config.Deployment{Name: "fresh", BuildID: "1"}, "migrating"); err != nil || w != "" ||
		i != "no build of worker deployment fresh is current: task queue migrating's new runs go to its unversioned workers (one polled in the last 5 minutes) until `dealsync worker set-current` makes this one (1) current" {
		t.Fatalf("first versioned worker beside unversioned ones: warning %q, info %q, %v", w, i, err)
	}
	if w, i := note("B"); w != "" || i != "build A of worker deployment dealsync-cli is current: this build (B) takes only the runs pinned to it until `dealsync worker set-current` makes it current" {
		t.Fatalf("build A current, at B's start: warning %q, info %q", w, i)
	}

	// A build of a deployment Temporal knows, none of whose workers polls.
	out, err = runOut(ctx, "--config", files["A"], "worker", "set-current", "--build-id", "B")
	if exitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "start build B's workers, with worker.deployment, first") {
		t.Fatalf("before any worker of build B polls: exit %d, %v\n%s", exitCode(err), err, out)
	}

	startCommand(ctx, t, "--config", files["B"], "worker")
	waitReady(t, "http://"+free[1]+"/readyz")
	out = setCurrentCmd("--config", files["A"], "worker", "set-current", "--build-id", "B")
	if !strings.HasPrefix(out, "build B of worker deployment dealsync-cli is current (was A): new runs go to its workers\nbuild A: ") {
		t.Fatalf("set-current B:\n%s", out)
	}
	// Again (as the docs say, to read the other builds' drainage).
	out, err = runOut(ctx, "--config", files["B"], "worker", "set-current")
	if err != nil || !strings.HasPrefix(out, "build B of worker deployment dealsync-cli was already current: new runs go to its workers\nbuild A: draining: ") {
		t.Fatalf("set-current B again: %v\n%s", err, out)
	}

	// Builds whose workers poll no task queue of that name: set-current
	// says so of the current one and of a draining one.
	h := c.WorkerDeploymentClient().GetHandle("dealsync-cli")
	var buf strings.Builder
	if err := setCurrent(ctx, &buf, c, h, config.Deployment{Name: "dealsync-cli", BuildID: "B"}, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.HasPrefix(out, "build B of worker deployment dealsync-cli was already current: new runs go to its workers\nwarning: no worker of build B has polled task queue elsewhere lately (in 5 minutes): new runs wait until one does\nbuild A: draining: ") ||
		!strings.HasSuffix(out, "; no worker of it has polled task queue elsewhere lately (in 5 minutes): its open runs, if any, wait until one does\n") {
		t.Fatalf("set-current B on a task queue nobody polls:\n%s", out)
	}

	// Two operators: the other makes A current between this one's read
	// and its change; this one's change is refused, says what happened,
	// and changes nothing.
	raced := &racedHandle{WorkerDeploymentHandle: h, race: func() {
		if _, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: "A", Identity: "other-operator"}); err != nil {
			t.Fatal(err)
		}
	}}
	buf.Reset()
	err = setCurrent(ctx, &buf, c, raced, config.Deployment{Name: "dealsync-cli", BuildID: "B"}, "dealsync")
	if exitCode(err) != 1 || err.Error() != "worker deployment dealsync-cli changed while this command ran (its current build was B, and is now A, last changed by other-operator): another operator or tool changed it, and this command changed nothing; look at the change, then run it again to make build B current" {
		t.Fatalf("set-current B raced by set-current A: exit %d, %v\n%s", exitCode(err), err, buf.String())
	}
	if desc, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{}); err != nil || currentOf(desc.Info) != "A" {
		t.Fatalf("after the raced set-current: current %q, %v", currentOf(desc.Info), err)
	}
	// The other operator makes current the build this one asked for:
	// done, not "run it again".
	raced = &racedHandle{WorkerDeploymentHandle: h, race: func() {
		if _, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: "B", Identity: "other-operator"}); err != nil {
			t.Fatal(err)
		}
	}}
	buf.Reset()
	if err := setCurrent(ctx, &buf, c, raced, config.Deployment{Name: "dealsync-cli", BuildID: "B"}, "dealsync"); err != nil ||
		!strings.HasPrefix(buf.String(), "build B of worker deployment dealsync-cli was made current meanwhile, last changed by other-operator (was A): new runs go to its workers\nbuild A: ") {
		t.Fatalf("set-current B raced by set-current B: %v\n%s", err, buf.String())
	}

	// A share of the new runs ramped back to unversioned workers: an
	// unversioned worker takes some, no warning.
	if _, err := h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{Percentage: 10}); err != nil {
		t.Fatal(err)
	}
	if w := unversioned(); w != "" {
		t.Fatalf("10%% ramped to unversioned workers: warning %q", w)
	}

	// Another operator changes the ramp between this one's read and its
	// change: the current build is still the one read, and the error
	// says so rather than naming it twice.
	raced = &racedHandle{WorkerDeploymentHandle: h, race: func() {
		if _, err := h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{Percentage: 20, Identity: "other-operator"}); err != nil {
			t.Fatal(err)
		}
	}}
	buf.Reset()
	err = setCurrent(ctx, &buf, c, raced, config.Deployment{Name: "dealsync-cli", BuildID: "A"}, "dealsync")
	if exitCode(err) != 1 || !strings.HasPrefix(err.Error(), "worker deployment dealsync-cli changed while this command ran (its current build was B, and is still B: its ramping build or manager changed, or the build was set again, last changed by other-operator): ") {
		t.Fatalf("set-current A raced by a ramp: exit %d, %v\n%s", exitCode(err), err, buf.String())
	}
}

// poll starts an SDK worker of taskQueue, of build buildID of deployment
// name (unversioned when name is ""), and returns once Temporal lists it
// among the task queue's pollers; the function returned stops it.
func poll(t *testing.T, c client.Client, taskQueue, name, buildID string) (stop func()) {
	t.Helper()
	w := sdkworker.New(c, taskQueue, sdkworker.Options{DeploymentOptions: worker.DeploymentOptions(name, buildID)})
	w.RegisterWorkflowWithOptions(func(workflow.Context) error { return nil }, workflow.RegisterOptions{Name: "noop"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tq, err := readTaskQueue(context.Background(), c, taskQueue)
		if err == nil && tq.polling[name][buildID] {
			return w.Stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("task queue %s: no poller of %q %q: %+v, %v", taskQueue, name, buildID, tq, err)
		}
	}
}

// racedHandle is a worker deployment handle whose first Describe is
// followed by race: another operator's change.
type racedHandle struct {
	client.WorkerDeploymentHandle
	race  func()
	raced bool
}

func (h *racedHandle) Describe(ctx context.Context, o client.WorkerDeploymentDescribeOptions) (client.WorkerDeploymentDescribeResponse, error) {
	r, err := h.WorkerDeploymentHandle.Describe(ctx, o)
	if !h.raced {
		h.raced = true
		h.race()
	}
	return r, err
}
