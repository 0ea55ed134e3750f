package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/devserver"
	"github.com/dealsync/dealsync/worker"
)

// devConfig loads yaml (with %s for the data dir) as `dealsync dev` does.
func devConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "dealsync.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(yaml, filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// taken holds a loopback port for the test and returns its address.
func taken(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addrs, err := devserver.FreeAddrs("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// A port in use says which setting to change: the config key and its
// environment variable. (Both fail before the Temporal server starts.)
func TestStartDevNamesTheSettingOfAPortInUse(t *testing.T) {
	for _, c := range []struct {
		name, key, env  string
		sandbox, intake string
	}{
		{"sandbox", "dev.sandbox_listen", "DEALSYNC_DEV_SANDBOX_LISTEN", taken(t), freeAddr(t)},
		{"intake", "intake.listen", "DEALSYNC_INTAKE_LISTEN", freeAddr(t), taken(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := devConfig(t, "dev: {data_dir: %s}\nlog: {level: error}\n")
			cfg.Dev.SandboxListen, cfg.Intake.Listen = c.sandbox, c.intake
			_, err := StartDev(context.Background(), cfg, slog.New(slog.DiscardHandler), DevOptions{InMemory: true})
			if err == nil {
				t.Fatal("StartDev with a port in use succeeded")
			}
			for _, want := range []string{c.key, c.env, "address already in use"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q: %v", want, err)
				}
			}
		})
	}
}

// The metrics listener of `serve`, `worker` and `dev` names its setting
// too when its port is in use.
func TestServeMetricsNamesTheSettingOfAPortInUse(t *testing.T) {
	cfg := devConfig(t, "dev: {data_dir: %s}\nlog: {level: error}\n")
	cfg.Metrics.Listen = taken(t)
	_, err := ServeMetrics(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		t.Fatal("ServeMetrics on a port in use succeeded")
	}
	for _, want := range []string{"metrics.listen", "DEALSYNC_METRICS_LISTEN", "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// A second `dealsync dev` on a data dir (whose sandbox journal another
// holds) is told so, before it tries the ports the first one holds.
func TestSecondDevOnADataDirIsToldSoNotOfAPort(t *testing.T) {
	cfg := devConfig(t, "dev: {data_dir: %s}\nlog: {level: error}\n")
	cfg.Dev.SandboxListen, cfg.Intake.Listen = taken(t), taken(t) // the first one's
	if err := os.MkdirAll(cfg.Dev.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	first := sandbox.New(sandbox.Options{})
	if err := first.OpenJournal(filepath.Join(cfg.Dev.DataDir, SandboxJournalFile)); err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err := StartDev(context.Background(), cfg, slog.New(slog.DiscardHandler), DevOptions{})
	if err == nil || !strings.Contains(err.Error(), "is in use by another process") || !strings.Contains(err.Error(), "holds its sandbox journal (sandbox.jsonl)") ||
		strings.Contains(err.Error(), "listen") {
		t.Fatalf("second dev on the data dir: %v, want the journal's lock named, not a port", err)
	}
	// Most likely the dev just stopped, still stopping: said so, with the
	// holder's PID where the system tells it (here this process's own).
	if !strings.Contains(err.Error(), "another dealsync dev on this data dir, perhaps one still stopping") || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("second dev on the data dir: %v, want another dev, perhaps one still stopping, named", err)
	}
	if runtime.GOOS == "linux" && !strings.Contains(err.Error(), fmt.Sprintf("(PID %d: ", os.Getpid())) {
		t.Errorf("second dev on the data dir: %v, want the holder's PID, %d", err, os.Getpid())
	}
}

// A `sandbox` target written in the file keeps its base_url when the
// sandbox ERP listens elsewhere (DEALSYNC_DEV_SANDBOX_LISTEN). On this
// machine that is another program's port (another dev's sandbox, which
// would take the invoices): dev refuses to start, naming both addresses
// and the variable to set. On another host it warns, naming both. A
// base_url that reaches the listener (localhost for 127.0.0.1 too) is
// neither. Observed where the start fails next, at an intake port in use,
// before the Temporal server.
func TestStartDevChecksASandboxTargetElsewhere(t *testing.T) {
	listen := freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	for _, c := range []struct {
		baseURL      string
		refuse, warn bool
	}{
		{"http://127.0.0.1:1", true, false},
		{"http://localhost:8090", true, false},
		{"https://erp-sandbox.example.com", false, true},
		{"http://localhost:" + port, false, false},
	} {
		t.Run(c.baseURL, func(t *testing.T) {
			cfg := devConfig(t, "dev: {data_dir: %s}\ntargets:\n  sandbox: {type: http, base_url: \""+c.baseURL+"\"}\n")
			cfg.Dev.SandboxListen, cfg.Intake.Listen = listen, taken(t)
			var logs bytes.Buffer
			_, err := StartDev(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), DevOptions{InMemory: true})
			if c.refuse {
				if err == nil || !strings.Contains(err.Error(), "targets.sandbox.base_url") || !strings.Contains(err.Error(), c.baseURL) ||
					!strings.Contains(err.Error(), "http://"+listen) || !strings.Contains(err.Error(), "DEALSYNC_TARGETS_SANDBOX_BASE_URL=http://"+listen) {
					t.Fatalf("StartDev: %v, want a refusal naming both addresses and the variable to set", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "intake.listen") {
				t.Fatalf("StartDev: %v, want it to stop at the intake port in use", err)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "targets.sandbox.base_url")
			if warned != c.warn {
				t.Errorf("warned = %v, want %v:\n%s", warned, c.warn, logs.String())
			}
			if c.warn && (!strings.Contains(logs.String(), c.baseURL) || !strings.Contains(logs.String(), "http://"+listen)) {
				t.Errorf("the warning does not name both addresses:\n%s", logs.String())
			}
		})
	}
}

// sandbox.lost_response_rate reaches the sandbox: at 1, a POST creates
// the customer and is answered 502.
func TestNewSandboxLosesResponsesAtTheConfiguredRate(t *testing.T) {
	cfg := devConfig(t, "dev: {data_dir: %s}\nsandbox: {lost_response_rate: 1}\n")
	sb, err := NewSandbox(cfg, slog.New(slog.DiscardHandler), "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/customers", strings.NewReader(`{"name":"Acme"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || len(sb.Customers()) != 1 {
		t.Errorf("%d %s with %d customers, want 502 and the customer created", resp.StatusCode, body, len(sb.Customers()))
	}
}

// A connection that cannot be built (here a write-back over plain HTTP to
// another machine, which the config's load refuses too, set after it)
// stops dev before the embedded Temporal server starts: it made and
// opened its database first, and logged the server's stop.
func TestDevRefusesAConnectionBeforeItStartsTemporal(t *testing.T) {
	cfg := devConfig(t, `dev: {data_dir: %s}
log: {level: error}
connections:
  shop:
    target: sandbox
    source:
      type: generic
      secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=
`)
	cfg.Connections["shop"].Source.Spec.(*generic.Config).WriteBack.URL = "http://crm.example.com/dealsync"
	cfg.Dev.SandboxListen, cfg.Intake.Listen = "127.0.0.1:0", "127.0.0.1:0"
	_, err := StartDev(context.Background(), cfg, slog.New(slog.DiscardHandler), DevOptions{FrontendPort: -1, UIPort: -1})
	if err == nil || !strings.Contains(err.Error(), "connections.shop") {
		t.Fatalf("StartDev: %v; want the connection that cannot be built named", err)
	}
	if _, serr := os.Stat(filepath.Join(cfg.Dev.DataDir, "temporal.db")); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("temporal.db: %v; want none made before the connection was refused", serr)
	}
}

// Dev's worker waits DevStopTimeout at its stop, not the activity timeout
// and 5 s that `worker` waits: a workflow task whose local call is being
// retried (the sandbox ERP's faults) held the stop for all of it, 35 s by
// default, with the embedded server and the data dir's lock up. A stop
// timeout that the caller set is kept.
func TestDevWorkerStopsWithinDevStopTimeout(t *testing.T) {
	if got := devWorkerOptions(sdkworker.Options{}).WorkerStopTimeout; got != DevStopTimeout {
		t.Errorf("dev's worker stop timeout %v, want %v", got, DevStopTimeout)
	}
	if DevStopTimeout >= worker.StopTimeout(0) {
		t.Errorf("DevStopTimeout %v is not shorter than a worker's least stop timeout, %v", DevStopTimeout, worker.StopTimeout(0))
	}
	if got := devWorkerOptions(sdkworker.Options{WorkerStopTimeout: time.Minute}).WorkerStopTimeout; got != time.Minute {
		t.Errorf("a stop timeout set by the caller became %v", got)
	}
}

// StartDev gives its worker DevStopTimeout (devWorkerOptions), and keeps
// a stop timeout that its caller set: Dev.StopTimeout is what the worker
// was given, and what `dealsync dev` says a stop may take.
func TestStartDevGivesItsWorkerDevStopTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server: skipped with -short")
	}
	for _, c := range []struct {
		name string
		opts sdkworker.Options
		want time.Duration
	}{
		{"dev's", sdkworker.Options{}, DevStopTimeout},
		{"the caller's", sdkworker.Options{WorkerStopTimeout: time.Minute}, time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The sandbox's address in the file: the built-in target
			// follows it.
			cfg := devConfig(t, "dev: {data_dir: %s, sandbox_listen: \""+freeAddr(t)+"\"}\nlog: {level: error}\n")
			cfg.Intake.Listen = "127.0.0.1:0"
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var logs syncBuffer
			d, err := StartDev(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), DevOptions{InMemory: true, FrontendPort: -1, UIPort: -1, WorkerOptions: c.opts})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.StopTimeout(); got != c.want {
				t.Errorf("dev's worker stop timeout %v, want %v", got, c.want)
			}
			if got, want := d.StopBound(), DevIntakeStopTimeout+3*c.want; got != want {
				t.Errorf("dev's stop bound %v, want %v", got, want)
			}
			// The banner names the connections its sandbox ERP invoices.
			if !slices.Equal(d.SandboxConnections, []string{"demo"}) {
				t.Errorf("dev's sandbox connections %q, want demo", d.SandboxConnections)
			}
			// The intake's wait is dev's, not serve's 25 s, and the last
			// line says that dev stopped, and how long that took.
			d.Close()
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if !strings.Contains(logs.String(), `msg="intake closing: no new webhooks; waiting for those in hand" for_at_most=`+DevIntakeStopTimeout.String()+"\n") {
				t.Errorf("no intake closing line with for_at_most=%v:\n%s", DevIntakeStopTimeout, logs.String())
			}
			if last := lines[len(lines)-1]; !strings.Contains(last, `level=INFO msg="dealsync dev stopped: intake, worker, Temporal server, Web UI and sandbox ERP" took=`) {
				t.Errorf("last line %q, want dealsync dev stopped with took", last)
			}
		})
	}
}

// The connections that invoice in dev's sandbox ERP, which the banner
// names: none when every connection's target is another ERP (the banner
// then says so, instead of pointing at an ERP that stays empty).
func TestSandboxUsersAreTheConnectionsThatInvoiceThere(t *testing.T) {
	const listen = "127.0.0.1:19103"
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"the built-in demo", "dev: {data_dir: %s, sandbox_listen: \"" + listen + "\"}\n", []string{"demo"}},
		{"every connection elsewhere", "dev: {data_dir: %s, sandbox_listen: \"" + listen + "\"}\n" + `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:19110"}
connections:
  demo: {target: erp}
  listen:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
`, nil},
		{"a target of its own at the sandbox's address, and an account's", "dev: {data_dir: %s, sandbox_listen: \"" + listen + "\"}\n" + `
targets:
  erp: {type: http, base_url: "http://127.0.0.1:19110"}
  local: {type: http, base_url: "http://localhost:19103/"}
connections:
  demo: {target: erp}
  shop:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: erp
    account_targets: {acme: sandbox}
  zeta:
    source: {type: generic, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
    target: LOCAL
`, []string{"shop", "zeta"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := devConfig(t, c.yaml)
			if got := SandboxUsers(cfg, listen); !slices.Equal(got, c.want) {
				t.Errorf("SandboxUsers = %q, want %q", got, c.want)
			}
		})
	}
}

// A sandbox ERP listening on every interface is reached on any address of
// this machine, a loopback alias (127.0.0.2) or an interface's (a LAN
// address): the banner names the connections whose target's base_url is
// one, and the sandbox target check takes it for dev's sandbox. On one
// address only, another address of this machine is another program's:
// named by neither, and refused by the check, as a loopback address is.
func TestSandboxUsersAndTheSandboxTargetCheckTakeAnAddressOfThisMachine(t *testing.T) {
	const port = "19103"
	hosts := []string{"127.0.0.2"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && !ipnet.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, ipnet.IP.String()) // a LAN address of this machine
				break
			}
		}
	}
	if len(hosts) == 1 {
		t.Log("this machine has no interface address but loopback: only 127.0.0.2 is tried")
	}
	for _, host := range hosts {
		cfg := devConfig(t, "dev: {data_dir: %s}\ntargets:\n  sandbox: {type: http, base_url: \"http://"+net.JoinHostPort(host, port)+"\"}\n")
		for _, listen := range []string{"0.0.0.0:" + port, "[::]:" + port} {
			warning, err := CheckSandboxTarget(cfg, listen)
			if users := SandboxUsers(cfg, listen); !slices.Equal(users, []string{"demo"}) || warning != "" || err != nil {
				t.Errorf("%s, sandbox on %s: users %q, check %q, %v; want demo, no warning, no refusal", host, listen, users, warning, err)
			}
		}
		listen := "127.0.0.1:" + port
		warning, err := CheckSandboxTarget(cfg, listen)
		if users := SandboxUsers(cfg, listen); len(users) != 0 || warning != "" || err == nil || !strings.Contains(err.Error(), "on this machine but not the sandbox ERP of this dealsync dev") {
			t.Errorf("%s, sandbox on %s: users %q, check %q, %v; want none, refused as on this machine", host, listen, users, warning, err)
		}
	}
}

// syncBuffer is a bytes.Buffer that the goroutines of a dev may log to
// at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A web page that rebinds its own name to 127.0.0.1 gets nothing from
// dev's Web UI, its codec endpoint or its sandbox ERP: a request whose
// Host is not a loopback name, nor one of dev.allowed_hosts, is refused
// with 403 naming the setting; 127.0.0.1:<port> and an allowed name get
// the UI (and the endpoint, and the ERP).
func TestDevRefusesARequestForAnotherHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server: skipped with -short")
	}
	ports, err := devserver.FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t, "dev: {data_dir: %s, sandbox_listen: \""+freeAddr(t)+"\", allowed_hosts: [MyLaptop.test]}\nlog: {level: error}\n")
	cfg.Intake.Listen = "127.0.0.1:0"
	cfg.Dev.UIPort = ports[0]
	cfg.Temporal.Encryption = encryptionConfig(t, false).Temporal.Encryption
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDev(ctx, cfg, slog.New(slog.DiscardHandler), DevOptions{InMemory: true, FrontendPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.CodecURL == "" {
		t.Fatal("no codec endpoint with temporal.encryption")
	}
	uiHostPort := strings.TrimPrefix(d.UIURL, "http://")
	get := func(method, url, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(`{"payloads":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	refused := func(what string, code int, body string) {
		t.Helper()
		if code != http.StatusForbidden || !strings.Contains(body, "dev.allowed_hosts (env DEALSYNC_DEV_ALLOWED_HOSTS)") || strings.Count(strings.TrimSpace(body), "\n") > 0 {
			t.Errorf("%s for Host evil.example: %d %q; want 403 with one line naming dev.allowed_hosts", what, code, body)
		}
	}
	settings := d.UIURL + "/api/v1/settings"
	code, body := get(http.MethodGet, settings, "evil.example")
	refused("the Web UI", code, body)
	code, body = get(http.MethodGet, settings, "evil.example:"+strconv.Itoa(ports[0]))
	refused("the Web UI", code, body)
	// The UI's own server starts in a goroutine: the proxy answers 502
	// until it listens.
	for _, host := range []string{uiHostPort, "mylaptop.test:" + strconv.Itoa(ports[0]), "localhost"} {
		for {
			code, body = get(http.MethodGet, settings, host)
			if code != http.StatusBadGateway || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code != http.StatusOK || !strings.Contains(body, "DefaultNamespace") {
			t.Errorf("the Web UI for Host %s: %d %q; want its settings", host, code, body)
		}
	}

	code, body = get(http.MethodPost, d.CodecURL+"/decode", "evil.example")
	refused("the codec endpoint", code, body)
	if code, body = get(http.MethodPost, d.CodecURL+"/decode", ""); code != http.StatusOK {
		t.Errorf("the codec endpoint for its own Host: %d %q", code, body)
	}

	code, body = get(http.MethodGet, d.SandboxURL+"/invoices", "evil.example")
	refused("the sandbox ERP", code, body)
	if code, body = get(http.MethodGet, d.SandboxURL+"/invoices", ""); code != http.StatusOK {
		t.Errorf("the sandbox ERP for its own Host: %d %q", code, body)
	}
}
