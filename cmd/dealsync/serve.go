package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/worker"
	sdkworker "go.temporal.io/sdk/worker"
)

// clusterSetup is what `serve` and `worker` share: the config (no
// built-in connections), the logger, the connections and the options of a
// client of the configured Temporal frontend.
func (g *globalFlags) clusterSetup() (*config.Config, *slog.Logger, *connections.Set, client.Options, error) {
	cfg, err := g.load()
	if err != nil {
		return nil, nil, nil, client.Options{}, err
	}
	logger := app.NewLogger(cfg.Log, stderr)
	set, err := app.BuildConnectionsOf(cfg, g.configPath, logger)
	if err != nil {
		return nil, nil, nil, client.Options{}, err
	}
	copts, err := app.ClientOptions(cfg, logger)
	if err != nil {
		return nil, nil, nil, client.Options{}, err
	}
	return cfg, logger, set, copts, nil
}

func newServeCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Args:  cobra.NoArgs,
		Short: "Run the webhook intake only, against the Temporal frontend of the config",
		Long: `serve runs the stateless webhook intake. It starts even when Temporal is not
reachable (webhooks then get 503 and /readyz fails until it is), so run as
many replicas as you like behind a load balancer.

A connection whose webhook secret is dealsync's public dev secret
(config.DevSecret, in the README and examples/dealsync.yaml) gets a warning,
and serve refuses to start when intake.listen is not a loopback address.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, set, copts, err := g.clusterSetup()
			if err != nil {
				return err
			}
			// A connection signed with the public dev secret: refused on
			// an address other machines reach, a warning on loopback.
			notices, err := app.CheckDevSecret(cfg)
			if err != nil {
				return err
			}
			app.LogNotices(logger, notices)
			c, err := client.NewLazyClient(copts)
			if err != nil {
				return err
			}
			defer c.Close()
			l, err := app.ListenOn("webhook intake", "intake.listen", cfg.Intake.Listen)
			if err != nil {
				return err
			}
			// /metrics outlives the signal: it reports the drain, and
			// stops when the intake has.
			metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer stopMetrics()
			if addr, err := app.ServeMetrics(metricsCtx, cfg, logger, nil); err != nil {
				l.Close()
				return err
			} else if addr != "" {
				logger.Info("metrics listening", "addr", addr)
			}
			logger.Info("intake listening", "addr", l.Addr().String(), "temporal", cfg.Temporal.Address, "connections", set.Names())
			return app.ServeIntake(cmd.Context(), l, app.IntakeHandler(cfg, set, app.Starter(cfg, c, false), logger), cfg.Intake.DrainDelay, logger)
		},
	}
}

func newWorkerCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Args:  cobra.NoArgs,
		Short: "Run the Temporal worker only (workflows and activities), against the frontend of the config",
		Long: `worker runs dealsync's workflows and their calls to the ERPs and CRMs, polling
temporal.task_queue of temporal.namespace on temporal.address; run as many as
you like, every one with the intakes' config (a worker without a run's
connection leaves the run to one that has it). It waits for Temporal to
answer, and refuses to start on a namespace without dealsync's search
attributes (` + "`dealsync config check --temporal`" + ` prints the commands that add
them).

