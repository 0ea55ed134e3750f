package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
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
	// setCurrent runs the command until Temporal knows the build (its
	// worker's first poll registers it, just after the worker is ready).
	setCurrent := func(args ...string) string {
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
		warning, info, err := currentBuildNote(ctx, c, config.Deployment{Name: "dealsync-cli", BuildID: id})
		if err != nil {
			t.Fatalf("currentBuildNote %s: %v", id, err)
		}
		return warning, info
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
	if out := setCurrent("--config", files["A"], "worker", "set-current"); out != "build A of worker deployment dealsync-cli is current (was none): new runs go to its workers\n" {
		t.Fatalf("set-current A:\n%s", out)
	}

	if w, i := note("A"); w != "" || i != "" {
		t.Fatalf("build A current, at A's start: warning %q, info %q", w, i)
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
	out = setCurrent("--config", files["A"], "worker", "set-current", "--build-id", "B")
	if !strings.HasPrefix(out, "build B of worker deployment dealsync-cli is current (was A): new runs go to its workers\nbuild A: ") {
		t.Fatalf("set-current B:\n%s", out)
	}
	// Again (as the docs say, to read the other builds' drainage).
	out, err = runOut(ctx, "--config", files["B"], "worker", "set-current")
	if err != nil || !strings.HasPrefix(out, "build B of worker deployment dealsync-cli was already current: new runs go to its workers\nbuild A: draining: ") {
		t.Fatalf("set-current B again: %v\n%s", err, out)
	}
}
