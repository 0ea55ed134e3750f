// Package devserver embeds a single-process Temporal server (SQLite
// persistence) and its Web UI, the way `temporal server start-dev` does, so
// that `dealsync dev` and the end-to-end tests run against a real server with
// nothing else installed.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/labstack/echo/v4"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiapi "github.com/temporalio/ui-server/v2/server/api"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/fx"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dealsync/dealsync/internal/hostcheck"
)

// devClusterID is fixed so that a data dir keeps its identity across restarts.
const devClusterID = "5c9ad2a4-8b1e-4c55-9d0e-6f1a3c2b7d10"

// Options configure an embedded server. Zero values pick sensible defaults.
type Options struct {
	// IP to bind every listener to; default 127.0.0.1.
	IP string
	// FrontendPort is the gRPC port clients and workers dial; 0 picks a free one.
	FrontendPort int
	// UIPort serves the Web UI; 0 picks a free one, negative disables the UI.
	UIPort int
	// DatabaseFile is the SQLite file; empty keeps everything in memory.
	// Visibility records (the run list the Web UI searches) go to a second
	// file beside it, VisibilityFile(DatabaseFile): each file has its own
	// connection, so visibility writes no longer queue behind history
	// writes on SQLite's single writer. A data dir created before that
	// split keeps using the one file.
	DatabaseFile string
	// Postgres, when set, stores everything in PostgreSQL instead (the
	// tests of the production shape use it); DatabaseFile is then unused.
	Postgres *Postgres
	// Namespace to create (default "default").
	Namespace string
	// Retention of closed runs in Namespace. It is also the window within
	// which deterministic workflow IDs deduplicate deliveries.
	Retention time.Duration
	// SearchAttributes to register on the namespace, also on an existing file.
	SearchAttributes map[string]enumspb.IndexedValueType
	// DynamicConfig values added to the dev defaults.
	DynamicConfig map[string]any
	// CodecEndpoint is the URL of the payload codec endpoint the Web UI
	// decodes payloads through (a browser on the UI's page calls
	// <CodecEndpoint>/decode); empty: none, payloads are shown as stored.
	CodecEndpoint string
	// AllowedHosts are the names (or IP addresses) the Web UI answers
	// besides localhost, 127.0.0.1 and [::1] (and IP, when it is not a
	// loopback address): a request with another Host is refused with 403
	// (internal/hostcheck), so that a web page that rebinds its own name
	// to 127.0.0.1 cannot use the UI. The UI's own server listens on an
	// internal loopback port, behind a proxy on UIPort that checks Host.
	AllowedHosts []string
	// Logger receives the server's logs at LogLevel and above.
	Logger   *slog.Logger
	LogLevel slog.Level
}

// Server is a running embedded Temporal server.
type Server struct {
	opts   Options
	server temporal.Server
	ui     *uiserver.Server
	// uiProxy serves UIPort: the Host check, in front of ui.
	uiProxy *http.Server
	// frontendHTTP is the address of the frontend's HTTP API.
	frontendHTTP string
	// uiBackend is the address of the UI's own server, behind uiProxy.
	uiBackend string
	level     *atomic.Int64
	stopping  *atomic.Bool
	frontend  string
	uiAddr    string
	stopOnce  sync.Once
	// releaseUI lets the Web UI's internal port go, once its server has
	// stopped.
	releaseUI func()
	// files are the SQLite files of a file-backed server, written back
	// from their logs at Stop.
	files []string
}

// FrontendAddress is host:port of the gRPC frontend.
func (s *Server) FrontendAddress() string { return s.frontend }

// UIAddress is host:port of the Web UI, or "" when disabled.
func (s *Server) UIAddress() string { return s.uiAddr }

// Namespace is the namespace the server was started with.
func (s *Server) Namespace() string { return s.opts.Namespace }

