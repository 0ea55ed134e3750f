package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/examples"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/internal/wording"
)

const exampleConfig = "../../examples/dealsync.yaml"

// captureStderr sends the commands' stderr (warnings, serve's log) to a
// buffer until the test ends.
func captureStderr(t *testing.T) *testlog.Buffer {
	t.Helper()
	buf := &testlog.Buffer{}
	old := stderr
	stderr = buf
	t.Cleanup(func() { stderr = old })
	return buf
}

// hasLine reports whether config check's output has a line of the kind
// (its first column) starting with text.
func hasLine(out, kind, text string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(kind) + ` +` + regexp.QuoteMeta(text)).MatchString(out)
}

// heldAddr holds a loopback port until the test ends and returns it.
func heldAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// The commands run with --dev reach dev's embedded server, on
// 127.0.0.1:<dev.frontend_port>, as `dealsync dev` serves it whatever
// temporal.address says. A file that set temporal.address
// (examples/dealsync.yaml did, to 127.0.0.1:7233) with the dev ports moved
// by DEALSYNC_DEV_FRONTEND_PORT made `runs list --dev` and `runs retry
// --dev` act on whatever served 7233 (another developer's dev); and a
// shell with DEALSYNC_TEMPORAL_ADDRESS set to dev's moved port, but not
// DEALSYNC_DEV_FRONTEND_PORT, would reach 7233 if the port won. Neither
// is known to be dev's: the --dev commands and `config check --dev` stop
// (exit 2), naming both settings and what to set.
func TestDevCommandsUseTheDevFrontend(t *testing.T) {
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", "17233")
	f := writeConfig(t, "temporal: {address: \"127.0.0.1:7233\"}\n")
	_, err := runOut(context.Background(), "--config", f, "config", "check", "--dev")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "temporal.address is 127.0.0.1:7233 (set in "+f+")") ||
		!strings.Contains(err.Error(), "127.0.0.1:17233") || !strings.Contains(err.Error(), "set DEALSYNC_DEV_FRONTEND_PORT to the port dealsync dev serves") {
		t.Errorf("config check --dev: exit %d, %v", exitCode(err), err)
	}
	// Without --dev the file's address is the one.
	// (This file defines no connection, which is warned of; nothing else is.)
	if out, err := runOut(context.Background(), "--config", f, "config", "check"); err != nil || !hasLine(out, "temporal", "127.0.0.1:7233,") ||
		strings.Count(out, "warning") != strings.Count(out, "defines no connection") {
		t.Errorf("config check: %v\n%s", err, out)
	}
	// The same server named as localhost agrees.
	f = writeConfig(t, "temporal: {address: \"localhost:17233\"}\n")
	if out, err := runOut(context.Background(), "--config", f, "config", "check", "--dev"); err != nil || !hasLine(out, "temporal", "127.0.0.1:17233, namespace default") || strings.Contains(out, "temporal.address is") {
		t.Errorf("config check --dev, localhost: %v\n%s", err, out)
	}

	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startTemporal(ctx, t, false) // stands in for dealsync dev's server
	_, port, _ := net.SplitHostPort(srv.FrontendAddress())
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", port)
	// No address of its own: --dev follows dev.frontend_port.
	out, err := runOut(ctx, "--config", writeConfig(t, "log: {level: info}\n"), "runs", "list", "--dev")
	if err != nil || !strings.Contains(out, "0 runs") {
		t.Fatalf("runs list --dev: %v\n%s", err, out)
	}
	// An address that names another server: stopped, nothing dialled.
	elsewhere := freeAddr(t)
	t.Setenv("DEALSYNC_TEMPORAL_ADDRESS", elsewhere)
	_, err = runOut(ctx, "--config", writeConfig(t, "log: {level: info}\n"), "runs", "list", "--dev")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "temporal.address is "+elsewhere+" (set by DEALSYNC_TEMPORAL_ADDRESS)") ||
		!strings.Contains(err.Error(), "127.0.0.1:"+port) || !strings.Contains(err.Error(), "unset DEALSYNC_TEMPORAL_ADDRESS") {
		t.Errorf("runs list --dev with another address: exit %d, %v", exitCode(err), err)
	}
}

