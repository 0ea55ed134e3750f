package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors/erpkit"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/internal/hostcheck"
	"github.com/dealsync/dealsync/payloadcodec"
	"github.com/dealsync/dealsync/secret"
	"github.com/dealsync/dealsync/worker"
	"github.com/dealsync/dealsync/workflows"
)

// DevOptions adjust the dev stack for tests and benchmarks.
type DevOptions struct {
	// InMemory keeps Temporal's data and the sandbox ERP's in memory
	// instead of cfg.Dev.DataDir.
	InMemory bool
	// FrontendPort and UIPort override the config when non-zero
	// (FrontendPort < 0 picks a free port; UIPort < 0 disables the Web UI).
	FrontendPort, UIPort int
	// WorkerOptions tune the embedded worker.
	WorkerOptions sdkworker.Options
	// ConfigPath is the config file dev was started with ("" for none),
	// which a run's MappingError names for `dealsync mapping test`.
	ConfigPath string
}

// Dev is the running all-in-one stack of `dealsync dev`: an embedded
// Temporal server with its Web UI, the worker, the intake and the sandbox
// ERP, in one process.
type Dev struct {
	Temporal    *devserver.Server
	Sandbox     *sandbox.Server
	Client      client.Client
	Connections *connections.Set
	IntakeURL   string
	SandboxURL  string
	// SandboxConnections are the connections whose target (or one of
	// whose account_targets) is the sandbox ERP of this dev, sorted:
	// the invoices of the others go elsewhere (SandboxUsers).
	SandboxConnections []string
	UIURL              string
	// CodecURL is the Web UI's codec endpoint (temporal.encryption: POST
	// <CodecURL>/decode), "" without encryption.
	CodecURL string
	// MetricsURL serves GET /metrics ("" without metrics.listen).
	MetricsURL string

	worker sdkworker.Worker
	// stopTimeout is how long each of the worker's stops waits for its
	// tasks and calls in flight (StopTimeout).
	stopTimeout time.Duration
	fatal       chan error
	cancel      context.CancelFunc
	servers     []chan error
	// stopSandbox stops the sandbox ERP's server, after the worker, whose
	// calls in flight it answers.
	stopSandbox func()
	closeOnce   sync.Once
	// logger takes the line that says dev has stopped.
	logger *slog.Logger
}