// Start builds and starts the server, creating schema, namespace and search
// attributes as needed. It returns once the frontend answers.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.LogLevel == 0 {
		o.LogLevel = slog.LevelWarn
	}
	level := &atomic.Int64{}
	level.Store(int64(o.LogLevel))
	stopping := &atomic.Bool{}

	sqlConfigs := o.sqlConfigs
	if o.Postgres != nil {
		sqlConfigs = o.postgresConfigs
	}
	sqlConf, visConf, err := sqlConfigs()
	if err != nil {
		return nil, err
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.FrontendPersistenceMaxQPS.Key():                    10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                     45000,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Mutable states kept in memory. Against 8096: the same
		// throughput in 2,000-deal bursts (and 1,000-deal ones with
		// external_calls: activity) and 30-40 MB less peak RSS
		// (docs/benchmarks.md).
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 1024,
		// No client of this server stores payloads externally (dealsync
		// configures no external storage), so the history service need
		// not walk every event's payloads to add up their external sizes:
		// 0.3 ms of CPU per invoice in the benchmark (docs/benchmarks.md).
		dynamicconfig.ExternalPayloadsEnabled.Key(): false,
		// The frontend's HTTP API (on a picked port of o.IP, no
		// authentication) answers, like the Web UI, only a loopback
		// Host: a web page that rebinds its name to 127.0.0.1 and finds
		// the port must not drive it.
		dynamicconfig.FrontendHTTPAllowedHosts.Key(): httpAllowedHosts(o.IP),
	}
	for k, v := range o.DynamicConfig {
		dyn[dynamicconfig.MakeKey(k)] = v
	}
	dynClient := &devDynamicConfig{static: dyn}
	dynClient.forceSARefreshUntil.Store(math.MaxInt64) // until the namespace is finished
	// Every port the server binds is picked free or given, and held until
	// the server has bound it (see holdFreePorts: on Linux no other
	// server, test or outgoing connection is given it in between). Where
	// ports cannot be held, another process can take one before the
	// server binds it; the server is then built again on other ports
	// (nothing of it has started: see startTemporal), unless the
	// frontend's port was given (see below).
	if o.UIPort > 0 && o.UIPort == o.FrontendPort {
		// Each is free alone; the frontend would take it, and the Web UI's
		// server would exit the process.
		return nil, fmt.Errorf("web UI port (dev.ui_port) and frontend port (dev.frontend_port) are both %d: give them different ports", o.UIPort)
	}
	// Given ports are checked first. The Web UI's server exits the process
	// when it cannot bind its port (its logger's Fatal): a taken one must
	// be an error, not the end of everything. The UI's is held until the
	// server stops (the UI's server binds it in a goroutine of its own).
	releaseUI, releaseFrontend := func() {}, func() {}
	started := false
	defer func() {
		releaseFrontend()
		if !started {
			releaseUI()
		}
	}()
	if o.UIPort > 0 {
		if releaseUI, err = holdPort(o.IP, o.UIPort); err != nil {
			releaseUI = func() {}
			return nil, fmt.Errorf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) is not free: %w", o.UIPort, err)
		}
	}
	if o.FrontendPort > 0 {
		if releaseFrontend, err = holdPort(o.IP, o.FrontendPort); err != nil {
			releaseFrontend = func() {}
			return nil, fmt.Errorf("frontend port %d (dev.frontend_port, env DEALSYNC_DEV_FRONTEND_PORT) is not free: %w", o.FrontendPort, err)
		}
	}
	var srv temporal.Server
	frontendPort, uiPort := o.FrontendPort, o.UIPort
	var httpPort int
	for attempt := 1; ; attempt++ {
		// frontend HTTP, history, matching, worker; then the frontend's
		// and the UI's when they are to be picked.
		ports, releases, err := holdFreePorts(o.IP, 6)
		if err != nil {
			return nil, err
		}
		httpPort = ports[0]
		if o.FrontendPort == 0 {
			frontendPort = ports[4]
		}
		if o.UIPort == 0 {
			releaseUI()
			uiPort, releaseUI = ports[5], releases[5]
		} else {
			releases[5]()
		}
		withPort := o
		withPort.FrontendPort = frontendPort
		conf, err := withPort.serverConfig(sqlConf, visConf, ports[:4])
		if err != nil {
			releaseAll(releases[:5])
			return nil, err
		}
		hosts := map[primitives.ServiceName]static.Hosts{}
		for name, svc := range conf.Services {
			hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
		}
		if beforeTemporalBuild != nil {
			beforeTemporalBuild(attempt, conf)
		}
		fatal := &fatalLog{}
		srv, err = startTemporal(fatal, func() { releaseAll(releases[:5]); releaseFrontend() }, fx.Options(),
			temporal.WithConfig(conf),
			temporal.ForServices(temporal.DefaultServices),
			temporal.WithStaticHosts(hosts),
			temporal.WithLogger(slogLogger{log: o.Logger, level: level, fatal: fatal, stopping: stopping}),
			temporal.WithDynamicConfigClient(dynClient),
		)
		if err == nil {
			break
		}
		var failed *buildError
		port, taken := takenPort(err)
		if !errors.As(err, &failed) || !taken {
			// Not a port taken meanwhile, or the server had started
			// services (they are stopped): nothing to retry.
			return nil, err
		}
		if port == o.FrontendPort {
			return nil, fmt.Errorf("frontend port %d (dev.frontend_port, env DEALSYNC_DEV_FRONTEND_PORT) was taken by another process while the server started: %w", port, err)
		}
		service := map[int]string{frontendPort: "frontend", ports[0]: "frontend's HTTP API", ports[1]: "history", ports[2]: "matching", ports[3]: "worker"}[port]
		what := fmt.Sprintf("port %d, picked for the temporal %s service, was taken by another process before the server bound it", port, service)
		if o.FrontendPort != 0 {
			// A failed build keeps the listeners it made until the process
			// ends, the given frontend port's among them: another build in
			// this process cannot bind it.
			return nil, fmt.Errorf("%s; start again: other ports are picked (%w)", what, err)
		}
		if attempt == startAttempts {
			return nil, fmt.Errorf("%s, %d times in a row; start again: other ports are picked (%w)", what, attempt, err)
		}
		o.Logger.Warn("temporal server: "+what+"; building it again on other ports", "attempt", attempt, "error", err)
	}
	givenUI := o.UIPort > 0
	o.FrontendPort, o.UIPort = frontendPort, uiPort
	s := &Server{opts: o, level: level, stopping: stopping, frontend: net.JoinHostPort(o.IP, strconv.Itoa(frontendPort)), frontendHTTP: net.JoinHostPort(o.IP, strconv.Itoa(httpPort))}
	if o.DatabaseFile != "" && o.Postgres == nil {
		s.files = slices.Compact([]string{sqlConf.DatabaseName, visConf.DatabaseName})
	}
	s.server = srv
	if afterTemporalStart != nil {
		afterTemporalStart()
	}
	if o.UIPort >= 0 {
		// The server took seconds to start: the UI's port is checked
		// again just before its server binds it (a picked one is picked
		// afresh), for where it could not be held, and for a program that
		// bound that very port meanwhile: only a bind in between can
		// still exit the process.
		if o.UIPort, err = uiPortStillFree(o.IP, o.UIPort, givenUI); err != nil {
			s.Stop()
			return nil, err
		}
		// The proxy's listener holds the port from here on.
		uiL, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)))
		releaseUI()
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) was taken while the server started: %w", o.UIPort, err)
		}
		s.opts.UIPort = o.UIPort
		s.uiAddr = net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort))
		// The UI's own server, on an internal loopback port, held as the
		// services' are until it is bound (its server exits the process
		// when it cannot bind).
		internal, internalReleases, err := holdFreePorts(loopback, 1)
		if err != nil {
			uiL.Close()
			s.Stop()
			return nil, err
		}
		backendPort, err := uiPortStillFree(loopback, internal[0], false)
		if err != nil {
			internalReleases[0]()
			uiL.Close()
			s.Stop()
			return nil, err
		}
		if backendPort != internal[0] {
			internalReleases[0]()
		} else {
			s.releaseUI = internalReleases[0]
		}
		s.uiProxy = uiProxy(uiL, net.JoinHostPort(loopback, strconv.Itoa(backendPort)), o)
		s.uiBackend = net.JoinHostPort(loopback, strconv.Itoa(backendPort))
		s.ui = uiserver.NewServer(apiHostCheck(uiHostCheck(o)), uiserveroptions.WithConfigProvider(&uiconfig.Config{
			Host:                loopback,
			Port:                backendPort,
			TemporalGRPCAddress: s.frontend,
			EnableUI:            true,
			DefaultNamespace:    o.Namespace,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			// A run started by hand from the UI ("Start Workflow Like
			// This One") has no memo, the old run's search attributes
			// and the deal's idempotency keys (docs/operations.md): the
			// button is not offered. Nor is a news feed fetched from the
			// internet with the cluster's id on every page.
			StartWorkflowDisabled: true,
			DisableNewsFetch:      true,
			Codec:                 uiconfig.Codec{Endpoint: o.CodecEndpoint},
		}))
		go func() {
			if err := s.ui.Start(); err != nil && !errors.Is(err, context.Canceled) {
				o.Logger.Error("temporal web UI stopped", "error", err)
			}
		}()
	}
	added, err := s.finishNamespace(ctx)
	if err != nil {
		s.Stop()
		return nil, err
	}
	if added {
		// A service that cached the search attributes before they were
		// added keeps that cache for up to a minute: refresh on every
		// read until then.
		dynClient.forceSARefreshUntil.Store(time.Now().Add(saCacheRefreshInterval).UnixNano())
	} else {
		dynClient.forceSARefreshUntil.Store(0)
	}
	started = true
	return s, nil
}