// `config check --dev` refuses what `dealsync dev` refuses, and warns of
// what it warns of, without binding a port: examples/dealsync.yaml with
// the sandbox ERP moved by DEALSYNC_DEV_SANDBOX_LISTEN said ok, and dev
// then refused to start (its sandbox target's base_url stays on 8090).
// The address is held here: a check that bound it would fail otherwise.
func TestConfigCheckDevChecksTheSandboxTargetAsDevDoes(t *testing.T) {
	ctx := context.Background()
	listen := heldAddr(t)
	t.Setenv("DEALSYNC_DEV_SANDBOX_LISTEN", listen)
	out, err := runOut(ctx, "--config", exampleConfig, "config", "check", "--dev")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "targets.sandbox.base_url is http://127.0.0.1:8090") ||
		!strings.Contains(err.Error(), "DEALSYNC_TARGETS_SANDBOX_BASE_URL=http://"+listen) || strings.Contains(out, "\nok\n") {
		t.Fatalf("config check --dev: exit %d, %v\n%s", exitCode(err), err, out)
	}
	// What dev says, word for word.
	cfg, err2 := config.Load(exampleConfig, config.WithDevDefaults())
	if err2 != nil {
		t.Fatal(err2)
	}
	if _, devErr := app.CheckSandboxTarget(cfg, listen); devErr == nil || !strings.Contains(err.Error(), devErr.Error()) {
		t.Errorf("config check --dev says %v, dev %v", err, devErr)
	}
	// Without --dev: serve's view, where the sandbox target is any ERP.
	if out, err := runOut(ctx, "--config", exampleConfig, "config", "check"); err != nil || !strings.Contains(out, "\nok\n") {
		t.Errorf("config check: %v\n%s", err, out)
	}
	// Both moved together: ok, no warning of the target.
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "http://"+listen)
	if out, err := runOut(ctx, "--config", exampleConfig, "config", "check", "--dev"); err != nil || strings.Contains(out, "targets.sandbox.base_url") || !strings.Contains(out, "\nok\n") {
		t.Errorf("config check --dev with the base_url moved too: %v\n%s", err, out)
	}
	// On another host: dev's warning, and ok.
	t.Setenv("DEALSYNC_TARGETS_SANDBOX_BASE_URL", "https://erp-sandbox.example.com")
	if out, err := runOut(ctx, "--config", exampleConfig, "config", "check", "--dev"); err != nil ||
		!hasLine(out, "warning", "targets.sandbox.base_url (https://erp-sandbox.example.com) is not the sandbox ERP of dealsync dev (http://"+listen) || !strings.Contains(out, "\nok\n") {
		t.Errorf("config check --dev with a sandbox elsewhere: %v\n%s", err, out)
	}
}

