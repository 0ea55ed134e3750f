package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// TemporalSDK returns the handler to set as client.Options.MetricsHandler:
// it records the Temporal SDK's own metrics (temporal_request,
// temporal_workflow_completed, temporal_activity_execution_latency_seconds,
// poller and slot gauges...) in Registry. Timers become histograms in
// seconds, their names ending in _seconds.
//
// Prometheus needs one label set per metric name, while the SDK may tag
// one name differently in different places: the label names of a metric
// are those of its first use; later values lack the labels they do not
// have ("") and drop the ones it does not know.
func TemporalSDK() client.MetricsHandler { return &sdkHandler{sink: sdkMetrics} }

var sdkMetrics = &sdkSink{vecs: map[string]*sdkVec{}}

type sdkSink struct {
	mu   sync.Mutex
	vecs map[string]*sdkVec // by metric name
}

// sdkVec is one metric family: its fixed label names and its collector
// (nil when the name could not be registered, e.g. used with two kinds).
type sdkVec struct {
	labels    []string
	counter   *prometheus.CounterVec
	gauge     *prometheus.GaugeVec
	histogram *prometheus.HistogramVec
}

const (
	kindCounter = iota
	kindGauge
	kindTimer
)

func (s *sdkSink) vec(name string, kind int, tags map[string]string) *sdkVec {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vecs[name]; ok {
		return v
	}
	labels := make([]string, 0, len(tags))
	for k := range tags {
		labels = append(labels, promName(k))
	}
	slices.Sort(labels)
	labels = slices.Compact(labels)
	v := &sdkVec{labels: labels}
	var c prometheus.Collector
	switch kind {
	case kindCounter:
		v.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "Temporal SDK counter " + name + "."}, labels)
		c = v.counter
	case kindGauge:
		v.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "Temporal SDK gauge " + name + "."}, labels)
		c = v.gauge
	default:
		// Up to a day: temporal_workflow_endtoend_latency spans a run's
		// settle time and its retries through an outage (run_timeout,
		// 24 h by default).
		v.histogram = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: "Temporal SDK timer " + name + ", in seconds.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400}}, labels)
		c = v.histogram
	}
	if err := Registry.Register(c); err != nil {
		v.counter, v.gauge, v.histogram = nil, nil, nil
	}
	s.vecs[name] = v
	return v
}

// values are tags in the order of labels.
func (v *sdkVec) values(tags map[string]string) []string {
	out := make([]string, len(v.labels))
	for k, val := range tags {
		if i, ok := slices.BinarySearch(v.labels, promName(k)); ok {
			out[i] = val
		}
	}
	return out
}

type sdkHandler struct {
	sink *sdkSink
	tags map[string]string
}

func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return &sdkHandler{sink: h.sink, tags: merged}
}

func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	v := h.sink.vec(promName(name), kindCounter, h.tags)
	if v.counter == nil {
		return nop{}
	}
	c := v.counter.WithLabelValues(v.values(h.tags)...)
	return counterFunc(func(d int64) {
		if d > 0 {
			c.Add(float64(d))
		}
	})
}

func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	v := h.sink.vec(promName(name), kindGauge, h.tags)
	if v.gauge == nil {
		return nop{}
	}
	return gaugeFunc(v.gauge.WithLabelValues(v.values(h.tags)...).Set)
}

func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	v := h.sink.vec(promName(name)+"_seconds", kindTimer, h.tags)
	if v.histogram == nil {
		return nop{}
	}
	o := v.histogram.WithLabelValues(v.values(h.tags)...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
	nop         struct{}
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }
func (nop) Inc(int64)                      {}
func (nop) Update(float64)                 {}
func (nop) Record(time.Duration)           {}

// promName keeps [a-zA-Z0-9_] and replaces anything else with '_'.
func promName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
