package intake

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	} {
		err := classifyStartError("wf/1", c.err)
		if errors.Is(err, ErrTooLarge) != c.tooLarge || errors.Is(err, ErrUnavailable) {
			t.Errorf("%v: %v; want too large = %v", c.err, err, c.tooLarge)
		}
	}
}
