package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// A run whose ERP is down is Running and pending, and the run list says
// why: the customer step's last failed attempt. With local calls (the
// default) the ERP refuses connections and the back-off outlasts a
// workflow task, so the failed attempt is recorded in a marker and the
// run waits with a timer that says what for (its current details why),
// which the end of the history tells; with calls as
// activities the ERP answers 503, and the describe's pending activity
// tells it.
func TestRunsListSaysWhyARunIsRetrying(t *testing.T) {
	for _, tc := range []struct {
		calls, initial, maximum string
		wantMessage             string
		minAttempt              int32
	}{
		{calls: "local", initial: "15s", maximum: "30s", wantMessage: "connection refused", minAttempt: 1},
		{calls: "activity", initial: "100ms", maximum: "200ms", wantMessage: "503", minAttempt: 3},
	} {
		t.Run(tc.calls, func(t *testing.T) {
			down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":{"message":"maintenance"}}`))
			}))
			base := down.URL
			if tc.calls == "local" {
				down.Close() // nothing listens there: connections are refused
			} else {
				t.Cleanup(down.Close)
			}
			s := startStack(t, stackOptions{
				env: map[string]string{"DEALSYNC_WORKFLOW_EXTERNAL_CALLS": tc.calls,
					"DEALSYNC_WORKFLOW_RETRY_INITIAL_INTERVAL": tc.initial, "DEALSYNC_WORKFLOW_RETRY_MAXIMUM_INTERVAL": tc.maximum},
				mutate: useTarget("down", "http", &httptarget.Config{BaseURL: base, CustomerLookup: httptarget.LookupOnConflict, Timeout: 2 * time.Second}),
			})
			if r := s.send(t, delivery{body: event("won-down", "D-DOWN", nil)}); r.status != 202 {
				t.Fatalf("won: %d %s", r.status, r.body)
			}
			id := workflows.WorkflowID("demo", "D-DOWN")
			var listed []rerun.Run
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				var err error
				listed, _, err = rerun.List(context.Background(), s.Client, rerun.ListOptions{TaskQueue: s.cfg.Temporal.TaskQueue, Query: `DealId = "D-DOWN"`, Limit: 5})
				if err != nil {
					t.Fatal(err)
				}
				if len(listed) == 1 && listed[0].Retrying != nil && listed[0].Retrying.Attempt >= tc.minAttempt {
					break
				}
			}
			if len(listed) != 1 || listed[0].WorkflowID != id || listed[0].ExecutionStatus != "Running" || listed[0].Retrying == nil {
				t.Fatalf("runs list: %+v; want the run Running, retrying its customer step", listed)
			}
			r := listed[0].Retrying
			if r.Step != "customer" || r.Attempt < tc.minAttempt || r.Type != "ERPUnavailable" || !strings.Contains(r.Message, tc.wantMessage) || strings.Contains(r.Message, "\n") {
				t.Errorf("retrying %+v; want the customer step, attempt %d or more, ERPUnavailable, %q on one line", r, tc.minAttempt, tc.wantMessage)
			}
			if tc.calls == "local" && r.Attempt != 1 {
				// The back-off (15 s) is one timer: the first attempt's.
				t.Errorf("retrying %+v; want attempt 1", r)
			}
			if tc.calls == "local" {
				// The timer says what it waits for, and the run's current
				// details why (customer-back-off-timers).
				var timers []string
				iter := s.Client.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
				for iter.HasNext() {
					ev, err := iter.Next()
					if err != nil {
						t.Fatal(err)
					}
					if ev.GetTimerStartedEventAttributes() != nil {
						var summary string
						_ = converter.GetDefaultDataConverter().FromPayload(ev.GetUserMetadata().GetSummary(), &summary)
						timers = append(timers, summary)
					}
				}
				if len(timers) != 1 || !strings.HasPrefix(timers[0], `back-off: retry customer "Acme GmbH" (attempt 2) at `) {
					t.Errorf("timers %q; want one, the customer step's back-off", timers)
				}
				v, err := s.Client.QueryWorkflow(context.Background(), id, "", "__temporal_workflow_metadata")
				if err != nil {
					t.Fatal(err)
				}
				var md sdkpb.WorkflowMetadata
				if err := v.Get(&md); err != nil {
					t.Fatal(err)
				}
				if d := md.GetCurrentDetails(); !strings.HasPrefix(d, `retrying customer "Acme GmbH" (attempt 2 at `) || !strings.Contains(d, "connection refused") {
					t.Errorf("current details %q; want the customer step's retry, its error", d)
				}
			}
		})
	}
}
