// Command dealsync is the dealsync CLI: `dev` runs everything in one
// process, `serve` and `worker` run the intake and the worker against a
// Temporal cluster, `webhook send` signs and posts a test delivery,
// `mapping test|lint` dry-runs mappings and `bench` measures throughput.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
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
	go func() {
		// The first signal starts a graceful stop (drains, waits for the
		// calls in flight); from then on the signals are the default
		// ones again, so a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
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
	// The command's path goes with its context: dial names it in the
	// client's identity.
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		cmd.SetContext(context.WithValue(cmd.Context(), commandPathKey{}, cmd.CommandPath()))
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "YAML config file (default: built-in defaults; every key can also be set with DEALSYNC_<KEY_PATH>)")
	root.AddCommand(newDevCmd(g), newServeCmd(g), newWorkerCmd(g), newWebhookCmd(g), newBenchCmd(g), newMappingCmd(g), newSandboxCmd(g), newConfigCmd(g), newRunsCmd(g), newDealsCmd(g), newProbeCmd())
	usageErrorsExit2(root)
	return root
}

// loadAndBuild is what the commands that start nothing of their own need:
// the config (with `dealsync dev`'s defaults when dev) and its connections,
// built with a silent logger. A connection that cannot be built is exit 1.
func (g *globalFlags) loadAndBuild(dev bool) (*config.Config, *connections.Set, *slog.Logger, error) {
	cfg, err := g.loadFor(dev)
	if err != nil {
		return nil, nil, nil, err
	}
	return g.buildQuietly(cfg)
}

// buildQuietly builds the config's connections with a silent logger; one
// that cannot be built is exit 1, an invalid configuration naming the file.
func (g *globalFlags) buildQuietly(cfg *config.Config) (*config.Config, *connections.Set, *slog.Logger, error) {
	quiet := quietLogger()
	set, err := app.BuildConnectionsOf(cfg, g.configPath, quiet)
	if err != nil {
		return nil, nil, nil, &exitError{code: 1, err: err}
	}
	return cfg, set, quiet, nil
}

// quietLogger discards everything: the commands that start nothing of
// their own print their results, not the components' logs.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// commandPathKey is the context key of the running command's path
// (`dealsync runs retry`).
type commandPathKey struct{}

// dial connects to the config's Temporal frontend, as the command ctx
// carries (app.CommandIdentity): not as a process that logs, although
// run where one's log.replica is set.
func dial(ctx context.Context, cfg *config.Config, logger *slog.Logger) (client.Client, error) {
	copts, err := commandClientOptions(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		hint := ""
		switch {
		case cfg.DialsDev():
			// A --dev command in a shell that has not dev's variables.
			hint = fmt.Sprintf(" (is `dealsync dev` running? its server listens on 127.0.0.1:<dev.frontend_port>, here %d: "+
				"give this command the %s and --config that dev has)", cfg.Dev.FrontendPort, config.EnvVar("dev.frontend_port"))
		case cfg.Temporal.Address == config.DefaultTemporalAddress:
			// The default address, for a dev whose port moved.
			hint = fmt.Sprintf(" (temporal.address is %s, the default; to reach a running `dealsync dev`, add --dev, with the %s that dev has)",
				config.DefaultTemporalAddress, config.EnvVar("dev.frontend_port"))
		}
		return nil, fmt.Errorf("connecting to Temporal at %s: %w%s", cfg.Temporal.Address, err, hint)
	}
	return c, nil
}

// commandClientOptions is app.ClientOptions with the identity of the
// command ctx carries (app.CommandIdentity).
func commandClientOptions(ctx context.Context, cfg *config.Config, logger *slog.Logger) (client.Options, error) {
	copts, err := app.ClientOptions(cfg, logger)
	if err != nil {
		return client.Options{}, err
	}
	command, _ := ctx.Value(commandPathKey{}).(string)
	if command == "" {
		command = "dealsync"
	}
	copts.Identity = app.CommandIdentity(cfg.Log, command)
	return copts, nil
}

// loadFor reads the config, with `dealsync dev`'s defaults when dev: then
// Temporal is dev's embedded server; a temporal.address that names another
// stops the command (exit 2: config.Config.DevAddressConflict), and the
// TLS or key settings it does not use are named on stderr
// (config.Config.DevTemporalWarnings).
func (g *globalFlags) loadFor(dev bool, opts ...config.Option) (*config.Config, error) {
	cfg, err := g.loadSilently(dev, opts...)
	if err != nil {
		return nil, err
	}
	if err := cfg.DevAddressConflict(); err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	for _, w := range cfg.DevTemporalWarnings() {
		fmt.Fprintln(stderr, "dealsync: warning:", w)
	}
	return cfg, nil
}

// loadSilently is loadFor without the warnings, for a command that shows
// them itself (config check).
func (g *globalFlags) loadSilently(dev bool, opts ...config.Option) (*config.Config, error) {
	if dev {
		opts = append(opts, config.WithDevDefaults())
	}
	return g.load(opts...)
}

// stderr is where the commands' warnings go (tests read them).
var stderr io.Writer = os.Stderr

// load reads the config; an invalid one stops the command before anything
// starts, listing every problem with its key path.
func (g *globalFlags) load(opts ...config.Option) (*config.Config, error) {
	cfg, err := config.Load(g.configPath, opts...)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return cfg, nil
}

// writeJSON prints v as indented JSON, the --json output of the commands
// (nothing when v cannot be encoded).
func writeJSON(out io.Writer, v any) {
	if b, err := indentJSON(v, ""); err == nil {
		_, _ = out.Write(append(b, '\n'))
	}
}

// indentJSON is v as indented JSON to print, each line but the first
// starting with prefix. It is for people (and jq), not for the HTML
// json.Marshal escapes for: & < > are written as they are, not as \u0026
// \u003c \u003e, in v's strings and in the JSON v holds as it is (a
// target request's body, which its connector encoded with them).
func indentJSON(v any, prefix string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeHTML(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// unescapeHTML writes back & < > where the JSON text b has them escaped
// for HTML (\u0026 \u003c \u003e), the same JSON; every other escape is
// kept as it is.
func unescapeHTML(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u00`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) {
			if c, ok := htmlEscapes[strings.ToLower(string(b[i+2:i+6]))]; ok {
				out = append(out, c)
				i += 5
				continue
			}
		}
		out = append(out, b[i], b[i+1]) // another escape (\\ too), kept
		i++
	}
	return out
}

var htmlEscapes = map[string]byte{"0026": '&', "003c": '<', "003e": '>'}