// loopback is where the Web UI's own server listens, behind its proxy.
const loopback = "127.0.0.1"

// uiProxy serves the Web UI on l: the requests whose Host the UI answers
// (Options.AllowedHosts) are passed to the UI's own server at backend,
// unchanged (their Host too); the others are refused with 403. Answers
// are passed on as they come (FlushInterval -1), and an upgraded
// connection (a websocket) is relayed as such. A request the browser
// gave up is not logged; one the UI's server did not answer is, and
// gets 502.
func uiProxy(l net.Listener, backend string, o Options) *http.Server {
	target := &url.URL{Scheme: "http", Host: backend}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				// The browser gave up the request (a page left while
				// its long poll of a run's history waited): no one to
				// answer, nothing wrong.
				return
			}
			o.Logger.Warn("temporal web UI's proxy: Temporal's UI server did not answer", "path", r.URL.Path, "error", err)
			http.Error(w, "dealsync dev's Web UI: Temporal's UI server did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
	srv := &http.Server{Handler: uiHostCheck(o).Handler(proxy), ReadHeaderTimeout: 10 * time.Second, ErrorLog: proxy.ErrorLog}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("temporal web UI's proxy stopped", "error", err)
		}
	}()
	return srv
}

// uiHostCheck is the Host check of the Web UI: its proxy's, and its own
// server's for the API (apiHostCheck).
func uiHostCheck(o Options) *hostcheck.Checker {
	return hostcheck.New("the Temporal Web UI of dealsync dev", "dev.allowed_hosts (env DEALSYNC_DEV_ALLOWED_HOSTS)", o.IP, o.AllowedHosts, nil)
}

