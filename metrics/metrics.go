// Package metrics holds dealsync's Prometheus metrics: the webhooks the
// intake answers and the events in them, and the run steps (mapping,
// validation, calls to CRMs and ERPs) the worker executes, with the Go
// runtime's and the process's own, and the Temporal SDK's (TemporalSDK);
// Handler serves them for scraping.
//
// Labels are bounded: connection names come from the config (a webhook to
// an unknown connection is counted under ""), steps and outcomes from the
// fixed lists below.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every dealsync metric (one per process).
var Registry = prometheus.NewRegistry()

// Outcomes of an event in an acknowledged delivery.
const (
	EventStarted   = "started"   // a new run
	EventDuplicate = "duplicate" // met the deal's existing run
	EventNotified  = "notified"  // delivered to the deal's running run
	EventIgnored   = "ignored"   // does not trigger; no run
	EventDropped   = "dropped"   // of a CRM account the connection does not list, in a batch with listed ones
	// EventUnreadable: an event that could not be read, left out of a
	// batch whose other events were taken.
	EventUnreadable = "unreadable"
)

// Outcome of a step that succeeded; failures are counted under their
// error type (activities.ErrType*: MappingError, ERPRateLimited, ...).
const StepOK = "ok"

// StepWriteBackSkipped is the outcome of a write-back step whose worker's
// connection writes nothing back, while its run started with a
// write-back (its worker's config is older, or dropped it).
const StepWriteBackSkipped = "WriteBackSkipped"

// CodeHeld is the code of a webhook delivery answered 503 (with
// Retry-After) only to hold a change of a won deal until the deal's run
// exists (a generic connection with a settle_time), counted apart from
// the 503s of an outage: such holds are expected (a deal's win and change
// at the same moment, a deal won before dealsync went live or invoiced
// longer ago than the namespace's retention), and an alert on 503 is for
// an unreachable Temporal.
const CodeHeld = "503_held"

// CodeClientGone is the code of a webhook delivery whose sender closed or
// reset the connection before its body was whole: answered 400, which
// the sender most likely does not read, and counted apart from the 400s
// of payloads the source cannot read (a client that gave up, a network
// cut, not a malformed payload).
const CodeClientGone = "client_gone"

var (
	webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealsync_webhooks_total",
		Help: "Webhook deliveries answered by the intake, by connection and HTTP status code (2xx: recorded durably; 401/400/413: refused; 503: Temporal unreachable, the CRM retries; 503_held: a 503 that holds a change of a won deal until the deal's run exists, not an outage; client_gone: the sender closed the connection before its body was whole).",
	}, []string{"connection", "code"})
	webhookSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dealsync_webhook_duration_seconds",
		Help: "Time the intake took to answer a webhook delivery (the CRM's acknowledgement latency), by connection.",
		// Up to the intake's bound on a delivery (4 × start_timeout, 20 s
		// by default: one to read its deals from the CRM, three for its
		// starts, as intake.MaxHandlerTime; plus the time to read its
		// body): the slow tail is where a CRM gives up waiting.
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30},
	}, []string{"connection"})
	previousSecret = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealsync_webhooks_previous_secret_total",
		Help: "Webhook deliveries authenticated by a secret being rotated out (a previous_… key) and by no current one, by connection: once it stops growing, the CRM sends the new secret and the previous_ key can go.",
	}, []string{"connection"})
	events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealsync_webhook_events_total",
		Help: "Deal events in deliveries acknowledged or refused for good (413), by connection and outcome: started (a new run), duplicate (met the deal's run), notified (delivered to the deal's running run), ignored (not triggering, or left out by the source: another object's event, a deletion, dealsync's own write-back), dropped (of a CRM account the connection does not list), unreadable (left out of a batch).",
	}, []string{"connection", "outcome"})
	steps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealsync_steps_total",
		Help: "Attempts of run steps (map, validate, fetch_deal, previous_run, customer, invoice, write_back), by step, connection and outcome: ok or the error type shown in the Web UI (MappingError, ValidationError, ERPRejected, ERPUnauthorized, ERPRateLimited, ERPUnavailable, the same four CRM* for fetch_deal and write_back, TemporalUnavailable and RunsUnreadable for previous_run, LocalFileUnavailable for a token or link file of the host, ConnectionUnavailable on a worker without the run's connection, ERPTargetMismatch for customer and invoice on a worker whose config sends the connection to another ERP target than the run was started for, Error for an error of no type).",
	}, []string{"step", "connection", "outcome"})
	stepSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dealsync_step_duration_seconds",
		Help:    "Duration of one attempt of a run step, by step and connection.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"step", "connection"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		webhooks, webhookSeconds, previousSecret, events, steps, stepSeconds,
	)
}

// Handler serves the registry in Prometheus's text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// Webhook records one answered delivery.
func Webhook(connection string, code int, took time.Duration) {
	webhooks.WithLabelValues(connection, statusCode(code)).Inc()
	webhookSeconds.WithLabelValues(connection).Observe(took.Seconds())
}

// WebhookHeld records one delivery answered 503 only to hold a change of
// a won deal (CodeHeld).
func WebhookHeld(connection string, took time.Duration) {
	webhooks.WithLabelValues(connection, CodeHeld).Inc()
	webhookSeconds.WithLabelValues(connection).Observe(took.Seconds())
}

// WebhookClientGone records one delivery whose sender left before its
// body was whole (CodeClientGone).
func WebhookClientGone(connection string, took time.Duration) {
	webhooks.WithLabelValues(connection, CodeClientGone).Inc()
	webhookSeconds.WithLabelValues(connection).Observe(took.Seconds())
}

// PreviousSecret records a delivery authenticated by a secret being
// rotated out.
func PreviousSecret(connection string) {
	previousSecret.WithLabelValues(connection).Inc()
}

// Event records the outcome of one event of an acknowledged delivery.
func Event(connection, outcome string) {
	events.WithLabelValues(connection, outcome).Inc()
}

// Step records one attempt of a run step.
func Step(step, connection, outcome string, took time.Duration) {
	steps.WithLabelValues(step, connection, outcome).Inc()
	stepSeconds.WithLabelValues(step, connection).Observe(took.Seconds())
}

func statusCode(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// Read returns the value of one series of a counter, or the sample count
// of a histogram, in Registry (0 when absent): for tests and diagnostics.
// labels are name, value pairs and must name every label of the series.
func Read(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	families, err := Registry.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			match := true
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					match = false
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
		}
	}
	return 0
}
