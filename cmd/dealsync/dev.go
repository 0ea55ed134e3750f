package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/internal/wording"
)

func newDevCmd(g *globalFlags) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Args:  cobra.NoArgs,
		Short: "Run everything in one process: Temporal + Web UI, worker, intake and a sandbox ERP",
		Long: `dev starts an embedded Temporal server (SQLite under --data-dir, runs survive a
restart) with its Web UI, the worker, the webhook intake and the sandbox ERP,
with a built-in connection "demo" (source generic, target sandbox).

Temporal is the embedded server on 127.0.0.1:<dev.frontend_port>, whatever
temporal.address says (a warning names one that differs). The demo
connection's secret is the public config.DevSecret: dev refuses to start
when a connection takes it and intake.listen is not a loopback address.
` + "`dealsync config check --dev`" + ` checks all this without starting anything.

Its ports, each a config key or its variable: intake.listen
(DEALSYNC_INTAKE_LISTEN, the webhooks), dev.sandbox_listen
(DEALSYNC_DEV_SANDBOX_LISTEN, the sandbox ERP), dev.frontend_port
(DEALSYNC_DEV_FRONTEND_PORT, Temporal's gRPC frontend: give other commands
the same and --dev), dev.ui_port (DEALSYNC_DEV_UI_PORT, the Web UI) and
metrics.listen (DEALSYNC_METRICS_LISTEN, off unless set). The embedded
server's four internal ports are picked free and have no setting, and so
are the loopback ports of Temporal's UI server (behind dealsync's proxy on
dev.ui_port) and of the Web UI's payload codec endpoint, served when
temporal.encryption has keys (docs/operations.md, "Encrypting payloads").

The Web UI, its codec endpoint and the sandbox ERP answer only requests
whose Host is localhost, 127.0.0.1 or [::1] (any port), or a name in
dev.allowed_hosts (DEALSYNC_DEV_ALLOWED_HOSTS): others get 403, so that
a web page that rebinds its name to 127.0.0.1 cannot use them
(docs/operations.md, "Security notes").`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(config.WithDevDefaults())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("data-dir") {
				cfg.Dev.DataDir = dataDir
			}
			logger := app.NewLogger(cfg.Log, os.Stderr)
			d, err := app.StartDev(cmd.Context(), cfg, logger, app.DevOptions{ConfigPath: g.configPath})
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprint(os.Stdout, banner(cfg, d, g.configPath))
			err = untilStopped(cmd.Context(), d.Fatal())
			// In the log's own format (log.format json: a line of text
			// among JSON ones broke its readers).
			if err == nil {
				// A webhook in hand holds the intake's stop, and a call in
				// flight each of the worker's three (workflow tasks, local
				// calls, activities), for up to their timeouts: say so,
				// and how not to wait.
				logger.Info(fmt.Sprintf("shutting down (up to %s: %s for the webhooks in hand, then %s for the calls in flight; Ctrl-C again stops at once)",
					d.StopBound(), app.DevIntakeStopTimeout, 3*d.StopTimeout()))
			} else {
				logger.Info("shutting down")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "data directory: the embedded Temporal server's SQLite databases and the sandbox ERP's journal (default: dev.data_dir of the config, ./.dealsync unless set)")
	return cmd
}

func banner(cfg *config.Config, d *app.Dev, configPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ndealsync dev is running (Ctrl-C to stop)\n\n")
	fmt.Fprintf(&b, "  Webhook intake   %s/webhooks/{connection}   connections: %s\n", d.IntakeURL, strings.Join(d.Connections.Names(), ", "))
	fmt.Fprintf(&b, "  Temporal Web UI  %s/namespaces/%s/workflows\n", d.UIURL, cfg.Temporal.Namespace)
	fmt.Fprintf(&b, "  Temporal gRPC    %s   (namespace %s, task queue %s)\n", d.Temporal.FrontendAddress(), cfg.Temporal.Namespace, cfg.Temporal.TaskQueue)
	if d.CodecURL != "" {
		fmt.Fprintf(&b, "  Payload codec    %s   (%s; the Web UI decodes through it)\n", d.CodecURL, encryptionSays(cfg.Temporal.Encryption))
	}
	b.WriteString(bannerTail(cfg, d, configPath))
	return b.String()
}

