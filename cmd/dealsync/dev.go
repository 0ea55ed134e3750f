package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
)

func newDevCmd(g *globalFlags) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Args:  cobra.NoArgs,
		Short: "Run everything in one process: Temporal + Web UI, worker, intake and a sandbox ERP",
		Long: `dev starts an embedded Temporal server (SQLite under --data-dir, runs survive a
restart) with its Web UI, the worker, the webhook intake and the sandbox ERP,
with a built-in connection "demo" (source generic, target sandbox).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.WithDevDefaults())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("data-dir") {
				cfg.Dev.DataDir = dataDir
			}
			logger := app.NewLogger(cfg.Log, os.Stderr)
			d, err := app.StartDev(cmd.Context(), cfg, logger, app.DevOptions{})
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprint(os.Stdout, banner(cfg, d))
			err = untilStopped(cmd.Context(), d.Fatal())
			fmt.Fprintln(os.Stderr, "dealsync: shutting down")
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory: the embedded Temporal server's SQLite databases and the sandbox ERP's journal (default: dev.data_dir of the config, ./.dealsync unless set)")
	return cmd
}

func banner(cfg *config.Config, d *app.Dev) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ndealsync dev is running (Ctrl-C to stop)\n\n")
	fmt.Fprintf(&b, "  Webhook intake   %s/webhooks/{connection}   connections: %s\n", d.IntakeURL, strings.Join(d.Connections.Names(), ", "))
	fmt.Fprintf(&b, "  Temporal Web UI  %s/namespaces/%s/workflows\n", d.UIURL, cfg.Temporal.Namespace)
	fmt.Fprintf(&b, "  Temporal gRPC    %s   (namespace %s, task queue %s)\n", d.Temporal.FrontendAddress(), cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
	fmt.Fprintf(&b, "  Sandbox ERP      %s/invoices\n", d.SandboxURL)
	if d.MetricsURL != "" {
		fmt.Fprintf(&b, "  Metrics          %s\n", d.MetricsURL)
	}
	fmt.Fprintf(&b, "  Data             %s\n\n", cfg.Dev.DataDir)
	// --url: a second terminal has not the DEALSYNC_* variables that may
	// have moved the intake, and would send to the default port.
	fmt.Fprintf(&b, "Try it:\n  go run ./cmd/dealsync webhook send --connection demo --url %s/webhooks/demo examples/closed-won.json\n  curl -s %s/invoices\n\n", d.IntakeURL, d.SandboxURL)
	return b.String()
}
