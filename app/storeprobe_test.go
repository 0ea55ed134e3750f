package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dealsync/dealsync/intake"
)

// The intake's store probe on a real server (SQLite): the run it reads
// does not exist, which Temporal answers NotFound, not an outage; nor is
// a namespace that does not exist (the namespace's check says that), nor
// a frontend refusing the read for the intake's credentials.
func TestStoreProbeOnARealServer(t *testing.T) {
	ctx, srv := embeddedServer(t)
	denyDescribe := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/DescribeWorkflowExecution") {
			return status.Error(codes.PermissionDenied, "Request unauthorized.")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	for _, c := range []struct {
		name      string
		namespace string
		dial      []grpc.DialOption
	}{
		{"the namespace", "default", nil},
		{"a namespace that does not exist", "no-such-namespace", nil},
		{"the read refused", "default", []grpc.DialOption{denyDescribe}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := client.NewLazyClient(client.Options{
				HostPort: srv.FrontendAddress(), Namespace: c.namespace, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
				ConnectionOptions: client.ConnectionOptions{DialOptions: c.dial},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := cl.DescribeWorkflowExecution(ctx, intake.StoreProbeID, ""); err == nil {
				t.Fatalf("the probe's run exists")
			}
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			if err := intake.StoreProbe(cl)(pctx); err != nil {
				t.Errorf("the store probe: %v, want nil", err)
			}
		})
	}
}
