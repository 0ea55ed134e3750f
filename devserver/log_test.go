package devserver

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

// The server's warning that the Web UI asked for a larger history page
// than it serves (one per run page opened) is logged at debug: nothing
// to act on, and it tripped alerts on the log's warnings. Other warnings
// stay warnings.
func TestHarmlessServerWarningsAreDebug(t *testing.T) {
	var out bytes.Buffer
	level := &atomic.Int64{}
	level.Store(int64(slog.LevelDebug))
	l := slogLogger{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), level: level}
	l.Warn("GetHistory page size is larger than threshold", tag.WorkflowID("invoice/demo/D-1"))
	l.Warn("something else")
	got := out.String()
	if !strings.Contains(got, `level=DEBUG msg="GetHistory page size is larger than threshold"`) || !strings.Contains(got, `level=WARN msg="something else"`) {
		t.Errorf("log:\n%s", got)
	}
}

// A clean stop's "unable to add metrics baggage to gRPC trailer … SendHeader
// called multiple times" is logged at debug while the server stops, and at
// error before; other errors stay errors while it stops.
func TestStoppingServerErrorsAreDebug(t *testing.T) {
	var out bytes.Buffer
	level := &atomic.Int64{}
	level.Store(int64(slog.LevelDebug))
	stopping := &atomic.Bool{}
	l := slogLogger{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), level: level, stopping: stopping}
	const msg = "unable to add metrics baggage to gRPC trailer"
	l.Error(msg, tag.Error(errors.New("transport: SendHeader called multiple times")))
	if got := out.String(); !strings.Contains(got, `level=ERROR msg="`+msg+`"`) {
		t.Errorf("before the stop, log:\n%s", got)
	}
	out.Reset()
	stopping.Store(true)
	l.Error(msg, tag.Error(errors.New("transport: SendHeader called multiple times")))
	l.Error("something else")
	got := out.String()
	if !strings.Contains(got, `level=DEBUG msg="`+msg+`"`) || !strings.Contains(got, "SendHeader called multiple times") || !strings.Contains(got, `level=ERROR msg="something else"`) {
		t.Errorf("while stopping, log:\n%s", got)
	}
	// At the level Stop sets, the line is gone.
	out.Reset()
	level.Store(int64(slog.LevelError))
	l.Error(msg)
	if got := out.String(); got != "" {
		t.Errorf("while stopping at level error, log:\n%s", got)
	}
}
