package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/internal/wording"
)

func newWorkerSetCurrentCmd(g *globalFlags) *cobra.Command {
	var buildID string
	cmd := &cobra.Command{
		Use:   "set-current [--build-id ID]",
		Args:  cobra.NoArgs,
		Short: "Make a build of the worker deployment current: new runs go to its workers (worker.deployment)",
		Long: `set-current makes build worker.deployment.build_id (or --build-id) of worker
deployment worker.deployment.name current, on temporal.address: new runs,
and runs not pinned to a build yet, go to that build's workers; a run
started by another build stays on that build's workers to its end (docs/operations.md,
rolling upgrades). Start the build's workers first: Temporal knows a build
once one of its workers polls. Then it lists the deployment's builds with
what Temporal says of their runs: a build "draining" may still have runs
open (for at least 3 minutes after it stops being current), and its
workers must keep running; "drained", they can stop (Temporal checks
every 3 minutes). Run it again, for the build already current, to read
them again. It warns of a build (the current one, a draining one) none of
whose workers polled temporal.task_queue in the last 5 minutes: runs that
build must take wait. The change passes the deployment's conflict token:
when another operator or tool changes the deployment meanwhile, it
changes nothing and says what changed; run it again (when the other
change made this build current, it says so and is done).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.TemporalOnly())
			if err != nil {
				return err
			}
			d := cfg.Worker.Deployment
			if !d.Versioned() {
				return &exitError{code: 2, err: fmt.Errorf("worker.deployment.name is not set (%s): the workers are not versioned", config.EnvVar("worker.deployment.name"))}
			}
			if buildID != "" {
				d.BuildID = buildID
			}
			c, err := dial(cmd.Context(), cfg, quietLogger())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer c.Close()
			return setCurrent(cmd.Context(), cmd.OutOrStdout(), c, c.WorkerDeploymentClient().GetHandle(d.Name), d, cfg.Temporal.TaskQueue)
		},
	}
	cmd.Flags().StringVar(&buildID, "build-id", "", "the build to make current (default: worker.deployment.build_id)")
	return cmd
}

// setCurrent makes build d.BuildID of deployment d.Name (h) current and
// prints the deployment's builds, saying of each whether its workers poll
// taskQueue. The set passes the conflict token of the deployment as read
// first: when another operator changed the deployment in between,
// nothing is changed and the error says what the other change was.
func setCurrent(ctx context.Context, out io.Writer, c client.Client, h client.WorkerDeploymentHandle, d config.Deployment, taskQueue string) error {
	// The build current before, read first (the answer's PreviousVersion is
	// deprecated for this): a deployment Temporal does not know yet has
	// none, and the set then says why it fails.
	was := "none"
	var token []byte
	before, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var unknown *serviceerror.NotFound
	switch {
	case err == nil:
		was = currentOf(before.Info)
		token = before.ConflictToken
	case !errors.As(err, &unknown):
		return &exitError{code: 1, err: fmt.Errorf("reading worker deployment %s: %w", d.Name, err)}
	}
	if _, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: d.BuildID, ConflictToken: token}); err != nil {
		var nf *serviceerror.NotFound
		var fp *serviceerror.FailedPrecondition
		switch {
		case errors.As(err, &nf):
			err = fmt.Errorf("%w (Temporal knows a build once one of its workers polls: start build %s's workers, with worker.deployment, first)", err, d.BuildID)
		case token != nil && errors.As(err, &fp) && strings.Contains(fp.Message, "conflict token"):
			after, derr := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
			if derr == nil && currentOf(after.Info) == d.BuildID {
				// The other change made this build current: done.
				fmt.Fprintf(out, "build %s of worker deployment %s was made current meanwhile%s (was %s): new runs go to its workers\n", d.BuildID, d.Name, lastChangedBy(after.Info), was)
				return printBuilds(ctx, out, c, h, d, taskQueue)
			}
			now := "could not be read again"
			if derr == nil {
				now = "is now " + currentOf(after.Info)
				if currentOf(after.Info) == was {
					now = "is still " + was + ": its ramping build or manager changed, or the build was set again"
				}
				now += lastChangedBy(after.Info)
			}
			return &exitError{code: 1, err: fmt.Errorf("worker deployment %s changed while this command ran (its current build was %s, and %s): another operator or tool changed it, and this command changed nothing; look at the change, then run it again to make build %s current", d.Name, was, now, d.BuildID)}
		}
		return &exitError{code: 1, err: fmt.Errorf("making build %s of worker deployment %s current: %w", d.BuildID, d.Name, err)}
	}
	if was == d.BuildID {
		fmt.Fprintf(out, "build %s of worker deployment %s was already current: new runs go to its workers\n", d.BuildID, d.Name)
	} else {
		fmt.Fprintf(out, "build %s of worker deployment %s is current (was %s): new runs go to its workers\n", d.BuildID, d.Name, was)
	}
	return printBuilds(ctx, out, c, h, d, taskQueue)
}

// printBuilds prints, after build d.BuildID of deployment d.Name (h) is
// made current, whether its workers poll taskQueue and the state of the
// deployment's other builds.
func printBuilds(ctx context.Context, out io.Writer, c client.Client, h client.WorkerDeploymentHandle, d config.Deployment, taskQueue string) error {
	desc, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("reading worker deployment %s: %w", d.Name, err)}
	}
	// Which builds' workers polled the task queue in the last 5 minutes
	// (Temporal's matching.PollerHistoryTTL): a build with runs to take
	// and no worker is the alarm nothing else raises.
	tq, perr := readTaskQueue(ctx, c, taskQueue)
	polling := tq.polling[d.Name]
	if perr != nil {
		fmt.Fprintf(out, "(could not read task queue %s's pollers: %v)\n", taskQueue, perr)
	} else if !polling[d.BuildID] {
		fmt.Fprintf(out, "warning: no worker of build %s has polled task queue %s lately (in 5 minutes): new runs wait until one does\n", d.BuildID, taskQueue)
	}
	for _, v := range desc.Info.VersionSummaries {
		if v.Version.BuildID == d.BuildID {
			continue
		}
		state := "not known yet: keep its workers running"
		switch v.DrainageStatus {
		case client.WorkerDeploymentVersionDrainageStatusDraining:
			state = "draining: runs pinned to it may be open (Temporal says so for at least 3 minutes after it stops being current, and checks every 3 minutes), keep its workers running"
			if perr == nil && !polling[v.Version.BuildID] {
				state += "; no worker of it has polled task queue " + taskQueue + " lately (in 5 minutes): its open runs, if any, wait until one does"
			}
		case client.WorkerDeploymentVersionDrainageStatusDrained:
			state = "drained: no open runs, its workers can stop"
		}
		fmt.Fprintf(out, "build %s: %s\n", v.Version.BuildID, state)
	}
	return nil
}

// lastChangedBy is ", last changed by " and the identity that last
// changed a deployment, "" when Temporal does not say.
func lastChangedBy(info client.WorkerDeploymentInfo) string {
	if info.LastModifierIdentity == "" {
		return ""
	}
	return ", last changed by " + info.LastModifierIdentity
}

// currentOf is the build id current in a deployment, or "none".
func currentOf(info client.WorkerDeploymentInfo) string {
	if v := info.RoutingConfig.CurrentVersion; v != nil && v.BuildID != "" {
		return v.BuildID
	}
	return "none"
}

// taskQueueState is what Temporal says of a task queue's workflow tasks:
// the build its new runs go to and the workers that polled it in the last
// 5 minutes (Temporal's matching.PollerHistoryTTL).
type taskQueueState struct {
	// deployment and buildID are the build new runs go to, "" and ""
	// when unversioned workers take them.
	deployment, buildID string
	// rampedToUnversioned: while a build is current, a share of the new
	// runs is ramped to unversioned workers.
	rampedToUnversioned bool
	// polling holds the builds whose workers polled, by deployment name;
	// unversioned workers under "".
	polling map[string]map[string]bool
}

// readTaskQueue reads taskQueue's state: one read.
func readTaskQueue(ctx context.Context, c client.Client, taskQueue string) (taskQueueState, error) {
	resp, err := c.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return taskQueueState{}, err
	}
	s := taskQueueState{polling: map[string]map[string]bool{}}
	vi := resp.GetVersioningInfo()
	if v := vi.GetCurrentDeploymentVersion(); v.GetBuildId() != "" {
		s.deployment, s.buildID = v.GetDeploymentName(), v.GetBuildId()
		s.rampedToUnversioned = vi.GetRampingDeploymentVersion().GetBuildId() == "" && vi.GetRampingVersionPercentage() > 0
	}
	for _, p := range resp.GetPollers() {
		name, build := "", ""
		if o := p.GetDeploymentOptions(); o.GetDeploymentName() != "" && o.GetWorkerVersioningMode() != enumspb.WORKER_VERSIONING_MODE_UNVERSIONED {
			name, build = o.GetDeploymentName(), o.GetBuildId()
		}
		if s.polling[name] == nil {
			s.polling[name] = map[string]bool{}
		}
		s.polling[name][build] = true
	}
	return s, nil
}

// unversionedNote warns, at an unversioned worker's start, when the new
// runs of taskQueue go to a build of a worker deployment (none ramped to
// unversioned workers): this worker then takes none. One read of the
// task queue.
func unversionedNote(ctx context.Context, c client.Client, taskQueue string) (string, error) {
	tq, err := readTaskQueue(ctx, c, taskQueue)
	if err != nil || tq.buildID == "" || tq.rampedToUnversioned {
		return "", err
	}
	return fmt.Sprintf("task queue %s is versioned: its new runs go to build %s of worker deployment %s, and this worker, without worker.deployment, takes none of them; set worker.deployment on it (name %s, a build_id of this release) or stop it", taskQueue, tq.buildID, tq.deployment, tq.deployment), nil
}

// currentBuildNote says, at a versioned worker's start, what Temporal's
// current build of deployment d means for it: a note when another build
// is current (this one takes only the runs pinned to it), "" when d's
// build is. With none current, it reads taskQueue too: a warning when
// its new runs go to another deployment's build (a misspelt d.Name makes
// a second deployment), or when they wait (no unversioned worker polled
// the task queue lately) for a build to be made current; a note when
// unversioned workers take them meanwhile (turning versioning on); either
// names a deployment of a close name whose workers poll the task queue
// too, and is then a warning. A deployment Temporal does not know yet
// (its first worker's poll registers it) has no current build. A read
// that fails returns its error with the warning so far.
func currentBuildNote(ctx context.Context, c client.Client, d config.Deployment, taskQueue string) (warning, info string, err error) {
	desc, err := c.WorkerDeploymentClient().GetHandle(d.Name).Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return "", "", err
	}
	var current string
	if err == nil {
		if v := desc.Info.RoutingConfig.CurrentVersion; v != nil {
			current = v.BuildID
		}
	}
	switch current {
	case d.BuildID:
		return "", "", nil
	case "":
	default:
		return "", fmt.Sprintf("build %s of worker deployment %s is current: this build (%s) takes only the runs pinned to it until `dealsync worker set-current` makes it current", current, d.Name, d.BuildID), nil
	}
	waiting := fmt.Sprintf("no build of worker deployment %s is current: new runs wait (the intake takes their webhooks; `runs list` shows them running) unless unversioned workers poll the task queue, until a build is made current: `dealsync worker set-current` makes this one (%s) current", d.Name, d.BuildID)
	tq, err := readTaskQueue(ctx, c, taskQueue)
	if err != nil {
		return waiting, "", fmt.Errorf("reading task queue %s: %w", taskQueue, err)
	}
	if tq.buildID != "" && tq.deployment != d.Name {
		return fmt.Sprintf("no build of worker deployment %s is current, and task queue %s's new runs go to build %s of worker deployment %s: this build (%s) takes none of them; if %s is a typo of %s, fix worker.deployment.name, or else `dealsync worker set-current` makes this one current (moving the task queue to %s)", d.Name, taskQueue, tq.buildID, tq.deployment, d.BuildID, d.Name, tq.deployment, d.Name), "", nil
	}
	var others []string
	for name := range tq.polling {
		if name != "" && name != d.Name {
			others = append(others, name)
		}
	}
	sort.Strings(others) // of two names as close, the first
	near, typo := wording.TypoOf(d.Name, others)
	note := waiting
	if tq.buildID == "" && len(tq.polling[""]) > 0 {
		note = fmt.Sprintf("no build of worker deployment %s is current: task queue %s's new runs go to its unversioned workers (one polled in the last 5 minutes) until `dealsync worker set-current` makes this one (%s) current", d.Name, taskQueue, d.BuildID)
		if !typo {
			return "", note, nil
		}
	}
	if typo {
		return note + fmt.Sprintf(" (or is worker.deployment.name a typo? workers of worker deployment %s poll task queue %s too)", near, taskQueue), "", nil
	}
	return note, "", nil
}
