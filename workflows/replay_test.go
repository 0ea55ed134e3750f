package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/workflows"
)

// minKeptHistories guards the guard: the replay test must have histories
// of every kind of run to replay (see testdata/histories/README.md).
const minKeptHistories = 25

// Every kept history of an InvoiceDeal run, recorded by earlier code,
// replays against today's workflow code without a non-determinism error:
// a run in flight during an upgrade continues. A change that breaks one
// needs workflow.GetVersion (or a new workflow type), not a new recording.
func TestKeptHistoriesReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < minKeptHistories {
		t.Fatalf("%d kept histories in testdata/histories, want at least %d", len(files), minKeptHistories)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
			replayer.RegisterWorkflowWithOptions(workflows.RecordDealLoss, workflow.RegisterOptions{Name: workflows.RecordDealLossName})
			// Under the replayer's own workflow ID, not the deal's: a run
			// started by hand under another ID before the deal's keys.
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Errorf("%s does not replay: %v", file, err)
			}
			// Under its deal's workflow ID, as every run dealsync starts.
			history, dealID := keptHistory(t, file)
			if err := replayer.ReplayWorkflowHistoryWithOptions(nil, history, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: dealID, RunID: "replay"}}); err != nil {
				t.Errorf("%s does not replay under its deal's workflow ID %s: %v", file, dealID, err)
			}
		})
	}
}

// keptHistory reads a kept history and the workflow ID of its deal, from
// its start's input.
func keptHistory(t *testing.T, file string) (*historypb.History, string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	history, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	started := history.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	var in workflows.InvoiceDealInput
	if err := converter.GetDefaultDataConverter().FromPayloads(started.GetInput(), &in); err != nil {
		t.Fatalf("%s: the run's input: %v", file, err)
	}
	return history, workflows.DealWorkflowID(in.Connection, in.Event.Account, in.Event.Deal.ID)
}

