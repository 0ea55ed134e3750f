package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTemporalSDKMetricsGoToTheRegistry(t *testing.T) {
	h := TemporalSDK().WithTags(map[string]string{"namespace": "ns-test", "task_queue": "q"})
	before := Read("temporal_test_request", "namespace", "ns-test", "task_queue", "q")
	h.Counter("temporal_test_request").Inc(2)
	// Another place tags the same name with more and fewer tags: the
	// label set of the first use holds.
	h.WithTags(map[string]string{"operation": "StartWorkflowExecution"}).Counter("temporal_test_request").Inc(1)
	TemporalSDK().WithTags(map[string]string{"namespace": "ns-test"}).Counter("temporal_test_request").Inc(5)
	h.Gauge("temporal_test.slots-available").Update(7)
	h.Timer("temporal_test_latency").Record(30 * time.Millisecond)
	// Counter and gauge of one name: the second kind is dropped, not a panic.
	h.Gauge("temporal_test_request").Update(1)

	if got := Read("temporal_test_request", "namespace", "ns-test", "task_queue", "q") - before; got != 3 {
		t.Errorf("counter with the first label set: %v, want 3", got)
	}
	if got := Read("temporal_test_request", "namespace", "ns-test", "task_queue", ""); got < 5 {
		t.Errorf("a use without task_queue counts under task_queue=\"\": %v", got)
	}
	if got := Read("temporal_test_latency_seconds", "namespace", "ns-test", "task_queue", "q"); got < 1 {
		t.Errorf("timer samples %v", got)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d: %s", rec.Code, body)
	}
	for _, want := range []string{
		`temporal_test_slots_available{namespace="ns-test",task_queue="q"} 7`,
		`temporal_test_latency_seconds_bucket{namespace="ns-test",task_queue="q",le="0.05"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
