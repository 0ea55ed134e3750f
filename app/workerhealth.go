package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/outagelog"
	"github.com/dealsync/dealsync/internal/wording"
)

// WorkerHealth answers the health checks of a `dealsync worker` process,
// on its metrics listener (a worker serves no other HTTP):
//
//   - GET /healthz: 200 while the process runs. For a liveness probe: a
//     worker whose Temporal is away keeps polling and needs no restart,
//     and one the SDK gives up on ends its process by itself.
//   - GET /readyz: 200 once the worker has started, until it stops, while
//     the Temporal frontend answers a health check within the timeout;
//     503 otherwise, saying which (starting: still connecting to Temporal,
//     or not yet polling). For a readiness probe, or an alert.
type WorkerHealth struct {
	client   atomic.Pointer[client.Client]
	logger   *slog.Logger
	timeout  time.Duration
	state    atomic.Int32
	interval time.Duration // of Watch's checks
	frontend outagelog.Log // the frontend's outages, as /readyz and Watch meet them
}

const (
	workerStarting int32 = iota
	workerRunning
	workerStopping
)

// NewWorkerHealth returns the health checks of a worker. It is not ready
// until Started; Watch logs the frontend's outages from then on.
func NewWorkerHealth(logger *slog.Logger) *WorkerHealth {
	return &WorkerHealth{logger: logger, timeout: 5 * time.Second, interval: readinessInterval()}
}

// Started marks the worker as started, polling through c.
func (h *WorkerHealth) Started(c client.Client) {
	h.client.Store(&c)
	h.state.Store(workerRunning)
}

// Stopping marks the worker as stopping: /readyz fails from now on.
func (h *WorkerHealth) Stopping() { h.state.Store(workerStopping) }

func (h *WorkerHealth) mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", h.ready)
}

func (h *WorkerHealth) ready(w http.ResponseWriter, r *http.Request) {
	switch h.state.Load() {
	case workerStarting:
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": "the worker has not started yet (connecting to Temporal: its log says how that goes)"})
		return
	case workerStopping:
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping", "error": "the worker is stopping: it takes no new tasks"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	if err := h.checkFrontend(ctx); err != nil {
		// The frontend's address stays in the log, as the intake's
		// /readyz does.
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the Temporal frontend does not answer (the worker's log says why); the worker keeps polling"})
		return
	}
	writeStatus(w, http.StatusOK, map[string]string{"status": "ready"})
}

// checkFrontend asks the frontend for its health, and logs its outages
// (h.frontend): when one starts, then once a minute while it lasts, and
// when it ends, however often /readyz and Watch ask. A worker that stops
// meanwhile says nothing: its client is closing.
func (h *WorkerHealth) checkFrontend(ctx context.Context) error {
	started := h.frontend.Start()
	_, err := (*h.client.Load()).CheckHealth(ctx, &client.CheckHealthRequest{})
	switch {
	case h.state.Load() != workerRunning:
	case err != nil:
		h.frontend.Down(started, func(unsaid int) {
			h.logger.Warn(outagelog.NotReady, outagelog.Attrs(unsaid, "error", err)...)
		})
	default:
		h.frontend.Up(started, func(unsaid int) { h.logger.Info(outagelog.Ready, outagelog.Attrs(unsaid)...) })
	}
	return err
}

// Watch checks the frontend as /readyz does, every ReadinessInterval while
// the worker runs, until ctx ends, so that its outages are logged when
// they start and end whether or not anything probes /readyz (a worker
// without metrics.listen answers no probe at all); a probe's check
// stands for one of its own (outagelog.Log.Watch).
func (h *WorkerHealth) Watch(ctx context.Context) {
	h.frontend.Watch(ctx, h.interval, h.timeout, func(ctx context.Context) {
		if h.state.Load() == workerRunning {
			_ = h.checkFrontend(ctx)
		}
	})
}

func writeStatus(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// noAnswer is DialTemporal's error for a frontend at address that has
// not answered for patience, err the last attempt's, with hint (see
// intake.UnreachableHint) when not "".
func noAnswer(address string, patience time.Duration, err error, hint string) error {
	if hint != "" {
		return fmt.Errorf("connecting to Temporal at %s: no answer for %s: %w (%s)", address, wording.Duration(patience), err, hint)
	}
	return fmt.Errorf("connecting to Temporal at %s: no answer for %s: %w", address, wording.Duration(patience), err)
}

// dialPatience is how long DialTemporal waits for a frontend that does not
// answer before it ends the process (its supervisor starts it again).
const dialPatience = 5 * time.Minute

// misconfiguredSigns are what the SDK's "failed reaching server" says of
// a connection that no retry makes: TLS that does not agree with the
// server, or an address that is not one.
var misconfiguredSigns = []string{"x509", "handshake", "first record does not look like a tls handshake",
	"error reading server preface", "invalid port", "missing port", "too many colons", "unknown port"}

// misconfigured says whether err, a dial's failure, is one a retry does
// not mend (misconfiguredSigns).
func misconfigured(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, s := range misconfiguredSigns {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// DialTemporal connects to the Temporal frontend at address, waiting for
// it while it cannot be reached (a worker started during an outage, or
// before Temporal on a fresh cluster), with a warning and a growing wait
// between attempts (1 s doubling to 30 s), for at most dialPatience.
// Ending the process at once would have its supervisor restart it with its
// own back-off (minutes, on Kubernetes), after Temporal is back. A refusal
// a retry does not change (credentials; TLS: a certificate or server name,
// TLS against plaintext or the reverse; a malformed address) ends it at
// once, and so does an address that has not answered for dialPatience (a
// host name that does not resolve, say); ctx ends it with ctx's error.
func DialTemporal(ctx context.Context, opts client.Options, address string, logger *slog.Logger) (client.Client, error) {
	wait, since := time.Second, time.Now()
	for attempt := 1; ; attempt++ {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			if attempt > 1 {
				logger.Info("connected to Temporal", "temporal", address, "attempts", attempt)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var unavailable *serviceerror.Unavailable
		var deadline *serviceerror.DeadlineExceeded
		if !errors.As(err, &unavailable) && !errors.As(err, &deadline) && !errors.Is(err, context.DeadlineExceeded) || misconfigured(err) {
			return nil, fmt.Errorf("connecting to Temporal at %s: %w", address, err)
		}
		hint := intake.UnreachableHint(err)
		if time.Since(since) >= dialPatience {
			return nil, noAnswer(address, dialPatience, err, hint)
		}
		attrs := []any{"temporal", address, "error", err, "next_attempt_in", wait}
		if hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		logger.Warn("Temporal cannot be reached yet; waiting for it", attrs...)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
