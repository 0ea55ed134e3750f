package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/testlog"
)

// healthClient is a Temporal client whose frontend health check answers
// as told.
type healthClient struct {
	client.Client
	down atomic.Bool
}

func (c *healthClient) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	if c.down.Load() {
		return nil, errors.New("dial tcp 10.0.0.7:7233: connect: connection refused")
	}
	return &client.CheckHealthResponse{}, nil
}

// A worker's metrics listener answers its health checks: /healthz while
// the process runs, /readyz only while the worker polls and the frontend
// answers, saying why not otherwise (without the frontend's address).
func TestWorkerHealthChecks(t *testing.T) {
	c := &healthClient{}
	var logged testlog.Buffer
	health := NewWorkerHealth(slog.New(slog.NewTextHandler(&logged, nil)))
	cfg := &config.Config{Metrics: config.Metrics{Listen: "127.0.0.1:0"}}
	addr, err := ServeMetrics(t.Context(), cfg, slog.New(slog.DiscardHandler), health)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	check := func(step, path string, wantCode int, wantStatus string) {
		t.Helper()
		code, body := get(path)
		if code != wantCode || !strings.Contains(body, `"status":"`+wantStatus+`"`) {
			t.Errorf("%s: GET %s = %d %s, want %d with status %q", step, path, code, body, wantCode, wantStatus)
		}
		if strings.Contains(body, "10.0.0.7") {
			t.Errorf("%s: GET %s names the frontend's address: %s", step, path, body)
		}
	}

	check("before start", "/healthz", 200, "ok")
	check("before start", "/readyz", 503, "starting")
	health.Started(c)
	check("polling", "/readyz", 200, "ready")
	c.down.Store(true)
	check("frontend away", "/readyz", 503, "unavailable")
	check("frontend away", "/readyz", 503, "unavailable")
	check("frontend away", "/healthz", 200, "ok")
	// A probe asks every few seconds: the outage is logged once a minute.
	if n := strings.Count(logged.String(), "not ready: the Temporal frontend does not answer"); n != 1 {
		t.Errorf("%d warnings for two failed probes, want 1:\n%s", n, logged.String())
	}
	c.down.Store(false)
	check("frontend back", "/readyz", 200, "ready")
	health.Stopping()
	check("stopping", "/readyz", 503, "stopping")
	if code, _ := get("/metrics"); code != 200 {
		t.Errorf("GET /metrics = %d beside the health checks", code)
	}
}