// apiHostCheck has the UI's own server refuse the API requests (runs
// listed, terminated, reset, signalled) check refuses: its internal port
// has no proxy in front, and a web page that rebinds its name to
// 127.0.0.1 can find it by trying ports.
func apiHostCheck(check *hostcheck.Checker) uiserveroptions.ServerOption {
	return uiserveroptions.WithAPIMiddleware([]uiapi.Middleware{func(echo.Context) runtime.ServeMuxOption {
		return runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
				if !check.Allows(r.Host) {
					http.Error(w, check.Refusal(r.Host), http.StatusForbidden)
					return
				}
				next(w, r, params)
			}
		})
	}})
}

// httpAllowedHosts are the Host headers the frontend's HTTP API (on
// ip) answers, frontend.httpAllowedHosts: ip and localhost, with a port
// (its port is never 80). No more than two: Temporal joins the patterns
// into ^(p1)|(p2)|…$, which anchors the first at the start only, the
// last at the end only and any other nowhere, so a Host beginning with
// "ip:" or ending with "localhost:<port>" passes, which no rebound name
// can be (and dev.allowed_hosts, the UI's, is not added).
func httpAllowedHosts(ip string) []string {
	return []string{net.JoinHostPort(ip, "*"), "localhost:*"}
}

// afterTemporalStart, when set (tests), runs once the Temporal server has
// started, before the Web UI's port is checked again.
var afterTemporalStart func()

