// Command dealsync is the dealsync CLI: `dev` runs everything in one
// process, `serve` and `worker` run the intake and the worker against a
// Temporal cluster, `webhook send` signs and posts a test delivery,
// `mapping test|lint` dry-runs mappings and `bench` measures throughput.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/config"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if ee == nil || ee.err != nil {
		fmt.Fprintln(os.Stderr, "dealsync:", err)
	}
	os.Exit(code)
}

type globalFlags struct {
	configPath string
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "dealsync",
		Short:         "Turn closed-won CRM deals into ERP invoices, exactly once, on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "YAML config file (default: built-in defaults; every key can also be set with DEALSYNC_<KEY_PATH>)")
	root.AddCommand(newDevCmd(g), newServeCmd(g), newWorkerCmd(g), newWebhookCmd(g), newBenchCmd(g), newMappingCmd(g), newSandboxCmd(g), newConfigCmd(g), newRunsCmd(g))
	return root
}

// load reads the config; an invalid one stops the command before anything
// starts, listing every problem with its key path.
func (g *globalFlags) load(opts ...config.Option) (*config.Config, error) {
	cfg, err := config.Load(g.configPath, opts...)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return cfg, nil
}
