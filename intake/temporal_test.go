package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/mapping"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// A start the server could not take now is answered 503 (the sender
// retries); one it refuses for good is not.
func TestClassifyStartError(t *testing.T) {
	for _, c := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"unavailable", serviceerror.NewUnavailable("frontend down"), true},
		{"namespace unavailable (failover)", serviceerror.NewNamespaceUnavailable("default"), true},
		{"namespace not active here", serviceerror.NewNamespaceNotActive("default", "c1", "c2"), true},
		{"aborted", serviceerror.NewAborted("try again"), true},
		{"resource exhausted", &serviceerror.ResourceExhausted{Message: "rps"}, true},
		{"wrapped deadline", fmt.Errorf("start: %w", context.DeadlineExceeded), true},
		{"plain gRPC unavailable", status.Error(codes.Unavailable, "conn refused"), true},
		{"invalid argument", serviceerror.NewInvalidArgument("bad search attribute"), false},
		{"namespace not found", serviceerror.NewNamespaceNotFound("nope"), false},
		{"internal", serviceerror.NewInternal("bug"), false},
	} {
		got := errors.Is(classifyStartError("wf/1", c.err), ErrUnavailable)
		if got != c.retry {
			t.Errorf("%s: unavailable = %v, want %v", c.name, got, c.retry)
		}
	}
}

// A start refused because its input is over the server's size limits is
// too large (413: sending it again cannot help), not unavailable or an
// internal error; other invalid arguments are neither.
func TestClassifyStartErrorTooLarge(t *testing.T) {
	for _, c := range []struct {
		err      error
		tooLarge bool
	}{
		{serviceerror.NewInvalidArgument("Blob data size exceeds limit."), true},
		{serviceerror.NewInvalidArgument("Memo size exceeds limit."), true},
		{status.Error(codes.InvalidArgument, "Blob data size exceeds limit."), true},
		{serviceerror.NewInvalidArgument("bad search attribute"), false},
		{serviceerror.NewInvalidArgument("WorkflowId length exceeds limit."), false},
		{serviceerror.NewInternal("Blob data size exceeds limit."), false},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (6122306 vs. 4194304)"), true},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (6122306 vs. 4194304)"), true},
	} {
		err := classifyStartError("wf/1", c.err)
		if errors.Is(err, ErrTooLarge) != c.tooLarge || errors.Is(err, ErrUnavailable) {
			t.Errorf("%v: %v; want too large = %v", c.err, err, c.tooLarge)
		}
	}
}

// A deal amount no float holds is left out of the run's search attributes
// (their encoding fails, and the start with it, on every retry); the
// others, and a plain amount, are set.
func TestOptionsLeaveOutAnAmountNoFloatHolds(t *testing.T) {
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	s := &TemporalStarter{TaskQueue: "q"}
	huge, err := decimal.NewFromString("1" + strings.Repeat("0", 400))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		amount decimal.Decimal
		want   bool
	}{{decimal.RequireFromString("1200.50"), true}, {huge, false}, {huge.Neg(), false}} {
		opts := s.options(conn, model.DealEvent{Deal: model.Deal{ID: "D", Amount: decimal.NewNullDecimal(c.amount)}})
		sa := opts.TypedSearchAttributes
		got, ok := sa.GetFloat64(workflows.AmountKey)
		if ok != c.want || (ok && got != 1200.5) {
			t.Errorf("amount of %d digits: Amount %v set %v, want set %v", len(c.amount.String()), got, ok, c.want)
		}
		if id, _ := sa.GetKeyword(workflows.DealIDKey); id != "D" {
			t.Errorf("DealId %q", id)
		}
	}
}

// endingRuns is a Temporal client whose deal run is found running at each
// start and has ended by the time the win is signalled to it.
type endingRuns struct {
	client.Client
	starts, signals int
}

type runOf string

func (r runOf) GetID() string                                                           { return "wf" }
func (r runOf) GetRunID() string                                                        { return string(r) }
func (r runOf) GetFirstExecutionRunID() string                                          { return string(r) }
func (r runOf) Get(context.Context, any) error                                          { return nil }
func (r runOf) GetWithOptions(context.Context, any, client.WorkflowRunGetOptions) error { return nil }

func (e *endingRuns) ExecuteWorkflow(ctx context.Context, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	e.starts++
	if p, ok := ctx.Value(startProbeKey{}).(*startProbe); ok {
		p.seen, p.started = true, false // met the running run
	}
	return runOf(fmt.Sprintf("run-%d", e.starts)), nil
}

func (e *endingRuns) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, Type: &commonpb.WorkflowType{Name: workflows.InvoiceDealName},
	}}, nil // no memo: a run that may listen
}

func (e *endingRuns) SignalWorkflow(context.Context, string, string, string, any) error {
	e.signals++
	return serviceerror.NewNotFound("workflow execution already completed")
}

// A win that meets a listening run which ends before the win is signalled
// to it starts again; when the next run too ends first, the delivery is
// refused with 503 (sent again), not acknowledged with the win unread.
func TestAWinMeetingRunsThatEndTwiceIsRefused(t *testing.T) {
	c := &endingRuns{}
	s := &TemporalStarter{Client: c, TaskQueue: "q"}
	conn := &connections.Connection{Name: "crm", Mapper: mapping.Default{PaymentTermsDays: 30}}
	_, err := s.Start(context.Background(), conn, model.DealEvent{EventID: "e1", Deal: model.Deal{ID: "D", Stage: "won"}})
	if !errors.Is(err, ErrUnavailable) || c.starts != 2 || c.signals != 2 {
		t.Fatalf("%v after %d starts and %d signals; want ErrUnavailable after two of each", err, c.starts, c.signals)
	}
}