// StartDev starts everything and returns once the intake accepts webhooks.
func StartDev(ctx context.Context, cfg *config.Config, logger *slog.Logger, o DevOptions) (_ *Dev, err error) {
	d := &Dev{logger: logger}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel

	// Before anything is made: two of its own listeners on one port.
	frontendPort, uiPort := cfg.Dev.FrontendPort, cfg.Dev.UIPort
	if o.FrontendPort != 0 {
		frontendPort = o.FrontendPort
	}
	if o.UIPort != 0 {
		uiPort = o.UIPort
	}
	if err := DevPortClash(cfg, frontendPort, uiPort); err != nil {
		return nil, err
	}

	// The sandbox's journal first: its lock is the data dir's, so a second
	// `dealsync dev` on the same data dir is told so, not that a port it
	// would share with the first one is in use.
	journal := ""
	if !o.InMemory {
		journal = filepath.Join(cfg.Dev.DataDir, SandboxJournalFile)
	}
	if d.Sandbox, err = NewSandbox(cfg, logger, journal); err != nil {
		var inUse *sandbox.JournalInUseError
		if errors.As(err, &inUse) {
			return nil, dataDirInUse(cfg.Dev.DataDir, inUse)
		}
		return nil, err
	}
	sandboxL, err := ListenOn("sandbox ERP", "dev.sandbox_listen", cfg.Dev.SandboxListen)
	if err != nil {
		return nil, err
	}
	// What config check --dev checks too, with the address bound.
	notices, err := CheckDevConfig(cfg, sandboxL.Addr().String())
	if err != nil {
		sandboxL.Close()
		return nil, err
	}
	LogNotices(logger, notices)
	intakeL, err := ListenOn("webhook intake", "intake.listen", cfg.Intake.Listen)
	if err != nil {
		sandboxL.Close()
		return nil, err
	}
	// URLs a browser and curl reach: a listener on all interfaces is
	// shown as 127.0.0.1, not [::].
	d.SandboxURL = "http://" + config.DialAddr(sandboxL.Addr().String())
	d.SandboxConnections = SandboxUsers(cfg, sandboxL.Addr().String())
	sandboxCtx, sandboxCancel := context.WithCancel(context.Background())
	sandboxH := SandboxHostCheck(cfg, sandboxL.Addr().String()).Handler(d.Sandbox.Handler())
	sandboxDone := serveUntil(func() error { return Serve(sandboxCtx, sandboxL, sandboxH) })
	d.stopSandbox = func() { sandboxCancel(); <-sandboxDone }

	// The connections are built before the embedded server starts: one
	// that cannot be (a write_back.url over plain HTTP to another machine,
	// a base_url of the wrong scheme) stops dev before it makes or opens
	// its databases.
	if d.Connections, err = BuildConnectionsOf(cfg, o.ConfigPath, logger); err != nil {
		intakeL.Close()
		return nil, err
	}
	// The Web UI's codec endpoint, when payloads are encrypted: on a
	// loopback port of its own (not the intake's, which a tunnel may
	// expose to a CRM), answering the UI's pages only (see serveCodec).
	codec, err := PayloadCodec(cfg)
	if err != nil {
		intakeL.Close()
		return nil, err
	}
	var codecL net.Listener
	if codec != nil {
		if codecL, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			intakeL.Close()
			return nil, fmt.Errorf("codec endpoint: %w", err)
		}
		d.CodecURL = "http://" + codecL.Addr().String() + CodecPath
	}
	srvOpts := devserver.Options{
		CodecEndpoint:    d.CodecURL,
		AllowedHosts:     cfg.Dev.AllowedHosts,
		FrontendPort:     cfg.Dev.FrontendPort,
		UIPort:           cfg.Dev.UIPort,
		Namespace:        cfg.Temporal.Namespace,
		Retention:        cfg.Dev.Retention,
		SearchAttributes: workflows.SearchAttributeTypes(),
		Logger:           logger.With("component", "temporal"),
		DynamicConfig: map[string]any{
			"system.enableEagerWorkflowStart": true,
		},
	}
	switch {
	case o.FrontendPort > 0:
		srvOpts.FrontendPort = o.FrontendPort
	case o.FrontendPort < 0:
		srvOpts.FrontendPort = 0 // the server picks a free one
	}
	if o.UIPort != 0 {
		srvOpts.UIPort = o.UIPort
	}
	if !o.InMemory {
		srvOpts.DatabaseFile = filepath.Join(cfg.Dev.DataDir, "temporal.db")
	}
	if d.Temporal, err = devserver.Start(ctx, srvOpts); err != nil {
		intakeL.Close()
		if codecL != nil {
			codecL.Close()
		}
		return nil, err
	}
	if addr := d.Temporal.UIAddress(); addr != "" {
		d.UIURL = "http://" + addr
	}
	if codecL != nil {
		d.servers = append(d.servers, serveCodec(runCtx, codecL, codec, d.UIURL, cfg.Dev.AllowedHosts))
	}

	devCfg := *cfg
	devCfg.Temporal.Address = d.Temporal.FrontendAddress()
	// Loopback to a server in this process: compressing costs CPU on both
	// ends and saves nothing.
	devCfg.Temporal.Compression = "none"
	// The embedded server speaks plaintext and asks for no key: a config
	// (or a shell's DEALSYNC_TEMPORAL_API_KEY) made for a cluster must not
	// make dev dial it with TLS.
	devCfg.Temporal.TLS = config.TLS{}
	devCfg.Temporal.APIKey = secret.Secret{}
	copts, err := ClientOptions(&devCfg, logger)
	if err != nil {
		intakeL.Close()
		return nil, err
	}
	if d.Client, err = client.DialContext(ctx, copts); err != nil {
		intakeL.Close()
		return nil, fmt.Errorf("connecting to the embedded Temporal server: %w", err)
	}
	// The SDK stops a worker whose polls keep failing for good (the
	// namespace deleted, say): Fatal tells the process, which must end
	// then rather than take webhooks that no worker runs.
	d.fatal = make(chan error, 1)
	wopts := devWorkerOptions(o.WorkerOptions)
	callerFatal := wopts.OnFatalError
	wopts.OnFatalError = func(err error) {
		if callerFatal != nil {
			callerFatal(err)
		}
		select {
		case d.fatal <- err:
		default:
		}
	}
	acts := Activities(d.Connections, d.Client)
	acts.ConfigPath = AbsConfigPath(o.ConfigPath)
	acts.TargetMismatchGrace = cfg.Workflow.TargetMismatchGrace
	d.worker = worker.New(d.Client, cfg.Temporal.TaskQueue, acts, cfg.Workflow.ActivityTimeout, wopts, copts.Logger)
	// worker.New's rule: without a stop timeout, the activity timeout and 5 s.
	if d.stopTimeout = wopts.WorkerStopTimeout; d.stopTimeout == 0 {
		d.stopTimeout = worker.StopTimeout(cfg.Workflow.ActivityTimeout)
	}
	if err := d.worker.Start(); err != nil {
		intakeL.Close()
		return nil, fmt.Errorf("starting worker: %w", err)
	}
	addr, err := ServeMetrics(runCtx, cfg, logger, nil)
	if err != nil {
		intakeL.Close()
		return nil, err
	}
	if addr != "" {
		d.MetricsURL = "http://" + addr + "/metrics"
	}
	d.IntakeURL = "http://" + config.DialAddr(intakeL.Addr().String())
	// No balancer on a laptop: no drain delay.
	intakeH := IntakeHandler(cfg, d.Connections, Starter(cfg, d.Client, true), logger)
	d.servers = append(d.servers, serveUntil(func() error {
		return serveIntake(runCtx, intakeL, intakeH, 0, DevIntakeStopTimeout, logger)
	}))
	return d, nil
}