// bannerTail is the banner from its sandbox ERP's line on: where the
// invoices go, the data dir and the commands to try.
func bannerTail(cfg *config.Config, d *app.Dev, configPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  Sandbox ERP      %s/invoices   %s\n", d.SandboxURL, sandboxUse(d.SandboxConnections))
	if d.MetricsURL != "" {
		fmt.Fprintf(&b, "  Metrics          %s\n", d.MetricsURL)
	}
	data := cfg.Dev.DataDir
	if abs, err := filepath.Abs(data); err == nil {
		data = abs // a second shell may be elsewhere
	}
	fmt.Fprintf(&b, "  Data             %s\n\n", data)
	// Its invoices are worth a look only when a connection makes them.
	sandboxURL := ""
	if len(d.SandboxConnections) > 0 {
		sandboxURL = d.SandboxURL
	}
	b.WriteString(tryIt(cfg, configPath, d.IntakeURL, sandboxURL))
	return b.String()
}

// sandboxUse is what the banner says after the sandbox ERP's URL: the
// connections that invoice there, or that none does (their targets are
// other ERPs, whose invoices the sandbox never sees).
func sandboxUse(users []string) string {
	if len(users) == 0 {
		return "(no connection invoices here: every connection's target is another ERP)"
	}
	return "connections: " + strings.Join(users, ", ")
}

// tryIt is the banner's "Try it": a `webhook send` to the demo connection
// that this dev takes, and a look at the sandbox ERP's invoices when
// sandboxURL is not "" (a connection invoices there). A second terminal has not the flags and the
// DEALSYNC_* variables of this one: --url names the intake (which they may
// have moved), --config the file (whose demo connection may have its own
// secret), and a line names the variables the secret is read from.
func tryIt(cfg *config.Config, configPath, intakeURL, sandboxURL string) string {
	var b strings.Builder
	self := selfCommand()
	send := self + " webhook send"
	// The --dev commands find this server by dev.frontend_port: a port
	// moved by the environment is not in another shell's.
	runs := self + " runs list --dev"
	// Of this shell's variables, those that say which runs are dev's
	// (its server's port, the namespace and task queue runs list reads).
	given := map[string]bool{}
	for _, key := range []string{"temporal.task_queue", "temporal.namespace", "dev.frontend_port"} {
		given[config.EnvVar(key)] = true
		if v := os.Getenv(config.EnvVar(key)); v != "" {
			runs = config.EnvVar(key) + "=" + wording.ShellWord(v) + " " + runs
		}
	}
	if configPath != "" {
		// Absolute: the command may run from the repository (go run
		// ./cmd/dealsync), not from where dev was started.
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
		send += " --config " + wording.ShellWord(configPath)
		runs += " --config " + wording.ShellWord(configPath)
	}
	// The repository's sample deal, by its absolute path when it is here
	// (the second shell may be elsewhere; the file is there to read and
	// edit); elsewhere, as a dealsync installed with go install runs, the
	// same deal built into the binary.
	sample := "--sample"
	if abs, err := filepath.Abs(filepath.Join("examples", "closed-won.json")); err == nil {
		if _, err := os.Stat(abs); err == nil {
			sample = wording.ShellWord(abs)
		}
	}
	fmt.Fprintf(&b, "Try it:\n  %s --connection demo --url %s/webhooks/demo %s\n", send, intakeURL, sample)
	vars := demoSecretVars(cfg)
	if len(vars) > 0 {
		fmt.Fprintf(&b, "  (it signs with demo's secret: export %s in that shell too)\n", strings.Join(vars, " and "))
	}
	for _, v := range vars {
		given[v] = true
	}
	if sandboxURL != "" {
		fmt.Fprintf(&b, "  curl -s %s/invoices\n", sandboxURL)
	}
	fmt.Fprintf(&b, "  %s   # its runs (runs retry, deals sync and config check take --dev too)\n", runs)
	if others := dealsyncEnv(cfg, given); len(others) > 0 {
		it := "it"
		if len(others) > 1 {
			it = "them"
		}
		fmt.Fprintf(&b, "  (this shell sets %s: export %s in that shell too, or runs retry, deals sync and mapping test there start and dry-run runs with other settings than dev's, such as a connection's mapping)\n", strings.Join(others, ", "), it)
	}
	b.WriteString("\n")
	return b.String()
}