// uiPortStillFree returns port if it can be bound on ip now. A port that
// was given is an error when taken; a picked one is replaced by another
// free port.
func uiPortStillFree(ip string, port int, given bool) (int, error) {
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			_ = l.Close()
			return port, nil
		}
		if given {
			return 0, fmt.Errorf("web UI port %d (dev.ui_port, env DEALSYNC_DEV_UI_PORT) was taken while the server started: %w", port, err)
		}
		if attempt == startAttempts {
			return 0, fmt.Errorf("finding a free port for the web UI: %w", err)
		}
		ports, err := FreePorts(ip, 1)
		if err != nil {
			return 0, err
		}
		port = ports[0]
	}
}

// startAttempts bounds how often Start builds the server on fresh ports.
const startAttempts = 3

// beforeTemporalBuild, when set (tests), runs before each build of the
// Temporal server, with its config.
var beforeTemporalBuild func(attempt int, conf *config.Config)

// buildError is a failure to build the server: it had started nothing.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

// startTemporal builds and starts a server (extra: more options of its
// fx app, for tests), calling built once it is built, when its services
// have bound their ports (or failed to). A server that fails to start is
// stopped: nothing of it runs when an error is returned, but what a
// failed build leaves (below). A failed build is a *buildError.
//
// The server's services bind their ports while it is built
// (temporal.NewServer), in this goroutine. A port that cannot be bound is
// a Fatal log (fatal keeps it) after which the service goes on with no
// listener: the frontend then panics at once (recovered here), while the
// history, matching and worker services would crash the process with a
// nil listener in a goroutine of their own once started. So a Fatal or
// a panic while building is a failed build, and the server is not
// started. A failed build has started no service (none runs on the
// database; a retry may use it), but what it built stays: the listeners
// it made (bound, never served) and a few dozen idle goroutines, until
// the process ends. The server offers no way to close them.
//
// Starting (srv.Start) runs the services' start in goroutines of the
// server's, where a panic cannot be recovered. When the start fails, or
// logs a Fatal, some services may run: the server starts them in turn and
// stops none on failure, and its Stop stops nothing after a failed start
// (its start hook failed), so the started ones are stopped here through
// the server's ServerImpl (temporal.NewServer is NewServerFx with
// TopLevelModule; this adds the Populate that reaches it). A service
// whose start outlasts the server's start timeout (a minute here) is the
// one case left: its start goes on in the server's goroutine, and may
// leave it running after it was stopped.
func startTemporal(fatal *fatalLog, built func(), extra fx.Option, opts ...temporal.ServerOption) (temporal.Server, error) {
	var impl *temporal.ServerImpl
	// ownStarted is set by a start hook after the server's own: once it
	// ran, a failure of a later hook rolls the server back (stopping it).
	var ownStarted atomic.Bool
	marker := fx.Invoke(func(lc fx.Lifecycle) {
		lc.Append(fx.Hook{OnStart: func(context.Context) error { ownStarted.Store(true); return nil }})
	})
	srv, err := buildTemporal(fx.Options(temporal.TopLevelModule, marker, extra, fx.Populate(&impl)), opts...)
	built()
	if ferr := fatal.err(); ferr != nil {
		// It explains the error or panic that followed, if any.
		if err != nil {
			ferr = fmt.Errorf("%w (then: %v)", ferr, err)
		}
		err = ferr
	}
	if err != nil {
		return nil, &buildError{fmt.Errorf("building temporal server: %w", err)}
	}
	if err := srv.Start(); err != nil {
		if ownStarted.Load() {
			// A later hook failed: the rollback stopped the server.
			return nil, fmt.Errorf("starting temporal server (the services it had started are stopped): %w", err)
		}
		if serr := stopStarted(impl); serr != nil {
			return nil, fmt.Errorf("starting temporal server: %w (and stopping the services it had started: %v)", err, serr)
		}
		return nil, fmt.Errorf("starting temporal server (the services it had started are stopped): %w", err)
	}
	if err := fatal.err(); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("starting temporal server (stopped): %w", err)
	}
	return srv, nil
}

