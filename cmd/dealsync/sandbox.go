package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
)

func newSandboxCmd(g *globalFlags) *cobra.Command {
	var listen, journal string
	cmd := &cobra.Command{
		Use:   "sandbox",
		Args:  cobra.NoArgs,
		Short: "Run the sandbox ERP alone (the target of `serve` and `worker` when no real ERP is at hand)",
		Long: `sandbox serves the in-memory sandbox ERP of ` + "`dealsync dev`" + ` on its own, with the
faults of the config's sandbox block, so that ` + "`serve`" + ` and ` + "`worker`" + ` against a real
Temporal cluster (docker-compose.yml) have an ERP to invoice. Its data lives in
memory, and a restart forgets it, unless --journal names a file to keep it in
(customers, invoices and idempotency keys, one JSON line per creation, as
` + "`dealsync dev`" + ` keeps them in <data dir>/sandbox.jsonl).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.WithDevDefaults())
			if err != nil {
				return err
			}
			fromFlag := cmd.Flags().Changed("listen")
			if !fromFlag {
				listen = cfg.Dev.SandboxListen
			}
			logger := app.NewLogger(cfg.Log, os.Stderr)
			sb, err := app.NewSandbox(cfg, logger, journal)
			if err != nil {
				return err
			}
			defer sb.Close()
			var l net.Listener
			if fromFlag {
				if l, err = net.Listen("tcp", listen); err != nil {
					return fmt.Errorf("sandbox ERP: cannot listen on %s (--listen): %w", listen, err)
				}
			} else if l, err = app.ListenOn("sandbox ERP", "dev.sandbox_listen", listen); err != nil {
				return err
			}
			logger.Info("sandbox ERP listening", "addr", l.Addr().String())
			return app.Serve(cmd.Context(), l, sb.Handler())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (default: dev.sandbox_listen, 127.0.0.1:8090)")
	cmd.Flags().StringVar(&journal, "journal", "", "file to keep the sandbox's data in across restarts (default: memory only)")
	return cmd
}
