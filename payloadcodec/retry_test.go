package payloadcodec_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/grpc"

	"github.com/dealsync/dealsync/payloadcodec"
)

// fakeFrontend is the part of Temporal's frontend every fake here
// answers: the system info a client reads when it dials.
type fakeFrontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
}

func (fakeFrontend) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// flakyFrontend refuses the first signal as unavailable (the SDK retries
// it) and records the input of the next.
type flakyFrontend struct {
	fakeFrontend
	mu       sync.Mutex
	attempts int
	input    *commonpb.Payloads
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
	f := &flakyFrontend{}
	c := mustNew(t, "k1", map[string][]byte{"k1": key(1)})
	cl := dialFake(t, f, c)
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

// describeFrontend answers every DescribeWorkflowExecution with a memo
// encrypted with a key the client does not have, counting the calls.
type describeFrontend struct {
	fakeFrontend
	mu    sync.Mutex
	calls int
	memo  *commonpb.Payload
}

func (f *describeFrontend) DescribeWorkflowExecution(context.Context, *workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{"mapping": f.memo}},
	}}, nil
}

// A payload of a key the client lacks fails the call once, with the
// message naming the key id and the setting: the SDK retries an error of
// unknown kind until the call's deadline, and the caller then saw only
// "context deadline exceeded" (and a worker's poll lost a task each try).
func TestAPayloadOfAnUnknownKeyFailsTheCallOnceSayingSo(t *testing.T) {
	old, err := mustNew(t, "k1", map[string][]byte{"k1": key(1)}).Encode([]*commonpb.Payload{payload(t, "acme")})
	if err != nil {
		t.Fatal(err)
	}
	f := &describeFrontend{memo: old[0]}
	cl := dialFake(t, f, mustNew(t, "k2", map[string][]byte{"k2": key(2)}))
	// The deadline only ends a call the SDK would retry for ever.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err = cl.DescribeWorkflowExecution(ctx, "invoice/demo/D-1", "")
	if err == nil || !strings.Contains(err.Error(), `key id "k1"`) || !strings.Contains(err.Error(), payloadcodec.KeysSetting) {
		t.Errorf("describing a run with a memo of key k1: %v; want an error naming k1 and %s", err, payloadcodec.KeysSetting)
	}
	if f.calls != 1 {
		t.Errorf("the call was made %d times, want once: the decode failure was retried", f.calls)
	}
}

// dialFake serves frontend, a fake of Temporal's frontend, on a loopback
// port for the test's length, and dials it with c's interceptor, as
// app.ClientOptions does.
func dialFake(t *testing.T, frontend workflowservice.WorkflowServiceServer, c *payloadcodec.Codec) client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(srv, frontend)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	cl, err := client.Dial(client.Options{
		HostPort: l.Addr().String(), Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(c.Interceptor())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