// DevStopTimeout is how long each stage of the stop of dev's worker
// waits before it cuts off what is still running: the SDK stops the
// workflow worker (the workflow tasks in hand), then the local calls'
// worker, then the activity worker, each waiting up to its stop timeout,
// so the worker's stop takes up to 3 × DevStopTimeout, 6 s (with
// external_calls: activity, a call in flight at each stage), after the
// intake's (DevIntakeStopTimeout, Dev.StopBound); `worker` waits StopTimeout,
// the activity timeout and 5 s, not to cut off a deploy's calls. In dev
// that wait was spent on nothing: a workflow task whose local call is
// being retried (the sandbox ERP's faults: a 503 every second) never ends
// by itself, since the SDK sends each retry again after its back-off and
// notices the stop only once the wait is over (35 s by default, while
// the embedded server, the Web UI and the data dir's lock stayed up). A
// call cut off is sent again after the restart under the same
// idempotency key, as after a crash: safe where the target honours the
// key or looks the invoice up (the sandbox ERP answers it from its
// journal; an `http` target without lookup_invoices whose API ignores
// Idempotency-Key makes a second invoice after an invoice POST cut off,
// see docs/connectors/erp.md). A run in flight goes on where Temporal has
// it; the sandbox ERP answers until the worker has stopped.
const DevStopTimeout = 2 * time.Second

// DevIntakeStopTimeout is how long dev's intake, stopping, waits for the
// webhooks in hand (their starts of runs in the embedded server, which
// answers at once when it is up) before the worker stops: `serve` waits
// the longest a webhook may take, intake.start_timeout and 5 s (25 s by
// default), for a load balancer's clients. A webhook cut off is refused
// (its sender sends it again, and meets the run as a duplicate if the
// start went through).
const DevIntakeStopTimeout = DevStopTimeout

