package payloadcodec_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"github.com/dealsync/dealsync/payloadcodec"
)

// flakyFrontend refuses the first signal as unavailable (the SDK retries
// it) and records the input of the next.
type flakyFrontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu       sync.Mutex
	attempts int
	input    *commonpb.Payloads
}

func (f *flakyFrontend) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

func (f *flakyFrontend) SignalWorkflowExecution(_ context.Context, r *workflowservice.SignalWorkflowExecutionRequest) (*workflowservice.SignalWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attempts++; f.attempts == 1 {
		return nil, serviceerror.NewUnavailable("try again")
	}
	f.input = r.GetInput()
	return &workflowservice.SignalWorkflowExecutionResponse{}, nil
}

// The SDK retries a call with the request the interceptor already
// encrypted in place: the retry must not encrypt it a second time, which
// no reader would decrypt back to the value.
func TestARetriedCallIsEncryptedOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	f := &flakyFrontend{}
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	c := mustNew(t, "k1", map[string][]byte{"k1": key(1)})
	cl, err := client.Dial(client.Options{
		HostPort: l.Addr().String(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(c.Interceptor())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.SignalWorkflow(t.Context(), "deal-1", "", "deal-event", "Ada Lovelace Ltd"); err != nil {
		t.Fatal(err)
	}
	if f.attempts != 2 || len(f.input.GetPayloads()) != 1 {
		t.Fatalf("%d attempts, input %v: want the second attempt's one payload", f.attempts, f.input)
	}
	dec, err := c.Decode(f.input.GetPayloads())
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(dec[0].GetMetadata()["encoding"]); enc == payloadcodec.Encoding {
		t.Fatal("the retried signal's input was encrypted twice")
	}
	if got := value(t, dec[0]); got != "Ada Lovelace Ltd" {
		t.Fatalf("retried signal's input %q", got)
	}
}
