package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dealsync/dealsync/config"
)

// retentionService describes a namespace that keeps finished runs for
// retention.
type retentionService struct {
	deniedService
	retention time.Duration
}

func (r retentionService) DescribeNamespace(context.Context, *workflowservice.DescribeNamespaceRequest, ...grpc.CallOption) (*workflowservice.DescribeNamespaceResponse, error) {
	return &workflowservice.DescribeNamespaceResponse{Config: &namespace.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(r.retention)}}, nil
}

type retentionClient struct {
	deniedClient
	svc retentionService
}

func (r retentionClient) WorkflowService() workflowservice.WorkflowServiceClient { return r.svc }

// A namespace that forgets finished runs within a week is warned about,
// naming it, its retention and the command that lengthens it, with the
// flags that reach the config's frontend: without --address the Temporal
// CLI goes to 127.0.0.1:7233, which may be a `dealsync dev`.
func TestRetentionWarning(t *testing.T) {
	tc := config.Temporal{Address: "temporal.internal:7233", Namespace: "prod"}
	w, err := RetentionWarning(context.Background(), retentionClient{svc: retentionService{retention: 24 * time.Hour}}, tc)
	if err != nil || !strings.Contains(w, `namespace "prod" keeps finished runs for 24h only`) ||
		!strings.Contains(w, "temporal operator namespace update --address temporal.internal:7233 --namespace prod --retention 30d") {
		t.Errorf("24 h: %q, %v", w, err)
	}
	for _, d := range []time.Duration{0, MinRetention, 30 * 24 * time.Hour} {
		if w, err := RetentionWarning(context.Background(), retentionClient{svc: retentionService{retention: d}}, tc); w != "" || err != nil {
			t.Errorf("%v: %q, %v; want no warning", d, w, err)
		}
	}
}