// devWorkerOptions are the options of dev's worker: opts with
// DevStopTimeout unless they set a stop timeout.
func devWorkerOptions(opts sdkworker.Options) sdkworker.Options {
	if opts.WorkerStopTimeout == 0 {
		opts.WorkerStopTimeout = DevStopTimeout
	}
	return opts
}

// dataDirInUse is dev's refusal of a data dir whose sandbox journal
// another process holds: most likely another dev, and often the one just
// stopped with Ctrl-C, which holds it until it has stopped (its sandbox
// ERP is the last thing it stops).
func dataDirInUse(dir string, inUse *sandbox.JournalInUseError) error {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return fmt.Errorf("data dir %s is in use by %s, which holds its sandbox journal (%s): another dealsync dev on this data dir, perhaps one still stopping "+
		"(a dev lets go of it once it has stopped, a few seconds after Ctrl-C: start this one again then), or a dealsync sandbox with --journal on it; "+
		"stop that one, or give this one another data dir (--data-dir, or dev.data_dir, env DEALSYNC_DEV_DATA_DIR): %w",
		dir, inUse.Holder(), SandboxJournalFile, inUse.Err)
}

// ListenOn listens on addr, the value of the config key that sets where
// what (e.g. "webhook intake") listens. An address that cannot be bound
// (a port in use, by another dealsync say) is an error naming the key and
// its environment variable, which is what to change.
func ListenOn(what, key, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		env := config.EnvVar(key)
		return nil, fmt.Errorf("%s: cannot listen on %s (%s, env %s): %w; is another dealsync (or another program) using it? Stop it, or set %s to a free address",
			what, addr, key, env, err, key)
	}
	return l, nil
}

// CheckSandboxTarget looks at the http target named "sandbox" (the one
// the dev connections invoice) when the file defines it, for a dev whose
// sandbox ERP listens on addr: a `sandbox` target written in the file
// keeps its base_url when dev.sandbox_listen changes, and its runs would
// call another port. On this machine (a loopback base_url, or an address
// of one of its interfaces: config.IsLocal) that is another program, another dealsync dev's sandbox ERP most likely, which
// would take the invoices while this one's stays empty
// (examples/dealsync.yaml with the ports moved by DEALSYNC_* variables):
// dev refuses to start (the error), saying what to set. Elsewhere it is a
// warning, not a refusal: the name is not reserved, and a target called
// sandbox may mean a vendor's sandbox or a `dealsync sandbox` on another
// host. `dealsync dev` checks it with the address its sandbox ERP is
// bound to, `config check --dev` with dev.sandbox_listen.
func CheckSandboxTarget(cfg *config.Config, addr string) (warning string, err error) {
	tc, ok := cfg.Targets["sandbox"]
	if !ok {
		return "", nil
	}
	hc, ok := tc.Spec.(*httptarget.Config)
	if !ok || config.SameHostPort(hc.BaseURL, addr) {
		return "", nil
	}
	dial := "http://" + config.DialAddr(addr)
	// The URL is shown without a credential it may hold.
	u, err := url.Parse(hc.BaseURL)
	shown := ""
	if err == nil {
		shown = erpkit.ShownURL(u)
	}
	if err == nil && config.IsLocal(u.Hostname()) && !cfg.IsDevDefault("targets", "sandbox") {
		return "", fmt.Errorf("targets.sandbox.base_url is %s, on this machine but not the sandbox ERP of this dealsync dev (%s, dev.sandbox_listen): "+
			"the runs' invoices would go to whatever listens there (another dealsync dev?), not to this one's sandbox; "+
			"set DEALSYNC_TARGETS_SANDBOX_BASE_URL=%s as well (targets.sandbox.base_url), or leave targets.sandbox out of the file so that it follows dev.sandbox_listen "+
			"(a local ERP of your own at that address: give its target another name)",
			shown, dial, dial)
	}
	return fmt.Sprintf("targets.sandbox.base_url (%s) is not the sandbox ERP of dealsync dev (%s, dev.sandbox_listen %s): runs of connections with target sandbox will not reach it; "+
		"set targets.sandbox.base_url (DEALSYNC_TARGETS_SANDBOX_BASE_URL) to its address, or leave targets.sandbox out of the file so that it follows dev.sandbox_listen",
		shown, dial, cfg.Dev.SandboxListen), nil
}