// buildTemporal builds a server, turning a panic while it does into an
// error.
func buildTemporal(module fx.Option, opts ...temporal.ServerOption) (srv temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			srv, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	s, err := temporal.NewServerFx(module, opts...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// stopStarted stops the services of a server whose own start hook failed
// (it starts them in turn and stops none on failure, and fx's rollback
// does not stop it); a service that had not started is left as it is. A
// server whose own start succeeded is not given here: a later hook's
// failure rolled it back, and a second Stop would panic on its closed
// stop channel.
func stopStarted(impl *temporal.ServerImpl) (err error) {
	if impl == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return impl.Stop(context.Background())
}

// saCacheRefreshInterval is a little more than how long the server's
// services keep their search-attribute cache (a minute).
const saCacheRefreshInterval = 61 * time.Second

// devDynamicConfig is the server's dynamic config: fixed values, except
// that search attributes are re-read from the database on every read
// while they may be changing (start-up, and a minute after registering
// new ones on an existing database). Forcing it for good would cost a
// database read per workflow start and visibility write.
type devDynamicConfig struct {
	static              dynamicconfig.StaticClient
	forceSARefreshUntil atomic.Int64 // unix nanoseconds
}

var (
	forceSARefreshKey = dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key()
	// The server caches conversions per returned slice: return the same ones.
	forceSARefreshOn  = []dynamicconfig.ConstrainedValue{{Value: true}}
	forceSARefreshOff = []dynamicconfig.ConstrainedValue{{Value: false}}
)

func (d *devDynamicConfig) GetValue(key dynamicconfig.Key) []dynamicconfig.ConstrainedValue {
	if key == forceSARefreshKey {
		if time.Now().UnixNano() < d.forceSARefreshUntil.Load() {
			return forceSARefreshOn
		}
		return forceSARefreshOff
	}
	return d.static.GetValue(key)
}

// finishNamespace registers search attributes that an existing database
// does not have yet and applies the retention. added says whether it
// registered any.
func (s *Server) finishNamespace(ctx context.Context) (added bool, err error) {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.frontend, Namespace: s.opts.Namespace, Logger: quietSDKLogger()})
	if err != nil {
		return false, fmt.Errorf("dialing embedded frontend: %w", err)
	}
	defer c.Close()
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.opts.Namespace})
	if err != nil {
		return false, fmt.Errorf("listing search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range s.opts.SearchAttributes {
		if _, ok := existing.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) > 0 {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        s.opts.Namespace,
			SearchAttributes: missing,
		})
		if err != nil {
			return false, fmt.Errorf("registering search attributes: %w", err)
		}
	}
	if s.opts.Retention > 0 {
		_, err := c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: s.opts.Namespace,
			Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(s.opts.Retention)},
		})
		if err != nil {
			return len(missing) > 0, fmt.Errorf("setting namespace retention: %w", err)
		}
	}
	return len(missing) > 0, nil
}