// The banner's "Try it" command works from a second terminal when dev was
// started with --config whose demo connection has a secret of its own
// (it was sent signed with the default config's secret: 401), and names
// the variables that secret is read from.
func TestBannerTryItSignsWithTheSecretDevChecks(t *testing.T) {
	own := "whsec_" + base64.StdEncoding.EncodeToString([]byte("dealsync-banner-test-secret-32b!"))
	for _, c := range []struct {
		name, yaml string
		env        map[string]string
		vars       []string
	}{
		{"literal in the file", "connections:\n  demo:\n    source: {secret: \"" + own + "\"}\n", nil, nil},
		{"env: in the file", "connections:\n  demo:\n    source: {secret: \"env:BANNER_TEST_SECRET\"}\n",
			map[string]string{"BANNER_TEST_SECRET": own}, []string{"BANNER_TEST_SECRET"}},
		{"from the environment", "", map[string]string{"DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET": own}, []string{"DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			path := ""
			if c.yaml != "" {
				path = writeConfig(t, c.yaml)
			}
			cfg, err := config.Load(path, config.WithDevDefaults())
			if err != nil {
				t.Fatal(err)
			}
			set, err := app.BuildConnections(cfg, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			demo, _ := set.Get("demo")
			// The intake of that dev, for the demo connection: 202 for a
			// delivery its secret signs, 401 otherwise.
			intake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := demo.Source.Verify(&connectors.Webhook{Method: r.Method, URL: r.URL.String(), Header: r.Header, Body: body, Received: time.Now()}); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				// Away from the repository, the banner sends the
				// built-in sample deal.
				if !bytes.Equal(body, examples.ClosedWon) {
					http.Error(w, "not the sample deal", http.StatusBadRequest)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			}))
			defer intake.Close()

			text := tryIt(cfg, path, intake.URL, "http://127.0.0.1:8090")
			var send string
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, "webhook send") {
					send = strings.TrimSpace(line)
				}
			}
			args, ok := strings.CutPrefix(send, goRunSelf(t)+" ")
			if !ok {
				t.Fatalf("no webhook send command in:\n%s", text)
			}
			argv := strings.Fields(args)
			if out, err := runOut(context.Background(), argv...); err != nil {
				t.Errorf("the banner's command %q: %v\n%s", send, err, out)
			}
			for _, v := range c.vars {
				if !strings.Contains(text, "export "+v) {
					t.Errorf("the banner does not name %s:\n%s", v, text)
				}
			}
			if len(c.vars) == 0 && strings.Contains(text, "export") {
				t.Errorf("the banner names variables the command does not need:\n%s", text)
			}
		})
	}
}

