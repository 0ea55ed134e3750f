package worker

import (
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// A run that fails is logged at error once, naming its deal, connection
// and failure type, whatever ended it (here a retried failure whose
// attempts ran out, which its attempts logged only as warnings); a run
// that completes is not.
func TestFailedRunIsLoggedAtError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"completes", nil, nil},
		{"attempts used up", temporal.NewNonRetryableApplicationError("ERP answered 503 (attempt 5 of 5)", "ERPUnavailable", temporal.NewApplicationError("ERP answered 503", "ERPUnavailable")),
			[]string{"level=ERROR", `msg="run failed"`, "connection=shop", "deal_id=D-9", "account=eu", "error_type=ERPUnavailable", `error="ERP answered 503 (attempt 5 of 5)"`}},
		{"not an ApplicationError", temporal.NewTimeoutError(0, nil), []string{"level=ERROR", `msg="run failed"`, "error_type=Timeout"}},
		{"canceled", temporal.NewCanceledError(), []string{"level=WARN", `msg="run canceled"`, "outcome=Canceled", "reason=canceled"}},
		{"not won", temporal.NewNonRetryableApplicationError("the deal's stage is now lost, not a won stage; nothing was invoiced", activities.ErrTypeDealNotWon, nil),
			[]string{"level=INFO", `msg="run ended: the deal is not won, nothing was invoiced"`, "outcome=DealNotWon", `reason="the deal's stage is now lost, not a won stage; nothing was invoiced"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out testlog.Buffer
			var suite testsuite.WorkflowTestSuite
			logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, nil)))
			suite.SetLogger(logger)
			env := suite.NewTestWorkflowEnvironment()
			env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&runEnds{log: logger}}})
			env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.InvoiceDealInput) error {
				return tc.err
			}, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
			env.ExecuteWorkflow(workflows.InvoiceDealName, workflows.InvoiceDealInput{Connection: "shop",
				Event: model.DealEvent{Account: "eu", Deal: model.Deal{ID: "D-9"}}})
			if (env.GetWorkflowError() == nil) != (tc.err == nil) {
				t.Fatalf("workflow error %v, want %v", env.GetWorkflowError(), tc.err)
			}
			var ends []string
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.Contains(line, "run failed") || strings.Contains(line, "run canceled") || strings.Contains(line, "run ended") {
					ends = append(ends, line)
				}
			}
			if tc.want == nil {
				if len(ends) != 0 {
					t.Fatalf("a completed run logged %q", ends)
				}
				return
			}
			if len(ends) != 1 {
				t.Fatalf("lines of the run's end: %q, want one", ends)
			}
			for _, want := range tc.want {
				if !strings.Contains(ends[0], want) {
					t.Errorf("line %q lacks %q", ends[0], want)
				}
			}
			// The failure's own message, once: not the chain of its causes.
			if strings.Contains(ends[0], "retryable") {
				t.Errorf("line %q holds the error's chain", ends[0])
			}
			// The run is named, but not by the workflow's Attempt (always
			// 1, and read as the failed step's).
			if !strings.Contains(ends[0], "WorkflowType="+workflows.InvoiceDealName) || !strings.Contains(ends[0], "WorkflowID=") || !strings.Contains(ends[0], "RunID=") {
				t.Errorf("line %q does not name the run", ends[0])
			}
			if strings.Contains(ends[0], "Attempt=") {
				t.Errorf("line %q has the workflow's attempt", ends[0])
			}
			// An outcome (not won, canceled) is no error: its text is its
			// reason, its type its outcome.
			if !strings.Contains(ends[0], `msg="run failed"`) && (strings.Contains(ends[0], " error=") || strings.Contains(ends[0], " error_type=")) {
				t.Errorf("line %q names an outcome's text an error", ends[0])
			}
		})
	}
}

// A replay of a run that failed (a worker that takes it up again, a
// query) does not log its end again: the line is the run's, once.
func TestAReplayedFailedRunIsNotLoggedAgain(t *testing.T) {
	var out testlog.Buffer
	replayer, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
		Interceptors: []interceptor.WorkerInterceptor{&runEnds{log: log.NewStructuredLogger(slog.New(slog.NewTextHandler(&out, nil)))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	replayer.RegisterWorkflowWithOptions(workflows.InvoiceDeal, workflow.RegisterOptions{Name: workflows.InvoiceDealName})
	if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, "../workflows/testdata/histories/mapping-file-mapping-failed.json"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "run failed") {
		t.Errorf("a replay logged the run's end again:\n%s", out.String())
	}
}