// A history that does not match the code fails the replay, so the test
// above can fail: a kept history replayed against a workflow that waits
// instead of mapping.
func TestReplayFailsOnAnotherWorkflow(t *testing.T) {
	waits := func(ctx workflow.Context, _ workflows.InvoiceDealInput) error {
		return workflow.Sleep(ctx, time.Minute)
	}
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(waits, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
	quiet := log.NewStructuredLogger(slog.New(slog.DiscardHandler)) // the SDK logs the panic it expects
	err := replayer.ReplayWorkflowHistoryFromJSONFile(quiet, filepath.Join("testdata", "histories", "generic-local-invoiced.json"))
	if err == nil {
		t.Fatal("a history replayed against other workflow code")
	}
	if !strings.Contains(err.Error(), "nondeterministic") {
		t.Errorf("want a non-determinism error, got %v", err)
	}
}

// summaryOf is the summary an event's user metadata carries ("" for none).
func summaryOf(t *testing.T, ev *historypb.HistoryEvent) string {
	t.Helper()
	p := ev.GetUserMetadata().GetSummary()
	if p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Runs started before dealsync gave its runs, steps and waits summaries
// (the Web UI's user metadata) replay against today's code, which gives
// them: a run in flight during the upgrade goes on. The kept histories
// recorded before then carry none (but the SDK's own "Sleep" on a
// workflow.Sleep's timer) on their start, markers, activities and
// timers; at least minKeptHistories of them are kept, with local calls
// (markers), activities and timers among them.
func TestHistoriesWithoutSummariesReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var before int
	kinds := map[string]bool{} // of the histories without summaries
	for _, file := range files {
		history, _ := keptHistory(t, file)
		summaries := 0
		has := map[string]bool{}
		for _, ev := range history.GetEvents() {
			if s := summaryOf(t, ev); s != "" && s != "Sleep" {
				summaries++
			}
			switch {
			case ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity":
				has["marker"] = true
			case ev.GetActivityTaskScheduledEventAttributes() != nil:
				has["activity"] = true
			case ev.GetTimerStartedEventAttributes() != nil:
				has["timer"] = true
			}
		}
		if summaries > 0 {
			continue
		}
		before++
		for kind := range has {
			kinds[kind] = true
		}
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
		replayer.RegisterWorkflowWithOptions(workflows.RecordDealLoss, workflow.RegisterOptions{Name: workflows.RecordDealLossName})
		if err := replayer.ReplayWorkflowHistory(nil, history); err != nil {
			t.Errorf("%s, recorded without summaries, does not replay: %v", file, err)
		}
	}
	if before < minKeptHistories || len(kinds) != 3 {
		t.Fatalf("%d kept histories without summaries, with %v; want at least %d, with markers, activities and timers", before, kinds, minKeptHistories)
	}
}

// Summaries are not part of what a replay compares: a history whose
// start, markers, activities and timers carry other summaries than the
// code gives (another release's wording, a deal name cut otherwise)
// replays all the same, so that a change of wording needs no
// workflow.GetVersion.
func TestHistoriesWithOtherSummariesReplay(t *testing.T) {
	for _, name := range []string{"generic-settle-linger-invoiced", "generic-activity-erp-retried", "hubspot-signals-fetch-writeback", "generic-local-listening-invoice-attempts"} {
		history, _ := keptHistory(t, filepath.Join("testdata", "histories", name+".json"))
		other, err := converter.GetDefaultDataConverter().ToPayload("a summary of another release")
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for _, ev := range history.GetEvents() {
			if ev.GetWorkflowExecutionStartedEventAttributes() != nil || ev.GetMarkerRecordedEventAttributes() != nil ||
				ev.GetActivityTaskScheduledEventAttributes() != nil || ev.GetTimerStartedEventAttributes() != nil {
				ev.UserMetadata = &sdkpb.UserMetadata{Summary: other, Details: other}
				changed++
			}
		}
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
		if err := replayer.ReplayWorkflowHistory(nil, history); err != nil || changed < 5 {
			t.Errorf("%s with other summaries on %d events does not replay: %v", name, changed, err)
		}
	}
}

// Runs whose customer, invoice or fetch step the SDK retried after its
// own back-off timer ("Sleep": local calls, a back-off longer than the
// workflow task timeout), recorded before those steps' back-offs became
// timers of the run's (customer-back-off-timers, invoice-back-off-timers,
// fetch-back-off-timers, long-retry-after-timers), replay: a customer
// step invoiced after a Retry-After of 12 s, one waiting the policy's 15
// s and 30 s; the invoice step of a run that does not listen, and a
// HubSpot run's fetch, each invoiced after a Retry-After of 12 s.
func TestStepsRetriedBySDKReplay(t *testing.T) {
	for name, step := range map[string]string{
		"generic-local-customer-sdk-back-off":         "ensure customer",
		"generic-local-customer-sdk-back-off-waiting": "ensure customer",
		"generic-local-invoice-sdk-back-off":          "create invoice",
		"hubspot-local-fetch-sdk-back-off":            "fetch deal",
	} {
		file := filepath.Join("testdata", "histories", name+".json")
		history, _ := keptHistory(t, file)
		sleeps := 0
		for i, ev := range history.GetEvents() {
			if ev.GetTimerStartedEventAttributes() != nil && summaryOf(t, ev) == "Sleep" &&
				strings.Contains(summaryOf(t, history.GetEvents()[i-1]), step) {
				sleeps++
			}
		}
		if sleeps == 0 {
			t.Fatalf("%s: no SDK back-off timer after a step %q", name, step)
		}
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
		if err := replayer.ReplayWorkflowHistory(nil, history); err != nil {
			t.Errorf("%s does not replay: %v", name, err)
		}
	}
}

// A run recorded with long-retry-after-timers replays: the invoice step
// of a run that does not listen, whose attempts the ERP answered with a
// 503 and a 429 asking for 12 s (over the workflow task timeout), each
// ending its call not retried (the marker's failure non-retryable, its
// next retry delay the Retry-After), waited on a timer of the run's
// that says so, then invoiced. The kept histories before it were all
// recorded before the change; this one keeps its shape from being
// broken by a later change.
func TestLongRetryAfterTimersReplay(t *testing.T) {
	const name = "generic-local-invoice-long-retry-after"
	history, dealID := keptHistory(t, filepath.Join("testdata", "histories", name+".json"))
	ended := 0
	events := history.GetEvents()
	for i, ev := range events {
		m := ev.GetMarkerRecordedEventAttributes()
		app := m.GetFailure().GetApplicationFailureInfo()
		if m.GetMarkerName() != "LocalActivity" || app == nil || !app.GetNonRetryable() || app.GetNextRetryDelay().AsDuration() != 12*time.Second {
			continue
		}
		// The run's own timer follows, after its version marker the
		// first time.
		for _, next := range events[i+1:] {
			if next.GetTimerStartedEventAttributes() != nil {
				if s := summaryOf(t, next); strings.HasPrefix(s, "back-off: retry invoice ") {
					ended++
				}
				break
			}
		}
	}
	if ended != 2 {
		t.Fatalf("%s: %d calls ended on a long Retry-After and waited on the run's timer, want 2", name, ended)
	}
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
	if err := replayer.ReplayWorkflowHistoryWithOptions(nil, history, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: dealID, RunID: "replay"}}); err != nil {
		t.Errorf("%s does not replay: %v", name, err)
	}
}