// Stop shuts the UI and the server down. Logs below error are silenced first:
// a stopping server logs a burst of harmless poll warnings, and the errors
// in harmlessWhenStopping.
func (s *Server) Stop() { s.stopOnce.Do(s.stop) }

func (s *Server) stop() {
	s.stopping.Store(true)
	s.level.Store(int64(slog.LevelError))
	if s.uiProxy != nil {
		_ = s.uiProxy.Close()
	}
	if s.ui != nil {
		s.ui.Stop()
	}
	if s.server != nil {
		_ = s.server.Stop()
	}
	if s.releaseUI != nil {
		s.releaseUI()
	}
	// The server's SQLite plugin never closes its connection, so SQLite
	// does not write its log (temporal.db-wal) back into the database at
	// the end: the runs would stay in the -wal file, which a copy of the
	// *.db files alone leaves behind. A checkpoint from a connection of
	// our own writes them back and empties the log.
	for _, file := range s.files {
		if err := checkpoint(file); err != nil {
			s.opts.Logger.Warn("temporal: writing the database's log back into it failed; keep its -wal file beside it", "file", file, "error", err)
		}
	}
}

// VisibilityFile is where the visibility store of a file-backed server
// lives: "temporal.db" → "temporal-visibility.db".
func VisibilityFile(databaseFile string) string {
	ext := filepath.Ext(databaseFile)
	return strings.TrimSuffix(databaseFile, ext) + "-visibility" + ext
}

// sqlConfigs builds the SQLite configs of the default store and the
// visibility store (the same one in memory and for a legacy single-file
// data dir), creating schemas and the namespace as needed.
func (o Options) sqlConfigs() (main, visibility *config.SQL, err error) {
	if o.DatabaseFile == "" {
		main = &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{
			"mode": "memory", "cache": "shared",
		}}
		main.DatabaseName = "dealsync-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		main.MaxConns, main.MaxIdleConns = 1, 1
		// The sqlite plugin creates the schema of an in-memory database itself.
		return main, main, o.createNamespace(main)
	}
	// The SQLite driver takes the path into a file: URI: a #, ? or % in
	// it would be read as the URI's, and the database made elsewhere.
	if strings.ContainsAny(o.DatabaseFile, "#?%") {
		return nil, nil, fmt.Errorf("the data dir %s has a #, ? or %% in its path, which the SQLite driver reads as a URI's; choose another (dev.data_dir, --data-dir)", filepath.Dir(o.DatabaseFile))
	}
	// The runs hold deals' payloads (names, e-mail addresses, amounts):
	// the data dir is the user's own.
	if err := os.MkdirAll(filepath.Dir(o.DatabaseFile), 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating data dir: %w", err)
	}
	mainExisted := fileExists(o.DatabaseFile)
	visFile := VisibilityFile(o.DatabaseFile)
	main = fileSQLConfig(o.DatabaseFile)
	visibility = main
	if !mainExisted || fileExists(visFile) {
		visibility = fileSQLConfig(visFile)
	}
	// The plugin has no call that creates the visibility tables alone: the
	// execution tables of the visibility file stay empty.
	for _, c := range []*config.SQL{main, visibility} {
		if !fileExists(c.DatabaseName) {
			if err := sqliteschema.SetupSchema(c); err != nil {
				return nil, nil, fmt.Errorf("creating temporal schema in %s: %w", c.DatabaseName, err)
			}
		}
	}
	if err := dropUnusedVisibilityIndexes(visibility.DatabaseName); err != nil {
		return nil, nil, err
	}
	ownerOnly(o.Logger, main.DatabaseName, visibility.DatabaseName)
	return main, visibility, o.createNamespace(main)
}

