package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
)

// TemporalStarter starts one InvoiceDeal run per deal and connection with
// a deterministic workflow ID: a duplicate delivery meets the running run
// (conflict policy USE_EXISTING), or the completed one within retention
// (reuse policy ALLOW_DUPLICATE_FAILED_ONLY), while a failed run can be
// triggered again by a later webhook.
type TemporalStarter struct {
	Client          client.Client
	TaskQueue       string
	Retry           workflows.RetryPolicy
	ActivityTimeout time.Duration
	RunTimeout      time.Duration
	// EagerStart hands the first workflow task straight to a worker in this
	// process, saving a round trip (only `dealsync dev` has one).
	EagerStart bool
}

// Start implements Starter.
func (s *TemporalStarter) Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	id := workflows.WorkflowID(conn.Name, ev.Deal.ID)
	res := connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: id}
	attrs := []temporal.SearchAttributeUpdate{
		workflows.DealIDKey.ValueSet(ev.Deal.ID),
		workflows.ConnectionKey.ValueSet(conn.Name),
		workflows.SyncStatusKey.ValueSet(workflows.StatusPending),
	}
	if ev.Deal.Amount.Valid {
		attrs = append(attrs, workflows.AmountKey.ValueSet(ev.Deal.Amount.Decimal.InexactFloat64()))
	}
	if ev.Deal.Currency != "" {
		attrs = append(attrs, workflows.CurrencyKey.ValueSet(ev.Deal.Currency))
	}
	probe := &startProbe{}
	run, err := s.Client.ExecuteWorkflow(withStartProbe(ctx, probe), client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowExecutionTimeout: s.RunTimeout,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		EnableEagerStart:         s.EagerStart,
		// Report a completed run as an error instead of returning it as if
		// it had been started: that is how a duplicate is told apart.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.InvoiceDealName, workflows.InvoiceDealInput{
		Connection:      conn.Name,
		Event:           ev,
		Retry:           s.Retry,
		ActivityTimeout: s.ActivityTimeout,
	})
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			// The deal's run already completed within retention.
			res.RunID, res.Duplicate = started.RunId, true
			return res, nil
		}
		return res, classifyStartError(id, err)
	}
	res.RunID = run.GetRunID()
	res.Duplicate = probe.seen && !probe.started
	return res, nil
}

// Ready implements Starter.
func (s *TemporalStarter) Ready(ctx context.Context) error {
	if _, err := s.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

func classifyStartError(id string, err error) error {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.As(err, &netErr):
		return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) {
		return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
			return fmt.Errorf("%w: starting %s: %v", ErrUnavailable, id, err)
		}
	}
	return fmt.Errorf("starting %s: %w", id, err)
}

// startProbe learns from the server's answer whether a start created a new
// run or met an existing one (USE_EXISTING). The SDK does not surface the
// response's `started` flag, so a gRPC interceptor reads it.
type startProbe struct {
	seen, started bool
}

type startProbeKey struct{}

func withStartProbe(ctx context.Context, p *startProbe) context.Context {
	return context.WithValue(ctx, startProbeKey{}, p)
}

// StartProbeInterceptor must be installed on the client used by
// TemporalStarter (client.Options.ConnectionOptions.DialOptions) so that
// duplicates are reported as such.
func StartProbeInterceptor() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if resp, ok := reply.(*workflowservice.StartWorkflowExecutionResponse); ok && err == nil {
			if p, ok := ctx.Value(startProbeKey{}).(*startProbe); ok {
				p.seen, p.started = true, resp.GetStarted()
			}
		}
		return err
	})
}
