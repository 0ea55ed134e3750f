package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"go.uber.org/fx"
)

// servicePorts are the ports of conf's services by name.
func servicePorts(conf *config.Config) map[string]int {
	return map[string]int{
		"frontend":            conf.Services["frontend"].RPC.GRPCPort,
		"frontend's HTTP API": conf.Services["frontend"].RPC.HTTPPort,
		"history":             conf.Services["history"].RPC.GRPCPort,
		"matching":            conf.Services["matching"].RPC.GRPCPort,
		"worker":              conf.Services["worker"].RPC.GRPCPort,
	}
}

// recordingHandler keeps the messages logged at Warn and above.
type recordingHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) logged(part string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

// A port of any of the server's services that another process takes
// before the server binds it makes Start build the server again on
// other ports, and say so; it does not crash the process (the history,
// matching and worker services did: a nil listener served in a
// goroutine of their own).
func TestPortTakenBeforeTheServerBindsItIsPickedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded Temporal servers")
	}
	for _, service := range []string{"history", "matching", "worker", "frontend", "frontend's HTTP API"} {
		t.Run(service, func(t *testing.T) {
			var builds int
			var taken net.Listener
			beforeTemporalBuild = func(attempt int, conf *config.Config) {
				builds = attempt
				if attempt > 1 {
					return
				}
				// Where picked ports are held, the hold keeps no
				// listener of this process out, as it keeps none of the
				// server's out.
				var err error
				if taken, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(servicePorts(conf)[service]))); err != nil {
					t.Errorf("taking the %s port: %v", service, err)
				}
			}
			defer func() {
				beforeTemporalBuild = nil
				if taken != nil {
					taken.Close()
				}
			}()
			logs := &recordingHandler{}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s, err := Start(ctx, Options{UIPort: -1, Logger: slog.New(logs), LogLevel: slog.LevelWarn})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer s.Stop()
			if builds != 2 {
				t.Errorf("built %d times, want 2", builds)
			}
			if taken == nil {
				t.Fatal("the port was not taken")
			}
			port := taken.Addr().(*net.TCPAddr).Port
			want := fmt.Sprintf("port %d, picked for the temporal %s service, was taken by another process before the server bound it; building it again on other ports", port, service)
			if !logs.logged(want) {
				t.Errorf("no warning %q in %q", want, logs.msgs)
			}
		})
	}
}

// With the frontend's port given, a picked port taken before the server
// binds it is an error naming it, which says that starting again picks
// others: the failed build keeps the frontend's port bound in this
// process.
func TestPortTakenBeforeTheServerBindsItWithAGivenFrontendPortIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an embedded Temporal server")
	}
	frontend, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	var taken net.Listener
	beforeTemporalBuild = func(attempt int, conf *config.Config) {
		if taken, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(servicePorts(conf)["history"]))); err != nil {
			t.Errorf("taking the history port: %v", err)
		}
	}
	defer func() {
		beforeTemporalBuild = nil
		if taken != nil {
			taken.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{FrontendPort: frontend[0], UIPort: -1, Logger: slog.New(slog.DiscardHandler), LogLevel: slog.LevelError})
	if err == nil {
		s.Stop()
		t.Fatal("started with the history port taken")
	}
	t.Logf("error: %v", err)
	if taken == nil {
		t.Fatal("the port was not taken")
	}
	want := fmt.Sprintf("port %d, picked for the temporal history service, was taken by another process before the server bound it; start again: other ports are picked", taken.Addr().(*net.TCPAddr).Port)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// A server whose start fails is stopped: the services it had started
// serve nothing after startTemporal returns. (The server starts its
// services in turn and stops none when one fails, and its own Stop does
// nothing after a failed start.) The failure is a service of its own
// that fails to start after the frontend, or a start hook after the
// server's (whose rollback stops the server itself first: stopping it
// again must be harmless).
func TestFailedStartStopsTheServicesItStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts embedded Temporal servers")
	}
	injected := errors.New("injected start failure")
	failingHook := func(lc fx.Lifecycle) {
		lc.Append(fx.Hook{OnStart: func(context.Context) error { return injected }})
	}
	for _, c := range []struct {
		name  string
		extra fx.Option
	}{
		{"a service", fx.Provide(func() temporal.ServicesGroupOut {
			app := fx.New(fx.NopLogger, fx.Invoke(failingHook))
			// Started with the worker, after the others.
			return temporal.NewService(app, primitives.WorkerService, log.NewNoopLogger())
		})},
		{"a hook after the server's", fx.Invoke(failingHook)},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{IP: "127.0.0.1", Namespace: "default", Logger: slog.New(slog.DiscardHandler), LogLevel: slog.LevelError}
			sqlConf, visConf, err := o.sqlConfigs()
			if err != nil {
				t.Fatal(err)
			}
			ports, err := FreePorts(o.IP, 5)
			if err != nil {
				t.Fatal(err)
			}
			o.FrontendPort = ports[4]
			conf, err := o.serverConfig(sqlConf, visConf, ports[:4])
			if err != nil {
				t.Fatal(err)
			}
			hosts := map[primitives.ServiceName]static.Hosts{}
			for name, svc := range conf.Services {
				hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
			}
			level := &atomic.Int64{}
			level.Store(int64(o.LogLevel))
			fatal := &fatalLog{}
			srv, err := startTemporal(fatal, func() {}, c.extra,
				temporal.WithConfig(conf),
				temporal.ForServices(temporal.DefaultServices),
				temporal.WithStaticHosts(hosts),
				temporal.WithLogger(slogLogger{log: o.Logger, level: level, fatal: fatal}),
				temporal.WithDynamicConfigClient(&devDynamicConfig{}),
			)
			if err == nil {
				srv.Stop()
				t.Fatal("started with a start hook that fails")
			}
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), "(the services it had started are stopped)") {
				t.Fatalf("error %v, want the injected one, saying the started services are stopped", err)
			}
			for service, port := range servicePorts(conf) {
				if c, err := net.Dial("tcp", net.JoinHostPort(o.IP, strconv.Itoa(port))); err == nil {
					c.Close()
					t.Errorf("the %s service still serves port %d after the failed start", service, port)
				}
			}
		})
	}
}