// ownerOnly makes the SQLite databases, and their WAL and shared-memory
// files, readable and writable by their owner only (0600). The SQLite
// driver creates them with the umask's mode (0644 commonly), and the 0700
// of the data dir does not hold for a dir that existed already (a
// --data-dir given, made by a checkout or by an earlier release): the
// runs, deals' payloads among them, would be readable by every user of
// the machine. SQLite gives the WAL and shared-memory files it creates
// later the database's mode. A file that is not there, or is its owner's
// only already, is let be. A file whose mode cannot be changed (another
// user's in a shared data dir, or on a filesystem without Unix modes)
// is warned of on logger, and the server starts on it as before: SQLite
// reads and writes it if its mode lets it.
func ownerOnly(logger *slog.Logger, databases ...string) {
	for _, db := range databases {
		for _, f := range []string{db, db + "-wal", db + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil || fi.Mode().Perm()&0o077 == 0 {
				continue
			}
			if err := chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) && logger != nil {
				logger.Warn("temporal: cannot make a database file readable by its owner only: other users of this machine may read the runs in it; make the files yours (their owner is who runs dealsync dev), or keep the data dir where only you reach it (mode 0700)",
					"file", f, "mode", fi.Mode().Perm().String(), "error", err)
			}
		}
	}
}

// chmod is os.Chmod; a test makes it fail as a file of another user would.
var chmod = os.Chmod

// fileSQLConfig is a file-backed SQLite store with its own connection
// (SQLite has one writer; the plugin's store is not made for more).
// WAL makes a commit an append to the log, with no rollback journal to
// write and delete; synchronous=normal is durable across a process crash
// (the WAL is fsynced at checkpoints), the setting SQLite recommends with
// WAL. SQLite's default page cache is kept: reads that miss it were under
// 1 % of the CPU in the benchmark's profile (docs/benchmarks.md).
func fileSQLConfig(file string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: file,
		MaxConns:     1,
		MaxIdleConns: 1,
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
}

func (o Options) createNamespace(conf *config.SQL) error {
	ns, err := sqliteschema.NewNamespaceConfig("active", o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// serverConfig is the server's config; ports are the HTTP port of the
// frontend, then the gRPC ports of history, matching and worker.
func (o Options) serverConfig(sqlConf, visConf *config.SQL, ports []int) (*config.Config, error) {
	httpPort := ports[0]
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.IP
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-visibility"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{
		"sqlite-default":    {SQL: sqlConf},
		"sqlite-visibility": {SQL: visConf},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             net.JoinHostPort(o.IP, strconv.Itoa(o.FrontendPort)),
				HTTPAddress:            net.JoinHostPort(o.IP, strconv.Itoa(httpPort)),
				ClusterID:              devClusterID,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for i, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = o.IP
		if name == "frontend" {
			svc.RPC.GRPCPort = o.FrontendPort
			svc.RPC.HTTPPort = httpPort
		} else {
			svc.RPC.GRPCPort = ports[i]
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort(o.IP, strconv.Itoa(o.FrontendPort))
	return &conf, nil
}

// FreeAddrs is FreePorts as host:port addresses.
func FreeAddrs(ip string, n int) ([]string, error) {
	ports, err := FreePorts(ip, n)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, n)
	for i, p := range ports {
		addrs[i] = net.JoinHostPort(ip, strconv.Itoa(p))
	}
	return addrs, nil
}

// FreePorts returns n distinct free TCP ports on ip (for servers that need
// their port before they bind it). Each listener stays open until all are
// picked: closed one at a time, the system may hand the same port out
// twice. Another process can still take one before it is bound.
func FreePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