With worker.deployment set it polls as that build of that worker deployment
(Temporal's worker versioning): each run stays on the build that started it,
and new runs go to the build ` + "`dealsync worker set-current`" + ` made current
(docs/operations.md, rolling upgrades).

With metrics.listen set it serves GET /metrics, GET /healthz (the process
runs) and GET /readyz (it polls and the frontend answers), before it has
reached Temporal. On SIGTERM it finishes the steps in hand, up to twice
(activity_timeout + 5 s), 70 s by default: give its supervisor more (a
second signal stops it at once).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, set, copts, err := g.clusterSetup()
			if err != nil {
				return err
			}
			// /metrics and the health checks come first, so that a worker
			// waiting for Temporal answers its probes (/readyz: starting).
			// They outlive the signal: /metrics reports the worker's stop,
			// and ends after it.
			metricsCtx, stopMetrics := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer stopMetrics()
			health := app.NewWorkerHealth(logger)
			if addr, err := app.ServeMetrics(metricsCtx, cfg, logger, health); err != nil {
				return err
			} else if addr != "" {
				logger.Info("metrics and health checks listening", "addr", addr)
			}
			c, err := app.DialTemporal(cmd.Context(), copts, cfg.Temporal.Address, logger)
			if err != nil {
				if cmd.Context().Err() != nil {
					return nil // stopped while waiting for Temporal
				}
				return err
			}
			defer c.Close()
			// Without dealsync's search attributes every run would fail
			// its first workflow task: stop here and say how to add them.
			saCtx, cancelSA := context.WithTimeout(cmd.Context(), startReadTimeout)
			err = app.CheckSearchAttributes(saCtx, c, cfg.Temporal.Namespace)
			cancelSA()
			if err != nil {
				var sae *app.SearchAttributeError
				if errors.As(err, &sae) {
					return app.OnServer(err, cfg.Temporal)
				}
				if errors.Is(err, app.ErrNoNamespace) {
					return err // its workers would poll nothing, and stop
				}
				logger.Warn("could not check the namespace's search attributes; starting anyway", "error", err)
			}
			retentionCtx, cancelRetention := context.WithTimeout(cmd.Context(), startReadTimeout)
			warning, err := app.RetentionWarning(retentionCtx, c, cfg.Temporal)
			cancelRetention()
			if warning != "" {
				logger.Warn(warning)
			} else if err != nil {
				logger.Warn("could not read the namespace's retention", "error", err)
			}
			fatal := make(chan error, 1)
			acts := app.Activities(set, c)
			acts.ConfigPath = app.AbsConfigPath(g.configPath)
			acts.TargetMismatchGrace = cfg.Workflow.TargetMismatchGrace
			w := worker.New(c, cfg.Temporal.TaskQueue, acts, cfg.Workflow.ActivityTimeout, sdkworker.Options{
				// worker.deployment: runs pinned to this build
				// (docs/operations.md, rolling upgrades).
				DeploymentOptions: worker.DeploymentOptions(cfg.Worker.Deployment.Name, cfg.Worker.Deployment.BuildID),
				// The SDK stops a worker whose polls keep failing for
				// good (the namespace deleted, say): the process must
				// end then, not stay up polling nothing.
				OnFatalError: func(err error) {
					select {
					case fatal <- err:
					default:
					}
				},
			}, copts.Logger)
			if err := w.Start(); err != nil {
				return fmt.Errorf("starting worker: %w", err)
			}
			health.Started(c)
			// The frontend's outages are logged when they start and end,
			// probed or not (without metrics.listen nothing probes).
			go health.Watch(cmd.Context())
			if d := cfg.Worker.Deployment; d.Versioned() {
				logger.Info("worker started", "temporal", cfg.Temporal.Address, "task_queue", cfg.Temporal.TaskQueue,
					"deployment", d.Name, "build_id", d.BuildID)
				// A build started while none is current takes no new run:
				// say so where the operator looks first.
				readCtx, cancel := context.WithTimeout(cmd.Context(), startReadTimeout)
				warning, info, err := currentBuildNote(readCtx, c, d, cfg.Temporal.TaskQueue)
				switch {
				case warning != "":
					logger.Warn(warning)
				case info != "":
					logger.Info(info)
				}
				if err != nil && cmd.Context().Err() == nil {
					// With a warning, only its check of the task queue failed.
					level := slog.LevelWarn
					if warning != "" {
						level = slog.LevelInfo
					}
					logger.Log(cmd.Context(), level, "could not read the worker deployment's current build or its task queue", "deployment", d.Name, "task_queue", cfg.Temporal.TaskQueue, "error", err)
				}
				cancel()
			} else {
				logger.Info("worker started", "temporal", cfg.Temporal.Address, "task_queue", cfg.Temporal.TaskQueue)
				// An unversioned worker on a task queue whose new runs go
				// to a worker deployment's build takes none: say so.
				readCtx, cancel := context.WithTimeout(cmd.Context(), startReadTimeout)
				if warning, err := unversionedNote(readCtx, c, cfg.Temporal.TaskQueue); warning != "" {
					logger.Warn(warning)
				} else if err != nil && cmd.Context().Err() == nil {
					// Info: most workers are unversioned, on servers or
					// with roles that may not describe a task queue.
					logger.Info("could not read whether the task queue is versioned", "task_queue", cfg.Temporal.TaskQueue, "error", err)
				}
				cancel()
			}
			err = untilStopped(cmd.Context(), fatal)
			health.Stopping()
			// The SDK waits its stop timeout for the workflow tasks in
			// hand, then as long again for local calls still running,
			// and, with external_calls: activity, for the activities.
			stages := time.Duration(2)
			if cfg.Workflow.ExternalCalls == "activity" {
				stages = 3
			}
			logger.Info("worker stopping: waiting for the steps in hand", "for_at_most", stages*worker.StopTimeout(cfg.Workflow.ActivityTimeout))
			w.Stop() // waits for running activities up to the worker's stop timeout
			logger.Info("worker stopped")
			return err
		},
	}
	cmd.AddCommand(newWorkerSetCurrentCmd(g))
	return cmd
}

// untilStopped waits for the command's end (a signal: nil) or the
// worker's fatal error (returned, so that the process exits non-zero and
// its supervisor restarts it).
func untilStopped(ctx context.Context, fatal <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-fatal:
		return fmt.Errorf("the worker stopped: %w", err)
	}
}

// startReadTimeout bounds each read of Temporal a worker makes at start
// to check its set-up (search attributes, retention, worker versioning):
// a server that takes the connection and does not answer delays the
// start by that much, then the worker logs that it could not check and
// starts.
const startReadTimeout = 10 * time.Second