// SandboxUsers are the connections of cfg, sorted, that invoice in the
// sandbox ERP listening on addr: their target, or one their
// account_targets give an account, is an http target whose base_url
// reaches that address (config.SameHostPort: a LAN address of this
// machine reaches a sandbox on every interface). A connection whose
// target is another ERP (a test instance of the real one) sends it
// nothing, and the banner does not send its reader there to look for the
// invoices.
func SandboxUsers(cfg *config.Config, addr string) []string {
	isSandbox := func(target string) bool {
		tc, ok := cfg.Targets[strings.ToLower(target)]
		if !ok {
			return false
		}
		hc, ok := tc.Spec.(*httptarget.Config)
		return ok && config.SameHostPort(hc.BaseURL, addr)
	}
	var out []string
	for name, c := range cfg.Connections {
		uses := isSandbox(c.Target)
		for _, t := range c.AccountTargets {
			uses = uses || isSandbox(t)
		}
		if uses {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// serveUntil runs serve (a server until its context ends); the channel
// gets its error once it returns.
func serveUntil(serve func() error) chan error {
	errc := make(chan error, 1)
	go func() {
		err := serve()
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	return errc
}

// Fatal delivers the error with which the SDK stopped the embedded worker
// for good; `dealsync dev` ends on it, as `dealsync worker` does.
func (d *Dev) Fatal() <-chan error { return d.fatal }

// StopTimeout is how long each stage of the worker's stop (the workflow
// tasks in hand, the local calls, the activities) waits before it cuts
// off what is still running: DevStopTimeout unless
// DevOptions.WorkerOptions set one.
func (d *Dev) StopTimeout() time.Duration { return d.stopTimeout }

// StopBound is the longest a stop takes: the intake's wait for the
// webhooks in hand (DevIntakeStopTimeout), then the worker's three
// (StopTimeout each).
func (d *Dev) StopBound() time.Duration { return DevIntakeStopTimeout + 3*d.StopTimeout() }

// Close stops the intake first (no new work), then the worker (which waits
// for the calls in flight), the server and the sandbox ERP. A dev that
// had started says, last, that it has stopped, and how long that took.
func (d *Dev) Close() { d.closeOnce.Do(d.close) }

func (d *Dev) close() {
	began := time.Now()
	if d.IntakeURL != "" && d.logger != nil {
		// Started (the intake's URL is set last): the SDK's "Stopped
		// Worker" was the last line, and did not say that the server,
		// the Web UI and the sandbox ERP had stopped too.
		defer func() {
			d.logger.Info("dealsync dev stopped: intake, worker, Temporal server, Web UI and sandbox ERP", "took", time.Since(began).Round(time.Millisecond))
		}()
	}
	if d.cancel != nil {
		d.cancel()
		for _, c := range d.servers {
			<-c
		}
	}
	if d.worker != nil {
		d.worker.Stop()
	}
	if d.Client != nil {
		d.Client.Close()
	}
	if d.Temporal != nil {
		d.Temporal.Stop()
	}
	if d.stopSandbox != nil {
		d.stopSandbox()
	}
	if d.Sandbox != nil {
		_ = d.Sandbox.Close() // every record was written when it was made
	}
}

// SandboxJournalFile is where `dealsync dev` keeps the sandbox ERP's
// customers, invoices and idempotency keys, in its data dir.
const SandboxJournalFile = "sandbox.jsonl"

// NewSandbox makes the sandbox ERP with the faults of the config's
// `sandbox` block (`dealsync dev` and `dealsync sandbox`), keeping its
// data in the journal file when one is given, in memory otherwise.
func NewSandbox(cfg *config.Config, logger *slog.Logger, journal string) (*sandbox.Server, error) {
	s := sandbox.New(sandbox.Options{
		Faults: sandbox.Faults{
			ErrorRate:        cfg.Sandbox.ErrorRate,
			RateLimitRate:    cfg.Sandbox.RateLimitRate,
			RetryAfter:       cfg.Sandbox.RetryAfter,
			Latency:          cfg.Sandbox.Latency,
			LostResponseRate: cfg.Sandbox.LostResponseRate,
		},
		Logger: logger.With("component", "sandbox-erp"),
	})
	if journal == "" {
		return s, nil
	}
	// The data dir holds deals' payloads (names, e-mail addresses,
	// amounts): the user's own.
	if err := os.MkdirAll(filepath.Dir(journal), 0o700); err != nil {
		return nil, fmt.Errorf("sandbox ERP: %w", err)
	}
	if err := s.OpenJournal(journal); err != nil {
		return nil, err
	}
	return s, nil
}

// serveCodec serves the codec endpoint of dev's Web UI on l until ctx
// ends, for the pages of uiURL (its port on 127.0.0.1, on localhost and
// on the allowed hosts, dev.allowed_hosts): l is on loopback, but any
// page a browser shows could call it, so no other origin's page is let
// read what it answers, and a request whose Host is not a loopback name
// or an allowed one (a page that rebound its name to 127.0.0.1, whose
// requests are same-origin) is refused.
func serveCodec(ctx context.Context, l net.Listener, codec *payloadcodec.Codec, uiURL string, allowed []string) chan error {
	var origins []string
	if u, err := url.Parse(uiURL); err == nil && uiURL != "" {
		origins = []string{uiURL, "http://localhost:" + u.Port()}
		for _, h := range allowed {
			// As the browser sends it: MyLaptop.test. is allowed, its
			// page's Origin is http://mylaptop.test:<port>.
			origins = append(origins, "http://"+net.JoinHostPort(hostcheck.Normalize(h), u.Port()))
		}
	}
	mux := http.NewServeMux()
	mux.Handle(CodecPath+"/", codec.Handler(CodecPath, origins))
	host, _, _ := net.SplitHostPort(l.Addr().String())
	check := hostcheck.New("the payload codec endpoint of dealsync dev's Web UI", AllowedHostsSetting, host, allowed, nil)
	return serveUntil(func() error { return Serve(ctx, l, check.Handler(mux)) })
}

// AllowedHostsSetting is the setting that names the hosts, besides the
// loopback ones, that dev's Web UI, codec endpoint and sandbox ERP
// answer (internal/hostcheck).
var AllowedHostsSetting = "dev.allowed_hosts (env " + config.EnvVar("dev.allowed_hosts") + ")"

// SandboxHostCheck is the Host check of dev's sandbox ERP listening on
// addr: a web page that rebinds its name to 127.0.0.1 must not create
// invoices in it. It answers the loopback names, the address it is
// bound to (any of this machine's for one on every interface),
// dev.allowed_hosts, and the host of every http target whose base_url
// has its port (the names dealsync's own calls reach it by).
func SandboxHostCheck(cfg *config.Config, addr string) *hostcheck.Checker {
	host, port, _ := net.SplitHostPort(addr)
	allowed := slices.Clone(cfg.Dev.AllowedHosts)
	for _, tc := range cfg.Targets {
		hc, ok := tc.Spec.(*httptarget.Config)
		if !ok {
			continue
		}
		if u, err := url.Parse(hc.BaseURL); err == nil && u.Port() == port {
			allowed = append(allowed, u.Hostname())
		}
	}
	return hostcheck.New("the sandbox ERP of dealsync dev", AllowedHostsSetting, host, allowed, nil)
}