// The public dev secret (examples/dealsync.yaml's demo connection) on an
// intake other machines reach: serve refuses to start and config check
// exits 1, naming the connection and the key to set; on loopback both
// warn (serve in its log) and go on; a secret of one's own is neither.
func TestServeAndConfigCheckOnThePublicDevSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	refusal := func(what string, err error) {
		t.Helper()
		if exitCode(err) == 0 || !strings.Contains(err.Error(), "connection demo") ||
			!strings.Contains(err.Error(), "connections.demo.source.secret (env DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET)") ||
			!strings.Contains(err.Error(), "intake.listen is 0.0.0.0:"+port) {
			t.Errorf("%s: %v, want a refusal naming the connection and the key", what, err)
		}
	}
	t.Setenv("DEALSYNC_INTAKE_LISTEN", "0.0.0.0:"+port)
	_, err := runOut(ctx, "--config", exampleConfig, "config", "check")
	refusal("config check", err)
	// Refused before listening: it returns, and nothing ever listens.
	serveCtx, stopServe := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(serveCtx, "--config", exampleConfig, "serve") }()
	for served := false; !served; {
		select {
		case err := <-done:
			refusal("serve", err)
			served = true
		default:
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				stopServe()
				t.Errorf("serve listens on 0.0.0.0:%s with the public dev secret (returned %v)", port, <-done)
				served = true
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopServe()

	listen := "127.0.0.1:" + port
	t.Setenv("DEALSYNC_INTAKE_LISTEN", listen)
	out, err := runOut(ctx, "--config", exampleConfig, "config", "check")
	if err != nil || !hasLine(out, "warning", "connection demo takes webhooks signed with dealsync's public dev secret") ||
		!strings.Contains(out, "DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET") {
		t.Errorf("config check on loopback: %v\n%s", err, out)
	}
	logs := captureStderr(t)
	t.Setenv("DEALSYNC_INTAKE_DRAIN_DELAY", "0s") // stop at once
	stop := startCommand(ctx, t, "--config", exampleConfig, "serve")
	for ctx.Err() == nil {
		if c, err := net.Dial("tcp", listen); err == nil {
			c.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "connection demo takes webhooks signed with dealsync's public dev secret") ||
		!strings.Contains(l, "DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET") {
		t.Errorf("serve on loopback did not warn:\n%s", l)
	}

	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET", "whsec_"+base64.StdEncoding.EncodeToString([]byte("a-secret-of-ones-own-32-bytes-ok")))
	t.Setenv("DEALSYNC_INTAKE_LISTEN", "0.0.0.0:"+port)
	if out, err := runOut(ctx, "--config", exampleConfig, "config", "check"); err != nil || strings.Contains(out, "public dev secret") {
		t.Errorf("config check with a secret of one's own: %v\n%s", err, out)
	}
}

// The banner's command runs from the repository (go run ./cmd/dealsync):
// a config given to dev by a relative path is named by its absolute one.
func TestBannerTryItNamesTheConfigAbsolutely(t *testing.T) {
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs("dealsync.yaml")
	if text := tryIt(cfg, "dealsync.yaml", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); !strings.Contains(text, "--config "+want+" ") {
		t.Errorf("want --config %s in:\n%s", want, text)
	}
	// The runs of this dev, from another shell: with the port the
	// environment moved it to, which that shell has not.
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", "47233")
	t.Setenv("DEALSYNC_TEMPORAL_TASK_QUEUE", "mine")
	if text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); !strings.Contains(text, "  DEALSYNC_DEV_FRONTEND_PORT=47233 DEALSYNC_TEMPORAL_TASK_QUEUE=mine "+goRunSelf(t)+" runs list --dev ") {
		t.Errorf("want the runs list command with the moved port and task queue in:\n%s", text)
	}
}

// goRunSelf is the banner's go run command in this repository: it names
// the repository (go run -C), for a second shell elsewhere.
func goRunSelf(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return "go run -C " + wording.ShellWord(root) + " ./cmd/dealsync"
}

// Away from the repository (no dealsync go.mod up from the working
// directory), go run's command is the one that runs from it.
func TestGoRunSelfAwayFromTheRepository(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := commandOf("/tmp/go-build1/b001/exe/dealsync", "x"); got != "go run ./cmd/dealsync" {
		t.Errorf("commandOf away from the repository = %q", got)
	}
}

// The banner's commands are run as this dealsync was: go run's build from
// the repository, a binary by its path (made absolute: the other shell may
// be elsewhere), or by its name on the PATH.
func TestBannerCommandsRunThisDealsync(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ exe, arg0, want string }{
		{"/tmp/go-build123/b001/exe/dealsync", "/tmp/go-build123/b001/exe/dealsync", goRunSelf(t)},
		{"", "dealsync", goRunSelf(t)},
		{"/usr/local/bin/dealsync", "dealsync", "dealsync"},
		{"/opt/ds/dealsync", "/opt/ds/dealsync", "/opt/ds/dealsync"},
		{filepath.Join(wd, "bin", "dealsync"), "./bin/dealsync", filepath.Join(wd, "bin", "dealsync")},
	} {
		if got := commandOf(c.exe, c.arg0); got != c.want {
			t.Errorf("commandOf(%q, %q) = %q, want %q", c.exe, c.arg0, got, c.want)
		}
	}
}

// The banner's sample deal is named by its absolute path when dev runs
// where the repository's examples are, so that the command works from a
// second shell anywhere; elsewhere (no such file there) it is the sample
// built into the binary, which the command sends as the file would be.
func TestTryItNamesTheSampleDealByItsPath(t *testing.T) {
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); !strings.Contains(text, " --sample\n") {
		t.Errorf("away from the repository:\n%s\nwant --sample", text)
	}
	file, err := os.ReadFile("../../examples/closed-won.json")
	if err != nil || !bytes.Equal(file, examples.ClosedWon) {
		t.Errorf("the built-in sample is not examples/closed-won.json (%v)", err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); !strings.Contains(text, " "+filepath.Join(root, "examples", "closed-won.json")+"\n") {
		t.Errorf("in the repository:\n%s\nwant the sample's absolute path", text)
	}
}

