package worker

import (
	"context"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
	"github.com/dealsync/dealsync/connectors"
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
