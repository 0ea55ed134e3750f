package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/refusal"
	"github.com/dealsync/dealsync/internal/testlog"
	"github.com/dealsync/dealsync/workflows"
)

type noConnections struct{}

func (noConnections) Resolve(string) (activities.Connection, bool) {
	return activities.Connection{}, false
}

type demoOnly struct{}

func (demoOnly) Resolve(name string) (activities.Connection, bool) {
	return activities.Connection{}, name == "demo"
}

// demoWritingBack has connection demo, which writes back.
type demoWritingBack struct{}

func (demoWritingBack) Resolve(name string) (activities.Connection, bool) {
	return activities.Connection{WriteBacker: nopWriteBacker{}}, name == "demo"
}

type nopWriteBacker struct{}

func (nopWriteBacker) WriteBack(context.Context, string, string, connectors.InvoiceResult) error {
	return nil
}

// The guard refuses a new InvoiceDeal run whose connection the worker
// lacks, and nothing else: a run of a connection it has, and a
// RecordDealLoss run (its one call reads Temporal), go on. (That a run
// under way is not refused on replay, and that the refused run moves to
// another worker, is e2e's TestRunLeavesAWorkerWithoutItsConnection and
// the replay of kept histories.)
func TestGuardRefusesOnlyANewInvoiceRunWithoutItsConnection(t *testing.T) {
	invoiced := &connectors.InvoiceResult{InvoiceID: "INV-1"}
	for _, c := range []struct {
		name     string
		workflow string
		conns    activities.Resolver
		invoiced *connectors.InvoiceResult
		refused  string
	}{
		{"invoice run, connection missing", workflows.InvoiceDealName, noConnections{}, nil, `connection "demo" is not configured on this worker`},
		{"invoice run, connection here", workflows.InvoiceDealName, demoOnly{}, nil, ""},
		{"loss run, connection missing", workflows.RecordDealLossName, noConnections{}, nil, ""},
		// A write-back-only run needs the connection's write-back too.
		{"write-back run, no write-back here", workflows.InvoiceDealName, demoOnly{}, invoiced, `connection "demo" writes nothing back on this worker, and this run exists to write its invoice back`},
		{"write-back run, write-back here", workflows.InvoiceDealName, demoWritingBack{}, invoiced, ""},
	} {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&connectionGuard{connections: c.conns}}})
		// A stand-in of the workflow's name and input: the guard reads
		// only those.
		env.RegisterWorkflowWithOptions(func(workflow.Context, workflows.InvoiceDealInput) (string, error) { return "ran", nil },
			workflow.RegisterOptions{Name: c.workflow})
		env.ExecuteWorkflow(c.workflow, workflows.InvoiceDealInput{Connection: "demo", Invoiced: c.invoiced})
		err := env.GetWorkflowError()
		if c.refused == "" && err != nil || c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)) {
			t.Errorf("%s: %v; want refused: %q", c.name, err, c.refused)
		}
	}
}

// A worker refuses a run whose steps are activities at most maxRefusals
// times, then takes it (its steps go to any worker), so that Temporal's
// growing backoff of a failing workflow task never holds the run there
// once another worker has its connection. A run whose steps are local
// calls is refused every time: taken, it would stay there for good.
func TestGuardTakesARunAfterMaxRefusals(t *testing.T) {
	for _, local := range []bool{false, true} {
		guard := &connectionGuard{connections: noConnections{}}
		for attempt := 1; attempt <= maxRefusals+2; attempt++ {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment() // the same run id each time
			env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{guard}})
			env.RegisterWorkflowWithOptions(func(workflow.Context, workflows.InvoiceDealInput) (string, error) { return "ran", nil },
				workflow.RegisterOptions{Name: workflows.InvoiceDealName})
			env.ExecuteWorkflow(workflows.InvoiceDealName, workflows.InvoiceDealInput{Connection: "demo", LocalCalls: local})
			err := env.GetWorkflowError()
			want := local || attempt <= maxRefusals
			if refused := err != nil; refused != want {
				t.Errorf("local calls %v, attempt %d: %v; want refused %v", local, attempt, err, want)
			}
		}
	}
}

// A refusal is said once per run at warn, with the guard's message, and
// noted (refusal.Is) so that the SDK's "Workflow panic" line of each
// refusal, at error with a stack, can be told from a crash (package app
// puts it at debug): a worker lacking a connection logged 64 such errors
// for 40 runs.
func TestGuardSaysARefusalOncePerRun(t *testing.T) {
	var logged testlog.Buffer
	logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	guard := &connectionGuard{connections: noConnections{}}
	var refused error
	for range 3 {
		var suite testsuite.WorkflowTestSuite
		suite.SetLogger(logger)
		env := suite.NewTestWorkflowEnvironment() // the same run id each time
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{guard}})
		env.RegisterWorkflowWithOptions(func(workflow.Context, workflows.InvoiceDealInput) (string, error) { return "ran", nil },
			workflow.RegisterOptions{Name: workflows.InvoiceDealName})
		env.ExecuteWorkflow(workflows.InvoiceDealName, workflows.InvoiceDealInput{Connection: "shop", LocalCalls: true})
		if refused = env.GetWorkflowError(); refused == nil {
			t.Fatal("not refused")
		}
	}
	out := logged.String()
	if n := strings.Count(out, `level=WARN msg="connection \"shop\" is not configured on this worker: its workflow task fails here`); n != 1 {
		t.Errorf("%d warnings for three refusals of one run, want 1:\n%s", n, out)
	}
	msg := `connection "shop" is not configured on this worker: its workflow task fails here so that a worker of the task queue that has the connection takes the run (give every worker the intakes' config: dealsync config check)`
	if !strings.Contains(refused.Error(), msg) {
		t.Fatalf("refused with %v, not the guard's message", refused)
	}
	if !refusal.Is("default-test-run-id", errors.New(msg)) || refusal.Is("another-run", errors.New(msg)) ||
		refusal.Is("default-test-run-id", errors.New("runtime error: index out of range")) {
		t.Error("the refusal is not noted for its run alone, with its message alone")
	}
}
