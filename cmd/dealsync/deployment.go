package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
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
them again.`,
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
			return setCurrent(cmd.Context(), cmd.OutOrStdout(), c, d)
		},
	}
	cmd.Flags().StringVar(&buildID, "build-id", "", "the build to make current (default: worker.deployment.build_id)")
	return cmd
}

// setCurrent makes build d.BuildID of deployment d.Name current and
// prints the deployment's builds.
func setCurrent(ctx context.Context, out io.Writer, c client.Client, d config.Deployment) error {
	h := c.WorkerDeploymentClient().GetHandle(d.Name)
	// The build current before, read first (the answer's PreviousVersion is
	// deprecated for this): a deployment Temporal does not know yet has
	// none, and the set then says why it fails.
	was := "none"
	before, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	var unknown *serviceerror.NotFound
	switch {
	case err == nil:
		if v := before.Info.RoutingConfig.CurrentVersion; v != nil && v.BuildID != "" {
			was = v.BuildID
		}
	case !errors.As(err, &unknown):
		return &exitError{code: 1, err: fmt.Errorf("reading worker deployment %s: %w", d.Name, err)}
	}
	if _, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: d.BuildID}); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			err = fmt.Errorf("%w (Temporal knows a build once one of its workers polls: start build %s's workers, with worker.deployment, first)", err, d.BuildID)
		}
		return &exitError{code: 1, err: fmt.Errorf("making build %s of worker deployment %s current: %w", d.BuildID, d.Name, err)}
	}
	if was == d.BuildID {
		fmt.Fprintf(out, "build %s of worker deployment %s was already current: new runs go to its workers\n", d.BuildID, d.Name)
	} else {
		fmt.Fprintf(out, "build %s of worker deployment %s is current (was %s): new runs go to its workers\n", d.BuildID, d.Name, was)
	}
	desc, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("reading worker deployment %s: %w", d.Name, err)}
	}
	for _, v := range desc.Info.VersionSummaries {
		if v.Version.BuildID == d.BuildID {
			continue
		}
		state := "not known yet: keep its workers running"
		switch v.DrainageStatus {
		case client.WorkerDeploymentVersionDrainageStatusDraining:
			state = "draining: runs pinned to it may be open (Temporal says so for at least 3 minutes after it stops being current, and checks every 3 minutes), keep its workers running"
		case client.WorkerDeploymentVersionDrainageStatusDrained:
			state = "drained: no open runs, its workers can stop"
		}
		fmt.Fprintf(out, "build %s: %s\n", v.Version.BuildID, state)
	}
	return nil
}

// currentBuildNote says, at a versioned worker's start, what Temporal's
// current build of deployment d means for it: a warning when no build is
// current (new runs wait for a build to be made current, unless
// unversioned workers still poll the task queue), a note when another
// build is (this one takes only the runs pinned to it), "" when d's build
// is current. One read of the deployment; a deployment Temporal does not
// know yet (its first worker's poll registers it) has no current build.
func currentBuildNote(ctx context.Context, c client.Client, d config.Deployment) (warning, info string, err error) {
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
		return fmt.Sprintf("no build of worker deployment %s is current: new runs wait (the intake takes their webhooks; `runs list` shows them running) unless unversioned workers poll the task queue, until a build is made current: `dealsync worker set-current` makes this one (%s) current", d.Name, d.BuildID), "", nil
	}
	return "", fmt.Sprintf("build %s of worker deployment %s is current: this build (%s) takes only the runs pinned to it until `dealsync worker set-current` makes it current", current, d.Name, d.BuildID), nil
}