// waitLogged waits until logged holds want: at most 30 s (a bound on a
// failing test, not a timing assertion: the checks come every
// millisecond), less when the test's deadline is nearer.
func waitLogged(t *testing.T, logged *testlog.Buffer, want string) {
	t.Helper()
	giveUp := time.Now().Add(30 * time.Second)
	if dl, ok := t.Deadline(); ok && dl.Add(-5*time.Second).Before(giveUp) {
		giveUp = dl.Add(-5 * time.Second)
	}
	for !strings.Contains(logged.String(), want) {
		if time.Now().After(giveUp) {
			t.Fatalf("never logged %q:\n%s", want, logged.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// A ReadinessInterval of 0 or less (a test's, a mistake) had Watch check
// without pause; it is taken as the default.
func TestReadinessIntervalAtOrBelowZero(t *testing.T) {
	old := ReadinessInterval
	t.Cleanup(func() { ReadinessInterval = old })
	for _, d := range []time.Duration{0, -time.Second} {
		ReadinessInterval = d
		if got := NewWorkerHealth(slog.New(slog.DiscardHandler)).interval; got != defaultReadinessInterval {
			t.Errorf("ReadinessInterval %v: a worker checks every %v, want %v", d, got, defaultReadinessInterval)
		}
		if got := readinessInterval(); got != defaultReadinessInterval {
			t.Errorf("ReadinessInterval %v: an intake checks every %v, want %v", d, got, defaultReadinessInterval)
		}
	}
}

// Journey: a worker nobody probed (or without metrics.listen) logged
// nothing of a 20 s Temporal outage. Watch checks the frontend on its
// own while the worker runs: the outage's start and end are logged with
// no probe at all.
func TestWorkerHealthWatchLogsAnOutageWithoutAProbe(t *testing.T) {
	c := &healthClient{}
	c.down.Store(true)
	var logged testlog.Buffer
	health := NewWorkerHealth(slog.New(slog.NewTextHandler(&logged, nil)))
	health.interval = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); health.Watch(ctx) }()
	defer func() { cancel(); <-done }()
	health.Started(c)
	waitLogged(t, &logged, "not ready: the Temporal frontend does not answer")
	c.down.Store(false)
	waitLogged(t, &logged, "ready: the Temporal frontend answers again")
	if n := strings.Count(logged.String(), "not ready: the Temporal frontend does not answer"); n != 1 {
		t.Errorf("%d warnings for one outage checked every millisecond, want 1:\n%s", n, logged.String())
	}
}

// An intake served by ServeIntake watches its readiness: an outage of the
// frontend is logged with no probe of /readyz.
func TestServeIntakeLogsAnOutageWithoutAProbe(t *testing.T) {
	old := ReadinessInterval
	ReadinessInterval = time.Millisecond
	t.Cleanup(func() { ReadinessInterval = old })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logged testlog.Buffer
	h := intake.New(intake.Options{Connections: noConnections{}, Starter: unavailableStarter{}, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeIntake(ctx, l, h, 0, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()
	waitLogged(t, &logged, "not ready: the Temporal frontend does not answer")
}

// unavailableStarter's frontend does not answer.
type unavailableStarter struct{ readyStarter }

func (unavailableStarter) Ready(context.Context) error {
	return fmt.Errorf("%w: dial tcp 10.0.0.7:7233: connect: connection refused", intake.ErrUnavailable)
}

// dev and serve answer no health checks on the metrics listener: their
// intake has its own.
func TestMetricsListenerWithoutWorkerHealth(t *testing.T) {
	cfg := &config.Config{Metrics: config.Metrics{Listen: "127.0.0.1:0"}}
	addr, err := ServeMetrics(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /readyz on dev's metrics listener = %d, want 404", resp.StatusCode)
	}
}

// A frontend that has not answered for dialPatience ends the dial with an
// error that says how long as the config writes durations (5m, not
// 5m0s), the last attempt's error and the hint.
func TestDialTemporalNoAnswerSaysHowLong(t *testing.T) {
	refused := errors.New("connection refused")
	for hint, want := range map[string]string{
		"":                "connecting to Temporal at 127.0.0.1:7233: no answer for 5m: connection refused",
		"is Temporal up?": "connecting to Temporal at 127.0.0.1:7233: no answer for 5m: connection refused (is Temporal up?)",
	} {
		err := noAnswer("127.0.0.1:7233", dialPatience, refused, hint)
		if err.Error() != want || !errors.Is(err, refused) {
			t.Errorf("hint %q: %q, want %q wrapping the attempt's error", hint, err, want)
		}
	}
}

// A dial that no retry mends ends at once: a TLS client against a
// plaintext frontend, a malformed address; one that may mend (refused)
// is waited for.
func TestDialTemporalEndsOnMisconfiguration(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // a plaintext server that is not gRPC
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		opts client.Options
	}{
		{"TLS against plaintext", client.Options{HostPort: l.Addr().String(), ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{ServerName: "temporal.example"}}}},
		{"a port that is not one", client.Options{HostPort: "127.0.0.1:99999"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if _, err := DialTemporal(ctx, tc.opts, tc.opts.HostPort, logger); err == nil || ctx.Err() != nil {
				t.Fatalf("got %v (context %v); want the dial's error at once", err, ctx.Err())
			}
		})
	}
	// Refused: waited for, until the context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := DialTemporal(ctx, client.Options{HostPort: "127.0.0.1:1"}, "127.0.0.1:1", logger); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a refused connection: %v; want to wait until the context ends", err)
	}
}