// The banner names the variable demo's secret is read from when the name
// may be shown, and says which one otherwise, never "(name not shown)".
func TestBannerSaysWhichVariableTheSecretIsReadFrom(t *testing.T) {
	t.Setenv("demo_secret", "whsec_ZGVhbHN5bmMtYmFubmVyLXRlc3Qtc2VjcmV0LTMyYiE=")
	cfg, err := config.Load(writeConfig(t, "connections:\n  demo:\n    source: {secret: \"env:demo_secret\"}\n"), config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090")
	if !strings.Contains(text, "export the variable its env: reference names in that shell too") || strings.Contains(text, "not shown") {
		t.Errorf("banner:\n%s", text)
	}
}

// The banner says which connections invoice in the sandbox ERP, and when
// none does (every connection's target is another ERP), says so and does
// not offer the curl of its invoices, which would stay empty.
func TestBannerSaysWhoUsesTheSandboxERP(t *testing.T) {
	cfg, err := config.Load("", config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	d := &app.Dev{SandboxURL: "http://127.0.0.1:8090", IntakeURL: "http://127.0.0.1:8080"}
	text := bannerTail(cfg, d, "")
	if strings.Contains(text, "curl") || !strings.Contains(text, "Sandbox ERP      http://127.0.0.1:8090/invoices   (no connection invoices here: every connection's target is another ERP)\n") {
		t.Errorf("no connection on the sandbox:\n%s", text)
	}
	d.SandboxConnections = []string{"demo", "shop"}
	text = bannerTail(cfg, d, "")
	if !strings.Contains(text, "Sandbox ERP      http://127.0.0.1:8090/invoices   connections: demo, shop\n") || !strings.Contains(text, "  curl -s http://127.0.0.1:8090/invoices\n") {
		t.Errorf("demo and shop on the sandbox:\n%s", text)
	}
}

// The banner names the DEALSYNC_ variables of dev's shell that another
// shell needs too, names only, but for those its commands carry already
// and those the config does not read: without them runs retry there
// would start runs with another mapping than dev's connection has.
func TestBannerNamesTheVariablesAnotherShellNeeds(t *testing.T) {
	t.Setenv("DEALSYNC_DEV_FRONTEND_PORT", "47233")                                                           // on the runs list line
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_SOURCE_SECRET", "whsec_ZGVhbHN5bmMtYmFubmVyLXRlc3Qtc2VjcmV0LTMyYiE=") // on the secret's line
	t.Setenv("DEALSYNC_INTAKE_LISTN", "127.0.0.1:9")                                                          // read by nothing
	t.Setenv("DEALSYNC_TEST_SOMETHING", "1")                                                                  // the tests'
	t.Setenv("DEALSYNC_WORKFLOW_ACTIVITY_TIMEOUT", "")                                                        // empty: ignored
	t.Setenv("DEALSYNC_LOG_LEVEL", "debug")                                                                   // the log's only
	cfg, err := config.Load(exampleConfig, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); strings.Contains(text, "this shell sets") {
		t.Errorf("no variable to name:\n%s", text)
	}
	t.Setenv("DEALSYNC_CONNECTIONS_DEMO_MAPPING", "generic-standard")
	cfg, err = config.Load(exampleConfig, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090")
	if want := "  (this shell sets DEALSYNC_CONNECTIONS_DEMO_MAPPING: export it in that shell too, or runs retry, deals sync and mapping test there start and dry-run runs with other settings than dev's, such as a connection's mapping)\n\n"; !strings.HasSuffix(text, want) {
		t.Errorf("want it to end with %q:\n%s", want, text)
	}
	t.Setenv("DEALSYNC_WORKFLOW_RUN_TIMEOUT", "12h")
	cfg, err = config.Load(exampleConfig, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if text := tryIt(cfg, "", "http://127.0.0.1:8080", "http://127.0.0.1:8090"); !strings.Contains(text, "  (this shell sets DEALSYNC_CONNECTIONS_DEMO_MAPPING, DEALSYNC_WORKFLOW_RUN_TIMEOUT: export them in that shell too,") || strings.Contains(text, "12h") {
		t.Errorf("two variables, names only:\n%s", text)
	}
}