// dealsyncEnv are the names of this shell's DEALSYNC_ variables that the
// config reads (set and not empty), but for those the banner's commands
// already carry (given): another shell without them loads another config
// than dev's, so that runs retry and deals sync there would start runs
// with, and mapping test dry-run, another mapping than the one a
// DEALSYNC_CONNECTIONS_<NAME>_MAPPING gives dev's connection, say. Not
// the log's (DEALSYNC_LOG_LEVEL, DEALSYNC_LOG_FORMAT): they change how
// the other shell's commands log, not what they do. Names only: a value
// may be a secret. Sorted.
func dealsyncEnv(cfg *config.Config, given map[string]bool) []string {
	ignored := map[string]bool{}
	for _, name := range cfg.IgnoredEnv() {
		ignored[name] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, config.EnvPrefix+"_") || value == "" || given[name] || ignored[name] ||
			strings.HasPrefix(name, config.EnvPrefix+"_TEST_") || strings.HasPrefix(name, config.EnvPrefix+"_X_") ||
			strings.HasPrefix(name, config.EnvVar("log")+"_") ||
			name == config.EnvPrefix+"_RECORD_HISTORIES" {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// selfCommand is how another shell runs this dealsync: `go run
// ./cmd/dealsync` when this is go run's (or go test's) build, else the
// path it was started by (absolute when it has a directory), or its name
// when the shell found it on the PATH.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		exe = ""
	}
	return commandOf(exe, os.Args[0])
}

// commandOf is selfCommand for the executable's path exe ("" when not
// known) and the path arg0 it was started by. go run's command names the
// repository (go run -C), found from the working directory up, for a
// second shell elsewhere; where it is not found, it runs from the
// repository only.
func commandOf(exe, arg0 string) string {
	if exe == "" || strings.Contains(exe, string(filepath.Separator)+"go-build") {
		if root := moduleRoot(); root != "" {
			return "go run -C " + wording.ShellWord(root) + " ./cmd/dealsync"
		}
		return "go run ./cmd/dealsync"
	}
	if !strings.ContainsRune(arg0, filepath.Separator) {
		return wording.ShellWord(arg0)
	}
	if abs, err := filepath.Abs(arg0); err == nil {
		arg0 = abs
	}
	return wording.ShellWord(arg0)
}

// moduleRoot is the directory of dealsync's go.mod at or above the
// working directory, "" when there is none.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if strings.HasPrefix(string(b), "module github.com/dealsync/dealsync\n") {
				return dir
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// demoSecretVars are the environment variables the demo connection's
// signing secret comes from, which `webhook send` in another shell needs
// too: DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET when set, and NAME of an
// env:NAME secret (a file:PATH one is read from the same file).
func demoSecretVars(cfg *config.Config) []string {
	const key = "connections.demo.source.secret"
	var vars []string
	if v := os.Getenv(config.EnvVar(key)); v != "" {
		vars = append(vars, config.EnvVar(key))
	}
	demo, ok := cfg.Connections["demo"]
	if !ok {
		return vars
	}
	if gc, ok := demo.Source.Spec.(*generic.Config); ok {
		if name, ok := gc.Secret.EnvName(); ok {
			vars = append(vars, name)
		} else if strings.HasPrefix(gc.Secret.Describe(), "env:") {
			vars = append(vars, "the variable its env: reference names")
		}
	}
	return vars
}
