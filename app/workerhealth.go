package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// WorkerHealth answers the health checks of a `dealsync worker` process,
// on its metrics listener (a worker serves no other HTTP):
//
//   - GET /healthz: 200 while the process runs. For a liveness probe: a
//     worker whose Temporal is away keeps polling and needs no restart,
//     and one the SDK gives up on ends its process by itself.
//   - GET /readyz: 200 once the worker has started, until it stops, while
//     the Temporal frontend answers a health check within the timeout;
//     503 otherwise, saying which. For a readiness probe, or an alert.
type WorkerHealth struct {
	client  client.Client
	logger  *slog.Logger
	timeout time.Duration
	state   atomic.Int32
}

const (
	workerStarting int32 = iota
	workerRunning
	workerStopping
)

// NewWorkerHealth returns the health checks of a worker that polls
// through c. It is not ready until Started.
func NewWorkerHealth(c client.Client, logger *slog.Logger) *WorkerHealth {
	return &WorkerHealth{client: c, logger: logger, timeout: 5 * time.Second}
}

// Started marks the worker as polling.
func (h *WorkerHealth) Started() { h.state.Store(workerRunning) }

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
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "starting", "error": "the worker has not started polling yet"})
		return
	case workerStopping:
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping", "error": "the worker is stopping: it takes no new tasks"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	if _, err := h.client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		// The frontend's address stays in the log, as the intake's
		// /readyz does.
		h.logger.Warn("not ready: the Temporal frontend does not answer", "error", err)
		writeStatus(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the Temporal frontend does not answer (the worker's log says why); the worker keeps polling"})
		return
	}
	writeStatus(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeStatus(w http.ResponseWriter, code int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
