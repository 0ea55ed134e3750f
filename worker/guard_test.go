package worker

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dealsync/dealsync/activities"
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

// The guard refuses a new InvoiceDeal run whose connection the worker
// lacks, and nothing else: a run of a connection it has, and a
// RecordDealLoss run (its one call reads Temporal), go on. (That a run
// under way is not refused on replay, and that the refused run moves to
// another worker, is e2e's TestRunLeavesAWorkerWithoutItsConnection and
// the replay of kept histories.)
func TestGuardRefusesOnlyANewInvoiceRunWithoutItsConnection(t *testing.T) {
	for _, c := range []struct {
		name     string
		workflow string
		conns    activities.Resolver
		refused  bool
	}{
		{"invoice run, connection missing", workflows.InvoiceDealName, noConnections{}, true},
		{"invoice run, connection here", workflows.InvoiceDealName, demoOnly{}, false},
		{"loss run, connection missing", workflows.RecordDealLossName, noConnections{}, false},
	} {
		var suite testsuite.WorkflowTestSuite
		env := suite.NewTestWorkflowEnvironment()
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&connectionGuard{connections: c.conns}}})
		// A stand-in of the workflow's name and input: the guard reads
		// only those.
		env.RegisterWorkflowWithOptions(func(workflow.Context, workflows.InvoiceDealInput) (string, error) { return "ran", nil },
			workflow.RegisterOptions{Name: c.workflow})
		env.ExecuteWorkflow(c.workflow, workflows.InvoiceDealInput{Connection: "demo"})
		err := env.GetWorkflowError()
		refused := err != nil && strings.Contains(err.Error(), `connection "demo" is not configured on this worker`)
		if refused != c.refused || (!c.refused && err != nil) {
			t.Errorf("%s: %v; want refused %v", c.name, err, c.refused)
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
